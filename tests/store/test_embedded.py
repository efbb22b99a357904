"""The embedded default: a PostgreSQL started from the pip package, whose data survives restarts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from runtime.store import embedded, migrate

SCRIPT = """
import sys
from pathlib import Path
import psycopg
from runtime.store import embedded
url = embedded.start(Path(sys.argv[1]))
with psycopg.connect(url, autocommit=True) as conn:
    if sys.argv[2] == "write":
        conn.execute("CREATE TABLE IF NOT EXISTS kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('survives')")
    else:
        print(conn.execute("SELECT v FROM kept").fetchone()[0])
"""


def test_the_embedded_server_starts_and_keeps_its_data(tmp_path: Path) -> None:
    """A process starts it and writes; a later process (after the first stopped it) reads the data."""
    home = tmp_path / "home"
    run = [sys.executable, "-c", SCRIPT, str(home)]
    write = subprocess.run([*run, "write"], capture_output=True, text=True, timeout=120, check=False)
    assert write.returncode == 0, write.stderr
    assert (home / "pgdata" / "PG_VERSION").exists()
    read = subprocess.run([*run, "read"], capture_output=True, text=True, timeout=120, check=False)
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "survives"


def test_migrations_run_on_the_embedded_server(tmp_path: Path) -> None:
    """The schema applies to the embedded server as to any other."""
    url = embedded.start(tmp_path / "home")
    migrate(url, report=lambda _: None)
    with psycopg.connect(url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"tenants", "actions", "action_versions", "action_secrets", "bindings", "executions"} <= tables
