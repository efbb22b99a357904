"""Build the engine: quickjs-ng + shim + prelude -> a pre-initialised wasm32-wasi module.

Steps, each reported as it runs:

1. fetch quickjs-ng's sdist from PyPI (pinned version and sha256; cached)
   and take the C sources from its ``upstream-quickjs/`` folder;
2. compile them with our shim to a wasm32-wasi reactor module, using zig
   from the ``ziglang`` PyPI package, or clang with a WASI sysroot
   (``TOLLGATE_WASM_CC`` names another compiler driver);
3. check the module imports nothing but our one host function: no WASI, so
   no file system, environment, clock or network can reach the guest;
4. pre-initialise it: run start-up and the prelude once, then rewrite the
   module so that instances start from that memory (as Wizer does);
5. record the build id, the sha256 of the final module;
6. compile the host's side of an execution (``runtime/sandbox/lifecycle.c``)
   into a shared library for this machine, with the same zig (or ``cc``).

A build whose inputs (sources, flags, toolchain) have not changed is skipped.
Run as ``python -m runtime.engine.build [--force]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from runtime.engine import LIFECYCLE_LIBRARY, PACKAGE_DIR, STACK_BYTES, build_dir, wasm_binary

QUICKJS_NG_VERSION = "0.17.0.2"
QUICKJS_NG_SDIST_SHA256 = "43d2e48272208721a7aaea8e3f02d4b9318f12ef20cc4f5421b59d9a470706ef"
QUICKJS_SOURCES = ("quickjs.c", "libregexp.c", "libunicode.c", "dtoa.c")
GUEST_DIR = PACKAGE_DIR / "guest"
SHIM_SOURCES = ("shim.c", "sha256.c", "msgpack.c", "pack.c", "inspect.c")
SHIM_HEADERS = ("sha256.h", "msgpack.h", "pack.h")
PRELUDE_DIR = GUEST_DIR / "prelude"

CFLAGS = ("-O2", "-DNDEBUG", "-D_GNU_SOURCE", "-fno-strict-aliasing", "-fno-sanitize=all", "-Wno-everything")
ALLOWED_IMPORTS = {("tollgate", "host_call")}
LIFECYCLE_SOURCE = PACKAGE_DIR.parent / "sandbox" / "lifecycle.c"
HOST_CFLAGS = ("-O2", "-shared", "-fPIC", "-Wall", "-Werror")
DROP_AFTER_INIT = frozenset({"_initialize", "tg_init", "tg_prelude_bytecode"})

Report = Callable[[str], None]


class BuildError(RuntimeError):
    """The engine could not be built; the message says what to do."""


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tollgate"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_quickjs(report: Report) -> Path:
    """The folder holding quickjs-ng's C sources, fetched once and verified."""
    root = _cache_root() / "sources" / f"quickjs-ng-{QUICKJS_NG_VERSION}"
    marker = root / ".verified"
    if marker.exists():
        return root
    report(f"Fetching the quickjs-ng {QUICKJS_NG_VERSION} sources from PyPI")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"quickjs-ng=={QUICKJS_NG_VERSION}",
            "-d",
            tmp,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BuildError(f"could not download the quickjs-ng sources: {done.stderr.strip()}")
        archives = list(Path(tmp).glob("quickjs_ng-*.tar.gz"))
        if len(archives) != 1:
            raise BuildError("pip did not download the quickjs-ng source archive")
        data = archives[0].read_bytes()
        if _sha256(data) != QUICKJS_NG_SDIST_SHA256:
            raise BuildError("the quickjs-ng source archive does not have the expected sha256; refusing to build")
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archives[0]) as tar:
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if len(parts) == 3 and parts[1] == "upstream-quickjs" and member.isfile():
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        (root / parts[2]).write_bytes(extracted.read())
    marker.write_text(QUICKJS_NG_SDIST_SHA256)
    return root


def toolchain() -> tuple[list[str], list[str], str]:
    """(compiler command, extra link flags, description) of the first usable toolchain."""
    override = os.environ.get("TOLLGATE_WASM_CC")
    if override:
        return override.split(), ["-Wl,--stack-first"], override
    try:
        import ziglang  # noqa: F401
    except ImportError:
        pass
    else:
        cmd = [sys.executable, "-m", "ziglang", "cc", "-target", "wasm32-wasi"]
        version = subprocess.run(
            [sys.executable, "-m", "ziglang", "version"], capture_output=True, text=True, check=False
        )
        # zig links wasm with the stack first by default.
        return cmd, [], f"zig {version.stdout.strip()}"
    clang = shutil.which("clang")
    if clang and Path("/usr/include/wasm32-wasi").is_dir():
        return [clang, "--target=wasm32-wasi", "--sysroot=/usr"], ["-Wl,--stack-first"], "clang + wasi-libc"
    raise BuildError(
        "no WebAssembly toolchain: `pip install ziglang` (what `make` does), or install Debian's "
        "clang lld wasi-libc libclang-rt-14-dev-wasm32"
    )


def prelude_source() -> bytes:
    """The prelude files, in name order, as one factory function."""
    parts = ["(function (native) {\n'use strict';\n"]
    for path in sorted(PRELUDE_DIR.glob("*.js")):
        parts.append(f"// ---- {path.name}\n{path.read_text()}\n")
    parts.append("})\n")
    return "".join(parts).encode()


def _inputs_hash(qjs: Path, tool: str) -> str:
    h = hashlib.sha256()
    h.update(QUICKJS_NG_SDIST_SHA256.encode())
    for name in SHIM_SOURCES + SHIM_HEADERS:
        h.update(name.encode() + (GUEST_DIR / name).read_bytes())
    h.update(prelude_source())
    h.update(Path(__file__).read_bytes())
    h.update(Path(wasm_binary.__file__).read_bytes())
    h.update(" ".join(CFLAGS).encode() + tool.encode())
    return h.hexdigest()


def _compile(cc: list[str], source: Path, out: Path, include: Path) -> None:
    cmd = [*cc, "-c", *CFLAGS, f"-I{include}", f"-I{GUEST_DIR}", str(source), "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"compiling {source.name} failed:\n{done.stderr.strip()}")


def _check_imports(module: bytes) -> None:
    unexpected = [f"{m}.{n}" for m, n in wasm_binary.imports(module) if (m, n) not in ALLOWED_IMPORTS]
    if unexpected:
        raise BuildError(
            "the engine imports " + ", ".join(unexpected) + "; the shim must define every WASI function libc needs"
        )


def _prelude_bytecode(raw: bytes) -> bytes:
    """The prelude compiled (without source text or debug info) in a throwaway instance."""
    from runtime.sandbox._protocol import STATUS, Status
    from runtime.sandbox._wasmtime import pre_initialise

    memory, address, _ = pre_initialise(raw, "tg_prelude_bytecode", prelude_source(), [])
    status = Status.parse(memory[address : address + STATUS.size])
    if status.fault:
        detail = memory[status.out_ptr : status.out_ptr + status.out_len].decode("utf-8", "replace")
        raise BuildError(f"the prelude does not compile: {detail}")
    return memory[status.aux_ptr : status.aux_ptr + status.aux_len]


def _pre_initialise(raw: bytes) -> bytes:
    from runtime.sandbox._wasmtime import pre_initialise

    bytecode = _prelude_bytecode(raw)
    mutable = wasm_binary.defined_globals(raw)
    names = [wasm_binary.global_export_name(i) for i, _ in mutable]
    memory, _, values = pre_initialise(wasm_binary.export_globals(raw), "tg_init", bytecode, names)
    by_index = {
        i: wasm_binary.GlobalValue(valtype, values[wasm_binary.global_export_name(i)]) for i, valtype in mutable
    }
    # Start-up returned, so the stack pointer is back at the top of the
    # stack region and everything below it is dead: clear it.
    if any(v.valtype == 0x7F and v.value == STACK_BYTES for v in by_index.values()):
        memory = bytes(STACK_BYTES) + memory[STACK_BYTES:]
    else:
        raise BuildError("the linked module does not have its stack first; cannot pre-initialise it safely")
    return wasm_binary.snapshot(raw, memory, by_index, DROP_AFTER_INIT)


def host_compiler() -> tuple[list[str], str]:
    """(compiler command, description) for this machine's own code: zig's, or ``cc``."""
    override = os.environ.get("TOLLGATE_HOST_CC")
    if override:
        return override.split(), override
    try:
        import ziglang  # noqa: F401
    except ImportError:
        pass
    else:
        return [sys.executable, "-m", "ziglang", "cc"], "zig cc"
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc:
        return [cc], cc
    raise BuildError("no C compiler for this machine: `pip install ziglang` (what `make` does), or install gcc")


def build_lifecycle(out_dir: Path, *, force: bool = False, report: Report = print) -> Path:
    """Compile lifecycle.c for this machine into `out_dir` unless it is up to date; the library."""
    cc, tool = host_compiler()
    library = out_dir / LIFECYCLE_LIBRARY
    stamp = out_dir / "lifecycle.json"
    inputs = _sha256(LIFECYCLE_SOURCE.read_bytes() + " ".join((*HOST_CFLAGS, tool)).encode())
    up_to_date = library.exists() and stamp.exists() and json.loads(stamp.read_text()).get("inputs_sha256") == inputs
    if up_to_date and not force:
        return library
    report(f"Compiling the host side of an execution ({LIFECYCLE_SOURCE.name}) with {tool}")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = library.with_suffix(f".{os.getpid()}.tmp")
    done = subprocess.run([*cc, *HOST_CFLAGS, str(LIFECYCLE_SOURCE), "-o", str(tmp)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"compiling {LIFECYCLE_SOURCE.name} failed:\n{done.stderr.strip()}")
    os.replace(tmp, library)  # a process that loaded the old one keeps it
    stamp.write_text(json.dumps({"inputs_sha256": inputs, "toolchain": tool}, indent=2) + "\n")
    return library


def build(*, force: bool = False, report: Report = print) -> Path:
    """Build the engine into :func:`build_dir` unless it is up to date; the folder."""
    out_dir = build_dir()
    qjs = fetch_quickjs(report)
    cc, link_flags, tool = toolchain()
    inputs = _inputs_hash(qjs, tool)
    info_path = out_dir / "build.json"
    if not force and info_path.exists() and (out_dir / "engine.wasm").exists():
        info = json.loads(info_path.read_text())
        if info.get("inputs_sha256") == inputs:
            build_lifecycle(out_dir, report=report)
            report(f"The engine is up to date (build {info['build_id'][:12]})")
            return out_dir

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sources = [qjs / name for name in QUICKJS_SOURCES] + [GUEST_DIR / name for name in SHIM_SOURCES]
        report(f"Compiling {len(sources)} C files to WebAssembly with {tool} (the first build takes a minute)")
        objects = [tmp / (s.stem + ".o") for s in sources]
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            futures = {pool.submit(_compile, cc, s, o, qjs): s for s, o in zip(sources, objects, strict=True)}
            for n, future in enumerate(concurrent.futures.as_completed(futures), 1):
                future.result()
                report(f"  compiled {futures[future].name} ({n}/{len(sources)})")
        raw_path = tmp / "engine-raw.wasm"
        report("Linking the engine module")
        cmd = [
            *cc,
            "-mexec-model=reactor",
            *map(str, objects),
            "-o",
            str(raw_path),
            f"-Wl,-z,stack-size={STACK_BYTES}",
            *link_flags,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BuildError(f"linking failed:\n{done.stderr.strip()}")
        raw = raw_path.read_bytes()

    _check_imports(raw)
    report("Pre-initialising the engine (runtime, context and prelude) into a snapshot")
    module = _pre_initialise(raw)
    build_id = _sha256(module)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "engine.wasm").write_bytes(module)
    info = {
        "build_id": build_id,
        "inputs_sha256": inputs,
        "quickjs_ng": QUICKJS_NG_VERSION,
        "toolchain": tool,
        "module_bytes": len(module),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    build_lifecycle(out_dir, force=force, report=report)
    report(f"Engine built in {time.perf_counter() - started:.0f} s: build {build_id[:12]}, {len(module):,} bytes")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.engine.build", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when the inputs have not changed")
    args = parser.parse_args(argv)
    try:
        build(force=args.force)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
