"""A tenant described in one folder: ``tenants/<name>/tenant.json`` and the action files next to it.

The format is documented in ``tenants/README.md``. This module reads and
checks a descriptor (:func:`load`), makes an existing tenant match it
through the management API with the tenant's key (:func:`deploy`, what
``tollgate deploy FOLDER`` runs: idempotent, so a second deploy changes
nothing) and creates a new tenant from it with the operator's key
(:func:`create_tenant`, what the demo runs), reporting each step in words.
Secret values and passwords are never written in the descriptor: each
names where its value comes from (``{"generate": true}`` or ``{"env":
"NAME"}``), and the values set are returned to the caller, which may need
them to configure whatever shares them (the demo's verification page holds
the action's ``SESSION_TOKEN_SECRET``).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self, cast

from pydantic import BaseModel, ConfigDict, PrivateAttr, StringConstraints, ValidationError, model_validator

from sdk.client import Action, ApiError, RefreshTokenSettings, Tollgate

__all__ = [
    "CreatedClient",
    "CreatedTenant",
    "CreatedUser",
    "Deployed",
    "DeployedAction",
    "DeployedClient",
    "DeployedUser",
    "DescriptorError",
    "TenantDescriptor",
    "create_tenant",
    "deploy",
    "load",
]

FILE_NAME = "tenant.json"


class DescriptorError(Exception):
    """The descriptor cannot be used as written; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Text = Annotated[str, StringConstraints(min_length=1)]


class Source(_Strict):
    """Where a secret value or a password comes from: generated at creation, or an environment variable."""

    generate: Literal[True] | None = None
    env: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.generate is None) == (self.env is None):
            raise ValueError('give exactly one of {"generate": true} or {"env": "VARIABLE_NAME"}')
        return self

    def read(self, where: str, environ: Mapping[str, str]) -> str:
        """The value of the environment variable this source names (`where` says whose value it is)."""
        assert self.env is not None
        value = environ.get(self.env)
        if not value:
            raise DescriptorError(f"{where} comes from the environment variable {self.env}, which is not set")
        return value


class RefreshTokenSpec(_Strict):
    """The client's refresh tokens: the same one every time, or a new one per exchange (see the API)."""

    rotation_type: Literal["rotating", "non-rotating"] = "non-rotating"
    leeway: int = 0
    expiration_type: Literal["expiring", "non-expiring"] = "expiring"
    token_lifetime: int = 30 * 24 * 3600
    infinite_token_lifetime: bool = False
    idle_token_lifetime: int | None = None
    infinite_idle_token_lifetime: bool = False

    def words(self) -> str:
        rotation = "not rotated" if self.rotation_type == "non-rotating" else f"rotated (leeway {self.leeway} s)"
        if self.expiration_type == "non-expiring":
            return f"refresh tokens {rotation}, never expiring"
        living = "without a lifetime" if self.infinite_token_lifetime else f"living {_duration(self.token_lifetime)}"
        idle = ""
        if self.idle_token_lifetime and not self.infinite_idle_token_lifetime:
            idle = f", {_duration(self.idle_token_lifetime)} unused"
        return f"refresh tokens {rotation}, {living}{idle}"


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}" + ("s" if n != 1 else "")
    return f"{seconds} s"


class ClientSpec(_Strict):
    name: Text
    callbacks: list[Text] = []
    refresh_token: RefreshTokenSpec = RefreshTokenSpec()


class UserSpec(_Strict):
    email: Text
    name: Text | None = None
    email_verified: bool = False
    password: Source


class ActionSpec(_Strict):
    name: Text
    # Relative to the descriptor's folder.
    file: Text
    trigger: Literal["post-login"] = "post-login"
    secrets: dict[Text, Source] = {}


class TenantDescriptor(_Strict):
    """``tenant.json``, checked. Made by :func:`load`, which knows the folder file names start from."""

    name: Text
    allowed_redirect_hosts: list[Text] = []
    clients: list[ClientSpec] = []
    users: list[UserSpec] = []
    actions: list[ActionSpec] = []
    # Per trigger, the names of the actions to run, in order.
    bindings: dict[Literal["post-login"], list[Text]] = {}
    _folder: Path = PrivateAttr(default=Path())

    @model_validator(mode="after")
    def _bound_actions_exist(self) -> Self:
        names = [a.name for a in self.actions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"action names must be unique: {', '.join(duplicates)}")
        for trigger, bound in self.bindings.items():
            unknown = [n for n in bound if n not in names]
            if unknown:
                raise ValueError(f"bindings.{trigger} names actions the descriptor does not have: {', '.join(unknown)}")
            wrong = [a.name for a in self.actions if a.name in bound and a.trigger != trigger]
            if wrong:
                raise ValueError(f"bindings.{trigger} names actions for another trigger: {', '.join(wrong)}")
        return self

    @property
    def folder(self) -> Path:
        """The folder the descriptor was read from: action files are relative to it."""
        return self._folder

    def code(self, action: ActionSpec) -> str:
        path = self._folder / action.file
        try:
            return path.read_text()
        except FileNotFoundError:
            raise DescriptorError(f"the action {action.name!r} names the file {path}, which does not exist") from None


def load(folder: Path) -> TenantDescriptor:
    """The descriptor in `folder` (``folder/tenant.json``), checked; DescriptorError says what is wrong."""
    path = folder / FILE_NAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DescriptorError(f"there is no {FILE_NAME} in {folder}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DescriptorError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DescriptorError(f"{path} must hold a JSON object")
    try:
        descriptor = TenantDescriptor.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_where(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors(include_url=False)
        )
        raise DescriptorError(f"{path}: {problems}") from None
    descriptor._folder = folder
    for action in descriptor.actions:
        descriptor.code(action)  # a missing file is reported now, before anything is created
    return descriptor


def _where(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a path into the JSON: ``actions[0].secrets.NAME``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the descriptor"


@dataclass(frozen=True)
class DeployedClient:
    name: str
    client_id: str
    callbacks: list[str]
    change: Literal["created", "updated", "unchanged"]
    # Only when the client was created now: the API shows it once.
    client_secret: str | None = None


@dataclass(frozen=True)
class DeployedUser:
    email: str
    user_id: str
    change: Literal["created", "unchanged"]
    # The password set now; None when the user was already there (its password is left alone).
    password: str | None = None


@dataclass(frozen=True)
class DeployedAction:
    name: str
    id: str
    change: Literal["created", "updated", "deployed", "unchanged"]
    # The number of the version logins run now.
    version: int
    # The values set now (generated or from the environment), by name; kept values are not known here.
    secrets: dict[str, str]


@dataclass(frozen=True)
class Deployed:
    """What a deploy found and did; the values set now (client secrets, generated values) included."""

    allowed_redirect_hosts: list[str]
    hosts_changed: bool
    clients: dict[str, DeployedClient]
    users: dict[str, DeployedUser]
    actions: dict[str, DeployedAction]
    # Per trigger of the descriptor: the flow's action names, and whether this deploy set them.
    bindings: dict[str, list[str]]
    bindings_changed: list[str]

    @property
    def changes(self) -> int:
        """How many things this deploy changed (0: the tenant already matched the descriptor)."""
        parts: list[DeployedClient | DeployedUser | DeployedAction] = [
            *self.clients.values(), *self.users.values(), *self.actions.values()
        ]  # fmt: skip
        return int(self.hosts_changed) + sum(p.change != "unchanged" for p in parts) + len(self.bindings_changed)

    def as_dict(self) -> dict[str, Any]:
        """For scripts (``tollgate deploy --json``): no secret values, except a new client's secret, shown once."""
        return {
            "changes": self.changes,
            "allowed_redirect_hosts": {"hosts": self.allowed_redirect_hosts, "changed": self.hosts_changed},
            "clients": [
                {"name": c.name, "client_id": c.client_id, "callbacks": c.callbacks, "change": c.change,
                 **({"client_secret": c.client_secret} if c.client_secret else {})}
                for c in self.clients.values()
            ],
            "users": [{"email": u.email, "user_id": u.user_id, "change": u.change} for u in self.users.values()],
            "actions": [
                {"name": a.name, "id": a.id, "change": a.change, "version": a.version, "secrets_set": sorted(a.secrets)}
                for a in self.actions.values()
            ],
            "bindings": {t: {"actions": names, "changed": t in self.bindings_changed}
                         for t, names in self.bindings.items()},
        }  # fmt: skip


@dataclass(frozen=True)
class CreatedClient:
    name: str
    client_id: str
    client_secret: str
    callbacks: list[str]


@dataclass(frozen=True)
class CreatedUser:
    email: str
    user_id: str
    password: str


@dataclass(frozen=True)
class CreatedTenant:
    """A new tenant: everything in it was made now, so every value shown once (key, secrets) is here."""

    id: str
    name: str
    api_key: str
    clients: dict[str, CreatedClient]
    users: dict[str, CreatedUser]
    actions: dict[str, DeployedAction]


Report = Callable[[str], None]


def _quiet(line: str) -> None:
    """A report that goes nowhere."""


@dataclass(frozen=True)
class _Environment:
    """The values the descriptor takes from environment variables, read before the first request."""

    passwords: dict[str, str]
    secrets: dict[str, dict[str, str]]

    @classmethod
    def read(cls, descriptor: TenantDescriptor, environ: Mapping[str, str] | None) -> _Environment:
        environ = os.environ if environ is None else environ
        return cls(
            passwords={
                u.email: u.password.read(f"the password of {u.email}", environ)
                for u in descriptor.users
                if u.password.env is not None
            },
            secrets={
                a.name: {
                    n: s.read(f"the secret {n} of the action {a.name}", environ)
                    for n, s in a.secrets.items()
                    if s.env is not None
                }
                for a in descriptor.actions
            },
        )


def create_tenant(
    operator: Tollgate,
    descriptor: TenantDescriptor,
    *,
    environ: Mapping[str, str] | None = None,
    report: Report = _quiet,
) -> CreatedTenant:
    """Create the tenant `descriptor` describes, through the API, as the `operator`; `report` hears each step.

    The tenant must not exist yet. Every environment variable is read
    before the first request, so a missing one creates nothing. The rest is
    :func:`deploy` with the new tenant's key.
    """
    values = _Environment.read(descriptor, environ)
    made = operator.tenants.create(descriptor.name)
    report(f"tenant {made['name']} (id {made['id']}), with its API key")
    with Tollgate(operator.url, made["api_key"]["key"]) as tenant:
        done = _deploy(tenant, descriptor, values, update_secrets=False, report=report)
    clients = {n: CreatedClient(n, c.client_id, c.client_secret or "", c.callbacks) for n, c in done.clients.items()}
    users = {e: CreatedUser(e, u.user_id, u.password or "") for e, u in done.users.items()}
    return CreatedTenant(made["id"], made["name"], made["api_key"]["key"], clients, users, done.actions)


def deploy(
    tenant: Tollgate,
    descriptor: TenantDescriptor,
    *,
    environ: Mapping[str, str] | None = None,
    update_secrets: bool = False,
    report: Report = _quiet,
) -> Deployed:
    """Make the tenant whose key `tenant` holds match `descriptor`; `report` hears each step, in words.

    Idempotent: what already matches is left alone, so a second deploy of an
    unchanged folder changes nothing and deploys no new version.

    - allowed redirect hosts: set to exactly the descriptor's;
    - clients (by name): created when missing, their callbacks and refresh token rotation set;
    - users (by email): created when missing, otherwise left alone;
    - actions (by name): created, or their draft updated when the code, the
      trigger or the set of secret names differs, then deployed when the
      draft holds anything the deployed version does not;
    - secrets: a ``{"generate": true}`` value is made only when the action
      does not have that secret yet (when it is created, mostly) and the
      stored one is kept after; an ``{"env": …}`` value is set when the
      secret is missing, and kept otherwise unless `update_secrets` (the API
      never shows values, so a change cannot be seen: `update_secrets` sets
      them all again, and deploys the action again). Secrets the descriptor
      does not name are removed;
    - bindings: each trigger the descriptor names runs exactly its actions.

    Environment variables are read before the first request. A compile
    error raises DescriptorError with the file, line and column.
    """
    values = _Environment.read(descriptor, environ)
    return _deploy(tenant, descriptor, values, update_secrets=update_secrets, report=report)


def _deploy(
    tenant: Tollgate, descriptor: TenantDescriptor, values: _Environment, *, update_secrets: bool, report: Report
) -> Deployed:
    wanted_hosts = sorted({h.lower() for h in descriptor.allowed_redirect_hosts})
    hosts_changed = sorted(tenant.settings.get()["allowed_redirect_hosts"]) != wanted_hosts
    if hosts_changed:
        tenant.settings.update(allowed_redirect_hosts=wanted_hosts)
    report(f"allowed redirect hosts: {', '.join(wanted_hosts) or 'none'}{'' if hosts_changed else ' (unchanged)'}")
    clients = _deploy_clients(tenant, descriptor, report)
    users = _deploy_users(tenant, descriptor, values, report)
    existing = {a["name"]: a for a in tenant.actions.list_all()}
    actions = {
        a.name: _deploy_action(
            tenant,
            descriptor,
            a,
            found=existing.get(a.name),
            values=values,
            update_secrets=update_secrets,
            report=report,
        )
        for a in descriptor.actions
    }
    bindings: dict[str, list[str]] = {}
    changed: list[str] = []
    for trigger, names in descriptor.bindings.items():
        bindings[trigger] = list(names)
        same = [b["action"]["name"] for b in tenant.actions.bindings(trigger)] == names
        if not same:
            tenant.actions.update_bindings([actions[n].id for n in names], trigger=trigger)
            changed.append(trigger)
        report(f"{trigger} flow: {' -> '.join(names) or 'empty'}{' (unchanged)' if same else ''}")
    return Deployed(wanted_hosts, hosts_changed, clients, users, actions, bindings, changed)


def _deploy_clients(tenant: Tollgate, descriptor: TenantDescriptor, report: Report) -> dict[str, DeployedClient]:
    existing = {c["name"]: c for c in tenant.clients.list()}
    out = {}
    for spec in descriptor.clients:
        found = existing.get(spec.name)
        callbacks = ", ".join(spec.callbacks) or "none"
        refresh = cast(RefreshTokenSettings, spec.refresh_token.model_dump())
        if found is None:
            made = tenant.clients.create(spec.name, callbacks=spec.callbacks, refresh_token=refresh)
            out[spec.name] = DeployedClient(spec.name, made["client_id"], spec.callbacks, "created",
                                            made.get("client_secret"))  # fmt: skip
            report(f"client {spec.name!r}: created, client_id {made['client_id']}, callbacks {callbacks}, "
                   f"{spec.refresh_token.words()}")  # fmt: skip
        elif found["callbacks"] != spec.callbacks or found.get("refresh_token") != refresh:
            tenant.clients.update(found["client_id"], callbacks=spec.callbacks, refresh_token=refresh)
            out[spec.name] = DeployedClient(spec.name, found["client_id"], spec.callbacks, "updated")
            report(f"client {spec.name!r}: callbacks set to {callbacks}, {spec.refresh_token.words()}")
        else:
            out[spec.name] = DeployedClient(spec.name, found["client_id"], spec.callbacks, "unchanged")
            report(f"client {spec.name!r}: unchanged")
    return out


def _deploy_users(
    tenant: Tollgate, descriptor: TenantDescriptor, values: _Environment, report: Report
) -> dict[str, DeployedUser]:
    existing = {u["email"].lower(): u for u in tenant.users.list_all()} if descriptor.users else {}
    out = {}
    for spec in descriptor.users:
        found = existing.get(spec.email.lower())
        if found is not None:
            out[spec.email] = DeployedUser(spec.email, found["user_id"], "unchanged")
            report(f"user {spec.email}: already there, left as it is")
            continue
        password = values.passwords.get(spec.email) or secrets.token_urlsafe(32)
        user = tenant.users.create(spec.email, password=password, name=spec.name, email_verified=spec.email_verified)
        out[spec.email] = DeployedUser(spec.email, user["user_id"], "created", password)
        report(f"user {spec.email}: created ({user['user_id']}), password {_origin(spec.password)}")
    return out


def _deploy_action(
    tenant: Tollgate,
    descriptor: TenantDescriptor,
    spec: ActionSpec,
    *,
    found: Action | None,
    values: _Environment,
    update_secrets: bool,
    report: Report,
) -> DeployedAction:
    code = descriptor.code(spec).removeprefix("\ufeff")  # the API drops a byte order mark too
    stored = {s["name"] for s in found["secrets"]} if found is not None else set()
    setting: dict[str, str] = {}  # the values this deploy sets
    words = []
    for name, source in spec.secrets.items():
        if source.env is not None and (name not in stored or update_secrets):
            setting[name] = values.secrets[spec.name][name]
        elif source.generate and name not in stored:
            setting[name] = secrets.token_urlsafe(32)
        words.append(f"{name} ({_origin(source) if name in setting else 'kept'})")
    words += [f"{name} (removed)" for name in sorted(stored - set(spec.secrets))]
    secret_words = f"secrets: {', '.join(words) or 'none'}"
    try:
        if found is None:
            action = tenant.actions.create(spec.name, code, trigger=spec.trigger, secrets=setting)
            version = tenant.actions.deploy(action["id"])
            report(f"{spec.name}: created from {spec.file} (handlers {', '.join(action['handlers'])}), "
                   f"deployed as version {version['number']}")  # fmt: skip
            report(f"  {secret_words}")
            return DeployedAction(spec.name, action["id"], "created", version["number"], setting)
        changed = [
            what for what, differs in (
                ("code", found["code"] != code),
                ("trigger", found["supported_triggers"][0]["id"] != spec.trigger),
                ("secrets", bool(setting) or stored != set(spec.secrets)),
            ) if differs
        ]  # fmt: skip
        if changed:
            tenant.actions.update(
                found["id"], code=code if "code" in changed else None,
                trigger=spec.trigger if "trigger" in changed else None,
                secrets={name: setting.get(name) for name in spec.secrets} if "secrets" in changed else None,
            )  # fmt: skip
    except ApiError as exc:
        raise _compile_error(descriptor, spec, exc) from None
    if changed or not found["all_changes_deployed"] or found["deployed_version"] is None:
        version = tenant.actions.deploy(found["id"])
        if changed:
            report(f"{spec.name}: updated, deployed as version {version['number']} ({', '.join(changed)} changed)")
            if "secrets" in changed:
                report(f"  {secret_words}")
            return DeployedAction(spec.name, found["id"], "updated", version["number"], setting)
        report(f"{spec.name}: deployed as version {version['number']} (the draft held changes no version had)")
        return DeployedAction(spec.name, found["id"], "deployed", version["number"], setting)
    number = found["deployed_version"]["number"]
    report(f"{spec.name}: unchanged (version {number})")
    return DeployedAction(spec.name, found["id"], "unchanged", number, setting)


def _compile_error(descriptor: TenantDescriptor, spec: ActionSpec, exc: ApiError) -> Exception:
    """A refused action as a DescriptorError naming its file (with line and column); other errors as they are."""
    return DescriptorError(exc.at(str(descriptor.folder / spec.file))) if exc.status == 400 else exc


def _origin(source: Source) -> str:
    return "generated now" if source.env is None else f"from ${source.env}"
