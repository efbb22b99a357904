"""The Starlette application: the management API, the login endpoints and the web console.

Lifecycle: :func:`create_app` once per server process; its lifespan starts
the services (database, schema, keys, executor processes) and a sweeper for
expired cache entries, and stops them when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from runtime import metrics
from runtime.api import health
from runtime.api.errors import error_response, handle_exception
from runtime.api.openapi import document
from runtime.api.routes import ENDPOINTS
from runtime.api.services import read_services_forever, start_services, sweep_forever
from runtime.config import Settings
from runtime.console import routes as console_routes
from runtime.gctuning import settle_after_startup
from runtime.login import continuation, hosted
from runtime.login.pages import error_page

__all__ = ["app_from_environment", "create_app"]

log = logging.getLogger("tollgate")


def create_app(
    settings: Settings | None = None,
    *,
    executors: int | None = None,
    ready_message: str | None = None,
    server_process: bool = False,
    schema_ready: bool = False,
) -> Starlette:
    """The application; services start with its lifespan, which logs `ready_message` when they have.

    `server_process`: the app owns this process (``tollgate serve``), so its
    garbage collection is tuned for serving once the services have started.
    `schema_ready`: the database's schema was brought up to date before this
    process started (``tollgate serve`` does it once for all its processes).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await start_services(
            settings or Settings.from_environment(), executors=executors, schema_ready=schema_ready
        )
        app.state.services = services
        sweeper = asyncio.create_task(sweep_forever(services))
        gauges = asyncio.create_task(read_services_forever(services))
        if server_process:
            settle_after_startup()
        if ready_message:
            log.info("%s", ready_message)
        try:
            yield
        finally:
            services.closing = True
            sweeper.cancel()
            gauges.cancel()
            await services.close()
            metrics.process_stopped()

    openapi = document(ENDPOINTS)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return error_response(404, "not_found", f"No route {request.url.path}; see /api/v2/openapi.json")
        if exc.status_code == 405:
            return error_response(405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}")
        return error_response(exc.status_code, "http_error", str(exc.detail))

    async def refused_value(request: Request, exc: Exception) -> Response:
        # A value the database refuses as data (a NUL character in a form field, say): the request's fault.
        # Handled by class, so that it is answered without being logged as a crash.
        if request.url.path.startswith("/t/"):
            return error_page(400, "invalid_request", "The request holds a value that cannot be used.")
        return await handle_exception(request, exc)

    api_routes = [e.route() for e in ENDPOINTS]
    # Starlette tries routes in order, a regular expression each: what every login calls (the
    # flow API, /continue, the hosted login) comes before the management API. No path of one
    # group matches a route of another, so the order changes nothing else.
    flow_api = [r for r in api_routes if r.path.startswith("/api/v2/flows/")]
    routes = [
        *flow_api,
        *continuation.routes(),
        *hosted.routes(),
        Route("/api/v2/openapi.json", openapi_json, methods=["GET"]),
        *health.routes(),
        *(r for r in api_routes if r not in flow_api),
        *console_routes(),
    ]
    return _App(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, psycopg.DataError: refused_value, Exception: handle_exception},
        direct={(e.method, e.path): e.answer for e in ENDPOINTS if "{" not in e.path},
    )


class _App(Starlette):
    """Starlette, with the API's routes that have no path parameters answered straight from a table.

    Such a request skips Starlette's error middlewares and router, about 60 calls
    of Python per request: the flow API's login is the server's busiest route.
    Nothing is lost, since an Endpoint answers every error itself (with the
    same JSON errors the app's handlers give), and the app has no middleware
    of its own. Any other method or path, and HEAD, go through Starlette.
    """

    def __init__(self, *args: Any, direct: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]],
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self._direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = self._direct.get((scope.get("method", ""), scope["path"])) if scope["type"] == "http" else None
        if answer is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        response = await answer(Request(scope, receive, send))
        await response(scope, receive, send)


def app_from_environment() -> ASGIApp:
    """The application for one of several server processes (`tollgate serve --workers N`), with its access log
    unless `serve` was told to keep none."""
    from runtime.accesslog import AccessLog
    from runtime.server import configure_logging

    configure_logging(processes=True)  # a worker process starts with nothing configured
    # Started by `tollgate serve`, which has migrated the database for all its processes.
    app = create_app(
        Settings.from_environment(),
        ready_message=os.environ.get("TOLLGATE_READY_MESSAGE"),
        server_process=True,
        schema_ready=True,
    )
    return AccessLog(app, processes=True) if os.environ.get("TOLLGATE_ACCESS_LOG", "on") == "on" else app
