"""The management API for the test session: one app (with two executors) and helpers to make tenants."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from runtime.api.app import create_app
from runtime.config import Settings
from runtime.vault import MasterKeyring

OPERATOR_KEY = "tgo_test_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class TenantClient:
    """A tenant made for one test, with its key's headers."""

    id: str
    name: str
    key: str
    client: TestClient

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.client.post(path, headers=self.headers, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.client.patch(path, headers=self.headers, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.client.delete(path, headers=self.headers, **kwargs)


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url,
        home=Path(tmp_path_factory.mktemp("tollgate-home")),
        master_key=MasterKeyring.generate_text(),
        operator_key=OPERATOR_KEY,
        executors=2,
    )


@pytest.fixture(scope="session")
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="session")
def operator_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR_KEY}"}


@pytest.fixture
def make_tenant(api: TestClient, operator_headers: dict[str, str]) -> Any:
    def make(name: str | None = None) -> TenantClient:
        name = name or f"tenant-{secrets.token_hex(4)}"
        reply = api.post("/api/v2/tenants", json={"name": name}, headers=operator_headers)
        assert reply.status_code == 201, reply.text
        body = reply.json()
        return TenantClient(body["id"], name, body["api_key"]["key"], api)

    return make


@pytest.fixture
def tenant(make_tenant: Any) -> TenantClient:
    made: TenantClient = make_tenant()
    return made
