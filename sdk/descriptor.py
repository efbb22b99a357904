"""A tenant described in one folder: ``tenants/<name>/tenant.json`` and the action files next to it.

The format is documented in ``tenants/README.md``. This module reads and
checks a descriptor (:func:`load`) and creates the tenant it describes
through the management API (:func:`create_tenant`), reporting each step in
words. Secret values and passwords are never written in the descriptor:
each names where its value comes from (``{"generate": true}`` or
``{"env": "NAME"}``), and the values resolved are returned to the caller,
which needs them to configure whatever shares them (the demo's
verification page holds the action's ``SESSION_TOKEN_SECRET``).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, PrivateAttr, StringConstraints, ValidationError, model_validator

from sdk.client import Tollgate

__all__ = [
    "CreatedAction",
    "CreatedClient",
    "CreatedTenant",
    "CreatedUser",
    "DescriptorError",
    "TenantDescriptor",
    "create_tenant",
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

    def resolve(self, where: str, environ: Mapping[str, str]) -> str:
        if self.env is None:
            return secrets.token_urlsafe(32)
        value = environ.get(self.env)
        if not value:
            raise DescriptorError(f"{where} comes from the environment variable {self.env}, which is not set")
        return value


class ClientSpec(_Strict):
    name: Text
    callbacks: list[Text] = []


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
class CreatedAction:
    name: str
    id: str
    version: int
    # The values the action was deployed with, by name.
    secrets: dict[str, str]


@dataclass(frozen=True)
class CreatedTenant:
    """What was created, with the values shown only once (API key, client secrets) or resolved here."""

    id: str
    name: str
    api_key: str
    clients: dict[str, CreatedClient]
    users: dict[str, CreatedUser]
    actions: dict[str, CreatedAction]


def create_tenant(
    operator: Tollgate,
    descriptor: TenantDescriptor,
    *,
    environ: Mapping[str, str] | None = None,
    report: Callable[[str], None] = lambda line: None,
) -> CreatedTenant:
    """Create the tenant `descriptor` describes, through the API, as the `operator`; `report` hears each step.

    Every value is resolved before the first request, so a missing
    environment variable creates nothing. The tenant must not exist yet.
    """
    environ = os.environ if environ is None else environ
    passwords = {u.email: u.password.resolve(f"the password of {u.email}", environ) for u in descriptor.users}
    values = {
        a.name: {n: s.resolve(f"the secret {n} of the action {a.name}", environ) for n, s in a.secrets.items()}
        for a in descriptor.actions
    }
    made = operator.tenants.create(descriptor.name)
    report(f"tenant {made['name']} (id {made['id']}), with its API key")
    with Tollgate(operator.url, made["api_key"]["key"]) as tenant:
        if descriptor.allowed_redirect_hosts:
            hosts = tenant.settings.update(allowed_redirect_hosts=descriptor.allowed_redirect_hosts)
            report(f"allowed redirect hosts: {', '.join(hosts['allowed_redirect_hosts'])}")
        clients = {}
        for c in descriptor.clients:
            client = tenant.clients.create(c.name, callbacks=c.callbacks)
            clients[c.name] = CreatedClient(c.name, client["client_id"], client["client_secret"], c.callbacks)
            report(f"client {c.name!r}: client_id {client['client_id']}, callbacks {', '.join(c.callbacks) or 'none'}")
        users = {}
        for u in descriptor.users:
            password = passwords[u.email]
            user = tenant.users.create(u.email, password=password, name=u.name, email_verified=u.email_verified)
            users[u.email] = CreatedUser(u.email, user["user_id"], password)
            report(f"user {u.email} ({user['user_id']}), password {_origin(u.password)}")
        actions = {}
        for a in descriptor.actions:
            action = tenant.actions.create(a.name, descriptor.code(a), trigger=a.trigger, secrets=values[a.name])
            version = tenant.actions.deploy(action["id"])
            actions[a.name] = CreatedAction(a.name, action["id"], version["number"], values[a.name])
            report(f"action {a.name} from {a.file}: compiled, handlers {', '.join(action['handlers'])}")
            secret_words = ", ".join(f"{n} ({_origin(s)})" for n, s in a.secrets.items()) or "no secrets"
            report(f"  secrets: {secret_words}; deployed as version {version['number']}")
        for trigger, names in descriptor.bindings.items():
            bound = tenant.actions.update_bindings([actions[n].id for n in names], trigger=trigger)
            report(f"{trigger} flow: {' -> '.join(b['action']['name'] for b in bound) or 'empty'}")
    return CreatedTenant(made["id"], made["name"], made["api_key"]["key"], clients, users, actions)


def _origin(source: Source) -> str:
    return "generated now" if source.env is None else f"from ${source.env}"
