"""Migrations apply once, in order, recorded; concurrent starts are safe."""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from runtime.store.migrate import Migration, available, migrate


def test_migrations_apply_once(new_database: Any) -> None:
    """The first run applies every migration; the second applies nothing."""
    url = new_database()
    messages: list[str] = []
    first = migrate(url, report=messages.append)
    assert [m.version for m in first] == [m.version for m in available()]
    assert migrate(url, report=messages.append) == []
    assert messages[-1] == "The database schema is up to date"
    with psycopg.connect(url) as conn:
        recorded = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert recorded == [m.version for m in available()]


def test_concurrent_migrations_apply_each_once(new_database: Any) -> None:
    """Four servers starting at once: one applies, the others find nothing to do."""
    url = new_database()
    results: list[int] = []

    def start() -> None:
        results.append(len(migrate(url, report=lambda _: None)))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 0, 0, len(available())]


def test_migration_files_are_numbered_without_gaps() -> None:
    """Versions start at 1 and have no gaps or duplicates."""
    versions = [m.version for m in available()]
    assert versions == list(range(1, len(versions) + 1))


def test_a_no_transaction_migration_runs_statement_by_statement() -> None:
    sql = (
        "-- no transaction\n-- why\nDROP INDEX CONCURRENTLY IF EXISTS i;\nCREATE INDEX CONCURRENTLY i\n    ON t (a);\n"
    )
    migration = Migration(1, "i", sql)
    assert not migration.in_transaction
    assert migration.statements() == [
        "DROP INDEX CONCURRENTLY IF EXISTS i",
        "CREATE INDEX CONCURRENTLY i\n    ON t (a);",
    ]
    assert Migration(2, "t", "-- a comment first\nCREATE TABLE t (a int);\n").in_transaction


def test_indexes_built_concurrently_are_valid_and_rebuilt_when_cut_short(new_database: Any) -> None:
    """The migrations that build indexes without blocking writes leave valid indexes; one run again (as after
    a build cut short, which leaves an index of that name behind) drops what it finds and builds it anew."""
    url = new_database()
    migrate(url, report=lambda _: None)
    last = available()[-1]
    assert not last.in_transaction
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = %s", (last.version,))
        conn.execute("DROP INDEX executions_written_in")
        conn.execute("CREATE INDEX executions_written_in ON executions (created_at)")  # what an attempt left
    assert [m.version for m in migrate(url, report=lambda _: None)] == [last.version]
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname, i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY(%s)",
            (["refresh_tokens_expiry", "sessions_ended", "executions_written_in", "refresh_tokens_family"],),
        ).fetchall()
        gone = conn.execute("SELECT to_regclass('sessions_expiry')").fetchone()
    assert len(rows) == 4 and all(valid for _, valid, _ in rows)
    assert "(tenant_id, written_in)" in next(d for name, _, d in rows if name == "executions_written_in")
    assert gone == (None,)
