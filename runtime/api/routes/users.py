"""A tenant's users, for the hosted login. Passwords are stored as argon2 hashes and never returned."""

from __future__ import annotations

import anyio.to_thread
from starlette.responses import Response

from runtime.api import views
from runtime.api.endpoints import Call, Endpoint, json
from runtime.api.models import UserCreate, UserUpdate
from runtime.passwords import hash_password


async def _hash(password: str | None) -> str | None:
    if password is None:
        return None
    hashed: str = await anyio.to_thread.run_sync(hash_password, password)
    return hashed


async def create_user(call: Call) -> Response:
    body: UserCreate = call.body
    user = await call.services.store.users.create(
        call.tenant_id, email=body.email, password_hash=await _hash(body.password), name=body.name,
        email_verified=body.email_verified, app_metadata=body.app_metadata, user_metadata=body.user_metadata,
    )  # fmt: skip
    return json(views.user(user), 201)


async def list_users(call: Call) -> Response:
    page, per_page = call.paging()
    users = await call.services.store.users.list(call.tenant_id, page=page, per_page=per_page)
    return json({"users": [views.user(u) for u in users], "page": page, "per_page": per_page})


async def get_user(call: Call) -> Response:
    return json(views.user(await call.services.store.users.get(call.tenant_id, call.param("id"))))


async def update_user(call: Call) -> Response:
    body: UserUpdate = call.body
    user = await call.services.store.users.update(
        call.tenant_id, call.param("id"), email=body.email, password_hash=await _hash(body.password),
        name=body.name, email_verified=body.email_verified, app_metadata=body.app_metadata,
        user_metadata=body.user_metadata,
    )  # fmt: skip
    return json(views.user(user))


async def delete_user(call: Call) -> Response:
    await call.services.store.users.delete(call.tenant_id, call.param("id"))
    return Response(status_code=204)


ENDPOINTS = [
    Endpoint("POST", "/api/v2/users", create_user, "Create a user of the hosted login", "tenant", UserCreate, 201),
    Endpoint("GET", "/api/v2/users", list_users, "List users (paging: page, per_page)", "tenant",
             query=("page", "per_page")),
    Endpoint("GET", "/api/v2/users/{id}", get_user, "Get a user", "tenant"),
    Endpoint("PATCH", "/api/v2/users/{id}", update_user, "Update a user", "tenant", UserUpdate),
    Endpoint("DELETE", "/api/v2/users/{id}", delete_user, "Delete a user", "tenant", status=204),
]  # fmt: skip
