"""The bodies the API accepts: strict types, unknown fields refused (no mass assignment).

Field names follow the hosted Management API.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from runtime.limits import FIXED

__all__ = [
    "ActionCreate",
    "ActionUpdate",
    "BindingsUpdate",
    "ClientCreate",
    "ClientUpdate",
    "FlowStart",
    "KeyCreate",
    "SettingsUpdate",
    "TenantCreate",
    "TenantUpdate",
    "TestRequest",
    "UserCreate",
    "UserUpdate",
]

RUNTIMES = ("node18", "node22")
HOSTNAME = r"^([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Name = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=False)]


def _printable(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("control characters are not allowed")
    return value


PrintableName = Annotated[Name, AfterValidator(_printable)]


@functools.lru_cache(maxsize=1024)
def _https_url(value: str) -> str:
    """`value`, if it is an absolute https URL (http for localhost); kept per value, as an identity
    server sends the same ``resume_url`` with every login."""
    parts = urlsplit(value)
    local = parts.hostname in ("localhost", "127.0.0.1")
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not local) or not parts.hostname:
        raise ValueError("must be an absolute https URL (http only for localhost)")
    if parts.username or parts.password or any(ord(c) < 0x21 for c in value):
        raise ValueError("must not contain credentials, spaces or control characters")
    return value


CallbackUrl = Annotated[str, StringConstraints(max_length=2048), AfterValidator(_https_url)]


class TenantCreate(Strict):
    name: PrintableName


class TenantUpdate(Strict):
    name: PrintableName | None = None
    # Overrides of the platform defaults; null removes an override.
    limits: dict[str, int | None] | None = None


class KeyCreate(Strict):
    pass


class TriggerRef(Strict):
    id: str
    version: str = "v3"


class SecretIn(Strict):
    name: Annotated[
        str, StringConstraints(min_length=1, max_length=FIXED.secret_name_chars), AfterValidator(_printable)
    ]
    # Omitted (or null) on update: keep the stored value.
    value: Annotated[str, StringConstraints(max_length=FIXED.secret_value_chars)] | None = None


class Dependency(Strict):
    name: str
    version: str | None = None
    registry_url: str | None = None


class ActionCreate(Strict):
    name: PrintableName
    supported_triggers: Annotated[list[TriggerRef], Field(min_length=1, max_length=1)]
    code: str
    runtime: Literal["node18", "node22"] = "node22"
    secrets: Annotated[list[SecretIn], Field(max_length=FIXED.secrets_per_action)] = []
    dependencies: list[Dependency] = []
    deploy: bool = False


class ActionUpdate(Strict):
    name: PrintableName | None = None
    supported_triggers: Annotated[list[TriggerRef], Field(min_length=1, max_length=1)] | None = None
    code: str | None = None
    runtime: Literal["node18", "node22"] | None = None
    secrets: Annotated[list[SecretIn], Field(max_length=FIXED.secrets_per_action)] | None = None
    dependencies: list[Dependency] | None = None


class BindingRefIn(Strict):
    type: Literal["action_id", "action_name"]
    value: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class BindingIn(Strict):
    ref: BindingRefIn
    display_name: PrintableName | None = None


class BindingsUpdate(Strict):
    bindings: list[BindingIn]


class TestRequest(Strict):
    payload: dict[str, Any] = {}
    handler: Literal["onExecutePostLogin", "onContinuePostLogin"] = "onExecutePostLogin"


Host = Annotated[str, StringConstraints(max_length=260, pattern=HOSTNAME)]


class SettingsUpdate(Strict):
    allowed_redirect_hosts: Annotated[list[Host], Field(max_length=100)]


class RefreshTokenSettings(Strict):
    """Auth0's client ``refresh_token``: whether each exchange replaces the token, for how many seconds a
    replaced token may still be exchanged (two requests racing) before that counts as theft, and how long
    tokens live. Every field of Auth0's object is taken, so a client exported from Auth0 comes as it is."""

    rotation_type: Literal["rotating", "non-rotating"] = "non-rotating"
    leeway: Annotated[int, Field(ge=0, le=3600)] = 0
    # "non-expiring": no lifetime at all, whatever the fields below say (Auth0's legacy kind; not rotating).
    expiration_type: Literal["expiring", "non-expiring"] = "expiring"
    # Seconds a token (a rotating token's whole line) lives from the login, unless infinite_token_lifetime.
    token_lifetime: Annotated[int, Field(ge=60, le=157_788_000)] = 30 * 24 * 3600
    infinite_token_lifetime: bool = False
    # Seconds a token may sit unused, unless infinite_idle_token_lifetime (None: no limit either).
    idle_token_lifetime: Annotated[int, Field(ge=60, le=157_788_000)] | None = None
    infinite_idle_token_lifetime: bool = False

    @model_validator(mode="after")
    def _rotation_expires(self) -> RefreshTokenSettings:
        if self.rotation_type == "rotating" and self.expiration_type == "non-expiring":
            raise ValueError('rotating refresh tokens need expiration_type "expiring", as in Auth0')
        return self


class ClientCreate(Strict):
    name: PrintableName
    callbacks: Annotated[list[CallbackUrl], Field(max_length=100)] = []
    client_metadata: dict[str, Annotated[str, StringConstraints(max_length=255)]] = {}
    refresh_token: RefreshTokenSettings = RefreshTokenSettings()


class ClientUpdate(Strict):
    name: PrintableName | None = None
    callbacks: Annotated[list[CallbackUrl], Field(max_length=100)] | None = None
    client_metadata: dict[str, Annotated[str, StringConstraints(max_length=255)]] | None = None
    refresh_token: RefreshTokenSettings | None = None


Email = Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024)]


class UserCreate(Strict):
    email: Email
    password: Password | None = None
    name: PrintableName | None = None
    email_verified: bool = False
    app_metadata: dict[str, Any] = {}
    user_metadata: dict[str, Any] = {}


class UserUpdate(Strict):
    email: Email | None = None
    password: Password | None = None
    name: PrintableName | None = None
    email_verified: bool | None = None
    app_metadata: dict[str, Any] | None = None
    user_metadata: dict[str, Any] | None = None


# What an identity server may say about a login; `tenant` and `secrets` are the platform's to set.
EVENT_FIELDS = (
    "user", "client", "connection", "request", "session", "transaction", "authentication", "authorization",
    "stats", "organization", "resource_server", "refresh_token", "custom_domain", "security_context",
)  # fmt: skip


def _flow_event(event: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(event) - set(EVENT_FIELDS))
    if unknown:
        raise ValueError(f"unknown event fields: {', '.join(unknown)} (known: {', '.join(EVENT_FIELDS)})")
    for name in EVENT_FIELDS:
        if name in event and not isinstance(event[name], dict):
            raise ValueError(f"event.{name} must be an object")
    user_id = event.get("user", {}).get("user_id")
    if not isinstance(user_id, str) or not 0 < len(user_id) <= 255:
        raise ValueError("event.user.user_id must be a string of 1 to 255 characters")
    session_id = event.get("session", {}).get("id")
    if session_id is not None and (not isinstance(session_id, str) or not 0 < len(session_id) <= 255):
        raise ValueError("event.session.id must be a string of 1 to 255 characters")
    methods = event.get("authentication", {}).get("methods", [])
    if not isinstance(methods, list) or not all(
        isinstance(m, dict) and isinstance(m.get("name"), str) and isinstance(m.get("timestamp"), str) for m in methods
    ):
        raise ValueError("event.authentication.methods must be a list of {name, timestamp} strings")
    return event


class FlowStart(Strict):
    """A login an identity server hands to the flow API."""

    event: Annotated[dict[str, Any], AfterValidator(_flow_event)]
    # Where /continue sends the browser back when a redirected flow ends.
    resume_url: Annotated[str, StringConstraints(max_length=2048), AfterValidator(_https_url)]
