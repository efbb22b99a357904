"""The local runner: ``tollgate run ACTION.js``.

Runs an action exactly as production does (same engine build, same sandbox,
same limits) and prints the commands it recorded, its console output, its
error and its stats against the limits in force, like Shopify's function
runner. ``--json`` prints one object for scripts::

    {"status", "commands", "logs", "error", "stats"}

Exit status: 0 when the action completed, 1 when it failed (the class is in
``error.class``), 2 on a usage error (a missing file, a malformed option).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.limits import Limits, LimitsError
from runtime.sandbox import ActionError, ExecutionResult, Stats, compile_action, execute
from runtime.triggers import HANDLERS, sample_event

__all__ = [
    "RunReport",
    "UsageError",
    "add_parser",
    "describe_command",
    "render_logs",
    "render_result",
    "run_action",
    "sample_event",
]

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """The command line or an input file cannot be used; the message says why."""


@dataclass(frozen=True)
class RunReport:
    """One run of an action: a compile error, or the execution's result."""

    name: str
    handler: str
    limits: Limits
    result: ExecutionResult | None
    compile_error: ActionError | None
    compile_us: int

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        if self.result is not None:
            return self.result.as_dict()
        assert self.compile_error is not None
        return {
            "status": "failed",
            "commands": [],
            "logs": [],
            "error": self.compile_error.to_dict(),
            "stats": {**Stats(0, 0, 0, 0, 0).as_dict(), "limits": self.limits.as_dict()},
        }

    def render(self) -> str:
        """The report in words, for people."""
        compile_us = self.compile_us if self.result is not None else None
        return render_result(f"{self.name} · {self.handler}", self.as_dict(), compile_us=compile_us)


def render_result(title: str, data: dict[str, Any], *, compile_us: int | None = None) -> str:
    """One run in words: its commands, console output, error and stats against the limits.

    `data` is a result as the runner's ``--json``, the API's ``/test`` and
    execution records carry it (``status``, ``commands``, ``logs``,
    ``error``, ``stats`` with ``limits``).
    """
    lines = [f"{title} · {data['status']}"]
    commands = data.get("commands") or []
    lines.append(f"\nCommands ({len(commands)})" if commands else "\nCommands: none")
    for command in commands:
        lines.append("  " + describe_command(command))
    logs = data.get("logs") or []
    lines.append(f"\nConsole output ({len(logs)} lines)" if logs else "\nConsole output: none")
    lines += render_logs(logs, indent="  ")
    error = data.get("error")
    if error is not None:
        lines.append(f"\nError ({error['class']})")
        headline = error["message"]
        if error.get("name") and error["class"] == "action_error":
            headline = f"{error['name']}: {headline}"
        lines.append(f"  {headline}")
        if error.get("line") is not None:
            lines.append(f"  at line {error['line']}, column {error['column']}")
        for frame in (error.get("stack") or "").splitlines():
            if frame.strip() and not frame.strip().startswith(headline):
                lines.append(f"  {frame.strip()}")
    stats = data.get("stats")
    if stats is not None:
        limits = stats["limits"]
        lines.append("\nStats (against the limits in force)")
        lines.append(_usage("fuel", stats["fuel_used"], limits["fuel"], "instructions"))
        lines.append(_usage("memory", stats["memory_peak_bytes"], limits["memory_bytes"], "bytes"))
        lines.append(f"  {'duration':<8} {stats['duration_us']:>13,} µs of {limits['wall_ms']:,} ms allowed")
        if compile_us is not None:
            lines.append(f"  {'compile':<8} {compile_us:>13,} µs")
    return "\n".join(lines)


def render_logs(logs: list[dict[str, str]], *, indent: str) -> list[str]:
    """Console output as lines: levels other than ``log`` named, later lines of a message indented further."""
    lines: list[str] = []
    for entry in logs:
        prefix = "" if entry["level"] == "log" else f"[{entry['level']}] "
        for i, text in enumerate(entry["message"].splitlines() or [""]):
            lines.append(indent + (prefix + text if i == 0 else "  " + text))
    return lines


def _usage(name: str, used: int, limit: int, unit: str) -> str:
    share = 100 * used / limit if limit else 0
    return f"  {name:<8} {used:>13,} of {limit:,} {unit} ({share:.1f}%)"


def describe_command(command: dict[str, Any]) -> str:
    """One command in words."""
    kind = command.get("type", "?")
    rest = {k: v for k, v in command.items() if k != "type"}
    if kind == "deny":
        return f"deny the login: {command.get('reason', '')!r}"
    if kind == "redirect":
        return f"redirect the user to {command.get('url')}"
    if kind == "record_method":
        return f"record the completed method {command.get('url')} in the session"
    if kind == "set_claim":
        return f"set {command.get('token')} token claim {command.get('key')!r} = {json.dumps(command.get('value'))}"
    return f"{kind} {json.dumps(rest, separators=(', ', ': '))}"


def run_action(
    source: str | bytes,
    *,
    name: str = "action.js",
    handler: str = "onExecutePostLogin",
    trigger: str = "post-login",
    event: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    limits: Limits | None = None,
    now_ms: float | None = None,
) -> RunReport:
    """Compile and run one handler, as production would; never raises for the action's faults."""
    limits = limits or Limits()
    event = dict(event if event is not None else sample_event(trigger))
    if query:
        request = dict(event.get("request") or {})
        request["query"] = {**(request.get("query") or {}), **query}
        event["request"] = request
    started = time.perf_counter_ns()
    try:
        action = compile_action(source, trigger=trigger, limits=limits)
    except ActionError as exc:
        return RunReport(name, handler, limits, None, exc, (time.perf_counter_ns() - started) // 1000)
    compile_us = (time.perf_counter_ns() - started) // 1000
    result = execute(action, handler, event, secrets=secrets or {}, limits=limits, now_ms=now_ms)
    return RunReport(name, handler, limits, result, None, compile_us)


def _pairs(values: list[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} takes NAME=VALUE, not {item!r}")
        out[key] = value
    return out


def _limits(values: list[str]) -> Limits:
    changes: dict[str, int] = {}
    for key, value in _pairs(values, "--limit").items():
        try:
            changes[key] = int(value.replace("_", ""))
        except ValueError:
            raise UsageError(f"--limit {key} needs a whole number, not {value!r}") from None
    try:
        return Limits().replace(**changes)
    except LimitsError as exc:
        raise UsageError(str(exc)) from None


def _read_event(path: str | None, trigger: str) -> dict[str, Any]:
    if path is None:
        return sample_event(trigger)
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"no event file at {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"the event file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"the event file {path} must hold a JSON object")
    return data


def add_parser(subparsers: Any) -> None:
    """Register ``tollgate run``."""
    parser = subparsers.add_parser(
        "run",
        help="run an action locally, exactly as production does",
        description="Run one handler of an action in the production sandbox and show what it did.",
    )
    parser.add_argument("action", help="the action's JavaScript file")
    parser.add_argument("--trigger", default="post-login", choices=sorted(HANDLERS), help="default: post-login")
    parser.add_argument("--handler", default="onExecutePostLogin", help="default: onExecutePostLogin")
    parser.add_argument("--event", help="a JSON file with the event (default: the trigger's sample event)")
    parser.add_argument("--secret", action="append", default=[], metavar="NAME=VALUE", help="an action secret")
    parser.add_argument(
        "--query", action="append", default=[], metavar="NAME=VALUE", help="a parameter of event.request.query"
    )
    parser.add_argument(
        "--limit", action="append", default=[], metavar="NAME=VALUE", help="override a limit, e.g. wall_ms=1000"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of words")
    parser.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    try:
        if args.handler not in HANDLERS[args.trigger]:
            known = ", ".join(HANDLERS[args.trigger])
            raise UsageError(f"{args.trigger} has no handler {args.handler}; it has {known}")
        path = Path(args.action)
        try:
            source = path.read_bytes()
        except FileNotFoundError:
            raise UsageError(f"no action file at {path}") from None
        except IsADirectoryError:
            raise UsageError(f"{path} is a folder; give the action's .js file") from None
        report = run_action(
            source,
            name=path.name,
            handler=args.handler,
            trigger=args.trigger,
            event=_read_event(args.event, args.trigger),
            secrets=_pairs(args.secret, "--secret"),
            query=_pairs(args.query, "--query"),
            limits=_limits(args.limit),
        )
    except UsageError as exc:
        print(f"tollgate run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.render())
    return EXIT_COMPLETED if report.ok else EXIT_FAILED
