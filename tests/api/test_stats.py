"""Statistics from the execution records: an action's latency and outcomes per bucket, a tenant's usage."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from tests.fix_api import TenantClient
from tests.flows.test_flow_api import RESUME, base_event

TRIGGER = [{"id": "post-login", "version": "v3"}]
MOODS = """exports.onExecutePostLogin = async (event, api) => {
  if (event.mood === 'deny') api.access.deny('not today');
  if (event.mood === 'redirect') api.redirect.sendUserTo('https://factor.example/');
  if (event.mood === 'throw') throw new Error('boom');
  if (event.mood === 'spin') { for (;;) {} }
};"""
# How many test runs of each mood the action gets, and the outcome each counts as.
RUNS = {"ok": 3, "deny": 2, "redirect": 1, "throw": 2, "spin": 1}


def create(t: TenantClient, name: str, *, deploy: bool = False) -> str:
    reply = t.post("/api/v2/actions/actions", json={"name": name, "code": MOODS, "supported_triggers": TRIGGER,
                                                    "deploy": deploy})  # fmt: skip
    assert reply.status_code == 201, reply.text
    action_id: str = reply.json()["id"]
    return action_id


def run(t: TenantClient, action_id: str, mood: str) -> str:
    reply = t.post(f"/api/v2/actions/actions/{action_id}/test", json={"payload": {"mood": mood}})
    assert reply.status_code == 200, reply.text
    execution_id: str = reply.json()["payload"]["execution_id"]
    return execution_id


def nearest_rank(values: list[int], share: float) -> int:
    """The percentile as percentile_disc takes it: the first value whose rank reaches the share."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def durations(t: TenantClient, execution_ids: list[str]) -> list[int]:
    out = []
    for execution_id in execution_ids:
        record = t.get(f"/api/v2/actions/executions/{execution_id}").json()
        out += [r["stats"]["duration_us"] for r in record["results"]]
    return out


def test_an_actions_stats_count_each_outcome_and_take_percentiles_of_its_runs(
    tenant: TenantClient, database_url: str
) -> None:
    """Each run counts once under its outcome, failures by class; p50 and p99 are those of the records' durations,
    per bucket and over the period; other actions' runs and runs outside the period are left out."""
    action_id, other_id = create(tenant, "moods"), create(tenant, "other")
    made = {mood: [run(tenant, action_id, mood) for _ in range(n)] for mood, n in RUNS.items()}
    run(tenant, other_id, "throw")
    # The denials happened three hours ago, the other runs half an hour ago (each group at one moment, so in
    # one bucket), but for one that is older than the period asked for.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE executions SET created_at = now() - interval '30 minutes' WHERE id = ANY(%s)",
            ([i for ids in made.values() for i in ids],),
        )
        conn.execute(
            "UPDATE executions SET created_at = now() - interval '3 hours' WHERE id = ANY(%s)", (made["deny"],)
        )
        conn.execute("UPDATE executions SET created_at = now() - interval '2 days' WHERE id = %s", (made["ok"][0],))

    reply = tenant.get(f"/api/v2/actions/actions/{action_id}/stats", params={"bucket": "3600"})
    assert reply.status_code == 200, reply.text
    stats = reply.json()
    assert stats["bucket_seconds"] == 3600 and stats["kind"] is None
    assert stats["runs"] == 8
    assert stats["outcomes"] == {"completed": 2, "denied": 2, "redirected": 1, "failed": 3}
    assert stats["errors"] == {"action_error": 2, "action_timeout": 1}
    counted = [i for mood, ids in made.items() for i in ids if i != made["ok"][0]]
    assert (stats["p50_us"], stats["p99_us"]) == (
        nearest_rank(durations(tenant, counted), 0.5), nearest_rank(durations(tenant, counted), 0.99))  # fmt: skip

    earlier, recent = stats["buckets"]
    starts = [datetime.fromisoformat(b["start"].replace("Z", "+00:00")) for b in (earlier, recent)]
    assert all(s.timestamp() % 3600 == 0 for s in starts)
    assert timedelta(hours=2) <= starts[1] - starts[0] <= timedelta(hours=4)
    assert (earlier["runs"], earlier["outcomes"]) == (2, {"completed": 0, "denied": 2, "redirected": 0, "failed": 0})
    assert earlier["p50_us"] == nearest_rank(durations(tenant, made["deny"]), 0.5)
    assert recent["runs"] == 6 and recent["p99_us"] == max(durations(tenant, [i for i in counted
                                                                              if i not in made["deny"]]))  # fmt: skip


def test_stats_can_keep_only_logins_and_start_empty(tenant: TenantClient) -> None:
    """kind=flow counts the runs of logins only; an action that never ran has no buckets and no percentiles."""
    action_id = create(tenant, "moods", deploy=True)
    tenant.patch("/api/v2/actions/triggers/post-login/bindings",
                 json={"bindings": [{"ref": {"type": "action_id", "value": action_id}}]})  # fmt: skip
    assert tenant.get(f"/api/v2/actions/actions/{action_id}/stats").json() | {"from": None, "to": None} == {
        "action_id": action_id, "from": None, "to": None, "bucket_seconds": 900, "kind": None, "runs": 0,
        "p50_us": None, "p99_us": None, "outcomes": {"completed": 0, "denied": 0, "redirected": 0, "failed": 0},
        "errors": {}, "buckets": [],
    }  # fmt: skip
    run(tenant, action_id, "throw")
    login = tenant.post("/api/v2/flows/post-login", json={"event": base_event(), "resume_url": RESUME})
    assert login.json()["status"] == "completed"
    logins = tenant.get(f"/api/v2/actions/actions/{action_id}/stats", params={"kind": "flow"}).json()
    assert (logins["kind"], logins["runs"], logins["outcomes"]["completed"], logins["errors"]) == ("flow", 1, 1, {})
    assert tenant.get(f"/api/v2/actions/actions/{action_id}/stats").json()["runs"] == 2


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"bucket": "ten"}, "bucket must be a whole number of seconds"),
        ({"bucket": "0"}, "bucket must be a whole number of seconds"),
        ({"bucket": "60", "from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "more than 1000 buckets"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from must be earlier than to"),
        ({"from": "2025-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "at most 90 days"),
        ({"from": "yesterday"}, "from must be an ISO 8601 time"),
        ({"to": "2026-01-01T00:00:00"}, "to must say its time zone"),
        ({"kind": "login"}, "kind must be one of flow, test"),
    ],
    ids=["words", "zero", "too-many-buckets", "backwards", "too-long", "not-a-time", "no-zone", "kind"],
)
def test_stats_refuse_a_period_they_cannot_use(tenant: TenantClient, query: dict[str, str], message: str) -> None:
    """A bad period, bucket or kind is a 400 that says what to send."""
    action_id = create(tenant, "moods")
    reply = tenant.get(f"/api/v2/actions/actions/{action_id}/stats", params=query)
    assert reply.status_code == 400 and reply.json()["errorCode"] == "invalid_query"
    assert message in reply.json()["message"]


def test_the_default_bucket_cuts_the_period_into_at_most_a_hundred(tenant: TenantClient) -> None:
    """Without `bucket`, a round size is chosen for the period: a minute for an hour, three hours for a week."""
    action_id = create(tenant, "moods")
    now = datetime.now(UTC).replace(microsecond=0)
    for period, bucket in ((timedelta(hours=1), 60), (timedelta(hours=24), 900), (timedelta(days=7), 10800)):
        query = {"from": (now - period).isoformat(), "to": now.isoformat()}
        assert tenant.get(f"/api/v2/actions/actions/{action_id}/stats", params=query).json()["bucket_seconds"] == bucket


def test_a_tenants_usage_sums_its_executions_errors_and_fuel(
    make_tenant: Any, api: TestClient, operator_headers: dict[str, str]
) -> None:
    """Usage counts the tenant's executions by status and kind, its failures as errors, and the fuel the records
    show; another tenant's executions are not in it."""
    acme, other = make_tenant(), make_tenant()
    action_id = create(acme, "moods", deploy=True)
    acme.patch("/api/v2/actions/triggers/post-login/bindings",
               json={"bindings": [{"ref": {"type": "action_id", "value": action_id}}]})  # fmt: skip
    made = [run(acme, action_id, mood) for mood in ("ok", "deny", "throw", "throw")]
    made.append(acme.post("/api/v2/flows/post-login", json={"event": base_event(), "resume_url": RESUME})
                .json()["execution_id"])  # fmt: skip
    run(other, create(other, "moods"), "ok")
    fuel = 0
    for execution_id in made:
        fuel += sum(r["stats"]["fuel_used"] for r in acme.get(f"/api/v2/actions/executions/{execution_id}")
                    .json()["results"])  # fmt: skip

    reply = api.get(f"/api/v2/tenants/{acme.id}/usage", headers=operator_headers)
    assert reply.status_code == 200, reply.text
    usage = reply.json()
    assert usage["tenant_id"] == acme.id
    assert (usage["executions"], usage["errors"], usage["action_runs"]) == (5, 2, 5)
    assert usage["by_status"] == {"completed": 3, "failed": 2}
    assert usage["by_kind"] == {"test": 4, "flow": 1}
    assert usage["fuel_used"] == fuel > 0

    later = {"from": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    later["to"] = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    empty = api.get(f"/api/v2/tenants/{acme.id}/usage", params=later, headers=operator_headers).json()
    assert (empty["executions"], empty["errors"], empty["fuel_used"], empty["by_status"]) == (0, 0, 0, {})
    missing = api.get("/api/v2/tenants/00000000-0000-0000-0000-000000000000/usage", headers=operator_headers)
    assert missing.status_code == 404
