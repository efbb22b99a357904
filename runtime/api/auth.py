"""Who is calling: ``Authorization: Bearer <key>``, a tenant's key or the operator's.

Missing, unknown or revoked keys get 401; a key of the wrong kind for the
route gets 403 (routes for "any" key take both kinds). Keys are looked up by
hash and compared in constant time.
"""

from __future__ import annotations

from starlette.requests import Request

from runtime.api.errors import ApiError
from runtime.api.services import Services
from runtime.store.records import Principal

__all__ = ["authenticate"]


async def authenticate(request: Request, services: Services, audience: str) -> Principal:
    """The principal of the request, checked against the route's audience ("operator", "tenant" or "any")."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise ApiError(401, "missing_key", "Send an API key: Authorization: Bearer <key>")
    if len(key) > 256 or not key.isascii():
        raise ApiError(401, "invalid_key", "The API key is not valid")
    principal = services.operator_principal(key) or await services.store.keys.authenticate(key)
    if principal is None:
        raise ApiError(401, "invalid_key", "The API key is not valid (unknown or revoked)")
    if audience == "operator" and not principal.is_operator:
        raise ApiError(403, "operator_only", "This route is for the platform operator; a tenant key cannot use it")
    if audience == "tenant" and principal.is_operator:
        raise ApiError(403, "tenant_only", "This route acts on one tenant's data: use that tenant's API key")
    return principal
