"""Running the service: ``tollgate serve``, ``tollgate migrate``, ``tollgate rotate-master-key``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import shutil
import sys
import tempfile
from typing import Any

from runtime.config import Settings

log = logging.getLogger("tollgate")


def configure_logging(*, processes: bool = False) -> None:
    """Log lines in words on standard error; with `processes`, each says which server process wrote it."""
    where = "[%(process)d] " if processes else ""
    # Not recorded, as the logging documentation advises where logging is hot (a line per request): what no
    # line shows, the calling file and line (found by walking the stack), the thread's and the process's names.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s %(levelname)-7s {where}%(message)s", datefmt="%H:%M:%S", force=True
    )


async def _preflight(settings: Settings) -> None:
    """Check, before serving, that the service can start; StartupError says why not."""
    from runtime.api.services import StartupError, announce_operator_key, check_keyring, resolve_keyring
    from runtime.store import Store, database_url, migrate

    try:
        url = await asyncio.to_thread(database_url, settings.database_url, settings.home)
        await asyncio.to_thread(migrate, url, report=log.info)
    except Exception as exc:
        raise StartupError(f"the database cannot be used: {type(exc).__name__}: {exc}") from None
    keyring, _ = resolve_keyring(settings)
    store = await Store.open(url, keyring)
    try:
        await check_keyring(store, keyring)
        # Before the server processes start, so that the key is made and shown once.
        await announce_operator_key(store, settings)
    finally:
        await store.close()


# What `serve` with several processes keeps in the temporary folder while it runs (a table of connections,
# a folder of metrics), named with its process id; it removes them when it stops.
TABLE_PREFIX, METRICS_PREFIX = "tollgate-connections-", "tollgate-metrics-"
_LEFTOVER = re.compile(rf"^(?:{TABLE_PREFIX}|{METRICS_PREFIX})(\d+)-")


def sweep_leftovers(folder: str | None = None) -> int:
    """Remove what a `serve` that was killed (SIGKILL, the OOM killer) left in the temporary folder: this user's
    entries named for a process that no longer runs. Those of running servers stay. How many went."""
    from runtime.balance import process_alive

    folder = folder or tempfile.gettempdir()
    removed: list[str] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            found = _LEFTOVER.match(entry.name)
            if found is None or process_alive(int(found.group(1))):
                continue
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed.append(entry.name)
    if removed:
        log.info(
            "Removed %d file%s that a server which did not stop cleanly left in %s: %s",
            len(removed), "" if len(removed) == 1 else "s", folder, ", ".join(sorted(removed)),
        )  # fmt: skip
    return len(removed)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from runtime.accesslog import AccessLog
    from runtime.api.app import create_app
    from runtime.api.services import StartupError
    from runtime.balance import TABLE_ENV, ConnectionTable
    from runtime.metrics import MULTIPROCESS_ENV

    configure_logging()
    cores = os.cpu_count() or 1
    settings = Settings.from_environment()
    # One server process per core on a real database; one on the embedded default, which is for
    # trying things out (and is stopped cleanly only when its last user exits in order).
    default_workers = 1 if settings.embedded else cores
    workers = args.workers or int(os.environ.get("TOLLGATE_WORKERS") or default_workers)
    executors = args.executors or int(os.environ.get("TOLLGATE_EXECUTORS") or max(1, cores // workers))
    # Read by every server process, the workers too.
    os.environ["TOLLGATE_EXECUTORS"] = str(executors)
    settings = Settings.from_environment()
    access_log = os.environ.get("TOLLGATE_ACCESS_LOG", "on").strip().lower()
    if access_log not in ("on", "off"):
        log.error("Cannot start: TOLLGATE_ACCESS_LOG must be on or off, not %r", access_log)
        return 2
    try:
        asyncio.run(_preflight(settings))
    except StartupError as exc:
        log.error("Cannot start: %s", exc)
        return 1
    base = f"http://{args.host}:{args.port}"
    ready = (
        f"Ready: the management API is at {base}/api/v2 (OpenAPI document: /api/v2/openapi.json), "
        f"tenants' login pages at {base}/t/<tenant>/authorize, the web console at {base}/console. Stop with Ctrl+C."
    )
    # A line per request by default (runtime/accesslog.py, not uvicorn's); off where a proxy in front keeps the
    # access log. Read by every server process.
    per_request = access_log == "on" and not args.no_access_log
    os.environ["TOLLGATE_ACCESS_LOG"] = "on" if per_request else "off"
    common: dict[str, Any] = {"host": args.host, "port": args.port, "log_level": "info", "access_log": False,
                              "log_config": None}  # fmt: skip
    # The schema was brought up to date above: the server processes do not migrate again.
    if workers == 1:
        app = create_app(settings, ready_message=ready, server_process=True, schema_ready=True)
        uvicorn.run(AccessLog(app, processes=False) if per_request else app, **common)
    else:
        configure_logging(processes=True)
        log.info(
            "Starting %d server processes, each with %d executor process%s",
            workers, settings.executors, "" if settings.executors == 1 else "es",
        )  # fmt: skip
        os.environ["TOLLGATE_READY_MESSAGE"] = ready
        sweep_leftovers()
        # The processes share out the connections evenly (runtime/balance.py), through a table they all map.
        table = ConnectionTable.create(prefix=f"{TABLE_PREFIX}{os.getpid()}-")
        os.environ[TABLE_ENV] = table
        # Each process writes its metrics to a file here; the one GET /metrics reaches sums them (runtime/metrics.py).
        figures = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")
        os.environ[MULTIPROCESS_ENV] = figures
        try:
            uvicorn.run("runtime.api.app:app_from_environment", factory=True, workers=workers,
                        loop="runtime.balance:BalancingLoop", **common)  # fmt: skip
        finally:
            with contextlib.suppress(OSError):
                os.unlink(table)
            shutil.rmtree(figures, ignore_errors=True)
    return 0


def migrate_command(args: argparse.Namespace) -> int:
    from runtime.store import database_url, migrate

    configure_logging()
    settings = Settings.from_environment()
    try:
        url = database_url(settings.database_url, settings.home)
        applied = migrate(url, report=print)
    except Exception as exc:
        print(f"tollgate migrate: the database cannot be used: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if not applied:
        print("The database schema is up to date: nothing to apply.")
    return 0


async def _rotate(settings: Settings, retire: bool) -> str:
    from runtime.api.services import StartupError, resolve_keyring
    from runtime.store import Store, database_url
    from runtime.vault import MasterKeyring

    url = await asyncio.to_thread(database_url, settings.database_url, settings.home)
    keyring, origin = resolve_keyring(settings)
    if keyring is None:
        raise StartupError("no master key is configured: set TOLLGATE_MASTER_KEY")
    key_file = settings.home / "master.key" if not settings.master_key else None
    if key_file is not None and not retire:
        # The key file: put a new key first, keep the old ones so running servers can still unwrap.
        keyring = MasterKeyring.parse(MasterKeyring.generate_text() + "," + keyring.text())
        _write_key_file(key_file, keyring.text())
    store = await Store.open(url, keyring)
    try:
        count = await store.data_keys.rewrap_all(keyring)
        in_use = await store.data_keys.master_key_ids()
    finally:
        await store.close()
    if retire:
        stale = [k for k in keyring.ids[1:] if k not in in_use]
        if key_file is not None and stale:
            _write_key_file(key_file, keyring.text().split(",")[0])
        return f"Re-wrapped {count} data keys; the key file now holds only key {keyring.current_id}"
    return (
        f"Re-wrapped {count} data keys with master key {keyring.current_id} (from {origin}). "
        "Older keys are no longer needed once every server runs with the new key"
        + ("; run `tollgate rotate-master-key --retire` to drop them from the key file." if key_file else ".")
    )


def _write_key_file(path: Any, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def rotate_command(args: argparse.Namespace) -> int:
    from runtime.api.services import StartupError
    from runtime.vault import VaultError

    configure_logging()
    try:
        print(asyncio.run(_rotate(Settings.from_environment(), args.retire)))
    except (StartupError, VaultError) as exc:
        print(f"tollgate rotate-master-key: {exc}", file=sys.stderr)
        return 1
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_parsers(sub: Any) -> None:
    parser = sub.add_parser("serve", help="serve the management API (applies migrations first)")
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="default: 8080")
    parser.add_argument(
        "--workers", type=_positive, default=None,
        help="server processes answering HTTP (default: TOLLGATE_WORKERS, else one per core)",
    )  # fmt: skip
    parser.add_argument(
        "--executors", type=_positive, default=None,
        help="executor processes per server process (default: TOLLGATE_EXECUTORS, else the cores shared out)",
    )  # fmt: skip
    parser.add_argument(
        "--no-access-log", action="store_true",
        help="no log line per request (default: TOLLGATE_ACCESS_LOG=on|off, else on); the server's own lines stay",
    )  # fmt: skip
    parser.set_defaults(func=serve)
    parser = sub.add_parser("migrate", help="apply database migrations (also done by serve)")
    parser.set_defaults(func=migrate_command)
    parser = sub.add_parser(
        "rotate-master-key",
        help="re-wrap every tenant data key with the first key of the master keyring",
        description=(
            "With TOLLGATE_MASTER_KEY: set it to 'NEW,OLD' on every server, run this, then drop OLD. "
            "With the embedded default's key file: a new key is generated and put first."
        ),
    )
    parser.add_argument("--retire", action="store_true", help="drop keys no data key uses from the key file")
    parser.set_defaults(func=rotate_command)
