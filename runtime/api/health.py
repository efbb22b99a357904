"""Health checks for load balancers and orchestrators; no key needed, nothing secret in the answers.

``GET /healthz``: the process is up and its event loop answers (liveness).
``GET /readyz``: this server process can serve logins now (readiness): its
services have started and are not stopping, the database answers a query
within :data:`DATABASE_TIMEOUT_S`, and at least one executor process runs.
200 when all hold, 503 otherwise; either way the body says which check
failed, in words, with the executor pool's counters and the execution
records waiting to be written.
``GET /metrics``: the server's figures in Prometheus's text format
(:mod:`runtime.metrics`), for the operator's key only: a login page's server
faces the internet, and its login counts are nobody else's business.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runtime import metrics
from runtime.api.auth import authenticate
from runtime.api.errors import ApiError, error_response
from runtime.store.errors import StoreUnavailable

__all__ = ["routes"]

# How long the readiness check waits for the database (a failover in progress counts as not ready).
DATABASE_TIMEOUT_S = 2.0
_NO_STORE = {"Cache-Control": "no-store"}


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


async def readyz(request: Request) -> Response:
    services = getattr(request.app.state, "services", None)
    if services is None or services.closing:
        what = "starting" if services is None else "stopping"
        return JSONResponse({"status": "not_ready", "message": f"the server is {what}"}, 503, headers=_NO_STORE)
    checks: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        await services.store.ping(timeout_s=DATABASE_TIMEOUT_S)
        checks["database"] = {"ok": True, "round_trip_ms": round((time.perf_counter() - started) * 1000, 1)}
    except StoreUnavailable:
        checks["database"] = {"ok": False, "message": f"the database did not answer within {DATABASE_TIMEOUT_S:g} s"}
    pool = services.executors.stats()
    executors: dict[str, Any] = {"ok": pool["alive"] > 0, **pool}
    if not executors["ok"]:
        executors["message"] = "no executor process is running"
    checks["executors"] = executors
    checks["execution_records_waiting"] = services.store.records_behind.waiting
    ready = checks["database"]["ok"] and executors["ok"]
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return JSONResponse(body, 200 if ready else 503, headers=_NO_STORE)


async def metrics_text(request: Request) -> Response:
    services = getattr(request.app.state, "services", None)
    if services is None:
        return JSONResponse({"status": "not_ready", "message": "the server is starting"}, 503, headers=_NO_STORE)
    try:
        await authenticate(request, services, "operator")
    except ApiError as exc:  # answered here: the app's catch-all handler would log it as a crash
        return error_response(exc.status, exc.code, exc.message)
    metrics.read_services(services)
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE, headers=_NO_STORE)


def routes() -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
    ]
