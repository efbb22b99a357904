"""JSON text on the hot paths: orjson where it writes what the standard library would, the standard library otherwise.

Every login encodes its execution record (the event and its actions'
results, several KB) for the store and its outcome for the caller; with the
standard library that was a quarter to a third of the client's work for the record.
orjson writes the same compact JSON with the keys in order, in UTF-8 rather
than with ``\\u`` escapes (PostgreSQL and HTTP clients read both alike).
What it would write differently or refuses (non-string keys, integers past
64 bits, lone surrogates, and dates, dataclasses or subclasses of the basic
types, which it would convert on its own) is left to the standard library,
so such a document, or its error, is what it always was. orjson writes NaN
and the infinities as ``null`` where the standard library wrote tokens that
PostgreSQL and strict parsers refuse; what actions hand over never holds
them (the guest passes values on as JSON would, non-finite numbers as null).

Reading is the same bargain: every login parses its request body and the
JSON its flow reads from the store, and orjson does it in about three fifths
of the time (a login's 1.9 KB event: 7.8 µs against 12.8, the check below
included). It returns what the standard library returns, except that it reads
integers past 64 bits as floats and refuses what the standard library reads
leniently (NaN and the infinities, numbers past the float range, lone
surrogates); text with a run of 19 digits, where such integers start, and
text orjson refuses go to the standard library, which then returns what, or
raises the error, it always did.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["Frozen", "dumps", "encode", "frozen", "loads"]

_AS_THE_STANDARD_LIBRARY = (
    orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def encode(value: Any) -> bytes | None:
    """Compact UTF-8 JSON for `value`, or None when the standard library must write it."""
    try:
        return orjson.dumps(value, default=_fragment, option=_AS_THE_STANDARD_LIBRARY)
    except TypeError:
        return None


def dumps(value: Any) -> bytes | str:
    """JSON text for a ``json`` or ``jsonb`` parameter of the store (a :func:`frozen` value in it as it was)."""
    text = encode(value)
    return text if text is not None else json.dumps(value, default=_thawed)


class Frozen:
    """A value's JSON text as :func:`frozen` wrote it."""

    __slots__ = ("fragment", "text")

    def __init__(self, text: bytes) -> None:
        self.text = text
        self.fragment = orjson.Fragment(text)  # what orjson writes as it is


def frozen(value: Any) -> Any:
    """`value` as it is now, for :func:`dumps` to write later whatever becomes of `value` meanwhile.

    Its JSON text, written now (2 µs for a login's 1.9 KB event, against 21 µs for
    a deep copy), or a deep copy where the standard library must write it.
    """
    text = encode(value)
    if text is None:
        return json.loads(json.dumps(value))
    return Frozen(text)


def _fragment(value: Any) -> Any:
    if isinstance(value, Frozen):
        return value.fragment
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _thawed(value: Any) -> Any:
    # The standard library writing a document with a frozen value in it (another part needs it): the value.
    if isinstance(value, Frozen):
        return loads(value.text)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Where an integer orjson would read as a float may start (2**63 has 19 digits). Found by mapping digits to
# b"1" and every other byte to b"0" and looking for 19 ones: a regular expression took twice as long as the
# parse it guards (25 µs for a login's 1.9 KB event, against 2 µs this way).
_DIGITS_AS_ONES = bytes(0x31 if 0x30 <= byte <= 0x39 else 0x30 for byte in range(256))
_LONG_DIGITS = b"1" * 19


def loads(text: str | bytes, *, parse_constant: Callable[[str], Any] | None = None) -> Any:
    """The value of the JSON `text`, or the error, as ``json.loads(text, parse_constant=...)`` has them."""
    try:
        data = text.encode() if isinstance(text, str) else text
    except UnicodeEncodeError:  # lone surrogates in the text: the standard library's to read
        data = None
    if data is not None and _LONG_DIGITS not in data.translate(_DIGITS_AS_ONES):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the standard library says what is wrong, or reads it leniently as it always did
    return json.loads(text, parse_constant=parse_constant)
