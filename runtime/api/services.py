"""What the HTTP layer runs on: the store, the executor pool, the keys. Made once per server process.

Start-up, in order, each step logged in words: the database (DATABASE_URL,
or the embedded server, started if needed), the schema (migrations), the
master keyring (refusing to start when the database holds secrets it cannot
read), the operator key, the executor processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread

from runtime import metrics
from runtime.config import Settings
from runtime.flows.runner import FlowRunner
from runtime.limits import Limits, TenantLimits
from runtime.sandbox import CompiledAction, ExecutionResult, SandboxError
from runtime.sandbox.pool import ExecutorPool
from runtime.store import Store, database_url, migrate
from runtime.store.records import Principal
from runtime.vault import MasterKeyring

__all__ = ["Services", "StartupError", "announce_operator_key", "resolve_keyring", "start_services", "sweep_forever"]

log = logging.getLogger("tollgate")


class StartupError(RuntimeError):
    """The service cannot start; the message says what to do."""


@dataclass
class TenantGate:
    """Executions in flight per tenant, in this process (max_concurrent_executions)."""

    running: dict[str, int] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def slot(self, tenant_id: str, limit: int) -> AsyncIterator[bool]:
        """Yields whether a slot was free; the slot is released when the block ends."""
        if self.running.get(tenant_id, 0) >= limit:
            yield False
            return
        self.running[tenant_id] = self.running.get(tenant_id, 0) + 1
        try:
            yield True
        finally:
            self.running[tenant_id] -= 1


@dataclass
class Services:
    settings: Settings
    store: Store
    executors: ExecutorPool
    operator_key_hash: bytes | None
    gate: TenantGate = field(default_factory=TenantGate)
    flows: FlowRunner = field(init=False)
    # Set when the server starts stopping: readiness checks fail from then on.
    closing: bool = False

    def __post_init__(self) -> None:
        self.flows = FlowRunner(self)

    def operator_principal(self, key: str) -> Principal | None:
        """The operator, when `key` is the operator key from the environment (constant-time)."""
        if self.operator_key_hash is None:
            return None
        if hmac.compare_digest(hashlib.sha256(key.encode()).digest(), self.operator_key_hash):
            return Principal(kind="operator", key_id="environment")
        return None

    async def tenant_limits(self, tenant_id: str) -> TenantLimits:
        tenant = await self.store.tenants.get(tenant_id)
        return TenantLimits.from_overrides(tenant.limits)

    async def compile(self, source: str, *, trigger: str, limits: TenantLimits) -> CompiledAction:
        """Compile in an executor process (tenant code never runs in the server)."""
        action: CompiledAction = await anyio.to_thread.run_sync(
            lambda: self.executors.compile(
                source, trigger=trigger, limits=limits.execution, max_source_bytes=limits.quotas.max_code_bytes
            )
        )
        return action

    async def execute(
        self,
        action: CompiledAction,
        handler: str,
        event: Mapping[str, Any],
        *,
        secrets: Mapping[str, str],
        limits: Limits,
        cache: Mapping[str, Any],
    ) -> ExecutionResult:
        started = time.perf_counter()
        try:
            result = await self.executors.execute_async(
                action, handler, event, secrets=secrets, limits=limits, cache=cache
            )
        except SandboxError as exc:
            metrics.execution_ran(exc.error_class, time.perf_counter() - started)
            raise
        metrics.execution_ran("ok" if result.error is None else result.error.error_class, time.perf_counter() - started)
        return result

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.executors.close)
        await self.store.close()


def _key_file_keyring(home: Path) -> tuple[MasterKeyring, str]:
    path = home / "master.key"
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise StartupError(f"the master key file {path} is readable by others; run: chmod 600 {path}")
        return MasterKeyring.parse(path.read_text().strip()), f"the key file {path}"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = MasterKeyring.generate_text()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return MasterKeyring.parse(text), f"a new key file {path} (created now, readable only by you)"


def resolve_keyring(settings: Settings) -> tuple[MasterKeyring | None, str]:
    """The master keyring and where it came from; malformed keys refuse to start."""
    from runtime.vault import MasterKeyMalformed

    try:
        if settings.master_key:
            return MasterKeyring.parse(settings.master_key), "the TOLLGATE_MASTER_KEY environment variable"
        if settings.embedded:
            return _key_file_keyring(settings.home)
    except MasterKeyMalformed as exc:
        raise StartupError(f"the master key is malformed: {exc}") from None
    return None, "nowhere (TOLLGATE_MASTER_KEY is not set)"


async def check_keyring(store: Store, keyring: MasterKeyring | None) -> None:
    """Refuse to run when the database holds secrets this keyring cannot read."""
    used = await store.data_keys.master_key_ids()
    if not used:
        return
    if keyring is None:
        raise StartupError("the database holds encrypted secrets but no master key is set: set TOLLGATE_MASTER_KEY")
    missing = used - set(keyring.ids)
    if missing:
        raise StartupError(
            "the master keyring does not hold the key that encrypted this database's secrets "
            f"(key id {', '.join(sorted(missing))}); set TOLLGATE_MASTER_KEY to the right key"
        )


async def announce_operator_key(store: Store, settings: Settings) -> None:
    """Say where the operator key comes from; make one on first start and print it, once."""
    origin, new_key = await store.keys.ensure_operator_key(settings.operator_key is not None)
    log.info("Operator key: %s", origin)
    if new_key is not None:
        # Shown once: only its hash is stored.
        print(f"\n  Operator API key (shown once, keep it safe): {new_key}\n", flush=True)


async def start_services(settings: Settings, *, executors: int | None = None, schema_ready: bool = False) -> Services:
    """The services of one server process. `schema_ready`: the schema is known to be up to date (its
    migrations already ran at this start), so it is not checked again."""
    log.info("Starting Tollgate (%s)", settings)
    if settings.embedded:
        log.info("No DATABASE_URL: using the embedded PostgreSQL in %s", settings.home / "pgdata")
    else:
        log.info("Using the PostgreSQL server given by DATABASE_URL")
    try:
        url = await anyio.to_thread.run_sync(lambda: database_url(settings.database_url, settings.home))
        if not schema_ready:
            await anyio.to_thread.run_sync(lambda: migrate(url, report=log.info))
    except Exception as exc:
        raise StartupError(f"the database cannot be used: {type(exc).__name__}: {exc}") from None
    keyring, key_origin = resolve_keyring(settings)
    log.info("Master key: %s", key_origin)
    store = await Store.open(url, keyring)
    try:
        await check_keyring(store, keyring)
        operator_hash = hashlib.sha256(settings.operator_key.encode()).digest() if settings.operator_key else None
        await announce_operator_key(store, settings)
        count = executors or settings.executors
        log.info("Starting %d executor process%s for sandboxed work", count, "" if count == 1 else "es")
        pool = await anyio.to_thread.run_sync(lambda: ExecutorPool(processes=count))
    except BaseException:
        await store.close()
        raise
    return Services(settings=settings, store=store, executors=pool, operator_key_hash=operator_hash)


async def read_services_forever(services: Services, every_s: float = 5.0) -> None:
    """Keep the metrics' gauges (executors, database connections, records waiting) a few seconds fresh: with
    several server processes, GET /metrics reaches one, which reads only its own services when asked."""
    while True:
        try:
            metrics.read_services(services)
            metrics.forget_ended_processes()
        except Exception:
            log.exception("reading the services for the metrics failed; they will be read again")
        await asyncio.sleep(every_s)


async def sweep_forever(services: Services, every_s: float = 60.0) -> None:
    """Delete expired cache entries, sessions, suspended flows, results and old execution records, every minute."""
    while True:
        await asyncio.sleep(every_s)
        try:
            entries = await services.store.cache.sweep()
            rows = (
                await services.store.logins.sweep()
                + await services.store.oauth.sweep()
                + await services.store.executions.sweep()
            )
            if entries or rows:
                log.info("Swept %d expired cache entries and %d expired login rows", entries, rows)
        except Exception:
            log.exception("the sweep of expired rows failed; it will run again")
