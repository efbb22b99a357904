"""The pool's check of a connection before use, in a process with many descriptors open."""

from __future__ import annotations

import asyncio
import os
import resource

import psycopg
import pytest

import runtime.store as store_module
from runtime.store import Store


def test_a_connection_numbered_past_1024_passes_the_check_and_is_kept(database_url: str) -> None:
    """A server holding many client connections opens its database connections on descriptors past
    1024, which select() cannot watch: the check before each use must still pass them, not replace
    the connection every time (or fail the request)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= 1200, "this machine cannot open 1,200 files in one process"
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]

    async def scenario() -> list[tuple[int, int]]:
        store = await Store.open(database_url, None, max_connections=1)
        seen = []
        try:
            for _ in range(3):
                async with store.pool.connection() as conn:
                    await conn.execute("SELECT 1")
                    seen.append((conn.pgconn.socket, conn.info.backend_pid))
        finally:
            await store.close()
        return seen

    try:
        seen = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert all(fd >= 1024 for fd, _ in seen)
    assert len({backend for _, backend in seen}) == 1  # the same connection each time


def test_a_connection_not_used_for_long_is_pinged_before_use_and_a_recent_one_is_not(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link cut without a goodbye shows nothing to read, so a connection the pool has not handed out
    for longer than IDLE_CHECK_S gets an empty query before the request's own; one handed out moments
    ago goes straight to the request. What its server process ran last tells which happened."""
    monkeypatch.setattr(store_module, "IDLE_CHECK_S", 0.5)

    async def scenario() -> list[str]:
        store = await Store.open(database_url, None, max_connections=1)
        last_queries = []
        try:
            async with store.pool.connection() as conn:
                await conn.execute("SELECT 41")
                backend = conn.info.backend_pid
            with psycopg.connect(database_url, autocommit=True) as watcher:

                def last_query() -> str:
                    row = watcher.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (backend,)).fetchone()
                    assert row is not None
                    return str(row[0])

                async with store.pool.connection() as conn:  # handed out moments ago: no ping
                    assert conn.info.backend_pid == backend
                    last_queries.append(last_query())
                    await conn.execute("SELECT 42")
                await asyncio.sleep(0.8)
                async with store.pool.connection() as conn:  # not handed out for 0.8 s: pinged first
                    assert conn.info.backend_pid == backend
                    last_queries.append(last_query())
        finally:
            await store.close()
        return last_queries

    assert asyncio.run(asyncio.wait_for(scenario(), 60)) == ["SELECT 41", ""]
