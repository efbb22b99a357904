"""`tollgate run` as a user runs it: a subprocess, real files, real exit codes."""

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.conftest import ACME

ACTION = ACME / "actions" / "custom-factor.js"
EVENT = ACME / "events" / "first-login.json"
SECRET = "s" * 40


def tollgate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    done = tollgate("run", *args, "--json")
    return done.returncode, json.loads(done.stdout)


def test_the_redirect_branch_as_json() -> None:
    """--json prints status, commands, logs, error and stats with the limits; exit 0."""
    code, out = run_json(ACTION, "--event", EVENT, "--secret", f"SESSION_TOKEN_SECRET={SECRET}")
    assert code == 0
    assert set(out) == {"status", "commands", "logs", "error", "stats"}
    assert out["status"] == "completed" and out["error"] is None
    [command] = out["commands"]
    assert command["type"] == "redirect"
    assert command["url"].startswith("https://verify.acme-bank.example/factor?session_token=")
    token = command["url"].split("session_token=")[1]
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["sub"] == "auth0|5f7c8ec7c33c6c004bbafe82"
    stats = out["stats"]
    assert {"fuel_used", "memory_peak_bytes", "duration_us", "limits"} <= set(stats)
    assert 0 < stats["fuel_used"] < stats["limits"]["fuel"]


def test_the_continue_branch_with_query_parameters() -> None:
    """--handler onContinuePostLogin with --query state/session_token records the method."""
    now = int(time.time())
    answer = jwt.encode(
        {
            "iat": now,
            "exp": now + 60,
            "sub": "auth0|5f7c8ec7c33c6c004bbafe82",
            "iss": "login.acme-bank.example",
            "state": "abc",
            "user_id": "auth0|5f7c8ec7c33c6c004bbafe82",
            "verified": True,
        },
        SECRET,
        algorithm="HS256",
    )
    code, out = run_json(
        ACTION, "--event", EVENT, "--handler", "onContinuePostLogin",
        "--secret", f"SESSION_TOKEN_SECRET={SECRET}", "--query", "state=abc", "--query", f"session_token={answer}",
    )  # fmt: skip
    assert code == 0, out
    assert out["commands"] == [{"type": "record_method", "url": "https://verify.acme-bank.example/factor"}]


def test_a_failing_action_exits_1_with_the_error_class(tmp_path: Path) -> None:
    """An uncaught throw exits 1; error has class, name, message, stack, line and column."""
    action = tmp_path / "bad.js"
    action.write_text("exports.onExecutePostLogin = async () => {\n  undefinedFunction();\n};\n")
    code, out = run_json(action)
    assert code == 1
    error = out["error"]
    assert error["class"] == "action_error" and error["name"] == "ReferenceError"
    assert (error["line"], error["column"]) == (2, 3)
    assert "undefinedFunction" in error["message"]


def test_a_syntax_error_exits_1_with_its_position(tmp_path: Path) -> None:
    """A syntax error exits 1 with class action_syntax and the line and column."""
    action = tmp_path / "broken.js"
    action.write_text("exports.onExecutePostLogin = async () => {\n  if (\n};\n")
    code, out = run_json(action)
    assert code == 1
    assert out["error"]["class"] == "action_syntax"
    assert out["error"]["line"] == 3


def test_a_limit_can_be_set_and_is_reported(tmp_path: Path) -> None:
    """--limit overrides a limit; hitting it exits 1 with its class."""
    action = tmp_path / "loop.js"
    action.write_text("exports.onExecutePostLogin = async () => { while (true) {} };")
    code, out = run_json(action, "--limit", "fuel=5000000")
    assert code == 1
    assert out["error"]["class"] == "action_timeout"
    assert out["stats"]["limits"]["fuel"] == 5_000_000


def test_human_output_shows_commands_logs_and_stats(tmp_path: Path) -> None:
    """Without --json the report is in words."""
    action = tmp_path / "hello.js"
    action.write_text(
        "exports.onExecutePostLogin = async (e, api) => { console.log('hi', e.user.email); api.access.deny('no') };"
    )
    done = tollgate("run", action)
    assert done.returncode == 0
    assert "hello.js · onExecutePostLogin · completed" in done.stdout
    assert "deny the login: 'no'" in done.stdout
    assert "hi jane.doe@example.com" in done.stdout
    assert "Stats (against the limits in force)" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-file.js"], "no action file at no-such-file.js"),
        ([ACTION, "--event", "missing.json"], "no event file at missing.json"),
        ([ACTION, "--secret", "NOEQUALS"], "--secret takes NAME=VALUE"),
        ([ACTION, "--limit", "fuel=lots"], "--limit fuel needs a whole number"),
        ([ACTION, "--limit", "speed=1"], "unknown limit: speed"),
        ([ACTION, "--handler", "onExecuteSomething"], "post-login has no handler onExecuteSomething"),
        ([ACME], "is a folder"),
    ],
)
def test_usage_errors_exit_2_with_a_message(args: list[str | Path], message: str) -> None:
    """Bad command lines exit 2 and say what is wrong, on stderr."""
    done = tollgate("run", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def test_an_event_file_that_is_not_json_is_a_usage_error(tmp_path: Path) -> None:
    """A malformed event file is reported as such."""
    bad = tmp_path / "event.json"
    bad.write_text("{not json")
    done = tollgate("run", ACTION, "--event", bad)
    assert done.returncode == 2
    assert "is not valid JSON" in done.stderr


def test_secrets_are_not_printed() -> None:
    """Secret values given on the command line never appear in the output."""
    secret = "do-not-print-" + "z" * 30
    done = tollgate("run", ACTION, "--event", EVENT, "--secret", f"SESSION_TOKEN_SECRET={secret}")
    assert done.returncode == 0
    assert secret not in done.stdout and secret not in done.stderr
