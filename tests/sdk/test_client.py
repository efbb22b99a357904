"""The SDK's client: what it sends, the API's errors as ApiError, and every route against the real app.

The live log stream needs a real server: tests/sdk/test_cli.py follows it.
"""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from starlette.testclient import TestClient

from sdk.client import ApiError, Tollgate, Unreachable
from sdk.descriptor import deploy as deploy_descriptor
from sdk.descriptor import load
from tests.fix_api import OPERATOR_KEY
from tests.flows.test_flow_api import FACTOR, METHOD, RESUME, base_event, state_of, verified_token


def _api(answer: httpx2.Response, seen: list[httpx2.Request]) -> Tollgate:
    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return answer

    return Tollgate("http://tollgate.test/", "tgt_key", transport=httpx2.MockTransport(handle))


def test_requests_carry_the_key_and_the_api_bodies() -> None:
    seen: list[httpx2.Request] = []
    api = _api(httpx2.Response(201, json={"id": "a1", "name": "factor"}), seen)
    made = api.actions.create("factor", "exports.onExecutePostLogin = async () => {};", secrets={"S": "v"})
    assert made["id"] == "a1"
    request = seen[0]
    assert (request.method, str(request.url)) == ("POST", "http://tollgate.test/api/v2/actions/actions")
    assert request.headers["authorization"] == "Bearer tgt_key"
    body: dict[str, Any] = json.loads(request.content)
    assert body["supported_triggers"] == [{"id": "post-login"}]
    assert body["secrets"] == [{"name": "S", "value": "v"}]


def test_no_content_is_none() -> None:
    seen: list[httpx2.Request] = []
    assert _api(httpx2.Response(204), seen).tenants.delete("t1") is None
    assert (seen[0].method, seen[0].url.path) == ("DELETE", "/api/v2/tenants/t1")


def test_the_apis_error_body_becomes_an_api_error() -> None:
    body = {"statusCode": 400, "error": "Bad Request", "message": "Unexpected token", "errorCode": "action_syntax",
            "line": 3, "column": 7}  # fmt: skip
    api = _api(httpx2.Response(400, json=body), [])
    with pytest.raises(ApiError) as caught:
        api.actions.create("broken", "exports.onExecutePostLogin = async (")
    error = caught.value
    assert (error.status, error.code, error.message) == (400, "action_syntax", "Unexpected token")
    assert error.body["line"] == 3
    assert str(error) == "Unexpected token (HTTP 400, action_syntax)"


def test_an_answer_that_is_not_the_apis_says_what_came_back() -> None:
    api = _api(httpx2.Response(502, text="<html>Bad gateway</html>"), [])
    with pytest.raises(ApiError) as caught:
        api.tenants.list()
    assert caught.value.status == 502 and caught.value.code == "http_error"
    assert "Bad gateway" in caught.value.message


def test_a_server_that_does_not_answer_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Tollgate(f"http://127.0.0.1:{port}", "key", timeout=5) as api, pytest.raises(Unreachable) as caught:
        api.tenants.list()
    assert f"the Tollgate server at http://127.0.0.1:{port} cannot be reached" in str(caught.value)


# -- every route, against the session's app (real database and sandbox), in-process ----------


class InProcess(httpx2.BaseTransport):
    """httpx2's requests answered by the session's app, through Starlette's test client."""

    def __init__(self, app: TestClient) -> None:
        self.app = app

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        reply = self.app.request(request.method, str(request.url), headers=dict(request.headers),
                                 content=request.read())  # fmt: skip
        return httpx2.Response(reply.status_code, headers=reply.headers.raw, content=reply.content)


@pytest.fixture
def operator(api: TestClient) -> Iterator[Tollgate]:
    with Tollgate("http://tollgate.test", OPERATOR_KEY, transport=InProcess(api)) as client:
        yield client


@pytest.fixture
def acme(api: TestClient, operator: Tollgate) -> Iterator[Tollgate]:
    made = operator.tenants.create(f"client-{secrets.token_hex(4)}")
    with Tollgate("http://tollgate.test", made["api_key"]["key"], transport=InProcess(api)) as client:
        yield client


FACTOR_SECRET = "a-secret-the-verify-page-shares-" + "c" * 16
PRINTS = "exports.onExecutePostLogin = async (event, api) => { console.log('hi', event.user.email); };"


def test_the_operator_manages_tenants_and_their_keys(operator: Tollgate, api: TestClient) -> None:
    made = operator.tenants.create(f"ops-{secrets.token_hex(4)}")
    tenant_id = made["id"]
    assert operator.tenants.get(tenant_id)["limits"]["fuel"] == 1_000_000_000
    updated = operator.tenants.update(tenant_id, limits={"wall_ms": 1_000})
    assert updated["limits"]["wall_ms"] == 1_000 and updated["limit_overrides"] == {"wall_ms": 1_000}
    assert operator.tenants.update(tenant_id, limits={"wall_ms": None})["limit_overrides"] == {}
    assert tenant_id in [t["id"] for t in operator.tenants.list()]

    second = operator.keys.create(tenant_id)
    assert second["key"].startswith(second["prefix"])
    assert {k["id"] for k in operator.keys.list(tenant_id)} == {made["api_key"]["id"], second["id"]}
    with Tollgate("http://tollgate.test", second["key"], transport=InProcess(api)) as tenant:
        assert tenant.settings.get() == {"allowed_redirect_hosts": []}
        operator.keys.revoke(tenant_id, second["id"])
        with pytest.raises(ApiError) as refused:
            tenant.settings.get()
        assert (refused.value.status, refused.value.code) == (401, "invalid_key")
    with pytest.raises(ApiError) as wrong_kind:
        operator.settings.get()
    assert (wrong_kind.value.status, wrong_kind.value.code) == (403, "tenant_only")

    operator.tenants.delete(tenant_id)
    with pytest.raises(ApiError) as gone:
        operator.tenants.get(tenant_id)
    assert gone.value.code == "not_found"


def test_a_tenant_manages_its_settings_clients_and_users(acme: Tollgate) -> None:
    hosts = acme.settings.update(allowed_redirect_hosts=["verify.example.com", "mfa.example.com:8443"])
    assert hosts == {"allowed_redirect_hosts": ["mfa.example.com:8443", "verify.example.com"]} == acme.settings.get()
    client = acme.clients.create("web", callbacks=["https://app.example.com/cb"], metadata={"tier": "gold"})
    assert client["client_secret"]
    assert client["refresh_token"]["rotation_type"] == "non-rotating"
    assert acme.clients.update(client["client_id"], callbacks=[])["callbacks"] == []
    rotating = acme.clients.update(client["client_id"], refresh_token={"rotation_type": "rotating", "leeway": 30})
    assert rotating["refresh_token"] == {"rotation_type": "rotating", "leeway": 30, "expiration_type": "expiring",
                                         "token_lifetime": 2_592_000, "infinite_token_lifetime": False,
                                         "idle_token_lifetime": None, "infinite_idle_token_lifetime": False}  # fmt: skip
    assert acme.clients.get(client["client_id"])["client_metadata"] == {"tier": "gold"}
    assert [c["name"] for c in acme.clients.list()] == ["web"]
    assert "client_secret" not in acme.clients.list()[0]
    acme.clients.delete(client["client_id"])
    assert acme.clients.list() == []

    made = [acme.users.create(f"user{n}@example.com", password="a long password", app_metadata={"n": n})
            for n in range(3)]  # fmt: skip
    page = acme.users.list(page=1, per_page=2)
    assert [u["email"] for u in page["users"]] == ["user2@example.com"]
    assert [u["user_id"] for u in acme.users.list_all()] == [u["user_id"] for u in made]
    renamed = acme.users.update(made[0]["user_id"], name="Zero", user_metadata={"lang": "fr"})
    assert (renamed["name"], renamed["user_metadata"], renamed["app_metadata"]) == ("Zero", {"lang": "fr"}, {"n": 0})
    acme.users.delete(made[0]["user_id"])
    with pytest.raises(ApiError) as gone:
        acme.users.get(made[0]["user_id"])
    assert gone.value.status == 404


def test_actions_versions_tests_bindings_and_records(acme: Tollgate) -> None:
    factor = acme.actions.create("factor", FACTOR, secrets={"SESSION_TOKEN_SECRET": FACTOR_SECRET})
    prints = acme.actions.create("prints", PRINTS, deploy=True)
    assert prints["deployed_version"] is not None and factor["deployed_version"] is None
    assert [a["name"] for a in acme.actions.list(deployed=False)["actions"]] == ["factor"]
    assert acme.actions.list(name="prints")["total"] == 1
    assert [a["name"] for a in acme.actions.list_all(trigger="post-login")] == ["factor", "prints"]
    assert acme.actions.triggers()[0]["handlers"] == ["onExecutePostLogin", "onContinuePostLogin"]

    tested = acme.actions.test(factor["id"], base_event())
    assert tested["status"] == "completed"
    assert tested["commands"][0]["type"] == "redirect"
    assert acme.executions.get(tested["execution_id"])["results"][0]["version_id"] is None

    first = acme.actions.deploy(factor["id"])
    # A name without a value keeps the stored secret; one left out is removed.
    kept = acme.actions.update(factor["id"], code=FACTOR + "\n// v2\n", secrets={"SESSION_TOKEN_SECRET": None})
    assert [s["name"] for s in kept["secrets"]] == ["SESSION_TOKEN_SECRET"] and not kept["all_changes_deployed"]
    second = acme.actions.deploy(factor["id"])
    assert [v["number"] for v in acme.actions.versions(factor["id"])] == [2, 1]
    assert acme.actions.version(factor["id"], first["id"])["code"] == FACTOR
    back = acme.actions.rollback(factor["id"], first["id"])
    assert (back["number"], back["rolled_back_from"], back["code"]) == (3, first["id"], FACTOR)
    assert second["number"] == 2

    bound = acme.actions.update_bindings([prints["id"], factor["id"]])
    assert [b["action"]["name"] for b in bound] == ["prints", "factor"]
    assert [b["action"]["name"] for b in acme.actions.bindings()] == ["prints", "factor"]
    acme.settings.update(allowed_redirect_hosts=["verify.acme-bank.example"])

    outcome = acme.flows.post_login(base_event(), RESUME)
    assert outcome["status"] == "redirect" and outcome.get("location", "").startswith(METHOD)
    record = acme.executions.get(outcome["execution_id"])
    assert [r["action_name"] for r in record["results"]] == ["prints", "factor"]
    assert record["results"][0].get("logs") == [{"level": "log", "message": "hi jane.doe@example.com"}]
    listed = acme.executions.list(action_id=prints["id"], status="suspended")
    assert [e["id"] for e in listed["executions"]] == [outcome["execution_id"]]
    assert acme.executions.list(per_page=1)["total"] == 2

    with pytest.raises(ApiError) as bound_error:
        acme.actions.delete(prints["id"])
    assert bound_error.value.code == "conflict"
    acme.actions.delete(prints["id"], force=True)
    assert [b["action"]["name"] for b in acme.actions.bindings()] == ["factor"]


def test_a_redirected_flow_ends_at_continue_and_its_result_is_redeemed_once(
    operator: Tollgate, api: TestClient
) -> None:
    name = f"flows-{secrets.token_hex(4)}"
    made = operator.tenants.create(name)
    with Tollgate("http://tollgate.test", made["api_key"]["key"], transport=InProcess(api)) as acme:
        factor = acme.actions.create("factor", FACTOR, secrets={"SESSION_TOKEN_SECRET": FACTOR_SECRET}, deploy=True)
        acme.actions.update_bindings([factor["id"]])
        acme.settings.update(allowed_redirect_hosts=["verify.acme-bank.example"])
        started = acme.flows.post_login(base_event(), RESUME)
        state = state_of(started.get("location", ""))
        token = verified_token(state, secret=FACTOR_SECRET)
        reply = api.post(f"/t/{name}/continue", data={"state": state, "session_token": token}, follow_redirects=False)
        ref = parse_qs(urlsplit(reply.headers["location"]).query)["result"][0]
        finished = acme.flows.result(ref)
        assert finished["status"] == "completed"
        assert [m["name"] for m in finished.get("methods", [])] == ["pwd", METHOD]
        with pytest.raises(ApiError) as again:
            acme.flows.result(ref)
        assert again.value.status == 404


def test_a_syntax_error_points_at_the_file(acme: Tollgate) -> None:
    with pytest.raises(ApiError) as caught:
        acme.actions.create("broken", "exports.onExecutePostLogin = async () => {\n  let x = ;\n};\n")
    assert caught.value.code == "action_syntax"
    assert caught.value.at("broken.js").startswith("broken.js:2:")


def test_stats_usage_limits_and_the_sample_event(operator: Tollgate, acme: Tollgate) -> None:
    """The routes the console reads: an action's stats, the sample event, the tenant's usage, the platform's limits."""
    prints = acme.actions.create("prints", PRINTS)
    event = acme.actions.sample_event()
    assert event["user"]["email"] == "jane.doe@example.com"
    acme.actions.test(prints["id"], event)
    stats = acme.actions.stats(prints["id"], bucket=3600, kind="test")
    assert (stats["runs"], stats["outcomes"]["completed"], stats["bucket_seconds"]) == (1, 1, 3600)
    assert stats["buckets"][0]["p50_us"] == stats["p50_us"] is not None
    assert acme.actions.stats(prints["id"], kind="flow")["runs"] == 0
    with pytest.raises(ApiError) as refused:
        acme.actions.stats(prints["id"], since="2026-01-02T00:00:00Z", until="2026-01-01T00:00:00Z")
    assert refused.value.code == "invalid_query"

    assert operator.keys.current()["kind"] == "operator"
    tenant_id = acme.keys.current()["tenant_id"]
    usage = operator.tenants.usage(tenant_id)
    assert (usage["executions"], usage["errors"], usage["by_kind"]) == (1, 0, {"test": 1})
    assert usage["fuel_used"] > 0
    limits = operator.tenants.limits()
    assert limits["defaults"]["fuel"] < limits["maximums"]["fuel"]


def test_a_descriptor_sets_a_clients_refresh_token_rotation(acme: Tollgate, tmp_path: Any) -> None:
    """tenant.json's client refresh_token: created rotating, then back to the default on the next deploy, and
    a deploy that changes nothing leaves the client alone."""

    def deploy(client: dict[str, Any]) -> list[str]:
        (tmp_path / "tenant.json").write_text(json.dumps({"name": "rotating", "clients": [client]}))
        said: list[str] = []
        deploy_descriptor(acme, load(tmp_path), report=said.append)
        return said

    rotating = {"name": "SPA", "callbacks": ["https://spa.example.com/cb"],
                "refresh_token": {"rotation_type": "rotating", "leeway": 5, "idle_token_lifetime": 86400}}  # fmt: skip
    said = deploy(rotating)
    assert any("refresh tokens rotated (leeway 5 s), living 30 days, 1 day unused" in line for line in said), said
    assert acme.clients.list()[0]["refresh_token"] == {"rotation_type": "rotating", "leeway": 5,
                                                       "expiration_type": "expiring", "token_lifetime": 2_592_000,
                                                       "infinite_token_lifetime": False, "idle_token_lifetime": 86400,
                                                       "infinite_idle_token_lifetime": False}  # fmt: skip
    assert "client 'SPA': unchanged" in deploy(rotating)
    plain = {"name": "SPA", "callbacks": ["https://spa.example.com/cb"]}
    assert any("refresh tokens not rotated, living 30 days" in line for line in deploy(plain))
    assert acme.clients.list()[0]["refresh_token"]["rotation_type"] == "non-rotating"
    exported = {**plain, "refresh_token": {"rotation_type": "non-rotating", "expiration_type": "non-expiring",
                                           "infinite_token_lifetime": True, "infinite_idle_token_lifetime": True,
                                           "token_lifetime": 31_557_600, "idle_token_lifetime": 2_592_000}}  # fmt: skip
    assert any("refresh tokens not rotated, never expiring" in line for line in deploy(exported))
    assert "client 'SPA': unchanged" in deploy(exported)
