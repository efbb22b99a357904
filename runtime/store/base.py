"""What the repositories share: the pool, transactions, id checks."""

from __future__ import annotations

import asyncio
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


class GroupCommit:
    """Units of writes from concurrent requests, committed together: one transaction, one round trip.

    A unit is the statements one request must commit at once (see
    :meth:`Repository.writes`). While one group is being committed, the units
    that arrive wait and go together in the next, so under load many logins
    share a round trip and a WAL flush, and alone a unit goes at once. Each
    caller returns when its unit is committed. A group that fails is not
    anyone's fault yet: its units are committed again one by one, so that
    only the unit at fault fails.
    """

    def __init__(self, pool: AsyncConnectionPool[Conn]) -> None:
        self.pool = pool
        self._waiting: list[tuple[list[tuple[Any, Any]], asyncio.Future[None]]] = []
        self._committing = False
        self._drainer: asyncio.Task[None] | None = None  # kept: the loop holds tasks only weakly

    async def commit(self, statements: list[tuple[Any, Any]]) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._waiting.append((statements, done))
        if not self._committing:
            self._committing = True
            self._drainer = loop.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        try:
            while self._waiting:
                units, self._waiting = self._waiting, []
                await self._commit(units)
        finally:
            self._committing = False

    async def _commit(self, units: list[tuple[list[tuple[Any, Any]], asyncio.Future[None]]]) -> None:
        try:
            async with self.pool.connection() as conn:
                if len(units) == 1 and len(units[0][0]) == 1:
                    ((query, params),) = units[0][0]
                    await conn.execute(query, params)  # alone: autocommit, one statement
                else:
                    async with conn.pipeline(), conn.transaction():
                        for query, rows in _merged(units):
                            if len(rows) == 1:
                                await conn.execute(query, rows[0])
                            else:
                                await conn.cursor().executemany(query, rows)
        except Exception as exc:
            if len(units) > 1:
                for unit in units:
                    await self._commit([unit])
                return
            error: BaseException = exc
            if isinstance(exc, psycopg.OperationalError):
                error = StoreUnavailable(f"the database failed: {type(exc).__name__}")
            if not units[0][1].done():
                units[0][1].set_exception(error)
            return
        for _, done in units:
            if not done.done():
                done.set_result(None)


def _merged(units: list[tuple[list[tuple[Any, Any]], asyncio.Future[None]]]) -> list[tuple[Any, list[Any]]]:
    """The units' statements in the order they run: every unit's first statement, then every second one,
    and so on; within each of those rounds, statements with the same text go as one ``executemany``.

    A unit's own statements keep their order; units are independent requests, so
    their statements may interleave. Fifty logins' execution records are then
    one statement's rows rather than fifty statements, which costs the client
    less per record (by hand, in groups of eight: about a quarter less).
    """
    runs: list[tuple[Any, list[Any]]] = []
    for depth in range(max(len(statements) for statements, _ in units)):
        round_: dict[Any, tuple[Any, list[Any]]] = {}
        for statements, _ in units:
            if depth < len(statements):
                query, params = statements[depth]
                # Composed SQL objects are merged only with themselves.
                key = query if isinstance(query, str | bytes) else id(query)
                round_.setdefault(key, (query, []))[1].append(params)
        runs.extend(round_.values())
    return runs


class Repository:
    """Base of the repositories: one pool; each method runs in one transaction, or one statement."""

    def __init__(self, pool: AsyncConnectionPool[Conn], group: GroupCommit | None = None) -> None:
        self.pool = pool
        # Where this repository's writes() blocks are committed (shared with other requests), if anywhere.
        self.group = group

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
        single round trip either way. With a GroupCommit, with other requests' writes too."""
        writes = Writes()
        yield writes
        if not writes.statements:
            return
        if self.group is not None:
            await self.group.commit(writes.statements)
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
