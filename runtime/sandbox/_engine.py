"""One guest call in one fresh instance, with its traps turned into errors.

:func:`engine` is once per process (fork-aware: a forked executor makes its
own). :func:`preloaded` is once per action and process: it loads the action's
bytecode in a fresh instance and keeps the memory pages that changed.
:func:`guest_call` is once per compile or execution: it makes the instance
(with an action's pages copied in), writes the input record, makes the one
call, reads the status block and the output, and drops the instance.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime import engine as built_engine
from runtime.engine import STACK_BYTES, wasm_binary
from runtime.limits import KiB, Limits, MiB
from runtime.sandbox import _protocol as proto
from runtime.sandbox._wasmtime import (
    PAGE_BYTES,
    TRAP_INTERRUPT,
    TRAP_MEMORY_OUT_OF_BOUNDS,
    TRAP_OUT_OF_FUEL,
    TRAP_STACK_OVERFLOW,
    TRAP_UNREACHABLE,
    GuestTrap,
    Instance,
    Pages,
    PoolSettings,
    WasmEngine,
    WasmFailure,
)
from runtime.sandbox.errors import (
    ActionLimitExceeded,
    ActionProtocolError,
    ActionTimeout,
    PlatformError,
    SandboxError,
)

log = logging.getLogger(__name__)

# Heap the allocator may not hand to the action: the input record, the
# output text and the allocator's own bookkeeping live there.
HEAP_RESERVE_BYTES = 256 * KiB
MAX_HOST_REQUEST_BYTES = 64 * KiB
KEEP_RESIDENT_HEADROOM_BYTES = 1 * MiB
# An upper bound on the bytes wasmtime's pooling allocator gives a table element.
TABLE_ELEMENT_BYTES = 16
HOST_PAGE_BYTES = 4096
MAX_OP_BYTES = 64

# A host call answers a JSON request with a JSON-able response.
HostFunction = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class EngineHandle:
    """The process's engine and what it learnt about the module's layout."""

    wasm: WasmEngine
    build_id: str
    status_address: int
    base_memory_bytes: int
    input_ptr: int
    input_cap: int
    # A fresh instance's memory, and the actions loaded ahead (see preloaded()).
    pristine: bytes = b""
    preloads: OrderedDict[str, Pages | None] = field(default_factory=OrderedDict)
    preloads_lock: threading.Lock = field(default_factory=threading.Lock)
    # The actions being loaded ahead now, each by the one thread that loads it (the others wait for it).
    preloading: dict[str, threading.Lock] = field(default_factory=dict)


_lock = threading.Lock()
_handle: EngineHandle | None = None


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tollgate" / "compiled"


def pool_settings(module: bytes) -> PoolSettings:
    """Keep the snapshot's memory (and room to grow) and its table resident between executions.

    After each execution wasmtime restores the kept part of a memory slot
    from the snapshot. Measured on this project's machines, that costs about
    16 µs per MiB of snapshot, written to or not (the memory beyond the
    snapshot's size costs nothing until an execution grows into it); a page
    that is not kept instead faults on its next use, about 3 µs each, and an
    execution of the seed action touches some 40. Keeping the whole snapshot
    resident is the faster side. ``TOLLGATE_KEEP_RESIDENT_BYTES`` overrides.

    The function table (a few KiB) is zeroed in place rather than released:
    released, it costs an ``madvise`` (with a TLB flush on every core) at
    each drop and fresh zero pages, each a fault, at the next instantiation.
    """
    default = wasm_binary.memory_minimum_bytes(module) + KEEP_RESIDENT_HEADROOM_BYTES
    keep = int(os.environ.get("TOLLGATE_KEEP_RESIDENT_BYTES", str(default)))
    table_bytes = wasm_binary.table_elements(module) * TABLE_ELEMENT_BYTES
    table_keep = -(-table_bytes // HOST_PAGE_BYTES) * HOST_PAGE_BYTES
    return PoolSettings(keep_resident_bytes=keep, table_keep_resident_bytes=table_keep)


def _forget_after_fork() -> None:
    """In a forked child: the parent's engine (its threads did not come along) is not this process's."""
    global _handle, _lock
    _handle = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def engine() -> EngineHandle:
    """The engine of this process, made on first use (and again in a forked child)."""
    global _handle
    handle = _handle
    if handle is not None:
        return handle
    with _lock:
        if _handle is not None:
            return _handle
        try:
            built = built_engine.load()
        except built_engine.EngineNotBuilt as exc:
            raise PlatformError(str(exc)) from None
        wasm = WasmEngine(
            built.module, lifecycle=built.lifecycle, cache_dir=_cache_dir(), pool=pool_settings(built.module)
        )
        with wasm.instance(fuel=1_000_000, wall_ms=1_000, memory_bytes=64 * MiB) as probe:
            pristine = probe.read(0, probe.memory_size())
            address = probe.call(b"tg_status")
            status = proto.Status.parse(probe.read(address, proto.STATUS.size))
            base = probe.memory_size()
        _handle = EngineHandle(
            wasm=wasm,
            build_id=built.build_id,
            status_address=address,
            base_memory_bytes=base,
            input_ptr=status.input_ptr,
            input_cap=status.input_cap,
            pristine=pristine,
        )
        log.info("sandbox engine ready: build %s, %d KiB per fresh instance", built.build_id[:12], base // KiB)
        return _handle


def minimum_memory_bytes() -> int:
    """The least `memory_bytes` an execution can run with."""
    return engine().base_memory_bytes + HEAP_RESERVE_BYTES + 1 * MiB


@dataclass(slots=True)
class GuestCall:
    """What one call returned. `stopped` is set when a limit or trap ended it."""

    status: proto.Status
    output: bytes
    aux: bytes
    fuel_used: int
    memory_bytes: int
    duration_us: int
    host_calls: list[dict[str, Any]]
    logs: bytes = b""
    commands: bytes = b""
    stopped: SandboxError | None = None


def _trap_error(trap: GuestTrap, status: proto.Status | None, limits: Limits) -> SandboxError:
    if trap.code == TRAP_OUT_OF_FUEL:
        return ActionTimeout(f"The action used all of its fuel ({limits.fuel:,} instructions)", limit="fuel")
    if trap.code == TRAP_INTERRUPT:
        return ActionTimeout(f"The action ran longer than its time limit of {limits.wall_ms:,} ms", limit="wall_ms")
    if trap.code == TRAP_UNREACHABLE and status is not None and status.abort_reason:
        return proto.abort_error(status.abort_reason, limits)
    if trap.code in (TRAP_STACK_OVERFLOW, TRAP_MEMORY_OUT_OF_BOUNDS):
        return ActionLimitExceeded("The action exhausted the sandbox's stack (runaway recursion)", limit="stack_bytes")
    log.error("the sandbox engine trapped unexpectedly: %s", trap)
    return PlatformError("The sandbox's engine failed while running the action")


class _HostCalls:
    """Answers the guest's host calls for one execution, and records them."""

    __slots__ = ("functions", "handle", "record")

    def __init__(self, handle: EngineHandle, functions: Mapping[str, HostFunction]) -> None:
        self.handle = handle
        self.functions = functions
        self.record: list[dict[str, Any]] = []

    def __call__(self, inst: Instance, op_ptr: int, op_len: int, req_ptr: int, req_len: int) -> int:
        if op_len > MAX_OP_BYTES or req_len > MAX_HOST_REQUEST_BYTES:
            return -1
        op = inst.read(op_ptr, op_len).decode("utf-8", "replace")
        function = self.functions.get(op)
        if function is None:
            return -1
        request = json.loads(inst.read(req_ptr, req_len))
        if not isinstance(request, dict):
            return -1
        response = function(request)
        answer = json.dumps(response, separators=(",", ":")).encode()
        # The guest makes its answer buffer on its first host call and says where in its status block.
        status = proto.Status.parse(inst.read(self.handle.status_address, proto.STATUS.size))
        if not status.hostbuf_ptr or len(answer) > status.hostbuf_cap:
            return -1
        inst.write(status.hostbuf_ptr, answer)
        self.record.append({"op": op, "response": response})
        return len(answer)


def heap_bytes(handle: EngineHandle, limits: Limits) -> int:
    allowed = limits.memory_bytes - handle.base_memory_bytes - HEAP_RESERVE_BYTES
    if allowed < 1 * MiB:
        raise PlatformError(f"memory_bytes must be at least {minimum_memory_bytes():,} on this engine")
    return allowed


# The most memory the pages of actions loaded ahead may take in one process.
PRELOAD_CACHE_BYTES = 16 * MiB
PRELOAD_LIMITS = Limits()


def _preload(handle: EngineHandle, bytecode: bytes) -> Pages | None:
    """The pages that loading `bytecode` changes in a fresh instance, or None if it cannot be loaded ahead.

    tg_preload reads the bytecode and makes the action's module wrapper
    (none of the action's code runs); every page it changed, but for the
    shadow stack (dead once the call has returned), is kept. Copied into a
    fresh instance, they leave it as if it had loaded the action itself.
    """
    limits = PRELOAD_LIMITS
    payload = proto.encode_input(
        proto.MAGIC_PRELOAD, bytecode, b"", limits, heap_bytes=heap_bytes(handle, limits), seed=bytes(32), now_ms=0.0
    )
    try:
        with handle.wasm.instance(fuel=limits.fuel, wall_ms=limits.wall_ms, memory_bytes=limits.memory_bytes) as inst:
            at = handle.input_ptr if len(payload) <= handle.input_cap else 0
            inst.call(b"tg_preload", data=payload, at=at)
            after = memoryview(inst.read(0, inst.memory_size()))
    except (GuestTrap, WasmFailure) as exc:
        log.warning("an action could not be loaded ahead; it loads in each execution: %s", exc)
        return None
    # Memory the loading grew into started as zeros.
    before = memoryview(handle.pristine + bytes(max(0, len(after) - len(handle.pristine))))
    changed = [
        (n, bytes(after[n * PAGE_BYTES : (n + 1) * PAGE_BYTES]))
        for n in range(STACK_BYTES // PAGE_BYTES, len(after) // PAGE_BYTES)
        if after[n * PAGE_BYTES : (n + 1) * PAGE_BYTES] != before[n * PAGE_BYTES : (n + 1) * PAGE_BYTES]
    ]
    return Pages(changed, memory_bytes=len(after))


def _found(handle: EngineHandle, digest: str) -> bool:
    """Whether the action's pages are kept (then as the most recently used); preloads_lock is held."""
    if digest in handle.preloads:
        handle.preloads.move_to_end(digest)
        return True
    return False


def preloaded(handle: EngineHandle, bytecode: bytes, digest: str) -> Pages | None:
    """The pages of the action with this bytecode loaded ahead (made on first use, kept while they fit).

    Threads that ask for the same action at once load it once: the first
    loads it, the others wait and take its pages.
    """
    with handle.preloads_lock:
        if _found(handle, digest):
            return handle.preloads[digest]
        loading = handle.preloading.setdefault(digest, threading.Lock())
    with loading:
        with handle.preloads_lock:
            if _found(handle, digest):  # loaded by the thread this one waited for
                return handle.preloads[digest]
        try:
            pages = _preload(handle, bytecode)
        except BaseException:
            with handle.preloads_lock:
                handle.preloading.pop(digest, None)
            raise
        with handle.preloads_lock:
            handle.preloading.pop(digest, None)
            handle.preloads[digest] = pages
            kept = sum(p.nbytes for p in handle.preloads.values() if p is not None)
            while kept > PRELOAD_CACHE_BYTES and len(handle.preloads) > 1:
                _, dropped = handle.preloads.popitem(last=False)
                kept -= dropped.nbytes if dropped is not None else 0
    return pages


def guest_call(
    export: bytes,
    magic: int,
    code: bytes,
    request: bytes,
    limits: Limits,
    *,
    seed: bytes,
    now_ms: float,
    host_functions: Mapping[str, HostFunction] | None = None,
    pages: Pages | None = None,
) -> GuestCall:
    """Run one export on a fresh instance (with `pages` copied in first).

    A trap (a limit hit, a guest that stopped itself) comes back in
    ``stopped``, with the stats so far. A malformed answer or a platform
    failure raises.
    """
    handle = engine()
    payload = proto.encode_input(
        magic, code, request, limits, heap_bytes=heap_bytes(handle, limits), seed=seed, now_ms=now_ms
    )
    host_calls = _HostCalls(handle, host_functions) if host_functions else None
    started = time.perf_counter_ns()
    try:
        with handle.wasm.instance(
            fuel=limits.fuel,
            wall_ms=limits.wall_ms,
            memory_bytes=limits.memory_bytes,
            host_call=host_calls,
            pages=pages,
        ) as inst:
            # Large inputs get a buffer from the guest's allocator (at=0).
            at = handle.input_ptr if len(payload) <= handle.input_cap else 0
            trap: GuestTrap | None = None
            try:
                inst.call(export, data=payload, at=at)
            except GuestTrap as exc:
                trap = exc
            status = proto.Status.parse(inst.read(handle.status_address, proto.STATUS.size))
            if status.log_len > limits.log_bytes or status.cmd_len > limits.output_bytes:
                raise ActionProtocolError("the sandbox wrote more than its limits allow")
            call = GuestCall(
                status=status,
                output=b"",
                aux=b"",
                fuel_used=inst.fuel_used(),
                memory_bytes=inst.memory_size(),
                duration_us=0,
                host_calls=host_calls.record if host_calls is not None else [],
                logs=inst.read(status.log_ptr, status.log_len) if status.log_len else b"",
            )
            if trap is not None:
                call.stopped = _trap_error(trap, status, limits)
                call.duration_us = (time.perf_counter_ns() - started) // 1000
                return call
            if status.out_len > proto.MAX_REPORT_BYTES:
                raise ActionProtocolError("the sandbox returned an oversized report")
            call.output = inst.read(status.out_ptr, status.out_len)
            if status.cmd_len:
                call.commands = inst.read(status.cmd_ptr, status.cmd_len)
            if status.aux_len:
                call.aux = inst.read(status.aux_ptr, status.aux_len)
    except GuestTrap as exc:  # a pointer from the guest was out of range
        raise ActionProtocolError(str(exc)) from None
    except WasmFailure as exc:
        log.error("wasmtime refused the execution: %s", exc)
        raise PlatformError("The sandbox could not be started") from None
    call.duration_us = (time.perf_counter_ns() - started) // 1000
    if status.fault:
        detail = proto.parse_json(call.output, "a failure report")
        message = detail.get("message", "") if isinstance(detail, dict) else str(detail)
        raise ActionProtocolError(f"The action broke the sandbox's runtime: {str(message)[:500]}")
    return call
