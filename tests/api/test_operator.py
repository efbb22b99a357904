"""The operator's routes: tenants, their limits and keys; and the tenant's clients, users and settings."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from runtime.limits import PLATFORM_MAXIMUMS, Limits
from tests.fix_api import TenantClient

TRIGGER = [{"id": "post-login", "version": "v3"}]
LOOP = "exports.onExecutePostLogin = async () => { while (true) {} };"


def test_tenants_are_created_listed_renamed_and_deleted(api: TestClient, operator_headers: dict[str, str]) -> None:
    """The operator's tenant CRUD; the first key is shown once and works."""
    made = api.post("/api/v2/tenants", json={"name": "crud-tenant"}, headers=operator_headers)
    assert made.status_code == 201
    tenant = made.json()
    assert tenant["api_key"]["key"].startswith("tgt_") and len(tenant["api_key"]["key"]) >= 47
    assert tenant["limits"] == {**Limits().as_dict(), "max_actions": 100, "max_concurrent_executions": 50,
                                "execution_retention_days": 10,
                                "max_code_bytes": 102400}  # fmt: skip
    assert api.post("/api/v2/tenants", json={"name": "crud-tenant"}, headers=operator_headers).status_code == 409
    listed = api.get("/api/v2/tenants", headers=operator_headers).json()["tenants"]
    assert "crud-tenant" in [t["name"] for t in listed]
    renamed = api.patch(f"/api/v2/tenants/{tenant['id']}", json={"name": "renamed"}, headers=operator_headers)
    assert renamed.json()["name"] == "renamed"
    keys = api.get(f"/api/v2/tenants/{tenant['id']}/keys", headers=operator_headers).json()["keys"]
    assert len(keys) == 1 and "key" not in keys[0]
    assert api.delete(f"/api/v2/tenants/{tenant['id']}", headers=operator_headers).status_code == 204
    assert api.get(f"/api/v2/tenants/{tenant['id']}", headers=operator_headers).status_code == 404
    key = tenant["api_key"]["key"]
    assert api.get("/api/v2/actions/actions", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_a_tenant_with_secrets_and_bound_actions_is_deleted(api: TestClient, operator_headers: dict[str, str]) -> None:
    """Deleting removes the secrets before the data keys they are encrypted under (no foreign key error)."""
    made = api.post("/api/v2/tenants", json={"name": "with-secrets"}, headers=operator_headers).json()
    key = {"Authorization": f"Bearer {made['api_key']['key']}"}
    action = api.post("/api/v2/actions/actions", headers=key, json={
        "name": "secretive", "supported_triggers": TRIGGER, "deploy": True,
        "code": "exports.onExecutePostLogin = async () => {};", "secrets": [{"name": "S", "value": "v"}],
    })  # fmt: skip
    assert action.status_code == 201, action.text
    bound = api.patch("/api/v2/actions/triggers/post-login/bindings", headers=key,
                      json={"bindings": [{"ref": {"type": "action_id", "value": action.json()["id"]}}]})  # fmt: skip
    assert bound.status_code == 200, bound.text
    assert api.delete(f"/api/v2/tenants/{made['id']}", headers=operator_headers).status_code == 204
    assert api.post("/api/v2/tenants", json={"name": "with-secrets"}, headers=operator_headers).status_code == 201


def test_limits_are_set_within_the_platform_maximums(
    api: TestClient, operator_headers: dict[str, str], tenant: TenantClient
) -> None:
    """PATCH limits merges overrides, refuses unknown names and values past the maximums; null restores."""
    path = f"/api/v2/tenants/{tenant.id}"
    reply = api.patch(path, json={"limits": {"fuel": 5_000_000, "max_actions": 2}}, headers=operator_headers)
    assert reply.status_code == 200
    assert reply.json()["limits"]["fuel"] == 5_000_000 and reply.json()["limits"]["max_actions"] == 2
    too_much = api.patch(path, json={"limits": {"wall_ms": PLATFORM_MAXIMUMS.wall_ms + 1}}, headers=operator_headers)
    assert too_much.status_code == 400 and "wall_ms may be at most" in too_much.json()["message"]
    unknown = api.patch(path, json={"limits": {"speed": 9}}, headers=operator_headers)
    assert unknown.status_code == 400 and "unknown limit: speed" in unknown.json()["message"]
    zero = api.patch(path, json={"limits": {"fuel": 0}}, headers=operator_headers)
    assert zero.status_code == 400
    restored = api.patch(path, json={"limits": {"fuel": None}}, headers=operator_headers).json()
    assert restored["limits"]["fuel"] == Limits().fuel and restored["limits"]["max_actions"] == 2


def test_the_platform_says_its_defaults_and_maximums(api: TestClient, operator_headers: dict[str, str]) -> None:
    """GET /limits: the values a new tenant gets and the most PATCH accepts, for every limit and quota."""
    reply = api.get("/api/v2/limits", headers=operator_headers)
    assert reply.status_code == 200
    body = reply.json()
    made = api.post("/api/v2/tenants", json={"name": "defaults-tenant"}, headers=operator_headers).json()
    assert body["defaults"] == made["limits"]
    assert set(body["maximums"]) == set(body["defaults"])
    assert body["maximums"]["wall_ms"] == PLATFORM_MAXIMUMS.wall_ms and body["maximums"]["max_actions"] == 1_000
    path = f"/api/v2/tenants/{made['id']}"
    for name, most in body["maximums"].items():
        assert api.patch(path, json={"limits": {name: most}}, headers=operator_headers).status_code == 200, name
        assert api.patch(path, json={"limits": {name: most + 1}}, headers=operator_headers).status_code == 400, name


def test_any_key_learns_whose_it_is(api: TestClient, operator_headers: dict[str, str], tenant: TenantClient) -> None:
    """GET /keys/current takes both kinds of key and says which; without a valid key it is a 401 like any route."""
    assert api.get("/api/v2/keys/current", headers=operator_headers).json() == {"kind": "operator",
                                                                               "key_id": "environment"}  # fmt: skip
    mine = tenant.get("/api/v2/keys/current").json()
    keys = api.get(f"/api/v2/tenants/{tenant.id}/keys", headers=operator_headers).json()["keys"]
    assert mine == {"kind": "tenant", "key_id": keys[0]["id"], "tenant_id": tenant.id, "tenant_name": tenant.name}
    unknown = api.get("/api/v2/keys/current", headers={"Authorization": "Bearer tgt_unknown"})
    assert (unknown.status_code, unknown.json()["errorCode"]) == (401, "invalid_key")


def test_limits_apply_to_the_tenants_executions_and_quotas(
    api: TestClient, operator_headers: dict[str, str], tenant: TenantClient
) -> None:
    """A tenant's fuel limit ends its test runs; max_actions caps its actions."""
    api.patch(f"/api/v2/tenants/{tenant.id}", json={"limits": {"fuel": 3_000_000, "max_actions": 1}},
              headers=operator_headers)  # fmt: skip
    action = tenant.post("/api/v2/actions/actions", json={"name": "loop", "supported_triggers": TRIGGER, "code": LOOP})
    assert action.status_code == 201
    payload = tenant.post(f"/api/v2/actions/actions/{action.json()['id']}/test", json={"payload": {}}).json()["payload"]
    assert payload["error"]["class"] == "action_timeout"
    assert payload["stats"]["limits"]["fuel"] == 3_000_000
    second = tenant.post("/api/v2/actions/actions", json={"name": "two", "supported_triggers": TRIGGER, "code": LOOP})
    assert second.status_code == 403
    assert (second.json()["errorCode"], second.json()["limit"]) == ("quota_exceeded", "max_actions")


def test_max_code_bytes_is_set_by_the_operator(
    api: TestClient, operator_headers: dict[str, str], tenant: TenantClient
) -> None:
    """A smaller max_code_bytes makes smaller code a 413."""
    api.patch(f"/api/v2/tenants/{tenant.id}", json={"limits": {"max_code_bytes": 100}}, headers=operator_headers)
    reply = tenant.post(
        "/api/v2/actions/actions", json={"name": "c", "supported_triggers": TRIGGER, "code": LOOP + " " * 60}
    )
    assert reply.status_code == 413


def test_redirect_hosts_are_exact_lowercase_hosts(tenant: TenantClient) -> None:
    """Settings take host names (optionally with a port); URLs and wildcards are refused."""
    reply = tenant.patch(
        "/api/v2/tenants/settings", json={"allowed_redirect_hosts": ["verify.acme.example", "mfa.example:8443"]}
    )
    assert reply.status_code == 200
    assert tenant.get("/api/v2/tenants/settings").json()["allowed_redirect_hosts"] == [
        "mfa.example:8443",
        "verify.acme.example",
    ]
    for bad in (["https://verify.acme.example"], ["*.acme.example"], ["Verify.Acme.Example"], ["a b"]):
        assert tenant.patch("/api/v2/tenants/settings", json={"allowed_redirect_hosts": bad}).status_code == 400


def test_clients_have_a_secret_shown_once_and_checked_callbacks(tenant: TenantClient) -> None:
    """Client CRUD; callbacks must be absolute https URLs (http only on localhost)."""
    made = tenant.post(
        "/api/v2/clients", json={"name": "web", "callbacks": ["https://app.example/cb", "http://localhost:3000/cb"]}
    )
    assert made.status_code == 201
    client = made.json()
    assert len(client["client_secret"]) >= 43
    fetched = tenant.get(f"/api/v2/clients/{client['client_id']}").json()
    assert "client_secret" not in fetched and fetched["callbacks"] == client["callbacks"]
    for bad in ("http://app.example/cb", "app.example/cb", "https://user:pw@app.example/cb", "javascript:alert(1)"):
        reply = tenant.post("/api/v2/clients", json={"name": "x", "callbacks": [bad]})
        assert reply.status_code == 400, bad
    updated = tenant.patch(f"/api/v2/clients/{client['client_id']}", json={"callbacks": ["https://new.example/cb"]})
    assert updated.json()["callbacks"] == ["https://new.example/cb"]
    assert tenant.delete(f"/api/v2/clients/{client['client_id']}").status_code == 204
    assert tenant.get(f"/api/v2/clients/{client['client_id']}").status_code == 404


def test_users_store_argon2_hashes_and_never_return_passwords(tenant: TenantClient, database_url: str) -> None:
    """Passwords are hashed with argon2id; emails are unique per tenant, case-insensitively."""
    import psycopg

    made = tenant.post(
        "/api/v2/users",
        json={"email": "Jane@Example.com", "password": "correct horse", "app_metadata": {"roles": ["admin"]}},
    )
    assert made.status_code == 201
    user = made.json()
    assert user["user_id"].startswith("auth0|") and "password" not in made.text
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT password_hash FROM users WHERE id = %s", (user["user_id"],)).fetchone()
    assert stored is not None and stored[0].startswith("$argon2id$") and "correct horse" not in stored[0]
    assert tenant.post("/api/v2/users", json={"email": "jane@example.com"}).status_code == 409
    assert tenant.post("/api/v2/users", json={"email": "x@example.com", "password": "short"}).status_code == 400
    patched = tenant.patch(f"/api/v2/users/{user['user_id']}", json={"user_metadata": {"lang": "fr"}}).json()
    assert patched["user_metadata"] == {"lang": "fr"} and patched["app_metadata"] == {"roles": ["admin"]}


@pytest.mark.parametrize("name", ["", "x" * 101, "tab\tname"])
def test_tenant_names_are_checked(api: TestClient, operator_headers: dict[str, str], name: str) -> None:
    """Tenant names are 1 to 100 printable characters."""
    assert api.post("/api/v2/tenants", json={"name": name}, headers=operator_headers).status_code == 400


def test_concurrent_tests_beyond_the_quota_get_429(
    api: TestClient, operator_headers: dict[str, str], tenant: TenantClient
) -> None:
    """With max_concurrent_executions 1, a second simultaneous test run is refused with 429."""
    import threading

    api.patch(f"/api/v2/tenants/{tenant.id}", json={"limits": {"max_concurrent_executions": 1, "wall_ms": 1500,
              "fuel": 50_000_000_000}}, headers=operator_headers)  # fmt: skip
    action = tenant.post(
        "/api/v2/actions/actions", json={"name": "slow", "supported_triggers": TRIGGER, "code": LOOP}
    ).json()
    codes: list[int] = []

    def call() -> None:
        codes.append(tenant.post(f"/api/v2/actions/actions/{action['id']}/test", json={"payload": {}}).status_code)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 429]
    assert tenant.get("/api/v2/actions/actions").status_code == 200


def test_metadata_comes_back_exactly_as_sent(tenant: TenantClient) -> None:
    """Answers are written by orjson, or by the standard library for what orjson would change: non-ASCII
    text, an integer past 64 bits and one at its edge come back as they were sent."""
    metadata = {"name": "Zoë 😀", "big": 2**80, "edge": 2**63 - 1, "nested": {"list": [1.5, None, True]}}
    made = tenant.post("/api/v2/users", json={"email": "meta@example.com", "app_metadata": metadata})
    assert made.status_code == 201, made.text
    assert made.json()["app_metadata"] == metadata
    assert '"Zoë 😀"' in made.text or "Zo\\u00eb" in made.text
    got = tenant.get(f"/api/v2/users/{made.json()['user_id']}")
    assert got.json()["app_metadata"] == metadata
    small = tenant.patch(f"/api/v2/users/{made.json()['user_id']}", json={"app_metadata": {"name": "Zoë"}})
    assert small.json()["app_metadata"] == {"name": "Zoë"}
    assert '"Zoë"' in small.text  # orjson's UTF-8
