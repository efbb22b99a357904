"""northwind-health: its access policy denies blocked countries and puts the user's roles in both tokens."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.sandbox import CompiledAction, ExecutionResult, compile_action, execute
from sdk.descriptor import load
from tests.conftest import ROOT

TENANT = ROOT / "tenants" / "northwind-health"
ROLES_CLAIM = "https://northwind-health.example/roles"


@pytest.fixture(scope="module")
def policy() -> CompiledAction:
    return compile_action((TENANT / "actions" / "access-policy.js").read_text())


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((TENANT / "events" / f"{name}.json").read_text())
    return event


def run(action: CompiledAction, event: dict[str, Any]) -> ExecutionResult:
    result = execute(action, "onExecutePostLogin", event)
    assert result.ok, result.error
    return result


def role_claims(roles: list[str]) -> list[dict[str, Any]]:
    return [
        {"type": "set_claim", "token": "id", "key": ROLES_CLAIM, "value": roles},
        {"type": "set_claim", "token": "access", "key": ROLES_CLAIM, "value": roles},
    ]


def test_the_descriptor_loads() -> None:
    """One action, bound, without secrets or redirect hosts: the policy never redirects."""
    descriptor = load(TENANT)
    assert descriptor.bindings == {"post-login": ["access-policy"]}
    [action] = descriptor.actions
    assert action.secrets == {}
    assert descriptor.allowed_redirect_hosts == []
    assert [c.name for c in descriptor.clients] == ["Northwind Patient Portal", "Northwind Clinician Workspace"]
    assert all(u.password.generate for u in descriptor.users)


def test_a_login_from_a_blocked_country_is_denied_with_a_reason(policy: CompiledAction) -> None:
    """Iran is on the list: the login is denied, naming the country, and no claim is set."""
    result = run(policy, sample("blocked-country"))
    assert result.commands == [{"type": "deny", "reason": "Northwind Health accounts cannot be used from Iran."}]


@pytest.mark.parametrize("country", ["CU", "IR", "KP", "SY"])
def test_each_blocked_country_is_denied_even_without_its_name(policy: CompiledAction, country: str) -> None:
    """The code decides; without a country name the reason gives the code."""
    event = sample("clinician-allowed")
    event["request"]["geoip"] = {"countryCode": country}
    result = run(policy, event)
    assert result.commands == [{"type": "deny", "reason": f"Northwind Health accounts cannot be used from {country}."}]


def test_roles_become_a_namespaced_claim_in_both_tokens(policy: CompiledAction) -> None:
    """A clinician in the US: app_metadata.roles in the ID and access tokens, nothing denied."""
    result = run(policy, sample("clinician-allowed"))
    assert result.commands == role_claims(["clinician", "prescriber"])


def test_a_user_without_roles_gets_an_empty_list(policy: CompiledAction) -> None:
    """A patient with no roles still gets the claim, so that applications can rely on it."""
    result = run(policy, sample("patient-without-roles"))
    assert result.commands == role_claims([])


@pytest.mark.parametrize(
    ("roles", "claimed"),
    [
        (["nurse", 7, None, {"name": "admin"}, "scheduler"], ["nurse", "scheduler"]),
        ("admin", []),
        ({"admin": True}, []),
    ],
)
def test_only_a_list_of_strings_counts_as_roles(policy: CompiledAction, roles: Any, claimed: list[str]) -> None:
    """app_metadata is JSON written by admin tools: anything but role names is left out of the tokens."""
    event = sample("clinician-allowed")
    event["user"]["app_metadata"]["roles"] = roles
    assert run(policy, event).commands == role_claims(claimed)


def test_a_login_the_platform_cannot_place_goes_on_and_is_logged(policy: CompiledAction) -> None:
    """No country (the hosted login's geoip is empty): the roles are set and the execution log says why."""
    event = sample("clinician-allowed")
    event["request"]["geoip"] = {}
    result = run(policy, event)
    assert result.commands == role_claims(["clinician", "prescriber"])
    assert result.logs == [
        {"level": "warn", "message": "No country for 198.51.100.23: the country policy does not apply"}
    ]
