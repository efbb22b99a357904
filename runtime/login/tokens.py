"""The hosted login's tokens: minted RS256 with the tenant's current key, access tokens checked against its JWKS.

Pure functions: no HTTP, no database. The algorithm is pinned to RS256 both
ways; the verifier never lets the token's header choose it, which is what
keeps ``alg: none`` and HS256-with-the-public-key-as-secret tokens out.

Custom claims (what actions set with ``api.idToken.setCustomClaim`` and
``api.accessToken.setCustomClaim``) follow Auth0's "Create Custom Claims"
restrictions:

- the claims Auth0 lists as restricted are dropped, as is ``scope``, which
  this runtime sets itself from the grant;
- names in an Auth0 namespace (``auth0.com``, ``webtask.io``, ``webtask.run``,
  ``urn:auth0``) are dropped;
- the OpenID profile claims (``email``, ``name``, ``picture``…) are *not*
  restricted: Auth0 lists them as "only subject to general restrictions" and
  says they can be overwritten, so an action's value replaces the user's;
- at most 100 KB of custom claims per token (JSON); Auth0 fails the login
  past that, this runtime drops the claims that do not fit instead.

Dropping is silent for the token (as in Auth0) but the dropped names are
returned, for the execution record.

Access tokens carry ``typ: at+jwt`` (RFC 9068) and the verifier requires it,
so an ID token, signed by the same key, is never accepted as an access token.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

import jwt

from runtime import jsontext
from runtime.store.signing_keys import Signer

__all__ = [
    "MAX_CUSTOM_CLAIMS_BYTES",
    "RESTRICTED_CLAIMS",
    "InvalidToken",
    "claim_allowed",
    "custom_claims",
    "mint_access_token",
    "mint_id_token",
    "verify_access_token",
]

ALGORITHM = "RS256"
ACCESS_TOKEN_TYPE = "at+jwt"
ID_TOKEN_TYPE = "JWT"

# Auth0's list of restricted claims ("Create Custom Claims"), plus `scope`.
RESTRICTED_CLAIMS = frozenset(
    {
        "acr", "act", "active", "amr", "at_hash", "ath", "attest", "aud", "auth_time", "authorization_details",
        "azp", "c_hash", "client_id", "cnf", "cty", "dest", "entitlements", "events", "exp", "groups", "gty",
        "htm", "htu", "iat", "internalService", "iss", "jcard", "jku", "jti", "jwe", "jwk", "kid", "may_act",
        "mky", "nbf", "nonce", "object_id", "org_id", "org_name", "orig", "origid", "permissions", "roles", "rph",
        "s_hash", "scope", "sid", "sip_callid", "sip_cseq_num", "sip_date", "sip_from_tag", "sip_via_branch",
        "sub", "sub_jwk", "toe", "txn", "typ", "uuid", "vot", "vtm", "x5t#S256",
    }
)  # fmt: skip
AUTH0_DOMAINS = ("auth0.com", "webtask.io", "webtask.run")
AUTH0_URN = "urn:auth0"
MAX_CUSTOM_CLAIMS_BYTES = 100 * 1024

# The profile claims an ID token carries for each scope, when the user has them.
SCOPE_CLAIMS = {
    "email": ("email", "email_verified"),
    "profile": ("name", "nickname", "picture", "updated_at"),
}

# Clock difference tolerated between the servers that mint and check tokens.
LEEWAY_S = 30


class InvalidToken(Exception):
    """A token that must be refused; ``str(exc)`` is the reason, fit to show the client (no quotes, no secrets)."""


def claim_allowed(name: str) -> bool:
    """Whether an action may set the custom claim `name` (see the module's docstring)."""
    if name in RESTRICTED_CLAIMS:
        return False
    lowered = name.lower()
    return not lowered.startswith(AUTH0_URN) and not any(domain in lowered for domain in AUTH0_DOMAINS)


def _json_size(value: Any) -> int:
    """Bytes `value` takes in a token's payload (compact, ASCII-escaped JSON, as PyJWT writes it)."""
    return len(json.dumps(value, separators=(",", ":"), allow_nan=False))


def custom_claims(requested: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The claims of `requested` a token may carry, and the names of those dropped.

    Taken in the order the actions set them; a claim that is not allowed, is
    not JSON, or would take the total past MAX_CUSTOM_CLAIMS_BYTES is dropped,
    and later ones that still fit are kept.
    """
    if all(claim_allowed(name) for name in requested):
        # Usually every claim is allowed and all fit: one encoding of them all tells. The ASCII-escaped text
        # is at most three times orjson's UTF-8 (a character of 2 UTF-8 bytes becomes \uXXXX; one of 4, two
        # of them; an exponent may gain a zero, "1e-07" for "1e-7"), so a set within a third of the limit
        # fits; a larger one is measured as PyJWT will write it. orjson writes NaN and the infinities as
        # null, which PyJWT refuses: a text with a null goes the exact way too.
        fast = jsontext.encode(dict(requested))
        if fast is not None and len(fast) * 3 <= MAX_CUSTOM_CLAIMS_BYTES and b"null" not in fast:
            return dict(requested), []
        try:
            if _json_size(dict(requested)) <= MAX_CUSTOM_CLAIMS_BYTES:
                return dict(requested), []
        except (TypeError, ValueError):
            pass
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    size = len("{}")
    for name, value in requested.items():
        if not claim_allowed(name):
            dropped.append(name)
            continue
        try:
            entry = _json_size(name) + len(":") + _json_size(value) + (len(",") if kept else 0)
        except (TypeError, ValueError):
            dropped.append(name)
            continue
        if size + entry > MAX_CUSTOM_CLAIMS_BYTES:
            dropped.append(name)
            continue
        kept[name] = value
        size += entry
    return kept, dropped


def _sign(signer: Signer, payload: dict[str, Any], typ: str) -> str:
    return jwt.encode(payload, signer.private_key, algorithm=ALGORITHM, headers={"kid": signer.kid, "typ": typ})


def mint_id_token(
    signer: Signer,
    *,
    issuer: str,
    client_id: str,
    user: Mapping[str, Any],
    nonce: str | None,
    auth_time: int,
    session_id: str,
    claims: Mapping[str, Any],
    scope: str,
    lifetime_s: int = 36000,
    now: float | None = None,
) -> str:
    """An ID token for `client_id` about `user` (Auth0's user shape: ``user_id``, ``email``…).

    Profile claims follow the granted `scope` (``email``, ``profile``), the
    actions' allowed custom claims may replace them, and the protocol claims
    (iss, sub, aud, iat, exp, auth_time, sid, nonce) are always ours.
    """
    issued = int(time.time() if now is None else now)
    granted = set(scope.split())
    payload: dict[str, Any] = {}
    for needed, names in SCOPE_CLAIMS.items():
        if needed in granted:
            payload.update({name: user[name] for name in names if user.get(name) is not None})
    payload.update(custom_claims(claims)[0])
    payload.update(
        iss=issuer,
        sub=str(user["user_id"]),
        aud=client_id,
        iat=issued,
        exp=issued + lifetime_s,
        auth_time=int(auth_time),
        sid=session_id,
    )
    if nonce is not None:
        payload["nonce"] = nonce
    return _sign(signer, payload, ID_TOKEN_TYPE)


def mint_access_token(
    signer: Signer,
    *,
    issuer: str,
    audience: str | list[str],
    client_id: str,
    user_id: str,
    scope: str,
    claims: Mapping[str, Any],
    lifetime_s: int = 86400,
    now: float | None = None,
) -> str:
    """An access token (RFC 9068 JWT profile) for the API `audience`, with the actions' allowed custom claims."""
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = custom_claims(claims)[0]
    payload.update(
        iss=issuer,
        sub=user_id,
        aud=audience,
        azp=client_id,
        scope=scope,
        iat=issued,
        exp=issued + lifetime_s,
        jti=secrets.token_urlsafe(16),
    )
    return _sign(signer, payload, ACCESS_TOKEN_TYPE)


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"the {name} claim is not a number")
    return float(value)


def verify_access_token(
    jwks: Mapping[str, Any], token: str, *, issuer: str, audience: str, now: float | None = None
) -> dict[str, Any]:
    """The claims of an access token signed by a key of `jwks`, for `audience`, from `issuer`, still valid.

    Raises InvalidToken, whose message says why the token is refused.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken("the token is malformed") from None
    if header.get("alg") != ALGORITHM:
        raise InvalidToken(f"the token must be signed with {ALGORITHM}")
    if str(header.get("typ", "")).lower() not in (ACCESS_TOKEN_TYPE, f"application/{ACCESS_TOKEN_TYPE}"):
        raise InvalidToken("the token is not an access token")
    kid = header.get("kid")
    jwk = next((k for k in jwks.get("keys", []) if isinstance(kid, str) and k.get("kid") == kid), None)
    if jwk is None:
        raise InvalidToken("the token was signed by an unknown key")
    try:
        key = jwt.PyJWK(dict(jwk), algorithm=ALGORITHM)
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            # Times are checked below, against `now`.
            options={
                "require": ["exp", "iat", "iss", "aud"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise InvalidToken("the token signature is invalid") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"the token has no {exc.claim} claim") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken("the token is not meant for this audience") from None
    except jwt.InvalidIssuerError:
        raise InvalidToken("the token was issued by another issuer") from None
    except jwt.PyJWTError:
        raise InvalidToken("the token is malformed") from None
    current = time.time() if now is None else now
    if _number(claims, "exp") <= current - LEEWAY_S:
        raise InvalidToken("the token has expired")
    if _number(claims, "iat") > current + LEEWAY_S:
        raise InvalidToken("the token was issued in the future")
    if "nbf" in claims and _number(claims, "nbf") > current + LEEWAY_S:
        raise InvalidToken("the token is not valid yet")
    return claims
