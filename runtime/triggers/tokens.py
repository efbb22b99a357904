"""The host side of ``api.redirect.validateToken``.

The guest gathers the token and what it must match (the ``state`` of the
``/continue`` request, the user's id, the request's hostname) and crosses to
the host once; the checks run here with PyJWT and the algorithm pinned to
HS256. The guest turns an ``error`` answer into the thrown
``The session token is invalid: <reason>``.

Reasons, in the order they are checked (texts from the hosted product where
it documents them):

- ``The token is malformed.``
- ``Unexpected token algorithm.`` (anything but HS256, including ``none``)
- ``Unexpected token payload type`` (a ``typ`` header other than JWT)
- ``Invalid signature.``
- ``Token has expired.``
- ``The token is not valid yet.``
- ``Missing or invalid standard claims`` (``iat``, ``exp``, ``sub``, ``iss``
  and ``state`` are all required)
- ``State in the token does not match the /continue state.``
- ``The sub claim does not match the user_id.``
- ``The iss claim does not match the tenant hostname.`` Whether the hosted
  product checks ``iss`` is not documented; its test harness passes the
  hostname as the expected issuer, and a factor that echoes the claims of
  the token it was sent passes, so this runtime checks it.
"""

from __future__ import annotations

import warnings
from typing import Any

import jwt

__all__ = ["validate_token"]

REQUIRED_CLAIMS = ("iat", "exp", "sub", "iss", "state")


def _error(reason: str) -> dict[str, Any]:
    return {"error": reason}


def validate_token(request: dict[str, Any]) -> dict[str, Any]:
    """Check one token; ``{"payload": claims}`` or ``{"error": reason}``."""
    token = request.get("token")
    secret = request.get("secret")
    if not isinstance(token, str) or not isinstance(secret, str) or not secret:
        return _error("The token is malformed.")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return _error("The token is malformed.")
    if header.get("alg") != "HS256":
        return _error("Unexpected token algorithm.")
    if header.get("typ", "JWT") != "JWT":
        return _error("Unexpected token payload type")
    try:
        with warnings.catch_warnings():
            # Tenants choose their own secrets; a short one is theirs to regret.
            warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                options={"require": list(REQUIRED_CLAIMS), "verify_aud": False},
            )
    except jwt.InvalidSignatureError:
        return _error("Invalid signature.")
    except jwt.ExpiredSignatureError:
        return _error("Token has expired.")
    except jwt.ImmatureSignatureError:
        return _error("The token is not valid yet.")
    except (jwt.MissingRequiredClaimError, jwt.InvalidIssuedAtError):
        return _error("Missing or invalid standard claims")
    except jwt.PyJWTError:
        return _error("The token is malformed.")
    if not all(isinstance(claims.get(k), str) for k in ("sub", "iss", "state")):
        return _error("Missing or invalid standard claims")
    if claims["state"] != request.get("state"):
        return _error("State in the token does not match the /continue state.")
    if claims["sub"] != request.get("subject"):
        return _error("The sub claim does not match the user_id.")
    if claims["iss"] != request.get("issuer"):
        return _error("The iss claim does not match the tenant hostname.")
    return {"payload": claims}
