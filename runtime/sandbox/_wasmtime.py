"""Everything that touches wasmtime; no other module imports it.

Lifecycle, by how often each part runs:

- once per process: :class:`WasmEngine` - the engine (fuel and epoch
  interruption on, the pooling allocator), the epoch ticker thread, the
  compiled engine module (deserialised from the on-disk cache, compiled and
  cached on a miss), the linker with the host function, the pre-instance.
- once per execution: :meth:`WasmEngine.instance` - a fresh store with the
  execution's limits and an instance from the pool, whose memory starts as
  the engine snapshot (copy-on-write). One call into it, then it is dropped
  and its memory slot is reset before any reuse. A process that answers
  requests (an executor) may defer the drop, which costs some 30 µs of
  copying while wasmtime resets the slot, until its answer is sent:
  :attr:`WasmEngine.defer_drops` and :meth:`WasmEngine.drop_deferred`.

The hot path uses wasmtime's C API directly (``wasmtime._ffi``: unchecked
calls, a host function defined once, raw memory access), which is why the
wasmtime version is pinned exactly. Making an instance and calling into it
are one foreign call each, into ``lifecycle.c`` (built with the engine), which
makes the dozen calls into wasmtime that each would otherwise cost Python a
round of argument conversion. Raw memory access has no bounds check of its
own: :meth:`Instance.read` and :meth:`Instance.write` check every range
against the memory's current size first, and so does lifecycle.c.

wasmtime objects are not thread-safe: a store and its instance belong to the
thread that made them. Instances run one at a time per thread.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import wasmtime
from wasmtime import _ffi as ffi

__all__ = [
    "PAGE_BYTES",
    "WASMTIME_VERSION",
    "GuestTrap",
    "HostCall",
    "Instance",
    "Pages",
    "WasmEngine",
    "WasmFailure",
    "pre_initialise",
]

log = logging.getLogger(__name__)

WASMTIME_VERSION = importlib.metadata.version("wasmtime")

TRAP_STACK_OVERFLOW = wasmtime.TrapCode.STACK_OVERFLOW.value
TRAP_MEMORY_OUT_OF_BOUNDS = wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS.value
TRAP_UNREACHABLE = wasmtime.TrapCode.UNREACHABLE.value
TRAP_INTERRUPT = wasmtime.TrapCode.INTERRUPT.value
TRAP_OUT_OF_FUEL = wasmtime.TrapCode.OUT_OF_FUEL.value
PAGE_BYTES = 4096  # what lifecycle.c copies in (TG_PAGE_BYTES): a host page


class WasmFailure(Exception):
    """wasmtime refused an operation (not a trap in guest code)."""


class GuestTrap(Exception):
    """The guest trapped; `code` is a wasmtime trap code, or None."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code


# host_call(instance, a, b, c, d) -> i32: the guest's one import.
HostCall = Callable[["Instance", int, int, int, int], int]


def _error_message(error: ctypes._Pointer) -> str:  # type: ignore[type-arg]
    msg = ffi.wasm_byte_vec_t()
    ffi.wasmtime_error_message(error, ctypes.byref(msg))
    text = ctypes.string_at(msg.data, msg.size).decode("utf-8", "replace")
    ffi.wasm_byte_vec_delete(ctypes.byref(msg))
    ffi.wasmtime_error_delete(error)
    return text


def _trap(trap: ctypes._Pointer) -> GuestTrap:  # type: ignore[type-arg]
    code = ffi.wasmtime_trap_code_t()
    has_code = ffi.wasmtime_trap_code(trap, ctypes.byref(code))
    msg = ffi.wasm_byte_vec_t()
    ffi.wasm_trap_message(trap, ctypes.byref(msg))
    text = ctypes.string_at(msg.data, max(0, msg.size - 1)).decode("utf-8", "replace")
    ffi.wasm_byte_vec_delete(ctypes.byref(msg))
    ffi.wasm_trap_delete(trap)
    return GuestTrap(int(code.value) if has_code else None, text)


_local = threading.local()


@ffi.wasmtime_func_unchecked_callback_t  # type: ignore[untyped-decorator]
def _host_trampoline(env: int, caller: object, args: ctypes._Pointer, nargs: int) -> int:  # type: ignore[type-arg]
    """The guest's host_call import, defined once per process."""
    instance: Instance | None = getattr(_local, "instance", None)
    result = -1
    if instance is not None and instance.host_call is not None and nargs >= 4:
        try:
            instance._refresh()  # the guest may have grown its memory since the call began
            result = instance.host_call(
                instance,
                args[0].i32 & 0xFFFFFFFF,
                args[1].i32 & 0xFFFFFFFF,
                args[2].i32 & 0xFFFFFFFF,
                args[3].i32 & 0xFFFFFFFF,
            )
        except Exception:  # a failing host call is a refusal, never a crash
            log.exception("host call failed")
            result = -1
    args[0].i32 = result
    return 0


_HOST_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(0)


@dataclass(frozen=True, kw_only=True)
class PoolSettings:
    """The pooling allocator: memory slots reused across executions."""

    slots: int = 16
    max_memory_bytes: int = 256 * 1024 * 1024
    keep_resident_bytes: int = 0
    table_keep_resident_bytes: int = 0


class WasmEngine:
    """The process-wide engine for one engine module. Create once per process."""

    # The epoch ticker (a thread of lifecycle.c's, outside Python) advances the epoch every TICK_MS while
    # guest code runs; a store's wall-clock deadline is a count of these ticks.
    TICK_MS = 5
    # The ticker sleeps once no guest code has run for this many ticks (a second), and wakes with the
    # next guest call: an idle process is not woken 200 times a second.
    TICK_LINGER = 200

    def __init__(
        self,
        module_bytes: bytes,
        *,
        lifecycle: Path,
        cache_dir: Path | None,
        pool: PoolSettings,
        max_wasm_stack_bytes: int = 1024 * 1024,
    ) -> None:
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        config.max_wasm_stack = max_wasm_stack_bytes
        config.cranelift_opt_level = "speed"
        config.memory_init_cow = True
        pooling = ffi.wasmtime_pooling_allocation_config_new()
        try:
            ffi.wasmtime_pooling_allocation_config_total_core_instances_set(pooling, pool.slots)
            ffi.wasmtime_pooling_allocation_config_total_memories_set(pooling, pool.slots)
            ffi.wasmtime_pooling_allocation_config_total_tables_set(pooling, pool.slots)
            ffi.wasmtime_pooling_allocation_config_max_memory_size_set(pooling, pool.max_memory_bytes)
            ffi.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(pooling, pool.keep_resident_bytes)
            ffi.wasmtime_pooling_allocation_config_table_keep_resident_set(pooling, pool.table_keep_resident_bytes)
            ffi.wasmtime_pooling_allocation_strategy_set(config.ptr(), pooling)
        finally:
            ffi.wasmtime_pooling_allocation_config_delete(pooling)
        self._engine = wasmtime.Engine(config)
        self._engine_ptr = self._engine.ptr()
        self.module = self._load_module(module_bytes, cache_dir)

        self._linker = wasmtime.Linker(self._engine)
        functype = wasmtime.FuncType([wasmtime.ValType.i32()] * 4, [wasmtime.ValType.i32()])
        error = ffi.wasmtime_linker_define_func_unchecked(
            self._linker.ptr(),
            b"tollgate",
            len(b"tollgate"),
            b"host_call",
            len(b"host_call"),
            functype.ptr(),
            _host_trampoline,
            None,
            _HOST_FINALIZER,
        )
        if error:
            raise WasmFailure(_error_message(error))
        pre = ctypes.POINTER(ffi.wasmtime_instance_pre_t)()
        error = ffi.wasmtime_linker_instantiate_pre(self._linker.ptr(), self.module.ptr(), ctypes.byref(pre))
        if error:
            raise WasmFailure(_error_message(error))
        self._pre = pre
        self._life = _Lifecycle(lifecycle, self._engine_ptr, pre)

        self._closed = False
        self._life.start_ticker(self.TICK_MS, self.TICK_LINGER)

        # Used stores waiting for drop_deferred(), when defer_drops is on.
        self.defer_drops = False
        self._deferred: list[int] = []

    def _load_module(self, module_bytes: bytes, cache_dir: Path | None) -> wasmtime.Module:
        """Deserialise the compiled module from the cache, or compile and cache it."""
        if cache_dir is None:
            return wasmtime.Module(self._engine, module_bytes)
        digest = hashlib.sha256(module_bytes).hexdigest()[:32]
        path = cache_dir / f"engine-{digest}-wasmtime-{WASMTIME_VERSION}.cwasm"
        if path.exists():
            try:
                return wasmtime.Module.deserialize_file(self._engine, str(path))
            except wasmtime.WasmtimeError:
                log.warning("the cached compiled engine at %s does not fit this engine; compiling again", path)
        started = time.perf_counter()
        module = wasmtime.Module(self._engine, module_bytes)
        log.info("compiled the engine module in %.1f s", time.perf_counter() - started)
        cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(module.serialize())
        os.replace(tmp, path)
        return module

    @property
    def ticker_asleep(self) -> bool:
        """Whether the epoch ticker sleeps because no guest code has run for TICK_LINGER ticks."""
        return self._life.ticker_asleep()

    def set_ticker_linger(self, ticks: int) -> None:
        """How many ticks the ticker goes on for once no guest code runs (TICK_LINGER unless set)."""
        self._life.set_linger(ticks)

    # Each deferred store holds a slot of the pool (PoolSettings.slots):
    # past this many, stores are dropped at once.
    MAX_DEFERRED_DROPS = 4

    def _drop(self, store: int) -> None:
        if self.defer_drops and len(self._deferred) < self.MAX_DEFERRED_DROPS:
            self._deferred.append(store)
        else:
            _store_delete(store)

    def drop_deferred(self) -> None:
        """Drop the stores whose drop was deferred (see :attr:`defer_drops`)."""
        while self._deferred:
            _store_delete(self._deferred.pop())

    def close(self) -> None:
        """Stop the ticker and release the engine. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._life.stop_ticker()
        self.drop_deferred()
        ffi.wasmtime_instance_pre_delete(self._pre)
        self._linker.close()
        self.module.close()
        self._engine.close()

    def __enter__(self) -> WasmEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def instance(
        self,
        *,
        fuel: int,
        wall_ms: int,
        memory_bytes: int,
        host_call: HostCall | None = None,
        pages: Pages | None = None,
    ) -> Instance:
        """A fresh instance with these limits (and `pages` copied in); use it in a ``with`` block, which drops it."""
        if self._closed:
            raise WasmFailure("the engine is closed")
        return Instance(self, fuel=fuel, wall_ms=wall_ms, memory_bytes=memory_bytes, host_call=host_call, pages=pages)


# The C functions called from Python on the hot path, without wasmtime-py's
# wrappers (``dll[name]`` makes a function object of our own, whose types
# wasmtime-py's does not share).
_store_delete = ffi.dll["wasmtime_store_delete"]
_store_delete.argtypes = [ctypes.c_void_p]
_store_delete.restype = None
_memory_data = ffi.dll["wasmtime_memory_data"]
_memory_data.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_memory_data.restype = ctypes.c_size_t
_memory_data_size = ffi.dll["wasmtime_memory_data_size"]
_memory_data_size.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_memory_data_size.restype = ctypes.c_size_t
_memmove = ctypes.memmove
_string_at = ctypes.string_at
_addressof = ctypes.addressof
_TrapPtr = ctypes.POINTER(ffi.wasm_trap_t)
_ErrorPtr = ctypes.POINTER(ffi.wasmtime_error_t)


def _address(function: str) -> int | None:
    return ctypes.cast(ffi.dll[function], ctypes.c_void_p).value


# tg_api's function pointers in lifecycle.c, in its order: field name -> wasmtime's C function.
_API_FUNCTIONS = {
    "store_new": "wasmtime_store_new",
    "store_context": "wasmtime_store_context",
    "store_limiter": "wasmtime_store_limiter",
    "set_fuel": "wasmtime_context_set_fuel",
    "get_fuel": "wasmtime_context_get_fuel",
    "set_epoch_deadline": "wasmtime_context_set_epoch_deadline",
    "pre_instantiate": "wasmtime_instance_pre_instantiate",
    "export_get": "wasmtime_instance_export_get",
    "memory_data": "wasmtime_memory_data",
    "memory_data_size": "wasmtime_memory_data_size",
    "call_unchecked": "wasmtime_func_call_unchecked",
    "memory_grow": "wasmtime_memory_grow",
}


class _Api(ctypes.Structure):
    """``tg_api`` in lifecycle.c: wasmtime's functions, the engine and the pre-instance."""

    _fields_ = [
        *((name, ctypes.c_void_p) for name in (*_API_FUNCTIONS, "engine", "pre")),
        ("extern_of_offset", ctypes.c_uint64),
        ("ticker", ctypes.c_void_p),
    ]


class _State(ctypes.Structure):
    """``tg_instance`` in lifecycle.c: one instance's limits, handles and last call."""

    _fields_ = [
        ("fuel", ctypes.c_uint64),
        ("epoch_ticks", ctypes.c_uint64),
        ("memory_bytes", ctypes.c_int64),
        ("store", ctypes.c_void_p),
        ("ctx", ctypes.c_void_p),
        ("base", ctypes.c_size_t),
        ("size", ctypes.c_uint64),
        ("error", ctypes.c_void_p),
        ("trap", ctypes.c_void_p),
        ("fuel_left", ctypes.c_uint64),
        ("result", ctypes.c_uint32),
        ("step", ctypes.c_uint32),
        ("pages", ctypes.c_void_p),
        ("page_index", ctypes.c_void_p),
        ("page_count", ctypes.c_uint64),
        ("memory_needed", ctypes.c_uint64),
        ("instance", ctypes.c_uint8 * 32),
        ("memory", ctypes.c_uint8 * 64),
        ("func", ctypes.c_uint8 * 64),
        ("args", ctypes.c_uint8 * 64),
    ]


# lifecycle.c's return codes (TG_OK, TG_REFUSED) and the steps that refuse (TG_STEP_INPUT, TG_STEP_PAGES).
_OK, _REFUSED = 0, 3
_STEP_INPUT, _STEP_PAGES = 6, 7


class Pages:
    """Whole pages of linear memory for a new instance: ``(page number, PAGE_BYTES bytes)`` each.

    `memory_bytes` is the size the memory must have for them: a new
    instance's memory is grown to it first.
    """

    __slots__ = ("_data", "_index", "count", "data_address", "index_address", "memory_bytes", "nbytes")

    def __init__(self, pages: list[tuple[int, bytes]], *, memory_bytes: int) -> None:
        if any(len(data) != PAGE_BYTES or number < 0 for number, data in pages):
            raise ValueError("pages are whole pages at non-negative page numbers")
        if any((number + 1) * PAGE_BYTES > memory_bytes for number, _ in pages):
            raise ValueError("a page lies beyond the memory's size")
        self.memory_bytes = memory_bytes
        self.count = len(pages)
        self.nbytes = self.count * PAGE_BYTES
        self._data = ctypes.create_string_buffer(b"".join(data for _, data in pages), max(1, self.nbytes))
        self._index = (ctypes.c_uint32 * max(1, self.count))(*(number for number, _ in pages))
        self.data_address = _addressof(self._data)
        self.index_address = _addressof(self._index)

    def data(self) -> bytes:
        return self._data.raw[: self.nbytes]


class _Lifecycle:
    """lifecycle.c, loaded once per process, bound to one engine's pre-instance."""

    def __init__(self, library: Path, engine_ptr: ctypes._Pointer, pre: ctypes._Pointer) -> None:  # type: ignore[type-arg]
        lib = ctypes.CDLL(str(library))
        check = lib.tg_check
        check.argtypes = [ctypes.c_uint64] * 5
        check.restype = ctypes.c_int
        layout = (
            ctypes.sizeof(ffi.wasmtime_instance_t),
            ctypes.sizeof(ffi.wasmtime_extern_t),
            ctypes.sizeof(ffi.wasmtime_val_raw_t),
            ctypes.sizeof(_State),
            _State.args.offset,
        )
        if not check(*layout):
            raise WasmFailure(f"{library.name} does not fit this wasmtime's C structures; rebuild the engine")
        self.api = _Api(
            *map(_address, _API_FUNCTIONS.values()),
            ctypes.cast(engine_ptr, ctypes.c_void_p).value,
            ctypes.cast(pre, ctypes.c_void_p).value,
            ffi.wasmtime_extern_t.of.offset,
        )
        self.api_address = _addressof(self.api)
        self.open = lib.tg_open
        self.open.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.open.restype = ctypes.c_int
        self.call = lib.tg_call
        self.call.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int,
                              ctypes.c_uint32, ctypes.c_char_p, ctypes.c_uint64, ctypes.c_uint32]  # fmt: skip
        self.call.restype = ctypes.c_int
        self._lib = lib
        for name, argtypes, restype in (
            ("tg_ticker_start", [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32], ctypes.c_void_p),
            ("tg_ticker_set_linger", [ctypes.c_void_p, ctypes.c_uint32], None),
            ("tg_ticker_asleep", [ctypes.c_void_p], ctypes.c_int),
            ("tg_ticker_stop", [ctypes.c_void_p], None),
        ):
            function = getattr(lib, name)
            function.argtypes, function.restype = argtypes, restype

    def start_ticker(self, tick_ms: int, linger: int) -> None:
        """Start the engine's epoch ticker (lifecycle.c's thread), which the guest calls then wake."""
        increment = _address("wasmtime_engine_increment_epoch")
        ticker = self._lib.tg_ticker_start(self.api.engine, increment, tick_ms, linger)
        if not ticker:
            raise WasmFailure("the epoch ticker's thread could not be started")
        self.api.ticker = ticker

    def set_linger(self, ticks: int) -> None:
        self._lib.tg_ticker_set_linger(self.api.ticker, ticks)

    def ticker_asleep(self) -> bool:
        return bool(self._lib.tg_ticker_asleep(self.api.ticker))

    def stop_ticker(self) -> None:
        ticker, self.api.ticker = self.api.ticker, None
        if ticker:
            self._lib.tg_ticker_stop(ticker)


def _failure(state: _State, what: str) -> Exception:
    """The exception for a failed lifecycle step (taking ownership of wasmtime's error or trap)."""
    if state.error:
        return WasmFailure(_error_message(ctypes.cast(state.error, _ErrorPtr)))
    if state.trap:
        return _trap(ctypes.cast(state.trap, _TrapPtr))
    return WasmFailure(what)


class Instance:
    """One store and one instance: made for one execution, then dropped.

    Making it and calling into it go through lifecycle.c, one foreign call
    each. Memory reads and writes go through the linear memory's base
    pointer and size, which are read again after every call (a call may grow
    the memory).
    """

    __slots__ = ("_engine", "_fuel", "_life", "_memory", "_state", "_store", "host_call")

    def __init__(
        self,
        engine: WasmEngine,
        *,
        fuel: int,
        wall_ms: int,
        memory_bytes: int,
        host_call: HostCall | None,
        pages: Pages | None = None,
    ) -> None:
        self.host_call = host_call
        self._fuel = fuel
        self._engine = engine
        self._life = life = engine._life
        state = self._state = _State()
        state.fuel = fuel
        state.epoch_ticks = -(-wall_ms // WasmEngine.TICK_MS) + 1
        state.memory_bytes = memory_bytes
        state.fuel_left = fuel
        if pages is not None and pages.count:
            state.pages = pages.data_address
            state.page_index = pages.index_address
            state.page_count = pages.count
            state.memory_needed = pages.memory_bytes
        code = life.open(life.api_address, _addressof(state))
        self._store = state.store
        if code != _OK:
            what = (
                "the pages do not fit the memory"
                if state.step == _STEP_PAGES
                else "the engine module exports no memory"
            )
            error = _failure(state, what)
            self.close()
            raise error
        self._memory = _addressof(state) + _State.memory.offset + ffi.wasmtime_extern_t.of.offset

    def _refresh(self) -> None:
        """Read the memory's size and base again (in a host call: the guest may have grown it)."""
        state = self._state
        state.size = _memory_data_size(state.ctx, self._memory)
        state.base = _memory_data(state.ctx, self._memory)

    def close(self) -> None:
        """Drop the store and its instance. Idempotent."""
        if self._store is not None:
            store, self._store = self._store, None
            self._engine._drop(store)

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def memory_size(self) -> int:
        return int(self._state.size)

    def read(self, address: int, length: int) -> bytes:
        """`length` bytes at `address`, after checking the range is inside the memory."""
        state = self._state
        if address < 0 or length < 0 or address + length > state.size:
            raise GuestTrap(TRAP_MEMORY_OUT_OF_BOUNDS, "the guest pointed outside its memory")
        return _string_at(state.base + address, length)

    def write(self, address: int, data: bytes) -> None:
        """Copy `data` to `address`, after checking the range is inside the memory."""
        state = self._state
        if address < 0 or address + len(data) > state.size:
            raise GuestTrap(TRAP_MEMORY_OUT_OF_BOUNDS, "the input does not fit the guest's memory")
        _memmove(state.base + address, data, len(data))

    def call(self, name: bytes, arg: int | None = None, *, data: bytes | None = None, at: int = 0) -> int:
        """Call the export `name` with one i32 argument (or none); its i32 result.

        With `data`, first copy it into the guest (at `at`, or when `at` is 0
        into a buffer from the guest's ``tg_reserve``) and pass its length.
        """
        state = self._state
        life = self._life
        _local.instance = self
        try:
            code = life.call(life.api_address, _addressof(state), name, len(name), arg is not None, arg or 0,
                             data, len(data) if data is not None else 0, at)  # fmt: skip
        finally:
            _local.instance = None
        if code == _OK:
            return int(state.result)
        if code == _REFUSED:
            if state.step == _STEP_INPUT:
                raise WasmFailure("the input does not fit the guest's memory")
            raise WasmFailure(f"the engine module has no export {name.decode()!r}")
        raise _failure(state, "the guest call failed")

    def fuel_used(self) -> int:
        return self._fuel - int(self._state.fuel_left)


def pre_initialise(
    module_bytes: bytes, init_export: str, init_input: bytes, global_exports: list[str]
) -> tuple[bytes, int, dict[str, int | float]]:
    """Run a module's start-up once, for the engine build.

    Instantiates `module_bytes` (whose host import refuses every call), runs
    ``_initialize``, writes `init_input` to the buffer ``tg_reserve`` gives
    and calls `init_export` with its length. Returns the whole linear memory
    afterwards, the call's result and the values of `global_exports`.
    """
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    try:
        module = wasmtime.Module(engine, module_bytes)
        linker = wasmtime.Linker(engine)
        i32 = wasmtime.ValType.i32()
        linker.define_func("tollgate", "host_call", wasmtime.FuncType([i32] * 4, [i32]), lambda *_: -1)
        instance = linker.instantiate(store, module)
        exports = instance.exports(store)

        def export(name: str) -> wasmtime.Func:
            item = exports[name]
            if not isinstance(item, wasmtime.Func):
                raise WasmFailure(f"{name} is not a function")
            return item

        memory = exports["memory"]
        if not isinstance(memory, wasmtime.Memory):
            raise WasmFailure("the module exports no memory")
        export("_initialize")(store)
        address = export("tg_reserve")(store, len(init_input))
        memory.write(store, init_input, address)
        result = export(init_export)(store, len(init_input))
        image = memory.read(store, 0, memory.data_len(store))
        values: dict[str, int | float] = {}
        for name in global_exports:
            item = exports[name]
            if not isinstance(item, wasmtime.Global):
                raise WasmFailure(f"{name} is not a global")
            value = item.value(store)
            if not isinstance(value, int | float):
                raise WasmFailure(f"global {name} is not a number")
            values[name] = value
        return bytes(image), int(result), values
    finally:
        store.close()
        engine.close()
