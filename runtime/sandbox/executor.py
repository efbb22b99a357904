"""Run one handler of a compiled action, once, in a fresh sandbox.

Once per execution: a fresh store and instance from the engine snapshot,
the action's bytecode loaded, ``Math.random`` reseeded from the host's
CSPRNG, the clock read once, the handler called with the event, the job
queue and virtual timers drained, one result returned, the instance
dropped. Nothing an execution does is visible to the next one.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from runtime.limits import Limits
from runtime.sandbox import _protocol as proto
from runtime.sandbox._engine import HostFunction, engine, guest_call, preloaded
from runtime.sandbox.compiler import CompiledAction, compile_action
from runtime.sandbox.errors import ActionError, SandboxError, error_from_dict
from runtime.triggers import host_functions as trigger_host_functions

__all__ = ["ExecutionResult", "Stats", "Trace", "execute", "execute_packed", "pack_request"]

DEFAULT_LIMITS = Limits()
# Run each action from its pages loaded ahead (see _engine.preloaded) rather than from its bytecode.
PRELOAD = True


@dataclass(frozen=True, slots=True)
class Stats:
    """What one execution used."""

    fuel_used: int
    memory_peak_bytes: int
    heap_peak_bytes: int
    duration_us: int
    host_calls: int

    def as_dict(self) -> dict[str, int]:
        return {
            "fuel_used": self.fuel_used,
            "memory_peak_bytes": self.memory_peak_bytes,
            "heap_peak_bytes": self.heap_peak_bytes,
            "duration_us": self.duration_us,
            "host_calls": self.host_calls,
        }


@dataclass(frozen=True, slots=True)
class Trace:
    """Everything outside the action that shaped an execution, for replay.

    Host call answers are recorded, their requests are not: a request can
    hold a secret.
    """

    seed: str
    now_ms: float
    host_calls: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "now_ms": self.now_ms, "host_calls": self.host_calls}


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """One execution's outcome: ``status`` is "completed" or "failed"."""

    status: str
    commands: list[dict[str, Any]]
    logs: list[dict[str, str]]
    error: SandboxError | None
    stats: Stats
    limits: Limits
    trace: Trace

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def as_dict(self) -> dict[str, Any]:
        """The result as the runner and the API show it."""
        return {
            "status": self.status,
            "commands": self.commands,
            "logs": self.logs,
            "error": None if self.error is None else self.error.to_dict(),
            "stats": {**self.stats.as_dict(), "limits": self.limits.as_dict()},
        }

    def to_wire(self) -> dict[str, Any]:
        """Everything in the result, as plain data (msgpack between processes, stored records)."""
        return {
            "status": self.status,
            "commands": self.commands,
            "logs": self.logs,
            "error": None if self.error is None else self.error.to_dict(),
            "stats": self.stats.as_dict(),
            "limits": self.limits.as_dict(),
            "trace": self.trace.as_dict(),
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], *, limits: Limits | None = None) -> ExecutionResult:
        """A result sent as :meth:`to_wire` wrote it; `limits`, when the receiver already holds them."""
        trace = data["trace"]
        return cls(
            status=str(data["status"]),
            commands=list(data["commands"]),
            logs=list(data["logs"]),
            error=None if data["error"] is None else error_from_dict(data["error"]),
            stats=Stats(**data["stats"]),
            limits=limits if limits is not None else Limits(**data["limits"]),
            trace=Trace(seed=trace["seed"], now_ms=trace["now_ms"], host_calls=list(trace["host_calls"])),
        )


class _Recompiled:
    """Bytecode belongs to one engine build; recompile older actions, once each."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], CompiledAction] = OrderedDict()

    def current(self, action: CompiledAction) -> CompiledAction:
        build_id = engine().build_id
        if action.build_id == build_id:
            return action
        key = (action.source_sha256, action.trigger)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached.build_id == build_id:
                self._cache.move_to_end(key)
                return cached
        fresh = compile_action(action.source, trigger=action.trigger)
        with self._lock:
            self._cache[key] = fresh
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return fresh


_recompiled = _Recompiled()


def _replayer(recorded: Sequence[Mapping[str, Any]]) -> dict[str, HostFunction]:
    """Host functions that answer with the recorded answers, in order."""
    queue = list(recorded)
    ops = {str(entry.get("op")) for entry in queue}

    def make(op: str) -> HostFunction:
        def answer(_request: dict[str, Any]) -> dict[str, Any]:
            if not queue or queue[0].get("op") != op:
                return {"error": "the action made a platform call that the recorded execution did not make"}
            response = queue.pop(0).get("response")
            return response if isinstance(response, dict) else {}

        return answer

    return {op: make(op) for op in ops}


def execute(
    action: CompiledAction,
    handler: str,
    event: Mapping[str, Any],
    *,
    secrets: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    cache: Mapping[str, Mapping[str, Any]] | None = None,
    host_functions: Mapping[str, HostFunction] | None = None,
    seed: bytes | None = None,
    now_ms: float | None = None,
    replay_host_calls: Sequence[Mapping[str, Any]] | None = None,
) -> ExecutionResult:
    """Run `handler` of `action` with `event`; never raises for what the action does.

    `secrets` become ``event.secrets``. `cache` is the tenant's live cache
    entries for the trigger (``{key: {"value", "expires_at"}}``). `seed`,
    `now_ms` and `replay_host_calls` are for replay; by default the seed
    comes from the CSPRNG and the clock from the system.
    A :class:`PlatformError` is raised only when the platform itself fails.
    """
    try:
        request = pack_request(action.trigger, handler, event, secrets=secrets, cache=cache)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the event is not JSON-like data: {exc}") from None
    return execute_packed(
        action, request, limits=limits, host_functions=host_functions, seed=seed, now_ms=now_ms,
        replay_host_calls=replay_host_calls,
    )  # fmt: skip


def pack_request(
    trigger: str,
    handler: str,
    event: Mapping[str, Any],
    *,
    secrets: Mapping[str, str] | None = None,
    cache: Mapping[str, Mapping[str, Any]] | None = None,
) -> bytes:
    """What the guest reads: the handler, the event with `secrets` as ``event.secrets``, the cache (msgpack).

    Made once by whoever has the event: the executor pool packs it in the
    server and the executor hands the bytes to the guest as they came.
    """
    full_event = dict(event)
    full_event["secrets"] = dict(secrets) if secrets is not None else dict(event.get("secrets") or {})
    packed: bytes = msgpack.packb(
        {"trigger": trigger, "handler": handler, "event": full_event, "cache": dict(cache or {})}
    )
    return packed


def execute_packed(
    action: CompiledAction,
    request: bytes,
    *,
    limits: Limits | None = None,
    host_functions: Mapping[str, HostFunction] | None = None,
    seed: bytes | None = None,
    now_ms: float | None = None,
    replay_host_calls: Sequence[Mapping[str, Any]] | None = None,
) -> ExecutionResult:
    """:func:`execute` with the guest's request already packed by :func:`pack_request`."""
    limits = limits or DEFAULT_LIMITS
    if host_functions is None:
        host_functions = trigger_host_functions(action.trigger)
    if replay_host_calls is not None:
        host_functions = _replayer(replay_host_calls)
    seed = seed if seed is not None else os.urandom(32)  # the CSPRNG (what secrets.token_bytes reads)
    if len(seed) != 32:
        raise ValueError("the seed must be 32 bytes")
    now_ms = float(now_ms if now_ms is not None else time.time() * 1000)
    action = _recompiled.current(action)  # its bytecode was checked against its digest when it was made

    # The action loaded ahead (its pages copied into the fresh instance), or its bytecode read in the run.
    pages = preloaded(engine(), action.bytecode, action.bytecode_sha256) if PRELOAD else None
    if pages is not None and pages.memory_bytes > limits.memory_bytes:
        pages = None  # loaded, it would not fit this execution's memory: load it in the run (and fail there)
    call = guest_call(
        b"tg_run",
        proto.MAGIC_RUN,
        b"" if pages is not None else action.bytecode,
        request,
        limits,
        seed=seed,
        now_ms=now_ms,
        host_functions=host_functions,
        pages=pages,
    )
    stats = Stats(
        fuel_used=call.fuel_used,
        memory_peak_bytes=call.memory_bytes,
        heap_peak_bytes=call.status.heap_peak_bytes,
        duration_us=call.duration_us,
        host_calls=call.status.host_calls,
    )
    trace = Trace(seed=seed.hex(), now_ms=now_ms, host_calls=call.host_calls)
    error: SandboxError | None = call.stopped
    commands: list[dict[str, Any]] = []
    logs: list[dict[str, str]] = []
    try:
        logs = proto.parse_logs(call.logs, call.status.log_count, limits)
        if error is None:
            outcome = proto.parse_outcome(call.output)
            error = outcome.error
            if error is None:
                commands = proto.parse_commands(call.commands, call.status.cmd_count, limits)
    except ActionError as exc:
        error = exc
    return ExecutionResult(
        status="completed" if error is None else "failed",
        commands=commands,
        logs=logs,
        error=error,
        stats=stats,
        limits=limits,
        trace=trace,
    )
