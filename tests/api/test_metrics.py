"""GET /metrics: the server's figures in Prometheus's text format, for the operator only."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from tests.fix_api import TenantClient
from tests.flows.test_flow_api import base_event, bind, come_back, start


def scrape(api: TestClient, operator_headers: dict[str, str]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by name and labels."""
    reply = api.get("/metrics", headers=operator_headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def grew(before: dict[Any, float], after: dict[Any, float]) -> dict[Any, float]:
    """The samples that changed, by how much (counters and histogram counts only)."""
    return {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if key[0].startswith("tollgate_")
        and key[0].endswith(("_total", "_count"))
        and after[key] != before.get(key, 0.0)
    }


def test_metrics_are_for_the_operator_only(api: TestClient, tenant: TenantClient) -> None:
    """Without the operator's key: 401 or 403, answered as the API answers."""
    missing = api.get("/metrics")
    assert missing.status_code == 401 and missing.json()["errorCode"] == "missing_key"
    assert api.get("/metrics", headers={"Authorization": "Bearer tgo_wrong"}).status_code == 401
    refused = api.get("/metrics", headers=tenant.headers)
    assert refused.status_code == 403 and refused.json()["errorCode"] == "operator_only"


def test_logins_and_executions_are_counted_by_how_they_ended(
    api: TestClient, operator_headers: dict[str, str], tenant: TenantClient
) -> None:
    bind(
        tenant,
        (
            "by-query",
            "exports.onExecutePostLogin = async (event, api) => {"
            " if (event.request.query.deny) api.access.deny('not today');"
            " if (event.request.query.fail) null.boom;"
            " api.idToken.setCustomClaim('https://x/ok', true); };",
        ),
    )

    def login(**query: str) -> dict[str, Any]:
        event = base_event()
        event["request"] = {**event.get("request", {}), "query": query}
        return start(tenant, event)

    before = scrape(api, operator_headers)
    assert login()["status"] == "completed"
    assert login(deny="1")["status"] == "denied"
    assert login(fail="1")["status"] == "failed"
    assert come_back(tenant, "no-such-state").status_code == 400
    after = scrape(api, operator_headers)

    assert grew(before, after) == {
        ("tollgate_logins_total", (("status", "completed"), ("step", "start"), ("way", "api"))): 1,
        ("tollgate_logins_total", (("status", "denied"), ("step", "start"), ("way", "api"))): 1,
        ("tollgate_logins_total", (("status", "failed"), ("step", "start"), ("way", "api"))): 1,
        ("tollgate_login_failures_total", (("error_class", "action_error"),)): 1,
        ("tollgate_continues_refused_total", ()): 1,
        ("tollgate_login_seconds_count", (("step", "start"),)): 3,
        ("tollgate_action_executions_total", (("result", "ok"),)): 2,
        ("tollgate_action_executions_total", (("result", "action_error"),)): 1,
        ("tollgate_action_execution_seconds_count", ()): 3,
    }
    text = api.get("/metrics", headers=operator_headers).text
    assert tenant.name not in text and tenant.id not in text and "by-query" not in text


def test_a_redirect_and_its_continue_are_counted_as_two_steps(
    api: TestClient, operator_headers: dict[str, str], tenant: TenantClient
) -> None:
    from tests.flows.test_flow_api import redeem, seed_tenant, state_of, verified_token

    seed_tenant(tenant)
    before = scrape(api, operator_headers)
    first = start(tenant)
    assert first["status"] == "redirect"
    state = state_of(first["location"])
    assert redeem(tenant, come_back(tenant, state, session_token=verified_token(state)))["status"] == "completed"
    assert come_back(tenant, state, session_token=verified_token(state)).status_code == 400  # used: refused
    changed = grew(before, scrape(api, operator_headers))
    assert changed[("tollgate_logins_total", (("status", "redirect"), ("step", "start"), ("way", "api")))] == 1
    assert changed[("tollgate_logins_total", (("status", "completed"), ("step", "continue"), ("way", "api")))] == 1
    assert changed[("tollgate_login_seconds_count", (("step", "continue"),))] == 1
    assert changed[("tollgate_continues_refused_total", ())] == 1


def test_gauges_show_the_executors_and_the_database_pool(api: TestClient, operator_headers: dict[str, str]) -> None:
    samples = scrape(api, operator_headers)
    assert samples[("tollgate_executors", (("state", "alive"),))] == 2  # the test app's two executors
    assert 0 <= samples[("tollgate_executors", (("state", "idle"),))] <= 2
    assert samples[("tollgate_database_connections", (("state", "open"),))] >= 1
    assert samples[("tollgate_database_connections", (("state", "waiting"),))] == 0
    assert ("tollgate_execution_records_waiting", ()) in samples


def test_a_hosted_login_is_counted_as_hosted(
    api: TestClient, operator_headers: dict[str, str], tenant: TenantClient
) -> None:
    """The hosted login page's runs: the start that sends the user to the factor, the continue that ends it."""
    from tests.flows.test_flow_api import FACTOR
    from tests.login.test_hosted import authorize, code_of, factor, make_site, pkce, submit

    site = make_site(tenant, FACTOR)
    browser = site.browser()
    before = scrape(api, operator_headers)
    code_of(factor(site, browser, submit(site, browser, authorize(site, browser, pkce()))))
    changed = grew(before, scrape(api, operator_headers))
    assert changed[("tollgate_logins_total", (("status", "redirect"), ("step", "start"), ("way", "hosted")))] == 1
    assert changed[("tollgate_logins_total", (("status", "completed"), ("step", "continue"), ("way", "hosted")))] == 1
