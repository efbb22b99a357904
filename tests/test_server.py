"""The service as an operator runs it: `tollgate migrate` and `tollgate serve` in their own processes."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from runtime.vault import MasterKeyring

ROOT = Path(__file__).resolve().parents[1]


def _environment(**overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_") and k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TOLLGATE_EXECUTORS"] = "1"
    for key, value in overrides.items():
        if value is not None:
            env[key] = value
    return env


def _tollgate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """`tollgate serve` in a child process; its output is collected in a file."""

    def __init__(self, env: dict[str, str], log_path: Path, *extra: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v2"
        self.log_path = log_path
        with log_path.open("w") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "runtime.cli", "serve", "--port", str(self.port), *extra],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,  # its own process group: a test that fails can end all its processes
            )

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited early:\n{self.output()}")
            try:
                if httpx.get(self.url + "/openapi.json", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server did not answer in {timeout} s:\n{self.output()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)

    def output(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Any]:
    started: list[Server] = []

    def start(env: dict[str, str], *extra: str) -> Server:
        server = Server(env, tmp_path / f"server-{len(started)}.log", *extra)
        started.append(server)
        return server

    yield start
    for server in started:  # left running by a test that failed: the server and every process it started
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()


def test_migrate_applies_each_migration_once(new_database: Any) -> None:
    env = _environment(DATABASE_URL=new_database())
    first = _tollgate("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "Applying migration 0001 (initial)" in first.stdout
    second = _tollgate("migrate", env=env)
    assert second.returncode == 0, second.stderr
    assert "Applying" not in second.stdout
    assert "up to date" in second.stdout.lower()


def test_migrate_reports_an_unreachable_database_without_a_traceback() -> None:
    env = _environment(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{_free_port()}/none?connect_timeout=2")
    result = _tollgate("migrate", env=env)
    assert result.returncode == 1
    assert "the database cannot be used" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_database_url(new_database: Any, servers: Any) -> None:
    master = MasterKeyring.generate_text()
    operator = "tgo_" + "a" * 43
    env = _environment(DATABASE_URL=new_database(), TOLLGATE_MASTER_KEY=master, TOLLGATE_OPERATOR_KEY=operator)
    server = servers(env)
    server.wait_ready()

    admin = {"Authorization": f"Bearer {operator}"}
    created = httpx.post(server.url + "/tenants", json={"name": "served"}, headers=admin, timeout=30)
    assert created.status_code == 201, created.text
    tenant_key = created.json()["api_key"]["key"]
    tenant = {"Authorization": f"Bearer {tenant_key}"}
    action = httpx.post(
        server.url + "/actions/actions",
        json={
            "name": "with-a-secret",
            "code": "exports.onExecutePostLogin = async (event, api) => { api.access.deny(event.secrets.WORD); };",
            "supported_triggers": [{"id": "post-login", "version": "v3"}],
            "secrets": [{"name": "WORD", "value": "swordfish-value"}],
        },
        headers=tenant,
        timeout=30,
    )
    assert action.status_code == 201, action.text
    run = httpx.post(
        server.url + f"/actions/actions/{action.json()['id']}/test", json={"payload": {}}, headers=tenant, timeout=30
    )
    assert run.status_code == 200, run.text
    assert run.json()["payload"]["commands"][0]["reason"] == "swordfish-value"
    assert httpx.get(server.url + "/tenants", headers=tenant, timeout=10).status_code == 403

    assert server.stop() == 0
    output = server.output()
    assert "Using the PostgreSQL server given by DATABASE_URL" in output
    assert "Master key: the TOLLGATE_MASTER_KEY environment variable" in output
    assert "Operator key: the TOLLGATE_OPERATOR_KEY environment variable" in output
    assert f"Ready: the management API is at http://127.0.0.1:{server.port}/api/v2" in output
    assert "POST /api/v2/tenants" in output  # the access log
    for secret in (master, operator, tenant_key, "swordfish-value"):
        assert secret not in output
    assert "Traceback" not in output

    # The database now holds secrets: another master key refuses to start, saying why.
    refused = servers(_environment(**{**env, "TOLLGATE_MASTER_KEY": MasterKeyring.generate_text()}))
    assert refused.process.wait(timeout=120) == 1
    refused_output = refused.output()
    assert "Cannot start" in refused_output
    assert "TOLLGATE_MASTER_KEY" in refused_output
    assert "Traceback" not in refused_output
    without = servers(_environment(DATABASE_URL=env["DATABASE_URL"], TOLLGATE_OPERATOR_KEY=operator))
    assert without.process.wait(timeout=120) == 1
    assert "no master key is set" in without.output()


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_the_access_log_can_be_turned_off(new_database: Any, servers: Any, how: str) -> None:
    """Where a proxy in front keeps the access log, the server's line per request can go; its own lines stay."""
    operator = "tgo_" + secrets.token_urlsafe(32)
    env = _environment(DATABASE_URL=new_database(), TOLLGATE_MASTER_KEY=MasterKeyring.generate_text(),
                       TOLLGATE_OPERATOR_KEY=operator,
                       TOLLGATE_ACCESS_LOG="off" if how == "environment" else None)  # fmt: skip
    server = servers(env, *(["--no-access-log"] if how == "flag" else []), "--workers", "1")
    server.wait_ready()
    admin = {"Authorization": f"Bearer {operator}"}
    assert httpx.post(server.url + "/tenants", json={"name": "quiet"}, headers=admin, timeout=30).status_code == 201
    assert server.stop() == 0
    output = server.output()
    assert "Ready: the management API is at" in output
    assert "POST /api/v2/tenants" not in output and "GET /api/v2/openapi.json" not in output


def test_a_wrong_access_log_setting_is_refused_saying_what_is_allowed(new_database: Any, servers: Any) -> None:
    env = _environment(DATABASE_URL=new_database(), TOLLGATE_MASTER_KEY=MasterKeyring.generate_text(),
                       TOLLGATE_OPERATOR_KEY="tgo_" + "b" * 43, TOLLGATE_ACCESS_LOG="quiet")  # fmt: skip
    refused = servers(env)
    assert refused.process.wait(timeout=120) == 2
    assert "TOLLGATE_ACCESS_LOG must be on or off, not 'quiet'" in refused.output()
    assert "Traceback" not in refused.output()


def test_serve_on_the_embedded_default(tmp_path: Path, servers: Any) -> None:
    home = tmp_path / "home"
    env = _environment(TOLLGATE_HOME=str(home))
    server = servers(env)
    server.wait_ready(timeout=180)
    output = server.output()
    assert "No DATABASE_URL: using the embedded PostgreSQL" in output
    lines = [line for line in output.splitlines() if "Operator API key (shown once" in line]
    assert len(lines) == 1
    operator = lines[0].rsplit(" ", 1)[-1]
    key_file = home / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() not in output
    admin = {"Authorization": f"Bearer {operator}"}
    assert httpx.post(server.url + "/tenants", json={"name": "kept"}, headers=admin, timeout=30).status_code == 201
    assert server.stop() == 0
    assert not (home / "pgdata" / "postmaster.pid").exists(), "the embedded server was left running"

    # Second start: same data, same keys, nothing printed.
    again = servers(env)
    again.wait_ready(timeout=180)
    tenants = httpx.get(again.url + "/tenants", headers=admin, timeout=30)
    assert tenants.status_code == 200
    assert [t["name"] for t in tenants.json()["tenants"]] == ["kept"]
    assert again.stop() == 0
    assert "Operator API key (shown once" not in again.output()
    assert "the key generated and shown at first start" in again.output()


def _server_processes(server: Server) -> list[int]:
    """The server processes of a `serve --workers N` running now (each has its executor)."""
    workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(server.process.pid), "-f", "spawn_main"],
                                              capture_output=True, text=True, check=False).stdout.split()]  # fmt: skip
    return [pid for pid in workers if subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                     check=False).returncode == 0]  # fmt: skip


def _balancing_workers(server: Server) -> tuple[list[int], dict[str, str]]:
    """The server processes of a `serve --workers 2` (each with its executor), once both take connections,
    and the first one's environment."""
    from runtime.balance import TABLE_ENV, ConnectionTable

    # The first process to answer makes the server ready; the other may still be starting its executor.
    deadline = time.monotonic() + 30
    while len(workers := _server_processes(server)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(workers) == 2, "expected two server processes, each with its executor"
    pairs = (v.split(b"=", 1) for v in Path(f"/proc/{workers[0]}/environ").read_bytes().split(b"\0") if b"=" in v)
    environ = {k.decode(): v.decode() for k, v in pairs}
    # Each process takes connections once it has its slot in the table (a moment after it answers).
    table = ConnectionTable(environ[TABLE_ENV])
    try:
        deadline = time.monotonic() + 30
        while sorted(table.counts()) != sorted(workers) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        table.close()
    return workers, environ


def _open_at_once(server: Server, workers: list[int], count: int) -> tuple[list[socket.socket], list[int]]:
    """`count` connections opened at once, and how many each server process holds once all are accepted."""
    from runtime.balance import established_connections

    connections = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(count)]
    deadline = time.monotonic() + 30
    while sum(split := established_connections(server.port, workers)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return connections, split


def _two_processes(new_database: Any, servers: Any) -> tuple[Server, dict[str, str]]:
    """`serve --workers 2` on a new database, ready, and the operator's authorization header."""
    operator = "tgo_" + secrets.token_urlsafe(32)
    env = _environment(DATABASE_URL=new_database(), TOLLGATE_MASTER_KEY=MasterKeyring.generate_text(),
                       TOLLGATE_OPERATOR_KEY=operator)  # fmt: skip
    server: Server = servers(env, "--workers", "2", "--executors", "1")
    server.wait_ready()
    return server, {"Authorization": f"Bearer {operator}"}


def test_serve_with_several_workers(new_database: Any, servers: Any) -> None:
    server, admin = _two_processes(new_database, servers)
    for n in range(4):  # answered by either process
        assert httpx.post(server.url + "/tenants", json={"name": f"w{n}"}, headers=admin, timeout=30).status_code == 201
    assert server.stop() == 0
    output = server.output()
    assert "Starting 2 server processes, each with 1 executor process" in output
    # Migrated once, before the processes start; each process's lines say which one wrote them.
    assert output.count("Applying migration 0001 (initial)") == 1
    assert "up to date" not in output.lower()
    ready = re.findall(r"\[(\d+)\] Ready: the management API is at", output)
    assert len(ready) == 2 and len(set(ready)) == 2
    # The access log: a line per request, with the process that answered it, all written by the time it stopped.
    answered = re.findall(r'^\d\d:\d\d:\d\d INFO    \[(\d+)\] 127\.0\.0\.1:\d+ - "POST /api/v2/tenants HTTP/1\.1" 201$',
                          output, re.MULTILINE)  # fmt: skip
    assert len(answered) == 4 and set(answered) <= set(ready)


def test_metrics_are_summed_over_the_server_processes(new_database: Any, servers: Any) -> None:
    """With several server processes GET /metrics reaches one of them and reports them all: the counters of
    both, and their executors; the files the figures go through are removed when the server stops."""
    from prometheus_client.parser import text_string_to_metric_families

    server, admin = _two_processes(new_database, servers)
    assert httpx.post(server.url + "/tenants", json={"name": "m"}, headers=admin, timeout=30).status_code == 201
    site = f"http://127.0.0.1:{server.port}"
    workers, environ = _balancing_workers(server)
    # Twelve connections open at once are shared out between the processes; a refused continue on each.
    connections, split = _open_at_once(server, workers, 12)
    try:
        assert min(split) > 0, f"the connections fell {split}"
        for n, connection in enumerate(connections):
            form = f"state=no-such-state-{n}".encode()
            connection.sendall(b"POST /t/m/continue HTTP/1.1\r\nHost: localhost\r\n"
                               b"Content-Type: application/x-www-form-urlencoded\r\n"
                               b"Content-Length: %d\r\n\r\n%s" % (len(form), form))  # fmt: skip
        for connection in connections:
            assert connection.recv(65536).startswith(b"HTTP/1.1 400 ")
    finally:
        for connection in connections:
            connection.close()
    figures = Path(environ["PROMETHEUS_MULTIPROC_DIR"])

    def sample(text: str, name: str, **labels: str) -> float:
        return next(s.value for family in text_string_to_metric_families(text) for s in family.samples
                    if s.name == name and s.labels == labels)  # fmt: skip

    assert httpx.get(site + "/metrics", timeout=30).status_code == 401  # answered, not logged as a crash
    for _ in range(4):  # whichever process answers
        text = httpx.get(site + "/metrics", headers=admin, timeout=30).text
        assert sample(text, "tollgate_continues_refused_total") == 12
        assert sample(text, "tollgate_executors", state="alive") == 2
    # A server process killed outright is started again: what it counted stays counted, and its executor
    # leaves the gauges within a few seconds (it had no chance to say it was ending).
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the process started in its place has started its services
        started = set(re.findall(r"\[(\d+)\] Application startup complete", server.output()))
        if len(started) == 3:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # and has read them for the gauges (at once, then every 5 s)
    alive = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            text = httpx.get(site + "/metrics", headers=admin, timeout=5).text
            if (alive := sample(text, "tollgate_executors", state="alive")) == 2:
                break
        time.sleep(0.5)
    assert alive == 2
    assert sample(text, "tollgate_continues_refused_total") == 12
    assert server.stop() == 0
    assert not figures.exists()
    assert "Traceback" not in server.output()


def test_a_server_killed_outright_leaves_files_that_the_next_one_removes(
    new_database: Any, servers: Any, tmp_path: Path
) -> None:
    """SIGKILL (the OOM killer, a stop that timed out) gives `serve` no chance to remove its connection table
    and metrics folder from the temporary folder; the next `serve` removes them, and only them."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    operator = "tgo_" + secrets.token_urlsafe(32)
    env = _environment(DATABASE_URL=new_database(), TOLLGATE_MASTER_KEY=MasterKeyring.generate_text(),
                       TOLLGATE_OPERATOR_KEY=operator, TMPDIR=str(folder))  # fmt: skip

    def ours(pid: int) -> list[str]:
        return sorted(p.name.split("-")[1] for p in folder.iterdir() if p.name.startswith("tollgate-") and
                      p.name.split("-")[2] == str(pid))  # fmt: skip

    first = servers(env, "--workers", "2", "--executors", "1")
    first.wait_ready()
    assert ours(first.process.pid) == ["connections", "metrics"]
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait()
    assert ours(first.process.pid) == ["connections", "metrics"]  # left behind
    running_elsewhere = folder / f"tollgate-metrics-{os.getpid()}-x"  # a server that still runs: kept
    running_elsewhere.mkdir()

    second = servers(env, "--workers", "2", "--executors", "1")
    second.wait_ready()
    assert ours(first.process.pid) == []
    assert ours(second.process.pid) == ["connections", "metrics"]
    assert running_elsewhere.exists()
    assert "Removed 2 files that a server which did not stop cleanly left in" in second.output()
    assert second.stop() == 0
    assert ours(second.process.pid) == []  # a clean stop removes its own, as before


def test_the_sweep_removes_only_this_users_leftovers_of_processes_that_ended(tmp_path: Path) -> None:
    from runtime.server import sweep_leftovers

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    gone = [tmp_path / f"tollgate-metrics-{ended.pid}-abc", tmp_path / f"tollgate-connections-{ended.pid}-def"]
    gone[0].mkdir()
    (gone[0] / "counter_1.db").write_bytes(b"x")
    gone[1].write_bytes(bytes(1024))
    kept = [
        tmp_path / f"tollgate-metrics-{os.getpid()}-ghi",  # its process runs
        tmp_path / "tollgate-metrics-jkl",  # not named for a process
        tmp_path / f"other-{ended.pid}-mno",
        tmp_path / "tollgate-connections-1-pqr",  # pid 1 runs
    ]
    for path in kept:
        path.mkdir()
    assert sweep_leftovers(str(tmp_path)) == 2
    assert not any(path.exists() for path in gone)
    assert all(path.exists() for path in kept)
    assert sweep_leftovers(str(tmp_path)) == 0


def test_several_workers_share_the_connections_evenly(new_database: Any, servers: Any) -> None:
    """Keep-alive connections stay with the process that accepted them: opened at once (an identity server's
    pool at its start), they are shared out evenly rather than left to whichever process is quickest, and
    each is served."""
    env = _environment(DATABASE_URL=new_database(), TOLLGATE_MASTER_KEY=MasterKeyring.generate_text())
    server = servers(env, "--workers", "2", "--executors", "1")
    server.wait_ready()
    workers, _ = _balancing_workers(server)
    connections, split = _open_at_once(server, workers, 40)
    try:
        # Even, give or take the few a process takes itself when the other is slow to (a busy machine).
        assert abs(split[0] - split[1]) <= 4, f"the connections fell {split}"
        for connection in connections:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        for connection in connections:
            assert connection.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        for connection in connections:
            connection.close()
    assert server.stop() == 0
