"""The action lifecycle through HTTP: create, update, test, deploy, roll back, bind, unbind, delete."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import ACME
from tests.fix_api import TenantClient

FACTOR = (ACME / "actions" / "custom-factor.js").read_text()
EVENT = json.loads((ACME / "events" / "first-login.json").read_text())
TRIGGER = [{"id": "post-login", "version": "v3"}]


def simple(message: str) -> str:
    return f"exports.onExecutePostLogin = async (event, api) => {{ api.access.deny({message!r}); }};"


def create(t: TenantClient, name: str, code: str | None = None, **extra: Any) -> dict[str, Any]:
    reply = t.post(
        "/api/v2/actions/actions",
        json={"name": name, "supported_triggers": TRIGGER, "code": code or simple(name), **extra},
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_create_compiles_at_once_and_the_draft_is_built(tenant: TenantClient) -> None:
    """A created action is `built` immediately, with its handlers; no build queue to wait for."""
    action = create(tenant, "factor", FACTOR, secrets=[{"name": "SESSION_TOKEN_SECRET", "value": "v" * 40}])
    assert action["status"] == "built"
    assert action["handlers"] == ["onExecutePostLogin", "onContinuePostLogin"]
    assert action["supported_triggers"] == TRIGGER
    assert action["deployed_version"] is None and action["all_changes_deployed"] is False
    assert [s["name"] for s in action["secrets"]] == ["SESSION_TOKEN_SECRET"]
    assert tenant.get(f"/api/v2/actions/actions/{action['id']}").json()["code"] == FACTOR


def test_a_syntax_error_is_a_400_with_line_and_column(tenant: TenantClient) -> None:
    """Compile errors come back before anything is stored."""
    reply = tenant.post(
        "/api/v2/actions/actions",
        json={
            "name": "broken",
            "supported_triggers": TRIGGER,
            "code": "exports.onExecutePostLogin = async () => {\n  if (\n};",
        },
    )
    assert reply.status_code == 400
    body = reply.json()
    assert (body["errorCode"], body["line"]) == ("action_syntax", 3)
    assert tenant.get("/api/v2/actions/actions", params={"actionName": "broken"}).json()["total"] == 0


def test_code_over_the_size_limit_is_a_413(tenant: TenantClient) -> None:
    """Code past max_code_bytes (100 kB by default) is refused with 413."""
    reply = tenant.post(
        "/api/v2/actions/actions",
        json={"name": "big", "supported_triggers": TRIGGER, "code": simple("x") + "//" + "x" * 102_400},
    )
    assert reply.status_code == 413
    assert reply.json()["errorCode"] == "code_too_large"


def test_npm_dependencies_are_refused_with_a_reason(tenant: TenantClient) -> None:
    """Dependencies cannot be installed here; the error says so."""
    reply = tenant.post(
        "/api/v2/actions/actions",
        json={"name": "deps", "supported_triggers": TRIGGER, "code": simple("d"), "dependencies": [{"name": "axios"}]},
    )
    assert reply.status_code == 400 and reply.json()["errorCode"] == "dependencies_not_supported"


def test_deploy_makes_numbered_immutable_versions(tenant: TenantClient) -> None:
    """Each deploy is a new version; editing the draft does not change a deployed version."""
    action = create(tenant, "versioned", simple("one"))
    v1 = tenant.post(f"/api/v2/actions/actions/{action['id']}/deploy").json()
    assert (v1["number"], v1["deployed"]) == (1, True)
    patched = tenant.patch(f"/api/v2/actions/actions/{action['id']}", json={"code": simple("two")}).json()
    assert patched["all_changes_deployed"] is False
    assert patched["deployed_version"] == {"id": v1["id"], "number": 1}
    assert tenant.get(f"/api/v2/actions/actions/{action['id']}/versions/{v1['id']}").json()["code"] == simple("one")
    v2 = tenant.post(f"/api/v2/actions/actions/{action['id']}/deploy").json()
    assert v2["number"] == 2 and v2["code"] == simple("two")
    listed = tenant.get(f"/api/v2/actions/actions/{action['id']}/versions").json()["versions"]
    assert [v["number"] for v in listed] == [2, 1]
    assert [v["deployed"] for v in listed] == [True, False]


def test_rollback_deploys_a_copy_of_an_old_version(tenant: TenantClient) -> None:
    """Deploying version 1 again makes version 3 with version 1's code."""
    action = create(tenant, "rollback", simple("first"))
    v1 = tenant.post(f"/api/v2/actions/actions/{action['id']}/deploy").json()
    tenant.patch(f"/api/v2/actions/actions/{action['id']}", json={"code": simple("second")})
    tenant.post(f"/api/v2/actions/actions/{action['id']}/deploy")
    v3 = tenant.post(f"/api/v2/actions/actions/{action['id']}/versions/{v1['id']}/deploy").json()
    assert (v3["number"], v3["code"], v3["rolled_back_from"], v3["deployed"]) == (3, simple("first"), v1["id"], True)


def test_at_most_fifty_versions_are_kept(tenant: TenantClient) -> None:
    """Past 50 versions the oldest not in use are deleted."""
    action = create(tenant, "many")
    for _ in range(52):
        assert tenant.post(f"/api/v2/actions/actions/{action['id']}/deploy").status_code == 200
    numbers = [v["number"] for v in tenant.get(f"/api/v2/actions/actions/{action['id']}/versions").json()["versions"]]
    assert len(numbers) == 50
    assert numbers[0] == 52 and numbers[-1] == 3


def test_bindings_replace_the_flow_in_order(tenant: TenantClient) -> None:
    """PATCH bindings replaces the list; refs by id or by name; only deployed actions."""
    first, second = create(tenant, "first"), create(tenant, "second")
    for a in (first, second):
        tenant.post(f"/api/v2/actions/actions/{a['id']}/deploy")
    path = "/api/v2/actions/triggers/post-login/bindings"
    reply = tenant.patch(path, json={"bindings": [
        {"ref": {"type": "action_name", "value": "second"}, "display_name": "Second step"},
        {"ref": {"type": "action_id", "value": first["id"]}},
    ]})  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert [(b["action"]["name"], b["display_name"]) for b in tenant.get(path).json()["bindings"]] == [
        ("second", "Second step"),
        ("first", "first"),
    ]
    tenant.patch(path, json={"bindings": [{"ref": {"type": "action_name", "value": "first"}}]})
    assert [b["action"]["name"] for b in tenant.get(path).json()["bindings"]] == ["first"]
    undeployed = create(tenant, "draft-only")
    reply = tenant.patch(path, json={"bindings": [{"ref": {"type": "action_id", "value": undeployed["id"]}}]})
    assert reply.status_code == 409 and "never been deployed" in reply.json()["message"]
    assert [b["action"]["name"] for b in tenant.get(path).json()["bindings"]] == ["first"], "nothing half-written"


def test_a_trigger_holds_at_most_twenty_actions(tenant: TenantClient) -> None:
    """The 21st binding is refused with the limit named."""
    refs = []
    for i in range(21):
        a = create(tenant, f"step-{i}")
        tenant.post(f"/api/v2/actions/actions/{a['id']}/deploy")
        refs.append({"ref": {"type": "action_id", "value": a["id"]}})
    reply = tenant.patch("/api/v2/actions/triggers/post-login/bindings", json={"bindings": refs})
    assert reply.status_code == 403 and reply.json()["limit"] == "actions_per_trigger"


def test_a_bound_action_is_deleted_only_with_force(tenant: TenantClient) -> None:
    """DELETE refuses a bound action; ?force=true unbinds and deletes it."""
    action = create(tenant, "bound")
    tenant.post(f"/api/v2/actions/actions/{action['id']}/deploy")
    path = "/api/v2/actions/triggers/post-login/bindings"
    tenant.patch(path, json={"bindings": [{"ref": {"type": "action_id", "value": action["id"]}}]})
    assert tenant.delete(f"/api/v2/actions/actions/{action['id']}").status_code == 409
    assert tenant.delete(f"/api/v2/actions/actions/{action['id']}", params={"force": "true"}).status_code == 204
    assert tenant.get(f"/api/v2/actions/actions/{action['id']}").status_code == 404
    assert tenant.get(path).json()["bindings"] == []


def test_the_test_endpoint_runs_the_draft_and_records_it(tenant: TenantClient) -> None:
    """/test runs the draft with its secrets; the result and an execution record come back."""
    action = create(tenant, "factor", FACTOR, secrets=[{"name": "SESSION_TOKEN_SECRET", "value": "k" * 40}])
    reply = tenant.post(f"/api/v2/actions/actions/{action['id']}/test", json={"payload": EVENT})
    assert reply.status_code == 200, reply.text
    payload = reply.json()["payload"]
    assert payload["status"] == "completed" and payload["error"] is None
    assert payload["commands"][0]["type"] == "redirect"
    assert payload["stats"]["limits"]["fuel"] > payload["stats"]["fuel_used"] > 0
    record = tenant.get(f"/api/v2/actions/executions/{payload['execution_id']}").json()
    assert record["status"] == "completed" and record["trigger_id"] == "post-login"
    assert record["results"][0]["action_name"] == "factor"


def test_a_failing_test_run_reports_the_error(tenant: TenantClient) -> None:
    """A throw in the draft comes back as the result's error, not as an HTTP error."""
    action = create(tenant, "thrower", "exports.onExecutePostLogin = async () => {\n  throw new Error('nope');\n};")
    payload = tenant.post(f"/api/v2/actions/actions/{action['id']}/test", json={"payload": {}}).json()["payload"]
    assert payload["status"] == "failed"
    assert (payload["error"]["class"], payload["error"]["message"], payload["error"]["line"]) == (
        "action_error",
        "nope",
        2,
    )


def test_create_and_deploy_in_one_request(tenant: TenantClient) -> None:
    """deploy: true deploys the new action at once."""
    action = create(tenant, "instant", deploy=True)
    assert action["deployed_version"]["number"] == 1 and action["all_changes_deployed"] is True


def test_names_are_unique_per_tenant(tenant: TenantClient, make_tenant: Any) -> None:
    """A second action with the same name is a conflict; another tenant may use the name."""
    create(tenant, "same")
    reply = tenant.post(
        "/api/v2/actions/actions", json={"name": "same", "supported_triggers": TRIGGER, "code": simple("x")}
    )
    assert reply.status_code == 409
    create(make_tenant(), "same")


def test_listing_filters_and_pages(tenant: TenantClient) -> None:
    """GET actions filters by name and deployment, and pages."""
    for i in range(5):
        a = create(tenant, f"a{i}")
        if i % 2 == 0:
            tenant.post(f"/api/v2/actions/actions/{a['id']}/deploy")
    assert tenant.get("/api/v2/actions/actions").json()["total"] == 5
    assert tenant.get("/api/v2/actions/actions", params={"deployed": "true"}).json()["total"] == 3
    page = tenant.get("/api/v2/actions/actions", params={"per_page": 2, "page": 2}).json()
    assert [a["name"] for a in page["actions"]] == ["a4"]


def test_triggers(tenant: TenantClient) -> None:
    """post-login v3 is the available trigger."""
    triggers = tenant.get("/api/v2/actions/triggers").json()["triggers"]
    assert [(t["id"], t["version"], t["handlers"]) for t in triggers] == [
        ("post-login", "v3", ["onExecutePostLogin", "onContinuePostLogin"])
    ]


def test_a_trigger_offers_its_sample_event(tenant: TenantClient) -> None:
    """The sample event is the one `tollgate run` uses, and it runs as it is; an unknown trigger is a 404."""
    from sdk.runner import sample_event

    reply = tenant.get("/api/v2/actions/triggers/post-login/sample-event")
    assert reply.status_code == 200
    assert reply.json() == {"trigger_id": "post-login", "event": sample_event("post-login")}
    action = create(
        tenant, "reads", "exports.onExecutePostLogin = async (event) => { console.log(event.user.email); };"
    )
    run = tenant.post(f"/api/v2/actions/actions/{action['id']}/test", json={"payload": reply.json()["event"]}).json()
    assert run["payload"]["logs"] == [{"level": "log", "message": reply.json()["event"]["user"]["email"]}]
    assert tenant.get("/api/v2/actions/triggers/pre-login/sample-event").status_code == 404
