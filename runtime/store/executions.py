"""Execution records: what each run of a tenant's actions did."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from runtime.store.base import Repository, new_id, parse_id
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
    )


class Executions(Repository):
    """A tenant's execution records."""

    async def record(
        self, tenant_id: str, *, trigger_id: str, kind: str, status: str, results: list[dict[str, Any]]
    ) -> Execution:
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            row = await (
                await conn.execute(
                    "INSERT INTO executions (tenant_id, id, trigger_id, kind, status, results)"
                    " VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
                    (tid, new_id(), trigger_id, kind, status, Jsonb(results)),
                )
            ).fetchone()
            assert row is not None
            return _execution(row)

    async def get(self, tenant_id: str, execution_id: str) -> Execution:
        tid = parse_id(tenant_id, "tenant")
        eid = parse_id(execution_id, "execution")
        async with self.transaction() as conn:
            row = await (
                await conn.execute("SELECT * FROM executions WHERE tenant_id = %s AND id = %s", (tid, eid))
            ).fetchone()
            if row is None:
                raise NotFound(f"no execution with the id {execution_id!r}")
            return _execution(row)
