"""The access log: a line per request, written in batches.

uvicorn writes its access log through :mod:`logging`, a record, a formatter,
a lock and a write to the log's stream for every request: 4-6% of a login's
server CPU in the flow benchmark. These are the same lines (the time, the
level, the server process's id where there are several, the client, the
request line and the status), each made with one f-string when the response
starts, and written together at most ``FLUSH_S`` after the first of them, or
at once when ``MAX_LINES`` wait, as nginx's ``access_log ... buffer= flush=``
does. So a line can come up to a tenth of a second after a line the server
logged later, and a server process killed outright (SIGKILL) loses at most
its last tenth of a second of them; a clean stop writes them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["AccessLog"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class AccessLog:
    """ASGI middleware: the access log of the application it wraps."""

    FLUSH_S = 0.1
    MAX_LINES = 512

    def __init__(self, app: App, *, processes: bool) -> None:
        self.app = app
        # As the log's format writes the rest: "%(asctime)s %(levelname)-7s [%(process)d] %(message)s".
        self._after_time = f" INFO    [{os.getpid()}] " if processes else " INFO    "
        self._lines: list[str] = []
        self._second = -1
        self._clock = ""
        self._timer: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    self._add(scope, message["status"])
                await send(message)

            await self.app(scope, receive, sending)
        elif scope["type"] == "lifespan":

            async def stopping(message: Message) -> None:
                if message["type"].startswith("lifespan.shutdown."):
                    self.flush()  # the server stops: every line out before it does
                await send(message)

            await self.app(scope, receive, stopping)
        else:
            await self.app(scope, receive, send)

    def _add(self, scope: Scope, status: int) -> None:
        now = time.time()
        if int(now) != self._second:
            self._second = int(now)
            self._clock = time.strftime("%H:%M:%S", time.localtime(now))
        client = scope.get("client")
        where = f"{client[0]}:{client[1]}" if client else ""
        path = urllib.parse.quote(scope.get("root_path", "") + scope["path"])
        if scope.get("query_string"):
            path = f"{path}?{scope['query_string'].decode('ascii')}"
        self._lines.append(
            f'{self._clock}{self._after_time}{where} - "{scope["method"]} {path} HTTP/{scope["http_version"]}" '
            f"{status}\n"
        )
        if len(self._lines) >= self.MAX_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.FLUSH_S, self.flush)

    def flush(self) -> None:
        """Write the waiting lines, through the stream the server's other log lines go to."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        text, self._lines = "".join(self._lines), []
        handler = next((h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)), None)
        try:
            if handler is None:
                sys.stderr.write(text)
                sys.stderr.flush()
                return
            with handler.lock or contextlib.nullcontext():  # not between the parts of another log line
                handler.stream.write(text)
                handler.flush()
        except (OSError, ValueError):  # the log's stream is closed or broken: nothing else to tell it to
            pass
