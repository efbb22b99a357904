"""Records as the API shows them (the hosted Management API's field names)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from runtime.flows import FlowResult
from runtime.login.tokens import custom_claims
from runtime.store.records import Action, ApiKey, Binding, Client, Execution, SecretInfo, Tenant, User, Version


def when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def secrets(infos: list[SecretInfo]) -> list[dict[str, Any]]:
    return [{"name": s.name, "updated_at": when(s.updated_at)} for s in infos]


def tenant(t: Tenant, limits: dict[str, int]) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "limits": limits,
        "limit_overrides": t.limits,
        "allowed_redirect_hosts": t.allowed_redirect_hosts,
        "created_at": when(t.created_at),
        "updated_at": when(t.updated_at),
    }


def api_key(k: ApiKey, text: str | None = None) -> dict[str, Any]:
    out = {
        "id": k.id,
        "prefix": k.prefix,
        "created_at": when(k.created_at),
        "revoked_at": when(k.revoked_at),
    }
    if text is not None:
        out["key"] = text
    return out


def version(v: Version) -> dict[str, Any]:
    return {
        "id": v.id,
        "action_id": v.action_id,
        "number": v.number,
        "code": v.code,
        "runtime": v.runtime,
        "dependencies": [],
        "secrets": secrets(v.secrets),
        "status": "built",
        "deployed": v.deployed,
        "supported_triggers": [{"id": v.trigger_id, "version": v.trigger_version}],
        "engine_build_id": v.engine_build_id,
        "rolled_back_from": v.rolled_back_from,
        "created_at": when(v.created_at),
        "updated_at": when(v.created_at),
    }


def action(a: Action) -> dict[str, Any]:
    deployed = {"id": a.deployed_version_id, "number": a.deployed_version_number} if a.deployed_version_id else None
    return {
        "id": a.id,
        "name": a.name,
        "supported_triggers": [{"id": a.trigger_id, "version": a.trigger_version}],
        "code": a.code,
        "runtime": a.runtime,
        "dependencies": [],
        "secrets": secrets(a.secrets),
        "status": a.status,
        "handlers": a.handlers,
        "deployed_version": deployed,
        "all_changes_deployed": a.all_changes_deployed,
        "engine_build_id": a.engine_build_id,
        "created_at": when(a.created_at),
        "updated_at": when(a.updated_at),
    }


def binding(b: Binding) -> dict[str, Any]:
    return {
        "id": b.id,
        "trigger_id": b.trigger_id,
        "display_name": b.display_name,
        "action": {"id": b.action_id, "name": b.action_name},
        "created_at": when(b.created_at),
        "updated_at": when(b.updated_at),
    }


def client(c: Client, secret: str | None = None) -> dict[str, Any]:
    out = {
        "client_id": c.client_id,
        "name": c.name,
        "callbacks": c.callbacks,
        "client_metadata": c.metadata,
        "refresh_token": c.refresh_token,
        "created_at": when(c.created_at),
        "updated_at": when(c.updated_at),
    }
    if secret is not None:
        out["client_secret"] = secret
    return out


def user(u: User) -> dict[str, Any]:
    return {
        "user_id": u.id,
        "email": u.email,
        "email_verified": u.email_verified,
        "name": u.name,
        "app_metadata": u.app_metadata,
        "user_metadata": u.user_metadata,
        "logins_count": u.logins_count,
        "last_login": when(u.last_login),
        "created_at": when(u.created_at),
        "updated_at": when(u.updated_at),
    }


def execution(e: Execution) -> dict[str, Any]:
    return {
        "id": e.id,
        "trigger_id": e.trigger_id,
        "kind": e.kind,
        "status": e.status,
        "results": e.results,
        "event": e.event,
        "created_at": when(e.created_at),
        "updated_at": when(e.updated_at),
    }


def execution_summary(e: Execution) -> dict[str, Any]:
    """A record in a list: what ran and how it ended, without the logs and traces."""
    return {
        "id": e.id,
        "trigger_id": e.trigger_id,
        "kind": e.kind,
        "status": e.status,
        "actions": [
            {
                "action_id": r.get("action_id"),
                "action_name": r.get("action_name"),
                "handler": r.get("handler"),
                "status": r.get("status"),
                "error_class": (r.get("error") or {}).get("class"),
            }
            for r in e.results
        ],
        "created_at": when(e.created_at),
        "updated_at": when(e.updated_at),
    }


def flow(result: FlowResult) -> dict[str, Any]:
    """A post-login flow's outcome as the flow API returns it."""
    out: dict[str, Any] = {"status": result.status, "execution_id": result.execution_id}
    if result.status == "redirect":
        # Metadata is flushed before a redirect: the identity server writes it now.
        return {**out, "location": result.redirect_url, **_metadata(result)}
    if result.status == "failed":
        assert result.error is not None
        return {**out, "error": result.error}
    if result.status == "denied":
        denied = result.outcome.denied or {}
        return {
            **out,
            "error": denied.get("code", "access_denied"),
            "error_description": denied.get("reason", ""),
            **_metadata(result),
        }
    outcome = result.outcome
    id_claims, id_dropped = custom_claims(outcome.id_claims)
    access_claims, access_dropped = custom_claims(outcome.access_claims)
    methods = result.state.event.get("authentication", {}).get("methods", []) + outcome.methods
    return {
        **out,
        "id_token_claims": id_claims,
        "access_token_claims": access_claims,
        "dropped_claims": sorted(set(id_dropped) | set(access_dropped)),
        "scope_changes": outcome.scope_changes,
        **_metadata(result),
        "methods": methods,
        "mfa": outcome.mfa,
        "factors": outcome.factors,
        "primary_user_id": outcome.primary_user_id,
        "session": outcome.session,
    }


def _metadata(result: FlowResult) -> dict[str, Any]:
    return {"app_metadata": result.outcome.app_metadata, "user_metadata": result.outcome.user_metadata}
