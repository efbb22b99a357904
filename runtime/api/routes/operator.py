"""The operator's routes: tenants, their limits and their API keys; the platform's defaults and maximums."""

from __future__ import annotations

from starlette.responses import Response

from runtime.api import views
from runtime.api.endpoints import Call, Endpoint, json
from runtime.api.models import KeyCreate, TenantCreate, TenantUpdate
from runtime.limits import PLATFORM_MAXIMUMS, PLATFORM_QUOTA_MAXIMUMS, TenantLimits
from runtime.store.records import Tenant


def _view(tenant: Tenant) -> dict[str, object]:
    return views.tenant(tenant, TenantLimits.from_overrides(tenant.limits).as_dict())


async def create_tenant(call: Call) -> Response:
    body: TenantCreate = call.body
    tenant, key, text = await call.services.store.tenants.create(body.name)
    return json({**_view(tenant), "api_key": views.api_key(key, text)}, 201)


async def list_tenants(call: Call) -> Response:
    return json({"tenants": [_view(t) for t in await call.services.store.tenants.list()]})


async def get_tenant(call: Call) -> Response:
    return json(_view(await call.services.store.tenants.get(call.param("id"))))


async def update_tenant(call: Call) -> Response:
    body: TenantUpdate = call.body
    store = call.services.store
    tenant = await store.tenants.get(call.param("id"))
    limits = None
    if body.limits is not None:
        merged = {**tenant.limits, **body.limits}
        limits = {k: v for k, v in merged.items() if v is not None}
        TenantLimits.from_overrides(limits)  # refuses unknown names and values past the platform maximums
    tenant = await store.tenants.update(tenant.id, name=body.name, limits=limits)
    return json(_view(tenant))


async def delete_tenant(call: Call) -> Response:
    await call.services.store.tenants.delete(call.param("id"))
    call.services.store.keys.forget(tenant_id=call.param("id"))
    call.services.flows.forget_tenant(call.param("id"))
    return Response(status_code=204)


async def platform_limits(call: Call) -> Response:
    return json({
        "defaults": TenantLimits.from_overrides({}).as_dict(),
        "maximums": {**PLATFORM_MAXIMUMS.as_dict(), **PLATFORM_QUOTA_MAXIMUMS.as_dict()},
    })  # fmt: skip


async def create_key(call: Call) -> Response:
    key, text = await call.services.store.keys.create(call.param("id"))
    return json(views.api_key(key, text), 201)


async def list_keys(call: Call) -> Response:
    return json({"keys": [views.api_key(k) for k in await call.services.store.keys.list(call.param("id"))]})


async def revoke_key(call: Call) -> Response:
    await call.services.store.keys.revoke(call.param("id"), call.param("key_id"))
    return Response(status_code=204)


ENDPOINTS = [
    Endpoint("POST", "/api/v2/tenants", create_tenant, "Create a tenant with its first API key (shown once)",
             "operator", TenantCreate, 201),
    Endpoint("GET", "/api/v2/tenants", list_tenants, "List tenants", "operator"),
    Endpoint("GET", "/api/v2/tenants/{id}", get_tenant, "Get a tenant and the limits in force", "operator"),
    Endpoint("PATCH", "/api/v2/tenants/{id}", update_tenant,
             "Rename a tenant or set its limits (within the platform maximums; null restores a default)",
             "operator", TenantUpdate),
    Endpoint("DELETE", "/api/v2/tenants/{id}", delete_tenant, "Delete a tenant and everything it owns",
             "operator", status=204),
    Endpoint("POST", "/api/v2/tenants/{id}/keys", create_key, "Create an API key for a tenant (shown once)",
             "operator", KeyCreate, 201),
    Endpoint("GET", "/api/v2/tenants/{id}/keys", list_keys, "List a tenant's API keys (never their text)",
             "operator"),
    Endpoint("DELETE", "/api/v2/tenants/{id}/keys/{key_id}", revoke_key, "Revoke a tenant's API key",
             "operator", status=204),
    Endpoint("GET", "/api/v2/limits", platform_limits,
             "The limits and quotas a tenant gets by default, and the most an operator may set", "operator"),
]  # fmt: skip
