"""Whose a key is: the operator's, or a tenant's (with the tenant's id and name).

Any valid key may ask. A client handed a key it knows nothing about (the
console, at sign-in) learns what the key may do without trying a route and
being refused.
"""

from __future__ import annotations

from starlette.responses import Response

from runtime.api.endpoints import Call, Endpoint, json

__all__ = ["ENDPOINTS"]


async def current_key(call: Call) -> Response:
    principal = call.principal
    if principal.is_operator:
        return json({"kind": "operator", "key_id": principal.key_id})
    tenant = await call.services.store.tenants.get(call.tenant_id)
    return json({"kind": "tenant", "key_id": principal.key_id, "tenant_id": tenant.id, "tenant_name": tenant.name})


ENDPOINTS = [
    Endpoint("GET", "/api/v2/keys/current", current_key,
             "Whose key this request is made with: the operator's, or a tenant's (its id and name)", "any"),
]  # fmt: skip
