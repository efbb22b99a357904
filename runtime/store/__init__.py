"""The store: everything that must survive, in PostgreSQL. The only package that imports psycopg.

Every table that holds tenant data has the tenant's id, and every query of a
tenant's data filters by the tenant the caller authenticated as (the
repositories take it as their first argument). Queries are parameterised.

Lifecycle: :meth:`Store.open` once per process (a connection pool); the
repositories' methods once per request, each in its own transaction.
"""

from __future__ import annotations

import asyncio
import logging
import select
import time
import weakref
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from runtime import jsontext
from runtime.store import embedded
from runtime.store.actions import Actions
from runtime.store.base import Conn, GroupCommit, WriteBehind
from runtime.store.cache import Cache
from runtime.store.clients import Clients
from runtime.store.errors import Conflict, NotFound, QuotaExceeded, StoreError, StoreUnavailable
from runtime.store.executions import Executions
from runtime.store.logins import Logins
from runtime.store.migrate import migrate
from runtime.store.oauth import OAuth
from runtime.store.signing_keys import SigningKeys
from runtime.store.statistics import Statistics
from runtime.store.tenants import Keys, Tenants
from runtime.store.users import Users
from runtime.store.vault import DataKeys
from runtime.vault import MasterKeyring

__all__ = [
    "Conflict",
    "NotFound",
    "QuotaExceeded",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "database_url",
    "migrate",
]

log = logging.getLogger(__name__)

# Connections not handed out for longer than this are pinged before use.
IDLE_CHECK_S = 30.0


def database_url(configured: str | None, home: Path) -> str:
    """The URL to use: the configured one, or the embedded server's (started if needed)."""
    return configured if configured else embedded.start(home)


class Store:
    """The connection pool and the repositories over it."""

    def __init__(self, pool: AsyncConnectionPool[Conn], keyring: MasterKeyring | None) -> None:
        self.pool = pool
        self.data_keys = DataKeys(pool, keyring)
        self.tenants = Tenants(pool)
        self.keys = Keys(pool)
        self.actions = Actions(pool, self.data_keys)
        self.signing_keys = SigningKeys(pool, self.data_keys)
        self.clients = Clients(pool)
        self.users = Users(pool)
        self.cache = Cache(pool)
        # A login's execution record, when the login has nothing else to commit before its answer, is
        # written just after it, in a batch with other logins' records; readers of records settle it first.
        self.records_behind = WriteBehind(pool, what="execution record")
        self.executions = Executions(pool, behind=self.records_behind)
        self.statistics = Statistics(pool, behind=self.records_behind)
        # Logins end with writes that many concurrent logins can share a commit for.
        self.logins = Logins(pool, GroupCommit(pool), self.records_behind)
        self.oauth = OAuth(pool)

    @classmethod
    async def open(cls, url: str, keyring: MasterKeyring | None, *, max_connections: int = 10) -> Store:
        # Connections are checked before use, so that a database restart or failover costs no
        # request: a connection the server closed has something to read (its goodbye and the
        # end of the stream) although it is idle, which a zero-timeout poll of its socket sees
        # at no cost; one not handed out for long is also pinged, for links cut without a goodbye.
        # The time is noted when a connection is handed out, not when it comes back: a callback
        # on its return would make the pool return every connection through a task of its own
        # (about a third more client CPU per statement with eight requests in flight).
        handed_out: weakref.WeakKeyDictionary[Conn, float] = weakref.WeakKeyDictionary()

        async def configure(conn: Conn) -> None:
            set_json_dumps(jsontext.dumps, conn)
            set_json_loads(jsontext.loads, conn)
            handed_out[conn] = time.monotonic()  # just connected: known to answer

        async def check(conn: Conn) -> None:
            # poll(), not select(): a server holding many client connections has its database's on
            # descriptors past 1024, which select() refuses (and every connection would fail its check).
            poller = select.poll()
            poller.register(conn.pgconn.socket, select.POLLIN)
            if poller.poll(0):
                await conn.close()  # so that the pool replaces it rather than offering it again
                raise psycopg.OperationalError("the server closed the connection")
            now = time.monotonic()
            if now - handed_out.get(conn, 0.0) > IDLE_CHECK_S:
                await conn.execute("")
            handed_out[conn] = now

        pool = AsyncConnectionPool(
            url,
            connection_class=Conn,
            min_size=1,
            max_size=max_connections,
            open=False,
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=configure,
            check=check,
        )
        try:
            await pool.open(wait=True, timeout=30)
        except Exception as exc:
            await pool.close()
            raise StoreUnavailable(f"the database cannot be reached: {type(exc).__name__}") from None
        return cls(pool, keyring)

    async def close(self) -> None:
        await self.records_behind.close()
        await self.pool.close()

    async def ping(self, *, timeout_s: float) -> None:
        """A query answered within `timeout_s`, or :class:`StoreUnavailable` (a health check)."""
        try:
            async with asyncio.timeout(timeout_s), self.pool.connection() as conn:
                await conn.execute("SELECT 1")
        except (TimeoutError, psycopg.Error, PoolTimeout):
            raise StoreUnavailable(f"the database did not answer within {timeout_s:g} s") from None

    async def holds_secrets(self) -> bool:
        """Whether any tenant data key exists (then a master key is required)."""
        return await self.data_keys.any_exist()
