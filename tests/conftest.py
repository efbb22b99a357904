"""Fixtures shared by every test: the example tenant's action and its events."""

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.sandbox import CompiledAction, compile_action

pytest_plugins = ("tests.fix_db", "tests.fix_api")

ROOT = Path(__file__).resolve().parent.parent
ACME = ROOT / "tenants" / "acme-bank"


@pytest.fixture(scope="session")
def custom_factor_source() -> str:
    return (ACME / "actions" / "custom-factor.js").read_text()


@pytest.fixture(scope="session")
def custom_factor(custom_factor_source: str) -> CompiledAction:
    return compile_action(custom_factor_source)


@pytest.fixture
def login_event() -> dict[str, Any]:
    """A realistic post-login event (about 1.9 KB as JSON)."""
    event: dict[str, Any] = json.loads((ACME / "events" / "first-login.json").read_text())
    return event
