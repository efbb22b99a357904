"""A typed Python client for Tollgate's management API.

One :class:`Tollgate` per server and key; the routes are grouped as the API
groups them, one method per route::

    with Tollgate("http://127.0.0.1:8080", operator_key) as operator:
        made = operator.tenants.create("acme-bank")
    with Tollgate("http://127.0.0.1:8080", made["api_key"]["key"]) as acme:
        action = acme.actions.create("custom-factor", code, secrets={"SESSION_TOKEN_SECRET": value})
        acme.actions.deploy(action["id"])
        acme.actions.update_bindings([action["id"]])
        for event in acme.executions.stream():  # what the actions print, as logins happen
            print(event["action_name"], [line["message"] for line in event["logs"]])

Results are the API's JSON objects, typed with :class:`~typing.TypedDict`
under the API's own field names, so the documentation of the routes
(``/api/v2/openapi.json``) describes them too. A refused or failed request
raises :class:`ApiError` with the status, the API's ``errorCode`` and its
``message``; a server that cannot be reached raises :class:`Unreachable`.
Which routes a key may call depends on the key: the operator's manages
tenants and their keys, a tenant's manages that tenant's own settings,
clients, users, actions and executions, and runs its logins' flows.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, NotRequired, Required, Self, TypedDict, cast

import httpx2

__all__ = [
    "Action",
    "ActionPage",
    "ActionRun",
    "ActionStats",
    "ApiError",
    "ApiKey",
    "Binding",
    "Client",
    "CurrentKey",
    "ErrorInfo",
    "Execution",
    "ExecutionEvent",
    "ExecutionPage",
    "ExecutionSummary",
    "FlowOutcome",
    "LogLine",
    "LogStream",
    "NewTenant",
    "PlatformLimits",
    "RefreshTokenSettings",
    "RunStats",
    "StatsBucket",
    "Tenant",
    "TenantSettings",
    "TestResult",
    "Tollgate",
    "TollgateError",
    "Trace",
    "Trigger",
    "Unreachable",
    "Usage",
    "User",
    "UserPage",
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

    def at(self, path: str) -> str:
        """The message for the file `path` the request sent, as compilers say it: ``path:line:column: message``."""
        line, column = self.body.get("line"), self.body.get("column")
        where = f"{path}:{line}:{column}" if isinstance(line, int) and isinstance(column, int) else path
        return f"{where}: {self.message}"


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
    # The limits in force (the platform's defaults with the tenant's overrides) and the overrides alone.
    limits: dict[str, int]
    limit_overrides: dict[str, int]
    allowed_redirect_hosts: list[str]
    created_at: str
    updated_at: str


class NewTenant(Tenant):
    api_key: ApiKey


class CurrentKey(TypedDict):
    """Whose the key is: ``kind`` "operator", or "tenant" with the tenant's id and name."""

    kind: Literal["operator", "tenant"]
    key_id: str
    tenant_id: NotRequired[str]
    tenant_name: NotRequired[str]


class PlatformLimits(TypedDict):
    """What a new tenant gets, and the most an operator may set, by limit or quota name."""

    defaults: dict[str, int]
    maximums: dict[str, int]


# A tenant's executions over a period: "errors" are those that failed (an action's error, a timeout, a
# limit: the login failed closed); "by_kind" counts logins ("flow") and tests ("test"). Functional
# syntax: "from" is a keyword.
Usage = TypedDict(
    "Usage",
    {
        "tenant_id": str,
        "from": str,
        "to": str,
        "executions": int,
        "errors": int,
        "by_status": dict[str, int],
        "by_kind": dict[str, int],
        "action_runs": int,
        "fuel_used": int,
    },
)


class TenantSettings(TypedDict):
    allowed_redirect_hosts: list[str]


class RefreshTokenSettings(TypedDict, total=False):
    rotation_type: Required[str]  # "rotating" or "non-rotating"
    leeway: int  # seconds a replaced token may still be exchanged
    expiration_type: str  # "expiring" (the default) or "non-expiring": no lifetime at all
    token_lifetime: int  # seconds from the login (30 days by default)
    infinite_token_lifetime: bool  # no lifetime from the login
    idle_token_lifetime: int | None  # seconds unused; None: no limit
    infinite_idle_token_lifetime: bool  # no limit on the time unused


class Client(TypedDict):
    client_id: str
    name: str
    callbacks: list[str]
    client_metadata: dict[str, str]
    refresh_token: RefreshTokenSettings
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


class UserPage(TypedDict):
    users: list[User]
    page: int
    per_page: int


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
    # The draft's code: what /test runs and /deploy makes a version of.
    code: str
    runtime: str
    dependencies: list[Any]
    secrets: list[SecretInfo]
    status: str
    handlers: list[str]
    deployed_version: VersionRef | None
    # False when the draft holds changes (code, secrets) that no deployed version has.
    all_changes_deployed: bool
    engine_build_id: str
    created_at: str
    updated_at: str


class ActionPage(TypedDict):
    actions: list[Action]
    total: int
    page: int
    per_page: int


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


class Trigger(TypedDict):
    id: str
    version: str
    status: str
    runtimes: list[str]
    default_runtime: str
    handlers: list[str]
    compatible_triggers: list[Any]


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


# An action's error as results carry it: "class" and "message" always; the rest where it applies.
ErrorInfo = TypedDict(
    "ErrorInfo",
    {
        "class": str,
        "message": str,
        "name": NotRequired[str],
        "stack": NotRequired[str],
        "line": NotRequired[int],
        "column": NotRequired[int],
        "limit": NotRequired[str],
    },
)


class LogLine(TypedDict):
    level: str
    message: str


class RunStats(TypedDict):
    fuel_used: int
    memory_peak_bytes: int
    heap_peak_bytes: int
    duration_us: int
    host_calls: int
    # The limits the run had, by name.
    limits: dict[str, int]


class TestResult(TypedDict):
    """What ``POST /actions/actions/{id}/test`` answers (inside its ``payload``)."""

    status: str
    commands: list[dict[str, Any]]
    logs: list[LogLine]
    error: ErrorInfo | None
    stats: RunStats
    execution_id: str


class Trace(TypedDict):
    """Everything outside the action that shaped a run: what replay feeds it again."""

    seed: str  # 32 bytes, hex
    now_ms: float
    # The platform calls' answers, in order (their requests are not kept: they can hold secrets).
    host_calls: list[dict[str, Any]]


class ActionRun(TypedDict):
    """One action's run in an execution record."""

    action_id: str
    action_name: str
    # None for a test run of the draft: then source_sha256 is the SHA-256 of the draft's code as it ran.
    version_id: str | None
    handler: str
    status: str
    error: ErrorInfo | None
    started_at: str
    ended_at: str
    # Absent only when the platform failed before the action ran.
    commands: NotRequired[list[dict[str, Any]]]
    logs: NotRequired[list[LogLine]]
    logs_truncated: NotRequired[bool]
    stats: NotRequired[RunStats]
    trace: NotRequired[Trace]
    source_sha256: NotRequired[str]
    # A resumed run: the /continue request that replaced event.request (hostname kept).
    request: NotRequired[dict[str, Any]]
    # The api.cache entries the action was given.
    cache: NotRequired[dict[str, Any]]


class Execution(TypedDict):
    id: str
    trigger_id: str
    kind: str  # "flow" or "test"
    status: str
    results: list[ActionRun]
    # The event the flow started with (never its secrets); None for records older than replay.
    event: dict[str, Any] | None
    created_at: str
    updated_at: str


class ActionSummary(TypedDict):
    action_id: str
    action_name: str
    handler: str
    status: str
    error_class: str | None


class ExecutionSummary(TypedDict):
    id: str
    trigger_id: str
    kind: str
    status: str
    actions: list[ActionSummary]
    created_at: str
    updated_at: str


class ExecutionPage(TypedDict):
    executions: list[ExecutionSummary]
    total: int
    page: int
    per_page: int


class StatsBucket(TypedDict):
    """An action's runs in one bucket of time: run time percentiles (microseconds; None without a measure)
    and the count of each outcome ("completed", "denied", "redirected", "failed")."""

    start: str
    runs: int
    p50_us: int | None
    p99_us: int | None
    outcomes: dict[str, int]


# An action's runs over a period, per bucket and over the whole period; "errors" counts the failed runs by
# error class ("action_error", "action_timeout"...). Functional syntax: "from" is a keyword.
ActionStats = TypedDict(
    "ActionStats",
    {
        "action_id": str,
        "from": str,
        "to": str,
        "bucket_seconds": int,
        "kind": str | None,
        "runs": int,
        "p50_us": int | None,
        "p99_us": int | None,
        "outcomes": dict[str, int],
        "errors": dict[str, int],
        "buckets": list[StatsBucket],
    },
)


class ExecutionEvent(TypedDict):
    """One action run as the live stream shows it, when it is recorded."""

    execution_id: str
    trigger_id: str
    kind: str
    action_id: str
    action_name: str
    handler: str
    status: str
    error: ErrorInfo | None
    logs: list[LogLine]
    at: str


class FlowOutcome(TypedDict):
    """What the flow API answers: ``status`` says which of the other fields are there.

    ``redirect``: ``location`` and the metadata updates so far; ``completed``:
    claims, scope changes, metadata, methods…; ``denied``: ``error`` (a code)
    and ``error_description``; ``failed``: ``error`` (``{"class", "message"}``).
    """

    status: Literal["completed", "denied", "failed", "redirect"]
    execution_id: str
    location: NotRequired[str]
    error: NotRequired[str | ErrorInfo]
    error_description: NotRequired[str]
    id_token_claims: NotRequired[dict[str, Any]]
    access_token_claims: NotRequired[dict[str, Any]]
    dropped_claims: NotRequired[list[str]]
    scope_changes: NotRequired[list[dict[str, str]]]
    app_metadata: NotRequired[dict[str, Any]]
    user_metadata: NotRequired[dict[str, Any]]
    methods: NotRequired[list[dict[str, str]]]
    mfa: NotRequired[dict[str, Any] | None]
    factors: NotRequired[list[dict[str, Any]]]
    primary_user_id: NotRequired[str | None]
    session: NotRequired[dict[str, Any]]


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
        self.keys = Keys(self)
        self.settings = Settings(self)
        self.clients = Clients(self)
        self.users = Users(self)
        self.actions = Actions(self)
        self.executions = Executions(self)
        self.flows = Flows(self)

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, params: Mapping[str, Any] | None = None
    ) -> Any:
        """Call one route (`path` under ``/api/v2``); the JSON answer, or None for 204 No Content.

        `params` become the query string; those that are None are left out.
        """
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            reply = self._http.request(method, path, json=body, params=query or None)
        except httpx2.TimeoutException:
            raise Unreachable(f"the Tollgate server at {self.url} did not answer {method} {path} in time") from None
        except httpx2.TransportError as exc:
            raise Unreachable(f"the Tollgate server at {self.url} cannot be reached: {exc}") from None
        if reply.status_code >= 400:
            raise _error(reply)
        if reply.status_code == 204:
            return None
        return reply.json()

    def stream(self, path: str, *, read_timeout: float) -> LogStream:
        """A server-sent-events route (`path` under ``/api/v2``), read as it comes; see :class:`LogStream`."""
        return LogStream(self, self._http, path, read_timeout)

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


class LogStream:
    """The live stream of a tenant's executions: an iterator of :class:`ExecutionEvent`, one per action run.

    The connection opens on entering a ``with`` block (or at the first
    event), so a caller can tell "connected" from "nothing happened yet":
    only runs recorded after that moment are streamed. The server sends a
    comment every 15 s when nothing happens; a silence longer than
    `read_timeout` raises :class:`Unreachable`. Iterating never ends on its
    own: close the stream (or leave the ``with`` block) to stop.
    """

    def __init__(self, api: Tollgate, http: httpx2.Client, path: str, read_timeout: float) -> None:
        self._api, self._http, self._path = api, http, path
        self._timeout = httpx2.Timeout(10.0, read=read_timeout)
        self._reply: httpx2.Response | None = None
        self._lines: Iterator[str] | None = None

    def open(self) -> Self:
        """Connect (once); ApiError if the server refuses, Unreachable if it does not answer."""
        if self._reply is not None:
            return self
        request = self._http.build_request("GET", self._path, headers={"Accept": "text/event-stream"},
                                           timeout=self._timeout)  # fmt: skip
        try:
            reply = self._http.send(request, stream=True)
        except httpx2.TransportError as exc:
            raise Unreachable(f"the Tollgate server at {self._api.url} cannot be reached: {exc}") from None
        if reply.status_code >= 400:
            try:
                reply.read()
            finally:
                reply.close()
            raise _error(reply)
        self._reply, self._lines = reply, reply.iter_lines()
        return self

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> ExecutionEvent:
        self.open()
        assert self._lines is not None
        kind = "message"
        data: list[str] = []
        try:
            for line in self._lines:
                # Server-sent events: "field: value" lines, a blank line ends an event, ":" starts a comment.
                if line == "":
                    if data and kind == "execution":
                        return cast(ExecutionEvent, json.loads("\n".join(data)))
                    kind, data = "message", []
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    kind = value
                elif name == "data":
                    data.append(value)
        except httpx2.ReadTimeout:
            raise Unreachable(f"the stream from {self._api.url} went silent (no keep-alive for a while)") from None
        except httpx2.TransportError as exc:
            raise Unreachable(f"the stream from {self._api.url} was cut: {exc}") from None
        raise Unreachable(f"the server at {self._api.url} closed the stream")

    def close(self) -> None:
        if self._reply is not None:
            self._reply.close()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


class _Group:
    def __init__(self, api: Tollgate) -> None:
        self._api = api


def _without_none(body: Mapping[str, Any]) -> dict[str, Any]:
    """A PATCH body: only the fields given (None means "leave it as it is")."""
    return {k: v for k, v in body.items() if v is not None}


class Tenants(_Group):
    """``/tenants``: the operator's routes."""

    def create(self, name: str) -> NewTenant:
        """A new tenant with its first API key (``api_key.key``, shown only in this answer)."""
        return cast(NewTenant, self._api.request("POST", "/tenants", {"name": name}))

    def list(self) -> list[Tenant]:
        return cast(list[Tenant], self._api.request("GET", "/tenants")["tenants"])

    def get(self, tenant_id: str) -> Tenant:
        """The tenant with the limits in force."""
        return cast(Tenant, self._api.request("GET", f"/tenants/{tenant_id}"))

    def update(
        self, tenant_id: str, *, name: str | None = None, limits: Mapping[str, int | None] | None = None
    ) -> Tenant:
        """Rename the tenant, or override some of its limits (within the platform's maximums).

        `limits` are merged into the overrides already set; a None value
        removes an override, restoring the platform's default.
        """
        body: dict[str, Any] = _without_none({"name": name})
        if limits is not None:
            body["limits"] = dict(limits)
        return cast(Tenant, self._api.request("PATCH", f"/tenants/{tenant_id}", body))

    def delete(self, tenant_id: str) -> None:
        """Delete the tenant and everything it owns."""
        self._api.request("DELETE", f"/tenants/{tenant_id}")

    def usage(self, tenant_id: str, *, since: str | None = None, until: str | None = None) -> Usage:
        """The tenant's executions, errors, action runs and fuel from `since` to `until` (ISO 8601 times
        with a zone; by default the last 24 hours)."""
        params = {"from": since, "to": until}
        return cast(Usage, self._api.request("GET", f"/tenants/{tenant_id}/usage", params=params))

    def limits(self) -> PlatformLimits:
        """The limits and quotas a new tenant gets, and the most :meth:`update` accepts."""
        return cast(PlatformLimits, self._api.request("GET", "/limits"))


class Keys(_Group):
    """``/tenants/{id}/keys``: the operator's routes for a tenant's API keys; and ``/keys/current``, for any key."""

    def current(self) -> CurrentKey:
        """Whose the client's own key is: the operator's, or a tenant's (with its id and name)."""
        return cast(CurrentKey, self._api.request("GET", "/keys/current"))

    def create(self, tenant_id: str) -> ApiKey:
        """A new key for the tenant; its text (``key``) is only in this answer."""
        return cast(ApiKey, self._api.request("POST", f"/tenants/{tenant_id}/keys", {}))

    def list(self, tenant_id: str) -> list[ApiKey]:
        """The tenant's keys, revoked ones too; never their text."""
        return cast(list[ApiKey], self._api.request("GET", f"/tenants/{tenant_id}/keys")["keys"])

    def revoke(self, tenant_id: str, key_id: str) -> None:
        """Revoke the key: at once on the server that answers, within 5 seconds on the others."""
        self._api.request("DELETE", f"/tenants/{tenant_id}/keys/{key_id}")


class Settings(_Group):
    """``/tenants/settings``: the tenant's own settings."""

    def get(self) -> TenantSettings:
        return cast(TenantSettings, self._api.request("GET", "/tenants/settings"))

    def update(self, *, allowed_redirect_hosts: Sequence[str]) -> TenantSettings:
        """Set the exact hosts ``api.redirect.sendUserTo`` may send users to (with ``:port`` unless 443)."""
        body = {"allowed_redirect_hosts": list(allowed_redirect_hosts)}
        return cast(TenantSettings, self._api.request("PATCH", "/tenants/settings", body))


class Clients(_Group):
    """``/clients``: the applications the tenant's users sign in to."""

    def create(
        self,
        name: str,
        *,
        callbacks: Sequence[str] = (),
        metadata: Mapping[str, str] | None = None,
        refresh_token: RefreshTokenSettings | None = None,
    ) -> Client:
        """A new client; its ``client_secret`` is only in this answer. `refresh_token` chooses rotation
        (``{"rotation_type": "rotating", "leeway": 0}``); the default returns the same token every time."""
        body = _without_none({
            "name": name,
            "callbacks": list(callbacks),
            "client_metadata": dict(metadata or {}),
            "refresh_token": None if refresh_token is None else dict(refresh_token),
        })  # fmt: skip
        return cast(Client, self._api.request("POST", "/clients", body))

    def list(self) -> list[Client]:
        return cast(list[Client], self._api.request("GET", "/clients")["clients"])

    def get(self, client_id: str) -> Client:
        return cast(Client, self._api.request("GET", f"/clients/{client_id}"))

    def update(
        self,
        client_id: str,
        *,
        name: str | None = None,
        callbacks: Sequence[str] | None = None,
        metadata: Mapping[str, str] | None = None,
        refresh_token: RefreshTokenSettings | None = None,
    ) -> Client:
        """Change what is given; the rest stays."""
        body = _without_none({
            "name": name,
            "callbacks": None if callbacks is None else list(callbacks),
            "client_metadata": None if metadata is None else dict(metadata),
            "refresh_token": None if refresh_token is None else dict(refresh_token),
        })  # fmt: skip
        return cast(Client, self._api.request("PATCH", f"/clients/{client_id}", body))

    def delete(self, client_id: str) -> None:
        self._api.request("DELETE", f"/clients/{client_id}")


class Users(_Group):
    """``/users``: the hosted login's users. Passwords go in, never come out."""

    def create(
        self,
        email: str,
        *,
        password: str | None = None,
        name: str | None = None,
        email_verified: bool = False,
        app_metadata: Mapping[str, Any] | None = None,
        user_metadata: Mapping[str, Any] | None = None,
    ) -> User:
        body = _without_none({
            "email": email, "password": password, "name": name, "email_verified": email_verified,
            "app_metadata": None if app_metadata is None else dict(app_metadata),
            "user_metadata": None if user_metadata is None else dict(user_metadata),
        })  # fmt: skip
        return cast(User, self._api.request("POST", "/users", body))

    def list(self, *, page: int = 0, per_page: int = 50) -> UserPage:
        """One page of users, oldest first (`per_page` at most 100)."""
        return cast(UserPage, self._api.request("GET", "/users", params={"page": page, "per_page": per_page}))

    def list_all(self) -> builtins.list[User]:
        """Every user, page after page."""
        users: builtins.list[User] = []
        page = 0
        while True:
            batch = self.list(page=page, per_page=100)["users"]
            users += batch
            if len(batch) < 100:
                return users
            page += 1

    def get(self, user_id: str) -> User:
        return cast(User, self._api.request("GET", f"/users/{user_id}"))

    def update(
        self,
        user_id: str,
        *,
        email: str | None = None,
        password: str | None = None,
        name: str | None = None,
        email_verified: bool | None = None,
        app_metadata: Mapping[str, Any] | None = None,
        user_metadata: Mapping[str, Any] | None = None,
    ) -> User:
        """Change what is given; metadata given replaces the stored metadata."""
        body = _without_none({
            "email": email, "password": password, "name": name, "email_verified": email_verified,
            "app_metadata": None if app_metadata is None else dict(app_metadata),
            "user_metadata": None if user_metadata is None else dict(user_metadata),
        })  # fmt: skip
        return cast(User, self._api.request("PATCH", f"/users/{user_id}", body))

    def delete(self, user_id: str) -> None:
        self._api.request("DELETE", f"/users/{user_id}")


class Actions(_Group):
    """``/actions``: actions, their versions, tests, the triggers and their bindings."""

    def list(
        self,
        *,
        trigger: str | None = None,
        name: str | None = None,
        deployed: bool | None = None,
        page: int = 0,
        per_page: int = 50,
    ) -> ActionPage:
        """One page of actions, oldest first, filtered by trigger, exact name or whether they are deployed."""
        params = {
            "triggerId": trigger, "actionName": name, "page": page, "per_page": per_page,
            "deployed": None if deployed is None else str(deployed).lower(),
        }  # fmt: skip
        return cast(ActionPage, self._api.request("GET", "/actions/actions", params=params))

    def list_all(self, *, trigger: str | None = None) -> builtins.list[Action]:
        """Every action (of `trigger`), page after page."""
        actions: builtins.list[Action] = []
        page = 0
        while True:
            reply = self.list(trigger=trigger, page=page, per_page=100)
            actions += reply["actions"]
            if len(actions) >= reply["total"] or not reply["actions"]:
                return actions
            page += 1

    def get(self, action_id: str) -> Action:
        """The action with its draft's code; secrets by name only."""
        return cast(Action, self._api.request("GET", f"/actions/actions/{action_id}"))

    def create(
        self,
        name: str,
        code: str,
        *,
        trigger: str = "post-login",
        secrets: Mapping[str, str] | None = None,
        runtime: str | None = None,
        deploy: bool = False,
    ) -> Action:
        """A new action (its draft compiled at once; a syntax error is an ApiError with line and column)."""
        body = _without_none({
            "name": name,
            "code": code,
            "supported_triggers": [{"id": trigger}],
            "secrets": [{"name": k, "value": v} for k, v in (secrets or {}).items()],
            "runtime": runtime,
            "deploy": deploy or None,
        })  # fmt: skip
        return cast(Action, self._api.request("POST", "/actions/actions", body))

    def update(
        self,
        action_id: str,
        *,
        name: str | None = None,
        code: str | None = None,
        trigger: str | None = None,
        runtime: str | None = None,
        secrets: Mapping[str, str | None] | None = None,
    ) -> Action:
        """Change the draft; logins keep running the deployed version until the next deploy.

        `secrets` is the whole set: a name mapped to None keeps its stored
        value, a name left out is removed.
        """
        body = _without_none({
            "name": name,
            "code": code,
            "supported_triggers": None if trigger is None else [{"id": trigger}],
            "runtime": runtime,
            "secrets": None if secrets is None else [
                {"name": k} if v is None else {"name": k, "value": v} for k, v in secrets.items()
            ],
        })  # fmt: skip
        return cast(Action, self._api.request("PATCH", f"/actions/actions/{action_id}", body))

    def delete(self, action_id: str, *, force: bool = False) -> None:
        """Delete the action; a bound one only with `force` (it is then taken out of its flow)."""
        self._api.request("DELETE", f"/actions/actions/{action_id}", params={"force": "true" if force else None})

    def deploy(self, action_id: str) -> Version:
        """Deploy the draft as a new immutable version, with the draft's secrets."""
        return cast(Version, self._api.request("POST", f"/actions/actions/{action_id}/deploy"))

    def test(
        self, action_id: str, event: Mapping[str, Any] | None = None, *, handler: str = "onExecutePostLogin"
    ) -> TestResult:
        """Run the draft with its secrets against `event`; the run is recorded (``execution_id``)."""
        body = {"payload": dict(event or {}), "handler": handler}
        reply = self._api.request("POST", f"/actions/actions/{action_id}/test", body)
        return cast(TestResult, reply["payload"])

    def versions(self, action_id: str) -> builtins.list[Version]:
        """The action's versions, newest first."""
        return cast(
            builtins.list[Version], self._api.request("GET", f"/actions/actions/{action_id}/versions")["versions"]
        )

    def version(self, action_id: str, version_id: str) -> Version:
        return cast(Version, self._api.request("GET", f"/actions/actions/{action_id}/versions/{version_id}"))

    def rollback(self, action_id: str, version_id: str) -> Version:
        """Deploy a copy of an older version (its code and secrets) as a new version."""
        path = f"/actions/actions/{action_id}/versions/{version_id}/deploy"
        return cast(Version, self._api.request("POST", path))

    def stats(
        self,
        action_id: str,
        *,
        since: str | None = None,
        until: str | None = None,
        bucket: int | None = None,
        kind: Literal["flow", "test"] | None = None,
    ) -> ActionStats:
        """The action's run time (p50, p99) and outcomes from `since` to `until` (ISO 8601 times with a zone;
        by default the last 24 hours), per `bucket` seconds (by default a round size that makes at most 100
        buckets); `kind` keeps only logins ("flow") or tests ("test")."""
        params = {"from": since, "to": until, "bucket": bucket, "kind": kind}
        return cast(ActionStats, self._api.request("GET", f"/actions/actions/{action_id}/stats", params=params))

    def triggers(self) -> builtins.list[Trigger]:
        """The triggers actions can be bound to, with their handlers."""
        return cast(builtins.list[Trigger], self._api.request("GET", "/actions/triggers")["triggers"])

    def sample_event(self, trigger: str = "post-login") -> dict[str, Any]:
        """A realistic event for `trigger`, to :meth:`test` actions with."""
        return cast(dict[str, Any], self._api.request("GET", f"/actions/triggers/{trigger}/sample-event")["event"])

    def bindings(self, trigger: str = "post-login") -> builtins.list[Binding]:
        """The trigger's flow: the actions it runs, in order."""
        return cast(
            builtins.list[Binding], self._api.request("GET", f"/actions/triggers/{trigger}/bindings")["bindings"]
        )

    def update_bindings(self, action_ids: Sequence[str], *, trigger: str = "post-login") -> builtins.list[Binding]:
        """Replace the trigger's flow: these deployed actions, run in this order."""
        body = {"bindings": [{"ref": {"type": "action_id", "value": i}} for i in action_ids]}
        reply = self._api.request("PATCH", f"/actions/triggers/{trigger}/bindings", body)
        return cast(builtins.list[Binding], reply["bindings"])


class Executions(_Group):
    """``/actions/executions`` and ``/actions/logs/stream``: what the actions did, kept and live."""

    def list(
        self,
        *,
        action_id: str | None = None,
        status: str | None = None,
        since: str | None = None,
        until: str | None = None,
        page: int = 0,
        per_page: int = 50,
    ) -> ExecutionPage:
        """One page of records, newest first; `since` and `until` are ISO 8601 times with a zone."""
        params = {"action_id": action_id, "status": status, "from": since, "to": until, "page": page,
                  "per_page": per_page}  # fmt: skip
        return cast(ExecutionPage, self._api.request("GET", "/actions/executions", params=params))

    def get(self, execution_id: str) -> Execution:
        """The whole record: each run's commands, console output, error, stats and trace, and the start event."""
        return cast(Execution, self._api.request("GET", f"/actions/executions/{execution_id}"))

    def stream(self, *, read_timeout: float = 60.0) -> LogStream:
        """The runs recorded from now on, as they are recorded; see :class:`LogStream`."""
        return self._api.stream("/actions/logs/stream", read_timeout=read_timeout)


class Flows(_Group):
    """``/flows``: run the post-login flow for a login of your own identity server."""

    def post_login(self, event: Mapping[str, Any], resume_url: str) -> FlowOutcome:
        """Run the flow on the login's `event`; the outcome, or (``redirect``) where to send the browser.

        After a redirect the browser comes back to ``/t/<tenant>/continue``;
        when the flow ends there it is sent to `resume_url` with
        ``result=<reference>``, for :meth:`result`.
        """
        body = {"event": dict(event), "resume_url": resume_url}
        return cast(FlowOutcome, self._api.request("POST", "/flows/post-login", body))

    def result(self, ref: str) -> FlowOutcome:
        """Redeem, once, the outcome of a flow that ended at /continue."""
        return cast(FlowOutcome, self._api.request("GET", f"/flows/results/{ref}"))
