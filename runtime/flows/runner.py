"""Running a post-login flow: the bound actions in order, each in a fresh sandbox, with redirects.

A flow pins the deployed versions bound to the trigger when it starts and
runs them in order (``onExecutePostLogin``). After each action the host
folds its commands into the flow's :class:`~runtime.flows.outcome.Outcome`.
A deny, a failure (uncaught error, timeout, limit: the login fails closed
with the error class) or a redirect stops the run:

- a redirect suspends the flow: everything needed to go on (pinned steps,
  position, event, outcome, the caller's context) is committed to Postgres
  under a one-time ``state`` *before* the caller sends the redirect, and the
  platform adds that ``state`` to the target URL (the action cannot set it);
- :meth:`FlowRunner.resume` takes the flow back once (of concurrent
  continues with one state exactly one proceeds), calls the same version's
  ``onContinuePostLogin`` with a fresh ``event.request``, then runs the rest.

Every stop commits, in one database transaction, the execution record, the
session's new methods and whatever the caller adds through its ``persist``
callback (the hosted login's metadata and code, the flow API's result), so a
login's effects are written all at once or not at all.

Compiled versions and their secrets are cached per process (versions never
change), so a login costs one query to pin its flow, the executions, and one
transaction at the end.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from runtime import jsontext, metrics
from runtime.flows.outcome import Outcome, apply_commands, iso_now, plain_fields
from runtime.flows.redirects import RedirectRefused, checked_target, with_query
from runtime.limits import TenantLimits
from runtime.sandbox import CompiledAction
from runtime.sandbox.errors import ActionError, PlatformError, SandboxError
from runtime.store.base import Writer
from runtime.store.errors import NotFound, StoreError
from runtime.store.logins import ExternalSession, FlowHead, new_secret

__all__ = ["TRANSACTION_LIFETIME", "FlowResult", "FlowRunner", "FlowState"]

log = logging.getLogger("tollgate.flows")

TRIGGER = "post-login"
TRANSACTION_LIFETIME = timedelta(hours=1)
# Login sessions, as the hosted product's defaults: 7 days at most, 3 days idle.
SESSION_LIFETIME = timedelta(days=7)
SESSION_IDLE = timedelta(days=3)
_VERSION_CACHE_SIZE = 2048


@dataclass
class FlowState:
    """A flow in progress, as plain data (stored while the flow waits for /continue)."""

    tenant_id: str
    tenant_name: str
    steps: list[dict[str, str]]
    position: int
    # Whether steps[position] resumes with onContinuePostLogin.
    resuming: bool
    event: dict[str, Any]
    # The Outcome's fields as of the flow's last suspension ({} before one: the defaults).
    outcome: dict[str, Any]
    results: list[dict[str, Any]]
    interactive: bool
    session_id: str | None
    # The caller's own context (the hosted login's authorization request, the flow API's resume URL).
    origin: dict[str, Any]
    execution_id: str | None = None
    # Set once the flow has been suspended (it then ends through /continue).
    transaction_id: str | None = None
    # How many of outcome.methods the session already holds.
    methods_saved: int = 0
    # The event as the flow started (jsontext.frozen), for its execution record (written at the first stop,
    # then dropped).
    start_event: Any = None

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlowState:
        return cls(**data)


@dataclass
class FlowResult:
    """Where a run of the flow stopped.

    ``status``: ``completed``, ``denied`` (by an action), ``failed`` (an action
    or the platform failed: ``error`` has the class), ``redirect`` (suspended;
    ``redirect_url`` carries the platform's state).
    """

    status: str
    state: FlowState
    outcome: Outcome
    execution_id: str
    redirect_url: str | None = None
    error: dict[str, str] | None = None
    persisted: dict[str, Any] = field(default_factory=dict)


# Called inside the transaction that commits a stop; what it returns lands in FlowResult.persisted.
Persist = Callable[[Writer, FlowResult], Awaitable[dict[str, Any]]]


class FlowRunner:
    """Runs post-login flows for one server process."""

    def __init__(self, services: Any) -> None:
        # runtime.api.services.Services (not imported: it imports this module's users).
        self.services = services
        self._versions: OrderedDict[tuple[str, str], tuple[CompiledAction, dict[str, str]]] = OrderedDict()

    async def begin(
        self,
        tenant_id: str,
        event: dict[str, Any],
        *,
        interactive: bool,
        session_id: str | None,
        origin: dict[str, Any],
        browser: str | None,
        persist: Persist,
        external: ExternalSession | None = None,
    ) -> FlowResult:
        """Start a login's flow with the versions bound now; run until it stops. `event` becomes the flow's.

        With `external` (the flow API), the identity server's session is found
        or opened in the same query, and the methods it holds join
        ``event.authentication.methods``.
        """
        started = time.perf_counter()
        head = await self.services.store.logins.flow_head(tenant_id, TRIGGER, external=external)
        event["tenant"] = {"id": head.tenant_name}
        if head.session is not None:
            session_id = head.session.id
            authentication = event.setdefault("authentication", {})
            authentication["methods"] = [*authentication.get("methods", []), *head.session.methods]
        state = FlowState(
            start_event=jsontext.frozen(event),  # as it is now: the actions' changes come later
            tenant_id=tenant_id,
            tenant_name=head.tenant_name,
            steps=head.steps,
            position=0,
            resuming=False,
            event=event,
            outcome={},  # Outcome's defaults (see _run)
            results=[],
            interactive=interactive,
            session_id=session_id,
            origin=origin,
        )
        limits = TenantLimits.from_overrides(head.limits)
        result = await self._run(state, limits, head, browser=browser, persist=persist)
        _count(result, "start", started)
        return result

    async def resume(
        self, tenant_id: str, state_token: str, request: dict[str, Any], *, browser: str | None, persist: Persist
    ) -> FlowResult | None:
        """Take back the flow suspended under `state_token` and run it on; None if there is none.

        None covers an unknown, expired, used, foreign-tenant state and a
        browser other than the one the flow was sent from: the caller answers
        them all alike, without running any code.
        """
        started = time.perf_counter()
        store = self.services.store
        async with store.logins.statement() as conn:
            flow = await store.logins.consume(conn, tenant_id, state_token, browser)
        if flow is None:
            metrics.continue_refused()
            return None
        state = FlowState.from_dict(flow)
        # A fresh event.request describes /continue; the hostname stays the login's.
        hostname = state.event.get("request", {}).get("hostname")
        state.event["request"] = {**request, "hostname": hostname} if hostname else dict(request)
        head = await store.logins.flow_head(tenant_id, TRIGGER)
        limits = TenantLimits.from_overrides(head.limits)
        result = await self._run(state, limits, head, browser=browser, persist=persist)
        _count(result, "continue", started)
        return result

    # -- the loop ------------------------------------------------------------------------------

    async def _run(
        self,
        state: FlowState,
        limits: TenantLimits,
        head: FlowHead,
        *,
        browser: str | None,
        persist: Persist,
    ) -> FlowResult:
        outcome = Outcome.from_dict(state.outcome)
        services = self.services
        cache: dict[str, Any] | None = head.cache
        while state.position < len(state.steps):
            step = state.steps[state.position]
            handler = "onContinuePostLogin" if state.resuming else "onExecutePostLogin"
            started = iso_now()
            try:
                action, secrets = await self._version(state.tenant_id, step)
            except (NotFound, StoreError, SandboxError) as exc:
                log.error("a flow's action %s could not be loaded: %s", step.get("action_name"), exc)
                return await self._stop(
                    state, outcome, "failed", {"class": "platform_error", "message": "An action of the flow is gone"},
                    browser=browser, persist=persist,
                )  # fmt: skip
            if cache is None:
                cache = await services.store.cache.live(state.tenant_id, TRIGGER)
            async with services.gate.slot(state.tenant_id, limits.quotas.max_concurrent_executions) as free:
                if not free:
                    error = {
                        "class": "resource_exhausted",
                        "message": f"The tenant already runs {limits.quotas.max_concurrent_executions} executions",
                    }
                    return await self._stop(state, outcome, "failed", error, browser=browser, persist=persist)
                try:
                    result = await services.execute(
                        action, handler, state.event, secrets=secrets, limits=limits.execution, cache=cache
                    )
                except PlatformError as exc:
                    entry = _entry(step, handler, started, status="failed", error=exc.to_dict())
                    state.results.append(entry)
                    return await self._stop(state, outcome, "failed", exc.to_dict(), browser=browser, persist=persist)
            entry = _entry(step, handler, started, status=result.status, error=None, result=result.to_wire())
            # What replay needs beyond the flow's start event and the earlier entries' commands.
            if state.resuming:
                entry["request"] = state.event.get("request")
            if cache:
                entry["cache"] = cache
            state.results.append(entry)
            if not result.ok:
                assert result.error is not None
                return await self._stop(
                    state, outcome, "failed", result.error.to_dict(), browser=browser, persist=persist
                )
            try:
                verdict = apply_commands(result.commands, state.event, outcome, handler=handler)
                target = (
                    checked_target(verdict.redirect_url, head.allowed_redirect_hosts) if verdict.redirect_url else None
                )
            except (ActionError, RedirectRefused) as exc:
                error = exc.to_dict() if isinstance(exc, ActionError) else ActionError(str(exc)).to_dict()
                entry.update(status="failed", error=error)
                return await self._stop(state, outcome, "failed", error, browser=browser, persist=persist)
            if verdict.cache_commands:
                await services.store.cache.apply(state.tenant_id, TRIGGER, list(verdict.cache_commands))
                cache = None  # later actions see the writes
            if verdict.stop:
                return await self._stop(state, outcome, "denied", None, browser=browser, persist=persist)
            if outcome.factors and not state.origin.get("offers_mfa", True):
                # Later actions wait until the challenge is met (as Auth0 runs it), and here it cannot be.
                return await self._deny_mfa(state, outcome, browser=browser, persist=persist)
            if target is not None:
                if not state.interactive:
                    error = {
                        "class": "interaction_required",
                        "message": "The action redirects, but this login cannot show anything to the user",
                    }
                    return await self._stop(state, outcome, "failed", error, browser=browser, persist=persist)
                state.resuming = True
                return await self._stop(
                    state, outcome, "redirect", None, browser=browser, persist=persist, target=target
                )
            state.position += 1
            state.resuming = False
        if mfa_requested(outcome) and not state.origin.get("offers_mfa", True):
            return await self._deny_mfa(state, outcome, browser=browser, persist=persist)
        return await self._stop(state, outcome, "completed", None, browser=browser, persist=persist)

    async def _deny_mfa(
        self, state: FlowState, outcome: Outcome, *, browser: str | None, persist: Persist
    ) -> FlowResult:
        """Deny a login whose actions asked for multi-factor authentication that its caller cannot run."""
        outcome.denied = {"reason": MFA_UNAVAILABLE, "code": MFA_UNAVAILABLE_CODE}
        result = await self._stop(state, outcome, "denied", None, browser=browser, persist=persist)
        log.info(
            "post-login flow %s of tenant %s denied: its actions asked for multi-factor authentication, which %s"
            " (a custom factor goes through api.redirect)",
            result.execution_id, state.tenant_name,
            "a refresh-token exchange cannot run" if state.origin.get("kind") == "refresh"
            else "the hosted login page does not offer",
        )  # fmt: skip
        return result

    async def _stop(
        self,
        state: FlowState,
        outcome: Outcome,
        status: str,
        error: dict[str, Any] | None,
        *,
        browser: str | None,
        persist: Persist,
        target: str | None = None,
    ) -> FlowResult:
        """Commit where the flow stopped, at once: execution record, session, the caller's writes, a suspension."""
        logins = self.services.store.logins
        record_status = "suspended" if status == "redirect" else status
        result = FlowResult(status=status, state=state, outcome=outcome, execution_id="", error=_public(error))
        async with logins.writes() as conn:
            result.execution_id = state.execution_id = await logins.record_execution(
                conn, state.tenant_id, execution_id=state.execution_id, trigger_id=TRIGGER, status=record_status,
                results=state.results, event=state.start_event,
            )  # fmt: skip
            state.start_event = None
            new_methods = outcome.methods[state.methods_saved :]
            if state.session_id is not None and (new_methods or outcome.session):
                await logins.update_session(
                    conn, state.tenant_id, state.session_id, add_methods=new_methods,
                    metadata=outcome.session.get("metadata"), cookie_mode=outcome.session.get("cookie_mode"),
                    expires_at=_moment(outcome.session.get("expires_at_ms")),
                    idle_expires_at=_moment(outcome.session.get("idle_expires_at_ms")),
                )  # fmt: skip
            state.methods_saved = len(outcome.methods)
            if target is not None:
                # The outcome so far goes with the suspended flow (elsewhere the result carries it as it is).
                state.outcome = outcome.to_dict()
                token = new_secret()
                state.transaction_id = str(uuid.uuid4())
                await logins.suspend(
                    conn, state.tenant_id, transaction_id=state.transaction_id, state=token, browser=browser,
                    flow=state.to_dict(), lifetime=TRANSACTION_LIFETIME,
                )  # fmt: skip
                result.redirect_url = with_query(target, "state", token)
            result.persisted = await persist(conn, result)
        if error is not None:
            log.info(
                "post-login flow %s for tenant %s failed: %s", result.execution_id, state.tenant_name, error["class"]
            )
        else:
            log.debug("post-login flow %s of tenant %s: %s", result.execution_id, state.tenant_name, status)
        return result

    async def _version(self, tenant_id: str, step: dict[str, str]) -> tuple[CompiledAction, dict[str, str]]:
        key = (tenant_id, step["version_id"])
        cached = self._versions.get(key)
        if cached is not None:
            self._versions.move_to_end(key)
            return cached
        actions = self.services.store.actions
        version = await actions.version(tenant_id, step["action_id"], step["version_id"])
        secrets = await actions.secret_values(tenant_id, step["action_id"], step["version_id"])
        loaded = (version.compiled(), secrets)
        self._versions[key] = loaded
        if len(self._versions) > _VERSION_CACHE_SIZE:
            self._versions.popitem(last=False)
        return loaded

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop a tenant's cached versions (the tenant was deleted)."""
        for key in [k for k in self._versions if k[0] == tenant_id]:
            del self._versions[key]


# A login whose actions asked for multi-factor authentication where the caller cannot run it (the hosted
# login page has no second factors of its own; a custom factor goes through api.redirect) fails closed.
MFA_UNAVAILABLE = "This login requires multi-factor authentication, which this sign-in page does not offer"
MFA_UNAVAILABLE_CODE = "mfa_unavailable"


def _count(result: FlowResult, step: str, started: float) -> None:
    """A run of the flow stopped: for the server's metrics."""
    error_class = result.error["class"] if result.error is not None else None
    metrics.login_ran(result.state.origin.get("kind", "api"), step, result.status, error_class,
                      time.perf_counter() - started)  # fmt: skip


def mfa_requested(outcome: Outcome) -> bool:
    """Whether the flow's actions left multi-factor authentication required: a challenge or enrolment asked
    for, or ``api.multifactor.enable`` with a provider other than "none" (the last call counts)."""
    return bool(outcome.factors) or (outcome.mfa is not None and outcome.mfa.get("provider") != "none")


def _moment(ms: float | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _public(error: dict[str, Any] | None) -> dict[str, str] | None:
    """An error as the caller may show it: its class and message, nothing of the action's internals."""
    if error is None:
        return None
    return {"class": str(error.get("class", "platform_error")), "message": str(error.get("message", ""))}


def _entry(
    step: dict[str, str],
    handler: str,
    started: str,
    *,
    status: str,
    error: dict[str, Any] | None,
    result: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One action's line in the execution record."""
    entry: dict[str, Any] = {
        "action_id": step["action_id"],
        "action_name": step["action_name"],
        "version_id": step["version_id"],
        "handler": handler,
        "started_at": started,
        "ended_at": iso_now(),
        "status": status,
        "error": error,
    }
    if result is not None:
        entry.update(
            commands=result["commands"],
            logs=result["logs"],
            error=result["error"],
            stats={**result["stats"], "limits": result["limits"]},
            trace=result["trace"],
            logs_truncated=logs_truncated(result["error"]),
        )
    return entry


def logs_truncated(error: dict[str, Any] | None) -> bool:
    """Whether a run's console output was cut short: it hit log_bytes, and what came after was not kept."""
    return error is not None and error.get("limit") == "log_bytes"
