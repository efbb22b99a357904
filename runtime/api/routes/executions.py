"""Execution records: one, a filtered list, and a live stream of what actions print and how they end.

Every run of an action is recorded (logins and tests): its trigger, action
and version, handler, outcome and error, console output, stats and the
trace replay needs; records are kept ``execution_retention_days`` (10 by
default, set by the operator per tenant) and then swept.

``GET /api/v2/actions/logs/stream`` is a server-sent-events stream of the
tenant's executions as they are recorded, one ``execution`` event per action
run, with its console output and error: what ``tollgate logs --follow`` prints.
Every server process records into the same database, so the stream follows
it (twice a second) rather than one process's memory, in the order the
records' transactions ended: none is missed because it was committed late.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import time
from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse

from runtime.api import views
from runtime.api.endpoints import Call, Endpoint, json
from runtime.api.errors import ApiError
from runtime.store.records import Execution

__all__ = ["ENDPOINTS"]

POLL_S = 0.5
KEEP_ALIVE_S = 15.0
FORGET_SENT_S = 2 * 3600.0
STATUSES = ("completed", "denied", "failed", "suspended")


async def get_execution(call: Call) -> Response:
    return json(views.execution(await call.services.store.executions.get(call.tenant_id, call.param("id"))))


async def list_executions(call: Call) -> Response:
    q = call.request.query_params
    page, per_page = call.paging()
    status = q.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(400, "invalid_query", f"status must be one of {', '.join(STATUSES)}")
    records, total = await call.services.store.executions.list(
        call.tenant_id, action_id=q.get("action_id"), status=status, since=call.moment("from"),
        until=call.moment("to"), page=page, per_page=per_page,
    )  # fmt: skip
    return json({"executions": [views.execution_summary(r) for r in records], "total": total, "page": page,
                 "per_page": per_page})  # fmt: skip


def _events(record: Execution, first: int) -> list[str]:
    """The stream's events for the action runs of `record` from index `first` on."""
    out: list[str] = []
    for entry in record.results[first:]:
        data = {
            "execution_id": record.id,
            "trigger_id": record.trigger_id,
            "kind": record.kind,
            "action_id": entry.get("action_id"),
            "action_name": entry.get("action_name"),
            "handler": entry.get("handler"),
            "status": entry.get("status"),
            "error": entry.get("error"),
            "logs": entry.get("logs", []),
            "at": entry.get("ended_at"),
        }
        out.append(f"event: execution\nid: {record.id}:{first + len(out)}\ndata: {jsonlib.dumps(data)}\n\n")
    return out


async def stream_logs(call: Call) -> Response:
    executions, tenant_id = call.services.store.executions, call.tenant_id
    horizon = await executions.stream_start()

    async def events() -> AsyncIterator[str]:
        nonlocal horizon
        # execution id -> (action runs already sent, when): a record can come back, unchanged or with the
        # runs a resumed flow added; entries go once no flow could resume (the flow transactions' TTL).
        sent: dict[str, tuple[int, float]] = {}
        yield ": streaming this tenant's executions as they are recorded\n\n"
        quiet_since = pruned_at = time.monotonic()
        while True:
            records, horizon = await executions.written_since(tenant_id, horizon)
            now = time.monotonic()
            for record in records:
                for event in _events(record, sent.get(record.id, (0, now))[0]):
                    quiet_since = now
                    yield event
                sent[record.id] = (len(record.results), now)
            if now - pruned_at > 60:
                pruned_at = now
                sent = {k: v for k, v in sent.items() if now - v[1] < FORGET_SENT_S}
            if now - quiet_since > KEEP_ALIVE_S:
                quiet_since = now
                yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_S)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


ENDPOINTS = [
    Endpoint("GET", "/api/v2/actions/executions", list_executions,
             "List execution records, newest first (filters: action_id, status, from, to; paging)", "tenant",
             query=("action_id", "status", "from", "to", "page", "per_page")),
    Endpoint("GET", "/api/v2/actions/executions/{id}", get_execution,
             "Get an execution record: each action run's commands, console output, error, stats and trace",
             "tenant"),
    Endpoint("GET", "/api/v2/actions/logs/stream", stream_logs,
             "Stream the tenant's executions as they are recorded (server-sent events)", "tenant"),
]  # fmt: skip
