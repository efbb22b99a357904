"""Errors as the API returns them: one place maps every exception to a response.

The body is the hosted Management API's: ``{"statusCode", "error",
"message", "errorCode"}``. Messages say what to do; they never carry
internals, secret values or a traceback.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import JSONResponse

from runtime.limits import LimitsError
from runtime.sandbox import ActionError, PlatformError
from runtime.store import Conflict, NotFound, QuotaExceeded, StoreUnavailable
from runtime.vault import VaultError

__all__ = ["ApiError", "error_response", "handle_exception"]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with its HTTP status and machine-readable code."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body = {"statusCode": status, "error": HTTPStatus(status).phrase, "message": message, "errorCode": code, **extra}
    headers = {"WWW-Authenticate": 'Bearer realm="tollgate"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _as_api_error(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, NotFound):
        return ApiError(404, "not_found", exc.message)
    if isinstance(exc, Conflict):
        return ApiError(409, "conflict", exc.message)
    if isinstance(exc, QuotaExceeded):
        return ApiError(403, "quota_exceeded", exc.message, limit=exc.limit)
    if isinstance(exc, LimitsError):
        return ApiError(400, "invalid_limits", str(exc))
    if isinstance(exc, ActionError):
        # The action's own fault when compiling: a 400 with where it is.
        details = {k: v for k, v in exc.to_dict().items() if k in ("line", "column", "name", "limit")}
        return ApiError(400, exc.error_class, exc.message, **details)
    if isinstance(exc, psycopg.errors.ForeignKeyViolation):
        # What the request refers to went away meanwhile (a tenant deleted on another server process).
        return ApiError(404, "not_found", "What this request refers to no longer exists")
    if isinstance(exc, psycopg.DataError):
        # A value the database cannot take (a NUL character in text, a number out of its column's range):
        # the request's, as every value in a statement is checked or comes from a request.
        return ApiError(400, "invalid_request", "A value in the request cannot be stored (a NUL character, "
                        "or a number out of range)")  # fmt: skip
    if isinstance(exc, StoreUnavailable):
        log.error("the database is unavailable: %s", exc.message)
        return ApiError(503, "database_unavailable", "The service cannot reach its database; try again shortly")
    if isinstance(exc, PlatformError):
        log.error("the sandbox failed: %s", exc.message)
        return ApiError(503, "sandbox_unavailable", "The sandbox could not run the action; try again shortly")
    if isinstance(exc, VaultError):
        log.error("secrets could not be read: %s", exc)
        return ApiError(500, "secrets_unreadable", "The action's secrets could not be read; ask the operator")
    log.exception("unexpected error")
    return ApiError(500, "internal_error", "Something went wrong on our side; the request was not applied")


async def handle_exception(request: Request, exc: Exception) -> JSONResponse:
    error = _as_api_error(exc)
    return error_response(error.status, error.code, error.message, **error.extra)
