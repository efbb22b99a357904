"""The flow head's session upsert: committed without waiting for the WAL flush, and only it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from runtime.store import Store
from runtime.store.logins import ExternalSession
from tests.fix_api import TenantClient


def test_the_session_upsert_does_not_wait_for_the_flush_and_the_setting_does_not_stay(
    tenant: TenantClient, database_url: str
) -> None:
    """Right after the head, the WAL is written further than it is flushed (the commit did not wait for
    it); on the same pooled connection the next statement commits as usual, waiting."""

    async def scenario() -> list[dict[str, Any]]:
        store = await Store.open(database_url, None, max_connections=1)  # one connection: the same one
        seen = []
        try:
            for n in range(5):
                external = ExternalSession(
                    f"idp-session-{n}\x00auth0|u", "auth0|u", timedelta(days=1), timedelta(hours=1)
                )
                head = await store.logins.flow_head(tenant.id, "post-login", external=external)
                assert head.session is not None and head.session.user_id == "auth0|u"
                async with store.pool.connection() as conn:
                    row = await (
                        await conn.execute(
                            "SELECT pg_current_wal_flush_lsn() < pg_current_wal_insert_lsn() AS unflushed,"
                            " current_setting('synchronous_commit') AS mode"
                        )
                    ).fetchone()
                assert row is not None
                seen.append(row)
        finally:
            await store.close()
        return seen

    seen = asyncio.run(scenario())
    assert [row["mode"] for row in seen] == ["on"] * 5
    # The WAL writer flushes every 200 ms, so one of five checks made a moment after the commit may
    # find it flushed already; a commit that waited would find it flushed every time.
    assert any(row["unflushed"] for row in seen)
