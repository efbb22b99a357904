"""The live stream's reads: every record once its transaction ends, however late; none skipped by paging."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest

from runtime.store import Store, executions
from runtime.store.migrate import migrate
from runtime.vault import MasterKeyring

INSERT = (
    "INSERT INTO executions (tenant_id, id, trigger_id, kind, status, results)"
    " VALUES (%s, %s, 'post-login', 'flow', 'completed', '[]')"
)


@pytest.fixture
def tenant_db(new_database: Any) -> tuple[str, uuid.UUID]:
    url: str = new_database()
    migrate(url, report=lambda _: None)
    tid = uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (tid, f"stream-{tid.hex[:12]}"))
    return url, tid


async def _open(url: str) -> Store:
    return await Store.open(url, MasterKeyring.parse(MasterKeyring.generate_text()))


def test_a_record_committed_after_a_later_one_was_streamed_still_comes(tenant_db: tuple[str, uuid.UUID]) -> None:
    """A record whose transaction began first but committed last (as a batch written behind the answer can,
    against another server's record) comes in the next read; then nothing comes back."""
    url, tid = tenant_db
    early, late = uuid.uuid4(), uuid.uuid4()

    async def scenario() -> list[list[str]]:
        store = await _open(url)
        slow = await psycopg.AsyncConnection.connect(url)
        try:
            horizon = await store.executions.stream_start()
            await slow.execute(INSERT, (tid, early))  # its transaction has begun, with an older id
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as quick:
                await quick.execute(INSERT, (tid, late))
            reads = []
            for step in range(3):
                records, horizon = await store.executions.written_since(str(tid), horizon)
                reads.append([r.id for r in records])
                if step == 0:
                    await slow.commit()
            return reads
        finally:
            await slow.close()
            await store.close()

    first, second, third = asyncio.run(scenario())
    assert first == [str(late)]
    assert str(early) in second
    assert third == []


def test_paged_reads_skip_nothing(tenant_db: tuple[str, uuid.UUID], monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 3 and at most 7 records a read: ten records, each in its own transaction, all come, the
    first read stopping at 9 (whole pages) and the next going on from the last one's transaction."""
    monkeypatch.setattr(executions, "STREAM_PAGE_ROWS", 3)
    monkeypatch.setattr(executions, "STREAM_ROWS", 7)
    url, tid = tenant_db
    ids = [uuid.uuid4() for _ in range(10)]

    async def scenario() -> list[list[str]]:
        store = await _open(url)
        try:
            horizon = await store.executions.stream_start()
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                for i in ids:
                    await conn.execute(INSERT, (tid, i))
            reads = []
            for _ in range(3):
                records, horizon = await store.executions.written_since(str(tid), horizon)
                reads.append([r.id for r in records])
            return reads
        finally:
            await store.close()

    first, second, third = asyncio.run(scenario())
    assert len(first) == 9
    assert set(first) | set(second) == {str(i) for i in ids}
    assert second[-1] == str(ids[-1])
    assert third == []


def test_a_resumed_flow_comes_again(tenant_db: tuple[str, uuid.UUID]) -> None:
    """A record updated (a flow resumed at /continue adds its runs) is read again after it was streamed."""
    url, tid = tenant_db
    record = uuid.uuid4()

    async def scenario() -> list[list[str]]:
        store = await _open(url)
        try:
            horizon = await store.executions.stream_start()
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(INSERT, (tid, record))
                records, horizon = await store.executions.written_since(str(tid), horizon)
                reads = [[r.id for r in records]]
                async with store.logins.transaction() as tx:
                    await store.logins.record_execution(
                        tx, str(tid), execution_id=str(record), trigger_id="post-login", status="completed",
                        results=[{"status": "completed"}],
                    )  # fmt: skip
                for _ in range(2):
                    records, horizon = await store.executions.written_since(str(tid), horizon)
                    reads.append([f"{r.id}:{len(r.results)}" for r in records])
                return reads
        finally:
            await store.close()

    first, second, third = asyncio.run(scenario())
    assert first == [str(record)]
    assert f"{record}:1" in second
    assert third == []
