"""Schema migrations: numbered SQL files in ``migrations/``, each applied once.

``NNNN_name.sql`` files run in order, each in its own transaction, and are
recorded in ``schema_migrations``; a second run applies nothing. A file whose
first line is ``-- no transaction`` runs statement by statement instead, for
what cannot run in a transaction: ``CREATE INDEX CONCURRENTLY``, which builds
an index on a large table without blocking the servers writing to it. Such a
file must be safe to run again from the start (a build cut short leaves an
unusable index: drop it first). An advisory lock makes concurrent starts
(several servers at once) safe: one applies, the others wait and then find
nothing to do. Runs at every service start and from ``tollgate migrate``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

log = logging.getLogger(__name__)

# pg_advisory_lock key: the ASCII of "tollgate" as a 64-bit integer.
LOCK_KEY = int.from_bytes(b"tollgate", "big") & 0x7FFF_FFFF_FFFF_FFFF
NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


NO_TRANSACTION = "-- no transaction"
# How often a server waiting for another's migrations asks for the lock again.
LOCK_POLL_S = 0.5


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def in_transaction(self) -> bool:
        return not self.sql.startswith(NO_TRANSACTION + "\n")

    def statements(self) -> list[str]:
        """The statements of the file, comments dropped (statements end with a semicolon at a line's end)."""
        code = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip() for s in code.split(";\n") if s.strip().rstrip(";").strip()]


def available() -> list[Migration]:
    """The migration files shipped with the package, in order."""
    found = []
    for item in resources.files("runtime.store").joinpath("migrations").iterdir():
        match = NAME.match(item.name)
        if match:
            found.append(Migration(int(match[1]), match[2], item.read_text()))
    return sorted(found, key=lambda m: m.version)


def _try_lock(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
    return bool(row and row[0])


def migrate(url: str, *, report: Callable[[str], None] = log.info) -> list[Migration]:
    """Apply the migrations the database lacks; the ones applied."""
    applied: list[Migration] = []
    with psycopg.connect(url, autocommit=True) as conn:
        # Asked again and again rather than waited for in one statement: a waiting statement holds a
        # snapshot, which the holder's CREATE INDEX CONCURRENTLY would wait for in turn.
        said = False
        while not _try_lock(conn):
            if not said:
                report("Waiting for another server to finish migrating the database")
                said = True
            time.sleep(LOCK_POLL_S)
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
                record = ("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                          (migration.version, migration.name))  # fmt: skip
                if migration.in_transaction:
                    with conn.transaction():
                        conn.execute(migration.sql.encode())
                        conn.execute(*record)
                else:
                    for statement in migration.statements():
                        conn.execute(statement.encode())
                    conn.execute(*record)
                applied.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    if not applied:
        report("The database schema is up to date")
    return applied
