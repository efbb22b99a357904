"""Tenants, their settings, and the API keys of tenants and the operator."""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import secrets
import time
import uuid
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from runtime.store.base import Conn, Repository, new_id, parse_id
from runtime.store.errors import Conflict, NotFound
from runtime.store.records import ApiKey, Principal, Tenant

__all__ = ["KEY_PREFIXES", "Keys", "Tenants", "hash_key"]

KEY_PREFIXES = {"tenant": "tgt_", "operator": "tgo_"}
# How long a found key is trusted without asking the database again, and how many are kept.
KEY_CACHE_S = 5.0
KEY_CACHE_SIZE = 10_000


def hash_key(plaintext: str) -> bytes:
    """How keys are stored: SHA-256 (keys carry 256 random bits, so no slow hash is needed)."""
    return hashlib.sha256(plaintext.encode()).digest()


def _new_key(kind: str) -> str:
    return KEY_PREFIXES[kind] + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _tenant(row: dict[str, Any]) -> Tenant:
    return Tenant(
        id=str(row["id"]),
        name=row["name"],
        limits=dict(row["limits"]),
        allowed_redirect_hosts=list(row["allowed_redirect_hosts"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _key(row: dict[str, Any]) -> ApiKey:
    return ApiKey(
        id=str(row["id"]),
        tenant_id=str(row["tenant_id"]) if row["tenant_id"] else None,
        kind=row["kind"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class Tenants(Repository):
    """Tenants: created and managed by the operator; settings by the tenant itself."""

    async def create(self, name: str) -> tuple[Tenant, ApiKey, str]:
        """A new tenant with its first API key: (tenant, key, the key's text, shown once)."""
        async with self.transaction() as conn:
            exists = await (await conn.execute("SELECT 1 FROM tenants WHERE name = %s", (name,))).fetchone()
            if exists:
                raise Conflict(f"a tenant named {name!r} already exists")
            row = await (
                await conn.execute(
                    "INSERT INTO tenants (id, name) VALUES (%s, %s) RETURNING *",
                    (new_id(), name),
                )
            ).fetchone()
            assert row is not None
            key, text = await Keys.insert(conn, "tenant", row["id"])
            return _tenant(row), key, text

    async def list(self) -> list[Tenant]:
        async with self.transaction() as conn:
            rows = await (await conn.execute("SELECT * FROM tenants ORDER BY created_at, name")).fetchall()
            return [_tenant(r) for r in rows]

    async def get(self, tenant_id: str) -> Tenant:
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            row = await (await conn.execute("SELECT * FROM tenants WHERE id = %s", (tid,))).fetchone()
            if row is None:
                raise NotFound(f"no tenant with the id {tenant_id!r}")
            return _tenant(row)

    async def by_name(self, name: str) -> Tenant:
        """The tenant a public URL names (``/t/{name}/``)."""
        if "\x00" in name:  # no name holds one (PostgreSQL's text cannot)
            raise NotFound("no tenant has a NUL character in its name")
        async with self.transaction() as conn:
            row = await (await conn.execute("SELECT * FROM tenants WHERE name = %s", (name,))).fetchone()
            if row is None:
                raise NotFound(f"no tenant named {name!r}")
            return _tenant(row)

    async def update(self, tenant_id: str, *, name: str | None = None, limits: dict[str, int] | None = None) -> Tenant:
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            if name is not None:
                clash = await (
                    await conn.execute("SELECT 1 FROM tenants WHERE name = %s AND id <> %s", (name, tid))
                ).fetchone()
                if clash:
                    raise Conflict(f"a tenant named {name!r} already exists")
            row = await (
                await conn.execute(
                    "UPDATE tenants SET name = coalesce(%s, name), limits = coalesce(%s, limits),"
                    " updated_at = now() WHERE id = %s RETURNING *",
                    (name, Jsonb(limits) if limits is not None else None, tid),
                )
            ).fetchone()
            if row is None:
                raise NotFound(f"no tenant with the id {tenant_id!r}")
            return _tenant(row)

    async def set_redirect_hosts(self, tenant_id: str, hosts: builtins.list[str]) -> Tenant:
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            row = await (
                await conn.execute(
                    "UPDATE tenants SET allowed_redirect_hosts = %s, updated_at = now() WHERE id = %s RETURNING *",
                    (hosts, tid),
                )
            ).fetchone()
            if row is None:
                raise NotFound(f"no tenant with the id {tenant_id!r}")
            return _tenant(row)

    async def delete(self, tenant_id: str) -> None:
        """Delete a tenant and everything it owns."""
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            # Bindings reference actions, and secrets the tenant's data keys, without cascading: clear them first
            # (the cascades from tenants reach the data keys and the secrets in no set order).
            await conn.execute("DELETE FROM bindings WHERE tenant_id = %s", (tid,))
            await conn.execute("DELETE FROM action_secrets WHERE tenant_id = %s", (tid,))
            result = await conn.execute("DELETE FROM tenants WHERE id = %s", (tid,))
            if result.rowcount == 0:
                raise NotFound(f"no tenant with the id {tenant_id!r}")


class Keys(Repository):
    """API keys: random, shown once, stored hashed, compared in constant time, revocable."""

    def __init__(self, pool: AsyncConnectionPool[Conn]) -> None:
        super().__init__(pool)
        # hash of a key -> (when it was found, whose it is)
        self._known: dict[bytes, tuple[float, Principal]] = {}

    @staticmethod
    async def insert(conn: Any, kind: str, tenant_id: uuid.UUID | None, text: str | None = None) -> tuple[ApiKey, str]:
        text = text or _new_key(kind)
        row = await (
            await conn.execute(
                "INSERT INTO api_keys (id, tenant_id, kind, key_hash, prefix) VALUES (%s, %s, %s, %s, %s) RETURNING *",
                (new_id(), tenant_id, kind, hash_key(text), text[:10]),
            )
        ).fetchone()
        return _key(row), text

    async def create(self, tenant_id: str) -> tuple[ApiKey, str]:
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            if not await (await conn.execute("SELECT 1 FROM tenants WHERE id = %s", (tid,))).fetchone():
                raise NotFound(f"no tenant with the id {tenant_id!r}")
            return await self.insert(conn, "tenant", tid)

    async def list(self, tenant_id: str) -> list[ApiKey]:
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            rows = await (
                await conn.execute("SELECT * FROM api_keys WHERE tenant_id = %s ORDER BY created_at", (tid,))
            ).fetchall()
            return [_key(r) for r in rows]

    async def revoke(self, tenant_id: str, key_id: str) -> ApiKey:
        tid = parse_id(tenant_id, "tenant")
        kid = parse_id(key_id, "key")
        async with self.transaction() as conn:
            row = await (
                await conn.execute(
                    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
                    " WHERE id = %s AND tenant_id = %s RETURNING *",
                    (kid, tid),
                )
            ).fetchone()
            if row is None:
                raise NotFound(f"no key with the id {key_id!r}")
        self.forget(key_id=key_id)
        return _key(row)

    async def authenticate(self, text: str) -> Principal | None:
        """The principal a presented key stands for, or None (unknown or revoked).

        A key found is remembered for KEY_CACHE_S, so that a busy client costs
        no query per request: a key revoked (or a tenant deleted) on one server
        process stops working there at once, and on the others within that time.
        """
        digest = hash_key(text)
        now = time.monotonic()
        known = self._known.get(digest)
        if known is not None and now - known[0] < KEY_CACHE_S:
            return known[1]
        async with self.statement() as conn:
            row = await (
                await conn.execute(
                    "SELECT id, tenant_id, kind, key_hash FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
                    (digest,),
                )
            ).fetchone()
        if row is None or not hmac.compare_digest(bytes(row["key_hash"]), digest):
            self._known.pop(digest, None)
            return None
        principal = Principal(
            kind=row["kind"], key_id=str(row["id"]), tenant_id=str(row["tenant_id"]) if row["tenant_id"] else None
        )
        if len(self._known) >= KEY_CACHE_SIZE:
            self._known.clear()
        self._known[digest] = (now, principal)
        return principal

    def forget(self, *, tenant_id: str | None = None, key_id: str | None = None) -> None:
        """Drop remembered keys of a tenant, or one key, at once (revoked, or the tenant deleted)."""
        for digest, (_, principal) in list(self._known.items()):
            if principal.tenant_id == tenant_id or principal.key_id == key_id:
                self._known.pop(digest, None)

    async def ensure_operator_key(self, from_environment: bool) -> tuple[str, str | None]:
        """Make sure the operator can sign in: (where the key comes from, a new key's text or None).

        A key from the environment is checked in memory and never stored.
        Without one, a key is generated on first start, stored hashed, and its
        text returned this once to be shown.
        """
        if from_environment:
            return "the TOLLGATE_OPERATOR_KEY environment variable", None
        async with self.transaction() as conn:
            # Server processes starting together make one key between them.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tollgate: the operator key'))")
            existing = await (
                await conn.execute("SELECT 1 FROM api_keys WHERE kind = 'operator' AND revoked_at IS NULL")
            ).fetchone()
            if existing:
                return "the key generated and shown at first start", None
            _, new_text = await self.insert(conn, "operator", None)
            return "a key generated now (shown once below)", new_text
