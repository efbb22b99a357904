"""Actions: drafts, immutable numbered versions, encrypted secrets, and the bindings of each trigger.

Lifecycle (as in the hosted product): create and update change the draft
only; deploy copies the draft into a new version (code, bytecode, engine
build, secrets snapshot) and makes it the one traffic uses; rolling back
deploys a copy of an older version as a new one. At most 50 versions are
kept; past that the oldest not in use is deleted.

Secrets are encrypted before they leave this module (runtime/vault.py); the
database never sees a value, and nothing here returns one except
:meth:`Actions.secret_values`, which feeds executions.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool

from runtime.limits import FIXED, Quotas
from runtime.sandbox import CompiledAction
from runtime.store.base import Conn, Repository, new_id, parse_id
from runtime.store.errors import Conflict, NotFound, QuotaExceeded
from runtime.store.records import Action, Binding, SecretInfo, Version
from runtime.store.vault import DataKeys
from runtime.vault import open_secret, seal_secret, secret_context

__all__ = ["Actions", "BindingRef", "FlowStep", "SecretChange"]

DRAFT = "draft"


@dataclass(frozen=True)
class SecretChange:
    """One secret in a create or update: a value to set, or None to keep the stored one."""

    name: str
    value: str | None


@dataclass(frozen=True)
class BindingRef:
    """A binding as a request names it: an action by id or by name."""

    kind: str  # "action_id" | "action_name"
    value: str
    display_name: str | None = None


@dataclass(frozen=True)
class FlowStep:
    """One bound action as a login runs it: the deployed version and its secrets."""

    binding: Binding
    version: Version
    action_name: str
    secrets: dict[str, str]


def _built_code(row: dict[str, Any]) -> dict[str, Any]:
    """The fields a draft and a version share: the code, what it was compiled to, and for which trigger."""
    return {
        "trigger_id": row["trigger_id"],
        "trigger_version": row["trigger_version"],
        "runtime": row["runtime"],
        "code": row["code"],
        "bytecode": bytes(row["bytecode"]),
        "bytecode_sha256": row["bytecode_sha256"],
        "engine_build_id": row["engine_build_id"],
        "handlers": list(row["handlers"]),
    }


def _secret_infos(rows: Sequence[dict[str, Any]]) -> list[SecretInfo]:
    return [SecretInfo(name=r["name"], updated_at=r["updated_at"]) for r in rows]


class Actions(Repository):
    """A tenant's actions, their versions, secrets and bindings."""

    def __init__(self, pool: AsyncConnectionPool[Conn], data_keys: DataKeys) -> None:
        super().__init__(pool)
        self.data_keys = data_keys

    # --- reading -------------------------------------------------------------------------

    async def _secrets(self, conn: Conn, tid: uuid.UUID, aid: uuid.UUID, scope: str) -> list[SecretInfo]:
        rows = await (
            await conn.execute(
                "SELECT name, updated_at FROM action_secrets"
                " WHERE tenant_id = %s AND action_id = %s AND scope = %s ORDER BY name",
                (tid, aid, scope),
            )
        ).fetchall()
        return _secret_infos(rows)

    async def _action(self, conn: Conn, tid: uuid.UUID, aid: uuid.UUID) -> Action:
        row = await (
            await conn.execute(
                "SELECT a.*, v.number AS deployed_number FROM actions a"
                " LEFT JOIN action_versions v ON v.tenant_id = a.tenant_id AND v.id = a.deployed_version_id"
                " WHERE a.tenant_id = %s AND a.id = %s",
                (tid, aid),
            )
        ).fetchone()
        if row is None:
            raise NotFound(f"no action with the id {aid}")
        return Action(
            tenant_id=str(tid),
            id=str(row["id"]),
            name=row["name"],
            **_built_code(row),
            status=row["status"],
            deployed_version_id=str(row["deployed_version_id"]) if row["deployed_version_id"] else None,
            deployed_version_number=row["deployed_number"],
            all_changes_deployed=row["all_changes_deployed"],
            secrets=await self._secrets(conn, tid, aid, DRAFT),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    async def get(self, tenant_id: str, action_id: str) -> Action:
        tid, aid = parse_id(tenant_id, "tenant"), parse_id(action_id, "action")
        async with self.transaction() as conn:
            return await self._action(conn, tid, aid)

    async def list(
        self,
        tenant_id: str,
        *,
        trigger_id: str | None = None,
        name: str | None = None,
        deployed: bool | None = None,
        page: int = 0,
        per_page: int = 50,
    ) -> tuple[list[Action], int]:
        """One page of the tenant's actions (filters as in the hosted API), and the total."""
        tid = parse_id(tenant_id, "tenant")
        where = ["tenant_id = %s"]
        params: list[Any] = [tid]
        if trigger_id is not None:
            where.append("trigger_id = %s")
            params.append(trigger_id)
        if name is not None:
            where.append("name = %s")
            params.append(name)
        if deployed is not None:
            where.append("deployed_version_id IS NOT NULL" if deployed else "deployed_version_id IS NULL")
        clause = " AND ".join(where)
        async with self.transaction() as conn:
            total_row = await (
                await conn.execute(f"SELECT count(*) AS n FROM actions WHERE {clause}", params)
            ).fetchone()
            ids = await (
                await conn.execute(
                    f"SELECT id FROM actions WHERE {clause} ORDER BY created_at, name LIMIT %s OFFSET %s",
                    [*params, per_page, page * per_page],
                )
            ).fetchall()
            actions = [await self._action(conn, tid, r["id"]) for r in ids]
            return actions, int(total_row["n"]) if total_row else 0

    # --- secrets --------------------------------------------------------------------------

    async def _write_secrets(
        self, conn: Conn, tid: uuid.UUID, aid: uuid.UUID, changes: Sequence[SecretChange], *, replace: bool
    ) -> None:
        """Set the draft's secrets: `changes` name the whole set when `replace`, else add to it."""
        names = [c.name for c in changes]
        if len(set(names)) != len(names):
            raise Conflict("a secret name appears twice")
        existing = {s.name for s in await self._secrets(conn, tid, aid, DRAFT)}
        keep = {c.name for c in changes if c.value is None}
        missing = keep - existing
        if missing:
            raise Conflict(f"no stored value to keep for the secret {sorted(missing)[0]!r}; give its value")
        final = set(names) if replace else existing | set(names)
        if len(final) > FIXED.secrets_per_action:
            raise QuotaExceeded(
                f"an action may have at most {FIXED.secrets_per_action} secrets", limit="secrets_per_action"
            )
        if replace:
            await conn.execute(
                "DELETE FROM action_secrets WHERE tenant_id = %s AND action_id = %s AND scope = %s"
                " AND NOT (name = ANY(%s))",
                (tid, aid, DRAFT, names),
            )
        to_set = [c for c in changes if c.value is not None]
        if not to_set:
            return
        version, data_key = await self.data_keys.current(conn, tid)
        for change in to_set:
            assert change.value is not None
            context = secret_context(str(tid), str(aid), DRAFT, change.name, version)
            await conn.execute(
                "INSERT INTO action_secrets (tenant_id, action_id, scope, name, key_version, ciphertext)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (tenant_id, action_id, scope, name) DO UPDATE"
                " SET key_version = excluded.key_version, ciphertext = excluded.ciphertext, updated_at = now()",
                (tid, aid, DRAFT, change.name, version, seal_secret(data_key, context, change.value)),
            )

    async def _copy_secrets(self, conn: Conn, tid: uuid.UUID, aid: uuid.UUID, source: str, target: str) -> None:
        """Snapshot the secrets of `source` (draft or a version) into `target`, re-sealed for it."""
        for name, value in (await self._read_secret_values(conn, tid, aid, source)).items():
            version, data_key = await self.data_keys.current(conn, tid)
            context = secret_context(str(tid), str(aid), target, name, version)
            await conn.execute(
                "INSERT INTO action_secrets (tenant_id, action_id, scope, name, key_version, ciphertext)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (tid, aid, target, name, version, seal_secret(data_key, context, value)),
            )

    async def _read_secret_values(self, conn: Conn, tid: uuid.UUID, aid: uuid.UUID, scope: str) -> dict[str, str]:
        rows = await (
            await conn.execute(
                "SELECT name, key_version, ciphertext FROM action_secrets"
                " WHERE tenant_id = %s AND action_id = %s AND scope = %s ORDER BY name",
                (tid, aid, scope),
            )
        ).fetchall()
        values = {}
        for row in rows:
            data_key = await self.data_keys.get(conn, tid, int(row["key_version"]))
            context = secret_context(str(tid), str(aid), scope, row["name"], int(row["key_version"]))
            values[row["name"]] = open_secret(data_key, context, bytes(row["ciphertext"]))
        return values

    async def secret_values(self, tenant_id: str, action_id: str, version_id: str | None = None) -> dict[str, str]:
        """The decrypted secrets of the draft (or of a version), for an execution only."""
        tid, aid = parse_id(tenant_id, "tenant"), parse_id(action_id, "action")
        async with self.transaction() as conn:
            await self._action(conn, tid, aid)
            scope = str(parse_id(version_id, "version")) if version_id else DRAFT
            return await self._read_secret_values(conn, tid, aid, scope)

    # --- writing the draft -------------------------------------------------------------------

    async def create(
        self,
        tenant_id: str,
        *,
        name: str,
        trigger_id: str,
        trigger_version: str,
        runtime: str,
        compiled: CompiledAction,
        secrets: Sequence[SecretChange],
        quotas: Quotas,
    ) -> Action:
        tid = parse_id(tenant_id, "tenant")
        aid = new_id()
        async with self.transaction() as conn:
            count = await (
                await conn.execute("SELECT count(*) AS n FROM actions WHERE tenant_id = %s", (tid,))
            ).fetchone()
            if count and int(count["n"]) >= quotas.max_actions:
                raise QuotaExceeded(f"the tenant may have at most {quotas.max_actions} actions", limit="max_actions")
            clash = await (
                await conn.execute("SELECT 1 FROM actions WHERE tenant_id = %s AND name = %s", (tid, name))
            ).fetchone()
            if clash:
                raise Conflict(f"an action named {name!r} already exists")
            await conn.execute(
                "INSERT INTO actions (tenant_id, id, name, trigger_id, trigger_version, runtime, code, bytecode,"
                " bytecode_sha256, engine_build_id, handlers, status)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'built')",
                (tid, aid, name, trigger_id, trigger_version, runtime, compiled.source, compiled.bytecode,
                 compiled.bytecode_sha256, compiled.build_id, list(compiled.handlers)),
            )  # fmt: skip
            await self._write_secrets(conn, tid, aid, secrets, replace=True)
            return await self._action(conn, tid, aid)

    async def update(
        self,
        tenant_id: str,
        action_id: str,
        *,
        name: str | None = None,
        trigger: tuple[str, str] | None = None,
        runtime: str | None = None,
        compiled: CompiledAction | None = None,
        secrets: Sequence[SecretChange] | None = None,
    ) -> Action:
        """Change the draft; the deployed version, and so live traffic, is unaffected."""
        tid, aid = parse_id(tenant_id, "tenant"), parse_id(action_id, "action")
        async with self.transaction() as conn:
            current = await self._action(conn, tid, aid)
            if name is not None and name != current.name:
                clash = await (
                    await conn.execute(
                        "SELECT 1 FROM actions WHERE tenant_id = %s AND name = %s AND id <> %s", (tid, name, aid)
                    )
                ).fetchone()
                if clash:
                    raise Conflict(f"an action named {name!r} already exists")
            if trigger is not None and trigger[0] != current.trigger_id and await self._is_bound(conn, tid, aid):
                raise Conflict("the action is bound to its trigger; unbind it before changing its trigger")
            await conn.execute(
                "UPDATE actions SET name = coalesce(%s, name), trigger_id = coalesce(%s, trigger_id),"
                " trigger_version = coalesce(%s, trigger_version), runtime = coalesce(%s, runtime),"
                " code = coalesce(%s, code), bytecode = coalesce(%s, bytecode),"
                " bytecode_sha256 = coalesce(%s, bytecode_sha256), engine_build_id = coalesce(%s, engine_build_id),"
                " handlers = coalesce(%s, handlers), all_changes_deployed = false, updated_at = now()"
                " WHERE tenant_id = %s AND id = %s",
                (
                    name,
                    trigger[0] if trigger else None,
                    trigger[1] if trigger else None,
                    runtime,
                    compiled.source if compiled else None,
                    compiled.bytecode if compiled else None,
                    compiled.bytecode_sha256 if compiled else None,
                    compiled.build_id if compiled else None,
                    list(compiled.handlers) if compiled else None,
                    tid,
                    aid,
                ),
            )
            if secrets is not None:
                await self._write_secrets(conn, tid, aid, secrets, replace=True)
            return await self._action(conn, tid, aid)

    async def _is_bound(self, conn: Conn, tid: uuid.UUID, aid: uuid.UUID) -> bool:
        row = await (
            await conn.execute("SELECT 1 FROM bindings WHERE tenant_id = %s AND action_id = %s", (tid, aid))
        ).fetchone()
        return row is not None

    async def delete(self, tenant_id: str, action_id: str, *, force: bool = False) -> None:
        """Delete an action; a bound one only with `force`, which removes its bindings too."""
        tid, aid = parse_id(tenant_id, "tenant"), parse_id(action_id, "action")
        async with self.transaction() as conn:
            await self._action(conn, tid, aid)
            if await self._is_bound(conn, tid, aid):
                if not force:
                    raise Conflict("the action is bound to a trigger; unbind it first, or delete with ?force=true")
                await self._remove_from_flows(conn, tid, aid)
            await conn.execute("DELETE FROM actions WHERE tenant_id = %s AND id = %s", (tid, aid))

    async def _remove_from_flows(self, conn: Conn, tid: uuid.UUID, aid: uuid.UUID) -> None:
        triggers = await (
            await conn.execute(
                "SELECT DISTINCT trigger_id FROM bindings WHERE tenant_id = %s AND action_id = %s", (tid, aid)
            )
        ).fetchall()
        for row in triggers:
            remaining = [b for b in await self._bindings(conn, tid, row["trigger_id"]) if b.action_id != str(aid)]
            await self._write_bindings(
                conn, tid, row["trigger_id"], [(uuid.UUID(b.action_id), b.display_name) for b in remaining]
            )

    # --- versions ----------------------------------------------------------------------------

    async def _version(self, conn: Conn, tid: uuid.UUID, aid: uuid.UUID, vid: uuid.UUID) -> Version:
        row = await (
            await conn.execute(
                "SELECT v.*, (a.deployed_version_id = v.id) AS deployed FROM action_versions v"
                " JOIN actions a ON a.tenant_id = v.tenant_id AND a.id = v.action_id"
                " WHERE v.tenant_id = %s AND v.action_id = %s AND v.id = %s",
                (tid, aid, vid),
            )
        ).fetchone()
        if row is None:
            raise NotFound(f"no version with the id {vid}")
        return Version(
            tenant_id=str(tid),
            id=str(row["id"]),
            action_id=str(aid),
            number=row["number"],
            **_built_code(row),
            deployed=bool(row["deployed"]),
            rolled_back_from=str(row["rolled_back_from"]) if row["rolled_back_from"] else None,
            secrets=await self._secrets(conn, tid, aid, str(vid)),
            created_at=row["created_at"],
        )

    async def versions(self, tenant_id: str, action_id: str) -> builtins.list[Version]:
        """The action's versions, newest first."""
        tid, aid = parse_id(tenant_id, "tenant"), parse_id(action_id, "action")
        async with self.transaction() as conn:
            await self._action(conn, tid, aid)
            rows = await (
                await conn.execute(
                    "SELECT id FROM action_versions WHERE tenant_id = %s AND action_id = %s ORDER BY number DESC",
                    (tid, aid),
                )
            ).fetchall()
            return [await self._version(conn, tid, aid, r["id"]) for r in rows]

    async def version(self, tenant_id: str, action_id: str, version_id: str) -> Version:
        tid, aid = parse_id(tenant_id, "tenant"), parse_id(action_id, "action")
        vid = parse_id(version_id, "version")
        async with self.transaction() as conn:
            return await self._version(conn, tid, aid, vid)

    async def _new_version(
        self, conn: Conn, tid: uuid.UUID, aid: uuid.UUID, source: dict[str, Any], *, secrets_from: str,
        rolled_back_from: uuid.UUID | None,
    ) -> uuid.UUID:  # fmt: skip
        # Serialise deploys of one action: the version number comes from the row lock.
        await conn.execute("SELECT 1 FROM actions WHERE tenant_id = %s AND id = %s FOR UPDATE", (tid, aid))
        row = await (
            await conn.execute(
                "SELECT coalesce(max(number), 0) + 1 AS next FROM action_versions"
                " WHERE tenant_id = %s AND action_id = %s",
                (tid, aid),
            )
        ).fetchone()
        number = int(row["next"]) if row else 1
        vid = new_id()
        await conn.execute(
            "INSERT INTO action_versions (tenant_id, id, action_id, number, trigger_id, trigger_version, runtime,"
            " code, bytecode, bytecode_sha256, engine_build_id, handlers, rolled_back_from)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (tid, vid, aid, number, source["trigger_id"], source["trigger_version"], source["runtime"],
             source["code"], source["bytecode"], source["bytecode_sha256"], source["engine_build_id"],
             source["handlers"], rolled_back_from),
        )  # fmt: skip
        await self._copy_secrets(conn, tid, aid, secrets_from, str(vid))
        await conn.execute(
            "UPDATE actions SET deployed_version_id = %s, updated_at = now() WHERE tenant_id = %s AND id = %s",
            (vid, tid, aid),
        )
        await self._prune(conn, tid, aid)
        return vid

    async def _prune(self, conn: Conn, tid: uuid.UUID, aid: uuid.UUID) -> None:
        """Keep at most FIXED.versions_per_action versions: delete the oldest not deployed."""
        await conn.execute(
            "DELETE FROM action_secrets WHERE tenant_id = %(t)s AND action_id = %(a)s AND scope IN ("
            " SELECT id::text FROM action_versions v WHERE v.tenant_id = %(t)s AND v.action_id = %(a)s"
            " AND v.id IS DISTINCT FROM"
            " (SELECT deployed_version_id FROM actions WHERE tenant_id = %(t)s AND id = %(a)s)"
            " ORDER BY v.number DESC OFFSET %(keep)s)",
            {"t": tid, "a": aid, "keep": FIXED.versions_per_action - 1},
        )
        await conn.execute(
            "DELETE FROM action_versions WHERE tenant_id = %(t)s AND action_id = %(a)s AND id IN ("
            " SELECT id FROM action_versions v WHERE v.tenant_id = %(t)s AND v.action_id = %(a)s"
            " AND v.id IS DISTINCT FROM"
            " (SELECT deployed_version_id FROM actions WHERE tenant_id = %(t)s AND id = %(a)s)"
            " ORDER BY v.number DESC OFFSET %(keep)s)",
            {"t": tid, "a": aid, "keep": FIXED.versions_per_action - 1},
        )

    async def deploy(self, tenant_id: str, action_id: str) -> Version:
        """The draft becomes a new immutable version, live at once where the action is bound."""
        tid, aid = parse_id(tenant_id, "tenant"), parse_id(action_id, "action")
        async with self.transaction() as conn:
            row = await (
                await conn.execute("SELECT * FROM actions WHERE tenant_id = %s AND id = %s", (tid, aid))
            ).fetchone()
            if row is None:
                raise NotFound(f"no action with the id {action_id!r}")
            vid = await self._new_version(conn, tid, aid, row, secrets_from=DRAFT, rolled_back_from=None)
            await conn.execute(
                "UPDATE actions SET all_changes_deployed = true WHERE tenant_id = %s AND id = %s", (tid, aid)
            )
            return await self._version(conn, tid, aid, vid)

    async def redeploy(self, tenant_id: str, action_id: str, version_id: str) -> Version:
        """Roll back: deploy a copy of an older version (code and secrets) as a new version."""
        tid, aid = parse_id(tenant_id, "tenant"), parse_id(action_id, "action")
        old = parse_id(version_id, "version")
        async with self.transaction() as conn:
            row = await (
                await conn.execute(
                    "SELECT * FROM action_versions WHERE tenant_id = %s AND action_id = %s AND id = %s", (tid, aid, old)
                )
            ).fetchone()
            if row is None:
                raise NotFound(f"no version with the id {version_id!r}")
            vid = await self._new_version(conn, tid, aid, row, secrets_from=str(old), rolled_back_from=old)
            await conn.execute(
                "UPDATE actions SET all_changes_deployed = false WHERE tenant_id = %s AND id = %s", (tid, aid)
            )
            return await self._version(conn, tid, aid, vid)

    # --- bindings ----------------------------------------------------------------------------

    async def _bindings(self, conn: Conn, tid: uuid.UUID, trigger_id: str) -> builtins.list[Binding]:
        rows = await (
            await conn.execute(
                "SELECT b.*, a.name AS action_name FROM bindings b"
                " JOIN actions a ON a.tenant_id = b.tenant_id AND a.id = b.action_id"
                " WHERE b.tenant_id = %s AND b.trigger_id = %s ORDER BY b.position",
                (tid, trigger_id),
            )
        ).fetchall()
        return [
            Binding(
                id=str(r["id"]),
                trigger_id=r["trigger_id"],
                position=r["position"],
                action_id=str(r["action_id"]),
                action_name=r["action_name"],
                display_name=r["display_name"],
                created_at=r["created_at"],
                updated_at=r["updated_at"],
            )
            for r in rows
        ]

    async def bindings(self, tenant_id: str, trigger_id: str) -> builtins.list[Binding]:
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            return await self._bindings(conn, tid, trigger_id)

    async def _write_bindings(
        self, conn: Conn, tid: uuid.UUID, trigger_id: str, entries: Sequence[tuple[uuid.UUID, str]]
    ) -> None:
        previous = {uuid.UUID(b.action_id): b for b in await self._bindings(conn, tid, trigger_id)}
        await conn.execute("DELETE FROM bindings WHERE tenant_id = %s AND trigger_id = %s", (tid, trigger_id))
        for position, (aid, display_name) in enumerate(entries):
            kept = previous.get(aid)
            await conn.execute(
                "INSERT INTO bindings (tenant_id, trigger_id, position, id, action_id, display_name, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, coalesce(%s, now()))",
                (tid, trigger_id, position, uuid.UUID(kept.id) if kept else new_id(), aid, display_name,
                 kept.created_at if kept else None),
            )  # fmt: skip

    async def replace_bindings(
        self, tenant_id: str, trigger_id: str, refs: Sequence[BindingRef]
    ) -> builtins.list[Binding]:
        """Replace the trigger's flow with `refs`, in order. Only deployed actions of that trigger."""
        tid = parse_id(tenant_id, "tenant")
        if len(refs) > FIXED.actions_per_trigger:
            raise QuotaExceeded(
                f"a trigger may have at most {FIXED.actions_per_trigger} actions bound", limit="actions_per_trigger"
            )
        async with self.transaction() as conn:
            entries: builtins.list[tuple[uuid.UUID, str]] = []
            for ref in refs:
                if ref.kind == "action_id":
                    try:
                        aid = uuid.UUID(ref.value)
                    except ValueError:
                        raise NotFound(f"no action with the id {ref.value!r}") from None
                    row = await (
                        await conn.execute("SELECT * FROM actions WHERE tenant_id = %s AND id = %s", (tid, aid))
                    ).fetchone()
                else:
                    row = await (
                        await conn.execute("SELECT * FROM actions WHERE tenant_id = %s AND name = %s", (tid, ref.value))
                    ).fetchone()
                if row is None:
                    raise NotFound(f"no action with the {ref.kind.replace('_', ' ')} {ref.value!r}")
                if row["deployed_version_id"] is None:
                    raise Conflict(f"the action {row['name']!r} has never been deployed; deploy it before binding it")
                if row["trigger_id"] != trigger_id:
                    raise Conflict(
                        f"the action {row['name']!r} is for the {row['trigger_id']} trigger, not {trigger_id}"
                    )
                if any(e[0] == row["id"] for e in entries):
                    raise Conflict(f"the action {row['name']!r} is bound twice")
                entries.append((row["id"], ref.display_name or row["name"]))
            await self._write_bindings(conn, tid, trigger_id, entries)
            return await self._bindings(conn, tid, trigger_id)

    async def flow(self, tenant_id: str, trigger_id: str) -> builtins.list[FlowStep]:
        """The trigger's bound actions with their deployed versions and secrets, read at once (pinned)."""
        tid = parse_id(tenant_id, "tenant")
        async with self.transaction() as conn:
            steps = []
            for binding in await self._bindings(conn, tid, trigger_id):
                aid = uuid.UUID(binding.action_id)
                row = await (
                    await conn.execute(
                        "SELECT deployed_version_id FROM actions WHERE tenant_id = %s AND id = %s", (tid, aid)
                    )
                ).fetchone()
                assert row is not None and row["deployed_version_id"] is not None
                version = await self._version(conn, tid, aid, row["deployed_version_id"])
                secrets = await self._read_secret_values(conn, tid, aid, version.id)
                steps.append(FlowStep(binding, version, binding.action_name, secrets))
            return steps
