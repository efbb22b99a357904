"""Statements run on libpq directly (runtime.store.wire): answers, errors, cancellation, a dropped statement."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from runtime.store.base import Conn
from runtime.store.wire import JsonStatement
from tests.fix_db import with_pool

ECHO = JsonStatement(
    "SELECT json_build_object('t', %(t)s::text, 'u', %(u)s::uuid, 'b', encode(%(b)s::bytea, 'hex'),"
    " 'i', %(i)s::interval::text, 'twice', %(t)s::text || %(t)s::text)",
    {"t": str, "u": uuid.UUID, "b": bytes, "i": timedelta},
)
ROWS = JsonStatement("SELECT to_json(n) FROM generate_series(1, %(n)s::text::int) n WHERE n > 1", {"n": str})


def test_parameters_go_in_binary_and_the_json_answer_comes_back(new_database: Any) -> None:
    key = uuid.uuid4()

    async def scenario(pool: AsyncConnectionPool[Conn]) -> list[Any]:
        async with pool.connection() as conn:
            params = {
                "t": "zoë ✓ 🎉 'quoted' \\ back",
                "u": key,
                "b": b"\x00\x01\xff",
                "i": timedelta(days=3, seconds=5),
            }
            first = await ECHO.fetch(conn, params)
            second = await ECHO.fetch(conn, params)  # prepared already on this connection
            none = await ROWS.fetch(conn, {"n": "1"})  # no row: None
            one = await ROWS.fetch(conn, {"n": "2"})
        return [first, second, none, one]

    first, second, none, one = with_pool(new_database(), scenario, max_size=1)
    expected = {"t": "zoë ✓ 🎉 'quoted' \\ back", "u": str(key), "b": "0001ff", "i": "3 days 00:00:05"}
    assert {k: first[k] for k in expected} == expected
    assert first["twice"] == expected["t"] * 2
    assert second == first
    assert none is None
    assert one == 2


def test_a_nul_in_a_text_is_refused_not_cut_and_the_connection_goes_on(new_database: Any) -> None:
    """A C string would end at the NUL (the user id "a" in place of "a\\x00b"): sent in binary, the
    database refuses it instead."""

    async def scenario(pool: AsyncConnectionPool[Conn]) -> Any:
        async with pool.connection() as conn:
            with pytest.raises(psycopg.DataError):
                await ECHO.fetch(conn, {"t": "a\x00b", "u": uuid.uuid4(), "b": b"", "i": timedelta()})
            return await ECHO.fetch(conn, {"t": "after", "u": uuid.uuid4(), "b": b"", "i": timedelta()})

    assert with_pool(new_database(), scenario, max_size=1)["t"] == "after"


def test_a_database_error_raises_its_class_and_the_connection_stays_usable(new_database: Any) -> None:
    divide = JsonStatement("SELECT to_json(1 / %(n)s::text::int)", {"n": str})

    async def scenario(pool: AsyncConnectionPool[Conn]) -> list[Any]:
        async with pool.connection() as conn:
            with pytest.raises(psycopg.errors.DivisionByZero):
                await divide.fetch(conn, {"n": "0"})
            status = conn.pgconn.transaction_status
            return [await divide.fetch(conn, {"n": "1"}), status]

    answer, status = with_pool(new_database(), scenario, max_size=1)
    assert answer == 1
    assert status == psycopg.pq.TransactionStatus.IDLE


def test_a_statement_dropped_on_the_server_is_prepared_again(new_database: Any) -> None:
    async def scenario(pool: AsyncConnectionPool[Conn]) -> list[Any]:
        async with pool.connection() as conn:
            before = await ROWS.fetch(conn, {"n": "3"})
            await conn.execute("DEALLOCATE ALL")  # as DISCARD ALL, or a pooler in front, would
            after = await ROWS.fetch(conn, {"n": "3"})
        return [before, after]

    assert with_pool(new_database(), scenario, max_size=1) == [2, 2]


def test_a_cancelled_exchange_closes_its_connection_and_the_pool_replaces_it(new_database: Any) -> None:
    """Cancelled while the statement runs: the connection, with a statement still in flight, is closed
    rather than handed out again; the next statement gets a new one and its answer."""
    slow = JsonStatement("SELECT to_json(pg_sleep(%(s)s::text::float))", {"s": str})

    async def scenario(pool: AsyncConnectionPool[Conn]) -> list[Any]:
        async with pool.connection() as conn:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(slow.fetch(conn, {"s": "5"}), 0.3)
            closed = conn.closed
        async with pool.connection() as fresh:
            answer = await ROWS.fetch(fresh, {"n": "4"})
            replaced = fresh is not conn
        return [closed, replaced, answer]

    assert with_pool(new_database(), scenario, max_size=1) == [True, True, 2]  # the first row's value


def test_a_parameter_larger_than_the_socket_takes_at_once_is_sent_whole(new_database: Any) -> None:
    length = JsonStatement("SELECT to_json(length(%(t)s::text))", {"t": str})
    text = "x" * (16 * 1024 * 1024)

    async def scenario(pool: AsyncConnectionPool[Conn]) -> Any:
        async with pool.connection() as conn:
            return await length.fetch(conn, {"t": text})

    assert with_pool(new_database(), scenario, max_size=1) == len(text)
