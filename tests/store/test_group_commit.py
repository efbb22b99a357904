"""Group commit: concurrent units of writes share a transaction, yet each commits or fails on its own."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from runtime.store.base import Conn, GroupCommit, RowsInsert


def test_concurrent_units_all_commit_and_a_bad_one_fails_alone(new_database: Any) -> None:
    url = new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")

    async def scenario() -> list[BaseException | None]:
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url, connection_class=Conn, min_size=1, max_size=4, open=False,
            kwargs={"autocommit": True, "row_factory": dict_row},
        )  # fmt: skip
        await pool.open(wait=True)
        group = GroupCommit(pool)
        units = [[("INSERT INTO notes VALUES (%s, %s)", (n, f"note {n}"))] for n in range(40)]
        # A unit of two statements whose second fails (a duplicate key): neither may stay.
        units.append(
            [("INSERT INTO notes VALUES (%s, %s)", (100, "half")), ("INSERT INTO notes VALUES (1, 'dup')", None)]
        )
        units.append([("INSERT INTO notes VALUES (%s, %s)", (101, None))])  # NOT NULL: fails alone
        try:
            outcomes = await asyncio.gather(*(group.commit(u) for u in units), return_exceptions=True)
        finally:
            await pool.close()
        return [o if isinstance(o, BaseException) else None for o in outcomes]

    outcomes = asyncio.run(scenario())
    assert outcomes[:40] == [None] * 40
    assert isinstance(outcomes[40], psycopg.errors.UniqueViolation)
    assert isinstance(outcomes[41], psycopg.errors.NotNullViolation)
    with psycopg.connect(url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM notes ORDER BY id").fetchall()]
    assert ids == list(range(40))


@pytest.mark.parametrize("count", [1, 2])
def test_a_unit_alone_is_committed_at_once(new_database: Any, count: int) -> None:
    url = new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY)")

    async def scenario() -> None:
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(url, connection_class=Conn, min_size=1, open=False)
        await pool.open(wait=True)
        try:
            await GroupCommit(pool).commit([("INSERT INTO notes VALUES (%s)", (n,)) for n in range(count)])
        finally:
            await pool.close()

    asyncio.run(scenario())
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM notes").fetchone() == (count,)


def test_a_group_keeps_each_units_order_while_merging_statements(new_database: Any) -> None:
    """Units of one, two and three statements, each later one depending on the earlier ones of its unit;
    identical statements of many units go as one executemany, yet every unit sees its own writes in order."""
    url = new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
    insert = "INSERT INTO notes VALUES (%s, 'a')"
    append = "UPDATE notes SET body = body || %s WHERE id = %s"

    def unit(n: int) -> list[tuple[str, Any]]:
        return [(insert, (n,)), (append, ("b", n)), (append, ("c", n))][: 1 + n % 3]

    async def scenario() -> list[BaseException | None]:
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(url, connection_class=Conn, min_size=1, open=False)
        await pool.open(wait=True)
        group = GroupCommit(pool)
        try:
            # The first unit goes alone; the other 59 arrive while it commits and go together.
            outcomes = await asyncio.gather(*(group.commit(unit(n)) for n in range(60)), return_exceptions=True)
        finally:
            await pool.close()
        return [o if isinstance(o, BaseException) else None for o in outcomes]

    assert asyncio.run(scenario()) == [None] * 60
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, body FROM notes ORDER BY id").fetchall()
    assert rows == [(n, "abc"[: 1 + n % 3]) for n in range(60)]


def test_merged_runs_round_by_round_with_same_text_together() -> None:
    from runtime.store.base import _merged

    a, b, c = "INSERT a", "UPDATE b", "DELETE c"
    units: list[Any] = [[(a, 1), (b, 1)], [(a, 2)], [(c, 3), (a, 3), (b, 3)]]
    assert _merged(units) == [(a, [1, 2]), (c, [3]), (b, [1]), (a, [3]), (b, [3])]


NOTE_ROWS = RowsInsert(
    "INSERT INTO notes (id, body) SELECT r.id, r.body FROM json_to_recordset(%s) AS r(id int, body text)"
)


def test_rows_of_many_units_go_as_one_statement_and_a_bad_row_fails_alone(new_database: Any) -> None:
    """Sixty units' rows arrive while the first unit commits: one statement writes them all (one statement
    time); the next statement of each unit still runs after its row. Then, in another group, a unit whose
    row breaks a constraint fails alone, and the others are written."""
    url = new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL, at timestamptz DEFAULT statement_timestamp())"
        )
    append = "UPDATE notes SET body = body || %s WHERE id = %s"

    def unit(n: int) -> list[tuple[Any, Any]]:
        if n == 130:
            return [(NOTE_ROWS, {"id": n, "body": None})]  # NOT NULL
        return [(NOTE_ROWS, {"id": n, "body": "a"}), (append, ("b", n))]

    async def scenario() -> list[list[BaseException | None]]:
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url, connection_class=Conn, min_size=1, open=False, kwargs={"autocommit": True}
        )
        await pool.open(wait=True)
        group = GroupCommit(pool)
        runs = []
        try:
            for first in (0, 100):
                outcomes = await asyncio.gather(
                    *(group.commit(unit(n)) for n in range(first, first + 61)), return_exceptions=True
                )
                runs.append([o if isinstance(o, BaseException) else None for o in outcomes])
        finally:
            await pool.close()
        return runs

    good, with_bad = asyncio.run(scenario())
    assert good == [None] * 61
    assert isinstance(with_bad[30], psycopg.errors.NotNullViolation)
    assert with_bad[:30] + with_bad[31:] == [None] * 60
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, body FROM notes ORDER BY id").fetchall()
        times = conn.execute("SELECT count(DISTINCT at) FROM notes WHERE id BETWEEN 1 AND 60").fetchone()
    assert rows == [(n, "ab") for n in [*range(61), *range(100, 161)] if n != 130]
    assert times == (1,)  # units 1 to 60 went together, as one statement's rows


def test_merged_rows_inserts_gather_every_units_row() -> None:
    from runtime.store.base import _merged

    other = RowsInsert(NOTE_ROWS.sql)  # the same text, another kind of row: kept apart
    units: list[Any] = [[(NOTE_ROWS, {"id": 1})], [(other, {"id": 2})], [(NOTE_ROWS, {"id": 3}), ("UPDATE", 3)]]
    assert _merged(units) == [(NOTE_ROWS, [{"id": 1}, {"id": 3}]), (other, [{"id": 2}]), ("UPDATE", [3])]
