"""Migrations apply once, in order, recorded; concurrent starts are safe."""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from runtime.store.migrate import available, migrate


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
