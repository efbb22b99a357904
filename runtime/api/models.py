"""The bodies the API accepts: strict types, unknown fields refused (no mass assignment).

Field names follow the hosted Management API.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from runtime.limits import FIXED

__all__ = [
    "ActionCreate",
    "ActionUpdate",
    "BindingsUpdate",
    "ClientCreate",
    "ClientUpdate",
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


def _https_url(value: str) -> str:
    from urllib.parse import urlsplit

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


class ClientCreate(Strict):
    name: PrintableName
    callbacks: Annotated[list[CallbackUrl], Field(max_length=100)] = []
    client_metadata: dict[str, Annotated[str, StringConstraints(max_length=255)]] = {}


class ClientUpdate(Strict):
    name: PrintableName | None = None
    callbacks: Annotated[list[CallbackUrl], Field(max_length=100)] | None = None
    client_metadata: dict[str, Annotated[str, StringConstraints(max_length=255)]] | None = None


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
