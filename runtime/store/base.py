"""What the repositories share: the pool, transactions, id checks."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import psycopg
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from runtime.store.errors import NotFound, StoreUnavailable

Conn = psycopg.AsyncConnection[dict[str, Any]]
Statements = list[tuple[Any, Any]]

log = logging.getLogger(__name__)


class Writer(Protocol):
    """Where a write goes: a connection in a transaction, or :class:`Writes` collecting a batch."""

    async def execute(self, query: Any, params: Any = None) -> Any: ...


class RowsInsert:
    """An INSERT whose rows arrive as one JSON array: the text has one parameter, ``%s``, the array.

    A statement of this kind takes one row (a dict) as its parameters. Where
    several units of writes are committed together (:class:`GroupCommit`,
    :class:`WriteBehind`), the rows of all their statements of one kind go
    as one statement with one parameter: the client prepares and sends one
    array instead of a statement per row, which costs the event loop about a
    third as much per row (benchmarks/README.md, "rows as one JSON array").
    """

    __slots__ = ("sql",)

    def __init__(self, sql: str) -> None:
        self.sql = sql

    def __repr__(self) -> str:
        return f"RowsInsert({self.sql[:60]!r}...)"

    async def execute(self, conn: Writer, rows: list[Any]) -> None:
        """Insert `rows` (dicts) with one statement."""
        await conn.execute(self.sql, (Json(rows),))


async def _run(conn: Conn, query: Any, rows: list[Any]) -> None:
    """A statement with its parameters for one row or more: a :class:`RowsInsert`'s rows as one statement, one
    row as a statement, several as an ``executemany``."""
    if isinstance(query, RowsInsert):
        await query.execute(conn, rows)
    elif len(rows) == 1:
        await conn.execute(query, rows[0])
    else:
        await conn.cursor().executemany(query, rows)


class Writes:
    """Statements collected to be sent together when the block of :meth:`Repository.writes` ends."""

    def __init__(self) -> None:
        self.statements: Statements = []
        # Statements that may be committed after the block, with other requests' (WriteBehind), when the
        # block has nothing else to commit; with the block's own statements, first, when it has.
        self.deferred: Statements = []

    async def execute(self, query: Any, params: Any = None) -> None:
        self.statements.append((query, params))

    def defer(self, query: Any, params: Any = None) -> None:
        self.deferred.append((query, params))


def parse_id(value: str, what: str) -> uuid.UUID:
    """A UUID from the caller; anything else is simply not found (no oracle)."""
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"no {what} with the id {value!r}") from None


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def new_time_id() -> uuid.UUID:
    """A UUID version 7 (RFC 9562): the Unix time in milliseconds, then 74 random bits.

    For rows that are written behind an answer (execution records): the id
    says when it was issued, so a reader knows whether the row may still be
    on its way (see :func:`issued_at_ms`), and new rows land at the right
    edge of the primary key's index.
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits, of which 74 are used
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 68) << 64 | 0b10 << 62 | (rand & (2**62 - 1))
    return uuid.UUID(int=value)


def issued_at_ms(value: uuid.UUID) -> int | None:
    """When a :func:`new_time_id` id was issued (Unix ms); None for ids of other versions."""
    if value.version != 7:
        return None
    return value.int >> 80


# Expired rows are deleted this many at a time, each batch a statement of its own, with a pause between
# batches: a backlog (a retention shortened, a sweeper that was down) never holds locks or the database's
# CPU for long, and the logins served meanwhile do not wait behind it.
SWEEP_BATCH_ROWS = 1000
SWEEP_PAUSE_S = 0.02


def expired_rows(table: str, column: str, cutoff: str) -> str:
    """A DELETE of at most ``%(batch)s`` rows of `table` whose `column` (a column, or the expression of an
    index) is before `cutoff` (SQL), oldest first, found through the index on `column`. Rows another
    sweeper holds are skipped, not waited for."""
    return (
        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {column} < {cutoff}"
        f" ORDER BY {column} LIMIT %(batch)s FOR UPDATE SKIP LOCKED))"
    )


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
        self._waiting: list[tuple[Statements, asyncio.Future[None]]] = []
        self._committing = False
        self._drainer: asyncio.Task[None] | None = None  # kept: the loop holds tasks only weakly

    async def commit(self, statements: Statements) -> None:
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

    async def _commit(self, units: list[tuple[Statements, asyncio.Future[None]]]) -> None:
        try:
            await _commit_together(self.pool, [statements for statements, _ in units])
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


async def _commit_together(pool: AsyncConnectionPool[Conn], units: list[Statements]) -> None:
    """The units' statements in one round trip: one statement alone in autocommit (a single statement, or
    the rows of one RowsInsert), else merged in one pipelined transaction."""
    runs = _merged(units)
    async with pool.connection() as conn:
        if len(runs) == 1 and (isinstance(runs[0][0], RowsInsert) or len(runs[0][1]) == 1):
            await _run(conn, *runs[0])  # alone: autocommit, one statement
            return
        async with conn.pipeline(), conn.transaction():
            for query, rows in runs:
                await _run(conn, query, rows)


def _merged(units: list[Statements]) -> list[tuple[Any, list[Any]]]:
    """The units' statements in the order they run: every unit's first statement, then every second one,
    and so on; within each of those rounds, statements with the same text go as one ``executemany``
    (a :class:`RowsInsert`'s rows, as one statement's array).

    A unit's own statements keep their order; units are independent requests, so
    their statements may interleave. Fifty logins' execution records are then
    one statement's rows rather than fifty statements, which costs the client
    less per record (by hand, in groups of eight: about a quarter less as an
    ``executemany``, two thirds less as one array).
    """
    runs: list[tuple[Any, list[Any]]] = []
    for depth in range(max(len(statements) for statements in units)):
        round_: dict[Any, tuple[Any, list[Any]]] = {}
        for statements in units:
            if depth < len(statements):
                query, params = statements[depth]
                # Composed SQL objects are merged only with themselves.
                key = query if isinstance(query, str | bytes) else id(query)
                round_.setdefault(key, (query, []))[1].append(params)
        runs.extend(round_.values())
    return runs


class WriteBehind:
    """Writes that need not hold up the request that made them, committed in batches just after it.

    A login's execution record goes here when nothing else of the login must be
    committed before its answer (see :meth:`Writes.defer`): the answer goes at
    once, and the records of many logins reach the database together, as one
    statement's rows, at most ``delay_s`` later (sooner once ``batch`` of them
    are waiting). Readers of those rows call :meth:`settle` first, so that a
    process always finds what it wrote itself.

    When the database cannot be reached, the units wait and are tried again
    (after 0.5 s, then twice as long each time, up to 30 s); past
    ``max_waiting`` units the oldest are dropped and the log says how many. A
    unit the database refuses (a constraint, say) is dropped alone; the rest
    of its batch is written.
    """

    RETRY_FIRST_S = 0.5
    RETRY_LONGEST_S = 30.0
    SAY_DROPS_EVERY_S = 10.0

    def __init__(
        self, pool: AsyncConnectionPool[Conn], *, what: str, delay_s: float = 0.02, batch: int = 256,
        max_waiting: int = 10_000,
    ) -> None:  # fmt: skip
        self.pool = pool
        self.what = what  # what a unit is, for the log: "execution record"
        self.delay_s, self.batch, self.max_waiting = delay_s, batch, max_waiting
        self._waiting: list[Statements] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None  # kept: the loop holds tasks only weakly
        self._retry_s = 0.0  # > 0 while the database cannot be reached
        self._in_flight = 0
        self._dropped_said_at = -self.SAY_DROPS_EVERY_S
        self.written = self.batches = self.dropped = 0
        # How long a unit added by another process may take to show: its delay and a commit, with margin.
        self.grace_s = delay_s + 0.25

    @property
    def waiting(self) -> int:
        """Units not yet committed (in the batch being committed, or after it)."""
        return len(self._waiting) + self._in_flight

    def add(self, statements: Statements) -> None:
        self._waiting.append(statements)
        if len(self._waiting) > self.max_waiting:
            excess = len(self._waiting) - self.max_waiting
            del self._waiting[:excess]
            self.dropped += excess
            now = time.monotonic()
            if now - self._dropped_said_at >= self.SAY_DROPS_EVERY_S:  # an outage drops one per login
                self._dropped_said_at = now
                log.error(
                    "%s dropped unwritten: more than %d were waiting for the database (%d dropped in all)",
                    _count(excess, self.what), self.max_waiting, self.dropped,
                )  # fmt: skip
        self._schedule()

    def _schedule(self) -> None:
        """A flush now if a batch is full (and the database answers), else after the delay or the retry wait;
        none while one is in progress (it schedules the next when it ends)."""
        if self._flushing is not None or not self._waiting:
            return
        if len(self._waiting) >= self.batch and not self._retry_s:
            self._start()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._retry_s or self.delay_s, self._start)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is None and self._waiting:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        units, self._waiting = self._waiting[: self.batch], self._waiting[self.batch :]
        self._in_flight = len(units)
        try:
            left = await self._commit(units)
        finally:
            self._in_flight = 0
            self._flushing = None
        if left:
            self._waiting[:0] = left
            self._retry_s = min(max(self._retry_s * 2, self.RETRY_FIRST_S), self.RETRY_LONGEST_S)
            if self._retry_s == self.RETRY_FIRST_S:
                log.warning(
                    "the database cannot be reached; %s waiting, to be written when it can",
                    _count(len(self._waiting), self.what),
                )
        elif self._retry_s:
            self._retry_s = 0.0
            log.info("the database can be reached again; the waiting %ss are being written", self.what)
        self._schedule()

    async def _commit(self, units: list[Statements]) -> list[Statements]:
        """Commit the units (one by one if together they fail); return those left for later because the
        database was out of reach."""
        try:
            await _commit_together(self.pool, units)
        except (psycopg.OperationalError, PoolTimeout):
            return units
        except Exception as exc:
            if len(units) == 1:
                self.dropped += 1
                log.error("a %s could not be written and was dropped: %s", self.what, type(exc).__name__)
                return []
            for i, unit in enumerate(units):
                if await self._commit([unit]):
                    return units[i:]
            return []
        self.written += len(units)
        self.batches += 1
        return []

    async def settle(self, timeout_s: float = 5.0) -> None:
        """Wait until what was added so far is committed (or the timeout passes: the database is away)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._waiting or self._flushing is not None:
            if self._retry_s and self._flushing is None:
                return  # the database is away: the reader's own query will say so
            self._start()
            flushing = self._flushing
            remaining = deadline - loop.time()
            if flushing is None or remaining <= 0:
                return
            await asyncio.wait({flushing}, timeout=remaining)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Write what is waiting before the pool closes; say what could not be."""
        await self.settle(timeout_s)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.waiting:
            log.error("%s could not be written before shutting down", _count(self.waiting, self.what))


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


class Repository:
    """Base of the repositories: one pool; each method runs in one transaction, or one statement."""

    def __init__(
        self, pool: AsyncConnectionPool[Conn], group: GroupCommit | None = None, behind: WriteBehind | None = None
    ) -> None:
        self.pool = pool
        # Where this repository's writes() blocks are committed (shared with other requests), if anywhere.
        self.group = group
        # Where deferred writes go (see Writes.defer), if anywhere; else they go with the block.
        self.behind = behind

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
        single round trip either way. With a GroupCommit, with other requests' writes too. Deferred
        statements alone go to the WriteBehind, and the block does not wait for them."""
        writes = Writes()
        yield writes
        if not writes.statements and writes.deferred and self.behind is not None:
            self.behind.add(writes.deferred)
            return
        statements = writes.deferred + writes.statements
        if not statements:
            return
        if self.group is not None:
            await self.group.commit(statements)
            return
        context = self.statement() if len(statements) == 1 else self.batch()
        async with context as conn:
            for query, params in statements:
                await _run(conn, query, [params])

    async def delete_in_batches(self, query: str, params: dict[str, Any] | None = None) -> int:
        """Run `query`, a DELETE of at most ``%(batch)s`` rows, until a run deletes fewer; how many went."""
        params = {**(params or {}), "batch": SWEEP_BATCH_ROWS}
        deleted = 0
        while True:
            async with self.statement() as conn:
                cursor = await conn.execute(query, params)
            deleted += cursor.rowcount
            if cursor.rowcount < SWEEP_BATCH_ROWS:
                return deleted
            await asyncio.sleep(SWEEP_PAUSE_S)

    async def settled(self) -> None:
        """Before reading rows that may have been written behind: this process's own are in."""
        if self.behind is not None:
            await self.behind.settle()

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[Conn]:
        """A connection for one statement, atomic on its own (autocommit): one round trip, for hot paths.

        Taken and given back without the pool's context manager, whose connection block would commit
        (nothing, in autocommit) through psycopg's generators: about 10 µs of the event loop per statement.
        The pool still looks at what comes back: a broken connection is replaced, an open transaction
        rolled back."""
        try:
            conn = await self.pool.getconn()
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"the database failed: {type(exc).__name__}") from None
        try:
            yield conn
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"the database failed: {type(exc).__name__}") from None
        finally:
            await self.pool.putconn(conn)
