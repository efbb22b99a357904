"""The hosted login: a small OpenID Connect provider per tenant, under ``/t/{tenant}/``.

Authorization code flow with PKCE (S256 only), so a real browser and a real
client app can run the whole story:

- ``GET /authorize``: checks the client and its exact ``redirect_uri`` (an
  unknown client or redirect URI gets an error page, never a redirect), then
  either signs the user in from the session cookie (single sign-on: the
  post-login flow runs with the session's recorded methods) or shows the
  login form. ``prompt=login`` shows the form even with a session (the new
  login keeps the session's records under a new id); ``prompt=none`` never
  shows anything (``login_required`` without a session, and actions cannot
  redirect: ``interaction_required``).
- ``POST /login``: email and password (argon2; one message for an unknown
  user and a wrong password, and the same time spent), a new session id at
  every login (no fixation), then the post-login flow.
- the flow ends with a code on the client's redirect URI, an
  ``access_denied`` error (with the deny reason; failures say only their
  class), or a redirect to the action's page, back through ``/continue``.
- ``POST /oauth/token``: ``authorization_code`` (single-use codes that live a
  minute, PKCE checked) and ``refresh_token`` (the post-login flow runs again,
  without interaction); clients authenticate with their secret.
- ``/.well-known/openid-configuration``, ``/.well-known/jwks.json`` (the
  tenant's RS256 keys) and ``/userinfo``.

Cookies are host-only, ``HttpOnly``, ``SameSite=Lax``, scoped to the tenant's
path, and ``Secure`` when the request came over https.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runtime.api.services import Services
from runtime.flows import SESSION_IDLE, SESSION_LIFETIME, FlowResult
from runtime.flows.outcome import iso_now
from runtime.flows.runner import MFA_UNAVAILABLE_CODE
from runtime.login import tokens
from runtime.login.continuation import BROWSER_COOKIE, ORIGINS, FormTooLarge, read_form, request_event
from runtime.login.pages import error_page, form_targets, page, redirect
from runtime.passwords import verify_password
from runtime.store.base import Writer
from runtime.store.errors import NotFound, StoreUnavailable
from runtime.store.logins import SessionRow, new_secret
from runtime.store.oauth import RefreshToken
from runtime.store.records import Client, Tenant, User

__all__ = ["SESSION_COOKIE", "routes"]

log = logging.getLogger("tollgate.login")

SESSION_COOKIE = "tg_session"
SCOPES = ("openid", "profile", "email", "offline_access")
CONNECTION = "Username-Password-Authentication"
ID_TOKEN_LIFETIME_S = 36000
ACCESS_TOKEN_LIFETIME_S = 86400
# A refresh token whose client sets no lifetime (Auth0's non-expiring kind, or infinite_token_lifetime)
# still gets an expiry in the database, one nobody reaches.
REFRESH_TOKEN_UNLIMITED = timedelta(days=100 * 365)


def issuer(request: Request, tenant_name: str) -> str:
    """The tenant's issuer URL, from the address the request came to."""
    return f"{request.url.scheme}://{request.url.netloc}/t/{tenant_name}/"


def _cookie(
    response: Response,
    request: Request,
    *,
    name: str,
    value: str,
    tenant_name: str,
    max_age: int | None,
    cross_site: bool = False,
) -> None:
    """Set a login cookie. `cross_site`: it must come back with a cross-site POST (a factor page's form
    posting to /continue), which browsers allow only for ``SameSite=None; Secure``, so over https."""
    secure = request.url.scheme == "https"
    response.set_cookie(
        name, value, max_age=max_age, path=f"/t/{tenant_name}/", httponly=True,
        samesite="none" if cross_site and secure else "lax", secure=secure,
    )  # fmt: skip


def _with_params(uri: str, params: dict[str, str]) -> str:
    """`uri` (a registered callback) with `params` added to its query."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _oauth_error(params: dict[str, Any], error: str, description: str, *, after_post: bool) -> Response:
    """An error sent back to the client's (already checked) redirect URI, with its state."""
    out = {"error": error, "error_description": description}
    if params.get("state"):
        out["state"] = params["state"]
    return redirect(_with_params(params["redirect_uri"], out), after_post=after_post)


# -- /authorize ---------------------------------------------------------------------------------


async def _tenant(services: Services, request: Request) -> Tenant | None:
    try:
        return await services.store.tenants.by_name(request.path_params["tenant"])
    except NotFound:
        return None


async def authorize(request: Request) -> Response:
    services: Services = request.app.state.services
    tenant = await _tenant(services, request)
    if tenant is None:
        return error_page(404, "invalid_request", "There is no such login page.")
    q = request.query_params
    client_id, redirect_uri = q.get("client_id", ""), q.get("redirect_uri", "")
    try:
        client = await services.store.clients.get(tenant.id, client_id)
    except NotFound:
        return error_page(400, "invalid_client", "The application asking you to sign in is not known here.")
    if redirect_uri not in client.callbacks:
        return error_page(
            400, "invalid_request", "The application's redirect_uri is not one of its registered callback URLs."
        )
    params: dict[str, Any] = {
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "state": q.get("state", ""),
        "nonce": q.get("nonce", ""),
        "scope": " ".join(s for s in q.get("scope", "openid").split() if s in SCOPES) or "openid",
        "requested_scope": q.get("scope", ""),
        "audience": q.get("audience", ""),
        "code_challenge": q.get("code_challenge", ""),
        "prompt": q.get("prompt", ""),
        "query": dict(q),
    }
    if q.get("response_type") != "code":
        return _oauth_error(params, "unsupported_response_type", "Only response_type=code is supported",
                            after_post=False)  # fmt: skip
    if q.get("code_challenge_method") != "S256" or not 43 <= len(params["code_challenge"]) <= 128:
        return _oauth_error(
            params, "invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256",
            after_post=False,
        )  # fmt: skip
    prompts = params["prompt"].split()
    browser = request.cookies.get(BROWSER_COOKIE) or new_secret()
    session_token = request.cookies.get(SESSION_COOKIE)
    session = None
    if session_token and "login" not in prompts:
        async with services.store.logins.transaction() as conn:
            session = await services.store.logins.find_session(conn, tenant.id, session_token)
    if session is not None:
        response = await _run_flow(
            services, request, tenant=tenant, client=client, params=params, session=session, browser=browser,
            after_post=False,
        )  # fmt: skip
    elif "none" in prompts:
        response = _oauth_error(params, "login_required", "The user is not signed in", after_post=False)
    else:
        request_id = await services.store.oauth.save_request(tenant.id, browser=browser, params=params)
        response = _login_form(tenant, client, request_id, email=q.get("login_hint", ""), error=None)
    _cookie(
        response, request, name=BROWSER_COOKIE, value=browser, tenant_name=tenant.name, max_age=None, cross_site=True
    )
    return response


def _login_form(tenant: Tenant, client: Client, request_id: str, *, email: str, error: str | None) -> Response:
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return page(
        f"Sign in to {client.name}",
        f"<h1>Sign in to {escape(client.name)}</h1>{message}"
        f'<form method="post" action="/t/{escape(tenant.name)}/login">'
        f'<input type="hidden" name="login_request" value="{escape(request_id)}">'
        f'<label for="email">Email</label>'
        f'<input id="email" name="email" type="email" autocomplete="username" required value="{escape(email)}">'
        f'<label for="password">Password</label>'
        f'<input id="password" name="password" type="password" autocomplete="current-password" required>'
        f'<button type="submit">Continue</button></form>',
        401 if error else 200,
        form_targets=form_targets(client.callbacks, tenant.allowed_redirect_hosts),
    )


# -- /login -------------------------------------------------------------------------------------


async def login(request: Request) -> Response:
    services: Services = request.app.state.services
    tenant = await _tenant(services, request)
    if tenant is None:
        return error_page(404, "invalid_request", "There is no such login page.")
    try:
        form = await read_form(request)
    except FormTooLarge as exc:
        return error_page(413, "invalid_request", str(exc))
    browser = request.cookies.get(BROWSER_COOKIE)
    request_id = form.get("login_request", "")
    params = await services.store.oauth.pending_request(tenant.id, request_id, browser) if request_id else None
    if params is None or browser is None:
        return error_page(400, "invalid_request", "This sign-in page has expired: go back to the application.")
    try:
        client = await services.store.clients.get(tenant.id, params["client_id"])
    except NotFound:
        return error_page(400, "invalid_client", "The application is no longer registered.")
    email, password = form.get("email", "").strip(), form.get("password", "")
    user = await services.store.users.by_email(tenant.id, email) if email else None
    stored = user.password_hash if user else None
    if not await anyio.to_thread.run_sync(verify_password, stored, password) or user is None:
        return _login_form(tenant, client, request_id, email=email, error="Wrong email or password.")
    logins = services.store.logins
    lifetime, idle = SESSION_LIFETIME, SESSION_IDLE
    token = new_secret()
    first_factor = [{"name": "pwd", "timestamp": iso_now()}]
    async with logins.transaction() as conn:
        if not await services.store.oauth.finish_request(conn, tenant.id, request_id):
            return error_page(400, "invalid_request", "This sign-in page was already used: go back to the application.")
        old_token = request.cookies.get(SESSION_COOKIE)
        old = await logins.find_session(conn, tenant.id, old_token) if old_token else None
        if old is not None and old.user_id == user.id:
            # Signing in again (prompt=login): a new id for the session, its records kept.
            session = await logins.rotate_session(conn, tenant.id, old.id, token=token, methods=first_factor)
        else:
            session = await logins.create_session(
                conn, tenant.id, token=token, kind="hosted", user_id=user.id, methods=first_factor,
                lifetime=lifetime, idle=idle,
            )  # fmt: skip
        await logins.count_login(conn, tenant.id, user.id)
    log.info("user %s signed in to tenant %s", user.id, tenant.name)
    body = {k: v for k, v in form.items() if k not in ("password", "login_request")}
    response = await _run_flow(
        services, request, tenant=tenant, client=client, params=params, session=session, browser=browser,
        after_post=True, body=body,
    )  # fmt: skip
    _cookie(
        response, request, name=SESSION_COOKIE, value=token, tenant_name=tenant.name,
        max_age=int(lifetime.total_seconds()),
    )  # fmt: skip
    return response


# -- the post-login flow --------------------------------------------------------------------------


def _event(
    request: Request, *, tenant: Tenant, client: Client, user: User, session: SessionRow, params: dict[str, Any],
    body: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    """The post-login event of a hosted login."""
    req = request_event(request, body)
    req["query"] = params["query"]
    return {
        "user": {
            "user_id": user.id,
            "email": user.email,
            "email_verified": user.email_verified,
            "name": user.name or user.email,
            "nickname": user.email.split("@")[0],
            "created_at": user.created_at.isoformat().replace("+00:00", "Z"),
            "updated_at": user.updated_at.isoformat().replace("+00:00", "Z"),
            "app_metadata": user.app_metadata,
            "user_metadata": user.user_metadata,
            "identities": [
                {"connection": CONNECTION, "provider": "auth0", "user_id": user.id.split("|", 1)[-1], "isSocial": False}
            ],
        },
        "client": {"client_id": client.client_id, "name": client.name, "metadata": client.metadata},
        "connection": {"id": f"con_{tenant.id.replace('-', '')[:16]}", "name": CONNECTION, "strategy": "auth0"},
        "request": req,
        "session": {"id": session.id},
        "authentication": {"methods": session.methods},
        "authorization": {"roles": []},
        "stats": {"logins_count": user.logins_count},
        "transaction": {
            "protocol": "oidc-basic-profile",
            "redirect_uri": params["redirect_uri"],
            "requested_scopes": params["requested_scope"].split(),
            "response_type": ["code"],
            "response_mode": "query",
            "state": params["state"],
            "prompt": params["prompt"].split(),
            "metadata": {},
        },
    }


async def _run_flow(
    services: Services, request: Request, *, tenant: Tenant, client: Client, params: dict[str, Any],
    session: SessionRow, browser: str, after_post: bool, body: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    try:
        user = await services.store.users.get(tenant.id, session.user_id)
    except NotFound:
        return _oauth_error(params, "access_denied", "The user no longer exists", after_post=after_post)
    event = _event(request, tenant=tenant, client=client, user=user, session=session, params=params, body=body or {})
    origin = {
        "kind": "hosted",
        "client_id": client.client_id,
        "redirect_uri": params["redirect_uri"],
        "state": params["state"],
        "nonce": params["nonce"],
        "scope": params["scope"],
        "audience": params["audience"],
        "code_challenge": params["code_challenge"],
        "auth_time": int(session.authenticated_at.timestamp()),
        "issuer": issuer(request, tenant.name),
        "offers_mfa": False,  # no second factors here: a flow that asks for one is denied (runner.MFA_UNAVAILABLE)
    }
    interactive = "none" not in params["prompt"].split()
    try:
        result = await services.flows.begin(
            tenant.id, event, interactive=interactive, session_id=session.id, origin=origin, browser=browser,
            persist=lambda conn, result: ORIGINS["hosted"].persist(services, conn, result),
        )  # fmt: skip
    except StoreUnavailable:
        return error_page(503, "temporarily_unavailable", "The login service is busy; try again in a moment.")
    return ORIGINS["hosted"].respond(request, result, after_post=after_post)


class HostedOrigin:
    """Flows of the hosted login: the user's metadata is ours to write, and the end is a code."""

    async def persist(self, services: Services, conn: Writer, result: FlowResult) -> dict[str, Any]:
        state, outcome = result.state, result.outcome
        user_id = state.event["user"]["user_id"]
        await services.store.logins.merge_user_metadata(
            conn, state.tenant_id, user_id, app=outcome.app_metadata, user=outcome.user_metadata
        )
        if outcome.session.get("revoked") and state.session_id:
            await services.store.logins.end_session(conn, state.tenant_id, state.session_id)
        if result.status != "completed":
            return {}
        origin = state.origin
        methods = state.event.get("authentication", {}).get("methods", []) + outcome.methods
        code = await services.store.oauth.issue_code(
            conn, state.tenant_id, client_id=origin["client_id"], redirect_uri=origin["redirect_uri"],
            code_challenge=origin["code_challenge"],
            grant={
                "user_id": outcome.primary_user_id or user_id,
                "session_id": state.session_id,
                "scope": _scope(origin["scope"], outcome.scope_changes),
                "nonce": origin["nonce"],
                "auth_time": origin["auth_time"],
                "audience": origin.get("audience", ""),
                "id_claims": outcome.id_claims,
                "access_claims": outcome.access_claims,
                "amr": [m["name"] for m in methods],
                "issuer": origin["issuer"],
            },
        )  # fmt: skip
        return {"code": code}

    def respond(self, request: Request, result: FlowResult, *, after_post: bool) -> Response:
        origin = result.state.origin
        if result.status == "redirect":
            assert result.redirect_url is not None
            return redirect(result.redirect_url, after_post=after_post)
        if result.status == "completed":
            params = {"code": result.persisted["code"]}
            if origin["state"]:
                params["state"] = origin["state"]
            return redirect(_with_params(origin["redirect_uri"], params), after_post=after_post)
        if result.status == "denied":
            denied = result.outcome.denied or {}
            return _oauth_error(origin, "access_denied", denied.get("reason", ""), after_post=after_post)
        error_class = (result.error or {}).get("class", "platform_error")
        error = {"interaction_required": "interaction_required", "resource_exhausted": "temporarily_unavailable"}
        return _oauth_error(
            origin, error.get(error_class, "access_denied"), f"Login failed ({error_class})", after_post=after_post
        )


ORIGINS["hosted"] = HostedOrigin()


def _scope(granted: str, changes: list[dict[str, str]]) -> str:
    """The access token's scope: the granted one with the actions' addScope/removeScope applied in order."""
    scopes = granted.split()
    for change in changes:
        if change.get("token") != "access":
            continue
        if change["op"] == "add" and change["scope"] not in scopes:
            scopes.append(change["scope"])
        elif change["op"] == "remove" and change["scope"] in scopes:
            scopes.remove(change["scope"])
    return " ".join(scopes)


# -- /oauth/token -------------------------------------------------------------------------------


def _token_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )  # fmt: skip


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    if form.get("client_id") and form.get("client_secret"):
        return form["client_id"], form["client_secret"]
    return None


def _pkce_ok(verifier: str, challenge: str) -> bool:
    if not 43 <= len(verifier) <= 128:
        return False
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return hmac.compare_digest(digest, challenge)


async def token(request: Request) -> Response:
    services: Services = request.app.state.services
    tenant = await _tenant(services, request)
    if tenant is None:
        return _token_error(404, "invalid_request", "There is no such tenant")
    try:
        form = await read_form(request)
    except FormTooLarge as exc:
        return _token_error(413, "invalid_request", str(exc))
    credentials = _client_credentials(request, form)
    if credentials is None or not await services.store.clients.check_secret(tenant.id, *credentials):
        return _token_error(401, "invalid_client", "Client authentication failed")
    client = await services.store.clients.get(tenant.id, credentials[0])
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        return await _code_grant(services, request, tenant, client, form)
    if grant_type == "refresh_token":
        return await _refresh_grant(services, request, tenant, client, form)
    return _token_error(400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")


async def _code_grant(
    services: Services, request: Request, tenant: Tenant, client: Client, form: dict[str, str]
) -> Response:
    taken = await services.store.oauth.redeem_code(tenant.id, form.get("code", ""), client.client_id)
    if taken is None:
        return _token_error(400, "invalid_grant", "The code is unknown, expired or already used")
    if form.get("redirect_uri") != taken["redirect_uri"]:
        return _token_error(400, "invalid_grant", "redirect_uri does not match the authorization request")
    if not _pkce_ok(form.get("code_verifier", ""), taken["code_challenge"]):
        return _token_error(400, "invalid_grant", "The PKCE code_verifier does not match the code_challenge")
    grant = taken["grant"]
    return await _tokens(services, tenant, client, grant, refresh=None)


async def _tokens(
    services: Services, tenant: Tenant, client: Client, grant: dict[str, Any], *, refresh: str | None
) -> Response:
    user = await services.store.users.get(tenant.id, grant["user_id"])
    signer = await services.store.signing_keys.signer(tenant.id)
    scope, iss = grant["scope"], grant["issuer"]
    audience: list[str] | str = [grant["audience"], iss + "userinfo"] if grant.get("audience") else iss + "userinfo"
    body: dict[str, Any] = {
        "access_token": tokens.mint_access_token(
            signer, issuer=iss, audience=audience, client_id=client.client_id, user_id=user.id, scope=scope,
            claims=grant["access_claims"], lifetime_s=ACCESS_TOKEN_LIFETIME_S,
        ),
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_LIFETIME_S,
        "scope": scope,
    }  # fmt: skip
    if "openid" in scope.split():
        body["id_token"] = tokens.mint_id_token(
            signer, issuer=iss, client_id=client.client_id, user=_profile(user), nonce=grant.get("nonce") or None,
            auth_time=grant["auth_time"], session_id=grant.get("session_id") or "", claims=grant["id_claims"],
            scope=scope, lifetime_s=ID_TOKEN_LIFETIME_S,
        )  # fmt: skip
    if refresh is not None:
        body["refresh_token"] = refresh
    elif "offline_access" in scope.split():
        lifetime, idle = client.refresh_token_lifetimes
        body["refresh_token"] = await services.store.oauth.issue_refresh_token(
            tenant.id, client_id=client.client_id, user_id=user.id, session_id=grant.get("session_id"), scope=scope,
            lifetime=lifetime or REFRESH_TOKEN_UNLIMITED, idle=idle,
        )  # fmt: skip
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _profile(user: User) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name or user.email,
        "nickname": user.email.split("@")[0],
        "updated_at": user.updated_at.isoformat().replace("+00:00", "Z"),
    }


async def _refresh_grant(
    services: Services, request: Request, tenant: Tenant, client: Client, form: dict[str, str]
) -> Response:
    presented = form.get("refresh_token", "")
    record = await services.store.oauth.refresh_token(tenant.id, presented, client.client_id)
    if record is None:
        return _token_error(400, "invalid_grant", "The refresh token is unknown, expired or revoked")
    leeway_s = int(client.refresh_token.get("leeway", 0))
    if record.rotated_at is not None and datetime.now(UTC) - record.rotated_at > timedelta(seconds=leeway_s):
        return await _refresh_token_reused(services, tenant, client, record)
    logins = services.store.logins
    async with logins.transaction() as conn:
        session = await logins.live_session(conn, tenant.id, record.session_id) if record.session_id else None
    try:
        user = await services.store.users.get(tenant.id, record.user_id)
    except NotFound:
        return _token_error(400, "invalid_grant", "The user no longer exists")
    params: dict[str, Any] = {
        "redirect_uri": "", "state": "", "prompt": "none", "requested_scope": record.scope,
        "query": {}, "scope": record.scope,
    }  # fmt: skip
    stand_in = session or SessionRow(
        id="", kind="hosted", user_id=user.id, methods=[], metadata={}, cookie_mode="persistent",
        created_at=record.created_at, authenticated_at=record.created_at, last_interacted_at=record.created_at,
        expires_at=record.expires_at, idle_expires_at=record.expires_at,
    )  # fmt: skip
    event = _event(
        request, tenant=tenant, client=client, user=user, session=stand_in, params=params,
        body=form_without_secrets(form),
    )  # fmt: skip
    event["transaction"]["protocol"] = "oauth2-refresh-token"
    event["refresh_token"] = {
        "id": record.id, "client_id": record.client_id,
        "created_at": record.created_at.isoformat().replace("+00:00", "Z"),
        "expires_at": record.expires_at.isoformat().replace("+00:00", "Z"), "metadata": {},
    }  # fmt: skip
    if session is None:
        event.pop("session")
    result = await services.flows.begin(
        tenant.id, event, interactive=False, session_id=session.id if session else None,
        # An exchange has no user at hand to challenge: actions that ask for a second factor fail it.
        origin={"kind": "refresh", "offers_mfa": False}, browser=None, persist=_refresh_persist(services, record.id),
    )  # fmt: skip
    if result.status == "denied":
        denied = result.outcome.denied or {}
        if denied.get("code") == MFA_UNAVAILABLE_CODE:
            return _token_error(403, "mfa_required", MFA_ON_REFRESH)
        return _token_error(403, "access_denied", denied.get("reason", ""))
    if result.status != "completed":
        error_class = (result.error or {}).get("class", "platform_error")
        code = "interaction_required" if error_class == "interaction_required" else "access_denied"
        return _token_error(403 if code == "access_denied" else 400, code, f"Login failed ({error_class})")
    outcome = result.outcome
    grant = {
        "user_id": outcome.primary_user_id or user.id,
        "session_id": session.id if session else "",
        "scope": _scope(record.scope, outcome.scope_changes),
        "nonce": "",
        "auth_time": int((session.authenticated_at if session else record.created_at).timestamp()),
        "audience": "",
        "id_claims": outcome.id_claims,
        "access_claims": outcome.access_claims,
        "issuer": issuer(request, tenant.name),
    }
    refresh: str | None = presented
    _, idle = client.refresh_token_lifetimes
    if client.rotates_refresh_tokens:
        refresh = await services.store.oauth.rotate_refresh_token(tenant.id, record, leeway_s=leeway_s, idle=idle)
        if refresh is None:  # replaced meanwhile by another exchange, beyond the leeway
            return await _refresh_token_reused(services, tenant, client, record)
    elif idle is not None:
        await services.store.oauth.touch_refresh_token(tenant.id, record, idle=idle)
    return await _tokens(services, tenant, client, grant, refresh=refresh)


# What the client is told when the actions of a refresh-token exchange ask for multi-factor authentication:
# the exchange fails (as the hosted product's does; its documented way out is an action that skips the
# factor when event.transaction.protocol is "oauth2-refresh-token").
MFA_ON_REFRESH = "The login's actions require multi-factor authentication, which a refresh-token exchange cannot run"


async def _refresh_token_reused(services: Services, tenant: Tenant, client: Client, record: RefreshToken) -> Response:
    """A refresh token that an exchange replaced came back after the client's leeway: whoever holds the
    newer one, one of the two holders is not the client. Every token of the line is revoked."""
    await services.store.oauth.revoke_refresh_family(tenant.id, record.family_id)
    log.warning(
        "A replaced refresh token of client %s (tenant %s, user %s) was presented again: every refresh token"
        " descended from the same login is revoked",
        client.client_id, tenant.name, record.user_id,
    )  # fmt: skip
    return _token_error(400, "invalid_grant", "The refresh token was already exchanged; its line is revoked")


def form_without_secrets(form: dict[str, str]) -> dict[str, str]:
    """A token request's body as actions see it: never the client secret, the refresh token or a verifier."""
    return {k: v for k, v in form.items() if k not in ("client_secret", "refresh_token", "code", "code_verifier")}


def _refresh_persist(services: Services, token_id: str) -> Any:
    async def persist(conn: Writer, result: FlowResult) -> dict[str, Any]:
        state, outcome = result.state, result.outcome
        await services.store.logins.merge_user_metadata(
            conn, state.tenant_id, state.event["user"]["user_id"], app=outcome.app_metadata, user=outcome.user_metadata
        )
        if outcome.refresh_token.get("revoked"):
            await services.store.oauth.revoke_refresh_token(conn, state.tenant_id, token_id)
        return {}

    return persist


# -- discovery, keys, userinfo ----------------------------------------------------------------


async def discovery(request: Request) -> Response:
    services: Services = request.app.state.services
    tenant = await _tenant(services, request)
    if tenant is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    iss = issuer(request, tenant.name)
    return JSONResponse({
        "issuer": iss,
        "authorization_endpoint": iss + "authorize",
        "token_endpoint": iss + "oauth/token",
        "userinfo_endpoint": iss + "userinfo",
        "jwks_uri": iss + ".well-known/jwks.json",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": list(SCOPES),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "email",
                             "email_verified", "name", "nickname", "updated_at"],
    })  # fmt: skip


async def jwks(request: Request) -> Response:
    services: Services = request.app.state.services
    tenant = await _tenant(services, request)
    if tenant is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    await services.store.signing_keys.signer(tenant.id)  # a tenant's first key is made on first need
    return JSONResponse(await services.store.signing_keys.jwks(tenant.id), headers={"Cache-Control": "max-age=300"})


async def userinfo(request: Request) -> Response:
    services: Services = request.app.state.services
    tenant = await _tenant(services, request)
    if tenant is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    header = request.headers.get("authorization", "")
    challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    if not header.lower().startswith("bearer "):
        return JSONResponse({"error": "invalid_token", "error_description": "Send the access token as a Bearer token"},
                            status_code=401, headers=challenge)  # fmt: skip
    iss = issuer(request, tenant.name)
    try:
        claims = tokens.verify_access_token(
            await services.store.signing_keys.jwks(tenant.id), header[7:].strip(), issuer=iss, audience=iss + "userinfo"
        )
        user = await services.store.users.get(tenant.id, claims["sub"])
    except (tokens.InvalidToken, NotFound) as exc:
        return JSONResponse({"error": "invalid_token", "error_description": str(exc)}, status_code=401,
                            headers=challenge)  # fmt: skip
    scopes = str(claims.get("scope", "")).split()
    profile = _profile(user)
    out: dict[str, Any] = {"sub": user.id}
    if "email" in scopes:
        out.update(email=profile["email"], email_verified=profile["email_verified"])
    if "profile" in scopes:
        out.update(name=profile["name"], nickname=profile["nickname"], updated_at=profile["updated_at"])
    return JSONResponse(out, headers={"Cache-Control": "no-store"})


def routes() -> list[Route]:
    return [
        Route("/t/{tenant}/authorize", authorize, methods=["GET"]),
        Route("/t/{tenant}/login", login, methods=["POST"]),
        Route("/t/{tenant}/oauth/token", token, methods=["POST"]),
        Route("/t/{tenant}/.well-known/openid-configuration", discovery, methods=["GET"]),
        Route("/t/{tenant}/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/t/{tenant}/userinfo", userinfo, methods=["GET", "POST"]),
    ]
