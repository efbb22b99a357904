"""A tenant's own settings: the hosts sendUserTo may send users to."""

from __future__ import annotations

from starlette.responses import Response

from runtime.api.endpoints import Call, Endpoint, json
from runtime.api.models import SettingsUpdate


async def get_settings(call: Call) -> Response:
    tenant = await call.services.store.tenants.get(call.tenant_id)
    return json({"allowed_redirect_hosts": tenant.allowed_redirect_hosts})


async def update_settings(call: Call) -> Response:
    body: SettingsUpdate = call.body
    hosts = sorted({h.lower() for h in body.allowed_redirect_hosts})
    tenant = await call.services.store.tenants.set_redirect_hosts(call.tenant_id, hosts)
    return json({"allowed_redirect_hosts": tenant.allowed_redirect_hosts})


ENDPOINTS = [
    Endpoint("GET", "/api/v2/tenants/settings", get_settings, "Get the tenant's settings", "tenant"),
    Endpoint("PATCH", "/api/v2/tenants/settings", update_settings,
             "Set the exact hosts api.redirect.sendUserTo may target", "tenant", SettingsUpdate),
]  # fmt: skip
