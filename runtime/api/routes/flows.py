"""The flow API: an identity server runs its logins' post-login flows here and keeps its own login UI.

``POST /api/v2/flows/post-login`` takes the login's event and a ``resume_url``
and answers with the outcome (``completed``: claims, scopes, metadata
updates, methods; ``denied``; ``failed`` with the error class) or with
``redirect`` and the location to send the browser to. The browser then comes
back to ``/t/{tenant}/continue``; when the flow ends there, the browser is sent
to ``resume_url`` with ``result=<reference>``, which the identity server
redeems once with ``GET /api/v2/flows/results/{reference}``.

Sessions: with ``event.session.id`` the methods actions record are kept for
that session of that user (the identity server's session id is stored only
as a hash) and appear in ``event.authentication.methods`` on its later logins.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from runtime.api import views
from runtime.api.endpoints import Call, Endpoint, json
from runtime.api.errors import ApiError
from runtime.api.models import FlowStart
from runtime.api.services import Services
from runtime.flows import SESSION_IDLE, SESSION_LIFETIME, FlowResult
from runtime.flows.redirects import with_query
from runtime.login.continuation import ORIGINS
from runtime.login.pages import error_page, redirect
from runtime.store.base import Writer
from runtime.store.logins import ExternalSession

__all__ = ["ENDPOINTS"]

RESULT_LIFETIME = timedelta(minutes=10)

NON_INTERACTIVE_PROTOCOLS = ("oauth2-resource-owner", "oauth2-refresh-token", "oauth2-password", "oauth2-webauthn")


def interactive(event: dict[str, Any]) -> bool:
    """Whether the login can show the user a page (api.redirect.canRedirect)."""
    query = event.get("request", {}).get("query")
    if isinstance(query, dict) and query.get("prompt") == "none":
        return False
    return event.get("transaction", {}).get("protocol") not in NON_INTERACTIVE_PROTOCOLS


class ApiOrigin:
    """Flows started by the flow API: the result waits for the identity server."""

    async def persist(self, services: Services, conn: Writer, result: FlowResult) -> dict[str, Any]:
        if result.status == "redirect" or result.state.transaction_id is None:
            return {}
        ref = await services.store.logins.put_result(conn, result.state.tenant_id, views.flow(result), RESULT_LIFETIME)
        return {"ref": ref}

    def respond(self, request: Request, result: FlowResult, *, after_post: bool) -> Response:
        if result.status == "redirect":
            assert result.redirect_url is not None
            return redirect(result.redirect_url, after_post=after_post)
        ref = result.persisted.get("ref")
        if ref is None:
            return error_page(500, "server_error", "The login could not be completed.")
        return redirect(with_query(result.state.origin["resume_url"], "result", ref), after_post=after_post)


ORIGINS["api"] = ApiOrigin()


async def start_post_login(call: Call) -> Response:
    body: FlowStart = call.body
    services, tenant_id = call.services, call.tenant_id
    event = body.event
    user_id = event["user"]["user_id"]
    event.setdefault("authentication", {}).setdefault("methods", [])
    session_id = event.get("session", {}).get("id")
    # One session per identity-server session and user: a shared session id never mixes two users' records.
    external = (
        ExternalSession(f"{session_id}\x00{user_id}", user_id, SESSION_LIFETIME, SESSION_IDLE)
        if session_id is not None
        else None
    )
    result = await services.flows.begin(
        tenant_id, event, interactive=interactive(event), session_id=None,
        origin={"kind": "api", "resume_url": body.resume_url}, browser=None,
        persist=lambda conn, result: ORIGINS["api"].persist(services, conn, result), external=external,
    )  # fmt: skip
    if result.error is not None and result.error["class"] == "resource_exhausted":
        raise ApiError(429, "resource_exhausted", result.error["message"] + "; try again shortly")
    return json(views.flow(result))


async def redeem_result(call: Call) -> Response:
    return json(await call.services.store.logins.redeem_result(call.tenant_id, call.param("ref")))


ENDPOINTS = [
    Endpoint("POST", "/api/v2/flows/post-login", start_post_login,
             "Run the post-login flow for a login of your identity server: the outcome, or where to redirect",
             "tenant", FlowStart),
    Endpoint("GET", "/api/v2/flows/results/{ref}", redeem_result,
             "Redeem, once, the outcome of a flow that ended at /continue", "tenant"),
]  # fmt: skip
