"""api.cache, backed by PostgreSQL: per tenant and trigger, with the hosted product's limits.

An execution gets the live entries with its request and returns its changes
as commands; :meth:`Cache.apply` writes them, checking the limits again (the
guest's checks are not trusted), and :meth:`Cache.sweep` deletes expired rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from runtime.store.base import Repository, expired_rows, parse_id

__all__ = ["CACHE_LIMITS", "Cache"]

log = logging.getLogger(__name__)

CACHE_LIMITS = {"key_bytes": 64, "value_bytes": 4096, "entries": 20, "total_bytes": 8192, "max_ttl_ms": 86_400_000}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _moment(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class Cache(Repository):
    """Cache entries of one tenant and trigger."""

    async def live(self, tenant_id: str, trigger_id: str, now_ms: float | None = None) -> dict[str, dict[str, Any]]:
        """The entries not yet expired, as executions take them: {key: {value, expires_at}}."""
        tid = parse_id(tenant_id, "tenant")
        now = _moment(now_ms if now_ms is not None else time.time() * 1000)
        async with self.statement() as conn:
            rows = await (
                await conn.execute(
                    "SELECT key, value, expires_at FROM cache_entries"
                    " WHERE tenant_id = %s AND trigger_id = %s AND expires_at > %s ORDER BY key",
                    (tid, trigger_id, now),
                )
            ).fetchall()
        return {r["key"]: {"value": r["value"], "expires_at": _ms(r["expires_at"])} for r in rows}

    async def apply(
        self, tenant_id: str, trigger_id: str, commands: Iterable[dict[str, Any]], now_ms: float | None = None
    ) -> int:
        """Write an execution's cache_set and cache_delete commands; the number applied.

        A set that breaks a limit (key or value size, expiry, 20 entries, 8 KB
        in total, counting entries other executions wrote meanwhile) is dropped.
        """
        tid = parse_id(tenant_id, "tenant")
        now = now_ms if now_ms is not None else time.time() * 1000
        applied = 0
        async with self.transaction() as conn:
            rows = await (
                await conn.execute(
                    "SELECT key, value FROM cache_entries WHERE tenant_id = %s AND trigger_id = %s"
                    " AND expires_at > %s FOR UPDATE",
                    (tid, trigger_id, _moment(now)),
                )
            ).fetchall()
            entries = {r["key"]: r["value"] for r in rows}
            for command in commands:
                kind = command.get("type")
                key = command.get("key")
                if not isinstance(key, str):
                    continue
                if kind == "cache_delete":
                    await conn.execute(
                        "DELETE FROM cache_entries WHERE tenant_id = %s AND trigger_id = %s AND key = %s",
                        (tid, trigger_id, key),
                    )
                    entries.pop(key, None)
                    applied += 1
                    continue
                if kind != "cache_set":
                    continue
                value, expires_at = command.get("value"), command.get("expires_at")
                candidate = {**entries, key: value}
                if not (
                    isinstance(value, str)
                    and isinstance(expires_at, int | float)
                    and len(key.encode()) <= CACHE_LIMITS["key_bytes"]
                    and len(value.encode()) <= CACHE_LIMITS["value_bytes"]
                    and now < expires_at <= now + CACHE_LIMITS["max_ttl_ms"]
                    and len(candidate) <= CACHE_LIMITS["entries"]
                    and sum(len(k.encode()) + len(v.encode()) for k, v in candidate.items())
                    <= CACHE_LIMITS["total_bytes"]
                ):
                    log.warning("dropped a cache write that breaks the cache's limits")
                    continue
                await conn.execute(
                    "INSERT INTO cache_entries (tenant_id, trigger_id, key, value, expires_at)"
                    " VALUES (%s, %s, %s, %s, %s)"
                    " ON CONFLICT (tenant_id, trigger_id, key) DO UPDATE SET value = excluded.value,"
                    " expires_at = excluded.expires_at",
                    (tid, trigger_id, key, value, _moment(float(expires_at))),
                )
                entries = candidate
                applied += 1
        return applied

    async def sweep(self, now_ms: float | None = None) -> int:
        """Delete expired entries of every tenant; the number deleted."""
        now = _moment(now_ms if now_ms is not None else time.time() * 1000)
        return await self.delete_in_batches(expired_rows("cache_entries", "expires_at", "%(now)s"), {"now": now})
