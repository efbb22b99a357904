"""api.cache in PostgreSQL: live entries in, commands applied with the limits checked again, expired rows swept."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from runtime.store import Store
from runtime.vault import MasterKeyring

NOW = 1_800_000_000_000.0


@pytest.fixture
def store_and_tenant(database_url: str, api: Any) -> Any:
    """The session database (already migrated by the API fixture) and a fresh tenant."""

    async def make() -> tuple[Store, str]:
        store = await Store.open(database_url, MasterKeyring.parse(MasterKeyring.generate_text()))
        tenant, _, _ = await store.tenants.create(f"cache-{uuid.uuid4().hex[:12]}")
        return store, tenant.id

    return make


def test_writes_reads_and_expiry(store_and_tenant: Any) -> None:
    """Sets and deletes apply; get returns live entries only; the sweep deletes expired rows."""

    async def scenario() -> tuple[Any, ...]:
        store, tid = await store_and_tenant()
        try:
            applied = await store.cache.apply(tid, "post-login", [
                {"type": "cache_set", "key": "a", "value": "1", "expires_at": NOW + 1000},
                {"type": "cache_set", "key": "b", "value": "2", "expires_at": NOW + 60_000},
                {"type": "cache_delete", "key": "b"},
                {"type": "cache_set", "key": "c", "value": "3", "expires_at": NOW + 500},
            ], now_ms=NOW)  # fmt: skip
            live_now = await store.cache.live(tid, "post-login", now_ms=NOW)
            live_later = await store.cache.live(tid, "post-login", now_ms=NOW + 700)
            other_trigger = await store.cache.live(tid, "credentials-exchange", now_ms=NOW)
            swept = await store.cache.sweep(now_ms=NOW + 2000)
            return applied, live_now, live_later, other_trigger, swept
        finally:
            await store.close()

    applied, live_now, live_later, other, swept = asyncio.run(scenario())
    assert applied == 4
    assert live_now == {
        "a": {"value": "1", "expires_at": int(NOW) + 1000},
        "c": {"value": "3", "expires_at": int(NOW) + 500},
    }
    assert set(live_later) == {"a"}
    assert other == {}
    assert swept >= 2


@pytest.mark.parametrize(
    "command",
    [
        {"type": "cache_set", "key": "k" * 65, "value": "v", "expires_at": NOW + 1000},
        {"type": "cache_set", "key": "k", "value": "v" * 4097, "expires_at": NOW + 1000},
        {"type": "cache_set", "key": "k", "value": "v", "expires_at": NOW - 1},
        {"type": "cache_set", "key": "k", "value": "v", "expires_at": NOW + 25 * 3600 * 1000},
        {"type": "cache_set", "key": "k", "value": 5, "expires_at": NOW + 1000},
    ],
    ids=["long-key", "long-value", "expired", "too-far", "not-text"],
)
def test_writes_breaking_the_limits_are_dropped(store_and_tenant: Any, command: dict[str, Any]) -> None:
    """The host checks again what the guest checked: a bad write is dropped, not stored."""

    async def scenario() -> tuple[int, dict[str, Any]]:
        store, tid = await store_and_tenant()
        try:
            return await store.cache.apply(tid, "post-login", [command], now_ms=NOW), await store.cache.live(
                tid, "post-login", now_ms=NOW
            )
        finally:
            await store.close()

    assert asyncio.run(scenario()) == (0, {})


def test_the_cache_holds_twenty_entries(store_and_tenant: Any) -> None:
    """The 21st entry of a tenant's trigger is dropped."""

    async def scenario() -> int:
        store, tid = await store_and_tenant()
        try:
            commands = [
                {"type": "cache_set", "key": f"k{i}", "value": "v", "expires_at": NOW + 1000} for i in range(21)
            ]
            await store.cache.apply(tid, "post-login", commands, now_ms=NOW)
            return len(await store.cache.live(tid, "post-login", now_ms=NOW))
        finally:
            await store.close()

    assert asyncio.run(scenario()) == 20
