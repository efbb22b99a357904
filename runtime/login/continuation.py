"""``/t/{tenant}/continue``: where the browser comes back after an action's redirect.

GET or POST, with the platform's ``state`` in the query or the form body.
The suspended flow is taken once (an unknown, expired, used or other
tenant's state is a 400 ``invalid_request`` and runs no code), the same
action version's ``onContinuePostLogin`` runs with a fresh ``event.request``
describing this request, then the rest of the flow.

Who started the flow decides what happens when it stops: an :class:`Origin`
per kind (``hosted``: the hosted login; ``api``: the flow API) writes its own
rows in the flow's final transaction and answers the browser.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.api.services import Services
from runtime.flows import FlowResult
from runtime.login.pages import error_page
from runtime.store.base import Writer
from runtime.store.errors import NotFound, StoreUnavailable

__all__ = ["BROWSER_COOKIE", "FORM_LIMIT_BYTES", "ORIGINS", "Origin", "read_form", "request_event", "routes"]

log = logging.getLogger("tollgate.login")

FORM_LIMIT_BYTES = 64 * 1024
# The cookie that binds a suspended hosted login to the browser that started it.
BROWSER_COOKIE = "tg_browser"


class Origin(Protocol):
    """What started a flow: how to persist and answer when it stops."""

    async def persist(self, services: Services, conn: Writer, result: FlowResult) -> dict[str, Any]: ...

    def respond(self, request: Request, result: FlowResult, *, after_post: bool) -> Response: ...


ORIGINS: dict[str, Origin] = {}


class FormTooLarge(ValueError):
    pass


async def read_form(request: Request) -> dict[str, str]:
    """A POST body as a flat mapping: URL-encoded form or a JSON object; capped at FORM_LIMIT_BYTES."""
    if request.method != "POST":
        return {}
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > FORM_LIMIT_BYTES:
            raise FormTooLarge(f"the form is larger than {FORM_LIMIT_BYTES} bytes")
    text = raw.decode("utf-8", errors="replace")
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            return {}
        return (
            {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
            if isinstance(data, dict)
            else {}
        )
    return dict(parse_qsl(text, keep_blank_values=True))


def request_event(request: Request, body: Mapping[str, str]) -> dict[str, Any]:
    """``event.request`` for an HTTP request the login plane received."""
    language = request.headers.get("accept-language", "").split(",")[0].split(";")[0].strip()
    event: dict[str, Any] = {
        "ip": request.client.host if request.client else "",
        "method": request.method,
        "query": dict(request.query_params),
        "body": dict(body),
        "hostname": request.url.hostname or "",
        "user_agent": request.headers.get("user-agent", ""),
        "geoip": {},
    }
    if language:
        event["language"] = language
    return event


async def continue_flow(request: Request) -> Response:
    services: Services = request.app.state.services
    after_post = request.method == "POST"
    try:
        body = await read_form(request)
    except FormTooLarge as exc:
        return error_page(413, "invalid_request", str(exc))
    state = body.get("state") or request.query_params.get("state")
    if not state or len(state) > 256:
        return error_page(400, "invalid_request", "The request has no state: open the login again.")
    try:
        tenant = await services.store.tenants.by_name(request.path_params["tenant"])
    except NotFound:
        return error_page(404, "invalid_request", "There is no such login page.")

    async def persist(conn: Writer, result: FlowResult) -> dict[str, Any]:
        return await ORIGINS[result.state.origin["kind"]].persist(services, conn, result)

    try:
        result = await services.flows.resume(
            tenant.id, state, request_event(request, body), browser=request.cookies.get(BROWSER_COOKIE),
            persist=persist,
        )  # fmt: skip
    except StoreUnavailable:
        return error_page(503, "temporarily_unavailable", "The login service is busy; try again in a moment.")
    if result is None:
        return error_page(
            400, "invalid_request", "This login has expired or was already completed: open the login again."
        )
    return ORIGINS[result.state.origin["kind"]].respond(request, result, after_post=after_post)


def routes() -> list[Route]:
    return [Route("/t/{tenant}/continue", continue_flow, methods=["GET", "POST"])]
