"""OAuth clients of a tenant: the applications that send users to the hosted login."""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import secrets
from typing import Any

from psycopg.types.json import Jsonb

from runtime.store.base import Repository, parse_id
from runtime.store.errors import NotFound
from runtime.store.records import NON_ROTATING, Client

__all__ = ["Clients"]


def _client(row: dict[str, Any]) -> Client:
    return Client(
        tenant_id=str(row["tenant_id"]),
        client_id=row["client_id"],
        name=row["name"],
        callbacks=list(row["callbacks"]),
        metadata=dict(row["metadata"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        refresh_token={**NON_ROTATING, **row["refresh_token"]},
    )


def _secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class Clients(Repository):
    """A tenant's OAuth clients. The client secret is shown once and stored hashed."""

    async def create(
        self, tenant_id: str, *, name: str, callbacks: list[str], metadata: dict[str, str],
        refresh_token: dict[str, Any] | None = None,
    ) -> tuple[Client, str]:  # fmt: skip
        tid = parse_id(tenant_id, "tenant")
        client_id = base64.urlsafe_b64encode(secrets.token_bytes(18)).decode()
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        async with self.transaction() as conn:
            row = await (
                await conn.execute(
                    "INSERT INTO clients (tenant_id, client_id, name, callbacks, client_secret_hash, metadata,"
                    " refresh_token) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *",
                    (
                        tid,
                        client_id,
                        name,
                        callbacks,
                        _secret_hash(secret),
                        Jsonb(metadata),
                        Jsonb(refresh_token or NON_ROTATING),
                    ),
                )
            ).fetchone()
            assert row is not None
            return _client(row), secret

    async def list(self, tenant_id: str) -> list[Client]:
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            rows = await (
                await conn.execute("SELECT * FROM clients WHERE tenant_id = %s ORDER BY created_at", (tid,))
            ).fetchall()
            return [_client(r) for r in rows]

    async def get(self, tenant_id: str, client_id: str) -> Client:
        tid = parse_id(tenant_id, "tenant")
        async with self.statement() as conn:
            row = await (
                await conn.execute("SELECT * FROM clients WHERE tenant_id = %s AND client_id = %s", (tid, client_id))
            ).fetchone()
            if row is None:
                raise NotFound(f"no client with the id {client_id!r}")
            return _client(row)

    async def update(
        self,
        tenant_id: str,
        client_id: str,
        *,
        name: str | None = None,
        callbacks: builtins.list[str] | None = None,
        metadata: dict[str, str] | None = None,
        refresh_token: dict[str, Any] | None = None,
    ) -> Client:
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            row = await (
                await conn.execute(
                    "UPDATE clients SET name = coalesce(%s, name), callbacks = coalesce(%s, callbacks),"
                    " metadata = coalesce(%s, metadata), refresh_token = coalesce(%s, refresh_token),"
                    " updated_at = now() WHERE tenant_id = %s AND client_id = %s RETURNING *",
                    (
                        name,
                        callbacks,
                        Jsonb(metadata) if metadata is not None else None,
                        Jsonb(refresh_token) if refresh_token is not None else None,
                        tid,
                        client_id,
                    ),
                )
            ).fetchone()
            if row is None:
                raise NotFound(f"no client with the id {client_id!r}")
            return _client(row)

    async def delete(self, tenant_id: str, client_id: str) -> None:
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            result = await conn.execute("DELETE FROM clients WHERE tenant_id = %s AND client_id = %s", (tid, client_id))
            if result.rowcount == 0:
                raise NotFound(f"no client with the id {client_id!r}")

    async def check_secret(self, tenant_id: str, client_id: str, secret: str) -> bool:
        """Whether `secret` is the client's secret (constant-time)."""
        tid = parse_id(tenant_id, "tenant")
        async with self.statement() as conn:
            row = await (
                await conn.execute(
                    "SELECT client_secret_hash FROM clients WHERE tenant_id = %s AND client_id = %s", (tid, client_id)
                )
            ).fetchone()
        return row is not None and hmac.compare_digest(bytes(row["client_secret_hash"]), _secret_hash(secret))
