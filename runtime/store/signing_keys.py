"""Each tenant's token signing keys (RS256): made on first need, sealed like secrets, cached in memory.

One key per tenant is current (``retired_at IS NULL``) and signs the hosted
login's tokens. Rotating retires it for signing only: it stays published in
the JWKS, so the tokens it signed stay verifiable until they expire.

The private key is sealed with the tenant's data key before it reaches
PostgreSQL, with tenant, key id and data key version as associated data
(runtime/vault.py): neither the table nor the statement log sees it, and a
sealed key moved to another row or tenant does not open.

The schema has no unique index on "the tenant's current key", so whatever
makes a key (the first use, a rotation) first locks the tenant's row: of two
concurrent first uses, the second waits, then finds and uses the first's key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from runtime.store.base import Conn, Repository, parse_id
from runtime.store.errors import NotFound
from runtime.store.vault import DataKeys
from runtime.vault import SecretUnreadable, open_secret, seal_secret, signing_key_context

__all__ = ["Signer", "SigningKeys", "jwk_thumbprint"]

KEY_BITS = 2048
ALGORITHM = "RS256"
# Another server process may rotate a tenant's key; a cached signer is read
# again after this long, so every process moves to the new key soon after.
SIGNER_TTL_S = 300.0


@dataclass(frozen=True)
class Signer:
    """The key that signs a tenant's tokens now: its id (the JWKS ``kid``) and its private key."""

    kid: str
    private_key: rsa.RSAPrivateKey = field(repr=False)


@dataclass(frozen=True)
class _NewKey:
    """A key made outside any transaction (generation takes tens of milliseconds), ready to store."""

    signer: Signer
    public_jwk: dict[str, str]
    pem: str


def _b64_uint(value: int) -> str:
    """An unsigned integer as JWK wants it: big-endian, shortest, base64url without padding."""
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 thumbprint of an RSA JWK (SHA-256, base64url): a key id derived from the key itself."""
    required = {"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).decode().rstrip("=")


def _generate() -> _NewKey:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    numbers = private_key.public_key().public_numbers()
    jwk = {"kty": "RSA", "n": _b64_uint(numbers.n), "e": _b64_uint(numbers.e)}
    kid = jwk_thumbprint(jwk)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return _NewKey(Signer(kid, private_key), {**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"}, pem)


class SigningKeys(Repository):
    """Per-tenant RS256 keys: the current signer, the public JWKS, rotation."""

    def __init__(self, pool: AsyncConnectionPool[Conn], data_keys: DataKeys) -> None:
        super().__init__(pool)
        self.data_keys = data_keys
        self._lock = threading.Lock()
        # tenant -> (signer, monotonic time its database read began)
        self._cache: dict[uuid.UUID, tuple[Signer, float]] = {}

    def _remember(self, tid: uuid.UUID, signer: Signer, read_at: float) -> None:
        """Cache `signer` unless a newer read (say, a rotation that finished meanwhile) is cached already."""
        with self._lock:
            cached = self._cache.get(tid)
            if cached is None or cached[1] <= read_at:
                self._cache[tid] = (signer, read_at)

    async def _lock_tenant(self, conn: Conn, tid: uuid.UUID) -> None:
        """Serialise the key writers of one tenant (NO KEY UPDATE: inserts referencing the tenant go on)."""
        row = await (await conn.execute("SELECT 1 FROM tenants WHERE id = %s FOR NO KEY UPDATE", (tid,))).fetchone()
        if row is None:
            raise NotFound(f"no tenant with the id {tid}")

    async def _current(self, conn: Conn, tid: uuid.UUID) -> Signer | None:
        row = await (
            await conn.execute(
                "SELECT kid, key_version, sealed_private_key FROM signing_keys"
                " WHERE tenant_id = %s AND retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
                (tid,),
            )
        ).fetchone()
        if row is None:
            return None
        version = int(row["key_version"])
        data_key = await self.data_keys.get(conn, tid, version)
        context = signing_key_context(str(tid), row["kid"], version)
        pem = open_secret(data_key, context, bytes(row["sealed_private_key"]))
        private_key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise SecretUnreadable("the stored signing key is not an RSA key")
        return Signer(row["kid"], private_key)

    async def _insert(self, conn: Conn, tid: uuid.UUID, new: _NewKey) -> Signer:
        version, data_key = await self.data_keys.current(conn, tid)
        sealed = seal_secret(data_key, signing_key_context(str(tid), new.signer.kid, version), new.pem)
        await conn.execute(
            "INSERT INTO signing_keys (tenant_id, kid, public_jwk, key_version, sealed_private_key)"
            " VALUES (%s, %s, %s, %s, %s)",
            (tid, new.signer.kid, Jsonb(new.public_jwk), version, sealed),
        )
        return new.signer

    async def signer(self, tenant_id: str) -> Signer:
        """The tenant's current key, made on the tenant's first need of one."""
        tid = parse_id(tenant_id, "tenant")
        read_at = time.monotonic()
        with self._lock:
            cached = self._cache.get(tid)
        if cached is not None and read_at - cached[1] < SIGNER_TTL_S:
            return cached[0]
        async with self.transaction() as conn:
            signer = await self._current(conn, tid)
        if signer is None:
            new = await asyncio.to_thread(_generate)
            async with self.transaction() as conn:
                await self._lock_tenant(conn, tid)
                signer = await self._current(conn, tid) or await self._insert(conn, tid, new)
        self._remember(tid, signer, read_at)
        return signer

    async def jwks(self, tenant_id: str) -> dict[str, list[dict[str, Any]]]:
        """The public keys that verify the tenant's tokens: the current one first, then those retired from signing."""
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            rows = await (
                await conn.execute(
                    "SELECT public_jwk FROM signing_keys WHERE tenant_id = %s"
                    " ORDER BY retired_at DESC NULLS FIRST, created_at DESC",
                    (tid,),
                )
            ).fetchall()
        return {"keys": [dict(r["public_jwk"]) for r in rows]}

    async def rotate(self, tenant_id: str) -> str:
        """Make a new current key and retire the old one from signing (it stays in the JWKS); the new kid."""
        tid = parse_id(tenant_id, "tenant")
        new = await asyncio.to_thread(_generate)
        async with self.transaction() as conn:
            await self._lock_tenant(conn, tid)
            await conn.execute(
                "UPDATE signing_keys SET retired_at = now() WHERE tenant_id = %s AND retired_at IS NULL", (tid,)
            )
            signer = await self._insert(conn, tid, new)
        self._remember(tid, signer, time.monotonic())
        return signer.kid
