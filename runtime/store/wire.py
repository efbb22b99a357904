"""The hottest statements, run on libpq directly: prepared once per connection, one JSON value back.

psycopg takes every statement through its generators, adapters, row makers
and waiting loop. For the statement each login runs before its actions (the
flow head: the tenant, the pinned versions, the identity server's session)
that came to 220 to 310 µs of the event loop's CPU per login, against 95 to 120
µs for the same exchange on the connection's libpq handle (benchmarks/README.md,
"libpq directly"). A :class:`JsonStatement` is prepared on a pooled
connection the first time it runs there, sends its parameters in binary (so
that a text is never cut at a NUL, as a C string would be) and reads back a
single ``json`` column with :func:`runtime.jsontext.loads`.

The connection stays psycopg's: it comes from the pool and goes back to it,
in autocommit, idle. An exchange that cannot finish (the task was cancelled,
the link broke) closes the connection, so the pool replaces it instead of
handing out one with a statement still in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg import errors, pq
from psycopg.adapt import PyFormat

from runtime import jsontext

__all__ = ["JsonStatement"]

_PARAMETER = re.compile(r"%\((\w+)\)s")


# Prepared statements are named per process; a name is never reused for another text.
_NAMES = itertools.count()

# SQLSTATE of "prepared statement does not exist": something (a pooler, DISCARD ALL) dropped it.
_NOT_PREPARED = "26000"


class JsonStatement:
    """A statement whose answer is one ``json`` value (one row, one column; None when no row comes back).

    `sql` names its parameters as psycopg does, ``%(name)s``; `types` gives each
    one's Python type, whose binary form and PostgreSQL type psycopg's own adapters give.
    """

    def __init__(self, sql: str, types: Mapping[str, type]) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self.sql = _PARAMETER.sub(number, sql).encode()
        self.names = tuple(names)
        unknown = set(names) - set(types)
        if unknown:
            raise ValueError(f"no type given for the parameters {sorted(unknown)}")
        dumpers = [psycopg.adapters.get_dumper(types[name], PyFormat.BINARY)(types[name]) for name in names]
        self._oids = [dumper.oid for dumper in dumpers]
        self._dumps = [(name, dumper.dump) for name, dumper in zip(names, dumpers, strict=True)]
        self._formats = [pq.Format.BINARY] * len(names)
        self.name = f"tollgate_{next(_NAMES)}".encode()
        self._prepared_on: weakref.WeakSet[psycopg.AsyncConnection[Any]] = weakref.WeakSet()

    async def fetch(self, conn: psycopg.AsyncConnection[Any], params: Mapping[str, Any]) -> Any:
        """Run the statement on `conn` (in autocommit, not in use elsewhere) with `params`; its JSON value."""
        values = [None if params[name] is None else dump(params[name]) for name, dump in self._dumps]
        pgconn = conn.pgconn
        for attempt in (1, 2):
            if conn not in self._prepared_on:
                _raise_for(await _exchange(pgconn, lambda: pgconn.send_prepare(self.name, self.sql, self._oids)))
                self._prepared_on.add(conn)
            result = await _exchange(pgconn, lambda: pgconn.send_query_prepared(self.name, values, self._formats))
            if result.status == pq.ExecStatus.FATAL_ERROR and attempt == 1 and _state(result) == _NOT_PREPARED:
                self._prepared_on.discard(conn)
                continue
            _raise_for(result)
            break
        if result.ntuples == 0:
            return None
        value = result.get_value(0, 0)
        return None if value is None else jsontext.loads(value)


def _state(result: pq.abc.PGresult) -> str:
    return (result.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()


def _raise_for(result: pq.abc.PGresult) -> None:
    if result.status == pq.ExecStatus.FATAL_ERROR:
        raise errors.error_from_result(result)
    if result.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
        raise psycopg.InterfaceError(f"unexpected answer from the database: {pq.ExecStatus(result.status).name}")


async def _exchange(pgconn: pq.abc.PGconn, send: Callable[[], None]) -> pq.abc.PGresult:
    """Send one command and read its results; the first error's result, else the last result."""
    loop = asyncio.get_running_loop()
    fd = pgconn.socket
    try:
        send()
        while pgconn.flush():  # 1: the socket took only part of it
            await _ready(loop, fd, writing=True)
        answer: pq.abc.PGresult | None = None
        while True:
            pgconn.consume_input()
            if pgconn.is_busy():
                await _ready(loop, fd, writing=False)
                continue
            result = pgconn.get_result()
            if result is None:
                break
            if answer is None or answer.status != pq.ExecStatus.FATAL_ERROR:
                answer = result
    except BaseException:
        # Cancelled or broken halfway: a statement may still be running. The pool must not hand this
        # connection out again, and a closed one it replaces.
        if pgconn.status == pq.ConnStatus.OK and pgconn.transaction_status != pq.TransactionStatus.IDLE:
            pgconn.finish()
        raise
    if answer is None:
        raise psycopg.InterfaceError("the database sent no answer")
    return answer


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, *, writing: bool) -> None:
    """Wait until the connection's socket can be written (or read)."""
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if writing:
        loop.add_writer(fd, wake)
        try:
            await ready
        finally:
            loop.remove_writer(fd)
    else:
        loop.add_reader(fd, wake)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
