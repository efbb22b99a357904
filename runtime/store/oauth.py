"""The hosted login's OAuth rows: pending authorization requests, codes, refresh tokens.

Everything handed out is 256-bit random and stored as its SHA-256; codes and
requests are taken once, atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from runtime.store.base import Conn, Repository, Writer, expired_rows, new_id, parse_id
from runtime.store.logins import new_secret, secret_hash

__all__ = ["CODE_LIFETIME", "LOGIN_REQUEST_LIFETIME", "REFRESH_TOKEN_LIFETIME", "OAuth", "RefreshToken"]

LOGIN_REQUEST_LIFETIME = timedelta(hours=1)
CODE_LIFETIME = timedelta(minutes=1)
REFRESH_TOKEN_LIFETIME = timedelta(days=30)


@dataclass(frozen=True)
class RefreshToken:
    id: str
    client_id: str
    user_id: str
    session_id: str | None
    scope: str
    created_at: datetime
    expires_at: datetime
    # Rotation: the family the token belongs to (its own id for the first), and when an exchange replaced it.
    family_id: str = ""
    rotated_at: datetime | None = None


class OAuth(Repository):
    """Authorization requests, codes and refresh tokens of every tenant, always filtered by tenant."""

    # -- /authorize waiting for the login form -----------------------------------------------

    async def save_request(self, tenant_id: str, *, browser: str, params: dict[str, Any]) -> str:
        """Keep an authorization request until the form is posted; returns its one-time id."""
        request_id = new_secret()
        async with self.statement() as conn:
            await conn.execute(
                "INSERT INTO login_requests (tenant_id, id_hash, browser_hash, params, expires_at)"
                " VALUES (%s, %s, %s, %s, now() + %s)",
                (parse_id(tenant_id, "tenant"), secret_hash(request_id), secret_hash(browser), Jsonb(params),
                 LOGIN_REQUEST_LIFETIME),
            )  # fmt: skip
        return request_id

    async def pending_request(self, tenant_id: str, request_id: str, browser: str | None) -> dict[str, Any] | None:
        """The authorization request behind a posted form, if it is live and from this browser."""
        if browser is None:
            return None
        async with self.statement() as conn:
            row = await (
                await conn.execute(
                    "SELECT params FROM login_requests WHERE tenant_id = %s AND id_hash = %s AND browser_hash = %s"
                    " AND consumed_at IS NULL AND expires_at > now()",
                    (parse_id(tenant_id, "tenant"), secret_hash(request_id), secret_hash(browser)),
                )
            ).fetchone()
        return dict(row["params"]) if row else None

    async def finish_request(self, conn: Conn, tenant_id: str, request_id: str) -> bool:
        """Mark the request used (a successful login); False if it was already."""
        cursor = await conn.execute(
            "UPDATE login_requests SET consumed_at = now() WHERE tenant_id = %s AND id_hash = %s"
            " AND consumed_at IS NULL",
            (parse_id(tenant_id, "tenant"), secret_hash(request_id)),
        )
        return cursor.rowcount == 1

    # -- authorization codes -------------------------------------------------------------------

    async def issue_code(
        self, conn: Writer, tenant_id: str, *, client_id: str, redirect_uri: str, code_challenge: str,
        grant: dict[str, Any],
    ) -> str:  # fmt: skip
        code = new_secret()
        await conn.execute(
            "INSERT INTO authorization_codes (tenant_id, code_hash, client_id, redirect_uri, code_challenge,"
            " grant_data, expires_at) VALUES (%s, %s, %s, %s, %s, %s, now() + %s)",
            (parse_id(tenant_id, "tenant"), secret_hash(code), client_id, redirect_uri, code_challenge, Jsonb(grant),
             CODE_LIFETIME),
        )  # fmt: skip
        return code

    async def redeem_code(self, tenant_id: str, code: str, client_id: str) -> dict[str, Any] | None:
        """Take a code once: {redirect_uri, code_challenge, grant}; None if unknown, used, expired, someone else's."""
        async with self.statement() as conn:
            row = await (
                await conn.execute(
                    "UPDATE authorization_codes SET consumed_at = now() WHERE tenant_id = %s AND code_hash = %s"
                    " AND client_id = %s AND consumed_at IS NULL AND expires_at > now()"
                    " RETURNING redirect_uri, code_challenge, grant_data",
                    (parse_id(tenant_id, "tenant"), secret_hash(code), client_id),
                )
            ).fetchone()
        if row is None:
            return None
        return {"redirect_uri": row["redirect_uri"], "code_challenge": row["code_challenge"],
                "grant": dict(row["grant_data"])}  # fmt: skip

    # -- refresh tokens ------------------------------------------------------------------------

    async def issue_refresh_token(
        self, tenant_id: str, *, client_id: str, user_id: str, session_id: str | None, scope: str,
        lifetime: timedelta = REFRESH_TOKEN_LIFETIME, idle: timedelta | None = None,
    ) -> str:  # fmt: skip
        """A new refresh token (the first of its line), living `lifetime`, and `idle` unused if given."""
        token = new_secret()
        async with self.statement() as conn:
            await conn.execute(
                "INSERT INTO refresh_tokens (tenant_id, id, token_hash, client_id, user_id, session_id, scope,"
                " expires_at, idle_expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now() + %s, now() + %s)",
                (parse_id(tenant_id, "tenant"), new_id(), secret_hash(token), client_id, user_id,
                 parse_id(session_id, "session") if session_id else None, scope, lifetime,
                 min(lifetime, idle) if idle else lifetime),
            )  # fmt: skip
        return token

    async def refresh_token(self, tenant_id: str, token: str, client_id: str) -> RefreshToken | None:
        async with self.statement() as conn:
            row = await (
                await conn.execute(
                    "SELECT * FROM refresh_tokens WHERE tenant_id = %s AND token_hash = %s AND client_id = %s"
                    " AND revoked_at IS NULL AND expires_at > now() AND (idle_expires_at IS NULL"
                    " OR idle_expires_at > now())",
                    (parse_id(tenant_id, "tenant"), secret_hash(token), client_id),
                )
            ).fetchone()
        if row is None:
            return None
        return RefreshToken(
            id=str(row["id"]),
            client_id=row["client_id"],
            user_id=row["user_id"],
            session_id=str(row["session_id"]) if row["session_id"] else None,
            scope=row["scope"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            family_id=str(row["family_id"] or row["id"]),
            rotated_at=row["rotated_at"],
        )

    async def touch_refresh_token(self, tenant_id: str, token: RefreshToken, *, idle: timedelta | None) -> None:
        """A token exchanged (and kept): its idle time starts again, never past its absolute expiry."""
        async with self.statement() as conn:
            await conn.execute(
                "UPDATE refresh_tokens SET idle_expires_at = least(expires_at, now() + %s)"
                " WHERE tenant_id = %s AND id = %s",
                (idle, parse_id(tenant_id, "tenant"), parse_id(token.id, "refresh token")),
            )

    async def rotate_refresh_token(
        self, tenant_id: str, token: RefreshToken, *, leeway_s: int, idle: timedelta | None = None
    ) -> str | None:
        """Replace `token` with a new one of its family (the family's expiry, scope and session; `idle` unused
        from now, if given), or None when it was replaced more than `leeway_s` seconds ago: then the whole
        family is revoked."""
        tid = parse_id(tenant_id, "tenant")
        fresh = new_secret()
        async with self.transaction() as conn:
            row = await (
                await conn.execute(
                    "UPDATE refresh_tokens SET rotated_at = coalesce(rotated_at, now())"
                    " WHERE tenant_id = %s AND id = %s AND revoked_at IS NULL AND expires_at > now()"
                    " AND (rotated_at IS NULL OR rotated_at > now() - make_interval(secs => %s)) RETURNING id",
                    (tid, parse_id(token.id, "refresh token"), leeway_s),
                )
            ).fetchone()
            if row is not None:
                await conn.execute(
                    "INSERT INTO refresh_tokens (tenant_id, id, token_hash, client_id, user_id, session_id, scope,"
                    " expires_at, family_id, idle_expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
                    " least(%s, now() + %s))",
                    (tid, new_id(), secret_hash(fresh), token.client_id, token.user_id,
                     parse_id(token.session_id, "session") if token.session_id else None, token.scope,
                     token.expires_at, parse_id(token.family_id, "refresh token"), token.expires_at, idle),
                )  # fmt: skip
                return fresh
        await self.revoke_refresh_family(tenant_id, token.family_id)
        return None

    async def revoke_refresh_family(self, tenant_id: str, family_id: str) -> None:
        """Revoke every token of a family (a replaced one came back: a copy is in other hands)."""
        tid, fid = parse_id(tenant_id, "tenant"), parse_id(family_id, "refresh token")
        async with self.statement() as conn:
            await conn.execute(
                "UPDATE refresh_tokens SET revoked_at = now() WHERE tenant_id = %s AND (family_id = %s OR id = %s)"
                " AND revoked_at IS NULL",
                (tid, fid, fid),
            )

    async def revoke_refresh_token(self, conn: Writer, tenant_id: str, token_id: str) -> None:
        await conn.execute(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE tenant_id = %s AND id = %s",
            (parse_id(tenant_id, "tenant"), parse_id(token_id, "refresh token")),
        )

    async def sweep(self) -> int:
        """Delete login requests, codes and refresh tokens that expired over an hour ago."""
        removed = 0
        for table in ("login_requests", "authorization_codes", "refresh_tokens"):
            removed += await self.delete_in_batches(expired_rows(table, "expires_at", "now() - interval '1 hour'"))
        return removed
