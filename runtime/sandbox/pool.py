"""Executions in a pool of executor processes, one engine each.

The server hands executions to the pool so that all cores are used and a
crash inside an execution takes down one executor, never the server: the
executor is replaced and the execution fails with a platform error.

Executors are started with ``spawn`` (no state of the server is inherited)
and drop the platform's credentials from their environment at start: an
executor runs tenant code and never talks to the database. Requests and
results cross the pipe as msgpack.

The limits inside the sandbox stop tenant code; nothing inside an executor
can stop the executor itself from hanging (a stopped or frozen process, a
fault in the engine). So every request also has a deadline on the host's
side: the wall-clock limit the guest holds itself to, plus a margin. An
executor that dies or misses its deadline is killed, the request it held
fails closed with :class:`PlatformError`, and a replacement starts in the
background: neither the failing caller nor anyone else waits for it, and
the other executors carry on. A replacement that cannot start is logged and
tried again on the next request, so the pool grows back to its size as soon
as starting works again.

Scheduling: a request takes the executor freed last (its caches are warm).
Callers on an event loop (the server) that find none free wait on their
loop, not in a thread, and freed executors are handed to them in arrival
order. On the loop, requests and answers are driven by callbacks, and an
executor need not wait for a busy loop between two requests: a request that
finds no free executor is written behind the one request an executor of the
same loop started moments ago (when none is waiting before it), and the
executor reads it from its pipe as soon as it has answered; the callback that
reads an answer queues the next waiting request behind the one the executor
now runs, or, once it runs none, hands it on to the next waiting request,
which is sent there and then. Answers come back in the order the requests
were written. An executor that dies or hangs fails the request it was
running; those queued behind it, which it never started, go to another. An
executor sends its answer before it resets the execution's sandbox (wasmtime
rewrites about a megabyte of memory then).

Lifecycle: :class:`ExecutorPool` once per server process; each executor
loads the engine once at start (about a second on a cold machine, then from
the compiled-module cache); :meth:`ExecutorPool.execute` once per execution,
from any thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import msgpack

from runtime.limits import Limits
from runtime.sandbox.compiler import CompiledAction
from runtime.sandbox.errors import PlatformError, error_from_dict
from runtime.sandbox.executor import ExecutionResult, pack_request

__all__ = ["SCRUBBED_ENVIRONMENT", "ExecutorPool"]

log = logging.getLogger(__name__)

# What an executor must never hold.
SCRUBBED_ENVIRONMENT = ("DATABASE_URL", "TOLLGATE_MASTER_KEY", "TOLLGATE_OPERATOR_KEY", "PGPASSWORD")

# An action compiled by another engine build is compiled again in the
# executor before it runs, under the default limits (executor._Recompiled):
# its deadline allows for that too.
_RECOMPILE_ALLOWANCE_S = Limits().wall_ms / 1000
# An executor keeps the last _ACTIONS_KEPT actions it ran; the pool names (rather than sends) at
# most _ACTIONS_NAMED of them, all among the executor's latest, so a named action is always kept.
_ACTIONS_KEPT = 512
_ACTIONS_NAMED = 256
# An event-loop caller that finds no free executor may write its request behind the one request an
# executor of its loop is running, so that the executor reads it as soon as it has answered, without
# waiting for the loop: behind a request sent at most this long ago, and when it is at most this big
# (it waits in the pipe's buffer while the executor works).
_PIPELINE_FRESH_S = 0.002
_PIPELINE_MAX_BYTES = 64 * 1024


def _compile(request: dict[str, Any]) -> dict[str, Any]:
    from runtime.sandbox.compiler import compile_action
    from runtime.sandbox.errors import SandboxError

    try:
        action = compile_action(
            request["source"],
            trigger=request["trigger"],
            limits=Limits(**request["limits"]),
            max_source_bytes=request["max_source_bytes"],
        )
    except SandboxError as exc:
        return {"error": exc.to_dict()}
    return {"action": action.to_wire()}


def _executor_main(conn: Connection) -> None:
    """The executor process: load the engine, then answer requests until the pipe closes."""
    # Ctrl+C in a terminal signals every process of the server, executors too; the server stops its
    # executors itself (the pipe closes, or it kills them), so an executor does not die of it first,
    # with a traceback, while a request may still be on its way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in SCRUBBED_ENVIRONMENT:
        os.environ.pop(name, None)
    from runtime.gctuning import settle_after_startup
    from runtime.sandbox import _engine
    from runtime.sandbox.executor import execute_packed

    handle = _engine.engine()
    build_id = handle.build_id
    # An execution's sandbox is dropped (its memory slot reset) after the
    # answer is sent, not before.
    handle.wasm.defer_drops = True
    settle_after_startup()
    actions: OrderedDict[str, CompiledAction] = OrderedDict()  # the actions run lately, by bytecode digest
    conn.send_bytes(msgpack.packb({"ready": os.getpid(), "build_id": build_id}))
    while True:
        handle.wasm.drop_deferred()  # the last answer is sent: now reset its sandbox
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            return
        request = msgpack.unpackb(raw)
        if "probe" in request:
            conn.send_bytes(msgpack.packb({"environment": sorted(os.environ)}))
            continue
        if "compile" in request:
            conn.send_bytes(msgpack.packb(_compile(request["compile"])))
            continue
        if "action" in request:
            try:
                action = CompiledAction.from_wire(request["action"])
            except PlatformError as exc:  # bytecode that does not match its digest
                conn.send_bytes(msgpack.packb({"platform_error": exc.message}))
                continue
            actions[action.bytecode_sha256] = action
            if len(actions) > _ACTIONS_KEPT:
                actions.popitem(last=False)
        else:
            found = actions.get(request["action_ref"])
            if found is None:
                conn.send_bytes(msgpack.packb({"unknown_action": True}))
                continue
            actions.move_to_end(request["action_ref"])
            action = found
        try:
            result = execute_packed(
                action,
                request["guest"],
                limits=Limits(**request["limits"]),
                seed=request["seed"],
                now_ms=request["now_ms"],
                replay_host_calls=request["replay_host_calls"],
            )
            reply: dict[str, Any] = {"result": result.to_wire()}
        except PlatformError as exc:
            reply = {"platform_error": exc.message}
        conn.send_bytes(msgpack.packb(reply))


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _look_again(handed: asyncio.Future[bool]) -> None:
    if not handed.done():
        handed.set_result(False)


def _call_on(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> bool:
    """Run `callback` soon on `loop`, from its own thread or another; False if the loop is closed."""
    try:
        if _running_loop() is loop:
            loop.call_soon(callback, *args)
        else:
            loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        return False
    return True


class _NoAnswer(Exception):
    """The executor did not answer in time."""


@dataclass(frozen=True)
class _Request:
    """An execution's request, made for whichever executor takes it, and how to ask for it."""

    request_for: Callable[..., bytes]
    ask: dict[str, Any]
    limits: Limits

    def result(self, reply: dict[str, Any]) -> ExecutionResult:
        """The execution's result from the executor's reply (with the limits sent, not checked again)."""
        if "platform_error" in reply:
            raise PlatformError(reply["platform_error"])
        return ExecutionResult.from_wire(reply["result"], limits=self.limits)


class _Executor:
    """One executor process and the server's end of its pipe.

    Held by one caller at a time: whoever took it from the pool sends a
    request and reads its reply before anyone else may write to the pipe.
    Callers on one event loop share it as a queue instead (``calls``): their
    requests are read by the executor in the order they were written, and
    their answers come back in that order.
    """

    def __init__(self, ctx: Any, *, send_timeout_s: float) -> None:
        parent, child = ctx.Pipe()
        self.conn: Connection = parent
        self.process = ctx.Process(target=_executor_main, args=(child,), name="tollgate-executor", daemon=True)
        self.process.start()
        child.close()
        self.pid: int = self.process.pid
        self.build_id = ""
        # Digests of the actions this executor keeps (it was sent them whole).
        self.actions: set[str] = set()
        # Requests of event-loop callers written to the pipe and not yet answered, in the order the
        # executor answers them: the first runs, the next waits in the pipe (see _PIPELINE_DEPTH).
        self.calls: collections.deque[_AsyncCall] = collections.deque()
        self.deadline: asyncio.TimerHandle | None = None  # for the first of them
        # A request is written while the executor waits for one; an executor that
        # stopped reading (a stopped or frozen process) must not block the writer
        # once the request is bigger than the pipe's buffer: a write that makes no
        # progress for this long fails with BlockingIOError instead.
        seconds, fraction = divmod(send_timeout_s, 1)
        with socket.fromfd(parent.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("@ll", int(seconds), int(fraction * 1_000_000))
            )

    def wait_ready(self, timeout_s: float) -> None:
        try:
            if self.conn.poll(timeout_s):
                self.build_id = str(msgpack.unpackb(self.conn.recv_bytes())["build_id"])
                return
        except (EOFError, OSError):
            self.process.join(timeout=5)
            raise PlatformError(f"an executor exited while starting ({self.ending()})") from None
        raise PlatformError(f"an executor did not start within {timeout_s:g} s")

    def alive(self) -> bool:
        return bool(self.process.is_alive())

    def ending(self) -> str:
        """How the process ended, in words, for the log."""
        code = self.process.exitcode
        if code is None:
            return "still running"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def kill(self) -> None:
        """SIGKILL (which also ends a stopped process) and close the pipe; :meth:`reap` collects it."""
        self.process.kill()
        self.conn.close()

    def reap(self) -> None:
        self.process.join(timeout=5)

    def stop(self) -> None:
        """Close the pipe, which ends an idle executor's loop; kill it if it does not end."""
        self.conn.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class _AsyncCall:
    """A request of a caller on an event loop, driven by callbacks on that loop.

    :meth:`start` writes it to an executor as soon as it has one: a free
    executor, or one running a single request for the same loop, which reads
    this one from its pipe the moment it has answered (the answer is not
    waiting for the loop, which may be busy with other work). The pool's
    reader callback for that executor reads each answer, gives it to its call
    and, once the executor holds no call, hands it on to the next waiting
    call, which is sent there and then. A call whose caller was cancelled
    meanwhile still has its answer read, so its executor carries on rather
    than being replaced.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        request_for: Callable[..., bytes],
        *,
        wall_ms: int,
        build_id: str | None,
        action_key: str | None,
    ) -> None:
        self.loop, self.request_for = loop, request_for
        self.wall_ms, self.build_id, self.action_key = wall_ms, build_id, action_key
        # While the call waits for an executor: True once handed one (and sent), False to look again.
        self.handed: asyncio.Future[bool] | None = None
        self.answer: asyncio.Future[dict[str, Any]] = loop.create_future()
        self.resent = False
        self.sent = 0.0  # when it was written (monotonic)
        # Sent again by the pool after its executor failed before starting it: its caller awaits the answer.
        self.resubmitted = False

    def settle(self, reply: dict[str, Any]) -> None:
        if not self.answer.done():
            self.answer.set_result(reply)

    def fail(self, error: BaseException) -> None:
        if not self.answer.done():
            self.answer.set_exception(error)


class ExecutorPool:
    """A fixed number of executor processes; executions go to whichever is free.

    Thread-safe. One lock guards which executors exist (``_all``) and which
    are free (``_idle``, a subset of ``_all``). A caller holds an executor
    from :meth:`_acquire` until it either gives it back (:meth:`_release`) or,
    when the executor died or overran, drops it (:meth:`_discard`): so a pipe
    never carries two conversations, a dropped executor is in neither list,
    and a replacement enters both exactly once.

    `deadline_margin_s` is what a request may take beyond the wall-clock limit
    the guest enforces on itself (process hand-over, result encoding, a busy
    machine) before its executor counts as hung, and how long a write of a
    request may stall.
    """

    def __init__(
        self, *, processes: int | None = None, start_timeout_s: float = 120.0, deadline_margin_s: float = 2.0
    ) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._size = processes or os.cpu_count() or 1
        self._start_timeout_s = start_timeout_s
        self._margin_s = deadline_margin_s
        self._lock = threading.Lock()
        # Two conditions on one lock: a caller that needs one executor is woken
        # for each one freed; environments() only once every executor is free.
        self._freed = threading.Condition(self._lock)
        self._all_freed = threading.Condition(self._lock)
        # Callers on an event loop waiting for an executor: woken on their loop, without a thread.
        # A freed executor goes straight to the longest-waiting one (first come, first served: a
        # caller arriving meanwhile cannot take it first); handed False wakes one to look again.
        self._async_waiters: collections.deque[_AsyncCall] = collections.deque()
        self._all: list[_Executor] = []
        self._idle: collections.deque[_Executor] = collections.deque()
        self._starting = 0
        self._replaced = 0
        self._start_failures = 0
        self._closed = False
        started = time.perf_counter()
        executors: list[_Executor] = []
        try:
            for _ in range(self._size):
                executors.append(self._new_executor())
            for executor in executors:
                executor.wait_ready(start_timeout_s)
        except BaseException:
            for executor in executors:
                executor.kill()
                executor.reap()
            raise
        self._all.extend(executors)
        self._idle.extend(executors)
        log.info(
            "%d executor process%s ready in %.1f s",
            self._size,
            "" if self._size == 1 else "es",
            time.perf_counter() - started,
        )

    @property
    def size(self) -> int:
        return self._size

    def stats(self) -> dict[str, int]:
        """Counters for a health check.

        ``size``: executors the pool keeps; ``alive``: executor processes
        running now (one that died while free is dropped and replaced when a
        request reaches it); ``idle``: those free for a request; ``starting``:
        replacements on their way; ``replaced``: executors dropped since the
        pool started, because they died or stopped answering;
        ``start_failures``: replacements that did not start (each is tried
        again on the next request).
        """
        with self._lock:
            return {
                "size": self._size,
                "alive": sum(executor.alive() for executor in self._all),
                "idle": len(self._idle),
                "starting": self._starting,
                "replaced": self._replaced,
                "start_failures": self._start_failures,
            }

    def pids(self, *, busy_only: bool = False) -> list[int]:
        """The process ids of the pool's executors (only those running a request with `busy_only`).

        For operators and tests: to find an executor's process and its resource use. Read-only.
        """
        with self._lock:
            return [executor.pid for executor in self._all if not busy_only or executor not in self._idle]

    def execute(
        self,
        action: CompiledAction,
        handler: str,
        event: Mapping[str, Any],
        *,
        secrets: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        cache: Mapping[str, Any] | None = None,
        seed: bytes | None = None,
        now_ms: float | None = None,
        replay_host_calls: list[dict[str, Any]] | None = None,
    ) -> ExecutionResult:
        """Run one execution on a free executor; blocks until it is done. Thread-safe.

        Raises :class:`PlatformError` when the executor dies or overruns its
        deadline (the action's ``wall_ms`` plus the pool's margin).
        """
        request = self._execution_request(
            action, handler, event, secrets=secrets, limits=limits, cache=cache, seed=seed, now_ms=now_ms,
            replay_host_calls=replay_host_calls,
        )  # fmt: skip
        return request.result(self._ask(request.request_for, **request.ask))

    async def execute_async(
        self,
        action: CompiledAction,
        handler: str,
        event: Mapping[str, Any],
        *,
        secrets: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        cache: Mapping[str, Any] | None = None,
    ) -> ExecutionResult:
        """:meth:`execute` for a caller on an asyncio event loop (the server).

        The request is written and the answer awaited on the loop itself, and
        when every executor is busy the wait for one is on the loop too: no
        hop to a worker thread and back, which costs more than the pipe and,
        under load, contends with the loop for the interpreter.
        """
        request = self._execution_request(action, handler, event, secrets=secrets, limits=limits, cache=cache)
        return request.result(await self._ask_async(request.request_for, **request.ask))

    async def _ask_async(
        self,
        request_for: Callable[..., bytes],
        *,
        wall_ms: int,
        build_id: str | None = None,
        action_key: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`_ask` for a caller on the running event loop: a free executor now, else the wait for one
        on the loop, in arrival order; then the answer."""
        loop = asyncio.get_running_loop()
        call = _AsyncCall(loop, request_for, wall_ms=wall_ms, build_id=build_id, action_key=action_key)
        failures = self._start_failures
        while True:
            taken = self._acquire(1, wait=False, failures=failures)
            if taken:
                self._start(call, taken[0])
                break
            if self._queue_behind(call):
                break
            handed = call.handed = loop.create_future()
            with self._lock:
                # Checked again under the lock that releases take: nothing freed is missed in between.
                ready = self._idle or self._closed or (not self._all and self._start_failures > failures)
                if not ready:
                    self._async_waiters.append(call)
            if ready:
                continue
            try:
                if await handed:
                    break
            except BaseException:
                with self._lock:
                    if call in self._async_waiters:
                        self._async_waiters.remove(call)
                raise
        return await call.answer

    def _execution_request(
        self,
        action: CompiledAction,
        handler: str,
        event: Mapping[str, Any],
        *,
        secrets: Mapping[str, str] | None,
        limits: Limits | None,
        cache: Mapping[str, Any] | None,
        seed: bytes | None = None,
        now_ms: float | None = None,
        replay_host_calls: list[dict[str, Any]] | None = None,
    ) -> _Request:
        if self._closed:
            raise PlatformError("the executor pool is closed")
        limits = limits or Limits()
        try:
            # Packed here, once: the executor hands these bytes to the guest as they are.
            guest = pack_request(action.trigger, handler, event, secrets=secrets, cache=cache)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the event is not JSON-like data: {exc}") from None
        fields: dict[str, Any] = {
            "guest": guest,
            "limits": limits.as_dict(),
            "seed": seed,
            "now_ms": now_ms,
            "replay_host_calls": replay_host_calls,
        }
        key = action.bytecode_sha256

        def request_for(executor: _Executor, *, full: bool = False) -> bytes:
            # An executor keeps the actions it ran: most requests name the action instead of carrying it.
            named = key in executor.actions and not full
            packed: bytes = msgpack.packb(
                {**fields, "action_ref": key} if named else {**fields, "action": action.to_wire()}
            )
            return packed

        ask = {"wall_ms": limits.wall_ms, "build_id": action.build_id, "action_key": key}
        return _Request(request_for, ask, limits)

    def compile(
        self, source: str | bytes, *, trigger: str, limits: Limits | None = None, max_source_bytes: int = 100 * 1024
    ) -> CompiledAction:
        """Compile on a free executor (tenant code runs there, never in the caller)."""
        if self._closed:
            raise PlatformError("the executor pool is closed")
        limits = limits or Limits()
        request = msgpack.packb(
            {
                "compile": {
                    "source": source,
                    "trigger": trigger,
                    "limits": limits.as_dict(),
                    "max_source_bytes": max_source_bytes,
                }
            }
        )
        reply = self._ask(lambda executor, full=False: request, wall_ms=limits.wall_ms)
        if "error" in reply:
            raise error_from_dict(reply["error"])
        return CompiledAction.from_wire(reply["action"])

    def environments(self) -> list[list[str]]:
        """The names in each executor's environment (waits until every executor is free)."""
        executors = self._acquire(self._size)
        probe = msgpack.packb({"probe": True})
        names = []
        for index, executor in enumerate(executors):
            try:
                reply = self._exchange(executor, probe, self._margin_s)
            except BaseException:
                for rest in executors[index + 1 :]:
                    self._release(rest)
                raise
            self._release(executor)
            names.append(list(reply["environment"]))
        return names

    def _ask(
        self,
        request_for: Callable[..., bytes],
        *,
        wall_ms: int,
        build_id: str | None = None,
        action_key: str | None = None,
    ) -> dict[str, Any]:
        """One request on a free executor, with its deadline.

        `request_for(executor, full=...)` makes the request for the executor
        that was free; `build_id` is the bytecode's engine build; `action_key`
        names the action the executor will then keep.
        """
        (executor,) = self._acquire(1)
        timeout_s = self._deadline_s(executor, wall_ms, build_id)
        reply = self._exchange(executor, request_for(executor), timeout_s)
        if reply.get("unknown_action"):
            # The executor no longer keeps it (it can only have forgotten it): send it whole.
            reply = self._exchange(executor, request_for(executor, full=True), timeout_s)
        self._done(executor, action_key)
        return reply

    # -- event-loop callers: requests written as executors take them, answers read by callbacks --

    def _queue_behind(self, call: _AsyncCall) -> bool:
        """Write `call` behind the one request of a busy executor of its loop, if one has room; whether it was.

        Only behind a request sent moments ago (_PIPELINE_FRESH_S), which is
        most likely an ordinary short execution, and only a request that fits
        the pipe's buffer while the executor is busy: a caller queued behind
        a slow execution waits for it (the wait for a free executor would
        have ended sooner only with several executors per loop).
        """
        now = time.monotonic()
        with self._lock:
            if self._closed or self._async_waiters:  # first come, first served: those waiting go first
                return False
            candidates = [
                executor for executor in self._all
                if len(executor.calls) == 1 and executor.calls[0].loop is call.loop
                and now - executor.calls[0].sent < _PIPELINE_FRESH_S
            ]  # fmt: skip
        for executor in candidates:
            request = call.request_for(executor)
            if len(request) <= _PIPELINE_MAX_BYTES:
                self._start(call, executor, request)
                return True
        return False

    def _start(self, call: _AsyncCall, executor: _Executor, request: bytes | None = None) -> None:
        """Write `call`'s request to `executor` (free, or running one request for the same loop); on its loop."""
        executor.calls.append(call)
        call.sent = time.monotonic()
        try:
            executor.conn.send_bytes(request if request is not None else call.request_for(executor))
            if len(executor.calls) == 1:
                self._await_answer(executor)
        except Exception as exc:  # every failure ends the calls, never the loop
            self._executor_failed(executor, exc)

    def _await_answer(self, executor: _Executor) -> None:
        """Read the answer to the first of `executor`'s calls when it comes, within its deadline."""
        executor.calls[0].loop.add_reader(executor.conn.fileno(), self._answered, executor)
        self._arm_deadline(executor)

    def _arm_deadline(self, executor: _Executor) -> None:
        """The deadline of the call `executor` runs now (its first), replacing the last one's."""
        if executor.deadline is not None:
            executor.deadline.cancel()
        call = executor.calls[0]
        timeout_s = self._deadline_s(executor, call.wall_ms, call.build_id)
        executor.deadline = call.loop.call_later(timeout_s, self._overdue, executor, timeout_s)

    def _answered(self, executor: _Executor) -> None:
        """The reader callback: the answer to `executor`'s first call."""
        if not executor.calls:
            return
        call = executor.calls[0]
        try:
            reply: dict[str, Any] = msgpack.unpackb(executor.conn.recv_bytes())
        except Exception as exc:
            self._executor_failed(executor, exc)
            return
        executor.calls.popleft()
        again = bool(reply.get("unknown_action")) and not call.resent
        if again:
            # The executor no longer keeps the action (it can only have forgotten it): send it whole,
            # behind whatever is queued in the pipe already.
            call.resent = True
            executor.calls.append(call)
            try:
                executor.conn.send_bytes(call.request_for(executor, full=True))
            except Exception as exc:
                self._executor_failed(executor, exc)
                return
        else:
            self._note_action(executor, call.action_key)
        if executor.calls:
            self._arm_deadline(executor)
            if len(executor.calls) == 1:
                self._queue_waiting(executor, call.loop)
        else:
            self._stop_waiting_for(executor, call.loop)
            self._release(executor)  # the next waiting call is sent before this caller wakes
        if not again:
            call.settle(reply)

    def _queue_waiting(self, executor: _Executor, loop: asyncio.AbstractEventLoop) -> None:
        """`executor` has just started the request queued in its pipe: queue the longest-waiting call of
        `loop` behind it, if it fits the pipe."""
        with self._lock:
            call = next((waiting for waiting in self._async_waiters if waiting.loop is loop), None)
            if call is None:
                return
            self._async_waiters.remove(call)
        if call.handed is None or call.handed.done() or call.answer.done():
            return  # its caller gave up
        request = call.request_for(executor)
        if len(request) > _PIPELINE_MAX_BYTES:
            with self._lock:
                self._async_waiters.appendleft(call)
            return
        call.handed.set_result(True)
        self._start(call, executor, request)

    def _stop_waiting_for(self, executor: _Executor, loop: asyncio.AbstractEventLoop) -> None:
        with contextlib.suppress(OSError, ValueError):  # a pipe closed meanwhile has no reader left
            loop.remove_reader(executor.conn.fileno())
        if executor.deadline is not None:
            executor.deadline.cancel()
            executor.deadline = None

    def _overdue(self, executor: _Executor, timeout_s: float) -> None:
        executor.deadline = None
        if executor.calls:
            self._executor_failed(executor, _NoAnswer(), timeout_s)

    def _executor_failed(self, executor: _Executor, exc: BaseException, timeout_s: float | None = None) -> None:
        """`executor` died, stalled or broke its pipe: its first call fails closed; the calls queued behind it,
        which it had not started, go to another executor."""
        head = executor.calls.popleft()
        queued = list(executor.calls)
        executor.calls.clear()
        self._stop_waiting_for(executor, head.loop)
        if timeout_s is None:
            timeout_s = self._deadline_s(executor, head.wall_ms, head.build_id)
        head.fail(self._lost(executor, exc, timeout_s, head.sent))
        for call in reversed(queued):  # first in the queue of waiting calls, in their order
            self._send_again(call)

    def _send_again(self, call: _AsyncCall) -> None:
        """A call whose executor failed before it started: to a free executor, else first among the waiting."""
        try:
            taken = self._acquire(1, wait=False)
        except PlatformError as exc:  # the pool closed
            call.fail(exc)
            return
        if taken:
            self._start(call, taken[0])
            return
        call.resubmitted = True
        call.handed = call.loop.create_future()  # nobody awaits it: _deliver starts the call
        with self._lock:
            if not self._closed:
                self._async_waiters.appendleft(call)
                return
        call.fail(PlatformError("the executor pool is closed"))

    def _deadline_s(self, executor: _Executor, wall_ms: int, build_id: str | None) -> float:
        """How long to wait for an answer: the wall-clock limit, the margin, and a recompilation if due."""
        timeout_s = wall_ms / 1000 + self._margin_s
        if build_id is not None and build_id != executor.build_id:
            timeout_s += _RECOMPILE_ALLOWANCE_S
        return timeout_s

    def _done(self, executor: _Executor, action_key: str | None) -> None:
        """An executor answered: note the action it now keeps and give it back."""
        self._note_action(executor, action_key)
        self._release(executor)

    @staticmethod
    def _note_action(executor: _Executor, action_key: str | None) -> None:
        if action_key is not None:
            if len(executor.actions) >= _ACTIONS_NAMED:
                executor.actions.clear()
            executor.actions.add(action_key)

    def _exchange(self, executor: _Executor, request: bytes, timeout_s: float) -> dict[str, Any]:
        """Send `request` to a held executor and read its reply within `timeout_s`."""
        with self._conversation(executor, timeout_s):
            executor.conn.send_bytes(request)
            if not executor.conn.poll(timeout_s):
                raise _NoAnswer
            reply: dict[str, Any] = msgpack.unpackb(executor.conn.recv_bytes())
            return reply

    @contextlib.contextmanager
    def _conversation(self, executor: _Executor, timeout_s: float) -> Iterator[None]:
        """One request and its reply with a held executor; see :meth:`_lost` for how one fails."""
        started = time.monotonic()
        try:
            yield
        except BaseException as exc:
            raise self._lost(executor, exc, timeout_s, started) from None

    def _lost(self, executor: _Executor, exc: BaseException, timeout_s: float, started: float) -> BaseException:
        """A conversation with `executor` failed with `exc`: drop the executor and say why; what to raise.

        An executor that dies, stalls or is interrupted mid-conversation is
        dropped: its pipe may still carry a late reply, which must never be
        read as the answer to someone else's request. Its failures become
        :class:`PlatformError`; anything else (an interruption) is raised as it is.
        """
        self._discard(executor)
        if isinstance(exc, _NoAnswer):
            log.error(
                "executor pid %d did not answer within %.2f s (the request's wall-clock limit plus a %.1f s margin); "
                "killed it, a replacement is starting",
                executor.pid, timeout_s, self._margin_s,
            )  # fmt: skip
            return PlatformError("The executor running the action stopped answering; it was replaced")
        if isinstance(exc, BlockingIOError):
            log.error(
                "executor pid %d stopped reading its requests (a write stalled for %.1f s); "
                "killed it, a replacement is starting",
                executor.pid, self._margin_s,
            )  # fmt: skip
            return PlatformError("The executor running the action stopped answering; it was replaced")
        if isinstance(exc, EOFError | OSError):
            log.error(
                "executor pid %d died or closed its pipe %.2f s into a request (%s); a replacement is starting",
                executor.pid, time.monotonic() - started, type(exc).__name__,
            )  # fmt: skip
            return PlatformError("The executor running the action failed; it was replaced")
        return exc

    def _acquire(self, count: int, *, wait: bool = True, failures: int | None = None) -> list[_Executor]:
        """Take `count` free executors at once, waiting for them (or, without `wait`, none if none is free).

        The executor freed last is taken first, so that under light load the
        same warm process answers. Every request is a chance to start the
        replacements the pool lacks, so a pool whose replacements failed to
        start grows back once starting works again. Every free executor is
        checked here, so that one that died while free is replaced at once
        and no request is sent to it. Fails closed, rather than
        waiting on, when too few executors are alive and a replacement failed
        to start meanwhile (since `failures` start failures, when given).
        """
        wakeup = self._freed if count == 1 else self._all_freed
        with self._lock:
            if failures is None:
                failures = self._start_failures
            while True:
                if self._closed:
                    raise PlatformError("the executor pool is closed")
                self._refill_locked()
                if len(self._idle) >= count:
                    dead = [executor for executor in self._idle if not executor.alive()]
                    if not dead:
                        # The executor that answered last first: its caches are warm.
                        return [self._idle.pop() for _ in range(count)]
                    for executor in dead:
                        log.error("executor pid %d died while idle (%s)", executor.pid, executor.ending())
                        self._idle.remove(executor)
                        self._discard_locked(executor)
                    continue
                if len(self._all) < count and self._start_failures > failures:
                    raise PlatformError("No executor could be started to run the action; try again")
                if not wait:
                    return []
                wakeup.wait()

    def _release(self, executor: _Executor) -> None:
        """Give back an executor that answered; after close() it is stopped instead.

        A call waiting on the caller's own event loop gets it at once: its
        request is sent before this returns.
        """
        with self._lock:
            closed = self._closed
            waiting_here = None if closed else self._free_locked(executor, here=_running_loop())
        if closed:
            executor.stop()
        elif waiting_here is not None:
            self._deliver(waiting_here, executor)

    def _free_locked(self, executor: _Executor, *, here: asyncio.AbstractEventLoop | None = None) -> _AsyncCall | None:
        """An executor is free: to the longest-waiting event-loop call if there is one, else idle.

        A call waiting on `here` (the running loop of the thread that frees
        the executor) is returned, for the caller to deliver to once the lock
        is released; the others are delivered on their own loops.
        """
        while self._async_waiters:
            call = self._async_waiters.popleft()
            if call.loop is here:
                return call
            if _call_on(call.loop, self._deliver, call, executor):
                return None  # else its loop is closed: nobody is waiting there any more
        self._idle.append(executor)
        self._notify_locked()
        return None

    def _discard(self, executor: _Executor) -> None:
        with self._lock:
            self._discard_locked(executor)

    def _discard_locked(self, executor: _Executor) -> None:
        """Kill a held executor, forget it and start its replacement."""
        executor.kill()
        self._all.remove(executor)
        self._replaced += 1
        self._refill_locked(reap=executor)

    def _refill_locked(self, *, reap: _Executor | None = None) -> None:
        """Start replacements for the executors the pool lacks (none after close())."""
        while not self._closed and len(self._all) + self._starting < self._size:
            self._starting += 1
            threading.Thread(
                target=self._start_replacement, args=(reap,), name="tollgate-executor-start", daemon=True
            ).start()
            reap = None

    def _start_replacement(self, dead: _Executor | None) -> None:
        """In a thread of its own: collect the dropped process, start another, add it to the pool."""
        try:
            if dead is not None:
                dead.reap()
                log.warning("executor pid %d is gone (%s)", dead.pid, dead.ending())
            fresh = self._new_executor()
            try:
                fresh.wait_ready(self._start_timeout_s)
            except BaseException:
                fresh.kill()
                fresh.reap()
                raise
        except Exception as exc:
            with self._lock:
                self._starting -= 1
                self._start_failures += 1
                running, closed = len(self._all), self._closed
                # Callers waiting for an executor that may now never come fail closed.
                self._freed.notify_all()
                self._all_freed.notify_all()
                self._wake_async_waiters_locked()
            if not closed:
                log.error(
                    "a replacement executor did not start (%s); %d of %d executors running, "
                    "the next request tries again",
                    exc,
                    running,
                    self._size,
                )
            return
        with self._lock:
            self._starting -= 1
            closed = self._closed
            if not closed:
                self._all.append(fresh)
                self._free_locked(fresh)
            running = len(self._all)
        if closed:
            fresh.stop()
        else:
            log.info("replacement executor pid %d ready; %d of %d executors running", fresh.pid, running, self._size)

    def _notify_locked(self) -> None:
        self._freed.notify()
        if len(self._idle) == self._size:
            self._all_freed.notify_all()

    def _deliver(self, call: _AsyncCall, executor: _Executor) -> None:
        """On the call's loop: send its request with `executor`, or give the executor back if the caller gave up
        meanwhile."""
        if call.handed is None or call.handed.done() or call.answer.done():
            self._release(executor)
        else:
            call.handed.set_result(True)
            self._start(call, executor)

    def _wake_async_waiters_locked(self) -> None:
        """Wake every event-loop caller waiting for an executor, to look again (the pool closed, or a start failed)."""
        while self._async_waiters:
            call = self._async_waiters.popleft()
            if call.resubmitted:  # nobody would look again for it: it fails closed
                error = PlatformError("No executor could take the action's request; try again")
                _call_on(call.loop, call.fail, error)
            elif call.handed is not None:
                _call_on(call.loop, _look_again, call.handed)

    def _new_executor(self) -> _Executor:
        return _Executor(self._ctx, send_timeout_s=self._margin_s)

    def close(self) -> None:
        """Stop every executor; requests still running fail with PlatformError. Idempotent.

        A replacement still starting stops itself once it is ready.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle = list(self._idle)
            busy = [executor for executor in self._all if executor not in idle]
            self._idle.clear()
            self._freed.notify_all()
            self._all_freed.notify_all()
            self._wake_async_waiters_locked()
        for executor in busy:  # their callers see the pipe break and drop them
            executor.process.kill()
            executor.reap()
        for executor in idle:
            executor.stop()

    def __enter__(self) -> ExecutorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
