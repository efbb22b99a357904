"""The access log: uvicorn's lines, made cheaply and written in batches."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.accesslog import AccessLog


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The root logger's stream, as the server configures it: where the other log lines go too."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    saved = root.handlers[:]
    root.handlers = [handler]
    yield stream
    root.handlers = saved
    root.removeHandler(handler)


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    status = 204 if scope["path"] == "/empty" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _request(path: str, query: bytes = b"", method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "query_string": query,
            "http_version": "1.1", "client": ("203.0.113.7", 50123), "headers": []}  # fmt: skip


async def _call(app: AccessLog, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


LINE = re.compile(r"^\d\d:\d\d:\d\d INFO    \[(\d+)\] (.*)$")


def test_a_line_per_request_as_uvicorn_wrote_it_after_a_moment_not_at_once(log_stream: io.StringIO) -> None:
    app = AccessLog(_answer, processes=True)

    async def scenario() -> tuple[str, list[dict[str, Any]]]:
        sent = await _call(app, _request("/api/v2/flows/post-login", method="POST"))
        await _call(app, _request("/t/acme bank/authorize", b"client_id=abc&state=x%20y"))
        await _call(app, _request("/empty"))
        before = log_stream.getvalue()
        await asyncio.sleep(AccessLog.FLUSH_S * 2)
        return before, sent

    before, sent = asyncio.run(scenario())
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]  # passed on unchanged
    assert before == ""  # batched
    lines = log_stream.getvalue().splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert {m.group(1) for m in parsed if m} == {str(os.getpid())}
    assert [m.group(2) for m in parsed if m] == [
        '203.0.113.7:50123 - "POST /api/v2/flows/post-login HTTP/1.1" 200',
        '203.0.113.7:50123 - "GET /t/acme%20bank/authorize?client_id=abc&state=x%20y HTTP/1.1" 200',
        '203.0.113.7:50123 - "GET /empty HTTP/1.1" 204',
    ]


def test_a_full_batch_is_written_at_once(log_stream: io.StringIO) -> None:
    app = AccessLog(_answer, processes=False)

    async def scenario() -> int:
        for _ in range(AccessLog.MAX_LINES):
            await _call(app, _request("/healthz"))
        return len(log_stream.getvalue().splitlines())

    assert asyncio.run(scenario()) == AccessLog.MAX_LINES
    assert re.match(r'^\d\d:\d\d:\d\d INFO    203\.0\.113\.7:50123 - "GET /healthz HTTP/1\.1" 200$',
                    log_stream.getvalue().splitlines()[0])  # fmt: skip


def test_the_lines_waiting_are_written_when_the_server_stops(log_stream: io.StringIO) -> None:
    async def lifespan_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await _answer(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
            await send({"type": "lifespan.startup.complete"})

    app = AccessLog(lifespan_app, processes=False)

    async def scenario() -> str:
        await _call(app, _request("/last"))
        messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

        async def receive() -> dict[str, Any]:
            return next(messages)

        async def send(message: dict[str, Any]) -> None:
            pass

        await app({"type": "lifespan"}, receive, send)
        return log_stream.getvalue()  # at once, not after the batch's delay

    assert '"GET /last HTTP/1.1" 200' in asyncio.run(scenario())
