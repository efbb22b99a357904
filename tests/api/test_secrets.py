"""Secrets are write-only, encrypted at rest, bound to their row, and survive master-key rotation."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
import pytest

from runtime.api.services import StartupError, check_keyring
from runtime.config import Settings
from runtime.store import Store
from runtime.vault import MasterKeyring
from tests.fix_api import TenantClient

TRIGGER = [{"id": "post-login", "version": "v3"}]
SHOW = "exports.onExecutePostLogin = async (event, api) => { console.log(JSON.stringify(event.secrets)); };"


def make(t: TenantClient, name: str, secrets: list[dict[str, Any]]) -> dict[str, Any]:
    reply = t.post(
        "/api/v2/actions/actions", json={"name": name, "supported_triggers": TRIGGER, "code": SHOW, "secrets": secrets}
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def seen_secrets(t: TenantClient, action_id: str) -> Any:
    payload = t.post(f"/api/v2/actions/actions/{action_id}/test", json={"payload": {}}).json()["payload"]
    if payload["error"]:
        return payload["error"]
    import json

    return json.loads(payload["logs"][0]["message"])


def test_secret_values_are_never_returned(tenant: TenantClient, caplog: pytest.LogCaptureFixture) -> None:
    """Responses list names and update times only; the value is in no response and no log line."""
    caplog.set_level(logging.DEBUG)
    value = "very-secret-value-" + "q" * 20
    action = make(tenant, "s", [{"name": "API_KEY", "value": value}])
    responses = [
        tenant.get(f"/api/v2/actions/actions/{action['id']}"),
        tenant.get("/api/v2/actions/actions"),
        tenant.post(f"/api/v2/actions/actions/{action['id']}/deploy"),
        tenant.get(f"/api/v2/actions/actions/{action['id']}/versions"),
    ]
    for reply in responses:
        assert reply.status_code == 200
        assert value not in reply.text
    assert set(responses[0].json()["secrets"][0]) == {"name", "updated_at"}
    assert value not in caplog.text


def test_secrets_are_encrypted_at_rest(tenant: TenantClient, database_url: str) -> None:
    """The stored row holds AES-GCM ciphertext: no plaintext, and a fresh nonce each time."""
    value = "plaintext-that-must-not-be-stored"
    first = make(tenant, "e1", [{"name": "S", "value": value}])
    second = make(tenant, "e2", [{"name": "S", "value": value}])
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT ciphertext FROM action_secrets WHERE action_id = ANY(%s) AND scope = 'draft'",
            ([first["id"], second["id"]],),
        ).fetchall()
    blobs = [bytes(r[0]) for r in rows]
    assert len(blobs) == 2
    assert all(value.encode() not in blob for blob in blobs)
    assert blobs[0] != blobs[1]
    assert seen_secrets(tenant, first["id"]) == {"S": value}


def test_a_ciphertext_moved_to_another_tenant_fails_closed(make_tenant: Any, database_url: str) -> None:
    """Copying tenant A's ciphertext into tenant B's row does not reveal A's value to B."""
    alice, bob = make_tenant(), make_tenant()
    a = make(alice, "a", [{"name": "TOKEN", "value": "alice-only"}])
    b = make(bob, "b", [{"name": "TOKEN", "value": "bob-value"}])
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE action_secrets SET ciphertext = (SELECT ciphertext FROM action_secrets WHERE action_id = %s"
            " AND scope = 'draft' AND name = 'TOKEN') WHERE action_id = %s AND scope = 'draft' AND name = 'TOKEN'",
            (a["id"], b["id"]),
        )
    reply = bob.post(f"/api/v2/actions/actions/{b['id']}/test", json={"payload": {}})
    assert reply.status_code == 500
    assert reply.json()["errorCode"] == "secrets_unreadable"
    assert "alice-only" not in reply.text
    assert seen_secrets(alice, a["id"]) == {"TOKEN": "alice-only"}


def test_a_ciphertext_moved_to_another_name_fails_closed(tenant: TenantClient, database_url: str) -> None:
    """Within one action, a ciphertext copied under another secret's name does not decrypt."""
    action = make(tenant, "names", [{"name": "A", "value": "a-value"}, {"name": "B", "value": "b-value"}])
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE action_secrets SET ciphertext = (SELECT ciphertext FROM action_secrets WHERE action_id = %s"
            " AND scope = 'draft' AND name = 'A') WHERE action_id = %s AND scope = 'draft' AND name = 'B'",
            (action["id"], action["id"]),
        )
    reply = tenant.post(f"/api/v2/actions/actions/{action['id']}/test", json={"payload": {}})
    assert reply.status_code == 500 and reply.json()["errorCode"] == "secrets_unreadable"


def test_updating_secrets_keeps_named_values_and_removes_the_rest(tenant: TenantClient) -> None:
    """PATCH secrets is the whole set: a name without a value keeps its stored value; omitted names go."""
    action = make(tenant, "upd", [{"name": "KEEP", "value": "k1"}, {"name": "DROP", "value": "d1"}])
    reply = tenant.patch(
        f"/api/v2/actions/actions/{action['id']}", json={"secrets": [{"name": "KEEP"}, {"name": "NEW", "value": "n1"}]}
    )
    assert reply.status_code == 200
    assert sorted(s["name"] for s in reply.json()["secrets"]) == ["KEEP", "NEW"]
    assert seen_secrets(tenant, action["id"]) == {"KEEP": "k1", "NEW": "n1"}
    missing = tenant.patch(f"/api/v2/actions/actions/{action['id']}", json={"secrets": [{"name": "NEVER_SET"}]})
    assert missing.status_code == 409 and "NEVER_SET" in missing.json()["message"]


def test_a_deployed_version_keeps_its_secrets_snapshot(tenant: TenantClient) -> None:
    """Changing the draft's secrets does not change what a deployed version has."""
    action = make(tenant, "snap", [{"name": "S", "value": "old"}])
    version = tenant.post(f"/api/v2/actions/actions/{action['id']}/deploy").json()
    tenant.patch(f"/api/v2/actions/actions/{action['id']}", json={"secrets": [{"name": "S", "value": "new"}]})
    assert seen_secrets(tenant, action["id"]) == {"S": "new"}
    assert [s["name"] for s in version["secrets"]] == ["S"]


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        ([{"name": f"S{i}", "value": "v"} for i in range(31)], "at most 30"),
        ([{"name": "N" * 129, "value": "v"}], "at most 128"),
        ([{"name": "S", "value": "v" * 4097}], "at most 4096"),
        ([{"name": "S"}], "needs a value"),
        ([{"name": "S", "value": "a"}, {"name": "S", "value": "b"}], "appears twice"),
    ],
)
def test_secret_limits(tenant: TenantClient, secrets: list[dict[str, Any]], message: str) -> None:
    """30 secrets, names of at most 128 and values of at most 4,096 characters; each refusal says why."""
    reply = tenant.post(
        "/api/v2/actions/actions", json={"name": "lim", "supported_triggers": TRIGGER, "code": SHOW, "secrets": secrets}
    )
    assert reply.status_code in (400, 409)
    assert message in reply.json()["message"]


def test_master_key_rotation_rewraps_data_keys(tenant: TenantClient, settings: Settings) -> None:
    """After rotation a keyring with only the new key reads every secret; one with only the old key cannot."""
    action = make(tenant, "rotate", [{"name": "S", "value": "survives rotation"}])
    assert settings.database_url is not None and settings.master_key is not None
    old = MasterKeyring.parse(settings.master_key)
    new_text = MasterKeyring.generate_text()

    async def rotate_and_read() -> tuple[int, dict[str, str]]:
        ring = MasterKeyring.parse(new_text + "," + settings.master_key)  # type: ignore[operator]
        store = await Store.open(settings.database_url, ring)  # type: ignore[arg-type]
        try:
            count = await store.data_keys.rewrap_all(ring)
        finally:
            await store.close()
        only_new = await Store.open(settings.database_url, MasterKeyring.parse(new_text))  # type: ignore[arg-type]
        try:
            await check_keyring(only_new, only_new.data_keys.keyring)
            values = await only_new.actions.secret_values(tenant.id, action["id"])
        finally:
            await only_new.close()
        only_old = await Store.open(settings.database_url, old)  # type: ignore[arg-type]
        try:
            with pytest.raises(StartupError, match="does not hold the key"):
                await check_keyring(only_old, old)
        finally:
            await only_old.close()
        # Put the session's key back first, for the other tests.
        back = MasterKeyring.parse(settings.master_key + "," + new_text)  # type: ignore[operator]
        store = await Store.open(settings.database_url, back)  # type: ignore[arg-type]
        try:
            await store.data_keys.rewrap_all(back)
        finally:
            await store.close()
        return count, values

    count, values = asyncio.run(rotate_and_read())
    assert count >= 1
    assert values == {"S": "survives rotation"}


def test_the_service_refuses_to_start_without_the_key_to_its_secrets(tenant: TenantClient, settings: Settings) -> None:
    """With secrets stored, no master key (or a malformed one) means no start."""
    make(tenant, "needs-key", [{"name": "S", "value": "x"}])

    async def check(keyring: MasterKeyring | None) -> None:
        store = await Store.open(settings.database_url, keyring)  # type: ignore[arg-type]
        try:
            await check_keyring(store, keyring)
        finally:
            await store.close()

    with pytest.raises(StartupError, match="no master key is set"):
        asyncio.run(check(None))
    with pytest.raises(StartupError, match="does not hold the key"):
        asyncio.run(check(MasterKeyring.parse(MasterKeyring.generate_text())))
