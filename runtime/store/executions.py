"""Execution records: what each run of a tenant's actions did."""

from __future__ import annotations

import asyncio
import builtins
import time
import uuid
from datetime import datetime
from typing import Any

from psycopg.types.json import Json, Jsonb

from runtime.limits import Quotas
from runtime.store.base import Conn, Repository, issued_at_ms, new_time_id, parse_id
from runtime.store.errors import NotFound
from runtime.store.records import Execution

__all__ = ["Executions"]


def _execution(row: dict[str, Any]) -> Execution:
    return Execution(
        tenant_id=str(row["tenant_id"]),
        id=str(row["id"]),
        trigger_id=row["trigger_id"],
        kind=row["kind"],
        status=row["status"],
        results=list(row["results"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        event=row.get("event"),
    )


# How far apart the clocks of two server processes (on different hosts) may be, for reading an id's time.
CLOCK_SKEW_S = 1.0

# A batch of records past their tenant's retention, oldest first, found tenant by tenant through the
# index on (tenant_id, created_at): the cost is the rows deleted, not the size of the table.
SWEEP = (
    "DELETE FROM executions WHERE ctid = ANY(ARRAY(SELECT old.ctid FROM tenants t CROSS JOIN LATERAL"
    " (SELECT e.ctid FROM executions e WHERE e.tenant_id = t.id AND e.created_at < now()"
    " - make_interval(days => coalesce((t.limits->>'execution_retention_days')::int, %(days)s))"
    " ORDER BY e.created_at LIMIT %(batch)s FOR UPDATE OF e SKIP LOCKED) old LIMIT %(batch)s))"
)


# The live stream reads records in pages of this many, and at most STREAM_ROWS per call. No transaction
# writes more than STREAM_ROWS records (a batch written behind the answer holds at most 256), so a call
# that stops there has always moved past a transaction.
STREAM_PAGE_ROWS = 200
STREAM_ROWS = 2000
_STREAMED = "SELECT *, written_in::text AS written FROM executions WHERE tenant_id = %(tenant)s AND "
_WRITTEN_FROM = _STREAMED + "written_in >= %(from)s::xid8 ORDER BY written_in, id LIMIT %(rows)s"
_WRITTEN_AFTER = _STREAMED + "(written_in, id) > (%(written)s::xid8, %(id)s) ORDER BY written_in, id LIMIT %(rows)s"


async def _horizon(conn: Conn) -> int:
    """The oldest transaction still running (every one before it has ended), as a 64-bit transaction id."""
    row = await (await conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin")).fetchone()
    assert row is not None
    return int(row["xmin"])


class Executions(Repository):
    """A tenant's execution records."""

    async def record(
        self, tenant_id: str, *, trigger_id: str, kind: str, status: str, results: list[dict[str, Any]],
        event: dict[str, Any] | None = None,
    ) -> Execution:  # fmt: skip
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            row = await (
                await conn.execute(
                    "INSERT INTO executions (tenant_id, id, trigger_id, kind, status, results, event)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *",
                    (
                        tid,
                        new_time_id(),
                        trigger_id,
                        kind,
                        status,
                        # json, not jsonb: the keys keep their order, which actions can see (replay).
                        Json(results),
                        Json(event) if event is not None else None,
                    ),
                )
            ).fetchone()
            assert row is not None
            return _execution(row)

    async def get(self, tenant_id: str, execution_id: str) -> Execution:
        """A record by its id. A login's record may still be on its way from another server process
        (written behind the login's answer), so a missing id issued moments ago is looked for again,
        every 50 ms for a moment (the write-behind's grace), before the answer is that there is no such
        record. Any other missing id (issued earlier, or never) is not found at once."""
        tid = parse_id(tenant_id, "tenant")
        eid = parse_id(execution_id, "execution")
        await self.settled()
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._grace_s(eid)
        while True:
            async with self.statement() as conn:
                row = await (
                    await conn.execute("SELECT * FROM executions WHERE tenant_id = %s AND id = %s", (tid, eid))
                ).fetchone()
            if row is not None:
                return _execution(row)
            if loop.time() >= give_up:
                raise NotFound(f"no execution with the id {execution_id!r}")
            await asyncio.sleep(0.05)

    def _grace_s(self, eid: uuid.UUID) -> float:
        """How long a missing record with this id may still take to show."""
        if self.behind is None:
            return 0.0
        issued = issued_at_ms(eid)
        if issued is None or issued < time.time() * 1000 - (self.behind.grace_s + CLOCK_SKEW_S) * 1000:
            return 0.0  # not a record id of ours, or issued long enough ago to have been written
        return self.behind.grace_s

    async def list(
        self,
        tenant_id: str,
        *,
        action_id: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page: int = 0,
        per_page: int = 50,
    ) -> tuple[builtins.list[Execution], int]:
        """A tenant's records, newest first, filtered by action, status and creation time; and how many match."""
        tid = parse_id(tenant_id, "tenant")
        where: builtins.list[str] = ["tenant_id = %s"]
        params: builtins.list[Any] = [tid]
        if action_id is not None:
            where.append("results::jsonb @> %s")
            params.append(Jsonb([{"action_id": str(parse_id(action_id, "action"))}]))
        if status is not None:
            where.append("status = %s")
            params.append(status)
        if since is not None:
            where.append("created_at >= %s")
            params.append(since)
        if until is not None:
            where.append("created_at < %s")
            params.append(until)
        condition = " AND ".join(where)
        await self.settled()
        async with self.transaction() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT *, count(*) OVER () AS total FROM executions WHERE {condition}"
                    " ORDER BY created_at DESC, id LIMIT %s OFFSET %s",
                    (*params, per_page, page * per_page),
                )
            ).fetchall()
        return [_execution(r) for r in rows], int(rows[0]["total"]) if rows else 0

    async def stream_start(self) -> int:
        """Where a live stream starts reading (see :meth:`written_since`): the records written from now on."""
        async with self.statement() as conn:
            return await _horizon(conn)

    async def written_since(self, tenant_id: str, horizon: int) -> tuple[builtins.list[Execution], int]:
        """The records written (inserted or updated) by transactions from `horizon` on, in the order of
        those transactions, and the horizon to ask from next time.

        The next horizon is the oldest transaction still running when this call began: every transaction
        before it has ended, so all its records are here now or never will be. A record is never missed,
        however late its transaction commits (a clock could not promise that: a record stamped earlier can
        be committed later); one written by a transaction from the next horizon on may come back next time,
        and the caller tells it apart. At most STREAM_ROWS are read per call; the horizon then stops at
        the last one's transaction, so the next call goes on from there.
        """
        tid = parse_id(tenant_id, "tenant")
        await self.settled()
        records: builtins.list[Execution] = []
        async with self.statement() as conn:
            following = await _horizon(conn)
            params: dict[str, Any] = {"tenant": tid, "from": str(horizon), "rows": STREAM_PAGE_ROWS}
            rows = await (await conn.execute(_WRITTEN_FROM, params)).fetchall()
            while rows:
                records.extend(_execution(r) for r in rows)
                last = rows[-1]
                if len(records) >= STREAM_ROWS:
                    return records, min(following, int(last["written"]))
                if len(rows) < STREAM_PAGE_ROWS:
                    break
                params.update(written=last["written"], id=last["id"])
                rows = await (await conn.execute(_WRITTEN_AFTER, params)).fetchall()
        return records, following

    async def sweep(self) -> int:
        """Delete records older than their tenant's retention (execution_retention_days, 10 by default),
        tenant by tenant through the index on (tenant, time), a batch at a time (never a scan of the table)."""
        return await self.delete_in_batches(SWEEP, {"days": Quotas().execution_retention_days})
