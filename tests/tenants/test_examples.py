"""Every example tenant is complete: a valid tenant.json, actions that compile, sample events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.sandbox import compile_action
from sdk.descriptor import load
from tests.conftest import ROOT

TENANTS = sorted(p for p in (ROOT / "tenants").iterdir() if p.is_dir())


def test_there_are_the_three_example_tenants() -> None:
    """The seed's custom factor, a policy and progressive profiling."""
    assert {"acme-bank", "northwind-health", "globex-retail"} <= {p.name for p in TENANTS}


@pytest.mark.parametrize("folder", TENANTS, ids=[p.name for p in TENANTS])
def test_a_tenant_folder_has_its_descriptor_actions_and_events(folder: Path) -> None:
    """tenant.json loads (sdk/descriptor.py), names every action file, each compiles; events are login events."""
    descriptor = load(folder)
    assert descriptor.name == folder.name
    assert descriptor.actions, "a tenant needs at least one action"
    assert {(folder / a.file).resolve() for a in descriptor.actions} == {
        p.resolve() for p in (folder / "actions").glob("*.js")
    }, "every file in actions/ is an action of the descriptor"
    for action in descriptor.actions:
        compiled = compile_action(descriptor.code(action), trigger=action.trigger)
        assert "onExecutePostLogin" in compiled.handlers
    assert descriptor.bindings, "a tenant's actions are bound to a flow"
    events = sorted((folder / "events").glob("*.json"))
    assert events, "a tenant needs at least one sample event"
    for path in events:
        event = json.loads(path.read_text())
        assert isinstance(event["user"]["user_id"], str), path
        assert event["tenant"] == {"id": folder.name}, path
