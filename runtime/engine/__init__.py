"""The guest engine: quickjs-ng, our C shim and JS prelude, built to WebAssembly.

The built engine is a build output, never committed: ``make engine`` (or
``tollgate engine build``) produces it from the sources in ``guest/`` and
quickjs-ng's sources from its PyPI sdist. See :mod:`runtime.engine.build`.

What is on disk after a build, in :func:`build_dir`:

- ``engine.wasm``: the pre-initialised module (runtime, context and prelude
  ready), which every execution instantiates;
- ``build.json``: the build id (sha256 of ``engine.wasm``), the inputs' hash,
  the toolchain and the quickjs-ng version;
- ``lifecycle.so``: the host side of an execution (``runtime/sandbox/lifecycle.c``),
  compiled for this machine, and ``lifecycle.json``, its inputs' hash.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LIFECYCLE_LIBRARY", "STACK_BYTES", "BuiltEngine", "EngineNotBuilt", "build_dir", "load"]

PACKAGE_DIR = Path(__file__).resolve().parent
LIFECYCLE_LIBRARY = "lifecycle.so"
# The shadow stack sits first in linear memory (wasm-ld --stack-first): an
# overflow runs below address 0 and traps instead of corrupting the heap.
STACK_BYTES = 256 * 1024


class EngineNotBuilt(RuntimeError):
    """The engine module has not been built on this machine yet."""


def build_dir() -> Path:
    """Where the built engine lives: ``$TOLLGATE_ENGINE_DIR`` or next to the sources."""
    override = os.environ.get("TOLLGATE_ENGINE_DIR")
    return Path(override) if override else PACKAGE_DIR / "_built"


@dataclass(frozen=True)
class BuiltEngine:
    """A built engine module and its identity."""

    module: bytes
    build_id: str
    info: dict[str, object]
    lifecycle: Path


def load() -> BuiltEngine:
    """The built engine; raises :class:`EngineNotBuilt` with what to run."""
    directory = build_dir()
    try:
        info = json.loads((directory / "build.json").read_text())
        module = (directory / "engine.wasm").read_bytes()
        if not (directory / LIFECYCLE_LIBRARY).exists():
            raise FileNotFoundError(LIFECYCLE_LIBRARY)
    except FileNotFoundError:
        raise EngineNotBuilt(
            f"the WebAssembly engine is not built (looked in {directory}); run `make engine` or `tollgate engine build`"
        ) from None
    lifecycle = directory / LIFECYCLE_LIBRARY
    return BuiltEngine(module=module, build_id=str(info["build_id"]), info=info, lifecycle=lifecycle)
