"""Schema migrations: numbered SQL files in ``migrations/``, each applied once.

``NNNN_name.sql`` files run in order, each in its own transaction, and are
recorded in ``schema_migrations``; a second run applies nothing. An advisory
lock makes concurrent starts (several servers at once) safe: one applies,
the others wait and then find nothing to do. Runs at every service start
and from ``tollgate migrate``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import psycopg

log = logging.getLogger(__name__)

# pg_advisory_lock key: the ASCII of "tollgate" as a 64-bit integer.
LOCK_KEY = int.from_bytes(b"tollgate", "big") & 0x7FFF_FFFF_FFFF_FFFF
NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """The migration files shipped with the package, in order."""
    found = []
    for item in resources.files("runtime.store").joinpath("migrations").iterdir():
        match = NAME.match(item.name)
        if match:
            found.append(Migration(int(match[1]), match[2], item.read_text()))
    return sorted(found, key=lambda m: m.version)


def migrate(url: str, *, report: Callable[[str], None] = log.info) -> list[Migration]:
    """Apply the migrations the database lacks; the ones applied."""
    applied: list[Migration] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in available():
                if migration.version in done:
                    continue
                report(f"Applying migration {migration.version:04d} ({migration.name.replace('_', ' ')})")
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                applied.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    if not applied:
        report("The database schema is up to date")
    return applied
