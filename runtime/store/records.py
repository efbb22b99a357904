"""The rows the store hands out, as immutable records."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from runtime.sandbox import CompiledAction

# A client's refresh tokens unless it chooses otherwise: the same token is returned by every exchange, for
# 30 days from the login, however long it sits unused. (Settings stored before the expiration_type and
# infinite_* fields existed read as these defaults for them, which is what they meant.)
NON_ROTATING: dict[str, Any] = {
    "rotation_type": "non-rotating",
    "leeway": 0,
    "expiration_type": "expiring",
    "token_lifetime": 30 * 24 * 3600,
    "infinite_token_lifetime": False,
    "idle_token_lifetime": None,
    "infinite_idle_token_lifetime": False,
}


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    limits: dict[str, int]
    allowed_redirect_hosts: list[str]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ApiKey:
    id: str
    tenant_id: str | None
    kind: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class Principal:
    """Who a request authenticated as: the operator, or one tenant."""

    kind: str  # "operator" | "tenant"
    key_id: str
    tenant_id: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"


@dataclass(frozen=True)
class SecretInfo:
    """A secret's name and when it was last set; never its value."""

    name: str
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class BuiltCode:
    """What a draft and its versions share: the code, its trigger, and what the sandbox compiled it to."""

    trigger_id: str
    trigger_version: str
    runtime: str
    code: str
    bytecode: bytes
    bytecode_sha256: str
    engine_build_id: str
    handlers: list[str]

    def compiled(self) -> CompiledAction:
        """The code as the sandbox runs it."""
        return CompiledAction(
            source=self.code,
            trigger=self.trigger_id,
            bytecode=self.bytecode,
            handlers=tuple(self.handlers),
            build_id=self.engine_build_id,
            source_sha256=hashlib.sha256(self.code.encode("utf-8", "surrogatepass")).hexdigest(),
            bytecode_sha256=self.bytecode_sha256,
        )


@dataclass(frozen=True, kw_only=True)
class Action(BuiltCode):
    """An action's draft, with what is deployed."""

    tenant_id: str
    id: str
    name: str
    status: str
    deployed_version_id: str | None
    deployed_version_number: int | None
    all_changes_deployed: bool
    secrets: list[SecretInfo]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class Version(BuiltCode):
    """A deployed snapshot of an action: immutable."""

    tenant_id: str
    id: str
    action_id: str
    number: int
    deployed: bool
    rolled_back_from: str | None
    secrets: list[SecretInfo]
    created_at: datetime


@dataclass(frozen=True)
class Binding:
    id: str
    trigger_id: str
    position: int
    action_id: str
    action_name: str
    display_name: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Client:
    tenant_id: str
    client_id: str
    name: str
    callbacks: list[str]
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    # {"rotation_type": "rotating" | "non-rotating", "leeway": seconds a replaced token still works,
    #  "token_lifetime": seconds from the login, "idle_token_lifetime": seconds unused, or None}
    refresh_token: dict[str, Any] = field(default_factory=lambda: dict(NON_ROTATING))

    @property
    def rotates_refresh_tokens(self) -> bool:
        return self.refresh_token.get("rotation_type") == "rotating"

    @property
    def refresh_token_lifetimes(self) -> tuple[timedelta | None, timedelta | None]:
        """How long a refresh token lives from the login, and unused (None: no limit)."""
        settings = self.refresh_token
        if settings["expiration_type"] == "non-expiring":
            return None, None
        lifetime = None if settings["infinite_token_lifetime"] else timedelta(seconds=settings["token_lifetime"])
        idle = settings["idle_token_lifetime"]
        if settings["infinite_idle_token_lifetime"] or not idle:
            return lifetime, None
        return lifetime, timedelta(seconds=idle)


@dataclass(frozen=True)
class User:
    tenant_id: str
    id: str
    email: str
    email_verified: bool
    name: str | None
    app_metadata: dict[str, Any]
    user_metadata: dict[str, Any]
    logins_count: int
    last_login: datetime | None
    created_at: datetime
    updated_at: datetime
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Execution:
    tenant_id: str
    id: str
    trigger_id: str
    kind: str
    status: str
    results: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    # The event the flow (or test) started with, without secrets: with the traces, enough to replay it.
    event: dict[str, Any] | None = None


@dataclass(frozen=True)
class LatencyBucket:
    """An action's runs in one bucket of time: how long they took (microseconds) and how they ended."""

    start: datetime
    runs: int
    p50_us: int | None
    p99_us: int | None
    outcomes: dict[str, int]


@dataclass(frozen=True)
class ActionStats:
    """An action's runs over a period: per bucket, and over the whole period with failures by class."""

    buckets: list[LatencyBucket]
    runs: int
    p50_us: int | None
    p99_us: int | None
    outcomes: dict[str, int]
    errors: dict[str, int]


@dataclass(frozen=True)
class Usage:
    """A tenant's executions over a period, what they ran and the fuel they used."""

    executions: int
    by_status: dict[str, int]
    by_kind: dict[str, int]
    action_runs: int
    fuel_used: int
