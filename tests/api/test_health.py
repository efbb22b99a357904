"""Health checks: /healthz while the process serves; /readyz says whether logins can be served, and why not."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from runtime.api import health
from runtime.api.app import create_app
from runtime.config import Settings
from runtime.vault import MasterKeyring
from tests.fix_db import allow_connections


def test_liveness_needs_no_key(api: TestClient) -> None:
    reply = api.get("/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}
    assert reply.headers["cache-control"] == "no-store"


def test_ready_with_the_database_and_executors(api: TestClient) -> None:
    reply = api.get("/readyz")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["executors"]["ok"] is True
    assert body["checks"]["executors"]["alive"] == body["checks"]["executors"]["size"] == 2
    assert isinstance(body["checks"]["execution_records_waiting"], int)


def test_not_ready_while_the_database_refuses_then_ready_again(
    new_database: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database stops taking connections (and drops the open ones): 503 naming the database, in
    words, with no driver error in it; once it takes them again, 200 again."""
    monkeypatch.setattr(health, "DATABASE_TIMEOUT_S", 0.5)
    url: str = new_database()

    settings = Settings(database_url=url, home=tmp_path, master_key=MasterKeyring.generate_text(),
                        operator_key="tgo_" + secrets.token_urlsafe(32), executors=1)  # fmt: skip
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code == 200
        allow_connections(url, False)
        try:
            refused = client.get("/readyz")
            assert client.get("/healthz").status_code == 200  # alive, not ready
        finally:
            allow_connections(url, True)
        assert refused.status_code == 503
        body = refused.json()
        assert body["status"] == "not_ready"
        assert body["checks"]["database"] == {"ok": False, "message": "the database did not answer within 0.5 s"}
        assert body["checks"]["executors"]["ok"] is True
        # Back: ready as soon as the pool has connected again (its reconnection backs off after failures).
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "not ready again 30 s after the database came back"
            time.sleep(0.2)
