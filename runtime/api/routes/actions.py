"""Actions, their versions, triggers and bindings, tests and execution records (tenant routes).

Paths and bodies follow the hosted Management API. Create and update compile
the code in the sandbox at once: the draft is ``built`` immediately (there is
no build queue) and a syntax error is a 400 with its line and column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from runtime.api import views
from runtime.api.endpoints import Call, Endpoint, json
from runtime.api.errors import ApiError
from runtime.api.models import ActionCreate, ActionUpdate, BindingsUpdate, SecretIn, TestRequest
from runtime.flows.runner import logs_truncated
from runtime.limits import TenantLimits
from runtime.sandbox import CompiledAction
from runtime.store.actions import BindingRef, SecretChange
from runtime.triggers import HANDLERS, sample_event

TRIGGER_VERSIONS = {"post-login": "v3"}
RUNTIMES = ["node18", "node22"]


def _check_trigger(trigger_id: str, version: str) -> None:
    if trigger_id not in HANDLERS:
        raise ApiError(400, "unknown_trigger", f"Unknown trigger {trigger_id!r}; supported: {', '.join(HANDLERS)}")
    if version != TRIGGER_VERSIONS[trigger_id]:
        raise ApiError(
            400, "unsupported_trigger_version", f"{trigger_id} supports version {TRIGGER_VERSIONS[trigger_id]}"
        )


def _check_code_size(code: str, limits: TenantLimits) -> None:
    size = len(code.encode("utf-8", "surrogatepass"))
    if size > limits.quotas.max_code_bytes:
        raise ApiError(
            413,
            "code_too_large",
            f"The code is {size:,} bytes; actions may be at most {limits.quotas.max_code_bytes:,}",
        )


def _check_no_dependencies(dependencies: list[Any] | None) -> None:
    if dependencies:
        raise ApiError(
            400,
            "dependencies_not_supported",
            "npm dependencies are not supported: actions run without npm packages or network access",
        )


def _secret_changes(secrets: list[SecretIn]) -> list[SecretChange]:
    return [SecretChange(s.name, s.value) for s in secrets]


async def _compile(call: Call, code: str, trigger: str, limits: TenantLimits) -> CompiledAction:
    _check_code_size(code, limits)
    return await call.services.compile(code, trigger=trigger, limits=limits)


async def list_actions(call: Call) -> Response:
    q = call.request.query_params
    page, per_page = call.paging()
    deployed = {"true": True, "false": False}.get(q.get("deployed", "").lower())
    actions, total = await call.services.store.actions.list(
        call.tenant_id, trigger_id=q.get("triggerId"), name=q.get("actionName"), deployed=deployed,
        page=page, per_page=per_page,
    )  # fmt: skip
    return json({"actions": [views.action(a) for a in actions], "total": total, "page": page, "per_page": per_page})


async def create_action(call: Call) -> Response:
    body: ActionCreate = call.body
    trigger = body.supported_triggers[0]
    _check_trigger(trigger.id, trigger.version)
    _check_no_dependencies(body.dependencies)
    if any(s.value is None for s in body.secrets):
        raise ApiError(400, "invalid_body", "every secret of a new action needs a value")
    limits = await call.services.tenant_limits(call.tenant_id)
    compiled = await _compile(call, body.code, trigger.id, limits)
    store = call.services.store
    action = await store.actions.create(
        call.tenant_id, name=body.name, trigger_id=trigger.id, trigger_version=trigger.version, runtime=body.runtime,
        compiled=compiled, secrets=_secret_changes(body.secrets), quotas=limits.quotas,
    )  # fmt: skip
    if body.deploy:
        await store.actions.deploy(call.tenant_id, action.id)
        action = await store.actions.get(call.tenant_id, action.id)
    return json(views.action(action), 201)


async def get_action(call: Call) -> Response:
    return json(views.action(await call.services.store.actions.get(call.tenant_id, call.param("id"))))


async def update_action(call: Call) -> Response:
    body: ActionUpdate = call.body
    store = call.services.store
    current = await store.actions.get(call.tenant_id, call.param("id"))
    _check_no_dependencies(body.dependencies)
    trigger = body.supported_triggers[0] if body.supported_triggers else None
    if trigger is not None:
        _check_trigger(trigger.id, trigger.version)
    compiled = None
    if body.code is not None or (trigger is not None and trigger.id != current.trigger_id):
        limits = await call.services.tenant_limits(call.tenant_id)
        trigger_id = trigger.id if trigger else current.trigger_id
        compiled = await _compile(call, body.code if body.code is not None else current.code, trigger_id, limits)
    action = await store.actions.update(
        call.tenant_id, current.id, name=body.name, trigger=(trigger.id, trigger.version) if trigger else None,
        runtime=body.runtime, compiled=compiled,
        secrets=_secret_changes(body.secrets) if body.secrets is not None else None,
    )  # fmt: skip
    return json(views.action(action))


async def delete_action(call: Call) -> Response:
    force = call.request.query_params.get("force", "false").lower() == "true"
    await call.services.store.actions.delete(call.tenant_id, call.param("id"), force=force)
    return Response(status_code=204)


async def deploy_action(call: Call) -> Response:
    return json(views.version(await call.services.store.actions.deploy(call.tenant_id, call.param("id"))))


async def list_versions(call: Call) -> Response:
    versions = await call.services.store.actions.versions(call.tenant_id, call.param("id"))
    return json({"versions": [views.version(v) for v in versions], "total": len(versions), "page": 0,
                 "per_page": len(versions)})  # fmt: skip


async def get_version(call: Call) -> Response:
    version = await call.services.store.actions.version(call.tenant_id, call.param("id"), call.param("version_id"))
    return json(views.version(version))


async def deploy_version(call: Call) -> Response:
    version = await call.services.store.actions.redeploy(call.tenant_id, call.param("id"), call.param("version_id"))
    return json(views.version(version))


async def list_triggers(call: Call) -> Response:
    return json({
        "triggers": [
            {"id": t, "version": TRIGGER_VERSIONS[t], "status": "CURRENT", "runtimes": RUNTIMES,
             "default_runtime": "node22", "handlers": list(HANDLERS[t]), "compatible_triggers": []}
            for t in HANDLERS
        ]
    })  # fmt: skip


def _trigger_param(call: Call) -> str:
    trigger_id = call.param("trigger_id")
    if trigger_id not in HANDLERS:
        raise ApiError(404, "not_found", f"no trigger {trigger_id!r}")
    return trigger_id


async def get_sample_event(call: Call) -> Response:
    trigger_id = _trigger_param(call)
    return json({"trigger_id": trigger_id, "event": sample_event(trigger_id)})


async def get_bindings(call: Call) -> Response:
    bindings = await call.services.store.actions.bindings(call.tenant_id, _trigger_param(call))
    return json({"bindings": [views.binding(b) for b in bindings], "total": len(bindings)})


async def update_bindings(call: Call) -> Response:
    body: BindingsUpdate = call.body
    refs = [BindingRef(b.ref.type, b.ref.value, b.display_name) for b in body.bindings]
    bindings = await call.services.store.actions.replace_bindings(call.tenant_id, _trigger_param(call), refs)
    return json({"bindings": [views.binding(b) for b in bindings], "total": len(bindings)})


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def test_action(call: Call) -> Response:
    """Run the draft with its secrets against the given event; record the execution."""
    body: TestRequest = call.body
    services, store = call.services, call.services.store
    action = await store.actions.get(call.tenant_id, call.param("id"))
    limits = await services.tenant_limits(call.tenant_id)
    secrets = await store.actions.secret_values(call.tenant_id, action.id)
    # The live cache is read but a test never writes it: tests must not change what logins see.
    cache = await store.cache.live(call.tenant_id, action.trigger_id)
    compiled = action.compiled()
    started = _now()
    async with services.gate.slot(call.tenant_id, limits.quotas.max_concurrent_executions) as free:
        if not free:
            raise ApiError(
                429, "too_many_executions",
                f"The tenant already runs {limits.quotas.max_concurrent_executions} executions; try again shortly",
            )  # fmt: skip
        result = await services.execute(
            compiled, body.handler, body.payload, secrets=secrets, limits=limits.execution, cache=cache
        )
    output = result.as_dict()
    record = await store.executions.record(
        call.tenant_id, trigger_id=action.trigger_id, kind="test", status=result.status, event=body.payload,
        results=[{
            "action_id": action.id, "action_name": action.name, "version_id": None, "handler": body.handler,
            # The draft ran: replay tells from this digest whether the draft changed since.
            "source_sha256": compiled.source_sha256,
            **output, "trace": result.trace.as_dict(), "logs_truncated": logs_truncated(output["error"]),
            "started_at": started, "ended_at": _now(),
            **({"cache": cache} if cache else {}),
        }],
    )  # fmt: skip
    return json({"payload": {**output, "execution_id": record.id}})


ENDPOINTS = [
    Endpoint("GET", "/api/v2/actions/actions", list_actions,
             "List actions (filters: triggerId, actionName, deployed; paging: page, per_page)", "tenant",
             query=("triggerId", "actionName", "deployed", "page", "per_page")),
    Endpoint("POST", "/api/v2/actions/actions", create_action,
             "Create an action: the code is compiled at once; a syntax error is a 400 with line and column",
             "tenant", ActionCreate, 201),
    Endpoint("GET", "/api/v2/actions/actions/{id}", get_action, "Get an action (secrets: names only)", "tenant"),
    Endpoint("PATCH", "/api/v2/actions/actions/{id}", update_action,
             "Update an action's draft; secrets listed without a value keep their stored value", "tenant",
             ActionUpdate),
    Endpoint("DELETE", "/api/v2/actions/actions/{id}", delete_action,
             "Delete an action; a bound one only with ?force=true", "tenant", status=204, query=("force",)),
    Endpoint("POST", "/api/v2/actions/actions/{id}/deploy", deploy_action,
             "Deploy the draft as a new immutable version", "tenant"),
    Endpoint("POST", "/api/v2/actions/actions/{id}/test", test_action,
             "Run the draft against an event; returns commands, logs, error and stats", "tenant", TestRequest),
    Endpoint("GET", "/api/v2/actions/actions/{id}/versions", list_versions, "List an action's versions, newest first",
             "tenant"),
    Endpoint("GET", "/api/v2/actions/actions/{id}/versions/{version_id}", get_version, "Get one version", "tenant"),
    Endpoint("POST", "/api/v2/actions/actions/{id}/versions/{version_id}/deploy", deploy_version,
             "Roll back: deploy a copy of an older version as a new version", "tenant"),
    Endpoint("GET", "/api/v2/actions/triggers", list_triggers, "List the triggers actions can bind to", "tenant"),
    Endpoint("GET", "/api/v2/actions/triggers/{trigger_id}/sample-event", get_sample_event,
             "A realistic event for the trigger, to test actions with (what the console's test panel starts from)",
             "tenant"),
    Endpoint("GET", "/api/v2/actions/triggers/{trigger_id}/bindings", get_bindings,
             "The trigger's flow: its bound actions in order", "tenant"),
    Endpoint("PATCH", "/api/v2/actions/triggers/{trigger_id}/bindings", update_bindings,
             "Replace the trigger's flow (deployed actions only, at most 20)", "tenant", BindingsUpdate),
]  # fmt: skip
