"""``tollgate``'s tenant commands, driven as a person would: subprocesses against a real ``tollgate serve``.

One server for the module, on a fresh database of the test PostgreSQL server,
with the real sandbox. The tenant is acme-bank, deployed from a copy of
``tenants/acme-bank`` whose secret comes from the environment (so that the
tests know it, as the bank's verification page would) and whose action
prints a console line in each handler.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from runtime.vault import MasterKeyring
from sdk.client import Tollgate
from tests.conftest import ACME
from tests.flows.test_flow_api import RESUME, base_event, state_of, verified_token
from tests.test_server import Server, _environment

OPERATOR_KEY = "tgo_cli_" + "c" * 40
SECRET = "the-verify-pages-shared-secret-" + "s" * 16
SECRET_ENV = "ACME_FACTOR_SECRET"
EXECUTE_LINE = "console.log('factor asked for', event.user.email, Object.keys(event.request.query).join());"
CONTINUE_LINE = "console.log('back from the factor with', Object.keys(event.request.body).join());"


@dataclass(frozen=True)
class Cli:
    """Runs ``tollgate`` as a user's shell would, with the user's environment."""

    env: dict[str, str]
    cwd: Path

    def __call__(self, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "runtime.cli", *args], env={**self.env, **env}, cwd=self.cwd, input=stdin,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", *args], env=self.env, cwd=self.cwd, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def server(new_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = _environment(DATABASE_URL=new_database(), TOLLGATE_MASTER_KEY=MasterKeyring.generate_text(),
                       TOLLGATE_OPERATOR_KEY=OPERATOR_KEY)  # fmt: skip
    started = Server(env, tmp_path_factory.mktemp("cli-server") / "server.log")
    try:
        started.wait_ready()
        yield started
    finally:
        assert started.stop() == 0
    assert "Traceback" not in started.output()


@pytest.fixture(scope="module")
def base_url(server: Server) -> str:
    return server.url.removesuffix("/api/v2")


@pytest.fixture(scope="module")
def tenant_key(base_url: str) -> str:
    """acme-bank, made by the operator (deploy does not make tenants)."""
    with Tollgate(base_url, OPERATOR_KEY) as operator:
        return operator.tenants.create("acme-bank")["api_key"]["key"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of tenants/acme-bank: the secret from $ACME_FACTOR_SECRET, a console line in each handler."""
    copy = tmp_path_factory.mktemp("tenants") / "acme-bank"
    shutil.copytree(ACME, copy)
    descriptor = json.loads((copy / "tenant.json").read_text())
    descriptor["actions"][0]["secrets"] = {"SESSION_TOKEN_SECRET": {"env": SECRET_ENV}}
    (copy / "tenant.json").write_text(json.dumps(descriptor, indent=2))
    action = copy / "actions" / "custom-factor.js"
    code = action.read_text()
    for handler, line in (("onExecutePostLogin", EXECUTE_LINE), ("onContinuePostLogin", CONTINUE_LINE)):
        opening = f"exports.{handler} = async (event, api) => {{\n"
        assert opening in code
        code = code.replace(opening, opening + f"  {line}\n")
    action.write_text(code)
    return copy


@pytest.fixture(scope="module")
def cli(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    home = tmp_path_factory.mktemp("cli-user")
    env = _environment(TOLLGATE_CONFIG=str(home / "config" / "tollgate.json"), **{SECRET_ENV: SECRET})
    return Cli(env, home)


@pytest.fixture(scope="module")
def deployed(cli: Cli, base_url: str, tenant_key: str, folder: Path) -> str:
    """Logged in, and the folder deployed once: that deploy's output."""
    ok(cli("login", "--url", base_url + "/api/v2/", "--key", tenant_key))
    return ok(cli("deploy", str(folder)))


def test_login_saves_the_key_for_its_owner_only(cli: Cli, base_url: str, tenant_key: str, tmp_path: Path) -> None:
    config = tmp_path / "somewhere" / "config.json"
    refused = cli("login", "--url", base_url, "--key", "tgt_not_a_key", TOLLGATE_CONFIG=str(config))
    assert refused.returncode == 3
    assert "refused this key" in refused.stderr and "nothing was saved" in refused.stderr
    assert not config.exists()

    out = ok(cli("login", "--url", base_url, TOLLGATE_CONFIG=str(config), stdin=tenant_key + "\n"))
    assert f"Logged in to {base_url}: the key works" in out
    assert tenant_key not in out
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text()) == {"url": base_url, "key": tenant_key}
    assert ok(cli("bindings", "show", TOLLGATE_CONFIG=str(config))).startswith("post-login flow:")

    # The environment wins over the saved login.
    wrong = cli("bindings", "show", TOLLGATE_CONFIG=str(config), TOLLGATE_KEY="tgt_revoked_or_made_up")
    assert wrong.returncode == 3 and "the server refused the key" in wrong.stderr
    nowhere = cli("actions", "list", TOLLGATE_CONFIG=str(tmp_path / "none.json"))
    assert nowhere.returncode == 3
    assert nowhere.stderr.strip() == (
        "tollgate actions list: not logged in: run `tollgate login --url URL --key KEY` or set TOLLGATE_URL and "
        "TOLLGATE_KEY"
    )


def test_deploying_a_folder_twice_changes_nothing_the_second_time(deployed: str, cli: Cli, folder: Path) -> None:
    for line in (
        "allowed redirect hosts: verify.acme-bank.example\n",
        "client 'Acme Bank Web': created, client_id ",
        "user jane.doe@example.com: created (auth0|",
        "custom-factor: created from actions/custom-factor.js (handlers onExecutePostLogin, onContinuePostLogin), "
        "deployed as version 1\n",
        f"  secrets: SESSION_TOKEN_SECRET (from ${SECRET_ENV})\n",
        "post-login flow: custom-factor\n",
        "Done: 5 changes.",
    ):
        assert line in deployed
    again = ok(cli("deploy", str(folder)))
    assert "custom-factor: unchanged (version 1)" in again
    assert "post-login flow: custom-factor (unchanged)" in again
    assert "client 'Acme Bank Web': unchanged" in again
    assert f"Nothing to change: the tenant already matches {folder}." in again
    shown = json.loads(ok(cli("actions", "show", "custom-factor", "--json")))
    assert [v["number"] for v in shown["versions"]] == [1]
    assert shown["action"]["all_changes_deployed"] is True

    listed = ok(cli("actions", "list"))
    assert listed.splitlines()[0].split() == ["NAME", "TRIGGER", "DEPLOYED", "DRAFT", "SECRETS", "UPDATED"]
    assert "custom-factor  post-login  version 1  deployed  SESSION_TOKEN_SECRET" in listed
    for output in (deployed, again, listed):
        assert SECRET not in output


def test_deploy_refuses_another_tenants_key_unless_told_into_which(
    deployed: str, cli: Cli, base_url: str, folder: Path
) -> None:
    """A folder deployed with the wrong tenant's key would rewrite that tenant: refused, nothing changed,
    unless --into names the logged-in tenant."""
    with Tollgate(base_url, OPERATOR_KEY) as operator:
        other = operator.tenants.create("globex-staging")["api_key"]["key"]
    as_other = {"TOLLGATE_URL": base_url + "/api/v2/", "TOLLGATE_KEY": other}
    refused = cli("deploy", str(folder), **as_other)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert (
        f"tollgate deploy: {folder} describes the tenant 'acme-bank', but the key you are logged in with is the "
        "tenant 'globex-staging''s: log in with 'acme-bank''s key, or pass --into globex-staging" in refused.stderr
    )
    assert refused.stdout == ""
    assert json.loads(ok(cli("actions", "list", "--json", **as_other))) == []
    wrong_name = cli("deploy", str(folder), "--into", "acme-bank", **as_other)
    assert wrong_name.returncode == 2 and "pass --into globex-staging" in wrong_name.stderr
    into = ok(cli("deploy", str(folder), "--into", "globex-staging", **as_other))
    assert f"Deploying {folder} (tenant acme-bank) into the tenant globex-staging to " in into
    assert "custom-factor: created from actions/custom-factor.js" in into
    # The folder's own tenant is untouched by all this.
    assert "Nothing to change" in ok(cli("deploy", str(folder)))


def test_a_changed_folder_updates_and_deploys_what_changed(deployed: str, cli: Cli, folder: Path) -> None:
    action = folder / "actions" / "custom-factor.js"
    original = action.read_text()
    before = json.loads(ok(cli("actions", "show", "custom-factor", "--json")))["action"]["deployed_version"]["number"]
    try:
        action.write_text(original + "\n// tuned\n")
        out = ok(cli("deploy", str(folder), "--json"))
        done = json.loads(out)
        (custom,) = done["actions"]
        assert (custom["change"], custom["version"], custom["secrets_set"]) == ("updated", before + 1, [])
        assert done["changes"] == 1 and SECRET not in out
        assert f"custom-factor: unchanged (version {before + 1})" in ok(cli("deploy", str(folder)))

        action.write_text(
            original + "\nexports.onExecutePostLogin = async (event, api) => {\n  api.access.deny(;\n};\n"
        )
        broken = cli("deploy", str(folder))
        assert broken.returncode == 2
        assert f"tollgate deploy: {action}:" in broken.stderr
        line, column = broken.stderr.split(f"{action}:", 1)[1].split(":")[:2]
        assert (int(line), int(column)) > (len(original.splitlines()), 0)
    finally:
        action.write_text(original)
    assert "custom-factor: updated, deployed as version" in ok(cli("deploy", str(folder)))  # back as it was


def test_actions_test_runs_the_draft_and_exits_1_when_it_fails(deployed: str, cli: Cli, tmp_path: Path) -> None:
    event = str(ACME / "events" / "first-login.json")
    out = ok(cli("actions", "test", "custom-factor", "--event", event))
    assert "custom-factor (draft) · onExecutePostLogin · completed" in out
    assert "redirect the user to https://verify.acme-bank.example/factor?session_token=" in out
    assert "factor asked for jane.doe@example.com client_id,response_type,scope,redirect_uri,state" in out
    assert "Recorded as execution " in out and SECRET not in out

    (tmp_path / "thrower.js").write_text("exports.onExecutePostLogin = async () => { throw new Error('boom'); };\n")
    ok(cli("actions", "create", "thrower", str(tmp_path / "thrower.js")))
    failed = cli("actions", "test", "thrower")
    assert failed.returncode == 1
    assert "thrower (draft) · onExecutePostLogin · failed" in failed.stdout and "Error: boom" in failed.stdout
    assert json.loads(cli("actions", "test", "thrower", "--json").stdout)["error"]["class"] == "action_error"

    (tmp_path / "broken.js").write_text("exports.onExecutePostLogin = async (event, api) => {\n  let = ;\n};\n")
    broken = cli("actions", "create", "broken", str(tmp_path / "broken.js"))
    assert broken.returncode == 2
    assert broken.stderr.startswith(f"tollgate actions create: {tmp_path / 'broken.js'}:2:")

    unknown = cli("actions", "test", "custom-factr", "--event", event)
    assert unknown.returncode == 2
    assert "no action named 'custom-factr'; the actions are: custom-factor, thrower" in unknown.stderr
    missing = cli("actions", "test", "custom-factor", "--event", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and f"no event file at {tmp_path / 'nope.json'}" in missing.stderr
    ok(cli("actions", "delete", "thrower"))


def test_bindings_and_versions(deployed: str, cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "greeter.js").write_text("exports.onExecutePostLogin = async (event) => { console.log('hello'); };\n")
    created = ok(cli("actions", "create", "greeter", str(tmp_path / "greeter.js")))
    assert "Not deployed yet" in created
    never = cli("bindings", "set", "post-login", "greeter", "custom-factor")
    assert never.returncode == 2 and "has never been deployed" in never.stderr
    assert "greeter: deployed as version 1" in ok(cli("actions", "deploy", "greeter"))
    try:
        out = ok(cli("bindings", "set", "post-login", "greeter", "custom-factor"))
        assert out.strip() == "post-login flow: greeter -> custom-factor"
        assert [b["action"]["name"] for b in json.loads(ok(cli("bindings", "show", "--json")))] == [
            "greeter", "custom-factor"
        ]  # fmt: skip
        bound = cli("actions", "delete", "greeter")
        assert bound.returncode == 2 and "--force" in bound.stderr
    finally:
        ok(cli("bindings", "set", "post-login", "custom-factor"))

    (tmp_path / "greeter.js").write_text("exports.onExecutePostLogin = async (event) => { console.log('hi'); };\n")
    ok(cli("actions", "update", "greeter", str(tmp_path / "greeter.js")))
    assert "greeter: deployed as version 2" in ok(cli("actions", "deploy", "greeter"))
    rolled = ok(cli("actions", "rollback", "greeter", "v1"))
    assert "greeter: version 1 deployed again, as version 3" in rolled
    assert "copy of version 1" in ok(cli("actions", "show", "greeter"))
    assert cli("actions", "rollback", "greeter", "9").returncode == 2
    ok(cli("actions", "delete", "greeter", "--force"))


def test_secrets_are_set_from_stdin_or_a_file_and_never_printed(deployed: str, cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "vault.js").write_text(
        "exports.onExecutePostLogin = async (e, api) => { api.access.deny(e.secrets.A); };"
    )
    ok(cli("actions", "create", "vault", str(tmp_path / "vault.js")))
    value, other = "stdin-secret-" + "v" * 20, "file-secret-" + "w" * 20
    outputs = [ok(cli("secrets", "set", "vault", "A", stdin=value + "\n"))]
    (tmp_path / "b.txt").write_text(other + "\n")
    outputs.append(ok(cli("secrets", "set", "vault", "B", "--from-file", str(tmp_path / "b.txt"))))
    outputs.append(ok(cli("secrets", "list", "vault")))
    assert [s["name"] for s in json.loads(ok(cli("secrets", "list", "vault", "--json")))] == ["A", "B"]
    tested = cli("actions", "test", "vault", "--json")
    assert json.loads(tested.stdout)["commands"] == [{"type": "deny", "reason": value}]  # the action's own doing
    outputs.append(ok(cli("secrets", "unset", "vault", "B")))
    assert [s["name"] for s in json.loads(ok(cli("secrets", "list", "vault", "--json")))] == ["A"]
    again = cli("secrets", "unset", "vault", "B")
    assert again.returncode == 2 and "vault has no secret B; it has: A" in again.stderr
    empty = cli("secrets", "set", "vault", "C", stdin="")
    assert empty.returncode == 2 and "empty" in empty.stderr
    for output in outputs:
        assert value not in output and other not in output
    ok(cli("actions", "delete", "vault"))


def _lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def _wait_for(lines: queue.Queue[str], text: str, seen: list[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in seen):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{text!r} did not appear in:\n{''.join(seen)}"
        with contextlib.suppress(queue.Empty):
            seen.append(lines.get(timeout=remaining))


def _log_in(base_url: str, tenant_key: str) -> tuple[str, str]:
    """A login through the flow API: sent to the factor, back through /continue; its execution and redirect."""
    with Tollgate(base_url, tenant_key) as api:
        started = api.flows.post_login(base_event(), RESUME)
        assert started["status"] == "redirect", started
        location = started.get("location", "")
        state = state_of(location)
        back = httpx2.post(f"{base_url}/t/acme-bank/continue", timeout=30,
                           data={"state": state, "session_token": verified_token(state, secret=SECRET)})  # fmt: skip
        assert back.status_code == 303, back.text
        ref = parse_qs(urlsplit(back.headers["location"]).query)["result"][0]
        assert api.flows.result(ref)["status"] == "completed"
    return started["execution_id"], location


def test_a_login_followed_in_the_logs_then_replayed_exactly(
    deployed: str, cli: Cli, base_url: str, tenant_key: str, tmp_path: Path
) -> None:
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    notices: list[str] = []
    seen: list[str] = []
    with cli.popen("logs", "--follow") as follow:
        assert follow.stdout is not None and follow.stderr is not None
        readers = [threading.Thread(target=_lines, args=(follow.stdout, out)),
                   threading.Thread(target=_lines, args=(follow.stderr, err))]  # fmt: skip
        for reader in readers:
            reader.start()
        try:
            _wait_for(err, "Following the executions", notices)  # connected: what is recorded from now on shows
            execution_id, location = _log_in(base_url, tenant_key)
            _wait_for(out, "back from the factor with state,session_token", seen)
            follow.send_signal(signal.SIGINT)
            assert follow.wait(timeout=30) == 0
        finally:
            if follow.poll() is None:
                follow.kill()
            follow.wait()
            for reader in readers:
                reader.join(timeout=10)
    printed = "".join(seen)
    assert f"custom-factor · onExecutePostLogin · completed  (execution {execution_id})" in printed
    assert "  factor asked for jane.doe@example.com client_id,response_type,scope,redirect_uri,state" in printed
    while not err.empty():
        notices.append(err.get())
    assert "Traceback" not in "".join(notices)

    recent = ok(cli("logs", "--limit", "1"))
    assert "factor asked for jane.doe@example.com" in recent and "back from the factor with" in recent
    assert execution_id in ok(cli("executions", "list", "--action", "custom-factor"))
    shown = ok(cli("executions", "show", execution_id))
    assert re.search(r"Run 2: custom-factor \(version \d+\) · onContinuePostLogin · completed", shown)
    assert "record the completed method https://verify.acme-bank.example/factor in the session" in shown

    # The same secret (as the verification page holds it): both runs reproduce exactly.
    replayed = ok(cli("replay", execution_id, **{"TOLLGATE_SECRET_SESSION_TOKEN_SECRET": SECRET}))
    assert replayed.count("reproduced exactly") == 2 and "Reproduced exactly: 2 of 2 runs." in replayed
    token = parse_qs(urlsplit(location).query)["session_token"][0]
    assert f"redirect the user to https://verify.acme-bank.example/factor?session_token={token}" in replayed
    assert "back from the factor with state,session_token" in replayed
    assert SECRET not in replayed

    # Without it, replay says which secret is missing, and the signed token differs.
    without = cli("replay", execution_id, "--json")
    assert without.returncode == 1
    report = json.loads(without.stdout)
    first = report["runs"][0]
    assert report["reproduced"] is False and first["reproduced"] is False
    assert "no value for the secret SESSION_TOKEN_SECRET" in first["notes"][0]

    # Changed code shows the difference it makes to this login.
    code = tmp_path / "changed.js"
    code.write_text((ACME / "actions" / "custom-factor.js").read_text())
    changed = cli(
        "replay", execution_id, "--run", "1", "--code", str(code), "--secret", f"SESSION_TOKEN_SECRET={SECRET}"
    )
    assert changed.returncode == 1
    assert f"Run 1 of 2: custom-factor · {code} (in place of the recorded code) · onExecutePostLogin" in changed.stdout
    assert "--- recorded console output" in changed.stdout
    assert "-factor asked for jane.doe@example.com client_id,response_type,scope,redirect_uri,state" in changed.stdout
    assert "--- recorded commands" not in changed.stdout  # the redirect is the same
    assert "Differs from the record: 1 of 1 runs differ." in changed.stdout and SECRET not in changed.stdout

    bad_run = cli("replay", execution_id, "--run", "3")
    assert bad_run.returncode == 2 and "--run 3: the execution has 2 runs" in bad_run.stderr
    missing = cli("replay", execution_id, "--code", str(tmp_path / "gone.js"))
    assert missing.returncode == 2 and "no code file at" in missing.stderr


def test_bad_input_gets_a_clear_message_and_a_non_zero_exit(
    deployed: str, cli: Cli, folder: Path, tmp_path: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = cli("actions", "list", TOLLGATE_URL=f"http://127.0.0.1:{port}")
    assert down.returncode == 3
    assert f"the Tollgate server at http://127.0.0.1:{port} cannot be reached" in down.stderr
    assert "Is `tollgate serve` running there?" in down.stderr

    nowhere = cli("deploy", str(tmp_path / "no-such-tenant"))
    assert nowhere.returncode == 2 and "no folder at" in nowhere.stderr
    (tmp_path / "empty").mkdir()
    no_descriptor = cli("deploy", str(tmp_path / "empty"))
    assert no_descriptor.returncode == 2 and "there is no tenant.json in" in no_descriptor.stderr
    unset = cli("deploy", str(folder), **{SECRET_ENV: ""})
    assert unset.returncode == 2
    assert (
        f"the secret SESSION_TOKEN_SECRET of the action custom-factor comes from the environment variable "
        f"{SECRET_ENV}, which is not set" in unset.stderr
    )
    assert unset.stdout.startswith("Deploying ") and "allowed redirect hosts" not in unset.stdout  # nothing done

    usage = cli("actions", "frobnicate")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr
    no_record = cli("executions", "show", "00000000-0000-0000-0000-000000000000")
    assert no_record.returncode == 2 and "no execution with the id" in no_record.stderr
