"""What the repositories share: the pool, transactions, id checks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool

from runtime.store.errors import NotFound, StoreUnavailable

Conn = psycopg.AsyncConnection[dict[str, Any]]


class Writer(Protocol):
    """Where a write goes: a connection in a transaction, or :class:`Writes` collecting a batch."""

    async def execute(self, query: Any, params: Any = None) -> Any: ...


class Writes:
    """Statements collected to be sent together when the block of :meth:`Repository.writes` ends."""

    def __init__(self) -> None:
        self.statements: list[tuple[Any, Any]] = []

    async def execute(self, query: Any, params: Any = None) -> None:
        self.statements.append((query, params))


def parse_id(value: str, what: str) -> uuid.UUID:
    """A UUID from the caller; anything else is simply not found (no oracle)."""
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"no {what} with the id {value!r}") from None


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class Repository:
    """Base of the repositories: one pool; each method runs in one transaction, or one statement."""

    def __init__(self, pool: AsyncConnectionPool[Conn]) -> None:
        self.pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """A transaction for several statements (BEGIN and COMMIT cost a round trip each)."""
        try:
            async with self.pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"the database failed: {type(exc).__name__}") from None

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[Conn]:
        """A transaction whose statements are sent together (pipeline mode): one round trip in all
        when nothing is read back before the end. Errors surface at the end of the block."""
        try:
            async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"the database failed: {type(exc).__name__}") from None

    @asynccontextmanager
    async def writes(self) -> AsyncIterator[Writes]:
        """Writes that need no answer, collected and committed together when the block ends (not if
        it raises): one statement alone in autocommit, several in one pipelined transaction; a
        single round trip either way."""
        writes = Writes()
        yield writes
        if not writes.statements:
            return
        context = self.statement() if len(writes.statements) == 1 else self.batch()
        async with context as conn:
            for query, params in writes.statements:
                await conn.execute(query, params)

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[Conn]:
        """A connection for one statement, atomic on its own (autocommit): one round trip, for hot paths."""
        try:
            async with self.pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"the database failed: {type(exc).__name__}") from None
