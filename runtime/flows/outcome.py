"""What a post-login flow's actions did, checked and accumulated by the host.

Each action's commands (recorded by the ``api`` in the guest) are checked
again here against the trigger's rules and folded into one
:class:`Outcome`, in order:

- ``deny`` ends the flow after the current action; what earlier commands
  queued (metadata) is not rolled back, as in the hosted product.
- metadata: ``set_user_metadata`` / ``set_app_metadata`` merge into
  ``event.user`` at once (later actions see them) and into the pending
  profile update, written once at the end and before a redirect.
- ``set_transaction_metadata`` shows in ``event.transaction.metadata`` at once
  and survives redirects.
- claims and scopes accumulate for the tokens; restricted claims are dropped
  when the tokens are made.
- ``record_method`` is accepted only from ``onContinuePostLogin`` and stamped
  with the server's time.
- ``redirect`` suspends the flow after the current action; a later call in
  the same action replaces an earlier one. The target is checked against the
  tenant's allowed hosts (``runtime.flows.redirects``).
- session and refresh-token commands update the event at once and are
  applied at the end.

A command the guest could not have produced is an ``action_protocol`` error.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from runtime.sandbox.errors import ActionError, ActionProtocolError

__all__ = ["ActionVerdict", "Outcome", "apply_commands", "iso_now"]


def iso_now() -> str:
    """The server's time as event timestamps carry it (ISO 8601, milliseconds, Z)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def copy_plain(value: Any) -> Any:
    """A copy of JSON-like data (dicts, lists and scalars): what dataclasses.asdict did, at a fraction of the cost."""
    if isinstance(value, dict):
        return {key: copy_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_plain(item) for item in value]
    return value


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def plain_fields(instance: Any) -> dict[str, Any]:
    """A dataclass of JSON-like fields as a dict that shares nothing with it."""
    names = _FIELD_NAMES.get(type(instance))
    if names is None:
        names = _FIELD_NAMES[type(instance)] = tuple(f.name for f in fields(instance))
    return {name: copy_plain(getattr(instance, name)) for name in names}


@dataclass
class Outcome:
    """Everything the flow's actions asked for so far. Plain data: it is stored with a suspended flow."""

    id_claims: dict[str, Any] = field(default_factory=dict)
    access_claims: dict[str, Any] = field(default_factory=dict)
    # [{token, op: add|remove, scope}] in call order.
    scope_changes: list[dict[str, str]] = field(default_factory=list)
    # Pending profile updates: key -> value (None deletes the key).
    app_metadata: dict[str, Any] = field(default_factory=dict)
    user_metadata: dict[str, Any] = field(default_factory=dict)
    # Methods recorded in this flow: [{name, timestamp}].
    methods: list[dict[str, str]] = field(default_factory=list)
    mfa: dict[str, Any] | None = None
    # challenge_with / enroll_with requests, in order.
    factors: list[dict[str, Any]] = field(default_factory=list)
    primary_user_id: str | None = None
    denied: dict[str, str] | None = None
    session: dict[str, Any] = field(default_factory=dict)
    refresh_token: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(**data)


@dataclass(frozen=True)
class ActionVerdict:
    """What one action's commands mean for the flow."""

    redirect_url: str | None = None
    stop: bool = False
    cache_commands: tuple[dict[str, Any], ...] = ()


def _text(command: dict[str, Any], name: str) -> str:
    value = command.get(name)
    if not isinstance(value, str):
        raise ActionProtocolError(f"the {command.get('type')!r} command has no text {name!r}")
    return value


def _epoch_ms(command: dict[str, Any]) -> float:
    value = command.get("at_ms")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ActionProtocolError(f"the {command.get('type')!r} command has no time")
    return float(value)


def _earliest(current: float | None, candidate: float) -> float:
    return candidate if current is None else min(current, candidate)


def _metadata_holder(event: dict[str, Any], name: str) -> dict[str, Any]:
    holder = event.get(name)
    if not isinstance(holder, dict):
        holder = event[name] = {}
    metadata = holder.get("metadata")
    if not isinstance(metadata, dict):
        metadata = holder["metadata"] = {}
    return metadata


def apply_commands(
    commands: list[dict[str, Any]], event: dict[str, Any], outcome: Outcome, *, handler: str
) -> ActionVerdict:
    """Fold one action's commands into `outcome` and `event` (both changed in place).

    Raises ActionError (the action failed) for a command the trigger does not
    allow where it was made; the flow then fails closed. The redirect target
    is returned unchecked: the caller checks it against the tenant's hosts.
    """
    redirect_url: str | None = None
    stop = False
    cache: list[dict[str, Any]] = []
    user = event.setdefault("user", {})
    for command in commands:
        if not isinstance(command, dict):
            raise ActionProtocolError("a command is not an object")
        kind = command.get("type")
        match kind:
            case "deny":
                outcome.denied = {"reason": _text(command, "reason")}
                stop = True
            case "set_claim":
                token = command.get("token")
                claims = outcome.id_claims if token == "id" else outcome.access_claims
                if token not in ("id", "access"):
                    raise ActionProtocolError("a set_claim command names no token")
                claims[_text(command, "key")] = command.get("value")
            case "add_scope" | "remove_scope":
                outcome.scope_changes.append(
                    {"token": str(command.get("token")), "op": kind[:-6], "scope": _text(command, "scope")}
                )
            case "set_app_metadata" | "set_user_metadata":
                name = "app_metadata" if kind == "set_app_metadata" else "user_metadata"
                key, value = _text(command, "key"), command.get("value")
                pending = outcome.app_metadata if name == "app_metadata" else outcome.user_metadata
                pending[key] = copy.deepcopy(value)
                visible = user.get(name)
                if not isinstance(visible, dict):
                    visible = user[name] = {}
                if value is None:
                    visible.pop(key, None)
                else:
                    visible[key] = copy.deepcopy(value)
            case "set_transaction_metadata":
                metadata = _metadata_holder(event, "transaction")
                key, value = _text(command, "key"), command.get("value")
                if value is None:
                    metadata.pop(key, None)
                else:
                    metadata[key] = value
            case "record_method":
                if handler != "onContinuePostLogin":
                    raise ActionError(
                        "api.authentication.recordMethod() can only be called in onContinuePostLogin, "
                        "after the user returns from a redirect"
                    )
                outcome.methods.append({"name": _text(command, "url"), "timestamp": iso_now()})
            case "redirect":
                redirect_url = _text(command, "url")
            case "enable_mfa":
                outcome.mfa = {k: v for k, v in command.items() if k != "type"}
            case "challenge_with" | "challenge_with_any" | "enroll_with" | "enroll_with_any":
                outcome.factors.append(dict(command))
            case "set_primary_user":
                outcome.primary_user_id = _text(command, "user_id")
            case "validation_error":
                outcome.denied = {"reason": _text(command, "message"), "code": _text(command, "code")}
                stop = True
            case "revoke_session":
                outcome.session["revoked"] = True
                outcome.denied = {"reason": _text(command, "reason")}
                stop = True
            case "set_session_expires_at" | "set_session_idle_expires_at":
                name = "expires_at_ms" if kind == "set_session_expires_at" else "idle_expires_at_ms"
                outcome.session[name] = _earliest(outcome.session.get(name), _epoch_ms(command))
            case "set_session_cookie_mode":
                outcome.session["cookie_mode"] = _text(command, "mode")
            case "set_session_metadata" | "evict_session_metadata":
                _fold_metadata(command, _metadata_holder(event, "session"))
                outcome.session["metadata"] = dict(_metadata_holder(event, "session"))
            case "revoke_refresh_token":
                outcome.refresh_token["revoked"] = True
                outcome.denied = {"reason": _text(command, "reason")}
                stop = True
            case "set_refresh_token_expires_at" | "set_refresh_token_idle_expires_at":
                name = "expires_at_ms" if kind == "set_refresh_token_expires_at" else "idle_expires_at_ms"
                outcome.refresh_token[name] = _earliest(outcome.refresh_token.get(name), _epoch_ms(command))
            case "set_refresh_token_metadata" | "evict_refresh_token_metadata":
                _fold_metadata(command, _metadata_holder(event, "refresh_token"))
                outcome.refresh_token["metadata"] = dict(_metadata_holder(event, "refresh_token"))
            case "cache_set" | "cache_delete":
                cache.append(command)
            case _:
                raise ActionProtocolError(f"unknown command {kind!r}")
    return ActionVerdict(redirect_url=None if stop else redirect_url, stop=stop, cache_commands=tuple(cache))


def _fold_metadata(command: dict[str, Any], metadata: dict[str, Any]) -> None:
    if command["type"].startswith("evict_"):
        metadata.clear()
        return
    key, value = _text(command, "key"), command.get("value")
    if value is None:
        metadata.pop(key, None)
    else:
        metadata[key] = str(value)
