"""The byte formats across the guest boundary, and their validation.

Input record (host -> guest), little-endian, written to the guest's input
buffer before one call to ``tg_compile`` or ``tg_run``::

    u32 magic ("TGC1" compile, "TGR1" run)   u32 reserved
    u64 seed[4]            the execution's random seed (host CSPRNG)
    f64 now_ms             the execution's clock reading
    u32 heap_bytes         heap growth allowed (derived from memory_bytes)
    u32 stack_bytes, output_bytes, log_bytes, max_commands, max_host_calls
    u32 code_len           compile: source text; run: bytecode (none: loaded ahead)
    u32 request_len        msgpack: {"trigger", "handler", "event", "cache"}
    code, request, NUL

The request is msgpack because the guest decodes it straight into JS values
(guest/msgpack.c), several times faster than JSON.parse on the same event;
results come back as JSON, which the guest's JSON.stringify writes.

Status block (guest -> host), 19 x u32 at a fixed address: magic,
abort_reason, out_ptr, out_len, aux_ptr, aux_len, fault, host_calls,
heap_peak_bytes, input_ptr, input_cap, hostbuf_ptr, hostbuf_cap, log_ptr,
log_len, cmd_ptr, cmd_len, cmd_count, log_count. Both buffers are streams of msgpack
values written as the action runs (commands: maps with a "type"; console
output: [level, message] arrays), so they are readable even after a trap.
hostbuf_ptr is 0 until the guest's first host call makes the buffer the
host writes its answers to.

The outputs are hostile input: every field is checked here before anything
else reads it. A run's outcome (JSON at out_ptr) looks like::

    {"status": "completed" | "failed" | "incomplete",
     "error": null | {"class", "name", "message", "stack", "line", "column"}}
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgpack

from runtime.limits import Limits
from runtime.sandbox.errors import (
    ActionError,
    ActionIncomplete,
    ActionLimitExceeded,
    ActionMemoryExceeded,
    ActionProtocolError,
    ActionSyntaxError,
    ActionThrew,
    PlatformError,
)

MAGIC_COMPILE = 0x31434754
MAGIC_RUN = 0x31524754
MAGIC_PRELOAD = 0x31504754
MAGIC_STATUS = 0x31534754

HEADER = struct.Struct("<II4QdIIIIIIII")
STATUS = struct.Struct("<19I")

# Why the guest stopped itself (shim.c, prelude 00_core.js).
ABORT_NONE = 0
ABORT_MEMORY = 1
ABORT_OUTPUT = 2
ABORT_LOGS = 3
ABORT_COMMANDS = 4
ABORT_HOST_CALLS = 5
ABORT_BAD_INPUT = 6
ABORT_INTERNAL = 7

# What the guest writes for a run that completed (prelude 90_runner.js).
OUTCOME_COMPLETED = b'{"status":"completed","error":null}'
LOG_LEVELS = frozenset({"log", "info", "debug", "warn", "error", "trace"})
RESULT_STATUSES = frozenset({"completed", "failed", "incomplete"})
# The most an error's text fields may carry back.
MAX_ERROR_TEXT = 16 * 1024
# The most a compile report or a run's outcome (JSON) may be.
MAX_REPORT_BYTES = 4 * MAX_ERROR_TEXT


class Status(NamedTuple):
    """The guest's status block (see above)."""

    magic: int
    abort_reason: int
    out_ptr: int
    out_len: int
    aux_ptr: int
    aux_len: int
    fault: int
    host_calls: int
    heap_peak_bytes: int
    input_ptr: int
    input_cap: int
    hostbuf_ptr: int
    hostbuf_cap: int
    log_ptr: int
    log_len: int
    cmd_ptr: int
    cmd_len: int
    cmd_count: int
    log_count: int

    @classmethod
    def parse(cls, raw: bytes) -> Status:
        status = cls._make(STATUS.unpack(raw))
        if status.magic != MAGIC_STATUS:
            raise ActionProtocolError("the sandbox's status block is damaged")
        return status


def encode_input(
    magic: int,
    code: bytes,
    request: bytes,
    limits: Limits,
    *,
    heap_bytes: int,
    seed: bytes,
    now_ms: float,
) -> bytes:
    seeds = struct.unpack("<4Q", seed)
    header = HEADER.pack(
        magic,
        0,
        *seeds,
        now_ms,
        heap_bytes,
        limits.stack_bytes,
        limits.output_bytes,
        limits.log_bytes,
        limits.max_commands,
        limits.max_host_calls,
        len(code),
        len(request),
    )
    # A NUL after the record, for QuickJS's parsers that read up to one.
    return b"".join((header, code, request, b"\x00"))


def abort_error(reason: int, limits: Limits) -> ActionError | PlatformError:
    """The error for a guest that stopped itself with `reason`."""
    if reason == ABORT_MEMORY:
        return ActionMemoryExceeded(
            f"The action needed more than its memory limit of {limits.memory_bytes:,} bytes",
            limit="memory_bytes",
        )
    if reason == ABORT_OUTPUT:
        return ActionLimitExceeded(
            f"The action's commands exceeded the output limit of {limits.output_bytes:,} bytes",
            limit="output_bytes",
        )
    if reason == ABORT_LOGS:
        return ActionLimitExceeded(
            f"The action's console output exceeded the limit of {limits.log_bytes:,} bytes",
            limit="log_bytes",
        )
    if reason == ABORT_COMMANDS:
        return ActionLimitExceeded(
            f"The action recorded more than {limits.max_commands:,} commands", limit="max_commands"
        )
    if reason == ABORT_HOST_CALLS:
        return ActionLimitExceeded(
            f"The action made more than {limits.max_host_calls:,} platform calls (token validations and the like)",
            limit="max_host_calls",
        )
    if reason == ABORT_BAD_INPUT:
        return PlatformError("The sandbox refused its input")
    return PlatformError("The sandbox failed internally")


def _text(value: Any, field: str, limit: int = MAX_ERROR_TEXT) -> str:
    if not isinstance(value, str):
        raise ActionProtocolError(f"the sandbox returned a result whose {field} is not text")
    return value[:limit]


def _position(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 1 << 31:
        raise ActionProtocolError("the sandbox returned an error with an invalid position")
    return value


def error_from_guest(data: Any) -> ActionError:
    """The error a guest reported, checked field by field."""
    if not isinstance(data, dict):
        raise ActionProtocolError("the sandbox returned an error that is not an object")
    cls_name = _text(data.get("class"), "error class", 64)
    message = _text(data.get("message", ""), "error message")
    line = _position(data.get("line"))
    column = _position(data.get("column"))
    if cls_name == "action_syntax":
        return ActionSyntaxError(message, line=line, column=column)
    if cls_name == "action_incomplete":
        return ActionIncomplete(message)
    if cls_name == "action_error":
        return ActionThrew(
            message,
            name=_text(data.get("name", "Error"), "error name", 256),
            stack=_text(data.get("stack", ""), "stack"),
            line=line,
            column=column,
        )
    raise ActionProtocolError(f"the sandbox returned an unknown error class {cls_name!r}")


def parse_json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ActionProtocolError(f"the sandbox returned {what} that is not valid JSON") from None


def _array_header(count: int) -> bytes:
    if count < 16:
        return bytes([0x90 | count])
    if count < 1 << 16:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def _unpack_stream(raw: bytes, count: int, what: str) -> list[Any]:
    """`count` msgpack values written one after another, as a list."""
    if not raw:
        if count:
            raise ActionProtocolError(f"the sandbox returned {what} in an unknown format")
        return []
    try:
        values = msgpack.unpackb(_array_header(count) + raw, strict_map_key=True)
    except (ValueError, msgpack.UnpackException, RecursionError):
        raise ActionProtocolError(f"the sandbox returned {what} in an unknown format") from None
    if not isinstance(values, list):
        raise ActionProtocolError(f"the sandbox returned {what} in an unknown format")
    return values


def parse_logs(raw: bytes, count: int, limits: Limits) -> list[dict[str, str]]:
    """The console entries in a log buffer, checked."""
    if not raw and not count:
        return []
    if len(raw) > limits.log_bytes:
        raise ActionProtocolError("the sandbox wrote more console output than its limit allows")
    entries = _unpack_stream(raw, count, "console output")
    if not all(isinstance(e, list) and len(e) == 2 and e[0] in LOG_LEVELS and isinstance(e[1], str) for e in entries):
        raise ActionProtocolError("the sandbox returned console output in an unknown format")
    return [{"level": level, "message": message} for level, message in entries]


def parse_commands(raw: bytes, count: int, limits: Limits) -> list[dict[str, Any]]:
    """The recorded commands, checked against the format and the limits."""
    if len(raw) > limits.output_bytes:
        raise ActionLimitExceeded(
            f"The action's commands exceeded the output limit of {limits.output_bytes:,} bytes",
            limit="output_bytes",
        )
    if count > limits.max_commands:
        raise ActionLimitExceeded(
            f"The action recorded more than {limits.max_commands:,} commands", limit="max_commands"
        )
    commands = _unpack_stream(raw, count, "commands")
    if not all(isinstance(c, dict) and isinstance(c.get("type"), str) for c in commands):
        raise ActionProtocolError("the sandbox returned commands that are not a list of typed objects")
    return commands


@dataclass(frozen=True, slots=True)
class RunOutcome:
    status: str
    error: ActionError | None


COMPLETED = RunOutcome(status="completed", error=None)


def parse_outcome(raw: bytes) -> RunOutcome:
    """A run's status and error, checked."""
    if raw == OUTCOME_COMPLETED:
        return COMPLETED
    data = parse_json(raw, "an outcome")
    if not isinstance(data, dict):
        raise ActionProtocolError("the sandbox returned an outcome that is not an object")
    status = data.get("status")
    if status not in RESULT_STATUSES:
        raise ActionProtocolError("the sandbox returned an outcome without a valid status")
    error_data = data.get("error")
    error = None if error_data is None else error_from_guest(error_data)
    if (status == "completed") != (error is None):
        raise ActionProtocolError("the sandbox returned an outcome whose status and error disagree")
    return RunOutcome(status=str(status), error=error)


def parse_compile_report(raw: bytes) -> list[str]:
    """The handler names a compile found, or the error it reported (raised)."""
    data = parse_json(raw, "a compile report")
    if not isinstance(data, dict) or not isinstance(data.get("ok"), bool):
        raise ActionProtocolError("the sandbox returned a compile report in an unknown format")
    if not data["ok"]:
        raise error_from_guest(data.get("error"))
    handlers = data.get("handlers")
    if not isinstance(handlers, list) or not all(isinstance(h, str) for h in handlers):
        raise ActionProtocolError("the sandbox returned a compile report without handlers")
    return handlers
