"""Triggers: which handlers each one has and which host calls its `api` may make.

The `api` objects themselves live in the guest prelude
(``runtime/engine/guest/prelude``); the host-side checks of the commands
they record are applied by the flows. Each trigger has a sample event
(``samples/<trigger>.json``): what ``tollgate run`` uses when given none, and
what the management API offers the console's test panel.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

from runtime.triggers.tokens import validate_token

__all__ = ["HANDLERS", "TRIGGERS", "host_functions", "sample_event"]

HANDLERS: Mapping[str, tuple[str, ...]] = {
    "post-login": ("onExecutePostLogin", "onContinuePostLogin"),
}
TRIGGERS = tuple(HANDLERS)

_HOST_FUNCTIONS: Mapping[str, Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "post-login": {"validate_token": validate_token},
}


def host_functions(trigger: str) -> Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    """The operations an execution of `trigger` may ask the host for."""
    return _HOST_FUNCTIONS.get(trigger, {})


def sample_event(trigger: str = "post-login") -> dict[str, Any]:
    """A realistic event for `trigger` (a fresh copy each call: callers may change it)."""
    if trigger not in HANDLERS:
        raise KeyError(f"no trigger {trigger!r}")
    text = resources.files("runtime.triggers").joinpath("samples", f"{trigger}.json").read_text()
    event: dict[str, Any] = json.loads(text)
    return event
