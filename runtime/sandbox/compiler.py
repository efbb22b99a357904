"""Compile an action's source to bytecode, inside the sandbox.

Untrusted source is never parsed by the host: QuickJS parses it in a fresh
instance under the same limits as an execution. The action's top-level code
runs there once so that its exports can be checked (async functions with
the trigger's handler names); its console output is dropped.

Runs once per upload or update of an action, and again only when the engine
build changes (the bytecode format belongs to one build).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import msgpack

from runtime.limits import Limits
from runtime.sandbox import _protocol as proto
from runtime.sandbox._engine import engine, guest_call
from runtime.sandbox.errors import ActionProtocolError, ActionSyntaxError, PlatformError

__all__ = ["MAX_SOURCE_BYTES", "CompiledAction", "compile_action"]

MAX_SOURCE_BYTES = 100 * 1024


@dataclass(frozen=True)
class CompiledAction:
    """An action compiled by one engine build.

    Only :func:`compile_action` makes these; the platform stores them and
    passes them between processes, but never accepts bytecode from a
    tenant. The bytecode is checked against its digest when the object is
    made (loaded from the store, received over a pipe), so an execution
    never loads bytes that differ from what the compiler produced.
    """

    source: str
    trigger: str
    bytecode: bytes
    handlers: tuple[str, ...]
    build_id: str
    source_sha256: str
    bytecode_sha256: str

    def __post_init__(self) -> None:
        if hashlib.sha256(self.bytecode).hexdigest() != self.bytecode_sha256:
            raise PlatformError("The action's bytecode does not match its digest; compile the action again")

    def to_wire(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "trigger": self.trigger,
            "bytecode": self.bytecode,
            "handlers": list(self.handlers),
            "build_id": self.build_id,
            "source_sha256": self.source_sha256,
            "bytecode_sha256": self.bytecode_sha256,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> CompiledAction:
        return cls(
            source=str(data["source"]),
            trigger=str(data["trigger"]),
            bytecode=bytes(data["bytecode"]),
            handlers=tuple(data["handlers"]),
            build_id=str(data["build_id"]),
            source_sha256=str(data["source_sha256"]),
            bytecode_sha256=str(data["bytecode_sha256"]),
        )


def _check_source(source: str | bytes, max_bytes: int) -> str:
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ActionSyntaxError(
                f"The file is not JavaScript: it is not UTF-8 text (invalid byte at offset {exc.start})"
            ) from None
    if source.startswith("\ufeff"):
        source = source[1:]
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ActionSyntaxError(f"The source is {size:,} bytes; actions may be at most {max_bytes:,} bytes")
    if "\x00" in source:
        raise ActionSyntaxError("The file is not JavaScript: it contains NUL characters")
    return source


def compile_action(
    source: str | bytes,
    *,
    trigger: str = "post-login",
    limits: Limits | None = None,
    max_source_bytes: int = MAX_SOURCE_BYTES,
) -> CompiledAction:
    """Compile `source` for `trigger`, or raise the :class:`ActionError` saying why not.

    Raises :class:`ActionSyntaxError` (with line and column where they
    apply) for syntax errors, text that is not JavaScript and missing or
    non-async handlers; :class:`ActionThrew` when the top-level code throws;
    the limit errors when top-level code runs away.
    """
    limits = limits or Limits()
    text = _check_source(source, max_source_bytes)
    code = text.encode("utf-8", "surrogatepass")
    request = msgpack.packb({"trigger": trigger})
    call = guest_call(
        b"tg_compile",
        proto.MAGIC_COMPILE,
        code,
        request,
        limits,
        seed=secrets.token_bytes(32),
        now_ms=time.time() * 1000,
    )
    if call.stopped is not None:
        raise call.stopped
    handlers = proto.parse_compile_report(call.output)
    if not call.aux:
        raise ActionProtocolError("the sandbox compiled the action but returned no bytecode")
    return CompiledAction(
        source=text,
        trigger=trigger,
        bytecode=call.aux,
        handlers=tuple(handlers),
        build_id=engine().build_id,
        source_sha256=hashlib.sha256(code).hexdigest(),
        bytecode_sha256=hashlib.sha256(call.aux).hexdigest(),
    )
