"""A database for the test session: on the server DATABASE_URL names, or on the embedded one.

Each session creates its own database (and drops it at the end), so runs
never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from runtime.store import embedded
from runtime.store.base import Conn


def _server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return configured
    return embedded.start(Path(tmp_path_factory.mktemp("embedded-home")))


def allow_connections(url: str, allow: bool) -> None:
    """Let the database `url` names take connections again, or stop taking them and drop the open ones
    (as a database going away does; the server and the other databases stay up)."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(psycopg.conninfo.make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def _with_database(url: str, name: str) -> str:
    conninfo = psycopg.conninfo.conninfo_to_dict(url)
    conninfo["dbname"] = name
    return psycopg.conninfo.make_conninfo(**conninfo)


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The PostgreSQL server the tests use (a connection to its admin database)."""
    return _server_url(tmp_path_factory)


@pytest.fixture(scope="session")
def new_database(server_url: str) -> Iterator[object]:
    """A factory of fresh, empty databases; all are dropped when the session ends."""
    made: list[str] = []

    def make() -> str:
        name = f"tollgate_test_{os.getpid()}_{secrets.token_hex(4)}"
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return _with_database(server_url, name)

    yield make
    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(new_database: object) -> str:
    """The session's main database (empty at first; the API's lifespan migrates it)."""
    return new_database()  # type: ignore[operator]


def with_pool(
    url: str, scenario: Callable[[AsyncConnectionPool[Conn]], Awaitable[Any]], *, max_size: int = 2, **pool_args: Any
) -> Any:
    """`scenario(pool)`, run to its end on a pool of connections as the store makes them (autocommit, rows as
    dicts); the pool is closed after."""

    async def main() -> Any:
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url, connection_class=Conn, min_size=1, max_size=max_size, open=False,
            kwargs={"autocommit": True, "row_factory": dict_row}, **pool_args,
        )  # fmt: skip
        await pool.open(wait=True)
        try:
            return await scenario(pool)
        finally:
            await pool.close()

    return asyncio.run(main())
