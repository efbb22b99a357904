"""Tenant isolation: every tenant route, called with another tenant's key and ids, finds nothing.

Alice owns an action (deployed and bound), a version, a client, a user and an
execution record. Bob calls every tenant route with Alice's ids: each answer
is a 404 that does not say whether the id exists, Alice's data is unchanged,
and nothing of hers shows in Bob's lists. Keys are checked too: none, unknown,
revoked, and keys of the wrong kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from runtime.api.routes import ENDPOINTS
from tests.fix_api import TenantClient

TRIGGER = [{"id": "post-login", "version": "v3"}]
CODE = "exports.onExecutePostLogin = async (event, api) => { api.access.deny('alice'); };"
ASKS = "exports.onExecutePostLogin = async (event, api) => { api.redirect.sendUserTo('https://factor.example/'); };"


@dataclass(frozen=True)
class World:
    alice: TenantClient
    bob: TenantClient
    ids: dict[str, str]


@pytest.fixture(scope="module")
def world(api: TestClient, operator_headers: dict[str, str]) -> World:
    def tenant(name: str) -> TenantClient:
        body = api.post("/api/v2/tenants", json={"name": name}, headers=operator_headers).json()
        return TenantClient(body["id"], name, body["api_key"]["key"], api)

    import secrets

    suffix = secrets.token_hex(3)
    alice, bob = tenant(f"alice-{suffix}"), tenant(f"bob-{suffix}")
    action = alice.post(
        "/api/v2/actions/actions",
        json={"name": "alice-action", "supported_triggers": TRIGGER, "code": CODE,
              "secrets": [{"name": "S", "value": "alice-secret"}]},
    ).json()  # fmt: skip
    version = alice.post(f"/api/v2/actions/actions/{action['id']}/deploy").json()
    asks = alice.post(
        "/api/v2/actions/actions",
        json={"name": "alice-asks", "supported_triggers": TRIGGER, "code": ASKS, "deploy": True},
    ).json()  # fmt: skip
    alice.patch("/api/v2/tenants/settings", json={"allowed_redirect_hosts": ["factor.example"]})
    alice.patch("/api/v2/actions/triggers/post-login/bindings",
                json={"bindings": [{"ref": {"type": "action_id", "value": asks["id"]}},
                                   {"ref": {"type": "action_id", "value": action["id"]}}]})  # fmt: skip
    # A login through the flow API that ends at /continue leaves a result for Alice to redeem.
    started = alice.post(
        "/api/v2/flows/post-login",
        json={"event": {"user": {"user_id": "auth0|alice-user"}}, "resume_url": "https://idp.alice.example/resume"},
    ).json()
    state = parse_qs(urlsplit(started["location"]).query)["state"][0]
    back = api.get(f"/t/{alice.name}/continue?state={state}", follow_redirects=False)
    ref = parse_qs(urlsplit(back.headers["location"]).query)["result"][0]
    client = alice.post("/api/v2/clients", json={"name": "alice-app", "callbacks": ["https://a.example/cb"]}).json()
    user = alice.post("/api/v2/users", json={"email": f"a-{suffix}@example.com", "password": "pass-word-1"}).json()
    execution = alice.post(f"/api/v2/actions/actions/{action['id']}/test", json={"payload": {}}).json()["payload"]
    ids = {
        "id": action["id"],
        "version_id": version["id"],
        "client_id": client["client_id"],
        "user_id": user["user_id"],
        "execution_id": execution["execution_id"],
        "trigger_id": "post-login",
        "ref": ref,
    }
    return World(alice, bob, ids)


def _fill(path: str, ids: dict[str, str]) -> str:
    out = path
    if "/executions/" in out:
        out = out.replace("{id}", ids["execution_id"])
    if "/users/" in out:
        out = out.replace("{id}", ids["user_id"])
    return out.format(**ids) if "{" in out else out


TENANT_ROUTES_WITH_IDS = [
    e for e in ENDPOINTS if e.audience == "tenant" and "{" in e.path and "trigger_id" not in e.path
]
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/v2/actions/actions/{id}"): {"code": CODE.replace("alice", "bob")},
    ("POST", "/api/v2/actions/actions/{id}/test"): {"payload": {}},
    ("PATCH", "/api/v2/clients/{client_id}"): {"name": "stolen"},
    ("PATCH", "/api/v2/users/{id}"): {"name": "stolen"},
}


@pytest.mark.parametrize(
    "endpoint", TENANT_ROUTES_WITH_IDS, ids=[f"{e.method} {e.path}" for e in TENANT_ROUTES_WITH_IDS]
)
def test_another_tenants_ids_are_not_found(world: World, endpoint: Any) -> None:
    """With Bob's key, every route given Alice's ids answers 404, as for an id that never existed."""
    path = _fill(endpoint.path, world.ids)
    body = BODIES.get((endpoint.method, endpoint.path))
    reply = world.bob.client.request(endpoint.method, path, headers=world.bob.headers, json=body)
    assert reply.status_code == 404, reply.text
    assert reply.json()["errorCode"] == "not_found"
    assert "alice" not in reply.text
    unknown = _fill(
        endpoint.path,
        {**world.ids, **{k: "00000000-0000-0000-0000-000000000000" for k in world.ids if k != "trigger_id"}},
    )
    never = world.bob.client.request(endpoint.method, unknown, headers=world.bob.headers, json=body)
    assert never.status_code == 404
    assert set(never.json()) == set(reply.json())


def test_alices_data_is_untouched_and_invisible_to_bob(world: World) -> None:
    """After Bob's attempts Alice's objects are intact, and Bob's lists show none of them."""
    alice, bob = world.alice, world.bob
    action = alice.get(f"/api/v2/actions/actions/{world.ids['id']}").json()
    assert action["code"] == CODE and action["deployed_version"]["id"] == world.ids["version_id"]
    assert alice.get(f"/api/v2/clients/{world.ids['client_id']}").json()["name"] == "alice-app"
    assert alice.get(f"/api/v2/users/{world.ids['user_id']}").json()["name"] is None
    bindings = alice.get("/api/v2/actions/triggers/post-login/bindings").json()["bindings"]
    assert [b["action"]["id"] for b in bindings][-1] == world.ids["id"]
    assert bob.get("/api/v2/actions/actions").json()["total"] == 0
    assert bob.get("/api/v2/clients").json()["clients"] == []
    assert bob.get("/api/v2/users").json()["users"] == []
    assert bob.get("/api/v2/actions/triggers/post-login/bindings").json()["bindings"] == []


def test_bob_cannot_bind_alices_action(world: World) -> None:
    """A binding that names another tenant's action, by id or by name, is not found."""
    path = "/api/v2/actions/triggers/post-login/bindings"
    for ref in ({"type": "action_id", "value": world.ids["id"]}, {"type": "action_name", "value": "alice-action"}):
        reply = world.bob.patch(path, json={"bindings": [{"ref": ref}]})
        assert reply.status_code == 404
    assert world.bob.get(path).json()["bindings"] == []


def test_a_body_cannot_name_another_tenant(world: World) -> None:
    """tenant_id in a body is an unknown field (no mass assignment)."""
    reply = world.bob.post(
        "/api/v2/actions/actions",
        json={"name": "x", "supported_triggers": TRIGGER, "code": CODE, "tenant_id": world.alice.id},
    )
    assert reply.status_code == 400 and "unknown field 'tenant_id'" in reply.json()["message"]


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "missing_key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "missing_key"),
        ({"Authorization": "Bearer"}, 401, "missing_key"),
        ({"Authorization": "Bearer tgt_not-a-real-key"}, 401, "invalid_key"),
        ({"Authorization": "Bearer " + "x" * 5000}, 401, "invalid_key"),
    ],
    ids=["none", "basic", "empty", "unknown", "huge"],
)
def test_requests_without_a_valid_key_are_401(api: TestClient, headers: dict[str, str], status: int, code: str) -> None:
    """Missing, malformed or unknown keys get 401 with a WWW-Authenticate header."""
    reply = api.get("/api/v2/actions/actions", headers=headers)
    assert (reply.status_code, reply.json()["errorCode"]) == (status, code)
    assert reply.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_key_stops_working_at_once(
    api: TestClient, operator_headers: dict[str, str], tenant: TenantClient
) -> None:
    """After revocation the key gets 401; the tenant's other keys keep working."""
    second = api.post(f"/api/v2/tenants/{tenant.id}/keys", headers=operator_headers).json()
    assert api.get("/api/v2/actions/actions", headers={"Authorization": f"Bearer {second['key']}"}).status_code == 200
    assert api.delete(f"/api/v2/tenants/{tenant.id}/keys/{second['id']}", headers=operator_headers).status_code == 204
    assert api.get("/api/v2/actions/actions", headers={"Authorization": f"Bearer {second['key']}"}).status_code == 401
    assert tenant.get("/api/v2/actions/actions").status_code == 200


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.audience == "operator"], ids=lambda e: f"{e.method} {e.path}"
)
def test_a_tenant_key_cannot_use_operator_routes(world: World, endpoint: Any) -> None:
    """Every operator route answers 403 to a tenant key."""
    path = endpoint.path.format(id=world.alice.id, key_id="00000000-0000-0000-0000-000000000000")
    reply = world.alice.client.request(endpoint.method, path, headers=world.alice.headers, json={"name": "x"})
    assert reply.status_code == 403 and reply.json()["errorCode"] == "operator_only"


def test_the_operator_key_cannot_use_tenant_routes(api: TestClient, operator_headers: dict[str, str]) -> None:
    """Tenant routes act on one tenant's data; the operator key gets 403."""
    reply = api.get("/api/v2/actions/actions", headers=operator_headers)
    assert reply.status_code == 403 and reply.json()["errorCode"] == "tenant_only"
