"""Write-behind: units committed in batches after the requests that made them, none lost on the way."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from runtime.store.base import Conn, WriteBehind
from tests.fix_db import allow_connections, with_pool

INSERT = "INSERT INTO notes VALUES (%s)"


def note(n: int) -> list[tuple[str, Any]]:
    return [(INSERT, (n,))]


def with_notes(new_database: Any) -> str:
    url: str = new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY)")
    return url


def notes(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM notes ORDER BY id").fetchall()]


def test_units_wait_for_the_delay_then_go_as_one_batch(new_database: Any) -> None:
    url = with_notes(new_database)

    async def scenario(pool: AsyncConnectionPool[Conn]) -> tuple[list[int], list[int], int, int]:
        behind = WriteBehind(pool, what="note", delay_s=0.3)
        for n in range(20):
            behind.add(note(n))
        await asyncio.sleep(0.05)
        before = await asyncio.to_thread(notes, url)  # the delay has not passed: nothing written yet
        for _ in range(100):
            if behind.written:
                break
            await asyncio.sleep(0.05)
        return before, await asyncio.to_thread(notes, url), behind.batches, behind.waiting

    before, after, batches, waiting = with_pool(url, scenario)
    assert before == []
    assert after == list(range(20))
    assert (batches, waiting) == (1, 0)


def test_settle_writes_at_once_and_a_full_batch_does_not_wait(new_database: Any) -> None:
    url = with_notes(new_database)

    async def scenario(pool: AsyncConnectionPool[Conn]) -> tuple[list[int], list[int]]:
        behind = WriteBehind(pool, what="note", delay_s=3600, batch=5)
        for n in range(5):
            behind.add(note(n))  # a full batch: goes without waiting for the hour
        for _ in range(100):
            if behind.written == 5:
                break
            await asyncio.sleep(0.05)
        full = await asyncio.to_thread(notes, url)
        behind.add(note(5))
        await behind.settle()  # a reader: what this process wrote is in before it reads
        return full, await asyncio.to_thread(notes, url)

    full, settled = with_pool(url, scenario)
    assert full == [0, 1, 2, 3, 4]
    assert settled == [0, 1, 2, 3, 4, 5]


def test_a_refused_unit_is_dropped_alone_and_logged_without_its_data(
    new_database: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url = with_notes(new_database)

    async def scenario(pool: AsyncConnectionPool[Conn]) -> int:
        behind = WriteBehind(pool, what="note", delay_s=3600)
        for n in (1, 2, 2, 3):  # the second 2 breaks the primary key
            behind.add(note(n))
        behind.add([(INSERT, (4,)), ("INSERT INTO notes VALUES (%s)", ("secret-value",))])  # not an int
        behind.add(note(5))
        await behind.settle()
        return behind.dropped

    with caplog.at_level(logging.ERROR, logger="runtime.store.base"):
        dropped = with_pool(url, scenario)
    assert dropped == 2
    assert notes(url) == [1, 2, 3, 5]  # a unit is all or nothing: 4 went with its bad second statement
    messages = [r.getMessage() for r in caplog.records]
    assert "a note could not be written and was dropped: UniqueViolation" in messages
    assert "a note could not be written and was dropped: InvalidTextRepresentation" in messages
    assert not any("secret-value" in m for m in messages)


def test_more_than_max_waiting_drops_the_oldest_and_says_so(
    new_database: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url = with_notes(new_database)

    async def scenario(pool: AsyncConnectionPool[Conn]) -> int:
        behind = WriteBehind(pool, what="note", delay_s=3600, max_waiting=3)
        for n in range(5):
            behind.add(note(n))
        behind.add(note(5))
        await behind.settle()
        return behind.dropped

    with caplog.at_level(logging.ERROR, logger="runtime.store.base"):
        assert with_pool(url, scenario) == 3
    assert notes(url) == [3, 4, 5]
    # Said once, not once per drop: while the database is away, every login would drop one.
    assert caplog.messages == ["1 note dropped unwritten: more than 3 were waiting for the database (1 dropped in all)"]


def test_close_writes_what_is_waiting(new_database: Any) -> None:
    url = with_notes(new_database)

    async def scenario(pool: AsyncConnectionPool[Conn]) -> None:
        behind = WriteBehind(pool, what="note", delay_s=3600)
        for n in range(3):
            behind.add(note(n))
        await behind.close()

    with_pool(url, scenario)
    assert notes(url) == [0, 1, 2]


def test_units_wait_while_the_database_is_away_and_are_written_when_it_is_back(
    new_database: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url = with_notes(new_database)

    async def scenario(pool: AsyncConnectionPool[Conn]) -> tuple[int, int, int]:
        behind = WriteBehind(pool, what="note", delay_s=0.01)
        behind.RETRY_FIRST_S = 0.2
        await asyncio.to_thread(allow_connections, url, False)
        try:
            for n in range(3):
                behind.add(note(n))
            for _ in range(300):
                if any("cannot be reached" in m for m in caplog.messages):
                    break
                await asyncio.sleep(0.05)
            waiting_while_away = behind.waiting
            await behind.settle(timeout_s=1)  # returns: a reader is not held up while the database is away
        finally:
            await asyncio.to_thread(allow_connections, url, True)
        behind.add(note(3))
        for _ in range(600):
            if behind.written == 4:
                break
            await asyncio.sleep(0.05)
        return waiting_while_away, behind.written, behind.dropped

    with caplog.at_level(logging.INFO, logger="runtime.store.base"):
        waiting_while_away, written, dropped = with_pool(url, scenario, timeout=1.0)
    assert waiting_while_away == 3
    assert (written, dropped) == (4, 0)
    assert notes(url) == [0, 1, 2, 3]
    assert "the database cannot be reached; 3 notes waiting, to be written when it can" in caplog.messages
    assert "the database can be reached again; the waiting notes are being written" in caplog.messages
