"""The OpenAPI document, generated from the endpoint declarations and the body models."""

from __future__ import annotations

import re
from typing import Any

from runtime import __version__
from runtime.api.endpoints import Endpoint

__all__ = ["document"]

ERROR_SCHEMA = {
    "type": "object",
    "required": ["statusCode", "error", "message", "errorCode"],
    "properties": {
        "statusCode": {"type": "integer"},
        "error": {"type": "string"},
        "message": {"type": "string"},
        "errorCode": {"type": "string"},
    },
}
ERRORS = {
    "400": "The request is not valid (the message says which part)",
    "401": "No API key, or an unknown or revoked one",
    "403": "The key cannot use this route, or a quota would be passed",
    "404": "No such resource for this tenant",
    "409": "The change contradicts the current state",
    "413": "The body or the code is too large",
}


def _operation_id(endpoint: Endpoint) -> str:
    words = re.sub(r"[{}]", "", endpoint.path.removeprefix("/api/v2/")).replace("/", "_").replace("-", "_")
    return f"{endpoint.method.lower()}_{words}"


def document(endpoints: list[Endpoint]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "operationId": _operation_id(endpoint),
            "tags": [endpoint.audience],
            "security": [{"bearer": []}],
            "responses": {
                str(endpoint.status): {"description": "Done" if endpoint.status != 204 else "Done; no content"},
                **{
                    code: {
                        "description": text,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    }
                    for code, text in ERRORS.items()
                },
            },
        }
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", endpoint.path)
        ] + [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}} for name in endpoint.query]
        if parameters:
            operation["parameters"] = parameters
        if endpoint.body is not None:
            schema = endpoint.body.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[endpoint.body.__name__] = schema
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{endpoint.body.__name__}"}}},
            }
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tollgate Management API",
            "version": __version__,
            "description": "Tenants manage their actions; the operator manages tenants. Paths follow Auth0's v2 API.",
        },
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
