"""A tenant's OAuth clients: the applications its users log in to."""

from __future__ import annotations

from starlette.responses import Response

from runtime.api import views
from runtime.api.endpoints import Call, Endpoint, json
from runtime.api.models import ClientCreate, ClientUpdate


async def create_client(call: Call) -> Response:
    body: ClientCreate = call.body
    client, secret = await call.services.store.clients.create(
        call.tenant_id, name=body.name, callbacks=body.callbacks, metadata=body.client_metadata,
        refresh_token=body.refresh_token.model_dump(),
    )  # fmt: skip
    return json(views.client(client, secret), 201)


async def list_clients(call: Call) -> Response:
    return json({"clients": [views.client(c) for c in await call.services.store.clients.list(call.tenant_id)]})


async def get_client(call: Call) -> Response:
    return json(views.client(await call.services.store.clients.get(call.tenant_id, call.param("client_id"))))


async def update_client(call: Call) -> Response:
    body: ClientUpdate = call.body
    client = await call.services.store.clients.update(
        call.tenant_id, call.param("client_id"), name=body.name, callbacks=body.callbacks,
        metadata=body.client_metadata,
        refresh_token=body.refresh_token.model_dump() if body.refresh_token is not None else None,
    )  # fmt: skip
    return json(views.client(client))


async def delete_client(call: Call) -> Response:
    await call.services.store.clients.delete(call.tenant_id, call.param("client_id"))
    return Response(status_code=204)


ENDPOINTS = [
    Endpoint("POST", "/api/v2/clients", create_client, "Create an OAuth client (its secret is shown once)",
             "tenant", ClientCreate, 201),
    Endpoint("GET", "/api/v2/clients", list_clients, "List OAuth clients", "tenant"),
    Endpoint("GET", "/api/v2/clients/{client_id}", get_client, "Get an OAuth client", "tenant"),
    Endpoint("PATCH", "/api/v2/clients/{client_id}", update_client, "Update an OAuth client", "tenant",
             ClientUpdate),
    Endpoint("DELETE", "/api/v2/clients/{client_id}", delete_client, "Delete an OAuth client", "tenant",
             status=204),
]  # fmt: skip
