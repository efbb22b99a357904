"""Deterministic replay: run a recorded execution again, locally, and compare (``tollgate replay ID``).

An execution record keeps everything outside the code that made each run
what it was: the event the flow started with (without its secrets), the
seed behind ``Math.random`` and ``crypto``, the clock reading, and the
answers of the platform calls (``validateToken``). Replay rebuilds each
run's input event as the server did, folding in the commands of the runs
before it with the server's own :func:`~runtime.flows.outcome.apply_commands`
(so metadata changes are visible to later actions) and, for a resumed run,
the ``/continue`` request it saw; then it runs the same version's code (or
the draft, for a test run) in the same sandbox with the same seed, clock,
platform answers, cache entries and limits, and compares the commands, the
console output and the error with the record. ``code`` replays with other
code instead: the difference is what the change does to that login.

Secrets are never returned by the API, so the caller supplies them. When a
secret the version declares is missing, the run goes on without it and a
note says which: whatever depends on it (a signed token) may differ.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.flows.outcome import Outcome, apply_commands
from runtime.flows.redirects import RedirectRefused, checked_target
from runtime.limits import Limits
from runtime.sandbox import ActionError, compile_action, execute
from sdk.client import ActionRun, ApiError, Execution, Tollgate
from sdk.runner import UsageError, describe_command, render_logs

__all__ = ["Observed", "ReplayError", "ReplayReport", "RunReplay", "replay"]


class ReplayError(Exception):
    """The record cannot be replayed (too old, its version is gone…); the message says why and what to do."""


@dataclass(frozen=True)
class Observed:
    """What a run did, as replay compares it: commands, console output, and the error's class and message."""

    commands: list[dict[str, Any]]
    logs: list[dict[str, str]]
    error: dict[str, str] | None

    @classmethod
    def of(cls, commands: Any, logs: Any, error: Mapping[str, Any] | None) -> Observed:
        # The stack and position are left out: with other code (--code) they move without meaning much.
        brief = None if error is None else {"class": str(error.get("class")), "message": str(error.get("message"))}
        return cls(list(commands or []), [dict(line) for line in logs or []], brief)

    def as_dict(self) -> dict[str, Any]:
        return {"commands": self.commands, "logs": self.logs, "error": self.error}


@dataclass(frozen=True)
class LocalCode:
    """Code to replay instead of the recorded version's: its file name (for messages) and its text."""

    path: str
    source: str


@dataclass(frozen=True)
class RunReplay:
    """One action run of the record, replayed (or not, when the record holds nothing to replay)."""

    number: int  # from 1, in the record's order
    action_id: str
    action_name: str
    version_id: str | None
    handler: str
    code: str  # where the code came from, in words: "version 3", "the draft", a file name
    recorded: Observed
    replayed: Observed | None
    notes: list[str] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        return self.replayed == self.recorded

    def diff(self) -> str:
        """A unified diff of the recorded and replayed commands, console output and error ("" when equal)."""
        if self.replayed is None:
            return ""
        out: list[str] = []
        for name, show in (("commands", _json_lines), ("console output", _log_lines), ("error", _json_lines)):
            key = "logs" if name == "console output" else name
            before, after = getattr(self.recorded, key), getattr(self.replayed, key)
            out += difflib.unified_diff(show(before), show(after), f"recorded {name}", f"replayed {name}", lineterm="")
        return "\n".join(out)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.number,
            "action_id": self.action_id,
            "action_name": self.action_name,
            "version_id": self.version_id,
            "handler": self.handler,
            "code": self.code,
            "reproduced": self.reproduced,
            "notes": self.notes,
            "recorded": self.recorded.as_dict(),
            "replayed": None if self.replayed is None else self.replayed.as_dict(),
            "diff": self.diff(),
        }


def _json_lines(value: Any) -> list[str]:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True).splitlines()


def _log_lines(logs: list[dict[str, str]]) -> list[str]:
    return render_logs(logs, indent="")


@dataclass(frozen=True)
class ReplayReport:
    execution_id: str
    trigger_id: str
    kind: str
    status: str
    created_at: str
    total_runs: int
    runs: list[RunReplay]

    @property
    def reproduced(self) -> bool:
        return all(run.reproduced for run in self.runs)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "execution_id": self.execution_id,
            "trigger_id": self.trigger_id,
            "kind": self.kind,
            "status": self.status,
            "reproduced": self.reproduced,
            "runs": [run.as_dict() for run in self.runs],
        }

    def render(self) -> str:
        """The replay in words: each run's commands and console output, then "reproduced exactly" or the diff."""
        kind = "test run" if self.kind == "test" else f"{self.trigger_id} flow"
        when = self.created_at[:19].replace("T", " ") + "Z"
        lines = [f"Execution {self.execution_id} · {kind} · {self.status} · {when}"]
        for run in self.runs:
            lines.append(f"\nRun {run.number} of {self.total_runs}: {run.action_name} · {run.code} · {run.handler}")
            lines += [f"  note: {note}" for note in run.notes]
            if run.replayed is None:
                continue
            observed = run.replayed
            lines.append(f"  Commands ({len(observed.commands)})" if observed.commands else "  Commands: none")
            lines += ["    " + describe_command(c) for c in observed.commands]
            logs = observed.logs
            lines.append(f"  Console output ({len(logs)} lines)" if logs else "  Console output: none")
            lines += render_logs(logs, indent="    ")
            if observed.error is not None:
                lines.append(f"  Error ({observed.error['class']}): {observed.error['message']}")
            if run.reproduced:
                lines.append("  reproduced exactly")
            else:
                lines.append("  differs from the record:")
                lines += ["    " + line for line in run.diff().splitlines()]
        same = sum(run.reproduced for run in self.runs)
        if self.reproduced:
            lines.append(f"\nReproduced exactly: {same} of {len(self.runs)} runs.")
        else:
            lines.append(f"\nDiffers from the record: {len(self.runs) - same} of {len(self.runs)} runs differ.")
        return "\n".join(lines)


@dataclass
class _Sources:
    """The code and declared secret names of each version (or draft) the record names, fetched once each."""

    api: Tollgate
    found: dict[tuple[str, str | None], tuple[str, list[str], str]] = field(default_factory=dict)
    hosts: list[str] | None = None

    def code(self, entry: ActionRun) -> tuple[str, list[str], str]:
        """The code that ran, the secret names it had, and its name in words."""
        key = (entry["action_id"], entry["version_id"])
        if key not in self.found:
            self.found[key] = self._fetch(entry)
        return self.found[key]

    def _fetch(self, entry: ActionRun) -> tuple[str, list[str], str]:
        name, version_id = entry["action_name"], entry["version_id"]
        try:
            if version_id is None:
                action = self.api.actions.get(entry["action_id"])
                return action["code"], [s["name"] for s in action["secrets"]], "the draft"
            version = self.api.actions.version(entry["action_id"], version_id)
        except ApiError as exc:
            if exc.status != 404:
                raise
            what = "the action" if version_id is None else f"the version {version_id}"
            raise ReplayError(
                f"{what} of {name} is no longer stored (it was deleted, or pruned: an action keeps its latest "
                "versions only); replay with the code it had: --code FILE"
            ) from None
        return version["code"], [s["name"] for s in version["secrets"]], f"version {version['number']}"

    def allowed_hosts(self) -> list[str]:
        """The tenant's allowed redirect hosts (as they are now: they are not part of the record)."""
        if self.hosts is None:
            self.hosts = self.api.settings.get()["allowed_redirect_hosts"]
        return self.hosts


def replay(
    api: Tollgate,
    execution_id: str,
    *,
    run: int | None = None,
    code: LocalCode | None = None,
    secrets: Mapping[str, str] | None = None,
) -> ReplayReport:
    """Replay the record `execution_id` (every run, or run number `run`, from 1); see the module's docstring.

    Raises UsageError for a `run` the record does not have or `code` that
    does not compile (with its line and column), ReplayError when the record
    cannot be replayed, and the client's errors.
    """
    record: Execution = api.executions.get(execution_id)
    results = record["results"]
    if run is not None and not 1 <= run <= len(results):
        raise UsageError(f"--run {run}: the execution has {len(results)} run{'s' if len(results) != 1 else ''}, "
                         f"numbered from 1")  # fmt: skip
    if record["event"] is None:
        raise ReplayError("the record was made before executions kept their start event: it cannot be replayed")
    sources = _Sources(api)
    event = copy.deepcopy(record["event"])
    outcome = Outcome()
    runs = []
    for number, entry in enumerate(results, 1):
        # A resumed run saw the /continue request in place of the login's, and so did every run after it.
        if "request" in entry:
            event["request"] = copy.deepcopy(entry["request"])
        if run is None or run == number:
            runs.append(
                _replay_run(
                    number,
                    entry,
                    copy.deepcopy(event),
                    trigger=record["trigger_id"],
                    sources=sources,
                    code=code,
                    given=secrets or {},
                )
            )
        try:
            apply_commands(entry.get("commands", []), event, outcome, handler=entry["handler"])
        except ActionError:
            break  # the server stopped the flow here
    return ReplayReport(
        record["id"], record["trigger_id"], record["kind"], record["status"], record["created_at"], len(results), runs
    )


def _replay_run(
    number: int,
    entry: ActionRun,
    event: dict[str, Any],
    *,
    trigger: str,
    sources: _Sources,
    code: LocalCode | None,
    given: Mapping[str, str],
) -> RunReplay:
    recorded = Observed.of(entry.get("commands"), entry.get("logs"), entry.get("error"))

    def made(label: str, notes: list[str], replayed: Observed | None) -> RunReplay:
        return RunReplay(number, entry["action_id"], entry["action_name"], entry["version_id"], entry["handler"],
                         label, recorded, replayed, notes)  # fmt: skip

    trace, stats = entry.get("trace"), entry.get("stats")
    if trace is None or stats is None:
        return made("nothing ran", ["the platform failed before the action ran: nothing to replay"], None)
    notes = []
    if code is not None:
        source, label = code.source, f"{code.path} (in place of the recorded code)"
        try:
            declared = sources.code(entry)[1]
        except ReplayError:
            declared = sorted(given)
    else:
        source, declared, label = sources.code(entry)
        digest = entry.get("source_sha256")
        if digest is not None and hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest() != digest:
            notes.append("the draft has changed since this test ran: the current draft runs, so results may differ")
    missing = [name for name in declared if name not in given]
    if len(missing) == 1:
        name = missing[0]
        notes.append(f"no value for the secret {name} (give --secret {name}=VALUE or set TOLLGATE_SECRET_{name}): "
                     "results that depend on it may differ")  # fmt: skip
    elif missing:
        notes.append(f"no value for the secrets {', '.join(missing)} (give --secret NAME=VALUE or set "
                     "TOLLGATE_SECRET_<NAME> for each): results that depend on them may differ")  # fmt: skip
    limits = Limits(**stats["limits"])
    try:
        action = compile_action(source, trigger=trigger, limits=limits)
    except ActionError as exc:
        if code is None:
            raise ReplayError(f"the recorded code of {entry['action_name']} does not compile here: {exc}") from None
        info = exc.to_dict()
        where = f"{code.path}:{info['line']}:{info['column']}" if "line" in info else code.path
        raise UsageError(f"{where}: {exc.message}") from None
    result = execute(
        action, entry["handler"], event, secrets={n: given[n] for n in declared if n in given}, limits=limits,
        cache=entry.get("cache") or {}, seed=bytes.fromhex(trace["seed"]), now_ms=trace["now_ms"],
        replay_host_calls=trace["host_calls"],
    )  # fmt: skip
    error = result.error.to_dict() if result.error is not None else None
    if error is None:
        error = _host_checks(result.commands, event, entry["handler"], sources.allowed_hosts)
    return made(label, notes, Observed.of(result.commands, result.logs, error))


def _host_checks(
    commands: list[dict[str, Any]], event: dict[str, Any], handler: str, hosts: Callable[[], list[str]]
) -> dict[str, Any] | None:
    """The error the server's checks of the commands would have made of a completed run, as the flow does."""
    try:
        verdict = apply_commands(commands, copy.deepcopy(event), Outcome(), handler=handler)
        if verdict.redirect_url is not None:
            checked_target(verdict.redirect_url, hosts())
    except ActionError as exc:
        return exc.to_dict()
    except RedirectRefused as exc:
        return ActionError(str(exc)).to_dict()
    return None
