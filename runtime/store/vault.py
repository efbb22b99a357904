"""Tenants' data keys: created on first use, stored wrapped, cached unwrapped in memory."""

from __future__ import annotations

import threading
import uuid

from psycopg_pool import AsyncConnectionPool

from runtime.store.base import Conn, Repository
from runtime.vault import MasterKeyMissing, MasterKeyring, new_data_key

__all__ = ["DataKeys"]


class DataKeys(Repository):
    """Per-tenant data keys, wrapped by the master keyring."""

    def __init__(self, pool: AsyncConnectionPool[Conn], keyring: MasterKeyring | None) -> None:
        super().__init__(pool)
        self.keyring = keyring
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], bytes] = {}

    def _require_keyring(self) -> MasterKeyring:
        if self.keyring is None:
            raise MasterKeyMissing("no master key is configured (TOLLGATE_MASTER_KEY)")
        return self.keyring

    async def current(self, conn: Conn, tenant_id: uuid.UUID) -> tuple[int, bytes]:
        """The tenant's newest data key (made now if the tenant has none): (version, key)."""
        row = await (
            await conn.execute(
                "SELECT version, master_key_id, wrapped_key FROM tenant_data_keys"
                " WHERE tenant_id = %s ORDER BY version DESC LIMIT 1",
                (tenant_id,),
            )
        ).fetchone()
        if row is None:
            keyring = self._require_keyring()
            master_id, wrapped = keyring.wrap(str(tenant_id), 1, new_data_key())
            await conn.execute(
                "INSERT INTO tenant_data_keys (tenant_id, version, master_key_id, wrapped_key)"
                " VALUES (%s, 1, %s, %s) ON CONFLICT DO NOTHING",
                (tenant_id, master_id, wrapped),
            )
            return await self.current(conn, tenant_id)
        version = int(row["version"])
        return version, self._unwrap(tenant_id, version, row["master_key_id"], row["wrapped_key"])

    async def get(self, conn: Conn, tenant_id: uuid.UUID, version: int) -> bytes:
        cached = self._cache.get((str(tenant_id), version))
        if cached is not None:
            return cached
        row = await (
            await conn.execute(
                "SELECT master_key_id, wrapped_key FROM tenant_data_keys WHERE tenant_id = %s AND version = %s",
                (tenant_id, version),
            )
        ).fetchone()
        if row is None:
            raise MasterKeyMissing(f"the tenant has no data key version {version}")
        return self._unwrap(tenant_id, version, row["master_key_id"], row["wrapped_key"])

    def _unwrap(self, tenant_id: uuid.UUID, version: int, master_key_id: str, wrapped: bytes) -> bytes:
        key = (str(tenant_id), version)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        data_key = self._require_keyring().unwrap(master_key_id, str(tenant_id), version, bytes(wrapped))
        with self._lock:
            self._cache[key] = data_key
        return data_key

    async def any_exist(self) -> bool:
        async with self.transaction() as conn:
            row = await (await conn.execute("SELECT EXISTS (SELECT 1 FROM tenant_data_keys) AS any")).fetchone()
            return bool(row and row["any"])

    async def master_key_ids(self) -> set[str]:
        """The master keys the stored data keys are wrapped with."""
        async with self.transaction() as conn:
            rows = await (await conn.execute("SELECT DISTINCT master_key_id FROM tenant_data_keys")).fetchall()
            return {str(r["master_key_id"]) for r in rows}

    async def rewrap_all(self, keyring: MasterKeyring) -> int:
        """Re-wrap every data key with `keyring`'s current key; the number re-wrapped.

        Each key is unwrapped with whichever key of the ring wrapped it, so the
        ring must hold both the new key (first) and the old one.
        """
        count = 0
        async with self.transaction() as conn:
            rows = await (
                await conn.execute(
                    "SELECT tenant_id, version, master_key_id, wrapped_key FROM tenant_data_keys FOR UPDATE"
                )
            ).fetchall()
            for row in rows:
                if row["master_key_id"] == keyring.current_id:
                    continue
                tenant_id, version = str(row["tenant_id"]), int(row["version"])
                data_key = keyring.unwrap(row["master_key_id"], tenant_id, version, bytes(row["wrapped_key"]))
                master_id, wrapped = keyring.wrap(tenant_id, version, data_key)
                await conn.execute(
                    "UPDATE tenant_data_keys SET master_key_id = %s, wrapped_key = %s"
                    " WHERE tenant_id = %s AND version = %s",
                    (master_id, wrapped, row["tenant_id"], version),
                )
                count += 1
        self.keyring = keyring
        return count
