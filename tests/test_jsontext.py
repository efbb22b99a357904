"""JSON on the hot paths: the document the standard library would write, the value it would read, or its error."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from runtime import jsontext
from runtime.jsontext import dumps, loads
from runtime.store import Store

ORDINARY: list[Any] = [
    {"user": {"user_id": "auth0|1", "name": "Zoë Ångström", "tags": ["a", "b"], "n": 3, "x": 1.5}},
    [None, True, False, 0, -1, 2**63 - 1, 1e300, "\u2028", "\x00", "😀"],
    {"nested": {"deep": [{"k": [1, [2, [3]]]}]}, "empty": {}, "none": []},
    "plain",
]


@pytest.mark.parametrize("value", ORDINARY)
def test_ordinary_data_gives_the_same_document(value: Any) -> None:
    text = dumps(value)
    assert json.loads(text) == value
    # Same keys in the same order: the json column keeps the text as written.
    assert list(json.loads(text, object_pairs_hook=lambda pairs: [k for k, _ in pairs]) or []) == list(
        json.loads(json.dumps(value), object_pairs_hook=lambda pairs: [k for k, _ in pairs]) or []
    )


@pytest.mark.parametrize(
    "value",
    [{1: "int key"}, {"big": 2**80}, {"lone": "\ud800"}, [-(2**70)]],
    ids=["non-string key", "big integer", "lone surrogate", "big negative"],
)
def test_what_orjson_would_refuse_is_written_by_the_standard_library(value: Any) -> None:
    assert dumps(value) == json.dumps(value)


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize("value", [{"at": datetime(2026, 1, 1, tzinfo=UTC)}, {"p": Point(1)}, {"s": {1, 2}}])
def test_what_the_standard_library_refuses_is_still_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        dumps(value)


def test_the_stores_connections_write_json_through_it(new_database: Any) -> None:
    """Round trips through a real json column: what orjson writes (UTF-8, not escapes) and what it leaves
    to the standard library (an integer past 64 bits) both come back unchanged."""
    import asyncio

    from psycopg.types.json import Json

    url = new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE docs (n int PRIMARY KEY, body json NOT NULL)")
    values = [{"name": "Zoë", "list": [1, "😀"], "at": "2026-01-01T00:00:00.000Z"}, {"name": "Zoë", "big": 2**80}]

    async def scenario() -> list[Any]:
        store = await Store.open(url, None)
        try:
            async with store.pool.connection() as conn:
                for n, value in enumerate(values):
                    await conn.execute("INSERT INTO docs VALUES (%s, %s)", (n, Json(value)))
                cursor = await conn.execute("SELECT body, body::text AS text FROM docs ORDER BY n")
                return await cursor.fetchall()
        finally:
            await store.close()

    rows = asyncio.run(scenario())
    assert [row["body"] for row in rows] == values
    assert type(rows[1]["body"]["big"]) is int  # read back exactly, as the standard library reads it
    assert '"Zoë"' in rows[0]["text"]  # orjson's UTF-8
    assert "Zo\\u00eb" in rows[1]["text"]  # the standard library's escapes


def _typed(value: Any) -> Any:
    """`value` with the type of every scalar beside it (1 and 1.0 and True compare equal in Python); NaN as text."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    return (type(value).__name__, value)


READ: list[str] = [
    '{"user":{"user_id":"auth0|1","name":"Zo\\u00eb \u00c5","n":3,"x":1.5,"tags":["a",null,true,false]}}',
    '{"a":1,"a":2}',  # the last of duplicate keys
    " [0, -0, -0.0, 1.0, 1E2, 2.5e-3, 1e-400, 9223372036854775807] ",
    "123456789012345678901234567890",  # integers past 64 bits stay exact
    "[18446744073709551616, -9223372036854775809, 1.0000000000000000000001]",
    '{"id": 18446744073709552000}',  # what JSON.stringify writes for 2**64
    "[1e400, -1e400]",  # past the float range: the infinities
    '"\\ud800"',  # a lone surrogate
    '"\\ud83d\\ude00 and \\u0000"',
    '{"deep":' * 50 + "1" + "}" * 50,
]


@pytest.mark.parametrize("text", READ)
@pytest.mark.parametrize("as_bytes", [False, True], ids=["text", "bytes"])
def test_reading_gives_what_the_standard_library_reads(text: str, as_bytes: bool) -> None:
    document = text.encode() if as_bytes else text
    assert _typed(loads(document)) == _typed(json.loads(document))


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


@pytest.mark.parametrize(
    "text",
    ['{"a":', "NaN", "[1, Infinity]", '"\x01"', "\ufeff{}", "[1,]", "{'a': 1}", "", "[" * 100_000],
    ids=["cut short", "NaN", "Infinity", "control character", "BOM", "trailing comma", "quotes", "empty", "deep"],
)
def test_reading_refuses_what_the_standard_library_refuses_with_its_message(text: str) -> None:
    with pytest.raises((ValueError, RecursionError)) as expected:
        json.loads(text, parse_constant=_refuse)
    with pytest.raises(type(expected.value)) as got:
        loads(text, parse_constant=_refuse)
    assert str(got.value) == str(expected.value)


def test_a_lone_surrogate_in_the_text_itself_is_read_as_the_standard_library_reads_it() -> None:
    text = '{"name": "a\ud800b"}'  # not an escape: the character, which UTF-8 cannot encode
    assert loads(text) == json.loads(text) == {"name": "a\ud800b"}


def test_reading_without_parse_constant_takes_nan_as_the_standard_library_does() -> None:
    assert _typed(loads("[NaN, Infinity, -Infinity]")) == _typed(json.loads("[NaN, Infinity, -Infinity]"))


def test_a_frozen_value_is_written_as_it_was_when_frozen() -> None:
    event = {"user": {"app_metadata": {"plan": "free"}}, "n": 1}
    frozen = jsontext.frozen(event)
    event["user"]["app_metadata"]["plan"] = "gold"  # an action's change, after the flow started
    event["n"] = 2
    written = jsontext.dumps({"event": frozen, "status": "completed"})
    assert json.loads(written) == {"event": {"user": {"app_metadata": {"plan": "free"}}, "n": 1}, "status": "completed"}


def test_a_frozen_value_in_a_document_the_standard_library_writes() -> None:
    """Another part of the document needs the standard library (an integer past 64 bits): the frozen value
    is written in it all the same."""
    frozen = jsontext.frozen({"name": "zoë", "list": [1, 2.5, None]})
    text = jsontext.dumps({"event": frozen, "big": 2**70})
    assert isinstance(text, str)
    assert json.loads(text) == {"event": {"name": "zoë", "list": [1, 2.5, None]}, "big": 2**70}


def test_a_value_orjson_cannot_write_is_frozen_as_a_copy() -> None:
    event = {"big": 2**70, "inner": {"a": 1}}
    frozen = jsontext.frozen(event)
    event["inner"]["a"] = 2
    assert frozen == {"big": 2**70, "inner": {"a": 1}}
    assert json.loads(jsontext.dumps({"event": frozen})) == {"event": {"big": 2**70, "inner": {"a": 1}}}
