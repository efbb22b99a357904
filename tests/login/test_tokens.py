"""The hosted login's signing keys (real PostgreSQL) and the tokens minted and checked with them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from runtime.login.tokens import (
    MAX_CUSTOM_CLAIMS_BYTES,
    InvalidToken,
    claim_allowed,
    custom_claims,
    mint_access_token,
    mint_id_token,
    verify_access_token,
)
from runtime.store import NotFound, Store, migrate, signing_keys
from runtime.store.signing_keys import Signer, jwk_thumbprint
from runtime.vault import MasterKeyring, SecretUnreadable

RING = MasterKeyring.parse(MasterKeyring.generate_text())
ISSUER = "https://acme-bank.example/t/acme-bank/"
API = "https://api.acme-bank.example/"
CLIENT = "client-1"
NOW = 1_800_000_000


@dataclass(frozen=True)
class Keys:
    """One tenant's signer and JWKS, and another tenant's signer."""

    signer: Signer
    jwks: dict[str, Any]
    other: Signer


async def _new_tenant(store: Store) -> str:
    tenant, _, _ = await store.tenants.create(f"keys-{uuid.uuid4().hex[:12]}")
    return tenant.id


async def _rows(store: Store, tenant_id: str) -> list[dict[str, Any]]:
    async with store.pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT kid, public_jwk, key_version, sealed_private_key, retired_at FROM signing_keys"
            " WHERE tenant_id = %s ORDER BY created_at",
            (uuid.UUID(tenant_id),),
        )
        return await cursor.fetchall()


@pytest.fixture(scope="module")
def own_database(new_database: Any) -> str:
    """A database of the module's own: its keys are wrapped by RING, which the session's server does not hold."""
    url: str = new_database()
    migrate(url, report=lambda _: None)
    return url


@pytest.fixture(scope="module")
def keys(own_database: str, api: Any) -> Keys:
    """Key material from the store, once for the module (the API fixture has migrated the database)."""

    async def load() -> Keys:
        store = await Store.open(own_database, RING)
        try:
            tid, other = await _new_tenant(store), await _new_tenant(store)
            signer = await store.signing_keys.signer(tid)
            return Keys(signer, await store.signing_keys.jwks(tid), await store.signing_keys.signer(other))
        finally:
            await store.close()

    return asyncio.run(load())


def _access_token(signer: Signer, **changes: Any) -> str:
    arguments: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": API,
        "client_id": CLIENT,
        "user_id": "auth0|123",
        "scope": "openid read:accounts",
        "claims": {},
        "now": NOW,
    }
    return mint_access_token(signer, **{**arguments, **changes})


def _id_token(signer: Signer, **changes: Any) -> str:
    arguments: dict[str, Any] = {
        "issuer": ISSUER,
        "client_id": CLIENT,
        "user": {
            "user_id": "auth0|123",
            "email": "ana@example.com",
            "email_verified": True,
            "name": "Ana",
            "nickname": "ana",
            "picture": None,
            "updated_at": "2027-01-01T00:00:00.000Z",
        },
        "nonce": "n-1",
        "auth_time": NOW - 5,
        "session_id": "s-1",
        "claims": {},
        "scope": "openid email profile",
        "now": NOW,
    }
    return mint_id_token(signer, **{**arguments, **changes})


def _verify(keys: Keys, token: str, **changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {"issuer": ISSUER, "audience": API, "now": NOW + 60}
    return verify_access_token(keys.jwks, token, **{**arguments, **changes})


# --- keys in the store ---------------------------------------------------------------------------


def test_concurrent_first_uses_make_one_key(own_database: str, api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight first uses at once, from two stores (as two server processes): one key, used by all.

    The keys are made beforehand so that every first use reaches the database
    at the same moment, instead of being spread out by key generation times.
    """
    made = iter([signing_keys._generate() for _ in range(8)])
    monkeypatch.setattr(signing_keys, "_generate", lambda: next(made))

    async def scenario() -> tuple[list[Signer], list[dict[str, Any]]]:
        stores = [await Store.open(own_database, RING) for _ in range(2)]
        try:
            tid = await _new_tenant(stores[0])
            signers = await asyncio.gather(*(stores[i % 2].signing_keys.signer(tid) for i in range(8)))
            return list(signers), await _rows(stores[0], tid)
        finally:
            for store in stores:
                await store.close()

    signers, rows = asyncio.run(scenario())
    assert len(rows) == 1
    assert rows[0]["retired_at"] is None
    assert {s.kid for s in signers} == {rows[0]["kid"]}


def test_the_sealed_key_hides_the_key_and_opens_only_in_its_row(own_database: str, api: Any) -> None:
    """The row holds no PEM or DER; moved to another tenant (alone or with its whole row) it does not open."""

    async def scenario() -> None:
        store = await Store.open(own_database, RING)
        try:
            a, b = await _new_tenant(store), await _new_tenant(store)
            signer_a = await store.signing_keys.signer(a)
            await store.signing_keys.signer(b)
            (row_a,) = await _rows(store, a)
            sealed = bytes(row_a["sealed_private_key"])
            pem = signer_a.private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            der = signer_a.private_key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            body = b"".join(pem.splitlines()[1:-1])
            assert b"PRIVATE KEY" not in sealed
            assert body[:40] not in sealed and der[-64:] not in sealed
            assert set(row_a["public_jwk"]) == {"kty", "n", "e", "kid", "alg", "use"}

            async with store.pool.connection() as conn:
                await conn.execute(
                    "UPDATE signing_keys SET sealed_private_key = %s WHERE tenant_id = %s",
                    (sealed, uuid.UUID(b)),
                )
            fresh = await Store.open(own_database, RING)  # nothing cached
            try:
                with pytest.raises(SecretUnreadable):
                    await fresh.signing_keys.signer(b)
            finally:
                await fresh.close()

            async with store.pool.connection() as conn:
                await conn.execute("DELETE FROM signing_keys WHERE tenant_id = %s", (uuid.UUID(b),))
                await conn.execute(
                    "INSERT INTO signing_keys (tenant_id, kid, public_jwk, key_version, sealed_private_key)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (uuid.UUID(b), row_a["kid"], json.dumps(row_a["public_jwk"]), row_a["key_version"], sealed),
                )
            fresh = await Store.open(own_database, RING)
            try:
                with pytest.raises(SecretUnreadable):
                    await fresh.signing_keys.signer(b)
                assert (await fresh.signing_keys.signer(a)).kid == signer_a.kid
            finally:
                await fresh.close()
        finally:
            await store.close()

    asyncio.run(scenario())


def test_an_unknown_tenant_gets_no_key(own_database: str, api: Any) -> None:
    async def scenario() -> dict[str, Any]:
        store = await Store.open(own_database, RING)
        try:
            with pytest.raises(NotFound):
                await store.signing_keys.signer(str(uuid.uuid4()))
            return await store.signing_keys.jwks(str(uuid.uuid4()))
        finally:
            await store.close()

    assert asyncio.run(scenario()) == {"keys": []}


def test_the_jwks_publishes_the_public_key_and_verifies_what_the_signer_signs(keys: Keys) -> None:
    (jwk,) = keys.jwks["keys"]
    assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}
    assert (jwk["kty"], jwk["e"], jwk["alg"], jwk["use"]) == ("RSA", "AQAB", "RS256", "sig")
    assert jwk["kid"] == jwk_thumbprint(jwk) == keys.signer.kid

    access = _access_token(keys.signer)
    assert jwt.get_unverified_header(access) == {"alg": "RS256", "kid": keys.signer.kid, "typ": "at+jwt"}
    claims = _verify(keys, access)
    assert {k: claims[k] for k in ("iss", "sub", "aud", "azp", "scope", "iat", "exp")} == {
        "iss": ISSUER, "sub": "auth0|123", "aud": API, "azp": CLIENT, "scope": "openid read:accounts",
        "iat": NOW, "exp": NOW + 86400,
    }  # fmt: skip
    assert len(claims["jti"]) >= 20 and claims["jti"] != _verify(keys, _access_token(keys.signer))["jti"]

    id_token = _id_token(keys.signer)
    assert jwt.get_unverified_header(id_token)["kid"] == keys.signer.kid
    verified = jwt.decode(
        id_token,
        jwt.PyJWK(jwk),
        algorithms=["RS256"],
        audience=CLIENT,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert verified["exp"] == NOW + 36000


def test_jwk_thumbprint_matches_rfc_7638() -> None:
    """The example of RFC 7638, section 3.1."""
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_rotation_signs_with_a_new_key_and_keeps_the_old_one_verifying(own_database: str, api: Any) -> None:
    async def scenario() -> tuple[Signer, str, Signer, Signer, dict[str, Any], list[dict[str, Any]]]:
        store = await Store.open(own_database, RING)
        other_process = await Store.open(own_database, RING)
        try:
            tid = await _new_tenant(store)
            old = await store.signing_keys.signer(tid)
            new_kid = await store.signing_keys.rotate(tid)
            return (
                old,
                new_kid,
                await store.signing_keys.signer(tid),
                await other_process.signing_keys.signer(tid),
                await store.signing_keys.jwks(tid),
                await _rows(store, tid),
            )
        finally:
            await store.close()
            await other_process.close()

    old, new_kid, current, elsewhere, jwks, rows = asyncio.run(scenario())
    assert new_kid != old.kid
    assert current.kid == elsewhere.kid == new_kid
    assert [k["kid"] for k in jwks["keys"]] == [new_kid, old.kid]
    assert [(r["kid"], r["retired_at"] is None) for r in rows] == [(old.kid, False), (new_kid, True)]
    keys = Keys(current, jwks, old)
    assert _verify(keys, _access_token(old))["sub"] == "auth0|123"
    assert jwt.get_unverified_header(_access_token(current))["kid"] == new_kid
    assert _verify(keys, _access_token(current))["sub"] == "auth0|123"


# --- custom claims -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("https://acme-bank.example/roles", True),
        ("favorite_color", True),
        ("email", True),  # profile claims are not restricted in Auth0; an action's value replaces the user's
        ("updated_at", True),
        ("roles", False),
        ("permissions", False),
        ("sub", False),
        ("iss", False),
        ("nonce", False),
        ("scope", False),
        ("x5t#S256", False),
        ("https://auth0.com/claim", False),
        ("https://tenant.eu.AUTH0.COM/claim", False),
        ("https://tenant.webtask.io/claim", False),
        ("http://x.webtask.run/claim", False),
        ("urn:auth0:claim", False),
        ("URN:Auth0:claim", False),
    ],
)
def test_claim_allowed(name: str, allowed: bool) -> None:
    assert claim_allowed(name) is allowed


def test_restricted_and_namespaced_claims_are_dropped_and_reported() -> None:
    kept, dropped = custom_claims(
        {
            "https://acme-bank.example/roles": ["teller"],
            "roles": ["admin"],
            "sub": "someone-else",
            "https://acme.auth0.com/x": 1,
            "favorite_color": "blue",
            "urn:auth0:x": 2,
        }
    )
    assert kept == {"https://acme-bank.example/roles": ["teller"], "favorite_color": "blue"}
    assert dropped == ["roles", "sub", "https://acme.auth0.com/x", "urn:auth0:x"]


def test_custom_claims_stop_at_100_kb() -> None:
    """In the order set: a claim that does not fit is dropped, later ones that fit are kept; non-JSON is dropped."""
    big = "x" * 60_000
    kept, dropped = custom_claims({"a": big, "b": big, "c": "small", "d": float("nan"), "e": {1, 2}})
    assert list(kept) == ["a", "c"]
    assert dropped == ["b", "d", "e"]
    assert len(json.dumps(kept, separators=(",", ":"))) <= MAX_CUSTOM_CLAIMS_BYTES

    overhead = len('{"k":""}')
    exact = {"k": "v" * (MAX_CUSTOM_CLAIMS_BYTES - overhead)}
    assert custom_claims(exact) == (exact, [])
    assert custom_claims({"k": "v" * (MAX_CUSTOM_CLAIMS_BYTES - overhead + 1)}) == ({}, ["k"])
    assert custom_claims({"k": "é" * 20_000})[0] == {}  # measured as the token writes it (\u00e9: 6 bytes)
    # Small sets too: what the token cannot carry is dropped, null is kept.
    assert custom_claims({"n": float("nan"), "i": float("inf"), "z": None}) == ({"z": None}, ["n", "i"])
    assert custom_claims({"k": "é" * 17_100, "s": "ok"}) == ({"s": "ok"}, ["k"])  # 34 KB of UTF-8, over 100 KiB escaped
    fits = {"k": "é" * 17_000, "s": "ok"}  # 102,000 bytes escaped: within 100 KiB
    assert custom_claims(fits) == (fits, [])


def test_tokens_carry_only_the_allowed_custom_claims(keys: Keys) -> None:
    """Protocol claims stay ours; dropped claims never reach the token."""
    requested = {"iss": "https://evil.example/", "sub": "admin", "https://acme-bank.example/tier": "gold",
                 "c": "x" * MAX_CUSTOM_CLAIMS_BYTES}  # fmt: skip
    claims = _verify(keys, _access_token(keys.signer, claims=requested))
    assert (claims["iss"], claims["sub"], claims["https://acme-bank.example/tier"]) == (ISSUER, "auth0|123", "gold")
    assert "c" not in claims
    id_claims = jwt.decode(_id_token(keys.signer, claims=requested), options={"verify_signature": False})
    assert (id_claims["iss"], id_claims["sub"], id_claims["https://acme-bank.example/tier"]) == (
        ISSUER, "auth0|123", "gold",
    )  # fmt: skip


def _id_claims(signer: Signer, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(_id_token(signer, **changes), options={"verify_signature": False})
    return claims


def test_id_token_profile_claims_follow_the_scope(keys: Keys) -> None:
    base = {"iss", "sub", "aud", "iat", "exp", "auth_time", "sid", "nonce"}
    assert set(_id_claims(keys.signer, scope="openid")) == base
    assert set(_id_claims(keys.signer, scope="openid email")) == base | {"email", "email_verified"}
    full = _id_claims(keys.signer)
    assert set(full) == base | {"email", "email_verified", "name", "nickname", "updated_at"}  # no picture: None
    assert (full["aud"], full["auth_time"], full["sid"], full["nonce"]) == (CLIENT, NOW - 5, "s-1", "n-1")
    assert "nonce" not in _id_claims(keys.signer, nonce=None)
    assert _id_claims(keys.signer, claims={"name": "Ana Silva"})["name"] == "Ana Silva"


# --- verifying access tokens ---------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"


def _payload(keys: Keys) -> dict[str, Any]:
    return jwt.decode(_access_token(keys.signer), options={"verify_signature": False})


def _alg_none(keys: Keys) -> str:
    return _unsigned({"alg": "none", "typ": "at+jwt", "kid": keys.signer.kid}, _payload(keys)) + "."


def _hs256_with_the_public_key(keys: Keys) -> str:
    public_pem = keys.signer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = _unsigned({"alg": "HS256", "typ": "at+jwt", "kid": keys.signer.kid}, _payload(keys))
    return f"{signing_input}.{_b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())}"


def _tampered(keys: Keys) -> str:
    header, _, signature = _access_token(keys.signer).split(".")
    payload = {**_payload(keys), "sub": "auth0|admin"}
    return f"{header}.{_b64(json.dumps(payload).encode())}.{signature}"


def _kid_of_ours_key_of_theirs(keys: Keys) -> str:
    return _access_token(Signer(keys.signer.kid, keys.other.private_key))


def _without_exp(keys: Keys) -> str:
    payload = {k: v for k, v in _payload(keys).items() if k != "exp"}
    return jwt.encode(
        payload, keys.signer.private_key, algorithm="RS256", headers={"kid": keys.signer.kid, "typ": "at+jwt"}
    )


REJECTED: dict[str, tuple[Callable[[Keys], str], dict[str, Any], str]] = {
    "wrong-issuer": (lambda k: _access_token(k.signer), {"issuer": "https://other.example/"}, "the token was issued by another issuer"),
    "wrong-audience": (lambda k: _access_token(k.signer), {"audience": "https://other-api.example/"}, "the token is not meant for this audience"),
    "expired": (lambda k: _access_token(k.signer), {"now": NOW + 86400 + 3600}, "the token has expired"),
    "issued-in-the-future": (lambda k: _access_token(k.signer), {"now": NOW - 3600}, "the token was issued in the future"),
    "alg-none": (_alg_none, {}, "the token must be signed with RS256"),
    "hs256-public-key-secret": (_hs256_with_the_public_key, {}, "the token must be signed with RS256"),
    "unknown-kid": (lambda k: _access_token(k.other), {}, "the token was signed by an unknown key"),
    "our-kid-their-key": (_kid_of_ours_key_of_theirs, {}, "the token signature is invalid"),
    "tampered-payload": (_tampered, {}, "the token signature is invalid"),
    "id-token": (lambda k: _id_token(k.signer), {"audience": CLIENT}, "the token is not an access token"),
    "no-exp": (_without_exp, {}, "the token has no exp claim"),
    "garbage": (lambda k: "not.a.token", {}, "the token is malformed"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REJECTED))
def test_verify_access_token_rejects(keys: Keys, case: str) -> None:
    make, changes, reason = REJECTED[case]
    with pytest.raises(InvalidToken) as caught:
        _verify(keys, make(keys), **changes)
    assert str(caught.value) == reason
