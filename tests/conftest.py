"""Fixtures shared by every test: the example tenant's action and its events."""

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from runtime.sandbox import CompiledAction, compile_action

pytest_plugins = ("tests.fix_db", "tests.fix_api")

ROOT = Path(__file__).resolve().parent.parent
ACME = ROOT / "tenants" / "acme-bank"


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl+C at its default, as in a terminal, for the suite and the commands it starts.

    A suite started in the background of a script (``make test &``) inherits
    SIGINT ignored, and so does every command it runs: a test that stops a
    command with SIGINT, as a user stops ``tollgate logs --follow`` with
    Ctrl+C, would wait for it forever.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
