"""The store's JSON parameters: the document the standard library would write, or its error."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from runtime.jsontext import dumps
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
    assert '"Zoë"' in rows[0]["text"]  # orjson's UTF-8
    assert "Zo\\u00eb" in rows[1]["text"]  # the standard library's escapes
