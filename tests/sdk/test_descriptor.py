"""Tenant descriptors (tenants/*/tenant.json): the seed's loads, mistakes are named, nothing is half created."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest

from sdk.client import Tollgate
from sdk.descriptor import DescriptorError, create_tenant, load
from tests.conftest import ACME


def test_the_seed_descriptor_loads() -> None:
    descriptor = load(ACME)
    assert descriptor.name == "acme-bank"
    assert descriptor.allowed_redirect_hosts == ["verify.acme-bank.example"]
    assert descriptor.bindings == {"post-login": ["custom-factor"]}
    action = descriptor.actions[0]
    assert action.secrets["SESSION_TOKEN_SECRET"].generate is True
    assert "onContinuePostLogin" in descriptor.code(action)
    assert all(u.password.generate for u in descriptor.users)


def _write(folder: Path, data: Any) -> Path:
    (folder / "tenant.json").write_text(json.dumps(data))
    return folder


ACTION = {"name": "factor", "file": "factor.js", "secrets": {"S": {"generate": True}}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "t", "users": [{"email": "a@example.com"}]}, "users[0].password: Field required"),
        ({"name": "t", "actions": [{**ACTION, "secrets": {"S": {"generate": True, "env": "S"}}}]},
         'actions[0].secrets.S: give exactly one of {"generate": true} or {"env": "VARIABLE_NAME"}'),
        ({"name": "t", "actions": [{**ACTION, "secrets": {"S": "literal-value"}}]}, "actions[0].secrets.S"),
        ({"name": "t", "actions": [ACTION], "bindings": {"post-login": ["other"]}},
         "bindings.post-login names actions the descriptor does not have: other"),
        ({"name": "t", "clients": [{"name": "app", "secret": "x"}]}, "clients[0].secret: Extra inputs are not permitted"),
        ({"name": "t", "actions": [{**ACTION, "file": "missing.js"}]}, "names the file"),
        (["not", "an", "object"], "must hold a JSON object"),
    ],
)  # fmt: skip
def test_mistakes_are_named_with_where_they_are(tmp_path: Path, data: Any, message: str) -> None:
    (tmp_path / "factor.js").write_text("exports.onExecutePostLogin = async () => {};")
    with pytest.raises(DescriptorError) as caught:
        load(_write(tmp_path, data))
    assert message in str(caught.value)


def test_a_folder_without_a_descriptor(tmp_path: Path) -> None:
    with pytest.raises(DescriptorError, match=r"there is no tenant\.json in"):
        load(tmp_path)


def test_a_missing_environment_variable_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "factor.js").write_text("exports.onExecutePostLogin = async () => {};")
    descriptor = load(_write(tmp_path, {"name": "t", "actions": [{**ACTION, "secrets": {"S": {"env": "ACME_S"}}}]}))
    requests: list[httpx2.Request] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        return httpx2.Response(500)

    operator = Tollgate("http://tollgate.test", "tgo_key", transport=httpx2.MockTransport(handle))
    with pytest.raises(DescriptorError, match="the environment variable ACME_S, which is not set"):
        create_tenant(operator, descriptor, environ={})
    assert requests == []
