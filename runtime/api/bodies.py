"""Reading request bodies: size-capped while streaming, strict JSON, validated models.

Refused, each with a 4xx and a message that says why: a body over the cap
(stopped while streaming, before it is all read), text that is not UTF-8,
JSON that does not parse (or uses NaN/Infinity), NUL characters anywhere,
unknown fields (no mass assignment), wrong types.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from starlette.requests import Request

from runtime import jsontext
from runtime.api.errors import ApiError

__all__ = ["MAX_BODY_BYTES", "read_json", "read_model"]

# The largest body any route accepts: the largest action source an operator
# may allow (1 MiB) with room for JSON escaping.
MAX_BODY_BYTES = 3 * 1024 * 1024

Model = TypeVar("Model", bound=BaseModel)


async def _read_capped(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > cap:
                raise ApiError(413, "body_too_large", f"The body is larger than {cap:,} bytes")
        except ValueError:
            raise ApiError(400, "invalid_body", "The Content-Length header is not a number") from None
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise ApiError(413, "body_too_large", f"The body is larger than {cap:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _reject_nul(value: Any, where: str = "body") -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError(400, "invalid_body", f"The {where} contains a NUL character, which is not allowed")
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key, where)
            _reject_nul(item, f"field {key!r}")
    elif isinstance(value, list):
        for item in value:
            _reject_nul(item, where)


async def read_json(request: Request, *, cap: int = MAX_BODY_BYTES) -> Any:
    """The request's JSON body, checked; an empty body is an empty object."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", ""):
        raise ApiError(415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json)")
    raw = await _read_capped(request, cap)
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_body", f"The body is not valid UTF-8 (byte {exc.start})") from None
    try:
        data = jsontext.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_body", f"The body is not valid JSON: {exc}") from None
    # json.loads refuses a raw NUL inside a string, so a NUL can only have come from the
    # escape \u0000: without it in the text, there is nothing to look for.
    if "\\u0000" in text:
        _reject_nul(data)
    return data


def _describe(error: ErrorDetails) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "body"
    if error["type"] == "extra_forbidden":
        return f"unknown field {where!r}"
    if error["type"] == "missing":
        return f"missing field {where!r}"
    return f"{where}: {error['msg']}"


async def read_model(request: Request, model: type[Model], *, cap: int = MAX_BODY_BYTES) -> Model:
    """The body as `model`: strict types, unknown fields refused."""
    data = await read_json(request, cap=cap)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "The body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(e) for e in exc.errors(include_url=False)]
        raise ApiError(400, "invalid_body", "The body is not valid: " + "; ".join(problems[:5])) from None
