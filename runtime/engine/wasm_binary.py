"""Just enough of the WebAssembly binary format to pre-initialise a module.

Pre-initialisation (as Wizer does it): run the module's start-up once, then
write a new module whose data segments hold the memory that start-up left
and whose globals start at the values it left, so that every instance
begins where start-up ended. Two rewrites are needed:

- :func:`export_globals` adds an export for each defined global, so that the
  host can read their values after start-up;
- :func:`snapshot` writes the pre-initialised module.

Runs once per engine build.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "GlobalValue",
    "WasmFormatError",
    "defined_globals",
    "export_globals",
    "imports",
    "memory_minimum_bytes",
    "snapshot",
]

MAGIC = b"\x00asm\x01\x00\x00\x00"
PAGE_BYTES = 65536

SEC_CUSTOM = 0
SEC_IMPORT = 2
SEC_TABLE = 4
SEC_MEMORY = 5
SEC_GLOBAL = 6
SEC_EXPORT = 7
SEC_START = 8
SEC_DATA = 11
SEC_DATA_COUNT = 12

VALTYPE_CONST_OPCODES = {0x7F: 0x41, 0x7E: 0x42, 0x7D: 0x43, 0x7C: 0x44}  # i32 i64 f32 f64
EXPORT_GLOBAL = 0x03
OP_END = 0x0B

# Zero runs shorter than this stay inside a data segment rather than
# splitting it: fewer, larger segments.
SEGMENT_GAP_BYTES = 1024


class WasmFormatError(ValueError):
    """The bytes are not a module this rewriter understands."""


@dataclass(frozen=True)
class GlobalValue:
    """A defined global's type byte and its value after start-up."""

    valtype: int
    value: int | float


def _uleb(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise WasmFormatError("truncated LEB128")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def _sleb_skip(buf: bytes, pos: int) -> int:
    while buf[pos] & 0x80:
        pos += 1
    return pos + 1


def _enc_uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _enc_sleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        done = (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40)
        out.append(byte if done else byte | 0x80)
        if done:
            return bytes(out)


def _name(text: str) -> bytes:
    raw = text.encode()
    return _enc_uleb(len(raw)) + raw


def _sections(module: bytes) -> Iterator[tuple[int, bytes]]:
    if module[:8] != MAGIC:
        raise WasmFormatError("not a WebAssembly 1.0 module")
    pos = 8
    while pos < len(module):
        sid = module[pos]
        size, pos = _uleb(module, pos + 1)
        if pos + size > len(module):
            raise WasmFormatError("section runs past the end of the module")
        yield sid, module[pos : pos + size]
        pos += size


def _section(sid: int, body: bytes) -> bytes:
    return bytes([sid]) + _enc_uleb(len(body)) + body


def _vec(items: list[bytes]) -> bytes:
    return _enc_uleb(len(items)) + b"".join(items)


def _imported_global_count(body: bytes) -> int:
    count, pos = _uleb(body, 0)
    globals_ = 0
    for _ in range(count):
        for _ in range(2):  # module and field names
            n, pos = _uleb(body, pos)
            pos += n
        kind = body[pos]
        pos += 1
        if kind == 0x00:  # func: type index
            _, pos = _uleb(body, pos)
        elif kind == 0x01:  # table: reftype + limits
            pos += 1
            flags, pos = _uleb(body, pos)
            _, pos = _uleb(body, pos)
            if flags & 1:
                _, pos = _uleb(body, pos)
        elif kind == 0x02:  # memory: limits
            flags, pos = _uleb(body, pos)
            _, pos = _uleb(body, pos)
            if flags & 1:
                _, pos = _uleb(body, pos)
        elif kind == 0x03:  # global: valtype + mutability
            pos += 2
            globals_ += 1
        else:
            raise WasmFormatError(f"unknown import kind {kind}")
    return globals_


def imports(module: bytes) -> list[tuple[str, str]]:
    """(module, name) of every import."""
    found: list[tuple[str, str]] = []
    for sid, body in _sections(module):
        if sid != SEC_IMPORT:
            continue
        count, pos = _uleb(body, 0)
        for _ in range(count):
            names = []
            for _ in range(2):
                n, pos = _uleb(body, pos)
                names.append(body[pos : pos + n].decode())
                pos += n
            found.append((names[0], names[1]))
            kind = body[pos]
            pos += 1
            if kind == 0x00:
                _, pos = _uleb(body, pos)
            elif kind in (0x01, 0x02):
                pos += 1 if kind == 0x01 else 0
                flags, pos = _uleb(body, pos)
                _, pos = _uleb(body, pos)
                if flags & 1:
                    _, pos = _uleb(body, pos)
            elif kind == 0x03:
                pos += 2
            else:
                raise WasmFormatError(f"unknown import kind {kind}")
    return found


def memory_minimum_bytes(module: bytes) -> int:
    """The initial size of the module's (one, defined) memory."""
    for sid, body in _sections(module):
        if sid == SEC_MEMORY:
            _, pos = _uleb(body, 0)
            _, pos = _uleb(body, pos)
            pages, _ = _uleb(body, pos)
            return int(pages) * PAGE_BYTES
    raise WasmFormatError("the module defines no memory")


def table_elements(module: bytes) -> int:
    """Elements in the module's defined tables at instantiation, all tables together."""
    total = 0
    for sid, body in _sections(module):
        if sid == SEC_TABLE:
            count, pos = _uleb(body, 0)
            for _ in range(count):
                pos += 1  # reference type
                flags, pos = _uleb(body, pos)
                minimum, pos = _uleb(body, pos)
                if flags & 1:
                    _, pos = _uleb(body, pos)
                total += minimum
    return total


def _global_entries(body: bytes) -> list[tuple[int, int, bytes]]:
    """(valtype, mutability, init expression) of each defined global."""
    count, pos = _uleb(body, 0)
    entries = []
    for _ in range(count):
        valtype, mut = body[pos], body[pos + 1]
        start = pos = pos + 2
        opcode = body[pos]
        if opcode in (0x41, 0x42):
            pos = _sleb_skip(body, pos + 1)
        elif opcode == 0x43:
            pos += 5
        elif opcode == 0x44:
            pos += 9
        elif opcode == 0x23:  # global.get
            _, pos = _uleb(body, pos + 1)
        else:
            raise WasmFormatError(f"unsupported global initialiser opcode {opcode:#x}")
        if body[pos] != OP_END:
            raise WasmFormatError("global initialiser is not a single constant")
        pos += 1
        entries.append((valtype, mut, body[start:pos]))
    return entries


def defined_globals(module: bytes) -> list[tuple[int, int]]:
    """(index, valtype) of every mutable global the module defines."""
    imported = 0
    found: list[tuple[int, int]] = []
    for sid, body in _sections(module):
        if sid == SEC_IMPORT:
            imported = _imported_global_count(body)
        elif sid == SEC_GLOBAL:
            for i, (valtype, mut, _) in enumerate(_global_entries(body)):
                if mut:
                    found.append((imported + i, valtype))
    return found


def global_export_name(index: int) -> str:
    return f"__tg_global_{index}"


def export_globals(module: bytes) -> bytes:
    """The same module, with every mutable defined global exported."""
    extra = [_name(global_export_name(i)) + bytes([EXPORT_GLOBAL]) + _enc_uleb(i) for i, _ in defined_globals(module)]
    out = bytearray(MAGIC)
    for sid, body in _sections(module):
        if sid == SEC_EXPORT:
            count, pos = _uleb(body, 0)
            body = _enc_uleb(count + len(extra)) + body[pos:] + b"".join(extra)
        out += _section(sid, body)
    return bytes(out)


def _const(valtype: int, value: int | float) -> bytes:
    opcode = VALTYPE_CONST_OPCODES.get(valtype)
    if opcode is None:
        raise WasmFormatError(f"cannot snapshot a global of type {valtype:#x}")
    if valtype in (0x7F, 0x7E):
        bits = 32 if valtype == 0x7F else 64
        ivalue = int(value)
        if ivalue >= 1 << (bits - 1):
            ivalue -= 1 << bits
        return bytes([opcode]) + _enc_sleb(ivalue) + bytes([OP_END])
    fmt = "<f" if valtype == 0x7D else "<d"
    return bytes([opcode]) + struct.pack(fmt, float(value)) + bytes([OP_END])


def _data_segments(memory: bytes) -> list[bytes]:
    """Active data segments holding every non-zero byte of `memory`."""
    segments: list[bytes] = []
    gap = b"\x00" * SEGMENT_GAP_BYTES
    pos = 0
    while True:
        start = len(memory) - len(memory[pos:].lstrip(b"\x00"))
        if start >= len(memory):
            return segments
        stop = memory.find(gap, start)
        chunk = memory[start : len(memory) if stop == -1 else stop].rstrip(b"\x00")
        offset = bytes([0x41]) + _enc_sleb(start) + bytes([OP_END])
        segments.append(b"\x00" + offset + _enc_uleb(len(chunk)) + chunk)
        pos = start + len(chunk)


def snapshot(
    module: bytes,
    memory: bytes,
    global_values: dict[int, GlobalValue],
    drop_exports: frozenset[str],
) -> bytes:
    """The pre-initialised module.

    `memory` is the whole linear memory after start-up, `global_values` the
    mutable globals by index, `drop_exports` the start-up exports that must
    not run again. Debug sections are dropped; the name section is kept so
    that traps still name functions.
    """
    if len(memory) % PAGE_BYTES:
        raise WasmFormatError("the memory image is not a whole number of pages")
    pages = len(memory) // PAGE_BYTES
    imported = 0
    segments = _data_segments(memory)
    seen: set[int] = set()
    out = bytearray(MAGIC)
    for sid, body in _sections(module):
        if sid == SEC_CUSTOM:
            n, pos = _uleb(body, 0)
            if body[pos : pos + n] != b"name":
                continue
        elif sid == SEC_IMPORT:
            imported = _imported_global_count(body)
        elif sid == SEC_MEMORY:
            count, pos = _uleb(body, 0)
            if count != 1:
                raise WasmFormatError("expected exactly one memory")
            flags, pos = _uleb(body, pos)
            _, pos = _uleb(body, pos)
            rest = body[pos:]
            body = _enc_uleb(1) + _enc_uleb(flags) + _enc_uleb(pages) + rest
        elif sid == SEC_GLOBAL:
            entries = []
            for i, (valtype, mut, init) in enumerate(_global_entries(body)):
                value = global_values.get(imported + i)
                if mut and value is not None:
                    init = _const(valtype, value.value)
                entries.append(bytes([valtype, mut]) + init)
            body = _vec(entries)
        elif sid == SEC_EXPORT:
            count, pos = _uleb(body, 0)
            kept = []
            for _ in range(count):
                start = pos
                n, pos = _uleb(body, pos)
                name = body[pos : pos + n].decode()
                pos += n + 1
                _, pos = _uleb(body, pos)
                if name not in drop_exports and not name.startswith("__tg_global_"):
                    kept.append(body[start:pos])
            body = _vec(kept)
        elif sid == SEC_START:
            raise WasmFormatError("a module with a start function cannot be snapshotted")
        elif sid == SEC_DATA_COUNT:
            body = _enc_uleb(len(segments))
        elif sid == SEC_DATA:
            body = _vec(segments)
        out += _section(sid, body)
        seen.add(sid)
    if SEC_DATA not in seen:
        raise WasmFormatError("the module has no data section to replace")
    return bytes(out)
