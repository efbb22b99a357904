"""Executions in a pool of executor processes, one engine each.

The server hands executions to the pool so that all cores are used and a
crash inside an execution takes down one executor, never the server: the
executor is replaced and the execution fails with a platform error.

Executors are started with ``spawn`` (no state of the server is inherited)
and drop the platform's credentials from their environment at start: an
executor runs tenant code and never talks to the database. Requests and
results cross the pipe as msgpack.

Lifecycle: :class:`ExecutorPool` once per server process; each executor
loads the engine once at start (about a second on a cold machine, then from
the compiled-module cache); :meth:`ExecutorPool.execute` once per execution,
from any thread.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

import msgpack

from runtime.limits import Limits
from runtime.sandbox.compiler import CompiledAction
from runtime.sandbox.errors import PlatformError, error_from_dict
from runtime.sandbox.executor import ExecutionResult

__all__ = ["SCRUBBED_ENVIRONMENT", "ExecutorPool"]

log = logging.getLogger(__name__)

# What an executor must never hold.
SCRUBBED_ENVIRONMENT = ("DATABASE_URL", "TOLLGATE_MASTER_KEY", "TOLLGATE_OPERATOR_KEY", "PGPASSWORD")


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
    for name in SCRUBBED_ENVIRONMENT:
        os.environ.pop(name, None)
    from runtime.sandbox import _engine
    from runtime.sandbox.executor import execute

    _engine.engine()
    conn.send_bytes(msgpack.packb({"ready": os.getpid()}))
    while True:
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
        try:
            result = execute(
                CompiledAction.from_wire(request["action"]),
                request["handler"],
                request["event"],
                secrets=request["secrets"],
                limits=Limits(**request["limits"]),
                cache=request["cache"],
                seed=request["seed"],
                now_ms=request["now_ms"],
                replay_host_calls=request["replay_host_calls"],
            )
            reply: dict[str, Any] = {"result": result.to_wire()}
        except PlatformError as exc:
            reply = {"platform_error": exc.message}
        conn.send_bytes(msgpack.packb(reply))


class _Executor:
    def __init__(self, ctx: Any) -> None:
        parent, child = ctx.Pipe()
        self.conn: Connection = parent
        self.process = ctx.Process(target=_executor_main, args=(child,), name="tollgate-executor", daemon=True)
        self.process.start()
        child.close()

    def wait_ready(self, timeout_s: float) -> None:
        if not self.conn.poll(timeout_s):
            raise PlatformError("an executor did not start in time")
        msgpack.unpackb(self.conn.recv_bytes())

    def stop(self) -> None:
        self.conn.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class ExecutorPool:
    """A fixed number of executor processes; executions go to whichever is free."""

    def __init__(self, *, processes: int | None = None, start_timeout_s: float = 120.0) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._size = processes or os.cpu_count() or 1
        self._start_timeout_s = start_timeout_s
        self._idle: queue.Queue[_Executor] = queue.Queue()
        self._all: list[_Executor] = []
        self._lock = threading.Lock()
        self._closed = False
        started = time.perf_counter()
        executors = [_Executor(self._ctx) for _ in range(self._size)]
        for executor in executors:
            executor.wait_ready(start_timeout_s)
            self._all.append(executor)
            self._idle.put(executor)
        log.info(
            "%d executor process%s ready in %.1f s",
            self._size,
            "" if self._size == 1 else "es",
            time.perf_counter() - started,
        )

    @property
    def size(self) -> int:
        return self._size

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
        """Run one execution on a free executor; blocks until it is done. Thread-safe."""
        if self._closed:
            raise PlatformError("the executor pool is closed")
        request = msgpack.packb(
            {
                "action": action.to_wire(),
                "handler": handler,
                "event": dict(event),
                "secrets": dict(secrets) if secrets is not None else None,
                "limits": (limits or Limits()).as_dict(),
                "cache": dict(cache or {}),
                "seed": seed,
                "now_ms": now_ms,
                "replay_host_calls": replay_host_calls,
            }
        )
        reply = self._ask(request)
        if "platform_error" in reply:
            raise PlatformError(reply["platform_error"])
        return ExecutionResult.from_wire(reply["result"])

    def _ask(self, request: bytes) -> dict[str, Any]:
        executor = self._idle.get()
        try:
            executor.conn.send_bytes(request)
            reply: dict[str, Any] = msgpack.unpackb(executor.conn.recv_bytes())
            return reply
        except (EOFError, OSError):
            log.error("an executor died (exit code %s); replacing it", executor.process.exitcode)
            executor = self._replace(executor)
            raise PlatformError("The executor running the action failed; try again") from None
        finally:
            self._idle.put(executor)

    def compile(
        self, source: str | bytes, *, trigger: str, limits: Limits | None = None, max_source_bytes: int = 100 * 1024
    ) -> CompiledAction:
        """Compile on a free executor (tenant code runs there, never in the caller)."""
        if self._closed:
            raise PlatformError("the executor pool is closed")
        reply = self._ask(
            msgpack.packb(
                {
                    "compile": {
                        "source": source,
                        "trigger": trigger,
                        "limits": (limits or Limits()).as_dict(),
                        "max_source_bytes": max_source_bytes,
                    }
                }
            )
        )
        if "error" in reply:
            raise error_from_dict(reply["error"])
        return CompiledAction.from_wire(reply["action"])

    def environments(self) -> list[list[str]]:
        """The names in each executor's environment (waits until every executor is free)."""
        executors = [self._idle.get() for _ in range(self._size)]
        try:
            names = []
            for executor in executors:
                executor.conn.send_bytes(msgpack.packb({"probe": True}))
                names.append(list(msgpack.unpackb(executor.conn.recv_bytes())["environment"]))
            return names
        finally:
            for executor in executors:
                self._idle.put(executor)

    def _replace(self, dead: _Executor) -> _Executor:
        dead.stop()
        fresh = _Executor(self._ctx)
        fresh.wait_ready(self._start_timeout_s)
        with self._lock:
            self._all[self._all.index(dead)] = fresh
        return fresh

    def close(self) -> None:
        """Stop every executor. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for executor in self._all:
            executor.stop()

    def __enter__(self) -> ExecutorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
