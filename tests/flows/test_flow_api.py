"""The flow API and /continue: an identity server runs its logins' post-login flows through Tollgate."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import psycopg
import pytest

from tests.conftest import ACME
from tests.fix_api import TenantClient

FACTOR = (ACME / "actions" / "custom-factor.js").read_text()
SECRET = "a-secret-the-verify-page-shares-" + "x" * 16
VERIFY_HOST = "verify.acme-bank.example"
RESUME = "https://idp.acme-bank.example/resume"
METHOD = "https://verify.acme-bank.example/factor"
TRIGGER = [{"id": "post-login", "version": "v3"}]


def base_event(session: str | None = "sess-1") -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ACME / "events" / "first-login.json").read_text())
    event.pop("tenant")
    event["authentication"] = {"methods": [{"name": "pwd", "timestamp": "2026-11-28T10:15:00.000Z"}]}
    if session is None:
        event.pop("session")
    else:
        event["session"] = {"id": session}
    return event


def bind(t: TenantClient, *actions: tuple[str, str] | tuple[str, str, list[dict[str, str]]]) -> list[str]:
    """Create, deploy and bind `actions` ((name, code[, secrets])) in order; allow the verify host."""
    ids = []
    for spec in actions:
        name, code = spec[0], spec[1]
        secrets = spec[2] if len(spec) > 2 else []
        reply = t.post("/api/v2/actions/actions", json={
            "name": name, "code": code, "supported_triggers": TRIGGER, "secrets": secrets, "deploy": True,
        })  # fmt: skip
        assert reply.status_code == 201, reply.text
        ids.append(reply.json()["id"])
    reply = t.patch(
        "/api/v2/actions/triggers/post-login/bindings",
        json={"bindings": [{"ref": {"type": "action_id", "value": i}} for i in ids]},
    )
    assert reply.status_code == 200, reply.text
    assert t.patch("/api/v2/tenants/settings", json={"allowed_redirect_hosts": [VERIFY_HOST]}).status_code == 200
    return ids


def start(t: TenantClient, event: dict[str, Any] | None = None, status: int = 200) -> dict[str, Any]:
    reply = t.post("/api/v2/flows/post-login", json={"event": event or base_event(), "resume_url": RESUME})
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    return body


def state_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["state"][0]


def verified_token(
    state: str, *, secret: str = SECRET, sub: str = "auth0|5f7c8ec7c33c6c004bbafe82", **claims: Any
) -> str:
    """What the verify page returns: an HS256 token over the /continue state."""
    now = int(time.time())
    payload = {"iat": now, "exp": now + 300, "sub": sub, "iss": "login.acme-bank.example", "state": state,
               "user_id": sub, "verified": True, **claims}  # fmt: skip
    return jwt.encode(payload, secret, algorithm="HS256")


def come_back(t: TenantClient, state: str, tenant_name: str | None = None, **form: str) -> Any:
    """The browser returning to /continue (POST, as the verify page does)."""
    return t.client.post(f"/t/{tenant_name or t.name}/continue", data={"state": state, **form}, follow_redirects=False)


def redeem(t: TenantClient, reply: Any) -> dict[str, Any]:
    assert reply.status_code == 303, reply.text
    location = reply.headers["location"]
    assert location.startswith(RESUME + "?result=")
    assert reply.headers["referrer-policy"] == "no-referrer"
    ref = parse_qs(urlsplit(location).query)["result"][0]
    first = t.get(f"/api/v2/flows/results/{ref}")
    assert first.status_code == 200, first.text
    assert t.get(f"/api/v2/flows/results/{ref}").status_code == 404  # once only
    body: dict[str, Any] = first.json()
    return body


def test_without_bindings_the_login_completes_unchanged(tenant: TenantClient) -> None:
    outcome = start(tenant)
    assert outcome["status"] == "completed"
    assert outcome["id_token_claims"] == {} and outcome["methods"][0]["name"] == "pwd"


def test_actions_run_in_order_and_later_ones_see_earlier_changes(tenant: TenantClient) -> None:
    bind(
        tenant,
        ("first", "exports.onExecutePostLogin = async (event, api) => {"
                  " api.user.setAppMetadata('plan', 'gold'); api.transaction.setMetadata('step', 1);"
                  " api.idToken.setCustomClaim('https://acme/first', true);"
                  " api.idToken.setCustomClaim('sub', 'forged'); api.accessToken.addScope('read:all'); };"),
        ("second", "exports.onExecutePostLogin = async (event, api) => {"
                   " api.accessToken.setCustomClaim('https://acme/plan', event.user.app_metadata.plan);"
                   " api.accessToken.setCustomClaim('https://acme/step', event.transaction.metadata.step); };"),
    )  # fmt: skip
    outcome = start(tenant)
    assert outcome["status"] == "completed", outcome
    assert outcome["id_token_claims"] == {"https://acme/first": True}
    assert outcome["access_token_claims"] == {"https://acme/plan": "gold", "https://acme/step": 1}
    assert outcome["dropped_claims"] == ["sub"]
    assert outcome["app_metadata"] == {"plan": "gold"}
    assert outcome["scope_changes"] == [{"token": "access", "op": "add", "scope": "read:all"}]
    record = tenant.get(f"/api/v2/actions/executions/{outcome['execution_id']}").json()
    assert record["kind"] == "flow" and record["status"] == "completed"
    assert [r["action_name"] for r in record["results"]] == ["first", "second"]


def test_deny_stops_the_flow_and_keeps_earlier_metadata(tenant: TenantClient) -> None:
    bind(
        tenant,
        ("marks", "exports.onExecutePostLogin = async (e, api) => { api.user.setUserMetadata('seen', true); };"),
        ("denies", "exports.onExecutePostLogin = async (e, api) => { api.access.deny('No access on Sundays'); };"),
        ("never", "exports.onExecutePostLogin = async (e, api) => { api.idToken.setCustomClaim('https://x/y', 1); };"),
    )
    outcome = start(tenant)
    assert outcome["status"] == "denied"
    assert (outcome["error"], outcome["error_description"]) == ("access_denied", "No access on Sundays")
    assert outcome["user_metadata"] == {"seen": True}
    record = tenant.get(f"/api/v2/actions/executions/{outcome['execution_id']}").json()
    assert [r["action_name"] for r in record["results"]] == ["marks", "denies"]


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        ("exports.onExecutePostLogin = async () => { throw new Error('boom'); };", "action_error"),
        ("exports.onExecutePostLogin = async () => { for (;;) {} };", "action_timeout"),
        ("exports.onExecutePostLogin = async (e, api) => { api.authentication.recordMethod('https://x.example/'); };",
         "action_error"),
    ],
)  # fmt: skip
def test_failures_fail_the_login_closed_with_their_class(tenant: TenantClient, code: str, error_class: str) -> None:
    bind(tenant, ("fails", code))
    outcome = start(tenant)
    assert outcome["status"] == "failed"
    assert outcome["error"]["class"] == error_class
    assert "id_token_claims" not in outcome


def seed_tenant(t: TenantClient) -> None:
    bind(t, ("custom-factor", FACTOR, [{"name": "SESSION_TOKEN_SECRET", "value": SECRET}]))


def test_the_seed_story_through_the_flow_api(tenant: TenantClient) -> None:
    """Redirect to the factor, come back with its token, the method is recorded; the session skips it next time."""
    seed_tenant(tenant)
    first = start(tenant)
    assert first["status"] == "redirect"
    location = first["location"]
    assert location.startswith(METHOD + "?session_token=")
    state = state_of(location)
    assert len(state) >= 43  # 256 bits, base64url

    finished = redeem(tenant, come_back(tenant, state, session_token=verified_token(state)))
    assert finished["status"] == "completed", finished
    assert [m["name"] for m in finished["methods"]] == ["pwd", METHOD]
    record = tenant.get(f"/api/v2/actions/executions/{first['execution_id']}").json()
    assert record["status"] == "completed"
    assert [r["handler"] for r in record["results"]] == ["onExecutePostLogin", "onContinuePostLogin"]

    again = start(tenant)  # the same session: the factor was done a moment ago
    assert again["status"] == "completed"
    assert METHOD in [m["name"] for m in again["methods"]]

    other_session = start(tenant, base_event("sess-2"))
    assert other_session["status"] == "redirect"
    no_session = start(tenant, base_event(None))
    assert no_session["status"] == "redirect"


def test_a_state_works_once_and_only_for_its_tenant(tenant: TenantClient, make_tenant: Any) -> None:
    seed_tenant(tenant)
    other = make_tenant()
    state = state_of(start(tenant)["location"])
    token = verified_token(state)
    foreign = come_back(other, state, tenant_name=other.name, session_token=token)
    assert foreign.status_code == 400 and "invalid_request" in foreign.text
    assert redeem(tenant, come_back(tenant, state, session_token=token))["status"] == "completed"
    replay = come_back(tenant, state, session_token=token)
    assert replay.status_code == 400 and "invalid_request" in replay.text
    assert come_back(tenant, "made-up-state").status_code == 400
    assert tenant.client.get(f"/t/{tenant.name}/continue").status_code == 400
    assert tenant.client.get("/t/no-such-tenant/continue?state=x").status_code == 404


def test_an_expired_transaction_is_refused_without_running_code(tenant: TenantClient, database_url: str) -> None:
    seed_tenant(tenant)
    first = start(tenant)
    state = state_of(first["location"])
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE flow_transactions SET expires_at = now() - interval '1 second' WHERE tenant_id = %s",
                     (tenant.id,))  # fmt: skip
    reply = come_back(tenant, state, session_token=verified_token(state))
    assert reply.status_code == 400
    record = tenant.get(f"/api/v2/actions/executions/{first['execution_id']}").json()
    assert record["status"] == "suspended" and len(record["results"]) == 1


@pytest.mark.parametrize(
    ("problem", "token_args"),
    [
        ("wrong state", {"state": "another-state"}),
        ("wrong sub", {"sub": "auth0|someone-else"}),
        ("wrong secret", {"secret": "not-the-shared-secret-" + "y" * 20}),
        ("expired", {"exp": int(time.time()) - 60}),
        ("not verified", {"verified": False}),
    ],
)
def test_a_bad_factor_token_fails_the_login(tenant: TenantClient, problem: str, token_args: dict[str, Any]) -> None:
    seed_tenant(tenant)
    state = state_of(start(tenant)["location"])
    token = verified_token(**{"state": state, **token_args})
    outcome = redeem(tenant, come_back(tenant, state, session_token=token))
    assert outcome["status"] in ("failed", "denied"), problem
    assert "methods" not in outcome
    again = start(tenant)  # nothing was recorded: the factor is asked again
    assert again["status"] == "redirect"


def test_deny_after_the_redirect(tenant: TenantClient) -> None:
    bind(
        tenant,
        (
            "asks",
            "exports.onExecutePostLogin = async (e, api) => {"
            " api.redirect.sendUserTo('https://verify.acme-bank.example/factor'); };"
            "exports.onContinuePostLogin = async (e, api) => { api.access.deny('Factor refused'); };",
        ),
    )
    state = state_of(start(tenant)["location"])
    outcome = redeem(tenant, come_back(tenant, state))
    assert (outcome["status"], outcome["error_description"]) == ("denied", "Factor refused")


def test_the_platform_sets_the_state_not_the_action(tenant: TenantClient) -> None:
    bind(
        tenant,
        (
            "sets-state",
            "exports.onExecutePostLogin = async (e, api) => {"
            " api.redirect.sendUserTo('https://verify.acme-bank.example/f?state=mine',"
            " {query: {state: 'also-mine', keep: 'me'}}); };",
        ),
    )
    location = start(tenant)["location"]
    query = parse_qs(urlsplit(location).query)
    assert query["keep"] == ["me"] and len(query["state"]) == 1 and query["state"][0] not in ("mine", "also-mine")


@pytest.mark.parametrize(
    "target",
    [
        "javascript:alert(1)",
        "https://evil.example/phish",
        "http://verify.acme-bank.example/factor",
        "https://user:pw@verify.acme-bank.example/",
        "https://evil.example\\\\@verify.acme-bank.example/",
        "https://verify.acme-bank.example.evil.example/",
        "https://verify.acme-bank.example:8443/",
        "//evil.example/",
    ],
)
def test_open_redirects_are_refused(tenant: TenantClient, database_url: str, target: str) -> None:
    bind(
        tenant,
        ("redirects", f"exports.onExecutePostLogin = async (e, api) => {{ api.redirect.sendUserTo({target!r}); }};"),
    )
    outcome = start(tenant)
    assert outcome["status"] == "failed", outcome
    assert outcome["error"]["class"] == "action_error"
    with psycopg.connect(database_url) as conn:
        count = conn.execute("SELECT count(*) FROM flow_transactions WHERE tenant_id = %s", (tenant.id,)).fetchone()
    assert count == (0,)


def test_a_login_that_cannot_interact_cannot_redirect(tenant: TenantClient) -> None:
    seed_tenant(tenant)
    event = base_event()
    event["request"]["query"]["prompt"] = "none"
    outcome = start(tenant, event)
    assert (outcome["status"], outcome["error"]["class"]) == ("failed", "interaction_required")
    event = base_event()
    event["transaction"]["protocol"] = "oauth2-refresh-token"
    assert start(tenant, event)["error"]["class"] == "interaction_required"


def test_fifty_concurrent_continues_one_wins(tenant: TenantClient, database_url: str) -> None:
    seed_tenant(tenant)
    state = state_of(start(tenant)["location"])
    token = verified_token(state)
    codes: list[int] = []
    gate = threading.Barrier(50)

    def attempt() -> None:
        gate.wait()
        codes.append(come_back(tenant, state, session_token=token).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [303] + [400] * 49
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT methods FROM sessions WHERE tenant_id = %s AND kind = 'external'", (tenant.id,)
        ).fetchone()
    assert row is not None and [m["name"] for m in row[0]] == [METHOD]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"event": {"user": {}}, "resume_url": RESUME}, "user_id"),
        ({"event": {"user": {"user_id": "u"}, "tenant": {"id": "x"}}, "resume_url": RESUME}, "unknown event fields"),
        ({"event": {"user": {"user_id": "u"}, "secrets": {}}, "resume_url": RESUME}, "unknown event fields"),
        ({"event": {"user": {"user_id": "u"}}, "resume_url": "http://idp.example/resume"}, "https"),
        ({"event": {"user": {"user_id": "u"}}}, "resume_url"),
        ({"event": {"user": {"user_id": "u"}, "session": {"id": 5}}, "resume_url": RESUME}, "session.id"),
        ({"event": {"user": "u"}, "resume_url": RESUME}, "event.user"),
    ],
)
def test_bad_flow_requests_get_clear_errors(tenant: TenantClient, body: dict[str, Any], message: str) -> None:
    reply = tenant.post("/api/v2/flows/post-login", json=body)
    assert reply.status_code == 400
    assert message in reply.json()["message"]


def test_the_flow_api_needs_a_tenant_key(tenant: TenantClient, operator_headers: dict[str, str]) -> None:
    body = {"event": base_event(), "resume_url": RESUME}
    assert tenant.client.post("/api/v2/flows/post-login", json=body).status_code == 401
    assert tenant.client.post("/api/v2/flows/post-login", json=body, headers=operator_headers).status_code == 403
    assert tenant.get("/api/v2/flows/results/unknown").status_code == 404


def test_the_cache_carries_over_from_one_login_to_the_next(tenant: TenantClient) -> None:
    bind(
        tenant,
        (
            "counts",
            "exports.onExecutePostLogin = async (e, api) => {"
            " const seen = api.cache.get('logins');"
            " const count = seen ? Number(seen.value) + 1 : 1;"
            " api.cache.set('logins', String(count));"
            " api.idToken.setCustomClaim('https://acme/logins', count); };",
        ),
    )
    counts = [start(tenant)["id_token_claims"]["https://acme/logins"] for _ in range(3)]
    assert counts == [1, 2, 3]


def test_an_executor_killed_mid_login_fails_that_login_closed(
    tenant: TenantClient, api: Any, operator_headers: dict[str, str]
) -> None:
    """The login whose executor dies fails with platform_error; the next login works."""
    import os
    import signal

    api.patch(f"/api/v2/tenants/{tenant.id}", json={"limits": {"wall_ms": 20_000, "fuel": 50_000_000_000}},
              headers=operator_headers)  # fmt: skip
    bind(
        tenant,
        (
            "spins",
            "exports.onExecutePostLogin = async (e, api) => {"
            " if (e.user.app_metadata.spin) { for (;;) {} } api.idToken.setCustomClaim('https://x/ok', 1); };",
        ),
    )
    pool = api.app.state.services.executors
    outcomes: list[dict[str, Any]] = []
    spinning = base_event()
    spinning["user"]["app_metadata"] = {"spin": True}
    thread = threading.Thread(target=lambda: outcomes.append(start(tenant, spinning)))
    thread.start()
    deadline = time.monotonic() + 30
    while not (busy := pool.pids(busy_only=True)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert busy, "no executor picked up the login"
    os.kill(busy[0], signal.SIGKILL)
    thread.join(timeout=60)
    assert outcomes and outcomes[0]["status"] == "failed"
    assert outcomes[0]["error"]["class"] == "platform_error"
    assert start(tenant)["id_token_claims"] == {"https://x/ok": 1}
    assert pool.stats()["replaced"] >= 1


def test_an_ended_session_starts_over_without_its_methods(tenant: TenantClient, database_url: str) -> None:
    seed_tenant(tenant)
    state = state_of(start(tenant)["location"])
    assert redeem(tenant, come_back(tenant, state, session_token=verified_token(state)))["status"] == "completed"
    assert start(tenant)["status"] == "completed"  # the session holds the factor
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE sessions SET idle_expires_at = now() - interval '1 second' WHERE tenant_id = %s",
                     (tenant.id,))  # fmt: skip
    assert start(tenant)["status"] == "redirect"  # the same session id, but the session had ended


def test_a_tenant_over_its_concurrency_quota_gets_resource_exhausted_at_once(
    tenant: TenantClient, api: Any, operator_headers: dict[str, str]
) -> None:
    api.patch(f"/api/v2/tenants/{tenant.id}", json={"limits": {"max_concurrent_executions": 1, "wall_ms": 1500,
              "fuel": 50_000_000_000}}, headers=operator_headers)  # fmt: skip
    bind(tenant, ("slow", "exports.onExecutePostLogin = async () => { const end = Date.now(); for (let i = 0;"
                         " i < 1e12; i++) {} };"))  # fmt: skip
    replies: list[Any] = []
    body = {"event": base_event(None), "resume_url": RESUME}

    def call() -> None:
        replies.append(tenant.post("/api/v2/flows/post-login", json=body))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200, 429]
    refused = next(r for r in replies if r.status_code == 429).json()
    assert refused["errorCode"] == "resource_exhausted"
    ran = next(r for r in replies if r.status_code == 200).json()
    assert ran["error"]["class"] == "action_timeout"


def test_a_login_in_a_live_session_restarts_its_idle_time(tenant: TenantClient, database_url: str) -> None:
    """Each login in a live session restarts its idle time (three days), never past its end."""
    bind(
        tenant,
        (
            "claims",
            "exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/n', 1); };",
        ),
    )
    assert start(tenant)["status"] == "completed"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE sessions SET last_interacted_at = now() - interval '2 days',"
            " idle_expires_at = now() + interval '1 day' WHERE tenant_id = %s",
            (tenant.id,),
        )
        assert start(tenant)["status"] == "completed"
        row = conn.execute(
            "SELECT now() - last_interacted_at < interval '1 minute', idle_expires_at > now() + interval '2 days 23 hours',"
            " idle_expires_at <= expires_at, count(*) OVER () FROM sessions WHERE tenant_id = %s",
            (tenant.id,),
        ).fetchone()
        conn.execute(
            "UPDATE sessions SET expires_at = now() + interval '10 minutes',"
            " last_interacted_at = last_interacted_at - interval '2 minutes',"
            " idle_expires_at = idle_expires_at - interval '2 minutes' WHERE tenant_id = %s",
            (tenant.id,),
        )
        assert start(tenant)["status"] == "completed"
        capped = conn.execute(
            "SELECT idle_expires_at = expires_at FROM sessions WHERE tenant_id = %s", (tenant.id,)
        ).fetchone()
    assert row == (True, True, True, 1)
    assert capped == (True,)


def test_an_idle_span_an_action_shortened_is_kept_by_later_logins(tenant: TenantClient, database_url: str) -> None:
    """api.session.setIdleExpiresAt shortens the session's idle span; a later login in the session restarts
    the idle clock with that span, not the default three days (as a single sign-on on the hosted page does)."""
    bind(
        tenant,
        (
            "short-idle",
            "exports.onExecutePostLogin = async (event, api) => {"
            " if (event.request.query.short) api.session.setIdleExpiresAt(Date.now() + 3600 * 1000); };",
        ),
    )
    shorten = base_event()
    shorten["request"] = {**shorten.get("request", {}), "query": {"short": "1"}}
    assert start(tenant, shorten)["status"] == "completed"
    with psycopg.connect(database_url, autocommit=True) as conn:

        def span() -> Any:
            return conn.execute(
                "SELECT idle_expires_at - last_interacted_at FROM sessions WHERE tenant_id = %s", (tenant.id,)
            ).fetchone()[0]

        shortened = span()
        conn.execute(
            "UPDATE sessions SET last_interacted_at = last_interacted_at - interval '10 minutes',"
            " idle_expires_at = idle_expires_at - interval '10 minutes' WHERE tenant_id = %s",
            (tenant.id,),
        )
        assert start(tenant)["status"] == "completed"  # this login does not shorten it
        kept = conn.execute(
            "SELECT idle_expires_at - last_interacted_at, now() - last_interacted_at < interval '1 minute',"
            " idle_expires_at BETWEEN now() + interval '59 minutes' AND now() + interval '61 minutes'"
            " FROM sessions WHERE tenant_id = %s",
            (tenant.id,),
        ).fetchone()
    assert timedelta(minutes=59) < shortened < timedelta(minutes=61)
    assert kept == (shortened, True, True)


def test_logins_soon_after_the_last_write_read_the_session_without_writing_it(
    tenant: TenantClient, database_url: str
) -> None:
    """A live session's idle clock is written at most once a minute: a login sooner than that reads the
    session (its methods too) and leaves its row as it was; one later writes it again."""
    seed_tenant(tenant)
    state = state_of(start(tenant)["location"])
    assert redeem(tenant, come_back(tenant, state, session_token=verified_token(state)))["status"] == "completed"

    def row(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
        found = conn.execute(
            "SELECT xmin::text, id, idle_expires_at, last_interacted_at, jsonb_array_length(methods)"
            " FROM sessions WHERE tenant_id = %s",
            (tenant.id,),
        ).fetchall()
        assert len(found) == 1
        return tuple(found[0])

    with psycopg.connect(database_url, autocommit=True) as conn:
        assert start(tenant)["status"] == "completed"  # the session holds the factor
        written = row(conn)
        for _ in range(3):
            assert start(tenant)["status"] == "completed"
        assert row(conn) == written  # read, not written: no new version of the row
        conn.execute(
            "UPDATE sessions SET idle_expires_at = idle_expires_at - interval '2 minutes',"
            " last_interacted_at = last_interacted_at - interval '2 minutes' WHERE tenant_id = %s",
            (tenant.id,),
        )
        aged = row(conn)
        assert start(tenant)["status"] == "completed"
        touched = row(conn)
        fresh = conn.execute(
            "SELECT idle_expires_at > now() + interval '3 days' - interval '1 minute',"
            " now() - last_interacted_at < interval '1 minute' FROM sessions WHERE tenant_id = %s",
            (tenant.id,),
        ).fetchone()
    assert touched[0] != aged[0] and touched[1] == aged[1] and touched[4] == aged[4] == 1
    assert touched[2] > aged[2] and touched[3] > aged[3]
    assert fresh == (True, True)


def records_in_database(database_url: str, execution_id: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        return [r[0] for r in conn.execute("SELECT status FROM executions WHERE id = %s", (execution_id,))]


def test_a_login_answers_before_its_record_is_written_and_readers_still_find_it(
    tenant: TenantClient, database_url: str
) -> None:
    """A login that commits nothing else leaves its execution record to be written behind the answer;
    the API's readers of records settle what their process has waiting before they read."""
    bind(
        tenant,
        ("claims", "exports.onExecutePostLogin = async (e, api) => { api.idToken.setCustomClaim('https://x/n', 1); };"),
    )
    behind = tenant.client.app.state.services.store.records_behind
    # Earlier tests' records still waiting would be flushed, ours with them, on their own timer.
    tenant.client.portal.call(behind.settle)
    delay, behind.delay_s = behind.delay_s, 3600.0
    try:
        login = start(tenant, base_event(None))
        assert login["status"] == "completed"
        assert records_in_database(database_url, login["execution_id"]) == []  # answered; the record waits
        assert behind.waiting >= 1
        record = tenant.get(f"/api/v2/actions/executions/{login['execution_id']}")
        assert (record.status_code, record.json()["status"]) == (200, "completed")
        assert records_in_database(database_url, login["execution_id"]) == ["completed"]
    finally:
        behind.delay_s = delay


def test_a_redirected_login_commits_its_record_with_its_transaction(tenant: TenantClient, database_url: str) -> None:
    """A login that must commit before its answer (here, the suspended transaction) commits its record with it."""
    seed_tenant(tenant)
    behind = tenant.client.app.state.services.store.records_behind
    delay, behind.delay_s = behind.delay_s, 3600.0
    try:
        first = start(tenant)
        assert first["status"] == "redirect"
        assert records_in_database(database_url, first["execution_id"]) == ["suspended"]
    finally:
        behind.delay_s = delay


def test_a_server_that_stops_writes_the_records_it_holds(
    tenant: TenantClient, settings: Any, database_url: str
) -> None:
    """The records a server process holds when it is told to stop are written before it ends."""
    from starlette.testclient import TestClient

    from runtime.api.app import create_app

    bind(
        tenant,
        ("claims", "exports.onExecutePostLogin = async (e, api) => { api.idToken.setCustomClaim('https://x/n', 1); };"),
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as other:
        other.app.state.services.store.records_behind.delay_s = 3600.0
        reply = other.post("/api/v2/flows/post-login", headers=tenant.headers,
                           json={"event": base_event(None), "resume_url": RESUME})  # fmt: skip
        execution_id = reply.json()["execution_id"]
        assert records_in_database(database_url, execution_id) == []  # held, an hour from being written
    assert records_in_database(database_url, execution_id) == ["completed"]
