"""Expired rows are swept a batch at a time, through their indexes, by any number of sweepers at once."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import psycopg
import pytest

from runtime.store import Store, base, executions
from runtime.store.logins import SESSION_ENDED
from runtime.store.migrate import migrate
from runtime.vault import MasterKeyring

BATCH = 7


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 7 rows, so that a few dozen rows take several."""
    monkeypatch.setattr(base, "SWEEP_BATCH_ROWS", BATCH)
    monkeypatch.setattr(base, "SWEEP_PAUSE_S", 0.0)


@pytest.fixture
def migrated(new_database: Any) -> str:
    url: str = new_database()
    migrate(url, report=lambda _: None)
    return url


def _tenant(conn: psycopg.Connection[Any], limits: dict[str, Any] | None = None) -> uuid.UUID:
    tid = uuid.uuid4()
    conn.execute("INSERT INTO tenants (id, name, limits) VALUES (%s, %s, %s)",
                 (tid, f"sweep-{tid.hex[:12]}", json.dumps(limits or {})))  # fmt: skip
    return tid


def _sessions(conn: psycopg.Connection[Any], tid: uuid.UUID, n: int, expires: str, idle: str | None = None) -> None:
    """`n` sessions whose lifetime ends in `expires` and whose idle time ends in `idle` (the same by default)."""
    conn.execute(
        "INSERT INTO sessions (tenant_id, id, token_hash, kind, user_id, expires_at, idle_expires_at)"
        " SELECT %s, gen_random_uuid(), sha256(gen_random_uuid()::text::bytea), 'external', 'u' || i,"
        f" now() + interval '{expires}', now() + interval '{idle or expires}' FROM generate_series(1, %s) i",
        (tid, n),
    )


def _records(conn: psycopg.Connection[Any], tid: uuid.UUID, n: int, age: str, apart: str = "0") -> None:
    """`n` execution records made `age` ago, the i-th `apart` times i earlier still."""
    conn.execute(
        "INSERT INTO executions (tenant_id, id, trigger_id, kind, status, results, created_at)"
        " SELECT %s, gen_random_uuid(), 'post-login', 'flow', 'success', '[]',"
        f" now() - interval '{age}' - i * interval '{apart}' FROM generate_series(1, %s) i",
        (tid, n),
    )


def _count(conn: psycopg.Connection[Any], table: str, tid: uuid.UUID) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s", (tid,)).fetchone()
    assert row is not None
    return int(row[0])


async def _open(url: str) -> Store:
    return await Store.open(url, MasterKeyring.parse(MasterKeyring.generate_text()))


def test_sessions_past_their_grace_go_in_batches(migrated: str, small_batches: None) -> None:
    """30 sessions that ended two hours ago go, over five batches, whether they expired or went idle;
    those that ended half an hour ago and the live ones stay."""
    with psycopg.connect(migrated, autocommit=True) as conn:
        tid = _tenant(conn)
        _sessions(conn, tid, 20, "-2 hours")
        _sessions(conn, tid, 10, "20 days", idle="-2 hours")
        _sessions(conn, tid, 3, "-30 minutes")
        _sessions(conn, tid, 2, "20 days", idle="-30 minutes")
        _sessions(conn, tid, 4, "1 day")

    async def sweep() -> int:
        store = await _open(migrated)
        try:
            return await store.logins.sweep()
        finally:
            await store.close()

    assert asyncio.run(sweep()) == 30
    with psycopg.connect(migrated) as conn:
        assert _count(conn, "sessions", tid) == 9


def test_two_sweepers_at_once_share_the_work(migrated: str, small_batches: None) -> None:
    """Two servers sweeping at the same moment: each old record is deleted once, by one of them, and
    neither waits for the other's rows; each tenant keeps what its retention keeps."""
    with psycopg.connect(migrated, autocommit=True) as conn:
        short = _tenant(conn, {"execution_retention_days": 1})
        default = _tenant(conn)
        _records(conn, short, 40, "2 days")
        _records(conn, short, 3, "1 hour")
        _records(conn, default, 6, "2 days")
        _records(conn, default, 5, "11 days")

    async def both() -> list[int]:
        stores = [await _open(migrated), await _open(migrated)]
        try:
            return list(await asyncio.gather(*(s.executions.sweep() for s in stores)))
        finally:
            for s in stores:
                await s.close()

    swept = asyncio.run(both())
    assert sum(swept) == 45
    with psycopg.connect(migrated) as conn:
        assert _count(conn, "executions", short) == 3
        assert _count(conn, "executions", default) == 6


def test_sweeps_read_indexes_not_tables(migrated: str) -> None:
    """With a tenant's 20,000 execution records made over two weeks, and as many sessions, the sweeps' plans find
    old rows through the indexes: a sweep costs the rows it deletes, not a read of every row (it once
    read them all, every minute, in every server process)."""
    with psycopg.connect(migrated, autocommit=True) as conn:
        tid = _tenant(conn, {"execution_retention_days": 3})
        _records(conn, tid, 20_000, "1 hour", apart="1 minute")
        _sessions(conn, tid, 20_000, "1 day")
        conn.execute("ANALYZE executions")
        conn.execute("ANALYZE sessions")
        params = {"days": 10, "batch": base.SWEEP_BATCH_ROWS}
        plans = {
            "executions": conn.execute("EXPLAIN " + executions.SWEEP, params).fetchall(),
            "sessions": conn.execute(
                "EXPLAIN " + base.expired_rows("sessions", SESSION_ENDED, "now() - interval '1 hour'"), params
            ).fetchall(),
        }
    for table, rows in plans.items():
        plan = "\n".join(r[0] for r in rows)
        assert f"Seq Scan on {table}" not in plan, plan
        assert "Index Scan" in plan, plan
