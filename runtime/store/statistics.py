"""Figures computed from the execution records, in SQL: an action's latency and outcomes, a tenant's usage.

The records keep their JSON as written (``json``, not ``jsonb``: actions can
see the order of keys); the queries unnest each record's action runs with
``json_array_elements`` and cast to ``jsonb`` only where containment is
asked. Every query is bounded by the tenant and a period, which the
``(tenant_id, created_at)`` index serves. Read once per request from the
console or a client.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from runtime.store.base import Repository, parse_id
from runtime.store.records import ActionStats, LatencyBucket, Usage

__all__ = ["OUTCOMES", "Statistics"]

# How an action run ended, as the statistics count it: a failure (any error class), a deny, a
# redirect (the login went on to a page of the action's choosing), or none of those.
OUTCOMES = ("completed", "denied", "redirected", "failed")

_ACTION_STATS = """
WITH runs AS (
    SELECT date_bin(%(bucket)s, e.created_at, TIMESTAMPTZ 'epoch') AS bucket,
           (r->'stats'->>'duration_us')::bigint AS duration_us,
           coalesce(r->'error'->>'class', 'platform_error') AS error_class,
           CASE WHEN r->>'status' = 'failed' THEN 'failed'
                WHEN (r->'commands')::jsonb @> '[{"type": "deny"}]' THEN 'denied'
                WHEN (r->'commands')::jsonb @> '[{"type": "redirect"}]' THEN 'redirected'
                ELSE 'completed' END AS outcome
    FROM executions e CROSS JOIN LATERAL json_array_elements(e.results) AS r
    WHERE e.tenant_id = %(tenant)s AND e.created_at >= %(since)s AND e.created_at < %(until)s
      AND r->>'action_id' = %(action)s AND (%(kind)s::text IS NULL OR e.kind = %(kind)s)
), errors AS (
    SELECT coalesce(jsonb_object_agg(error_class, n), '{}'::jsonb) AS errors
    FROM (SELECT error_class, count(*) AS n FROM runs WHERE outcome = 'failed' GROUP BY error_class) AS failed
)
SELECT grouping(bucket) = 1 AS whole_period, bucket, count(*) AS runs,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_us) AS p50_us,
       percentile_disc(0.99) WITHIN GROUP (ORDER BY duration_us) AS p99_us,
       jsonb_build_object(
           'completed', count(*) FILTER (WHERE outcome = 'completed'),
           'denied', count(*) FILTER (WHERE outcome = 'denied'),
           'redirected', count(*) FILTER (WHERE outcome = 'redirected'),
           'failed', count(*) FILTER (WHERE outcome = 'failed')
       ) AS outcomes,
       (SELECT errors FROM errors) AS errors
FROM runs
GROUP BY GROUPING SETS ((bucket), ())
ORDER BY whole_period, bucket
"""

_USAGE = """
SELECT e.kind, e.status, count(*) AS executions, sum(runs.n) AS runs, sum(runs.fuel) AS fuel
FROM executions e CROSS JOIN LATERAL (
    SELECT count(*) AS n, coalesce(sum((r->'stats'->>'fuel_used')::bigint), 0) AS fuel
    FROM json_array_elements(e.results) AS r
) AS runs
WHERE e.tenant_id = %(tenant)s AND e.created_at >= %(since)s AND e.created_at < %(until)s
GROUP BY e.kind, e.status
"""


def _bucket(row: dict[str, Any]) -> LatencyBucket:
    return LatencyBucket(
        start=row["bucket"],
        runs=int(row["runs"]),
        p50_us=None if row["p50_us"] is None else int(row["p50_us"]),
        p99_us=None if row["p99_us"] is None else int(row["p99_us"]),
        outcomes={name: int(row["outcomes"][name]) for name in OUTCOMES},
    )


class Statistics(Repository):
    """Read-only figures over a tenant's execution records."""

    async def action(
        self, tenant_id: str, action_id: str, *, since: datetime, until: datetime, bucket: timedelta,
        kind: str | None = None,
    ) -> ActionStats:  # fmt: skip
        """The action's runs from `since` to `until` in buckets of `bucket`: p50 and p99 of
        ``stats.duration_us`` and the count of each outcome; the same over the whole period, with the
        failures by error class. `kind` keeps only logins ("flow") or tests ("test").

        Buckets start at whole multiples of `bucket` since 1970-01-01 UTC (so the first may start
        before `since`), which keeps them the same from one request to the next; those without runs
        are left out."""
        tid = parse_id(tenant_id, "tenant")
        aid = parse_id(action_id, "action")
        params = {"tenant": tid, "action": str(aid), "since": since, "until": until, "bucket": bucket, "kind": kind}
        await self.settled()
        async with self.statement() as conn:
            rows = await (await conn.execute(_ACTION_STATS, params)).fetchall()
        whole = next(r for r in rows if r["whole_period"])
        return ActionStats(
            buckets=[_bucket(r) for r in rows if not r["whole_period"]],
            runs=int(whole["runs"]),
            p50_us=None if whole["p50_us"] is None else int(whole["p50_us"]),
            p99_us=None if whole["p99_us"] is None else int(whole["p99_us"]),
            outcomes={name: int(whole["outcomes"][name]) for name in OUTCOMES},
            errors={str(k): int(v) for k, v in (whole["errors"] or {}).items()},
        )

    async def usage(self, tenant_id: str, *, since: datetime, until: datetime) -> Usage:
        """What the tenant's executions from `since` to `until` came to: how many, by status and by kind
        (logins are "flow", tests "test"), their action runs and the fuel those used."""
        params = {"tenant": parse_id(tenant_id, "tenant"), "since": since, "until": until}
        await self.settled()
        async with self.statement() as conn:
            rows = await (await conn.execute(_USAGE, params)).fetchall()
        by_status: dict[str, int] = {}
        by_kind: dict[str, int] = {}
        for row in rows:
            by_status[row["status"]] = by_status.get(row["status"], 0) + int(row["executions"])
            by_kind[row["kind"]] = by_kind.get(row["kind"], 0) + int(row["executions"])
        return Usage(
            executions=sum(by_status.values()),
            by_status=by_status,
            by_kind=by_kind,
            action_runs=sum(int(r["runs"]) for r in rows),
            fuel_used=sum(int(r["fuel"]) for r in rows),
        )
