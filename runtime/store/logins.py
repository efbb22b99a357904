"""The login plane's rows: sessions, suspended flows, one-time flow results, the pinned flow.

The methods take the connection of a transaction the caller holds, so that
what one login step changes is committed at once (the recorded method with
the execution record and the code, the suspended flow with the user's
metadata) or not at all. Open one with :meth:`Logins.transaction`.

Secrets handed out (a flow's ``state``, a session cookie, a result
reference) are 256-bit random and stored as their SHA-256 only.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Json, Jsonb

from runtime.store.base import Conn, Repository, RowsInsert, Writer, Writes, expired_rows, new_id, new_time_id, parse_id
from runtime.store.errors import NotFound
from runtime.store.wire import JsonStatement

__all__ = ["ExternalSession", "FlowHead", "Logins", "SessionRow", "new_secret", "secret_hash"]


def new_secret() -> str:
    """A 256-bit random token, URL-safe."""
    return secrets.token_urlsafe(32)


def secret_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


@dataclass(frozen=True)
class SessionRow:
    id: str
    kind: str
    user_id: str
    methods: list[dict[str, Any]]
    metadata: dict[str, Any]
    cookie_mode: str
    created_at: datetime
    authenticated_at: datetime
    last_interacted_at: datetime
    expires_at: datetime
    idle_expires_at: datetime


@dataclass(frozen=True)
class FlowHead:
    """What a login needs of its tenant, read in one query: name, limits, hosts, bound versions, cache."""

    tenant_id: str
    tenant_name: str
    limits: dict[str, int]
    allowed_redirect_hosts: list[str]
    # [{action_id, action_name, version_id}], in binding order.
    steps: list[dict[str, str]]
    # The trigger's live api.cache entries: {key: {value, expires_at}}.
    cache: dict[str, dict[str, Any]]
    # The identity server's session, when the flow API named one.
    session: SessionRow | None = None


@dataclass(frozen=True)
class ExternalSession:
    """An identity server's session of one user, as the flow API names it."""

    token: str  # the identity server's session id and the user id; stored only as a hash
    user_id: str
    lifetime: timedelta
    idle: timedelta


# One JSON object (read by runtime.store.wire: one column costs less to read than six).
_FLOW_HEAD = (
    "SELECT json_build_object('name', t.name, 'limits', t.limits, 'hosts', t.allowed_redirect_hosts,"
    " 'steps', coalesce(("
    "  SELECT jsonb_agg(jsonb_build_object('action_id', a.id::text, 'action_name', a.name,"
    "    'version_id', a.deployed_version_id::text) ORDER BY b.position)"
    "  FROM bindings b JOIN actions a ON a.tenant_id = b.tenant_id AND a.id = b.action_id"
    "  WHERE b.tenant_id = t.id AND b.trigger_id = %(trigger)s AND a.deployed_version_id IS NOT NULL"
    "), '[]'::jsonb), 'cache', coalesce(("
    "  SELECT jsonb_object_agg(c.key, jsonb_build_object('value', c.value,"
    "    'expires_at', floor(extract(epoch FROM c.expires_at) * 1000)))"
    "  FROM cache_entries c WHERE c.tenant_id = t.id AND c.trigger_id = %(trigger)s AND c.expires_at > now()"
    "), '{}'::jsonb), 'session', null) FROM tenants t WHERE t.id = %(tenant)s"
)
_NO_SESSION = "'session', null)"

# The live session, kept; an ended one started over; none yet, made. `s` is the session's row.
_LIVE = "s.expires_at > now() AND s.idle_expires_at > now()"
# When a session ends: expired, or idle too long (the expression of the sessions_ended index).
SESSION_ENDED = "least(expires_at, idle_expires_at)"
# How often a login in a live session writes it: a session whose idle clock was last restarted less than this
# long ago is only read (its idle expiry is then at most this much short of now + its idle span, a minute of
# three days). Logins repeat in a session within seconds; before, each wrote a new version of the row (about
# 560 bytes of WAL, a dead row for vacuum, three index entries) only to move two times forward.
SESSION_TOUCH_EVERY = timedelta(minutes=1)
# A session whose idle clock was restarted less than SESSION_TOUCH_EVERY ago: a live one is only read.
_RECENT = "s.last_interacted_at > now() - %(touch)s"
# A restarted idle clock: the idle span the session had (three days, or less where an action shortened it with
# api.session.setIdleExpiresAt), from now, never past the session's end.
_IDLE_RESTARTED = "least(s.expires_at, now() + (s.idle_expires_at - s.last_interacted_at))"
_EXTERNAL_SESSION = (
    f"WITH fresh AS (SELECT * FROM sessions s WHERE s.tenant_id = %(tenant)s AND s.token_hash = %(h)s"
    f" AND {_LIVE} AND {_RECENT}), "
    "s AS (INSERT INTO sessions AS s (tenant_id, id, token_hash, kind, user_id, expires_at, idle_expires_at)"
    " SELECT %(tenant)s, %(id)s, %(h)s, 'external', %(u)s, now() + %(life)s, now() + %(idle)s"
    " WHERE NOT EXISTS (SELECT FROM fresh)"
    " ON CONFLICT (tenant_id, token_hash) DO UPDATE SET"
    f"  id = CASE WHEN {_LIVE} THEN s.id ELSE excluded.id END,"
    f"  methods = CASE WHEN {_LIVE} THEN s.methods ELSE '[]'::jsonb END,"
    f"  metadata = CASE WHEN {_LIVE} THEN s.metadata ELSE '{{}}'::jsonb END,"
    f"  created_at = CASE WHEN {_LIVE} THEN s.created_at ELSE now() END,"
    f"  expires_at = CASE WHEN {_LIVE} THEN s.expires_at ELSE excluded.expires_at END,"
    f"  idle_expires_at = CASE WHEN {_LIVE} THEN {_IDLE_RESTARTED} ELSE excluded.idle_expires_at END,"
    "  last_interacted_at = now()"
    " RETURNING *) "
)


# A hosted session by its cookie: only read when its idle clock was restarted less than SESSION_TOUCH_EVERY ago,
# else restarted.
_FOUND = "s.tenant_id = %(tenant)s AND s.token_hash = %(h)s AND " + _LIVE
_FIND_SESSION = (
    f"WITH fresh AS (SELECT * FROM sessions s WHERE {_FOUND} AND {_RECENT}),"
    f" touched AS (UPDATE sessions s SET last_interacted_at = now(), idle_expires_at = {_IDLE_RESTARTED}"
    f" WHERE {_FOUND} AND NOT EXISTS (SELECT FROM fresh) RETURNING s.*)"
    " SELECT * FROM fresh UNION ALL SELECT * FROM touched"
)


# The session's upsert commits without waiting for the WAL flush (for this statement only). A crash of
# PostgreSQL could lose it only until the next commit that does wait, which makes all before it durable
# (a redirect, a recorded method, a result kept for /continue, the batch of execution records); and
# losing it only costs a new session: the next login in it runs without its recorded methods (the
# action asks for the factor again) and its idle time restarts from the last touch that was kept.
_SESSION_NO_FLUSH_WAIT = (
    "'session', coalesce((SELECT to_jsonb(s) FROM s), (SELECT to_jsonb(fresh) FROM fresh)),"
    " 'commit_mode', set_config('synchronous_commit', 'off', true))"
)

_FLOW_HEAD_STATEMENT = JsonStatement(_FLOW_HEAD, {"trigger": str, "tenant": uuid.UUID})
_FLOW_HEAD_WITH_SESSION = JsonStatement(
    _EXTERNAL_SESSION + _FLOW_HEAD.replace(_NO_SESSION, _SESSION_NO_FLUSH_WAIT),
    {"trigger": str, "tenant": uuid.UUID, "id": uuid.UUID, "h": bytes, "u": str, "life": timedelta,
     "idle": timedelta, "touch": timedelta},
)  # fmt: skip


def _session_from_json(data: dict[str, Any]) -> SessionRow:
    """A session row that came back as JSON (from a statement that also read other things)."""
    moments = ("created_at", "authenticated_at", "last_interacted_at", "expires_at", "idle_expires_at")
    return _session({**data, **{name: datetime.fromisoformat(data[name]) for name in moments}})


def _session(row: dict[str, Any]) -> SessionRow:
    return SessionRow(
        id=str(row["id"]),
        kind=row["kind"],
        user_id=row["user_id"],
        methods=list(row["methods"]),
        metadata=dict(row["metadata"]),
        cookie_mode=row["cookie_mode"],
        created_at=row["created_at"],
        authenticated_at=row["authenticated_at"],
        last_interacted_at=row["last_interacted_at"],
        expires_at=row["expires_at"],
        idle_expires_at=row["idle_expires_at"],
    )


# A new flow's execution record; many at once where records are written together.
_RECORD_INSERT = RowsInsert(
    "INSERT INTO executions (tenant_id, id, trigger_id, kind, status, results, event, created_at)"
    " SELECT r.tenant_id, r.id, r.trigger_id, 'flow', r.status, r.results, r.event, r.created_at"
    " FROM json_to_recordset(%s) AS r(tenant_id uuid, id uuid, trigger_id text, status text, results json,"
    " event json, created_at timestamptz)"
)


class Logins(Repository):
    """Sessions, suspended flows and flow results of every tenant, always filtered by tenant."""

    # -- the flow a login runs -------------------------------------------------------------

    async def flow_head(self, tenant_id: str, trigger_id: str, *, external: ExternalSession | None = None) -> FlowHead:
        """The tenant and the versions bound to `trigger_id`, pinned now, in one round trip.

        With `external`, the same statement finds the live session an identity
        server's session stands for, or opens it (again, if it had ended);
        its idle time restarts (written at most every SESSION_TOUCH_EVERY).
        """
        tid = parse_id(tenant_id, "tenant")
        params: dict[str, Any] = {"trigger": trigger_id, "tenant": tid}
        statement = _FLOW_HEAD_STATEMENT
        if external is not None:
            statement = _FLOW_HEAD_WITH_SESSION
            params.update(id=new_id(), h=secret_hash(external.token), u=external.user_id, life=external.lifetime,
                          idle=external.idle, touch=SESSION_TOUCH_EVERY)  # fmt: skip
        async with self.statement() as conn:
            head = await statement.fetch(conn, params)
        if head is None:
            raise NotFound(f"no tenant with the id {tenant_id!r}")
        return FlowHead(
            tenant_id=str(tid),
            tenant_name=head["name"],
            limits=head["limits"],
            allowed_redirect_hosts=head["hosts"],
            steps=head["steps"],
            cache=head["cache"],
            session=_session_from_json(head["session"]) if head["session"] else None,
        )

    # -- sessions --------------------------------------------------------------------------

    async def find_session(self, conn: Conn, tenant_id: str, token: str) -> SessionRow | None:
        """The live session whose cookie (or external key) is `token`; idle time restarts (written at most
        every SESSION_TOUCH_EVERY: a session touched less than that ago is only read)."""
        params = {"tenant": parse_id(tenant_id, "tenant"), "h": secret_hash(token), "touch": SESSION_TOUCH_EVERY}
        row = await (await conn.execute(_FIND_SESSION, params)).fetchone()
        return _session(row) if row else None

    async def live_session(self, conn: Conn, tenant_id: str, session_id: str) -> SessionRow | None:
        """A session by its id, if it has not ended (a refresh token's session)."""
        row = await (
            await conn.execute(
                "SELECT * FROM sessions WHERE tenant_id = %s AND id = %s AND expires_at > now()"
                " AND idle_expires_at > now()",
                (parse_id(tenant_id, "tenant"), parse_id(session_id, "session")),
            )
        ).fetchone()
        return _session(row) if row else None

    async def create_session(
        self,
        conn: Conn,
        tenant_id: str,
        *,
        token: str,
        kind: str,
        user_id: str,
        methods: list[dict[str, Any]],
        lifetime: timedelta,
        idle: timedelta,
    ) -> SessionRow:
        row = await (
            await conn.execute(
                "INSERT INTO sessions (tenant_id, id, token_hash, kind, user_id, methods, expires_at, idle_expires_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, now() + %s, now() + %s) RETURNING *",
                (
                    parse_id(tenant_id, "tenant"),
                    new_id(),
                    secret_hash(token),
                    kind,
                    user_id,
                    Jsonb(methods),
                    lifetime,
                    idle,
                ),
            )
        ).fetchone()
        assert row is not None
        return _session(row)

    async def rotate_session(
        self, conn: Conn, tenant_id: str, session_id: str, *, token: str, methods: list[dict[str, Any]]
    ) -> SessionRow:
        """A new id and cookie for a session (a new login in it), keeping its records; `methods` are added."""
        row = await (
            await conn.execute(
                "UPDATE sessions SET id = %s, token_hash = %s, methods = methods || %s,"
                " authenticated_at = now(), last_interacted_at = now()"
                " WHERE tenant_id = %s AND id = %s RETURNING *",
                (
                    new_id(),
                    secret_hash(token),
                    Jsonb(methods),
                    parse_id(tenant_id, "tenant"),
                    parse_id(session_id, "session"),
                ),
            )
        ).fetchone()
        if row is None:
            raise NotFound("the session has ended")
        return _session(row)

    async def update_session(
        self,
        conn: Writer,
        tenant_id: str,
        session_id: str,
        *,
        add_methods: list[dict[str, Any]],
        metadata: dict[str, Any] | None = None,
        cookie_mode: str | None = None,
        expires_at: datetime | None = None,
        idle_expires_at: datetime | None = None,
    ) -> None:
        """Apply what a flow did to its session. Expiry times can only be shortened."""
        await conn.execute(
            "UPDATE sessions SET methods = methods || %s, metadata = coalesce(%s, metadata),"
            " cookie_mode = coalesce(%s, cookie_mode),"
            " expires_at = least(expires_at, coalesce(%s, expires_at)),"
            " idle_expires_at = least(idle_expires_at, coalesce(%s, idle_expires_at))"
            " WHERE tenant_id = %s AND id = %s",
            (Jsonb(add_methods), Jsonb(metadata) if metadata is not None else None, cookie_mode, expires_at,
             idle_expires_at, parse_id(tenant_id, "tenant"), parse_id(session_id, "session")),
        )  # fmt: skip

    async def end_session(self, conn: Writer, tenant_id: str, session_id: str) -> None:
        await conn.execute(
            "DELETE FROM sessions WHERE tenant_id = %s AND id = %s",
            (parse_id(tenant_id, "tenant"), parse_id(session_id, "session")),
        )

    # -- suspended flows -------------------------------------------------------------------

    async def suspend(
        self,
        conn: Writer,
        tenant_id: str,
        *,
        transaction_id: str,
        state: str,
        browser: str | None,
        flow: dict[str, Any],
        lifetime: timedelta,
    ) -> None:
        """Keep a flow until /continue brings `state` back.

        As json, not jsonb: the resumed action sees the event's keys in the order the first one saw them.
        """
        await conn.execute(
            "INSERT INTO flow_transactions (tenant_id, id, state_hash, browser_hash, flow, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, now() + %s)",
            (parse_id(tenant_id, "tenant"), parse_id(transaction_id, "transaction"), secret_hash(state),
             secret_hash(browser) if browser is not None else None, Json(flow), lifetime),
        )  # fmt: skip

    async def consume(self, conn: Conn, tenant_id: str, state: str, browser: str | None) -> dict[str, Any] | None:
        """The flow suspended under `state`, taken once, or None.

        None when the state is unknown, expired, already used, another
        tenant's, or bound to another browser (which does not use it up): the
        caller answers them all the same way. Of concurrent calls with one
        state exactly one gets the flow.
        """
        row = await (
            await conn.execute(
                "UPDATE flow_transactions SET consumed_at = now()"
                " WHERE tenant_id = %s AND state_hash = %s AND consumed_at IS NULL AND expires_at > now()"
                " AND (browser_hash IS NULL OR browser_hash = %s) RETURNING flow",
                (parse_id(tenant_id, "tenant"), secret_hash(state), secret_hash(browser) if browser else None),
            )
        ).fetchone()
        return dict(row["flow"]) if row else None

    # -- flow results (flow API) -----------------------------------------------------------

    async def put_result(self, conn: Writer, tenant_id: str, outcome: dict[str, Any], lifetime: timedelta) -> str:
        """Keep a finished flow's outcome for the identity server; returns the one-time reference."""
        ref = new_secret()
        await conn.execute(
            "INSERT INTO flow_results (tenant_id, ref_hash, outcome, expires_at) VALUES (%s, %s, %s, now() + %s)",
            (parse_id(tenant_id, "tenant"), secret_hash(ref), Jsonb(outcome), lifetime),
        )
        return ref

    async def redeem_result(self, tenant_id: str, ref: str) -> dict[str, Any]:
        """The outcome behind `ref`, once; NotFound when unknown, expired, redeemed or another tenant's."""
        async with self.statement() as conn:
            row = await (
                await conn.execute(
                    "UPDATE flow_results SET redeemed_at = now() WHERE tenant_id = %s AND ref_hash = %s"
                    " AND redeemed_at IS NULL AND expires_at > now() RETURNING outcome",
                    (parse_id(tenant_id, "tenant"), secret_hash(ref)),
                )
            ).fetchone()
        if row is None:
            raise NotFound("no flow result with this reference (unknown, expired or already redeemed)")
        return dict(row["outcome"])

    # -- executions and users, inside a login's transaction ------------------------------

    async def record_execution(
        self, conn: Writer, tenant_id: str, *, execution_id: str | None, trigger_id: str, status: str,
        results: list[dict[str, Any]], event: Any = None,
    ) -> str:  # fmt: skip
        """Insert the flow's execution record (with the event it started with), or update it when the
        flow resumed; returns its id. In a :meth:`writes` block, a new record is deferred: if the flow
        commits nothing else, it is written just after the answer, in a batch with other records."""
        tid = parse_id(tenant_id, "tenant")
        if execution_id is not None:
            await conn.execute(
                "UPDATE executions SET status = %s, results = %s, updated_at = now(), written_in = pg_current_xact_id()"
                " WHERE tenant_id = %s AND id = %s",
                (status, Json(results), tid, uuid.UUID(execution_id)),
            )
            return execution_id
        eid = new_time_id()
        # Created when the flow stopped, not when a batch wrote it (the stats' periods end at the same clock).
        row = {
            "tenant_id": str(tid), "id": str(eid), "trigger_id": trigger_id, "status": status, "results": results,
            "event": event, "created_at": datetime.now(UTC).isoformat(),
        }  # fmt: skip
        if isinstance(conn, Writes):
            conn.defer(_RECORD_INSERT, row)  # written behind the answer unless the login commits something else
        else:
            await _RECORD_INSERT.execute(conn, [row])
        return str(eid)

    async def count_login(self, conn: Writer, tenant_id: str, user_id: str) -> None:
        """A hosted user signed in: logins_count and last_login (event.stats)."""
        await conn.execute(
            "UPDATE users SET logins_count = logins_count + 1, last_login = now() WHERE tenant_id = %s AND id = %s",
            (parse_id(tenant_id, "tenant"), user_id),
        )

    async def merge_user_metadata(
        self, conn: Writer, tenant_id: str, user_id: str, *, app: dict[str, Any], user: dict[str, Any]
    ) -> None:
        """Merge metadata updates into a hosted user's profile (a None value deletes the key)."""
        if not app and not user:
            return

        def split(updates: dict[str, Any]) -> tuple[Jsonb, list[str]]:
            return Jsonb({k: v for k, v in updates.items() if v is not None}), [
                k for k, v in updates.items() if v is None
            ]

        app_set, app_delete = split(app)
        user_set, user_delete = split(user)
        await conn.execute(
            "UPDATE users SET app_metadata = (app_metadata || %s) - %s::text[],"
            " user_metadata = (user_metadata || %s) - %s::text[], updated_at = now()"
            " WHERE tenant_id = %s AND id = %s",
            (app_set, app_delete, user_set, user_delete, parse_id(tenant_id, "tenant"), user_id),
        )

    # -- housekeeping ------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Delete what ended over an hour ago: sessions (expired, or idle too long), flows, results.
        Returns how many rows went."""
        removed = 0
        for table, ended in (
            ("sessions", SESSION_ENDED),
            ("flow_transactions", "expires_at"),
            ("flow_results", "expires_at"),
        ):
            removed += await self.delete_in_batches(expired_rows(table, ended, "now() - interval '1 hour'"))
        return removed
