"""The hosted login end to end: authorize, the form, the custom factor, /continue, tokens, single sign-on."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import psycopg
import pytest
from starlette.testclient import TestClient

from runtime.flows.runner import MFA_UNAVAILABLE
from runtime.login.hosted import MFA_ON_REFRESH
from runtime.store.logins import secret_hash
from tests.fix_api import TenantClient
from tests.flows.test_flow_api import FACTOR, METHOD, SECRET, bind, start

CALLBACK = "https://app.acme-bank.example/callback"
PASSWORD = "correct horse battery staple"


@dataclass
class Site:
    """A tenant set up for the hosted login: a client, a user, the custom factor bound."""

    tenant: TenantClient
    client_id: str
    client_secret: str
    email: str
    user_id: str

    def browser(self) -> TestClient:
        """A fresh browser (its own cookie jar) on the same server, over https."""
        browser = TestClient(self.tenant.client.app, base_url="https://login.acme-bank.example", follow_redirects=False)
        # The server's event loop: its database pool belongs to it.
        browser.portal = self.tenant.client.portal
        return browser

    def path(self, rest: str) -> str:
        return f"/t/{self.tenant.name}/{rest}"


@pytest.fixture
def site(tenant: TenantClient) -> Site:
    return make_site(tenant, FACTOR)


def make_site(tenant: TenantClient, code: str | None) -> Site:
    client = tenant.post("/api/v2/clients", json={"name": "Acme Bank", "callbacks": [CALLBACK]}).json()
    email = f"jane+{secrets.token_hex(3)}@example.com"
    user = tenant.post("/api/v2/users", json={"email": email, "password": PASSWORD, "name": "Jane Doe",
                                               "email_verified": True}).json()  # fmt: skip
    if code is not None:
        bind(tenant, ("factor", code, [{"name": "SESSION_TOKEN_SECRET", "value": SECRET}]))
    return Site(tenant, client["client_id"], client["client_secret"], email, user["user_id"])


@dataclass
class Pkce:
    verifier: str
    challenge: str


def pkce() -> Pkce:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return Pkce(verifier, challenge)


def authorize(site: Site, browser: TestClient, p: Pkce, **extra: str) -> Any:
    params = {"client_id": site.client_id, "redirect_uri": CALLBACK, "response_type": "code", "scope": "openid email profile",
              "state": "app-state-1", "nonce": "n-0S6", "code_challenge": p.challenge, "code_challenge_method": "S256",
              **extra}  # fmt: skip
    return browser.get(site.path("authorize") + "?" + urlencode(params))


def submit(site: Site, browser: TestClient, form_page: Any, password: str = PASSWORD, email: str | None = None) -> Any:
    assert form_page.status_code in (200, 401), form_page.text
    request_id = re.search(r'name="login_request" value="([^"]+)"', form_page.text)
    assert request_id is not None
    return browser.post(site.path("login"), data={"login_request": request_id.group(1), "email": email or site.email,
                                                  "password": password})  # fmt: skip


def factor(site: Site, browser: TestClient, reply: Any) -> Any:
    """The verify page: it checks the session token, then posts the user back to /continue."""
    assert reply.status_code == 303, reply.text
    location = reply.headers["location"]
    assert location.startswith(METHOD + "?")
    query = parse_qs(urlsplit(location).query)
    state = query["state"][0]
    claims = jwt.decode(query["session_token"][0], SECRET, algorithms=["HS256"], options={"verify_iss": False})
    now = int(time.time())
    token = jwt.encode({"iat": now, "exp": now + 300, "sub": claims["sub"], "iss": "login.acme-bank.example",
                        "state": state, "user_id": claims["user_id"], "verified": True}, SECRET)  # fmt: skip
    return browser.post(site.path("continue"), data={"state": state, "session_token": token})


def code_of(reply: Any) -> str:
    assert reply.status_code in (302, 303), reply.text
    location = reply.headers["location"]
    assert location.startswith(CALLBACK + "?"), location
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["app-state-1"]
    assert "code" in query, query
    return query["code"][0]


def error_of(reply: Any) -> tuple[str, str]:
    assert reply.status_code in (302, 303), reply.text
    query = parse_qs(urlsplit(reply.headers["location"]).query)
    return query["error"][0], query.get("error_description", [""])[0]


def exchange(site: Site, code: str, p: Pkce, **override: str) -> Any:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": p.verifier,
            "client_id": site.client_id, "client_secret": site.client_secret, **override}  # fmt: skip
    return site.browser().post(site.path("oauth/token"), data=form)


def id_claims(site: Site, tokens: dict[str, Any]) -> dict[str, Any]:
    browser = site.browser()
    jwks = browser.get(site.path(".well-known/jwks.json")).json()
    key = jwt.PyJWK(jwks["keys"][0])
    issuer = browser.get(site.path(".well-known/openid-configuration")).json()["issuer"]
    claims: dict[str, Any] = jwt.decode(tokens["id_token"], key, algorithms=["RS256"], audience=site.client_id,
                                        issuer=issuer)  # fmt: skip
    return claims


def test_the_seed_story_in_a_browser(site: Site) -> None:
    """Login, the custom factor, tokens; the next login in the session skips the factor; a new session asks again."""
    browser, p = site.browser(), pkce()
    form = authorize(site, browser, p)
    assert form.status_code == 200 and 'name="password"' in form.text
    # The browser binding must survive the factor page's cross-site POST back to /continue.
    binding = next(c for c in form.headers.get_list("set-cookie") if c.startswith("tg_browser="))
    assert "samesite=none" in binding.lower() and "secure" in binding.lower() and "httponly" in binding.lower()
    assert form.headers["cache-control"] == "no-store"
    redirected = submit(site, browser, form)
    session_cookie = browser.cookies.get("tg_session")
    assert session_cookie
    code = code_of(factor(site, browser, redirected))

    tokens = exchange(site, code, p)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    claims = id_claims(site, body)
    assert claims["sub"] == site.user_id and claims["nonce"] == "n-0S6" and claims["email"] == site.email
    userinfo = site.browser().get(site.path("userinfo"), headers={"Authorization": f"Bearer {body['access_token']}"})
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == site.user_id

    # Single sign-on: the same browser goes straight through, the factor is remembered by the session.
    again = authorize(site, browser, pkce())
    code_of(again)

    # A new browser is a new session: the factor is asked again.
    other = site.browser()
    assert submit(site, other, authorize(site, other, pkce())).headers["location"].startswith(METHOD)


def test_the_login_form_may_be_redirected_to_the_app_and_the_factor_page_only(site: Site) -> None:
    """Browsers check form-action along the redirects after the POST: the form's policy names this server, the
    client's callback origins and the tenant's redirect hosts, and nothing else; so does the form shown again
    after a wrong password."""
    site.tenant.patch(f"/api/v2/clients/{site.client_id}", json={"callbacks": [CALLBACK, "http://127.0.0.1:8765/cb"]})
    browser = site.browser()
    form = authorize(site, browser, pkce())
    wrong = submit(site, browser, form, password="nope")
    for reply in (form, wrong):
        policy = dict(d.strip().split(" ", 1) for d in reply.headers["content-security-policy"].split(";"))
        assert policy["form-action"] == ("'self' http://127.0.0.1:8765 https://app.acme-bank.example "
                                         "https://verify.acme-bank.example")  # fmt: skip
        assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    error = site.browser().get(site.path("authorize") + "?client_id=nobody")
    assert "form-action 'self';" in error.headers["content-security-policy"]


def test_prompt_login_keeps_the_session_records_under_a_new_id(site: Site) -> None:
    browser, p = site.browser(), pkce()
    code_of(factor(site, browser, submit(site, browser, authorize(site, browser, p))))
    before = browser.cookies.get("tg_session")
    form = authorize(site, browser, pkce(), prompt="login")
    assert 'name="password"' in form.text
    code_of(submit(site, browser, form))  # the factor is still recorded: straight through
    assert browser.cookies.get("tg_session") not in (None, before)


def test_single_sign_on_soon_after_the_last_write_reads_the_session_without_writing_it(
    site: Site, database_url: str
) -> None:
    """A session's idle time restarts at each single sign-on, written at most once a minute: sooner, the
    session is only read (its row stays as it was); later, its idle span restarts from now."""
    browser = site.browser()
    code_of(factor(site, browser, submit(site, browser, authorize(site, browser, pkce()))))

    def row(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
        found = conn.execute("SELECT xmin::text, idle_expires_at - last_interacted_at, last_interacted_at"
                             " FROM sessions WHERE tenant_id = %s", (site.tenant.id,)).fetchall()  # fmt: skip
        assert len(found) == 1
        return tuple(found[0])

    with psycopg.connect(database_url, autocommit=True) as conn:
        written = row(conn)
        for _ in range(2):
            code_of(authorize(site, browser, pkce()))  # straight through: the factor is in the session
        assert row(conn) == written
        conn.execute("UPDATE sessions SET last_interacted_at = last_interacted_at - interval '2 minutes',"
                     " idle_expires_at = idle_expires_at - interval '2 minutes' WHERE tenant_id = %s",
                     (site.tenant.id,))  # fmt: skip
        aged = row(conn)
        code_of(authorize(site, browser, pkce()))
        touched = row(conn)
        recent = conn.execute("SELECT now() - last_interacted_at < interval '1 minute' FROM sessions"
                              " WHERE tenant_id = %s", (site.tenant.id,)).fetchone()  # fmt: skip
    assert touched[0] != aged[0] and touched[2] > aged[2]
    assert touched[1] == aged[1] == written[1]  # the same idle span, from the new touch
    assert recent == (True,)


def test_prompt_none(site: Site) -> None:
    browser = site.browser()
    assert error_of(authorize(site, browser, pkce(), prompt="none"))[0] == "login_required"
    # With a session but without the factor done, the action would have to redirect: it cannot.
    submit(site, browser, authorize(site, browser, pkce()))  # stops at the factor page
    assert error_of(authorize(site, browser, pkce(), prompt="none"))[0] == "interaction_required"


def test_wrong_password_and_unknown_user_look_the_same(site: Site) -> None:
    browser = site.browser()
    wrong = submit(site, browser, authorize(site, browser, pkce()), password="nope")
    unknown = submit(site, browser, wrong, email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    for reply in (wrong, unknown):
        assert "Wrong email or password." in reply.text
    assert browser.cookies.get("tg_session") is None


def test_a_session_cookie_set_before_login_is_never_used(site: Site) -> None:
    browser = site.browser()
    browser.cookies.set("tg_session", "planted-by-attacker", domain="login.acme-bank.example", path=site.path(""))
    submit(site, browser, authorize(site, browser, pkce()))
    assert browser.cookies.get("tg_session", path=site.path("")) != "planted-by-attacker"


@pytest.mark.parametrize(
    ("change", "status"),
    [({"client_id": "unknown"}, 400), ({"redirect_uri": "https://evil.example/callback"}, 400),
     ({"redirect_uri": CALLBACK + "/extra"}, 400)],
)  # fmt: skip
def test_unknown_clients_and_callbacks_get_a_page_not_a_redirect(
    site: Site, change: dict[str, str], status: int
) -> None:
    reply = authorize(site, site.browser(), pkce(), **change)
    assert reply.status_code == status
    assert "location" not in reply.headers


def test_pkce_is_required(site: Site) -> None:
    reply = authorize(site, site.browser(), pkce(), code_challenge_method="plain")
    assert error_of(reply)[0] == "invalid_request"
    reply = authorize(site, site.browser(), pkce(), response_type="token")
    assert error_of(reply)[0] == "unsupported_response_type"


def test_codes_are_single_use_and_bound_to_the_verifier_and_client(tenant: TenantClient) -> None:
    site = make_site(tenant, None)  # no actions: the login completes at once
    browser, p = site.browser(), pkce()
    code = code_of(submit(site, browser, authorize(site, browser, p)))
    assert exchange(site, code, pkce()).json()["error"] == "invalid_grant"  # wrong verifier burns the code
    code = code_of(authorize(site, browser, p))
    assert exchange(site, code, p, client_secret="wrong").status_code == 401
    assert exchange(site, code, p, redirect_uri=CALLBACK + "?x=1").json()["error"] == "invalid_grant"
    code = code_of(authorize(site, browser, p))
    assert exchange(site, code, p).status_code == 200
    assert exchange(site, code, p).json()["error"] == "invalid_grant"


def test_deny_reaches_the_client_with_its_reason(tenant: TenantClient) -> None:
    site = make_site(tenant, "exports.onExecutePostLogin = async (e, api) => { api.access.deny('Account locked'); };")
    browser = site.browser()
    assert error_of(submit(site, browser, authorize(site, browser, pkce()))) == ("access_denied", "Account locked")


@pytest.mark.parametrize(
    ("calls", "later_action_ran"),
    [
        ("api.multifactor.enable('any');", True),  # the legacy call defers MFA to the end of the flow
        ("api.multifactor.enable('guardian', {allowRememberBrowser: true});", True),
        ("api.authentication.challengeWith({type: 'otp'});", False),  # later actions wait for the challenge
        ("api.authentication.enrollWithAny([{type: 'otp'}, {type: 'email'}]);", False),
    ],
)
def test_a_login_that_asks_for_mfa_fails_closed_on_the_hosted_page(
    tenant: TenantClient, calls: str, later_action_ran: bool
) -> None:
    """The hosted login page has no second factors of its own: a flow that asks for one is denied, never
    completed without it, and the client is told why. Metadata set before then is kept, as after a deny."""
    site = make_site(tenant, None)
    bind(
        tenant,
        (
            "asks",
            f"exports.onExecutePostLogin = async (e, api) => {{ api.user.setAppMetadata('asked', true); {calls} }};",
        ),
        ("later", "exports.onExecutePostLogin = async (e, api) => { api.user.setAppMetadata('later', true); };"),
    )
    browser = site.browser()
    error, description = error_of(submit(site, browser, authorize(site, browser, pkce())))
    assert (error, description) == ("access_denied", MFA_UNAVAILABLE)
    user = tenant.get(f"/api/v2/users/{site.user_id}").json()
    assert user["app_metadata"].get("asked") is True
    assert ("later" in user["app_metadata"]) == later_action_ran


def test_mfa_turned_off_again_or_asked_of_an_identity_server_is_not_refused(tenant: TenantClient) -> None:
    """multifactor.enable('none') lifts an earlier enable (the last call counts); the flow API passes MFA
    requests to the identity server, which runs them."""
    site = make_site(
        tenant,
        "exports.onExecutePostLogin = async (e, api) => { api.multifactor.enable('any'); api.multifactor.enable('none'); };",
    )
    browser = site.browser()
    assert code_of(submit(site, browser, authorize(site, browser, pkce())))
    bind(
        tenant,
        (
            "challenge",
            "exports.onExecutePostLogin = async (e, api) => { api.authentication.challengeWith({type: 'otp'}); };",
        ),
    )
    outcome = start(tenant)
    assert outcome["status"] == "completed", outcome
    assert outcome["factors"] == [{"type": "challenge_with", "factor": {"type": "otp"}, "additional_factors": []}]


def test_a_failing_action_shows_its_class_only(tenant: TenantClient) -> None:
    site = make_site(tenant, "exports.onExecutePostLogin = async () => { throw new Error('db password is hunter2'); };")
    browser = site.browser()
    error, description = error_of(submit(site, browser, authorize(site, browser, pkce())))
    assert (error, description) == ("access_denied", "Login failed (action_error)")


def test_claims_metadata_and_refresh(tenant: TenantClient) -> None:
    site = make_site(tenant, "exports.onExecutePostLogin = async (event, api) => {"
                             " if (event.user.app_metadata.blocked) return api.access.deny('blocked');"
                             " api.idToken.setCustomClaim('https://acme/visits', (event.user.app_metadata.visits || 0) + 1);"
                             " api.user.setAppMetadata('visits', (event.user.app_metadata.visits || 0) + 1);"
                             " api.accessToken.addScope('read:statements'); };")  # fmt: skip
    browser, p = site.browser(), pkce()
    code = code_of(submit(site, browser, authorize(site, browser, p, scope="openid offline_access")))
    body = exchange(site, code, p).json()
    assert id_claims(site, body)["https://acme/visits"] == 1
    assert body["scope"].split() == ["openid", "offline_access", "read:statements"]
    assert tenant.get(f"/api/v2/users/{site.user_id}").json()["app_metadata"] == {"visits": 1}

    refreshed = site.browser().post(site.path("oauth/token"), data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": site.client_id,
        "client_secret": site.client_secret})  # fmt: skip
    assert refreshed.status_code == 200, refreshed.text
    assert id_claims(site, refreshed.json())["https://acme/visits"] == 2

    tenant.patch(f"/api/v2/users/{site.user_id}", json={"app_metadata": {"blocked": True}})
    blocked = site.browser().post(site.path("oauth/token"), data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": site.client_id,
        "client_secret": site.client_secret})  # fmt: skip
    assert blocked.status_code == 403 and blocked.json()["error"] == "access_denied"


def refresh(site: Site, token: str) -> Any:
    return site.browser().post(site.path("oauth/token"), data={
        "grant_type": "refresh_token", "refresh_token": token, "client_id": site.client_id,
        "client_secret": site.client_secret})  # fmt: skip


def offline_tokens(site: Site) -> dict[str, Any]:
    browser, p = site.browser(), pkce()
    body: dict[str, Any] = exchange(site, code_of(submit(site, browser, authorize(site, browser, p,
                                                                                  scope="openid offline_access"))), p).json()  # fmt: skip
    return body


def test_a_refresh_exchange_whose_actions_ask_for_mfa_fails_unless_they_skip_it(tenant: TenantClient) -> None:
    """A refresh-token exchange has nobody at hand to challenge: actions that ask for a second factor there
    fail it with 403 mfa_required (no tokens, and the refresh token stays valid); the documented way
    out, an action that skips the factor on "oauth2-refresh-token", lets it through."""
    site = make_site(tenant, None)
    token = offline_tokens(site)["refresh_token"]
    bind(tenant, ("mfa", "exports.onExecutePostLogin = async (e, api) => { api.multifactor.enable('any'); };"))
    refused = refresh(site, token)
    assert refused.status_code == 403, refused.text
    assert refused.json() == {"error": "mfa_required", "error_description": MFA_ON_REFRESH}
    assert "access_token" not in refused.text
    bind(tenant, ("mfa-skipped-on-refresh", "exports.onExecutePostLogin = async (e, api) => {"
                         " if (e.transaction.protocol === 'oauth2-refresh-token') return;"
                         " api.multifactor.enable('any'); };"))  # fmt: skip
    allowed = refresh(site, token)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["access_token"]


def test_refresh_tokens_stay_the_same_unless_the_client_rotates_them(tenant: TenantClient) -> None:
    site = make_site(tenant, None)
    client = tenant.get(f"/api/v2/clients/{site.client_id}").json()
    assert client["refresh_token"] == {"rotation_type": "non-rotating", "leeway": 0, "expiration_type": "expiring",
                                       "token_lifetime": 2_592_000, "infinite_token_lifetime": False,
                                       "idle_token_lifetime": None, "infinite_idle_token_lifetime": False}  # fmt: skip
    first = offline_tokens(site)["refresh_token"]
    again = refresh(site, first)
    assert again.status_code == 200, again.text
    assert again.json()["refresh_token"] == first
    assert refresh(site, first).status_code == 200


def test_a_rotated_refresh_token_presented_again_revokes_its_line(tenant: TenantClient) -> None:
    """Rotation: each exchange answers a new token and the one presented is spent. Presenting a spent one
    (a copy someone else holds) revokes the line, the newest token too."""
    site = make_site(tenant, None)
    updated = tenant.patch(f"/api/v2/clients/{site.client_id}", json={"refresh_token": {"rotation_type": "rotating"}})
    assert updated.json()["refresh_token"]["rotation_type"] == "rotating"
    first = offline_tokens(site)["refresh_token"]
    second = refresh(site, first).json()["refresh_token"]
    third = refresh(site, second).json()["refresh_token"]
    assert len({first, second, third}) == 3
    reused = refresh(site, first)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert "already exchanged" in reused.json()["error_description"]
    revoked = refresh(site, third)
    assert revoked.status_code == 400 and revoked.json()["error"] == "invalid_grant"


def test_within_the_leeway_a_rotated_token_is_exchanged_again(tenant: TenantClient) -> None:
    """Two requests racing with the same token (a leeway of a minute): both get a new token of the line,
    and the line stays valid."""
    site = make_site(tenant, None)
    tenant.patch(f"/api/v2/clients/{site.client_id}", json={"refresh_token": {"rotation_type": "rotating",
                                                                               "leeway": 60}})  # fmt: skip
    first = offline_tokens(site)["refresh_token"]
    one, two = refresh(site, first), refresh(site, first)
    assert one.status_code == two.status_code == 200, (one.text, two.text)
    assert one.json()["refresh_token"] != two.json()["refresh_token"]
    assert refresh(site, one.json()["refresh_token"]).status_code == 200
    assert refresh(site, two.json()["refresh_token"]).status_code == 200


def test_refresh_tokens_end_with_their_lifetimes(tenant: TenantClient, database_url: str) -> None:
    """A client's lifetimes: a token unused past its idle lifetime is refused; each exchange starts the idle
    time again (never past the absolute expiry); a token past its absolute lifetime is refused."""
    site = make_site(tenant, None)
    tenant.patch(f"/api/v2/clients/{site.client_id}", json={"refresh_token": {
        "token_lifetime": 7 * 86400, "idle_token_lifetime": 3600}})  # fmt: skip
    token = offline_tokens(site)["refresh_token"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT expires_at - created_at, idle_expires_at - created_at FROM refresh_tokens"
                           " WHERE token_hash = %s", (secret_hash(token),)).fetchone()  # fmt: skip
        assert row is not None and row[0].days == 7 and 3590 < row[1].total_seconds() < 3610

        def age(**moved: str) -> None:
            sets = ", ".join(f"{column} = now() + interval '{delta}'" for column, delta in moved.items())
            conn.execute(f"UPDATE refresh_tokens SET {sets} WHERE token_hash = %s", (secret_hash(token),))

        age(idle_expires_at="10 seconds")
        assert refresh(site, token).status_code == 200
        renewed = conn.execute("SELECT idle_expires_at - now() FROM refresh_tokens WHERE token_hash = %s",
                               (secret_hash(token),)).fetchone()  # fmt: skip
        assert renewed is not None and renewed[0].total_seconds() > 3500
        age(idle_expires_at="-1 second")
        idle = refresh(site, token)
        assert idle.status_code == 400 and idle.json()["error"] == "invalid_grant"
        age(idle_expires_at="1 hour", expires_at="-1 second")
        assert refresh(site, token).status_code == 400


AUTH0_EXPORT = {  # a client's refresh_token as Auth0's Management API and Deploy CLI export it
    "rotation_type": "non-rotating", "expiration_type": "non-expiring", "leeway": 0, "token_lifetime": 31_557_600,
    "infinite_token_lifetime": True, "idle_token_lifetime": 2_592_000, "infinite_idle_token_lifetime": True,
}  # fmt: skip


@pytest.mark.parametrize(
    ("refresh_settings", "days", "idle"),
    [
        (AUTH0_EXPORT, 36_500, False),  # non-expiring: no limit of either kind, whatever the numbers say
        ({**AUTH0_EXPORT, "expiration_type": "expiring", "infinite_idle_token_lifetime": False}, 36_500, True),
        ({"infinite_token_lifetime": True, "idle_token_lifetime": 3600}, 36_500, True),
        ({"token_lifetime": 86_400, "idle_token_lifetime": 3600, "infinite_idle_token_lifetime": True}, 1, False),
    ],
)
def test_auth0_refresh_token_settings_are_taken_as_they_are_exported(
    tenant: TenantClient, database_url: str, refresh_settings: dict[str, Any], days: int, idle: bool
) -> None:
    """Auth0's whole refresh_token object is accepted and kept: expiration_type "non-expiring" and the
    infinite_* flags lift the lifetimes (a token without one expires in a hundred years, which nobody
    reaches); the idle limit applies only where it is set and not lifted."""
    site = make_site(tenant, None)
    reply = tenant.patch(f"/api/v2/clients/{site.client_id}", json={"refresh_token": refresh_settings})
    assert reply.status_code == 200, reply.text
    assert {k: reply.json()["refresh_token"][k] for k in refresh_settings} == refresh_settings
    token = offline_tokens(site)["refresh_token"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT (expires_at - created_at), idle_expires_at IS DISTINCT FROM expires_at"
                           " FROM refresh_tokens WHERE token_hash = %s", (secret_hash(token),)).fetchone()  # fmt: skip
    assert row is not None and row[0].days == days and row[1] == idle
    assert refresh(site, token).status_code == 200


def test_settings_stored_before_auth0s_other_fields_keep_their_meaning(tenant: TenantClient, database_url: str) -> None:
    """A client's refresh_token stored with only the four fields of earlier versions reads with the new fields
    at their defaults: its idle limit still applies."""
    site = make_site(tenant, None)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE clients SET refresh_token = %s WHERE client_id = %s",
            ('{"rotation_type": "non-rotating", "leeway": 0, "token_lifetime": 86400, "idle_token_lifetime": 3600}',
             site.client_id),
        )  # fmt: skip
    client = tenant.get(f"/api/v2/clients/{site.client_id}").json()
    assert client["refresh_token"]["infinite_idle_token_lifetime"] is False
    token = offline_tokens(site)["refresh_token"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT expires_at - created_at, idle_expires_at - created_at FROM refresh_tokens"
                           " WHERE token_hash = %s", (secret_hash(token),)).fetchone()  # fmt: skip
    assert row is not None and row[0].days == 1 and 3590 < row[1].total_seconds() < 3610


@pytest.mark.parametrize("config", [{"rotation_type": "sometimes"}, {"leeway": -1}, {"leeway": 7200},
                                      {"rotation_type": "rotating", "expiration_type": "non-expiring"},
                                      {"expiration_type": "never"}, {"infinite_token_lifetime": "yes"},
                                      {"token_lifetime": 10}, {"idle_token_lifetime": 0}, {"unknown": 1}])  # fmt: skip
def test_refresh_token_settings_are_checked(tenant: TenantClient, config: dict[str, Any]) -> None:
    reply = tenant.post("/api/v2/clients", json={"name": "App", "refresh_token": config})
    assert reply.status_code == 400, reply.text


def test_continue_from_another_browser_is_refused(site: Site) -> None:
    browser = site.browser()
    redirected = submit(site, browser, authorize(site, browser, pkce()))
    thief = site.browser()
    assert factor(site, thief, redirected).status_code == 400
    code_of(factor(site, browser, redirected))  # the refused attempt did not use the state up


def test_discovery_and_keys(site: Site) -> None:
    browser = site.browser()
    config = browser.get(site.path(".well-known/openid-configuration")).json()
    assert config["issuer"] == f"https://login.acme-bank.example/t/{site.tenant.name}/"
    assert config["code_challenge_methods_supported"] == ["S256"]
    keys = browser.get(site.path(".well-known/jwks.json")).json()["keys"]
    assert keys and all("d" not in k for k in keys)
    assert browser.get("/t/no-such-tenant/.well-known/jwks.json").status_code == 404
    assert browser.get(site.path("userinfo"), headers={"Authorization": "Bearer nonsense"}).status_code == 401
