"""The built engine: its identity, what it imports, and the snapshot rewriter."""

import ctypes
import hashlib
import subprocess
import sys

import pytest
import wasmtime

from runtime import engine
from runtime.engine import build, wasm_binary
from runtime.sandbox import _wasmtime
from runtime.sandbox._wasmtime import pre_initialise

WAT = """
(module
  (memory (export "memory") 1)
  (global $counter (mut i32) (i32.const 7))
  (global $scale (mut f64) (f64.const 0.5))
  (global $fixed i32 (i32.const 3))
  (data (i32.const 16) "hello")
  (func (export "_initialize"))
  (func (export "tg_reserve") (param i32) (result i32) (i32.const 1024))
  (func (export "tg_init") (param $n i32) (result i32)
    (global.set $counter (i32.add (global.get $counter) (local.get $n)))
    (global.set $scale (f64.const 2.25))
    (i32.store8 (i32.const 40000) (i32.const 42))
    (i32.const 0))
  (func (export "read") (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "counter") (result i32) (global.get $counter))
  (func (export "scale") (result f64) (global.get $scale)))
"""


def test_the_build_id_is_the_sha256_of_the_module() -> None:
    """build.json's build id identifies the exact module bytes."""
    built = engine.load()
    assert built.build_id == hashlib.sha256(built.module).hexdigest()
    assert built.info["quickjs_ng"] == build.QUICKJS_NG_VERSION


def test_the_engine_imports_only_the_host_function() -> None:
    """No WASI and nothing else: the guest has no file system, clock, environment or network."""
    assert wasm_binary.imports(engine.load().module) == [("tollgate", "host_call")]


def test_the_engine_exports_no_start_up_functions() -> None:
    """The snapshot cannot be initialised twice: _initialize and tg_init are gone."""
    module = wasmtime.Module(wasmtime.Engine(), engine.load().module)
    names = {e.name for e in module.exports}
    assert {"tg_run", "tg_compile", "tg_status", "tg_reserve", "memory"} <= names
    assert not names & {"_initialize", "tg_init", "tg_prelude_bytecode"}


def test_a_second_build_is_skipped() -> None:
    """With nothing changed, the build reports the engine up to date and keeps the module."""
    build.build(report=lambda _: None)
    before = engine.load().build_id
    messages: list[str] = []
    build.build(report=messages.append)
    assert messages[-1].startswith("The engine is up to date")
    assert engine.load().build_id == before


def test_the_engine_can_be_described_from_the_cli() -> None:
    """`tollgate engine info` prints the build id."""
    done = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "engine", "info"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert engine.load().build_id in done.stdout


def test_snapshot_rewriting_keeps_memory_and_globals() -> None:
    """A pre-initialised module starts with the memory and globals start-up left."""
    raw = wasmtime.wat2wasm(WAT)
    mutable = wasm_binary.defined_globals(raw)
    assert [valtype for _, valtype in mutable] == [0x7F, 0x7C]
    names = [wasm_binary.global_export_name(i) for i, _ in mutable]
    memory, result, values = pre_initialise(wasm_binary.export_globals(raw), "tg_init", b"abc", names)
    assert result == 0
    assert values == {names[0]: 10, names[1]: 2.25}
    snapshot = wasm_binary.snapshot(
        raw,
        memory,
        {i: wasm_binary.GlobalValue(t, values[n]) for (i, t), n in zip(mutable, names, strict=True)},
        frozenset({"_initialize", "tg_init"}),
    )
    store = wasmtime.Store()
    module = wasmtime.Module(store.engine, snapshot)
    assert {e.name for e in module.exports} == {"memory", "tg_reserve", "read", "counter", "scale"}
    exports = wasmtime.Instance(store, module, []).exports(store)
    assert exports["counter"](store) == 10
    assert exports["scale"](store) == 2.25
    assert exports["read"](store, 40000) == 42
    assert exports["read"](store, 1024) == ord("a")
    assert bytes(exports["read"](store, 16 + i) for i in range(5)) == b"hello"
    assert wasm_binary.memory_minimum_bytes(snapshot) == len(memory)


def test_the_rewriter_refuses_what_it_does_not_understand() -> None:
    """Bytes that are not a wasm module are refused with a clear error."""
    with pytest.raises(wasm_binary.WasmFormatError, match=r"not a WebAssembly 1\.0 module"):
        wasm_binary.imports(b"\x7fELF....")


def test_table_elements_counts_every_defined_table() -> None:
    """The pool keeps the function tables resident; their size comes from the module."""
    one = wasmtime.wat2wasm("(module (table 5 funcref) (memory 1))")
    two = wasmtime.wat2wasm("(module (table 5 20 funcref) (table 3 externref) (memory 1))")
    none = wasmtime.wat2wasm("(module (memory 1))")
    assert wasm_binary.table_elements(bytes(one)) == 5
    assert wasm_binary.table_elements(bytes(two)) == 8
    assert wasm_binary.table_elements(bytes(none)) == 0


def test_the_pool_keeps_the_engine_table_resident() -> None:
    """The built engine's table is reset in place, not released and faulted back in."""
    from runtime.sandbox._engine import pool_settings

    module = engine.load().module
    settings = pool_settings(module)
    elements = wasm_binary.table_elements(module)
    assert elements > 100  # QuickJS calls through function pointers
    assert settings.table_keep_resident_bytes >= elements * 8
    assert settings.table_keep_resident_bytes % 4096 == 0


def test_the_host_library_is_built_once_and_again_when_its_source_changes(tmp_path, monkeypatch) -> None:
    """lifecycle.c is compiled for this machine, skipped when up to date, recompiled when it changed."""
    messages: list[str] = []
    library = build.build_lifecycle(tmp_path, report=messages.append)
    assert library.exists() and library.read_bytes()[:4] == b"\x7fELF"
    assert len(messages) == 1 and "lifecycle.c" in messages[0]
    first = library.stat().st_mtime_ns

    build.build_lifecycle(tmp_path, report=messages.append)
    assert len(messages) == 1, "an up-to-date library is not compiled again"
    assert library.stat().st_mtime_ns == first

    changed = tmp_path / "lifecycle.c"
    changed.write_text(build.LIFECYCLE_SOURCE.read_text() + "\n/* changed */\n")
    monkeypatch.setattr(build, "LIFECYCLE_SOURCE", changed)
    build.build_lifecycle(tmp_path, report=messages.append)
    assert len(messages) == 2, "a changed source is compiled again"


def test_a_host_library_that_does_not_compile_says_why(tmp_path, monkeypatch) -> None:
    """A compiler error is a BuildError with the compiler's message, and no library is left behind."""
    broken = tmp_path / "lifecycle.c"
    broken.write_text("int tg_check(void) { return undeclared_name; }\n")
    monkeypatch.setattr(build, "LIFECYCLE_SOURCE", broken)
    out = tmp_path / "out"
    with pytest.raises(build.BuildError, match="undeclared_name"):
        build.build_lifecycle(out, report=lambda _: None)
    assert not (out / engine.LIFECYCLE_LIBRARY).exists()
    assert not list(out.glob("*.tmp"))


def test_an_engine_folder_without_the_host_library_is_not_built(tmp_path, monkeypatch) -> None:
    """The module alone is not a usable engine: load() says to build it."""
    built = engine.load()
    (tmp_path / "engine.wasm").write_bytes(built.module)
    (tmp_path / "build.json").write_text('{"build_id": "x"}')
    monkeypatch.setenv("TOLLGATE_ENGINE_DIR", str(tmp_path))
    with pytest.raises(engine.EngineNotBuilt, match="make engine"):
        engine.load()


def test_a_host_library_from_another_wasmtime_is_refused(monkeypatch) -> None:
    """lifecycle.c checks the C structures' layout it was built for; a mismatch is refused, not used."""

    class Bigger(ctypes.Structure):
        _fields_ = [("room", ctypes.c_uint8 * 4096)]

    monkeypatch.setattr(_wasmtime.ffi, "wasmtime_extern_t", Bigger)
    with pytest.raises(_wasmtime.WasmFailure, match="rebuild the engine"):
        _wasmtime._Lifecycle(engine.load().lifecycle, None, None)
