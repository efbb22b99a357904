"""Endpoints: a handler with its method, path, audience and body model.

One declaration gives the Starlette route (authentication and error mapping
around the handler) and the operation in the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runtime import jsontext
from runtime.api.auth import authenticate
from runtime.api.bodies import read_model
from runtime.api.errors import ApiError, handle_exception
from runtime.api.services import Services
from runtime.store.records import Principal

__all__ = ["Call", "Endpoint", "json"]


@dataclass(frozen=True)
class Call:
    """What a handler gets: the request, who made it, the services, the validated body."""

    request: Request
    principal: Principal
    services: Services
    body: Any = None

    @property
    def tenant_id(self) -> str:
        assert self.principal.tenant_id is not None
        return self.principal.tenant_id

    def param(self, name: str) -> str:
        value = str(self.request.path_params[name])
        if "\x00" in value:  # nothing stored has one (PostgreSQL's text cannot hold it)
            raise ApiError(404, "not_found", f"No {name.replace('_', ' ')} has a NUL character in it")
        return value

    def paging(self) -> tuple[int, int]:
        """The `page` (from 0) and `per_page` (1..100, default 50) query parameters."""
        q = self.request.query_params
        try:
            page = max(0, int(q.get("page", "0")))
            per_page = min(100, max(1, int(q.get("per_page", "50"))))
        except ValueError:
            raise ApiError(400, "invalid_query", "page and per_page must be whole numbers") from None
        return page, per_page

    def moment(self, name: str) -> datetime | None:
        """The query parameter `name` as an ISO 8601 time with its zone; None when it is not given."""
        text = self.request.query_params.get(name)
        if text is None:
            return None
        example = "e.g. 2026-11-28T10:15:00Z"
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(400, "invalid_query", f"{name} must be an ISO 8601 time, {example}") from None
        if moment.tzinfo is None:
            raise ApiError(400, "invalid_query", f"{name} must say its time zone, {example}")
        return moment


Handler = Callable[[Call], Awaitable[Response]]


class _JSONResponse(JSONResponse):
    """Starlette's JSON answer (compact, UTF-8), written as :mod:`runtime.jsontext` says."""

    def render(self, content: Any) -> bytes:
        text = jsontext.encode(content)
        return text if text is not None else super().render(content)


def json(data: Any, status: int = 200) -> JSONResponse:
    return _JSONResponse(data, status_code=status)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    audience: str  # "operator" | "tenant" | "any" (either kind of key)
    body: type[BaseModel] | None = None
    status: int = 200
    query: tuple[str, ...] = field(default=())

    async def answer(self, request: Request) -> Response:
        """The response to `request`: the handler's, or the JSON error for whatever failed (errors.py)."""
        try:
            services: Services = request.app.state.services
            principal = await authenticate(request, services, self.audience)
            body = await read_model(request, self.body) if self.body is not None else None
            return await self.handler(Call(request, principal, services, body))
        except Exception as exc:  # every failure becomes one JSON error
            return await handle_exception(request, exc)

    def route(self) -> Route:
        return Route(self.path, self.answer, methods=[self.method], name=f"{self.method} {self.path}")
