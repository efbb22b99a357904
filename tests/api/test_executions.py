"""Execution records: what they keep (never secrets), how they are listed and swept, and the live stream."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest

from runtime.config import Settings
from runtime.store import Store
from runtime.store.base import issued_at_ms, new_time_id
from runtime.vault import MasterKeyring
from tests.fix_api import TenantClient
from tests.flows.test_flow_api import RESUME, base_event, bind, come_back, state_of

SECRET_VALUE = "a-secret-nobody-may-read-" + "z" * 12
PRINTS = (
    "exports.onExecutePostLogin = async (event, api) => {"
    " console.log('hello from', event.user.email, event.secrets.TOKEN.length);"
    " api.idToken.setCustomClaim('https://acme/x', 1); };"
)


def login(t: TenantClient, **event_changes: Any) -> dict[str, Any]:
    event = base_event()
    event.update(event_changes)
    reply = t.post("/api/v2/flows/post-login", json={"event": event, "resume_url": RESUME})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_a_record_keeps_what_replay_needs_and_never_a_secret(tenant: TenantClient) -> None:
    bind(tenant, ("prints", PRINTS, [{"name": "TOKEN", "value": SECRET_VALUE}]))
    outcome = login(tenant)
    record = tenant.get(f"/api/v2/actions/executions/{outcome['execution_id']}").json()
    assert record["event"]["user"]["user_id"] == base_event()["user"]["user_id"]
    assert "secrets" not in record["event"]
    (entry,) = record["results"]
    assert entry["logs"][0]["message"] == f"hello from jane.doe@example.com {len(SECRET_VALUE)}"
    assert entry["trace"]["seed"] and entry["trace"]["now_ms"] > 0
    assert entry["commands"] == [{"type": "set_claim", "token": "id", "key": "https://acme/x", "value": 1}]
    assert SECRET_VALUE not in json.dumps(record)


def test_records_are_listed_newest_first_with_filters(tenant: TenantClient, make_tenant: Any) -> None:
    ids = bind(tenant, ("prints", PRINTS, [{"name": "TOKEN", "value": SECRET_VALUE}]))
    first, second = login(tenant), login(tenant)
    failing = tenant.post("/api/v2/actions/actions", json={
        "name": "thrower", "supported_triggers": [{"id": "post-login", "version": "v3"}],
        "code": "exports.onExecutePostLogin = async () => { throw new Error('no'); };"}).json()  # fmt: skip
    tested = tenant.post(f"/api/v2/actions/actions/{failing['id']}/test", json={"payload": {}}).json()["payload"]

    listed = tenant.get("/api/v2/actions/executions").json()
    assert [e["id"] for e in listed["executions"]] == [tested["execution_id"], second["execution_id"],
                                                        first["execution_id"]]  # fmt: skip
    assert listed["total"] == 3
    assert listed["executions"][0]["actions"][0]["error_class"] == "action_error"
    by_action = tenant.get(f"/api/v2/actions/executions?action_id={ids[0]}").json()["executions"]
    assert {e["id"] for e in by_action} == {first["execution_id"], second["execution_id"]}
    failed = tenant.get("/api/v2/actions/executions?status=failed").json()["executions"]
    assert [e["id"] for e in failed] == [tested["execution_id"]]
    paged = tenant.get("/api/v2/actions/executions?per_page=1&page=1").json()
    assert [e["id"] for e in paged["executions"]] == [second["execution_id"]] and paged["total"] == 3
    assert tenant.get("/api/v2/actions/executions?from=2999-01-01T00:00:00Z").json()["executions"] == []
    assert make_tenant().get("/api/v2/actions/executions").json() == {"executions": [], "total": 0, "page": 0,
                                                                        "per_page": 50}  # fmt: skip


@pytest.mark.parametrize(
    ("query", "message"),
    [("status=weird", "status must be one of"), ("from=yesterday", "ISO 8601"), ("to=2026-11-28T10:00:00", "zone")],
)
def test_bad_filters_are_refused(tenant: TenantClient, query: str, message: str) -> None:
    reply = tenant.get(f"/api/v2/actions/executions?{query}")
    assert reply.status_code == 400 and message in reply.json()["message"]


def test_records_are_swept_after_their_tenants_retention(
    make_tenant: Any, api: Any, operator_headers: dict[str, str], settings: Settings, database_url: str
) -> None:
    short, default = make_tenant(), make_tenant()
    api.patch(f"/api/v2/tenants/{short.id}", json={"limits": {"execution_retention_days": 1}}, headers=operator_headers)
    for t in (short, default):
        bind(t, ("prints", PRINTS, [{"name": "TOKEN", "value": SECRET_VALUE}]))
        login(t)
        # Listing waits for the records written behind the answers: only then can they be backdated.
        assert t.get("/api/v2/actions/executions").json()["total"] == 1
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE executions SET created_at = now() - interval '2 days' WHERE tenant_id = ANY(%s)",
                     ([short.id, default.id],))  # fmt: skip

    async def sweep() -> None:
        store = await Store.open(database_url, MasterKeyring.parse(settings.master_key or ""))
        try:
            await store.executions.sweep()
        finally:
            await store.close()

    asyncio.run(sweep())
    assert short.get("/api/v2/actions/executions").json()["total"] == 0
    assert default.get("/api/v2/actions/executions").json()["total"] == 1  # 10 days by default


def test_the_live_stream_shows_console_output_as_logins_happen(tenant: TenantClient) -> None:
    bind(tenant, ("prints", PRINTS, [{"name": "TOKEN", "value": SECRET_VALUE}]))
    seen: list[dict[str, Any]] = []

    def log_in_soon() -> None:
        time.sleep(0.3)
        login(tenant)

    with tenant.client.stream("GET", "/api/v2/actions/logs/stream", headers=tenant.headers) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        threading.Thread(target=log_in_soon).start()
        deadline = time.monotonic() + 30
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                break
            assert time.monotonic() < deadline, "no event arrived"
    (event,) = seen
    assert event["action_name"] == "prints" and event["status"] == "completed"
    assert event["logs"][0]["message"].startswith("hello from jane.doe@example.com")
    assert SECRET_VALUE not in json.dumps(event)


def test_console_output_cut_at_the_limit_is_marked(
    tenant: TenantClient, api: Any, operator_headers: dict[str, str]
) -> None:
    api.patch(f"/api/v2/tenants/{tenant.id}", json={"limits": {"log_bytes": 1024}}, headers=operator_headers)
    bind(tenant, ("chatty", "exports.onExecutePostLogin = async () => { for (let i = 0; i < 500; i++)"
                           " console.log('line', i); };"))  # fmt: skip
    outcome = login(tenant)
    assert outcome["status"] == "failed" and outcome["error"]["class"] == "action_limit"
    (entry,) = tenant.get(f"/api/v2/actions/executions/{outcome['execution_id']}").json()["results"]
    assert entry["logs_truncated"] is True
    assert 0 < len(entry["logs"]) < 500 and entry["logs"][0]["message"] == "line 0"


def test_records_and_resumed_flows_keep_the_order_of_keys(tenant: TenantClient) -> None:
    """Actions see key order (Object.keys): the record and the flow that waits for /continue keep it as sent."""
    prints_keys = "console.log(Object.keys(event.user).join());"
    bind(tenant, ("keys", f"exports.onExecutePostLogin = async (event, api) => {{ {prints_keys}"
                          " api.redirect.sendUserTo('https://verify.acme-bank.example/factor'); };"
                          f" exports.onContinuePostLogin = async (event) => {{ {prints_keys} }};"))  # fmt: skip
    event = base_event()
    event["user"] = {"user_id": event["user"]["user_id"], "zeta": 1, "alpha": 2, "middle_name": 3}  # not jsonb's order
    started = tenant.post("/api/v2/flows/post-login", json={"event": event, "resume_url": RESUME}).json()
    assert started["status"] == "redirect", started
    assert come_back(tenant, state_of(started["location"])).status_code == 303
    record = tenant.get(f"/api/v2/actions/executions/{started['execution_id']}").json()
    assert list(record["event"]["user"]) == ["user_id", "zeta", "alpha", "middle_name"]
    assert [r["logs"][0]["message"] for r in record["results"]] == ["user_id,zeta,alpha,middle_name"] * 2


def test_a_record_on_its_way_from_another_process_is_waited_for_a_moment(
    tenant: TenantClient, database_url: str
) -> None:
    """Another server process writes its logins' records just after their answers: a record asked for
    by the id a login returned, before that process has written it, is found once it has; an id issued
    moments ago that never comes is not found after the grace."""
    behind = tenant.client.app.state.services.store.records_behind
    grace, behind.grace_s = behind.grace_s, 10.0
    execution_id = str(new_time_id())

    def the_other_process_writes() -> None:
        time.sleep(0.3)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO executions (tenant_id, id, trigger_id, kind, status, results)"
                " VALUES (%s, %s, 'post-login', 'flow', 'completed', '[]')",
                (tenant.id, execution_id),
            )

    writer = threading.Thread(target=the_other_process_writes)
    try:
        started = time.monotonic()
        writer.start()
        record = tenant.get(f"/api/v2/actions/executions/{execution_id}")
        waited = time.monotonic() - started
        writer.join()
        assert (record.status_code, record.json()["id"]) == (200, execution_id)
        assert waited < 9  # found when it came, not after the whole grace
    finally:
        behind.grace_s = grace
    started = time.monotonic()
    missing = tenant.get(f"/api/v2/actions/executions/{new_time_id()}")
    assert missing.status_code == 404
    assert time.monotonic() - started >= grace


def test_an_id_not_issued_moments_ago_is_not_found_at_once(tenant: TenantClient) -> None:
    """Only a record id issued within the write-behind's grace can still be on its way: an id issued
    earlier, or one of another kind (a guess), is not found without waiting."""
    behind = tenant.client.app.state.services.store.records_behind
    grace, behind.grace_s = behind.grace_s, 30.0
    a_minute_ago = uuid.UUID(
        int=(new_time_id().int & ~(((1 << 48) - 1) << 80)) | ((int(time.time() * 1000) - 60_000) << 80)
    )
    assert issued_at_ms(a_minute_ago) is not None
    try:
        for missing in (a_minute_ago, uuid.uuid4()):
            started = time.monotonic()
            assert tenant.get(f"/api/v2/actions/executions/{missing}").status_code == 404
            assert time.monotonic() - started < 20  # not the 30 s grace
    finally:
        behind.grace_s = grace


def test_record_ids_tell_when_they_were_issued() -> None:
    """Execution record ids are UUIDs of version 7: their time is the time they were issued, and each is new."""
    before = int(time.time() * 1000)
    ids = [new_time_id() for _ in range(1000)]
    after = int(time.time() * 1000)
    assert len(set(ids)) == 1000
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert all(before <= (issued_at_ms(i) or 0) <= after for i in ids)
    assert issued_at_ms(uuid.uuid4()) is None
