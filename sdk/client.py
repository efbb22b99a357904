"""A typed Python client for Tollgate's management API.

One :class:`Tollgate` per server and key; the routes are grouped as the API
groups them, one method per route::

    with Tollgate("http://127.0.0.1:8080", operator_key) as operator:
        made = operator.tenants.create("acme-bank")
    with Tollgate("http://127.0.0.1:8080", made["api_key"]["key"]) as acme:
        action = acme.actions.create("custom-factor", code, secrets={"SESSION_TOKEN_SECRET": value})
        acme.actions.deploy(action["id"])

Results are the API's JSON objects, typed with :class:`~typing.TypedDict`
under the API's own field names, so the documentation of the routes
(``/api/v2/openapi.json``) describes them too. A refused or failed request
raises :class:`ApiError` with the status, the API's ``errorCode`` and its
``message``; a server that cannot be reached raises :class:`Unreachable`.
Which routes a key may call depends on the key: the operator's manages
tenants, a tenant's manages that tenant's own settings, clients, users and
actions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, NotRequired, Self, TypedDict, cast

import httpx2

__all__ = [
    "Action",
    "ApiError",
    "ApiKey",
    "Binding",
    "Client",
    "NewTenant",
    "Tenant",
    "TenantSettings",
    "Tollgate",
    "TollgateError",
    "Unreachable",
    "User",
    "Version",
]


class TollgateError(Exception):
    """Anything that kept a request to Tollgate from succeeding."""


class ApiError(TollgateError):
    """The API answered with an error: ``{"statusCode", "error", "message", "errorCode"}``."""

    def __init__(self, status: int, code: str, message: str, body: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status = status
        self.code = code
        self.message = message
        # The whole error body: some errors add details (an action's line and column, a quota's limit).
        self.body: Mapping[str, Any] = body or {}


class Unreachable(TollgateError):
    """No answer from the server: it is not running, not at that address, or too slow."""


# -- what the API returns --------------------------------------------------------------------


class ApiKey(TypedDict):
    id: str
    prefix: str
    created_at: str
    revoked_at: str | None
    # The key itself: only in the answer that created it.
    key: NotRequired[str]


class Tenant(TypedDict):
    id: str
    name: str
    limits: dict[str, int]
    limit_overrides: dict[str, int]
    allowed_redirect_hosts: list[str]
    created_at: str
    updated_at: str


class NewTenant(Tenant):
    api_key: ApiKey


class TenantSettings(TypedDict):
    allowed_redirect_hosts: list[str]


class Client(TypedDict):
    client_id: str
    name: str
    callbacks: list[str]
    client_metadata: dict[str, str]
    created_at: str
    updated_at: str
    # Only in the answer that created the client.
    client_secret: NotRequired[str]


class User(TypedDict):
    user_id: str
    email: str
    email_verified: bool
    name: str | None
    app_metadata: dict[str, Any]
    user_metadata: dict[str, Any]
    logins_count: int
    last_login: str | None
    created_at: str
    updated_at: str


class TriggerRef(TypedDict):
    id: str
    version: str


class SecretInfo(TypedDict):
    name: str
    updated_at: str | None


class VersionRef(TypedDict):
    id: str
    number: int


class Action(TypedDict):
    id: str
    name: str
    supported_triggers: list[TriggerRef]
    code: str
    runtime: str
    dependencies: list[Any]
    secrets: list[SecretInfo]
    status: str
    handlers: list[str]
    deployed_version: VersionRef | None
    all_changes_deployed: bool
    engine_build_id: str
    created_at: str
    updated_at: str


class Version(TypedDict):
    id: str
    action_id: str
    number: int
    code: str
    runtime: str
    dependencies: list[Any]
    secrets: list[SecretInfo]
    status: str
    deployed: bool
    supported_triggers: list[TriggerRef]
    engine_build_id: str
    rolled_back_from: str | None
    created_at: str
    updated_at: str


class BoundAction(TypedDict):
    id: str
    name: str


class Binding(TypedDict):
    id: str
    trigger_id: str
    display_name: str | None
    action: BoundAction
    created_at: str
    updated_at: str


# -- the client ------------------------------------------------------------------------------


class Tollgate:
    """The management API of the Tollgate server at `url` (e.g. ``http://127.0.0.1:8080``), used with `key`.

    `transport` replaces httpx2's network transport (tests pass one that
    answers in-process). Close the client, or use it in a ``with`` block, to
    release its connections.
    """

    def __init__(
        self, url: str, key: str, *, timeout: float = 30.0, transport: httpx2.BaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx2.Client(
            base_url=self.url + "/api/v2",
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self.tenants = Tenants(self)
        self.settings = Settings(self)
        self.clients = Clients(self)
        self.users = Users(self)
        self.actions = Actions(self)

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """Call one route (`path` under ``/api/v2``); the JSON answer, or None for 204 No Content."""
        try:
            reply = self._http.request(method, path, json=body)
        except httpx2.TimeoutException:
            raise Unreachable(f"the Tollgate server at {self.url} did not answer {method} {path} in time") from None
        except httpx2.TransportError as exc:
            raise Unreachable(f"the Tollgate server at {self.url} cannot be reached: {exc}") from None
        if reply.status_code >= 400:
            raise _error(reply)
        if reply.status_code == 204:
            return None
        return reply.json()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def _error(reply: httpx2.Response) -> ApiError:
    """The API's error body as an ApiError; something else (a proxy's page) in words."""
    try:
        body = reply.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errorCode"), str):
        return ApiError(reply.status_code, body["errorCode"], str(body.get("message", "")), body)
    text = " ".join(reply.text.split())[:200] or reply.reason_phrase
    return ApiError(reply.status_code, "http_error", f"unexpected answer from {reply.request.url}: {text}")


class _Group:
    def __init__(self, api: Tollgate) -> None:
        self._api = api


class Tenants(_Group):
    """``/tenants``: the operator's routes."""

    def create(self, name: str) -> NewTenant:
        """A new tenant with its first API key (``api_key.key``, shown only in this answer)."""
        return cast(NewTenant, self._api.request("POST", "/tenants", {"name": name}))

    def list(self) -> list[Tenant]:
        return cast(list[Tenant], self._api.request("GET", "/tenants")["tenants"])

    def delete(self, tenant_id: str) -> None:
        """Delete the tenant and everything it owns."""
        self._api.request("DELETE", f"/tenants/{tenant_id}")


class Settings(_Group):
    """``/tenants/settings``: the tenant's own settings."""

    def update(self, *, allowed_redirect_hosts: Sequence[str]) -> TenantSettings:
        """Set the exact hosts ``api.redirect.sendUserTo`` may send users to (with ``:port`` unless 443)."""
        body = {"allowed_redirect_hosts": list(allowed_redirect_hosts)}
        return cast(TenantSettings, self._api.request("PATCH", "/tenants/settings", body))


class Clients(_Group):
    """``/clients``: the applications the tenant's users sign in to."""

    def create(self, name: str, *, callbacks: Sequence[str] = (), metadata: Mapping[str, str] | None = None) -> Client:
        """A new client; its ``client_secret`` is only in this answer."""
        body = {"name": name, "callbacks": list(callbacks), "client_metadata": dict(metadata or {})}
        return cast(Client, self._api.request("POST", "/clients", body))


class Users(_Group):
    """``/users``: the hosted login's users."""

    def create(
        self, email: str, *, password: str | None = None, name: str | None = None, email_verified: bool = False
    ) -> User:
        body = {"email": email, "password": password, "name": name, "email_verified": email_verified}
        return cast(User, self._api.request("POST", "/users", {k: v for k, v in body.items() if v is not None}))


class Actions(_Group):
    """``/actions``: actions, their versions and the triggers' bindings."""

    def create(
        self, name: str, code: str, *, trigger: str = "post-login", secrets: Mapping[str, str] | None = None
    ) -> Action:
        """A new action (its draft compiled at once; a syntax error is an ApiError with line and column)."""
        body = {
            "name": name,
            "code": code,
            "supported_triggers": [{"id": trigger}],
            "secrets": [{"name": k, "value": v} for k, v in (secrets or {}).items()],
        }
        return cast(Action, self._api.request("POST", "/actions/actions", body))

    def deploy(self, action_id: str) -> Version:
        """Deploy the draft as a new immutable version, with the draft's secrets."""
        return cast(Version, self._api.request("POST", f"/actions/actions/{action_id}/deploy"))

    def update_bindings(self, action_ids: Sequence[str], *, trigger: str = "post-login") -> list[Binding]:
        """Replace the trigger's flow: these deployed actions, run in this order."""
        body = {"bindings": [{"ref": {"type": "action_id", "value": i}} for i in action_ids]}
        reply = self._api.request("PATCH", f"/actions/triggers/{trigger}/bindings", body)
        return cast(list[Binding], reply["bindings"])
