"""The demo (`make demo`): the whole custom-factor story against a real `tollgate serve`, twice.

`make demo` uses the embedded PostgreSQL; here the server gets a fresh
database of the test server (--database-url) so that the test is quick. What
differs is only where the server's database lives.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_") and k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "sdk.demo", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_demo_tells_the_story_end_to_end_and_runs_again(new_database: Any, tmp_path: Path) -> None:
    """Login, factor, /continue, tokens, single sign-on, a new session asked again; a second run starts afresh."""
    args = ("--home", str(tmp_path / "home"), "--database-url", new_database())
    first = _demo(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    for expected in (
        "1. Start the server: tollgate serve, on the PostgreSQL database of --database-url",
        "tenant acme-bank (id ",
        "allowed redirect hosts: verify.acme-bank.example",
        "client 'Acme Bank Web': created, client_id ",
        "user jane.doe@example.com: created (auth0|",
        "custom-factor: created from actions/custom-factor.js (handlers onExecutePostLogin, onContinuePostLogin), "
        "deployed as version 1",
        "secrets: SESSION_TOKEN_SECRET (generated now)",
        "post-login flow: custom-factor",
        '-> 200, the page "Sign in to Acme Bank Web"',
        "POST /t/acme-bank/login -> 303 to https://verify.acme-bank.example/factor?session_token=",
        '-> 200, "Acme Bank: you are verified"',
        "-> 303 to https://app.acme-bank.example/callback?code=",
        "recorded https://verify.acme-bank.example/factor in the session's authentication methods.",
        "-> 200: access_token, id_token",
        "email           jane.doe@example.com",
        "-> 302 to the app's callback with a code at once: no form, no factor",
        '"Sign in to Acme Bank Web": no session in this browser',
        "10. Stop the server (SIGINT, as Ctrl+C does)",
        "Demo complete",
    ):
        assert expected in out, f"missing {expected!r} in:\n{out}"
    assert "earlier demo" not in out
    # Sent to the factor twice: the first session and the new device, never on the single sign-on.
    assert out.count("-> 303 to https://verify.acme-bank.example/factor?session_token=") == 2
    log = (tmp_path / "home" / "server.log").read_text()
    assert "Traceback" not in log

    again = _demo(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "An earlier demo's acme-bank tenant is there: deleted, to start from the descriptor." in again.stdout
    assert "Demo complete" in again.stdout


def test_the_demo_fails_with_the_reason_and_the_servers_log(tmp_path: Path) -> None:
    """A server that cannot start stops the demo at step 1 with exit status 1, saying why."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nowhere = f"postgresql://postgres@127.0.0.1:{port}/none?connect_timeout=2"
    done = _demo("--home", str(tmp_path / "home"), "--database-url", nowhere)
    assert done.returncode == 1
    assert "The demo failed at step 1: tollgate serve exited with status 1 before it was ready" in done.stderr
    assert "Cannot start: the database cannot be used" in done.stderr
    assert "Demo complete" not in done.stdout
