"""An even share of connections for each server process.

With several server processes, all of them listen on one socket and whichever
is quickest to call ``accept`` takes a new connection; a keep-alive connection
then stays with that process. An identity server that opens its pool of
connections at once (at its start, say) can so leave one process with most of
them: that process's event loop carries most of the logins while the other
idles, and its queue sets the latency. Here each process counts the
connections it holds in a small table all of them map, and a process that
holds ``FREELY`` or more, and more than another, leaves a new connection to
it for a moment (at most ``MAX_DEFER_S``: a process too busy to take it does
not hold it up for long). Clients that open a connection per request, a few
at a time, are never held up; theirs cost some 30 µs more of the server's CPU
each than with the loop's own accept (a connection per ``/healthz`` request,
by hand), which a keep-alive connection pays once.

Used through :class:`BalancingLoop`, the event loop of each server process
when there are several (``tollgate serve --workers N``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import mmap
import os
import select
import socket
import struct
import tempfile
import time
from collections.abc import Callable
from typing import Any

try:
    from uvloop import Loop as _BaseLoop
except ImportError:  # pragma: no cover - uvloop is a dependency wherever tollgate serves
    _BaseLoop = asyncio.SelectorEventLoop  # type: ignore[misc,assignment]

__all__ = ["TABLE_ENV", "BalancingLoop", "ConnectionTable", "established_connections", "process_alive"]

log = logging.getLogger(__name__)

# The path of the table, set by `tollgate serve` for its server processes.
TABLE_ENV = "TOLLGATE_CONNECTION_TABLE"

# A process takes new connections freely while it holds fewer than this many: clients that open a
# connection per request (a few open at a time) are not held up, and pools are shared out past it.
FREELY = 8
# A process that holds more connections than another waits this long before it looks again...
DEFER_S = 0.001
# ...and takes the connection itself once it has waited this long.
MAX_DEFER_S = 0.005
# After accept() fails for want of file descriptors, the wait before trying again.
ACCEPT_RETRY_S = 0.5


class ConnectionTable:
    """How many connections each server process holds: a slot (pid, count) per process in a shared file.

    Each process writes only its own slot; a slot whose process has died is
    not counted, and is taken over by the next process that starts.
    """

    SLOTS = 64
    _SLOT = struct.Struct("=qq")  # pid, open connections: aligned 8-byte words, each written whole

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, self.SLOTS * self._SLOT.size)
        self._slot: int | None = None

    @classmethod
    def create(cls, prefix: str = "tollgate-connections-") -> str:
        """A new, empty table file (for the parent process to share out), in the temporary folder; its path."""
        fd, path = tempfile.mkstemp(prefix=prefix)
        try:
            os.write(fd, bytes(cls.SLOTS * cls._SLOT.size))
        finally:
            os.close(fd)
        return path

    def _read(self, slot: int) -> tuple[int, int]:
        pid, count = self._SLOT.unpack_from(self._map, slot * self._SLOT.size)
        return pid, count

    def claim(self) -> int:
        """This process's slot: a free one, or one whose process is gone."""
        with _locked(self._fd):
            for slot in range(self.SLOTS):
                pid, _ = self._read(slot)
                if pid == 0 or not process_alive(pid):
                    self._SLOT.pack_into(self._map, slot * self._SLOT.size, os.getpid(), 0)
                    self._slot = slot
                    return slot
        raise RuntimeError(f"more than {self.SLOTS} server processes share the connection table {self.path}")

    @property
    def mine(self) -> int:
        assert self._slot is not None, "claim() a slot first"
        return self._read(self._slot)[1]

    def add(self, delta: int) -> None:
        """Count `delta` more connections of this process (nothing once its slot is given back)."""
        if self._slot is None:
            return
        offset = self._slot * self._SLOT.size
        pid, count = self._SLOT.unpack_from(self._map, offset)
        self._SLOT.pack_into(self._map, offset, pid, count + delta)

    def fewest_elsewhere(self) -> int | None:
        """The fewest connections another live server process holds (None: there is no other). Asked once
        per new connection, so the liveness checks (a signal 0 each) cost little."""
        counts = []
        for slot in range(self.SLOTS):
            pid, count = self._read(slot)
            if pid and slot != self._slot and process_alive(pid):  # a process gone without a word holds nothing
                counts.append(count)
        return min(counts) if counts else None

    def counts(self) -> dict[int, int]:
        """The connections each live process with a slot holds, by pid."""
        return {pid: count for pid, count in map(self._read, range(self.SLOTS)) if pid and process_alive(pid)}

    def release(self) -> None:
        """Give the slot back (the process stops taking connections)."""
        if self._slot is not None:
            self._SLOT.pack_into(self._map, self._slot * self._SLOT.size, 0, 0)
            self._slot = None

    def close(self) -> None:
        self.release()
        self._map.close()
        os.close(self._fd)


@contextlib.contextmanager
def _locked(fd: int) -> Any:
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _waiting(fd: int) -> bool:
    """Whether a connection waits to be accepted on the listening socket `fd`."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def process_alive(pid: int) -> bool:
    """Whether the process `pid` runs (one of another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BalancingServer(asyncio.AbstractServer):
    """Accepts connections on a listening socket shared with other server processes, one at a time,
    leaving each to the process that holds the fewest (see the module's docstring)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        table: ConnectionTable,
        backlog: int,
    ) -> None:
        self._loop = loop
        self._factory = protocol_factory
        self._sock = sock
        self._table = table
        self._fd = sock.fileno()
        self._closed = False
        self._reading = False
        self._timer: asyncio.TimerHandle | None = None
        self._deferred_since: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = asyncio.Event()
        sock.setblocking(False)
        sock.listen(backlog)
        table.claim()
        self._listen()

    # -- the listening socket -----------------------------------------------------------------

    def _listen(self) -> None:
        self._timer = None
        if self._closed or self._reading:
            return
        if self._deferred_since is not None and not _waiting(self._fd):
            self._deferred_since = None  # another process took the connection it waited for
        self._loop.add_reader(self._fd, self._acceptable)
        self._reading = True

    def _pause(self, seconds: float) -> None:
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False
        self._timer = self._loop.call_later(seconds, self._listen)

    def _acceptable(self) -> None:
        mine = self._table.mine
        fewest = self._table.fewest_elsewhere() if mine >= FREELY else None
        if fewest is not None and mine > fewest:
            now = time.monotonic()
            if self._deferred_since is None:
                self._deferred_since = now
            if now - self._deferred_since < MAX_DEFER_S:
                self._pause(DEFER_S)
                return
        self._deferred_since = None
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another process took it, or the client gave up
        except OSError as exc:  # out of file descriptors, or of memory: the connections wait in the backlog
            log.error("cannot accept connections (%s); trying again in %.1f s", exc.strerror or exc, ACCEPT_RETRY_S)
            self._pause(ACCEPT_RETRY_S)
            return
        # The loop makes the socket non-blocking and sets TCP_NODELAY, as for the connections it accepts.
        self._table.add(1)  # counted at once, so the other processes see it for the next connection
        task = self._loop.create_task(self._serve(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- one connection ----------------------------------------------------------------------

    async def _serve(self, conn: socket.socket) -> None:
        counted = [True]

        def uncount() -> None:
            if counted[0]:
                counted[0] = False
                self._table.add(-1)

        def protocol_factory() -> asyncio.BaseProtocol:
            protocol = self._factory()
            lost = protocol.connection_lost

            def connection_lost(exc: Exception | None) -> None:
                uncount()
                lost(exc)

            protocol.connection_lost = connection_lost  # type: ignore[method-assign]
            return protocol

        try:
            await self._loop.connect_accepted_socket(protocol_factory, conn)
        except Exception as exc:
            uncount()
            conn.close()
            log.warning("a connection could not be set up: %s", type(exc).__name__)

    # -- asyncio.AbstractServer ----------------------------------------------------------------

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return () if self._closed else (self._sock,)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._table.release()  # the connections still open close without being counted
        self._stopped.set()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return not self._closed

    async def start_serving(self) -> None:
        return None

    async def serve_forever(self) -> None:
        """Serve until closed (or cancelled, which closes the server)."""
        try:
            await self._stopped.wait()
        finally:
            self.close()

    async def wait_closed(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class BalancingLoop(_BaseLoop):
    """The event loop of a server process that shares its listening socket with others: its TCP server
    takes the connections this process should (see :class:`BalancingServer`). uvicorn makes it from the
    import string ``runtime.balance:BalancingLoop``."""

    async def create_server(  # type: ignore[override]
        self, protocol_factory: Callable[[], asyncio.BaseProtocol], host: Any = None, port: Any = None, *,
        sock: socket.socket | None = None, ssl: Any = None, backlog: int = 100, **kwargs: Any,
    ) -> asyncio.AbstractServer:  # fmt: skip
        path = os.environ.get(TABLE_ENV)
        if sock is None or ssl is not None or not path or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return await super().create_server(
                protocol_factory, host, port, sock=sock, ssl=ssl, backlog=backlog, **kwargs
            )
        return BalancingServer(self, protocol_factory, sock, ConnectionTable(path), backlog)


def established_connections(port: int, pids: list[int]) -> list[int]:
    """How many established TCP connections to local `port` each of `pids` holds, read from /proc
    (Linux): what the table says, seen from outside (tests and the flow benchmark use it)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in itertools.islice(f, 1, None):
                fields = line.split()
                if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 01: ESTABLISHED
                    inodes.add(fields[9])
    counts = []
    for pid in pids:
        held = 0
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    held += link.startswith("socket:[") and link[8:-1] in inodes
        counts.append(held)
    return counts
