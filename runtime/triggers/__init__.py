"""Triggers: which handlers each one has and which host calls its `api` may make.

The `api` objects themselves live in the guest prelude
(``runtime/engine/guest/prelude``); the host-side checks of the commands
they record are applied by the flows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from runtime.triggers.tokens import validate_token

__all__ = ["HANDLERS", "TRIGGERS", "host_functions"]

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
