"""Users of a tenant, for the hosted login. Passwords arrive already hashed (argon2)."""

from __future__ import annotations

import secrets
from typing import Any

from psycopg.types.json import Jsonb

from runtime.store.base import Repository, parse_id
from runtime.store.errors import Conflict, NotFound
from runtime.store.records import User

__all__ = ["Users"]


def _user(row: dict[str, Any]) -> User:
    return User(
        tenant_id=str(row["tenant_id"]),
        id=row["id"],
        email=row["email"],
        email_verified=row["email_verified"],
        name=row["name"],
        app_metadata=dict(row["app_metadata"]),
        user_metadata=dict(row["user_metadata"]),
        logins_count=row["logins_count"],
        last_login=row["last_login"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        password_hash=row["password_hash"],
    )


class Users(Repository):
    """A tenant's users; ids look like the hosted product's (``auth0|<hex>``)."""

    async def create(
        self,
        tenant_id: str,
        *,
        email: str,
        password_hash: str | None,
        name: str | None,
        email_verified: bool,
        app_metadata: dict[str, Any],
        user_metadata: dict[str, Any],
    ) -> User:
        tid = parse_id(tenant_id, "tenant")
        user_id = "auth0|" + secrets.token_hex(12)
        async with self.transaction() as conn:
            clash = await (
                await conn.execute(
                    "SELECT 1 FROM users WHERE tenant_id = %s AND lower(email) = lower(%s)", (tid, email)
                )
            ).fetchone()
            if clash:
                raise Conflict("a user with this email already exists")
            row = await (
                await conn.execute(
                    "INSERT INTO users (tenant_id, id, email, email_verified, name, password_hash, app_metadata,"
                    " user_metadata) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
                    (
                        tid,
                        user_id,
                        email,
                        email_verified,
                        name,
                        password_hash,
                        Jsonb(app_metadata),
                        Jsonb(user_metadata),
                    ),
                )
            ).fetchone()
            assert row is not None
            return _user(row)

    async def list(self, tenant_id: str, *, page: int = 0, per_page: int = 50) -> list[User]:
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            rows = await (
                await conn.execute(
                    "SELECT * FROM users WHERE tenant_id = %s ORDER BY created_at LIMIT %s OFFSET %s",
                    (tid, per_page, page * per_page),
                )
            ).fetchall()
            return [_user(r) for r in rows]

    async def get(self, tenant_id: str, user_id: str) -> User:
        tid = parse_id(tenant_id, "tenant")
        async with self.statement() as conn:
            row = await (
                await conn.execute("SELECT * FROM users WHERE tenant_id = %s AND id = %s", (tid, user_id))
            ).fetchone()
            if row is None:
                raise NotFound(f"no user with the id {user_id!r}")
            return _user(row)

    async def by_email(self, tenant_id: str, email: str) -> User | None:
        tid = parse_id(tenant_id, "tenant")
        async with self.statement() as conn:
            row = await (
                await conn.execute(
                    "SELECT * FROM users WHERE tenant_id = %s AND lower(email) = lower(%s)", (tid, email)
                )
            ).fetchone()
            return _user(row) if row else None

    async def update(
        self,
        tenant_id: str,
        user_id: str,
        *,
        email: str | None = None,
        password_hash: str | None = None,
        name: str | None = None,
        email_verified: bool | None = None,
        app_metadata: dict[str, Any] | None = None,
        user_metadata: dict[str, Any] | None = None,
    ) -> User:
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            if email is not None:
                clash = await (
                    await conn.execute(
                        "SELECT 1 FROM users WHERE tenant_id = %s AND lower(email) = lower(%s) AND id <> %s",
                        (tid, email, user_id),
                    )
                ).fetchone()
                if clash:
                    raise Conflict("a user with this email already exists")
            row = await (
                await conn.execute(
                    "UPDATE users SET email = coalesce(%s, email), password_hash = coalesce(%s, password_hash),"
                    " name = coalesce(%s, name), email_verified = coalesce(%s, email_verified),"
                    " app_metadata = coalesce(%s, app_metadata), user_metadata = coalesce(%s, user_metadata),"
                    " updated_at = now() WHERE tenant_id = %s AND id = %s RETURNING *",
                    (
                        email,
                        password_hash,
                        name,
                        email_verified,
                        Jsonb(app_metadata) if app_metadata is not None else None,
                        Jsonb(user_metadata) if user_metadata is not None else None,
                        tid,
                        user_id,
                    ),
                )
            ).fetchone()
            if row is None:
                raise NotFound(f"no user with the id {user_id!r}")
            return _user(row)

    async def delete(self, tenant_id: str, user_id: str) -> None:
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            result = await conn.execute("DELETE FROM users WHERE tenant_id = %s AND id = %s", (tid, user_id))
            if result.rowcount == 0:
                raise NotFound(f"no user with the id {user_id!r}")
