"""Statistics from the execution records: an action's latency and outcomes over time, a tenant's usage.

``GET /api/v2/actions/actions/{id}/stats`` (the tenant's) answers, for a
period cut into buckets, the p50 and p99 of the action's run time
(``stats.duration_us``) and how many runs completed, denied, redirected or
failed: what the console draws. ``GET /api/v2/tenants/{id}/usage`` (the
operator's) sums a tenant's executions, errors and fuel over a period. Both
are computed by PostgreSQL from the records (runtime/store/statistics.py),
so they cover every server process; both look back 24 hours by default.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.responses import Response

from runtime.api.endpoints import Call, Endpoint, json
from runtime.api.errors import ApiError
from runtime.api.views import when
from runtime.limits import PLATFORM_QUOTA_MAXIMUMS

__all__ = ["ENDPOINTS"]

DEFAULT_PERIOD = timedelta(hours=24)
# Records are kept at most this long, so a longer period would only ask for more work.
LONGEST_PERIOD = timedelta(days=PLATFORM_QUOTA_MAXIMUMS.execution_retention_days)
# Bucket sizes chosen when none is asked for: the smallest that cuts the period into at most 100.
NICE_BUCKETS_S = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 1000
KINDS = ("flow", "test")


def _period(call: Call) -> tuple[datetime, datetime]:
    """The `from` and `to` query parameters: by default the last 24 hours."""
    until = call.moment("to") or datetime.now(UTC)
    since = call.moment("from") or until - DEFAULT_PERIOD
    if since >= until:
        raise ApiError(400, "invalid_query", "from must be earlier than to")
    if until - since > LONGEST_PERIOD:
        raise ApiError(400, "invalid_query", f"the period may be at most {LONGEST_PERIOD.days} days long")
    return since, until


def _bucket(call: Call, period: timedelta) -> timedelta:
    """The `bucket` query parameter (seconds), or a round size that cuts `period` into at most 100."""
    text = call.request.query_params.get("bucket")
    if text is None:
        seconds = next((s for s in NICE_BUCKETS_S if period / timedelta(seconds=s) <= 100), NICE_BUCKETS_S[-1])
        return timedelta(seconds=seconds)
    if not text.isdigit() or int(text) < 1:
        raise ApiError(400, "invalid_query", "bucket must be a whole number of seconds")
    bucket = timedelta(seconds=int(text))
    if period / bucket > MAX_BUCKETS:
        raise ApiError(
            400, "invalid_query", f"bucket is too small for the period: it would make more than {MAX_BUCKETS} buckets"
        )
    return bucket


async def action_stats(call: Call) -> Response:
    action = await call.services.store.actions.get(call.tenant_id, call.param("id"))
    kind = call.request.query_params.get("kind")
    if kind is not None and kind not in KINDS:
        raise ApiError(400, "invalid_query", f"kind must be one of {', '.join(KINDS)}")
    since, until = _period(call)
    bucket = _bucket(call, until - since)
    stats = await call.services.store.statistics.action(
        call.tenant_id, action.id, since=since, until=until, bucket=bucket, kind=kind
    )
    return json({
        "action_id": action.id, "from": when(since), "to": when(until), "bucket_seconds": int(bucket.total_seconds()),
        "kind": kind, "runs": stats.runs, "p50_us": stats.p50_us, "p99_us": stats.p99_us,
        "outcomes": stats.outcomes, "errors": stats.errors,
        "buckets": [
            {"start": when(b.start), "runs": b.runs, "p50_us": b.p50_us, "p99_us": b.p99_us, "outcomes": b.outcomes}
            for b in stats.buckets
        ],
    })  # fmt: skip


async def tenant_usage(call: Call) -> Response:
    tenant = await call.services.store.tenants.get(call.param("id"))
    since, until = _period(call)
    usage = await call.services.store.statistics.usage(tenant.id, since=since, until=until)
    return json({
        "tenant_id": tenant.id, "from": when(since), "to": when(until), "executions": usage.executions,
        "errors": usage.by_status.get("failed", 0), "by_status": usage.by_status, "by_kind": usage.by_kind,
        "action_runs": usage.action_runs, "fuel_used": usage.fuel_used,
    })  # fmt: skip


ENDPOINTS = [
    Endpoint("GET", "/api/v2/actions/actions/{id}/stats", action_stats,
             "An action's run time (p50, p99 in microseconds) and outcomes over a period, per bucket "
             "(from, to: ISO 8601, default the last 24 hours; bucket: seconds; kind: flow or test)", "tenant",
             query=("from", "to", "bucket", "kind")),
    Endpoint("GET", "/api/v2/tenants/{id}/usage", tenant_usage,
             "A tenant's executions, errors, action runs and fuel over a period (from, to: ISO 8601, "
             "default the last 24 hours)", "operator", query=("from", "to")),
]  # fmt: skip
