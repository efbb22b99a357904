"""Post-login flows per second through the flow API, and their latency at 80% of that rate.

The whole service runs here, as ``tollgate serve`` runs it with its defaults
(on a real database: a server process per core, each with its executor), on a
fresh database that the benchmark creates on the PostgreSQL server of
DATABASE_URL (else postgresql://postgres@127.0.0.1:5432, else the embedded
one) and drops at the end. One tenant, one deployed action
bound to post-login that does ordinary work without redirecting (it reads
``event.user.app_metadata`` and sets namespaced claims on the ID and access
tokens), and the realistic first-login event (tenants/acme-bank, without its
``tenant`` field), each login with its own session id so that sessions are
looked up and kept as they are in production.

A load generator in a separate process sends ``POST /api/v2/flows/post-login``
over keep-alive connections on loopback (a small HTTP/1.1 client on raw
asyncio streams), so server, executors, PostgreSQL and generator all share
this machine's cores:

- closed loop, 1 to 32 requests in flight: the best rate is the saturation
  throughput (each level reports the median of its one-second windows);
- open loop at 80% of it: a fixed arrival schedule, latency counted from each
  request's scheduled time, so waiting behind a slow request counts
  (no coordinated omission); closed loops at the saturation's concurrency
  just before and just after it say what the machine gave by then (its speed
  drifts by a third within the hour);
- open loops at 20%, 40% and 60% of it: latency by load, and the highest of
  those rates at which the p99 stayed within its target; the 20% one also
  gives the CPU a flow costs when the processes sleep between flows (each
  wakes for each flow) against its cost at saturation;
- the generator's own ceiling against a stub server (same request bytes), and
  the server's cheapest answers (401 without a key, 400 after the key check
  and body validation, the OpenAPI document), so that the HTTP share is known;
- where the time goes, by measurement: CPU per flow of each process (from
  /proc) and how often each waited or was preempted (its context switches)
  at each load, the executor round trip and the sandbox alone timed directly, how
  many executions one executor serves to callers on an event loop that is
  busy with other work in slices of 0.5-2 ms (the hand-off), the
  store calls a flow makes timed directly on the same database, and a py-spy
  profile of the server's event loop when py-spy is installed.

Results go to benchmarks/results/ as JSON and a PNG; the ratio to the anchor
and the targets are printed.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/flow_throughput.py``;
``--quick`` for a short smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import copy
import http.client
import itertools
import json
import math
import multiprocessing
import os
import platform
import re
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
EVENT = ROOT / "tenants" / "acme-bank" / "events" / "first-login.json"
HOST = "127.0.0.1"
FLOW_PATH = "/api/v2/flows/post-login"
RESUME_URL = "https://idp.acme-bank.example/resume"
TRIGGER = "post-login"
COMPLETED = b'"status":"completed"'

TARGET_FLOWS_PER_S = 1_000
TARGET_P99_MS = 20.0
# Served at least this share of the open loop's offered rate: the server kept up.
OPEN_LOOP_KEPT_UP = 0.97
LOAD_FRACTION = 0.8
# A light load, for what a flow costs when the processes sleep between flows.
LIGHT_FRACTION = 0.2
# Open loops at these shares of the saturation besides LOAD_FRACTION's: latency by load, and up to which
# rate the p99 target holds on this machine (LIGHT_FRACTION's loop is the first of them).
LATENCY_FRACTIONS = (LIGHT_FRACTION, 0.4, 0.6)
# Keycloak's sizing guide: one vCPU per 120 refresh-token requests/s (and per 15 password logins/s).
KEYCLOAK_REFRESH_PER_VCPU = 120
KEYCLOAK_PASSWORD_PER_VCPU = 15
ANCHOR_VCPUS = 2
ANCHOR_PER_S = KEYCLOAK_REFRESH_PER_VCPU * ANCHOR_VCPUS
# The open loop never holds more requests in flight than the tenant's default
# max_concurrent_executions (50): past that the server would answer 429, so
# requests wait in the generator instead, where their wait is counted.
OPEN_LOOP_CONNECTIONS = 48
# Execution records written together, as under load (the store call measured per record).
RECORD_BATCH = 16

ACTION_NAME = "token-claims"
ACTION_CODE = """\
/** Adds the user's plan, roles and client tier to the tokens (no redirect, no secrets). */
exports.onExecutePostLogin = async (event, api) => {
  const ns = 'https://acme-bank.example/';
  const app = event.user.app_metadata || {};
  const roles = Array.isArray(app.roles) ? app.roles : [];
  api.idToken.setCustomClaim(ns + 'plan', app.plan || 'basic');
  api.idToken.setCustomClaim(ns + 'roles', roles);
  api.accessToken.setCustomClaim(ns + 'roles', roles);
  api.accessToken.setCustomClaim(ns + 'tier', (event.client.metadata || {}).tier || 'standard');
  if ((event.stats || {}).logins_count > 1) {
    api.idToken.setCustomClaim(ns + 'returning', true);
  }
  if (roles.includes('admin')) {
    api.accessToken.addScope('admin:all');
  }
};
"""


def say(text: str) -> None:
    print(text, flush=True)


# -- the load generator (runs in its own process; stdlib and uvloop) ---------------------------------


class _HttpConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: write a request, read its reply."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        at = head.find(b"content-length:")
        if at < 0:
            head = head.lower()
            at = head.find(b"content-length:")
        length = int(head[at + 15 : head.index(b"\r\n", at)]) if at >= 0 else 0
        body = await self.reader.readexactly(length) if length else b""
        if b"connection: close" in head.lower():
            self.close()
        return int(head[9:12]), body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ok(status: int, body: bytes, expect: dict[str, Any]) -> bool:
    return status == expect["status"] and (expect["contains"] is None or expect["contains"] in body)


async def _closed_loop(port: int, job: dict[str, Any], notify: Callable[[str], None]) -> dict[str, Any]:
    """`concurrency` connections, each sending its next request as soon as the last one is answered."""
    requests: list[bytes] = job["requests"]
    connections = [_HttpConnection(port) for _ in range(job["concurrency"])]
    for connection in connections:
        await connection.open()
    counter = itertools.count()
    total = job.get("total")  # warm-up: each request a number of times, then stop
    state = {"measuring": False, "stop": False, "start": 0.0, "end": float("inf")}
    latencies: list[int] = []
    done_at: list[float] = []
    errors: Counter[str] = Counter()

    async def worker(connection: _HttpConnection) -> None:
        while not state["stop"]:
            i = next(counter)
            if total is not None and i >= total:
                return
            raw = requests[i % len(requests)]
            started = time.perf_counter()
            try:
                status, body = await connection.request(raw)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                errors[type(exc).__name__] += 1
                connection.close()
                continue
            ended = time.perf_counter()
            if state["measuring"] and ended <= state["end"]:
                latencies.append(int((ended - started) * 1e6))
                done_at.append(ended)
                if not _ok(status, body, job["expect"]):
                    errors[f"HTTP {status}: {body[:120].decode(errors='replace')}"] += 1

    tasks = [asyncio.create_task(worker(c)) for c in connections]
    if total is not None:
        await asyncio.gather(*tasks)
        for connection in connections:
            connection.close()
        return {"errors": dict(errors)}
    await asyncio.sleep(job["warmup_s"])
    notify("measuring")
    cpu_start = _cpu_self()
    state.update(measuring=True, start=time.perf_counter())
    state["end"] = state["start"] + job["seconds"]
    await asyncio.sleep(job["seconds"])
    state["stop"] = True
    cpu = _cpu_self() - cpu_start
    await asyncio.gather(*tasks)
    for connection in connections:
        connection.close()
    windows = Counter(int(t - state["start"]) for t in done_at)
    per_window = [windows.get(w, 0) for w in range(int(job["seconds"]))]
    return {
        "count": len(latencies),
        "seconds": job["seconds"],
        "windows": per_window,
        "latencies_us": latencies,
        "errors": dict(errors),
        "generator_cpu_s": cpu,
    }


async def _open_loop(port: int, job: dict[str, Any], notify: Callable[[str], None]) -> dict[str, Any]:
    """Requests at fixed times (`rate` per second); latency from each one's scheduled time.

    Halfway through the warm-up it tells the parent "settled" (every connection
    has been accepted and used), at the end of it "measuring"."""
    requests: list[bytes] = job["requests"]
    rate, warmup_s, seconds = job["rate"], job["warmup_s"], job["seconds"]
    connections = [_HttpConnection(port) for _ in range(job["connections"])]
    for connection in connections:
        await connection.open()
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    warmup_n = int(rate * warmup_s)
    n = warmup_n + int(rate * seconds)
    latencies: list[int] = []
    dues: list[float] = []  # each measured flow's scheduled time (perf_counter: the same clock in every process)
    service: list[int] = []
    lag: list[int] = []
    in_flight = {"now": 0, "max": 0}
    errors: Counter[str] = Counter()

    async def worker(connection: _HttpConnection) -> None:
        while True:
            item = await queue.get()
            if item is None:
                return
            i, due = item
            sent = time.perf_counter()
            in_flight["now"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["now"])
            try:
                status, body = await connection.request(requests[i % len(requests)])
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                errors[type(exc).__name__] += 1
                connection.close()
                in_flight["now"] -= 1
                continue
            ended = time.perf_counter()
            in_flight["now"] -= 1
            if i >= warmup_n:
                dues.append(due)
                latencies.append(int((ended - due) * 1e6))
                service.append(int((ended - sent) * 1e6))
                lag.append(int((sent - due) * 1e6))
                if not _ok(status, body, job["expect"]):
                    errors[f"HTTP {status}: {body[:120].decode(errors='replace')}"] += 1

    tasks = [asyncio.create_task(worker(c)) for c in connections]
    start = time.perf_counter() + 0.05
    cpu_start = 0.0
    for i in range(n):
        due = start + i / rate
        if i == warmup_n // 2:
            notify("settled")
        if i == warmup_n:
            notify("measuring")
            cpu_start = _cpu_self()
            in_flight["max"] = in_flight["now"]
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((i, due))
    for _ in tasks:
        queue.put_nowait(None)
    await asyncio.gather(*tasks)
    finished = time.perf_counter()
    cpu = _cpu_self() - cpu_start
    for connection in connections:
        connection.close()
    measured_from = start + warmup_n / rate
    return {
        "count": len(latencies),
        "rate": rate,
        # Whether the server kept up: flows served per second over the measured window and its drain,
        # and how long after the last scheduled arrival the last answer came.
        "served_per_s": len(latencies) / max(finished - measured_from, 1e-9),
        "drain_s": finished - (start + (n - 1) / rate),
        "seconds": seconds,
        "latencies_us": latencies,
        "due_s": dues,
        "service_us": service,
        "dispatch_lag_us": lag,
        "max_in_flight": in_flight["max"],
        "errors": dict(errors),
        "generator_cpu_s": cpu,
    }


def _run_loop(main: Any) -> Any:
    """Run the generator's coroutine on uvloop when it is installed (as the server's is). The generator
    shares the machine with the server it measures: with asyncio's own loop it took 157-159 µs of CPU
    per flow in the open loop and 94-98 µs in the closed loop, with uvloop 124-130 and 76-78 µs (two
    quick runs of each, alternating)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _generator_main(conn: Any) -> None:
    """The load generator's process: run each job the parent sends, reply with its figures."""
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return

        def notify(moment: str) -> None:
            conn.send((moment, None))

        run = _open_loop if job["kind"] == "open" else _closed_loop
        try:
            result = _run_loop(run(job["port"], job, notify))
        except Exception:
            import traceback

            conn.send(("error", traceback.format_exc()))
            continue
        conn.send(("result", result))


class _StubProtocol(asyncio.Protocol):
    """Answers every HTTP/1.1 request with a fixed small reply, reading the body it declares."""

    REPLY = b"HTTP/1.1 200 OK\r\ncontent-length: 34\r\ncontent-type: application/json\r\n\r\n" + (
        b'{"status":"completed","stub":true}'
    )

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(self.REPLY)


def _stub_server_main(port: int, ready: Any) -> None:
    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(_StubProtocol, HOST, port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


class LoadGenerator:
    """The generator process, driven from here; `on_measuring` runs when a job's measured window starts,
    `on_settled` when an open loop's connections are all in use, before its measured window."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_generator_main, args=(child,), name="flow-load-generator", daemon=True)
        self.process.start()
        child.close()

    def run(
        self, job: dict[str, Any], on_measuring: Callable[[], None] | None = None,
        on_settled: Callable[[], None] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        self.conn.send(job)
        moments = {"measuring": on_measuring, "settled": on_settled}
        while True:
            kind, payload = self.conn.recv()
            if kind in moments:
                handler = moments[kind]
                if handler is not None:
                    handler()
                continue
            if kind == "error":
                raise RuntimeError(f"the load generator failed:\n{payload}")
            result: dict[str, Any] = payload
            return result

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


# -- CPU accounting from /proc ----------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_cpu(path: str) -> float | None:
    """User + system CPU seconds of the process or thread whose stat file is `path`."""
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _every_process() -> Iterator[tuple[int, str, int, float]]:
    """(pid, name, parent's pid, user + system CPU seconds) of every process now."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                text = Path(entry.path, "stat").read_text()
                name, fields = text[text.find("(") + 1 : text.rfind(")")], text.rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            yield int(entry.name), name, int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _children_by_parent() -> dict[int, list[int]]:
    """Every process's children, from one scan of /proc."""
    children: dict[int, list[int]] = {}
    for child, _, parent, _ in _every_process():
        children.setdefault(parent, []).append(child)
    return children


def _switches(path: str) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of the thread whose status file is `path`: the times it
    waited for something, and the times the kernel took the core from it while it could have run on."""
    counts = {"voluntary_ctxt_switches": 0, "nonvoluntary_ctxt_switches": 0}
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name in counts:
                counts[name] = int(value)
    return counts["voluntary_ctxt_switches"], counts["nonvoluntary_ctxt_switches"]


def _process_switches(pid: int) -> tuple[int, int]:
    """Context switches of all the threads of a process (those it has now)."""
    waits = preempted = 0
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            w, p = _switches(f"/proc/{pid}/task/{tid}/status")
            waits, preempted = waits + w, preempted + p
    return waits, preempted


def _machine_switches() -> int:
    """Context switches of the whole machine since boot."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("ctxt "):
            return int(line.split()[1])
    return 0


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


@dataclass
class CpuSnapshot:
    at: float
    machine_busy: float
    server_main_thread: float
    server_process: float
    executors: float
    postgres: dict[int, float]
    parent: float
    # Context switches (waits, preemptions) by part, per process (backends come and go); the machine's.
    switches: dict[str, dict[int, tuple[int, int]]]
    machine_switches: int


CPU_PARTS = ("server_event_loop_thread", "server_other_threads", "executors", "postgres_backends",
             "load_generator", "rest_of_machine")  # fmt: skip
# The parts whose context switches are counted: the event loop threads, every thread of the executors, the
# PostgreSQL backends and the load generator.
SWITCH_PARTS = ("server_event_loop_thread", "executors", "postgres_backends", "load_generator")


class CpuMeter:
    """CPU seconds of the server's event loop thread, the server, its executors and its Postgres backends."""

    def __init__(self, server_pid: int, admin_url: str, database: str, generator_pid: int) -> None:
        import psycopg

        self.server_pid = server_pid
        self.generator_pid = generator_pid
        self.database = database
        self.monitor = psycopg.connect(admin_url, autocommit=True)
        self._tree: tuple[list[int], list[int]] | None = None

    def _postgres_pids(self) -> list[int]:
        rows = self.monitor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (self.database,)
        ).fetchall()
        return [int(r[0]) for r in rows]

    def _processes(self) -> tuple[list[int], list[int]]:
        """(server processes, executor processes): with several workers the started process is only
        their parent, each worker runs an event loop and has its own executors. As found by the last
        :meth:`rescan`."""
        if self._tree is None:
            self.rescan()
        assert self._tree is not None
        return self._tree

    def rescan(self) -> None:
        """Find the server's processes again. A scan of /proc costs 10-40 ms of CPU here, so it is done
        before each job, never at a measured window's start (where every snapshot needs the list)."""
        tree = _children_by_parent()
        below = {pid: tree.get(pid, []) for pid in tree.get(self.server_pid, [])}
        workers = [pid for pid, executors in below.items() if executors]
        if workers:
            self._tree = workers, [pid for worker in workers for pid in below[worker]]
        else:
            self._tree = [self.server_pid], list(below)

    def snapshot(self) -> CpuSnapshot:
        servers, executor_pids = self._processes()
        executors = [_proc_cpu(f"/proc/{pid}/stat") for pid in executor_pids]
        postgres_pids = self._postgres_pids()
        postgres = {pid: _proc_cpu(f"/proc/{pid}/stat") for pid in postgres_pids}
        switches = {
            "server_event_loop_thread": {pid: _switches(f"/proc/{pid}/task/{pid}/status") for pid in servers},
            "executors": {pid: _process_switches(pid) for pid in executor_pids},
            "postgres_backends": {pid: _process_switches(pid) for pid in postgres_pids},
            "load_generator": {self.generator_pid: _process_switches(self.generator_pid)},
        }
        return CpuSnapshot(
            at=time.perf_counter(),
            machine_busy=_machine_busy()[0],
            server_main_thread=sum(_proc_cpu(f"/proc/{pid}/task/{pid}/stat") or 0.0 for pid in servers),
            server_process=sum(_proc_cpu(f"/proc/{pid}/stat") or 0.0 for pid in servers),
            executors=sum(c for c in executors if c is not None),
            postgres={pid: c for pid, c in postgres.items() if c is not None},
            parent=_cpu_self(),
            switches=switches,
            machine_switches=_machine_switches(),
        )

    @staticmethod
    def delta(start: CpuSnapshot, end: CpuSnapshot, generator_cpu_s: float) -> dict[str, float]:
        """CPU seconds each part used between two snapshots, the window's length and the machine's busy time."""
        main = end.server_main_thread - start.server_main_thread
        parts = {
            "server_event_loop_thread": main,
            # Clock ticks of 10 ms: the difference of two rounded counts can dip below zero.
            "server_other_threads": max(0.0, (end.server_process - start.server_process) - main),
            "executors": end.executors - start.executors,
            "postgres_backends": sum(c - start.postgres.get(pid, 0.0) for pid, c in end.postgres.items()),
            "load_generator": generator_cpu_s,
        }
        busy = end.machine_busy - start.machine_busy
        parts["rest_of_machine"] = max(0.0, busy - sum(parts.values()) - (end.parent - start.parent))
        for part in SWITCH_PARTS:
            before, after = start.switches[part], end.switches[part]
            for i, kind in enumerate(("waits", "preemptions")):
                parts[f"{part}_{kind}"] = sum(n[i] - before.get(pid, (0, 0))[i] for pid, n in after.items())
        parts["machine_switches"] = end.machine_switches - start.machine_switches
        return {**parts, "elapsed": end.at - start.at, "machine_busy": busy}

    @staticmethod
    def per_request(deltas: list[dict[str, float]], count: int) -> dict[str, float]:
        """CPU µs per request of each part over one or more windows, and how busy the machine was."""
        total = {key: sum(d[key] for d in deltas) for key in deltas[0]}
        out = {f"{name}_us": total[name] * 1e6 / max(count, 1) for name in CPU_PARTS}
        switches = [f"{part}_{kind}" for part in SWITCH_PARTS for kind in ("waits", "preemptions")]
        out |= {f"{name}_per_flow": total[name] / max(count, 1) for name in [*switches, "machine_switches"]}
        out["machine_busy_cores"] = total["machine_busy"] / total["elapsed"]
        out["server_event_loop_busy_fraction"] = total["server_event_loop_thread"] / total["elapsed"]
        return out

    def wal_bytes(self) -> int:
        """Where PostgreSQL's write-ahead log stands, in bytes (for the WAL a stretch of logins wrote)."""
        row = self.monitor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").fetchone()
        assert row is not None
        return int(row[0])

    def executor_side_threads(self) -> float:
        """CPU seconds of the executors' threads other than their main one (the epoch ticker)."""
        total = 0.0
        for pid in self._processes()[1]:
            with contextlib.suppress(OSError):
                for tid in os.listdir(f"/proc/{pid}/task"):
                    if tid != str(pid):
                        total += _proc_cpu(f"/proc/{pid}/task/{tid}/stat") or 0.0
        return total

    def close(self) -> None:
        self.monitor.close()


def _run_times_ns() -> dict[int, int]:
    """Nanoseconds on a CPU of every process now, summed over its threads (the scheduler's own count in
    /proc/PID/task/TID/schedstat: exact, where /proc's stat files count whole 10-ms ticks)."""
    times: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            total = 0
            try:
                for thread in os.scandir(f"{entry.path}/task"):
                    with open(f"{thread.path}/schedstat") as f:
                        total += int(f.read().split(maxsplit=1)[0])
            except (OSError, ValueError):
                continue  # it ended while being read
            times[int(entry.name)] = total
    return times


def _most(cpu_by_name: dict[str, float], n: int = 6) -> list[tuple[str, float]]:
    return sorted(cpu_by_name.items(), key=lambda item: -item[1])[:n]


class WindowSampler(threading.Thread):
    """Every 100 ms, how much CPU the benchmark's own processes used (server, executors, their Postgres
    backends, the load generator, this process) and how much every other process did: what else ran when
    the open loop's slowest flows waited. Each thread's time comes from the scheduler's nanosecond count:
    /proc's tick counts (10 ms) would put errors of a core or more into a 100-ms window of a dozen processes.
    A reading of every thread costs 1.5 ms of CPU on a fast machine of this kind."""

    WINDOW_S = 0.1
    NAME_OTHERS_OVER_CORES = 0.25
    # A queue left by a burst of outside work takes up to a few seconds to clear at 80% load: flows scheduled
    # this long after the last window in which other processes and the host together took more than
    # NAME_OTHERS_OVER_CORES count as clear of it.
    CLEAR_OF_OTHERS_S = 2.0

    def __init__(self, meter: CpuMeter, generator_pid: int) -> None:
        super().__init__(name="window-sampler", daemon=True)
        servers, executors = meter._processes()
        self.ours = {*servers, *executors, *meter._postgres_pids(), generator_pid, os.getpid()}
        # (perf_counter, ours s, others s, the machine's busy s as /proc/stat counts it), since the start
        self.samples: list[tuple[float, float, float, float]] = []
        self.stopping = threading.Event()
        self.last = _run_times_ns()
        self.ours_s = self.others_s = 0.0
        self.names: dict[int, str] = {}
        self.others_by_name: dict[str, float] = defaultdict(float)  # CPU s in windows over the bar
        self.others_in_all: dict[str, float] = defaultdict(float)  # and in every window

    def _process_name(self, pid: int) -> str:
        if pid not in self.names:
            try:
                self.names[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                self.names[pid] = f"pid {pid}"
        return self.names[pid]

    def _sample(self) -> None:
        now, at = _run_times_ns(), time.perf_counter()
        ours = others = 0
        used: list[tuple[int, int]] = []
        for pid, ns in now.items():
            spent = max(0, ns - self.last.get(pid, 0))  # a process new since the last reading: all of its time
            if pid in self.ours:
                ours += spent
            elif spent:
                others += spent
                used.append((pid, spent))
        self.last = now
        if self.samples:
            span = max(at - self.samples[-1][0], 1e-6)
            busy = others / 1e9 > self.NAME_OTHERS_OVER_CORES * span
            for pid, spent in used:
                self.others_in_all[self._process_name(pid)] += spent / 1e9
                if busy:
                    self.others_by_name[self._process_name(pid)] += spent / 1e9
        self.ours_s += ours / 1e9
        self.others_s += others / 1e9
        self.samples.append((at, self.ours_s, self.others_s, _machine_busy()[0]))

    def run(self) -> None:
        self._sample()
        while not self.stopping.wait(self.WINDOW_S):
            self._sample()

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self._sample()

    def by_window(self, dues: list[float], latencies_us: list[int], slow_us: int) -> dict[str, Any]:
        """The windows in which flows were scheduled that took longer than `slow_us`, the CPU that processes
        outside the benchmark and the host took in them (and in the window before) against the rest, and
        the latency of the flows scheduled clear of such outside work."""
        windows = []
        for (t0, ours0, others0, busy0), (t1, ours1, others1, busy1) in itertools.pairwise(self.samples):
            span = max(t1 - t0, 1e-6)
            others, ran = (others1 - others0) / span, (ours1 - ours0 + others1 - others0) / span
            # What the machine counted busy while no process ran: the hypervisor running something else on
            # our virtual CPUs (or interrupts). /proc/stat counts 10-ms ticks: read over several windows below.
            windows.append({"start": t0, "end": t1, "others_cores": others, "busy_cores": ran,
                            "unaccounted_cores": (busy1 - busy0) / span - ran,
                            "worst_us": 0, "slow": 0, "flows": 0})  # fmt: skip
        # Which windows no burst of outside work can have delayed: what the benchmark's own processes make.
        last_burst = -math.inf
        for i, w in enumerate(windows):
            around = windows[max(0, i - 2) : i + 3]  # /proc/stat's ticks: ±0.1 core per CPU in one window
            w["lost_cores"] = statistics.fmean(v["unaccounted_cores"] for v in around)
            if w["others_cores"] + max(0.0, w["lost_cores"]) > self.NAME_OTHERS_OVER_CORES:
                last_burst = w["end"]
            w["clear"] = w["start"] - last_burst >= self.CLEAR_OF_OTHERS_S
        starts = [w["start"] for w in windows]
        clear_latencies: list[int] = []
        for due, latency in zip(dues, latencies_us, strict=True):
            i = bisect.bisect_right(starts, due) - 1
            if 0 <= i < len(windows):
                w = windows[i]
                w["flows"] += 1
                w["worst_us"] = max(w["worst_us"], latency)
                w["slow"] += latency > slow_us
                if w["clear"]:
                    clear_latencies.append(latency)
        measured = [w for w in windows if w["flows"]]
        slow = [i for i, w in enumerate(windows) if w["slow"]]
        near = {j for i in slow for j in (i - 1, i) if j >= 0}  # a stall shows in its window or the one before
        others_near = [windows[j]["others_cores"] for j in sorted(near)]
        others_rest = [w["others_cores"] for j, w in enumerate(windows) if j not in near and w["flows"]]
        lost_near = [windows[j]["lost_cores"] for j in sorted(near)]
        lost_rest = [w["lost_cores"] for j, w in enumerate(windows) if j not in near and w["flows"]]
        first = measured[0]["start"] if measured else 0.0
        worst = sorted(slow, key=lambda i: -windows[i]["worst_us"])[:8]

        def described(i: int) -> dict[str, Any]:
            w = windows[i]
            return {
                "at_s": round(w["start"] - first, 2),
                "worst_ms": w["worst_us"] / 1000,
                "slow_flows": w["slow"],
                "others_cores": round(w["others_cores"], 2),
                "others_cores_window_before": round(windows[i - 1]["others_cores"], 2) if i else None,
                "busy_cores": round(w["busy_cores"], 2),
                "lost_cores": round(w["lost_cores"], 2),
            }

        return {
            "window_s": self.WINDOW_S,
            "slow_over_us": slow_us,
            "windows": len(measured),
            "windows_with_a_slow_flow": len(slow),
            "slow_flows": sum(w["slow"] for w in windows),
            "others_cores_near_slow_windows": statistics.fmean(others_near) if others_near else None,
            "others_cores_elsewhere": statistics.fmean(others_rest) if others_rest else None,
            # The machine's busy time that no process in it ran (/proc/stat against every thread's run time),
            # averaged over each window and two on either side: time the host took from our virtual CPUs.
            "lost_cores_near_slow_windows": statistics.fmean(lost_near) if lost_near else None,
            "lost_cores_elsewhere": statistics.fmean(lost_rest) if lost_rest else None,
            "worst_windows": [described(i) for i in worst],
            "clear_of_others_s": self.CLEAR_OF_OTHERS_S,
            "latency_clear_of_others": summary_us(clear_latencies),
            # CPU seconds of processes outside the benchmark, by name: in the windows where they used more than
            # NAME_OTHERS_OVER_CORES together, and over the whole loop.
            "others_when_busy_cpu_s": {name: round(cpu, 3) for name, cpu in _most(self.others_by_name) if cpu >= 0.01},
            "others_in_all_cpu_s": {name: round(cpu, 3) for name, cpu in _most(self.others_in_all) if cpu >= 0.01},
        }


# -- the database, the server, the tenant ---------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    import psycopg.conninfo

    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


def _reachable(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def postgres_server(home: Path) -> tuple[str, str]:
    """(admin URL, where it came from): DATABASE_URL's server, the local default, or the embedded one."""
    configured = os.environ.get("DATABASE_URL")
    if configured and _reachable(configured):
        return configured, "the server named by DATABASE_URL"
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    if _reachable(local):
        return local, local
    from runtime.store import embedded

    return embedded.start(home), "the embedded PostgreSQL (no other server was reachable)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Server:
    """``python -m runtime.cli serve`` as a subprocess, with its defaults."""

    def layout(self) -> dict[str, int]:
        """How many server processes and executors per server process it started, from its log."""
        text = self.log_path.read_text(errors="replace")
        several = re.search(r"Starting (\d+) server processes, each with (\d+) executor", text)
        if several:
            return {"workers": int(several.group(1)), "executors_per_worker": int(several.group(2))}
        one = re.search(r"Starting (\d+) executor process", text)
        return {"workers": 1, "executors_per_worker": int(one.group(1)) if one else 0}

    def __init__(self, database_url: str, home: Path, log_path: Path, root: Path = ROOT) -> None:
        """`root`: the source tree to serve (another build's, for benchmarks/compare_flows.py)."""
        from runtime.vault import MasterKeyring

        self.port = free_port()
        self.master_key = MasterKeyring.generate_text()
        self.operator_key = "tgo_bench_" + secrets.token_urlsafe(32)
        self.log_path = log_path
        env = dict(os.environ)
        env.pop("TOLLGATE_EXECUTORS", None)  # the default: one executor per core
        env.update(
            DATABASE_URL=database_url,
            TOLLGATE_MASTER_KEY=self.master_key,
            TOLLGATE_OPERATOR_KEY=self.operator_key,
            TOLLGATE_HOME=str(home),
            PYTHONPATH=os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p),
        )
        self.command = [sys.executable, "-m", "runtime.cli", "serve", "--host", HOST, "--port", str(self.port)]
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(self.command, cwd=root, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def wait_ready(self, timeout_s: float = 180.0) -> float:
        started = time.perf_counter()
        while time.perf_counter() - started < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                status, _ = self.call("GET", "/api/v2/openapi.json")
                if status == 200:
                    return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the server did not answer within {timeout_s:.0f} s:\n{self.log_tail()}")

    def call(self, method: str, path: str, key: str | None = None, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        try:
            headers = {"Content-Type": "application/json"}
            if key:
                headers["Authorization"] = f"Bearer {key}"
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            reply = conn.getresponse()
            data = reply.read()
            return reply.status, json.loads(data) if data.startswith((b"{", b"[")) else data
        finally:
            conn.close()

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    key: str
    action_id: str


def set_up_tenant(server: Server) -> Tenant:
    """A tenant, the action deployed and bound to post-login, through the management API."""
    name = f"bench-{secrets.token_hex(3)}"
    status, body = server.call("POST", "/api/v2/tenants", server.operator_key, {"name": name})
    if status != 201:
        raise RuntimeError(f"creating the tenant failed: {status} {body}")
    tenant_id, key = body["id"], body["api_key"]["key"]
    action = {
        "name": ACTION_NAME,
        "code": ACTION_CODE,
        "supported_triggers": [{"id": TRIGGER, "version": "v3"}],
        "secrets": [],
        "deploy": True,
    }
    status, body = server.call("POST", "/api/v2/actions/actions", key, action)
    if status != 201:
        raise RuntimeError(f"creating the action failed: {status} {body}")
    action_id = body["id"]
    bindings = {"bindings": [{"ref": {"type": "action_id", "value": action_id}}]}
    status, body = server.call("PATCH", f"/api/v2/actions/triggers/{TRIGGER}/bindings", key, bindings)
    if status != 200:
        raise RuntimeError(f"binding the action failed: {status} {body}")
    return Tenant(tenant_id, name, key, action_id)


def login_event(index: int | None) -> dict[str, Any]:
    """The first-login event without its tenant; with a session id (and its own user) for `index`."""
    event: dict[str, Any] = json.loads(EVENT.read_text())
    event.pop("tenant")
    if index is None:
        event.pop("session")
    else:
        event["session"] = {"id": f"sess_bench_{index:06d}_{secrets.token_hex(4)}"}
        event["user"]["user_id"] = f"auth0|bench{index:06d}{secrets.token_hex(6)}"
    return event


def http_request(
    port: int, method: str, path: str, key: str | None, body: bytes | None, *, close: bool = False
) -> bytes:
    """The bytes of one HTTP/1.1 request, as an identity server's HTTP client would send it (with `close`,
    one that does not keep the connection: the generator opens a new one for its next request)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "User-Agent: flow-bench/1", "Accept: */*"]
    if close:
        lines.append("Connection: close")
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def flow_body(event: dict[str, Any], *, resume_url: bool = True) -> bytes:
    body: dict[str, Any] = {"event": event}
    if resume_url:
        body["resume_url"] = RESUME_URL
    return json.dumps(body, separators=(",", ":")).encode()


# -- the direct measurements of the parts -----------------------------------------------------------

# Each action's turn in a window of flows, from the execution records: its start (the flow's tenant and
# session read, the action about to be handed to an executor) to its answer read back on the event loop.
_TURNS = (
    "SELECT extract(epoch FROM (r->>'ended_at')::timestamptz - (r->>'started_at')::timestamptz) * 1e6,"
    " (r->'stats'->>'duration_us')::bigint"
    " FROM executions e CROSS JOIN LATERAL json_array_elements(e.results) r"
    " WHERE e.tenant_id = %(tenant)s AND e.kind = 'flow'"
    " AND e.created_at >= to_timestamp(%(start)s) AND e.created_at < to_timestamp(%(end)s) + interval '1 minute'"
    " AND (r->>'started_at')::timestamptz >= to_timestamp(%(start)s)"
    " AND (r->>'started_at')::timestamptz < to_timestamp(%(end)s)"
)


def action_turns(database_url: str, tenant_id: str, start: float, end: float) -> dict[str, Any]:
    """Where a window's flows spent the time between reading their session and having the action's answer:
    from the execution records the server wrote (millisecond timestamps), the action's turn (waiting for an
    executor, the pipe both ways, the sandbox) and the sandbox alone."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(_TURNS, {"tenant": tenant_id, "start": start, "end": end}).fetchall()
    turns = [float(turn) for turn, _ in rows]
    sandbox = [float(us) for _, us in rows if us is not None]
    return {"action_turn": summary_us(turns), "sandbox": summary_us(sandbox)}


def _timed(fn: Callable[[], object], n: int, warmup: int) -> dict[str, float]:
    """Latency of `fn` (summary, µs) and the CPU this thread spends per call (cpu_us)."""
    for _ in range(warmup):
        fn()
    times = []
    cpu = time.thread_time()
    for _ in range(n):
        started = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - started) / 1000)
    return {**summary_us(times), "cpu_us": (time.thread_time() - cpu) * 1e6 / n}


async def _timed_async(fn: Callable[[], Any], n: int, warmup: int) -> dict[str, float]:
    """As _timed, for a coroutine function; cpu_us is the event loop thread's CPU per call."""
    for _ in range(warmup):
        await fn()
    times = []
    cpu = time.thread_time()
    for _ in range(n):
        started = time.perf_counter_ns()
        await fn()
        times.append((time.perf_counter_ns() - started) / 1000)
    return {**summary_us(times), "cpu_us": (time.thread_time() - cpu) * 1e6 / n}


def measure_handler(
    server: Server, database_url: str, tenant: Tenant, event: dict[str, Any], n: int
) -> dict[str, float]:
    """The flow API's handler called directly, without HTTP, key check or body parsing.

    The services are started here as the server starts them (store, executor pool), on the
    server's database; the server is idle meanwhile.
    """
    from runtime.api.endpoints import Call
    from runtime.api.models import FlowStart
    from runtime.api.routes.flows import start_post_login
    from runtime.api.services import start_services
    from runtime.config import Settings
    from runtime.store.records import Principal

    async def run() -> dict[str, float]:
        with tempfile.TemporaryDirectory() as home:
            settings = Settings(database_url=database_url, home=Path(home), master_key=server.master_key,
                                operator_key=server.operator_key, executors=os.cpu_count() or 1)  # fmt: skip
            services = await start_services(settings)
            try:
                body = FlowStart.model_validate({"event": event, "resume_url": RESUME_URL})
                principal = Principal(kind="tenant", key_id="benchmark", tenant_id=tenant.id)
                call = Call(None, principal, services, body)  # type: ignore[arg-type]

                async def handler() -> None:
                    reply = await start_post_login(call)
                    if COMPLETED not in bytes(reply.body):
                        raise RuntimeError(f"the handler answered {bytes(reply.body)[:200]!r}")

                return await _timed_async(handler, n, 200)
            finally:
                await services.close()

    return asyncio.run(run())


def measure_execution(event: dict[str, Any], tenant_name: str, n: int) -> dict[str, dict[str, float]]:
    """The sandbox alone, through the executor pool (pipe), and through the pool from asyncio as the server calls it.

    Each with its latency and the CPU it costs (``cpu_us``: the calling thread, the event loop's
    when called from asyncio; ``executor_cpu_us``: the executor processes; ``process_cpu_us``: the
    calling process, its worker threads included).
    """
    from runtime.limits import Limits
    from runtime.sandbox import compile_action, execute
    from runtime.sandbox.pool import ExecutorPool

    action = compile_action(ACTION_CODE)
    event = copy.deepcopy(event)
    event["tenant"] = {"id": tenant_name}
    limits = Limits()

    def in_process() -> None:
        result = execute(action, "onExecutePostLogin", event, secrets={}, limits=limits, cache={})
        if not result.ok:
            raise RuntimeError(f"the action failed: {result.error}")

    out = {"sandbox_in_process": _timed(in_process, n, 200)}
    with ExecutorPool() as pool:

        def executors_cpu() -> float:
            return sum(_proc_cpu(f"/proc/{pid}/stat") or 0.0 for pid in pool.pids())

        def through_pool() -> None:
            pool.execute(action, "onExecutePostLogin", event, secrets={}, limits=limits, cache={})

        executor_cpu = executors_cpu()
        out["executor_pool"] = _timed(through_pool, n, 200)
        out["executor_pool"]["executor_cpu_us"] = (executors_cpu() - executor_cpu) * 1e6 / (n + 200)

        async def from_event_loop() -> dict[str, float]:
            async def call() -> None:
                await pool.execute_async(action, "onExecutePostLogin", event, secrets={}, limits=limits, cache={})

            return await _timed_async(call, n, 200)

        cpu = time.process_time()
        out["executor_pool_from_event_loop"] = asyncio.run(from_event_loop())
        out["executor_pool_from_event_loop"]["process_cpu_us"] = (time.process_time() - cpu) * 1e6 / (n + 200)
    with ExecutorPool(processes=1) as single:

        async def on_single() -> None:
            await single.execute_async(action, "onExecutePostLogin", event, secrets={}, limits=limits, cache={})

        out["handoff_one_executor_busy_loop"] = {
            f"slices_{slice_ms:g}_ms_per_s": asyncio.run(_handoff_rate(on_single, slice_ms))
            for slice_ms in HANDOFF_SLICES_MS
        }
    return out


# The executor's hand-off: callers on one event loop share one executor while the loop also runs other
# work (a server's HTTP and Postgres callbacks) in slices of a given length between its awaits.
HANDOFF_CALLERS = 8
HANDOFF_SLICES_MS = (0.0, 0.5, 1.0, 2.0)
HANDOFF_S = 2.0


async def _handoff_rate(execute: Callable[[], Any], slice_ms: float) -> float:
    """Executions per second of one executor (`execute` runs one) shared by HANDOFF_CALLERS callers on a loop
    busy in slices of `slice_ms` for HANDOFF_S.

    An executor left idle while the loop runs other work before it hands the
    executor to the next caller serves fewer executions the longer the slices.
    """
    stop = time.perf_counter() + HANDOFF_S
    done = 0

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await execute()
            done += 1

    async def other_work() -> None:
        while time.perf_counter() < stop:
            end = time.perf_counter() + slice_ms / 1000
            while time.perf_counter() < end:
                pass
            await asyncio.sleep(0)

    started = time.perf_counter()
    await asyncio.gather(other_work(), *(caller() for _ in range(HANDOFF_CALLERS)))
    return done / (time.perf_counter() - started)


def measure_store(
    database_url: str, master_key: str, tenant: Tenant, *, session_event: dict[str, Any], results: list[Any], n: int
) -> dict[str, dict[str, float]]:
    """Each store call of one flow, timed directly on the server's database (the server idle meanwhile).

    Two what-ifs beside them: a query without the transaction around it, and the two writing
    transactions with ``synchronous_commit = off`` (the commit does not wait for the WAL flush).
    """
    import psycopg

    from runtime.flows import SESSION_IDLE, SESSION_LIFETIME
    from runtime.store import Store
    from runtime.store.logins import ExternalSession
    from runtime.vault import MasterKeyring

    user_id = session_event["user"]["user_id"]
    external = ExternalSession(f"{session_event['session']['id']}\x00{user_id}", user_id, SESSION_LIFETIME,
                               SESSION_IDLE)  # fmt: skip
    keyring = MasterKeyring.parse(master_key)

    async def run() -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        store = await Store.open(database_url, keyring)
        no_flush_url = psycopg.conninfo.make_conninfo(database_url, options="-c synchronous_commit=off")
        no_flush = await Store.open(no_flush_url, keyring)
        try:
            for prefix, s in (("", store), ("what_if_synchronous_commit_off_", no_flush)):
                logins = s.logins

                async def head_with_session(logins: Any = logins) -> None:
                    head = await logins.flow_head(tenant.id, TRIGGER, external=external)
                    if head.session is None:
                        raise RuntimeError("the benchmark's session is gone")

                async def records(count: int, logins: Any = logins) -> None:
                    # As a login ends: its record is deferred, then written behind the answer with others.
                    for _ in range(count):
                        async with logins.writes() as conn:
                            await logins.record_execution(
                                conn, tenant.id, execution_id=None, trigger_id=TRIGGER, status="completed",
                                results=results,
                            )  # fmt: skip
                    await logins.behind.settle()

                async def record_alone(records: Any = records) -> None:
                    await records(1)

                calls: list[tuple[str, Callable[[], Any]]] = [("flow_head_and_session", head_with_session),
                                                             ("execution_record_alone", record_alone)]  # fmt: skip
                if not prefix:

                    async def authenticate() -> None:
                        if await store.keys.authenticate(tenant.key) is None:
                            raise RuntimeError("the tenant key did not authenticate")

                    async def head() -> None:
                        await store.logins.flow_head(tenant.id, TRIGGER)

                    async def in_transaction() -> None:
                        async with store.logins.transaction() as conn:
                            await conn.execute("SELECT 1")

                    async def no_transaction() -> None:
                        async with store.pool.connection() as conn:
                            await conn.execute("SELECT 1")

                    calls = [("api_key_check", authenticate), calls[0], ("flow_head_without_session", head),
                             calls[1], ("select_1_in_a_transaction", in_transaction),
                             ("what_if_select_1_without_transaction", no_transaction)]  # fmt: skip
                for name, fn in calls:
                    out[prefix + name] = await _timed_async(fn, n, 50)
                if not prefix:
                    # Under load, records go in batches; per record:
                    batch = await _timed_async(lambda: records(RECORD_BATCH), max(n // RECORD_BATCH, 20), 5)
                    out[f"execution_record_in_a_batch_of_{RECORD_BATCH}"] = {
                        k: v / RECORD_BATCH for k, v in batch.items()
                    }
        finally:
            await store.close()
            await no_flush.close()
        return out

    out = asyncio.run(run())
    with psycopg.connect(database_url, autocommit=True) as conn:
        out["round_trip_select_1_sync_client"] = _timed(lambda: conn.execute("SELECT 1").fetchone(), n, 50)
    return out


# -- a profile of the server's event loop -----------------------------------------------------------

# Which part of the server a sample of the event loop thread belongs to. Only the frames below the
# loop's own `_run_once` count (every stack starts in uvicorn's entry point); the first part, in this
# order, with a frame in the stack wins: so json called from the body reader is the body, logging
# called from the flow runner is logging, psycopg called from anywhere is Postgres. Needles match a
# frame as py-spy writes it, "function (path:line)", paths shortened.
PROFILE_PARTS = [
    ("logging (access log, flow log line)", ("logging/", "AccessLog._add", "AccessLog.flush")),
    ("Postgres client (psycopg, pool, store code)", ("psycopg", "store/")),
    ("executor hand-off (pool, msgpack, pipe)", ("anyio", "msgpack", "sandbox/", "Services.execute")),
    ("request body: JSON parse + validation", ("pydantic", "bodies.py", "models.py")),
    ("flow handler's own Python (copies, outcome, reply)", ("flows/", "routes/flows.py", "views.py", "limits.py")),
    ("HTTP and framework (uvicorn, h11, Starlette, sockets)",
     ("uvicorn", "h11", "starlette", "selector_events.py", "endpoints.py", "auth.py", "errors.py")),
]  # fmt: skip
EPOLL = "waiting in epoll (nothing ready, or descheduled)"
LOOP = "asyncio event loop itself"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def classify_stack(frames: list[str]) -> str:
    """The part of the server one sampled stack of the event loop thread belongs to."""
    below = [i for i, frame in enumerate(frames) if "_run_once" in frame and "base_events" in frame]
    frames = frames[below[-1] + 1 :] if below else frames
    if not frames:
        return LOOP
    match = _FRAME.match(frames[-1])
    if "selectors.py" in (match.group("file") if match else frames[-1]):
        return EPOLL
    for part, needles in PROFILE_PARTS:
        if any(n in frame for frame in frames for n in needles):
            return part
    return LOOP


def profile_server(pid: int, seconds: float, out: Path) -> dict[str, Any] | None:
    """py-spy's samples of the server's event loop thread, by part; None without py-spy."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        return None
    # --subprocesses: with several workers the server's processes are the started one's children.
    command = [spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", "250",
               "--format", "raw", "--threads", "--subprocesses", "--nonblocking", "--output", str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.exists():
        return {"error": (done.stderr or done.stdout).strip()[-300:]}
    parts: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        # With --subprocesses a stack starts with its processes (parent first), then its thread.
        at = next((i for i, frame in enumerate(frames) if frame.startswith("thread (")), 0)
        threads[frames[at].split(": ", 1)[-1]] += int(count)
        # uvicorn runs the event loop in the main thread; the executors' main threads run no event loop.
        if frames[at].endswith(": MainThread") and any("uvicorn" in frame for frame in frames):
            parts[classify_stack(frames[at + 1 :])] += int(count)
    total = sum(parts.values())
    working = total - parts[EPOLL]
    return {
        "samples_event_loop_thread": total,
        "samples_by_thread": dict(threads.most_common()),
        "share_of_samples": {k: v / total for k, v in parts.most_common()} if total else {},
        "share_of_work_excluding_epoll": {k: v / working for k, v in parts.most_common() if k != EPOLL}
        if working
        else {},
    }


class SpyThread:
    """py-spy in a thread of its own, started when the generator's window starts."""

    def __init__(self, pid: int, seconds: float, out: Path) -> None:
        import threading

        self.result: dict[str, Any] | None = None
        self.thread = threading.Thread(target=self._run, args=(pid, seconds, out), daemon=True)
        self.thread.start()

    def _run(self, pid: int, seconds: float, out: Path) -> None:
        self.result = profile_server(pid, seconds, out)

    def join(self) -> dict[str, Any] | None:
        self.thread.join(timeout=120)
        return self.result


# -- summaries ----------------------------------------------------------------------------------------


def summary_us(values: list[float] | list[int]) -> dict[str, float]:
    us = sorted(float(v) for v in values)
    n = len(us)
    if n == 0:
        return {"count": 0}
    return {
        "count": n,
        "p50_us": us[n // 2],
        "p90_us": us[min(n - 1, int(n * 0.90))],
        "p99_us": us[min(n - 1, int(n * 0.99))],
        "max_us": us[-1],
        "mean_us": statistics.fmean(us),
    }


def merge(runs: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """One closed-loop level's figures over its runs: the median of all one-second windows."""
    windows = [w for r in runs for w in r["windows"]]
    count = sum(r["count"] for r in runs)
    errors: Counter[str] = Counter()
    for r in runs:
        errors.update(r["errors"])
    return {
        "concurrency": concurrency,
        "per_s": statistics.median(windows) if windows else 0.0,
        "mean_per_s": count / sum(r["seconds"] for r in runs),
        "windows_per_s": windows,
        "latency": summary_us([v for r in runs for v in r["latencies_us"]]),
        "errors": dict(errors),
        "cpu": CpuMeter.per_request([r["cpu_delta"] for r in runs], count),
        "generator_cpu_us_per_request": sum(r["generator_cpu_s"] for r in runs) * 1e6 / max(count, 1),
    }


@dataclass
class Plan:
    quick: bool
    levels: tuple[int, ...]
    rounds: int
    level_s: float
    warmup_s: float
    floor_s: float
    open_s: float
    light_s: float
    profile_s: float
    sessions: int
    direct_n: int

    @classmethod
    def make(cls, args: argparse.Namespace) -> Plan:
        if args.quick:
            plan = cls(True, (1, 4, 16), 1, 2.0, 0.5, 1.5, 5.0, 3.0, 3.0, 200, 200)
        else:
            plan = cls(False, (1, 2, 4, 8, 16, 32), 3, 3.0, 0.5, 3.0, 30.0, 10.0, 8.0, 1000, 1000)
        plan.rounds = args.rounds or plan.rounds
        plan.level_s = args.seconds or plan.level_s
        plan.open_s = args.open_seconds or plan.open_s
        return plan

    def steps(self) -> list[tuple[str, float]]:
        """Each step's name and about how long it takes, in seconds."""
        run = self.level_s + self.warmup_s
        return [
            ("database and server", 10),
            ("tenant, action, warm-up", 5 + self.sessions / 100),
            ("load generator ceiling and the server's cheapest answers", 12 * (self.floor_s + self.warmup_s)),
            ("closed loop with session ids (saturation)", self.rounds * len(self.levels) * run),
            ("closed loop without session ids", 2 * self.rounds * run),
            (f"open loop at {LOAD_FRACTION:.0%} of saturation", self.open_s + 2.5 + 2 * run),
            (
                f"open loops at {', '.join(f'{f:.0%}' for f in LATENCY_FRACTIONS)} of saturation "
                "(latency by load; CPU per flow at light load)",
                len(LATENCY_FRACTIONS) * (self.light_s + 2.5),
            ),
            ("the parts, timed directly (sandbox, executor pipe, store calls)", 8 + self.direct_n / 60),
            ("profile of the server at saturation (py-spy)", self.profile_s + 1.5 + self.warmup_s),
        ]


class Progress:
    def __init__(self, plan: Plan) -> None:
        self.steps = plan.steps()
        self.index = 0
        self.started = time.perf_counter()
        total = sum(s for _, s in self.steps) + 10
        say(f"Flow API throughput benchmark{' (quick smoke run)' if plan.quick else ''}: "
            f"{len(self.steps)} steps, about {total / 60:.1f} min in all.")  # fmt: skip

    def next(self, detail: str = "") -> None:
        name, seconds = self.steps[self.index]
        self.index += 1
        elapsed = time.perf_counter() - self.started
        say(f"[{self.index}/{len(self.steps)}] {name} (~{seconds:.0f} s){detail}; {elapsed:.0f} s elapsed")


# -- the run -------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    plan = Plan.make(args)
    progress = Progress(plan)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tollgate-flow-bench-")))
        progress.next(": a fresh database, then `tollgate serve` with its defaults")
        admin_url, origin = postgres_server(work / "embedded")
        database = f"tollgate_bench_{os.getpid()}_{secrets.token_hex(3)}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
            pg = {name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
                  for name in ("server_version", "synchronous_commit", "fsync")}  # fmt: skip

        def drop_database() -> None:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

        stack.callback(drop_database)
        database_url = _with_database(admin_url, database)
        server = Server(database_url, work / "home", work / "server.log")
        stack.callback(server.stop)
        ready_s = server.wait_ready()
        say(f"    server pid {server.pid} on port {server.port}, ready in {ready_s:.1f} s; database on {origin}")
        generator = LoadGenerator()
        stack.callback(generator.close)
        meter = CpuMeter(server.pid, admin_url, database, generator.process.pid)
        stack.callback(meter.close)
        port = server.port

        def closed(requests: list[bytes], concurrency: int, seconds: float, expect: dict[str, Any], *,
                   target: int = port, on_start: Callable[[], None] | None = None) -> dict[str, Any]:  # fmt: skip
            marks: list[CpuSnapshot] = []

            def started() -> None:
                marks.append(meter.snapshot())
                if on_start is not None:
                    on_start()

            job = {"kind": "closed", "port": target, "requests": requests, "concurrency": concurrency,
                   "warmup_s": plan.warmup_s, "seconds": seconds, "expect": expect}  # fmt: skip
            meter.rescan()
            result = generator.run(job, on_measuring=started)
            result["cpu_delta"] = CpuMeter.delta(marks[0], meter.snapshot(), result["generator_cpu_s"])
            return result

        progress.next(f": {plan.sessions:,} sessions, each used twice before measuring")
        tenant = set_up_tenant(server)
        session_events = [login_event(i) for i in range(plan.sessions)]
        with_session = [http_request(port, "POST", FLOW_PATH, tenant.key, flow_body(e)) for e in session_events]
        without_session = [http_request(port, "POST", FLOW_PATH, tenant.key, flow_body(login_event(None)))]
        status, sample = server.call("POST", FLOW_PATH, tenant.key, {"event": session_events[0],
                                                                    "resume_url": RESUME_URL})  # fmt: skip
        if status != 200 or sample.get("status") != "completed" or not sample.get("id_token_claims"):
            raise RuntimeError(f"the flow did not complete as expected: {status} {sample}")
        _, record = server.call("GET", f"/api/v2/actions/executions/{sample['execution_id']}", tenant.key)
        completed = {"status": 200, "contains": COMPLETED}
        warm = generator.run({"kind": "closed", "port": port, "requests": with_session, "concurrency": 8,
                              "total": 2 * len(with_session), "expect": completed})  # fmt: skip
        if warm["errors"]:
            raise RuntimeError(f"errors during the warm-up: {warm['errors']}")

        progress.next(": 1 and 16 in flight each")
        stub_port = free_port()
        ctx = multiprocessing.get_context("spawn")
        stub_ready = ctx.Event()
        stub = ctx.Process(target=_stub_server_main, args=(stub_port, stub_ready), daemon=True)
        stub.start()
        stack.callback(stub.kill)
        stub_ready.wait(30)
        host = f"Host: {HOST}:{port}".encode()
        stub_requests = [r.replace(host, f"Host: {HOST}:{stub_port}".encode()) for r in with_session]
        floor_jobs = [
            ("stub_server_same_request", stub_port, stub_requests, completed),
            ("openapi_json", port, [http_request(port, "GET", "/api/v2/openapi.json", None, None)],
             {"status": 200, "contains": b'"openapi"'}),
            ("healthz_keep_alive", port, [http_request(port, "GET", "/healthz", None, None)],
             {"status": 200, "contains": None}),
            ("healthz_new_connection_each", port, [http_request(port, "GET", "/healthz", None, None, close=True)],
             {"status": 200, "contains": None}),
            ("no_key_401", port, [http_request(port, "GET", "/api/v2/tenants/settings", None, None)],
             {"status": 401, "contains": b"missing_key"}),
            ("key_and_body_checked_400", port,
             [http_request(port, "POST", FLOW_PATH, tenant.key, flow_body(e, resume_url=False))
              for e in session_events[:50]], {"status": 400, "contains": b"resume_url"}),
        ]  # fmt: skip
        floors: dict[str, Any] = {}
        for name, target, requests, expect in floor_jobs:
            floors[name] = {
                f"c{c}": merge([closed(requests, c, plan.floor_s, expect, target=target)], c) for c in (1, 16)
            }
            f = floors[name]
            say(f"    {name:26} {f['c16']['per_s']:8,.0f}/s at 16 in flight; "
                f"p50 {f['c1']['latency']['p50_us'] / 1000:5.2f} ms one at a time")  # fmt: skip
        stub.kill()

        progress.next(f": {', '.join(map(str, plan.levels))} in flight, {plan.rounds} interleaved rounds")
        runs: dict[int, list[dict[str, Any]]] = {c: [] for c in plan.levels}
        for r in range(plan.rounds):
            line = []
            for concurrency in plan.levels:
                result = closed(with_session, concurrency, plan.level_s, completed)
                runs[concurrency].append(result)
                line.append(f"{concurrency}: {statistics.median(result['windows']):,.0f}")
            say(f"    round {r + 1}/{plan.rounds}, flows/s by requests in flight: {', '.join(line)}")
        ramp = [merge(runs[c], c) for c in plan.levels]
        best = max(ramp, key=lambda f: f["per_s"])
        say(f"    saturation: {best['per_s']:,.0f} flows/s at {best['concurrency']} in flight "
            "(median of its one-second windows)")  # fmt: skip

        progress.next(f": 1 and {best['concurrency']} in flight")
        no_session = [
            merge([closed(without_session, c, plan.level_s, completed) for _ in range(plan.rounds)], c)
            for c in (1, best["concurrency"])
        ]
        say(f"    {no_session[-1]['per_s']:,.0f} flows/s at {best['concurrency']} in flight; "
            f"p50 {no_session[0]['latency']['p50_us'] / 1000:.2f} ms one at a time")  # fmt: skip

        rate = LOAD_FRACTION * best["per_s"]
        progress.next(f": {rate:,.0f} flows/s on a fixed schedule for {plan.open_s:.0f} s (after 2 s of warm-up), "
                      f"between two closed loops at {best['concurrency']} in flight")  # fmt: skip

        def capacity_now() -> dict[str, Any]:
            """What the machine gives now: a short closed loop at the saturation's concurrency (flows/s, and
            the CPU per flow, which says how much of the open loop's cost is the machine's speed of the moment)."""
            level = merge([closed(with_session, best["concurrency"], plan.level_s, completed)], best["concurrency"])
            return {"per_s": level["per_s"], "cpu": level["cpu"]}

        around_before = capacity_now()
        capacity_before: float = around_before["per_s"]
        marks: list[CpuSnapshot] = []
        open_job = {"kind": "open", "port": port, "requests": with_session, "rate": rate, "warmup_s": 2.0,
                    "seconds": plan.open_s, "connections": OPEN_LOOP_CONNECTIONS, "expect": completed}  # fmt: skip
        meter.rescan()
        sampler = WindowSampler(meter, generator.process.pid)
        sampler.start()
        split: list[int] = []

        def settled() -> None:
            # Before the measured window: reading the kernel's TCP table costs this process 11-13 ms of CPU on
            # a slow machine, which at the window's start would hold up the flows scheduled then.
            from runtime.balance import established_connections

            split.extend(established_connections(port, meter._processes()[0]))

        def measuring() -> None:
            marks.append(meter.snapshot())
            sides.append((meter.wal_bytes(), meter.executor_side_threads()))
            window.append(time.time())

        sides: list[tuple[int, float]] = []
        window: list[float] = []

        def side_figures(count: int) -> dict[str, float]:
            """WAL bytes and the executors' side threads' CPU per flow since the measured window began."""
            (wal, side), now = sides[-1], (meter.wal_bytes(), meter.executor_side_threads())
            return {"wal_bytes_per_flow": (now[0] - wal) / max(count, 1),
                    "executor_side_threads_us_per_flow": (now[1] - side) * 1e6 / max(count, 1)}  # fmt: skip

        try:
            opened = generator.run(open_job, on_measuring=measuring, on_settled=settled)
            # The loop's own CPU and WAL, before the closed loop below adds its flows' to the counters.
            opened_cpu = CpuMeter.delta(marks[0], meter.snapshot(), opened["generator_cpu_s"])
            opened_sides = side_figures(opened["count"])
        finally:
            sampler.stop()
        around_after = capacity_now()
        capacity_after: float = around_after["per_s"]
        open_loop = {
            "rate_per_s": rate,
            # The closed loop at the saturation's concurrency just before and just after: the machine's
            # speed drifts, and the open loop's rate is a share of what it gave earlier.
            "capacity_just_before_per_s": capacity_before,
            "capacity_just_after_per_s": capacity_after,
            "closed_loops_around": {"just_before": around_before, "just_after": around_after},
            "served_per_s": opened["served_per_s"],
            "drain_s": opened["drain_s"],
            "seconds": plan.open_s,
            "connections": OPEN_LOOP_CONNECTIONS,
            "max_in_flight": opened["max_in_flight"],
            "connections_by_server_process": split,
            "latency_from_schedule": summary_us(opened["latencies_us"]),
            "latency_from_send": summary_us(opened["service_us"]),
            "wait_for_a_free_connection": summary_us(opened["dispatch_lag_us"]),
            "errors": opened["errors"],
            "cpu": CpuMeter.per_request([opened_cpu], opened["count"]),
            "by_window": sampler.by_window(opened["due_s"], opened["latencies_us"], int(TARGET_P99_MS * 1000)),
            **opened_sides,
            # After the closed loop above: every record of the window has been written by now.
            "from_execution_records": action_turns(database_url, tenant.id, window[0], window[0] + plan.open_s),
            "_latencies_us": opened["latencies_us"],
        }
        lat = open_loop["latency_from_schedule"]
        say(f"    p50 {lat['p50_us'] / 1000:.2f} ms, p90 {lat['p90_us'] / 1000:.2f} ms, "
            f"p99 {lat['p99_us'] / 1000:.2f} ms ({lat['count']:,} flows); the closed loop gave "
            f"{capacity_before:,.0f} flows/s just before and {capacity_after:,.0f} just after")  # fmt: skip

        rates = [fraction * best["per_s"] for fraction in LATENCY_FRACTIONS]
        progress.next(f": {', '.join(f'{r:,.0f}' for r in rates)} flows/s on a fixed schedule, "
                      f"{plan.light_s:.0f} s each")  # fmt: skip
        lighter: list[dict[str, Any]] = []

        def light_measuring() -> None:
            marks.append(meter.snapshot())
            sides.append((meter.wal_bytes(), meter.executor_side_threads()))

        for fraction, light_rate in zip(LATENCY_FRACTIONS, rates, strict=True):
            marks.clear()
            light_job = {**open_job, "rate": light_rate, "seconds": plan.light_s}
            meter.rescan()
            lit = generator.run(light_job, on_measuring=light_measuring)
            lighter.append({
                "fraction": fraction,
                "rate_per_s": light_rate,
                "served_per_s": lit["served_per_s"],
                "seconds": plan.light_s,
                "latency_from_schedule": summary_us(lit["latencies_us"]),
                "errors": lit["errors"],
                "cpu": CpuMeter.per_request(
                    [CpuMeter.delta(marks[0], meter.snapshot(), lit["generator_cpu_s"])], lit["count"]
                ),
                **side_figures(lit["count"]),
            })  # fmt: skip
            light = lighter[-1]["latency_from_schedule"]
            ours = sum(lighter[-1]["cpu"][f"{k}_us"] for k in CPU_PARTS if k != "rest_of_machine")
            say(f"    {fraction:.0%}: {ours:,.0f} µs of CPU per flow (server, executors, PostgreSQL, generator); "
                f"p50 {light['p50_us'] / 1000:.2f} ms, p99 {light['p99_us'] / 1000:.2f} ms")  # fmt: skip
        light_loop = lighter[0]

        progress.next(f": {plan.direct_n:,} calls each, the server idle")
        handler = measure_handler(server, database_url, tenant, session_events[1], plan.direct_n)
        execution = measure_execution(session_events[0], tenant.name, plan.direct_n)
        store = measure_store(database_url, server.master_key, tenant, session_event=session_events[0],
                              results=record["results"], n=plan.direct_n)  # fmt: skip

        progress.next(f": {best['concurrency']} in flight")
        profile: dict[str, Any] | None = None
        profiled: dict[str, Any] | None = None
        if args.profile:
            spy: list[SpyThread] = []

            def start_spy() -> None:
                spy.append(SpyThread(server.pid, plan.profile_s, work / "py-spy.txt"))

            result = closed(with_session, best["concurrency"], plan.profile_s + 1.5, completed, on_start=start_spy)
            profiled = merge([result], best["concurrency"])
            profile = spy[0].join() if spy else None
            if profile is None:
                say("    py-spy is not installed, so no profile (pip install py-spy to get one)")
            else:
                say(f"    {profiled['per_s']:,.0f} flows/s while py-spy sampled the server")
        else:
            say("    skipped (--no-profile)")

        report = assemble(
            plan, server, tenant, best=best, ramp=ramp, no_session=no_session, floors=floors, open_loop=open_loop,
            light_loop=light_loop, lighter=lighter, handler=handler, execution=execution, store=store, profile=profile,
            profiled=profiled, session_events=session_events, postgres=pg, origin=origin,
        )  # fmt: skip
        say(f"[done] measured in {time.perf_counter() - progress.started:.0f} s; "
            "stopping the server and dropping the database")  # fmt: skip
    return report


def assemble(
    plan: Plan,
    server: Server,
    tenant: Tenant,
    *,
    best: dict[str, Any],
    ramp: list[dict[str, Any]],
    no_session: list[dict[str, Any]],
    floors: dict[str, Any],
    open_loop: dict[str, Any],
    light_loop: dict[str, Any],
    lighter: list[dict[str, Any]],
    handler: dict[str, float],
    execution: dict[str, Any],
    store: dict[str, Any],
    profile: dict[str, Any] | None,
    profiled: dict[str, Any] | None,
    session_events: list[dict[str, Any]],
    postgres: dict[str, str],
    origin: str,
) -> dict[str, Any]:
    import uvicorn

    from runtime import engine

    serial = next((r for r in ramp if r["concurrency"] == 1), None)
    flow_p50 = serial["latency"]["p50_us"] if serial else float("nan")
    http_floor = floors["no_key_401"]["c1"]["latency"]["p50_us"]
    key_and_body = floors["key_and_body_checked_400"]["c1"]["latency"]["p50_us"] - http_floor
    sandbox = execution["sandbox_in_process"]["p50_us"]
    pooled = execution["executor_pool"]["p50_us"]
    from_loop = execution["executor_pool_from_event_loop"]["p50_us"]
    # A login waits for its head; its execution record is written behind its answer, in a batch.
    store_parts = ("flow_head_and_session",)
    record_in_batch = store[f"execution_record_in_a_batch_of_{RECORD_BATCH}"]
    postgres_us = sum(store[k]["p50_us"] for k in store_parts)
    latency = {
        "flow over HTTP, one at a time": flow_p50,
        "HTTP, key check, body, reply, logging (the flow minus its handler)": flow_p50 - handler["p50_us"],
        "  of which HTTP: request to reply (a 401 without a key)": http_floor,
        "  of which the API key check (1 query), body JSON + validation": key_and_body,
        "the flow handler, called directly (no HTTP)": handler["p50_us"],
        **{f"  Postgres: {k.replace('_', ' ')}": store[k]["p50_us"] for k in store_parts},
        "  executor round trip from the event loop (execute_async)": from_loop,
        "    of which the sandbox execution": sandbox,
        "    of which the pipe + msgpack, both ways": pooled - sandbox,
        "    of which awaiting the answer on the loop (vs a blocking call)": from_loop - pooled,
        "  the handler's own Python and scheduling (by difference)": handler["p50_us"] - postgres_us - from_loop,
    }
    store_cpu = sum(store[k]["cpu_us"] for k in store_parts) + record_in_batch["cpu_us"]
    executor_cpu = execution["executor_pool_from_event_loop"]["cpu_us"]
    loop_cpu = {
        "the flow handler, called directly": handler["cpu_us"],
        f"  its Postgres call, and its record's share of a batch of {RECORD_BATCH}": store_cpu,
        "  the executor call (execute_async)": executor_cpu,
        "  the rest (by difference)": handler["cpu_us"] - store_cpu - executor_cpu,
        "the API key check (1 Postgres call)": store["api_key_check"]["cpu_us"],
    }
    cpu = best["cpu"]
    ours = sum(cpu[f"{k}_us"] for k in CPU_PARTS if k != "rest_of_machine")
    ceilings = {
        "if_the_machine_were_ours_per_s": 2e6 / ours if ours else float("nan"),
        "one_event_loop_thread_per_s": 1e6 / cpu["server_event_loop_thread_us"],
        "note": "derived: 2 cores / CPU per flow of server + executors + Postgres + generator; 1 s / event loop CPU",
    }
    saturation = best["per_s"]
    p99_ms = open_loop["latency_from_schedule"]["p99_us"] / 1000
    by_load = [latency_at_load(loop) for loop in lighter] + [latency_at_load({**open_loop, "fraction": LOAD_FRACTION})]
    within = [row for row in by_load if row["p99_ms"] <= TARGET_P99_MS and row["kept_up"]]
    return {
        "benchmark": "flow_throughput",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": plan.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "postgres": postgres["server_version"],
            "postgres_synchronous_commit": postgres["synchronous_commit"],
            "postgres_fsync": postgres["fsync"],
            "database_server": origin,
            "uvicorn": uvicorn.__version__,
            "uvicorn_http": "httptools" if _importable("httptools") else "h11",
            "uvicorn_loop": "uvloop" if _importable("uvloop") else "asyncio",
        },
        "engine_build_id": engine.load().build_id,
        "server": {
            "command": " ".join(server.command[1:]),
            **server.layout(),
            "note": "the defaults of `tollgate serve` on a real database: a server process per core, "
            "the cores shared out as executors, access log on",
        },
        "workload": {
            "action": ACTION_CODE,
            "event_json_bytes": len(json.dumps(session_events[0], separators=(",", ":"))),
            "request_body_bytes": len(flow_body(session_events[0])),
            "sessions": len(session_events),
            "outcome": "completed: claims on both tokens, no redirect",
        },
        "closed_loop": {"with_session": ramp, "without_session": no_session},
        "saturation": {
            "flows_per_s": saturation,
            "concurrency": best["concurrency"],
            "without_session_flows_per_s": no_session[-1]["per_s"],
        },
        "open_loop": open_loop,
        "light_open_loop": light_loop,
        "latency_by_load": {
            "loops": by_load,
            # The highest of the loads above whose p99 met the target (a lower one may have missed it).
            "p99_target_held_up_to_per_s": max((row["rate_per_s"] for row in within), default=None),
            "note": "open loops at shares of the saturation, latency from each flow's scheduled arrival",
        },
        "floors": floors,
        "generator": {
            "ceiling_per_s_against_stub": floors["stub_server_same_request"]["c16"]["per_s"],
            "cpu_us_per_request_at_saturation": best["generator_cpu_us_per_request"],
        },
        "breakdown": {
            "latency_one_flow_at_a_time_us": latency,
            "event_loop_cpu_one_flow_at_a_time_us": loop_cpu,
            "direct_handler": handler,
            "cpu_per_flow_at_saturation": cpu,
            "cpu_per_request_401": floors["no_key_401"]["c16"]["cpu"],
            "cpu_per_request_400": floors["key_and_body_checked_400"]["c16"]["cpu"],
            "ceilings": ceilings,
            "direct_execution": execution,
            "direct_store": store,
            "profile": profile,
            "profile_run_per_s": profiled["per_s"] if profiled else None,
        },
        "anchors": {
            "keycloak_refresh_token_per_s_2_vcpus": ANCHOR_PER_S,
            "keycloak_password_login_per_s_2_vcpus": KEYCLOAK_PASSWORD_PER_VCPU * ANCHOR_VCPUS,
            "source": "Keycloak sizing guide: 1 vCPU per 120 refresh-token requests/s, per 15 password logins/s",
        },
        "ratios": {"saturation_over_keycloak_refresh_anchor": saturation / ANCHOR_PER_S},
        "targets": {
            "saturation_at_least_1000_flows_per_s": saturation >= TARGET_FLOWS_PER_S,
            "p99_at_most_20_ms_at_80_percent_load": p99_ms <= TARGET_P99_MS,
        },
        "settings": {
            "levels": list(plan.levels),
            "rounds": plan.rounds,
            "level_s": plan.level_s,
            "open_s": plan.open_s,
            "light_s": plan.light_s,
            "sessions": plan.sessions,
        },
    }


def latency_at_load(loop: dict[str, Any]) -> dict[str, Any]:
    """One open loop's row of the latency-by-load table."""
    latency, cpu = loop["latency_from_schedule"], loop["cpu"]
    return {
        "fraction": loop["fraction"],
        "rate_per_s": loop["rate_per_s"],
        "served_per_s": loop["served_per_s"],
        "kept_up": loop["served_per_s"] >= OPEN_LOOP_KEPT_UP * loop["rate_per_s"],
        "p50_ms": latency["p50_us"] / 1000,
        "p90_ms": latency["p90_us"] / 1000,
        "p99_ms": latency["p99_us"] / 1000,
        "machine_busy_cores": cpu["machine_busy_cores"],
        "cpu_us_per_flow": sum(cpu[f"{k}_us"] for k in CPU_PARTS if k != "rest_of_machine"),
        "errors": sum(loop["errors"].values()),
    }


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def plot(report: dict[str, Any], open_latencies: list[int] | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (left, middle, by_load, right) = plt.subplots(
        1, 4, figsize=(23, 5.4), gridspec_kw={"width_ratios": [1, 1, 1, 1.1]}
    )
    for key, label, marker in (("with_session", "with a session id", "o"), ("without_session", "no session id", "s")):
        rows = report["closed_loop"][key]
        left.plot([r["concurrency"] for r in rows], [r["per_s"] for r in rows], marker=marker, label=label)
    left.axhline(TARGET_FLOWS_PER_S, color="tab:red", linestyle="--", linewidth=1, label="target 1,000/s")
    left.axhline(ANCHOR_PER_S, color="grey", linestyle=":", linewidth=1, label="Keycloak refresh anchor, 240/s")
    left.set_xscale("log", base=2)
    levels = [r["concurrency"] for r in report["closed_loop"]["with_session"]]
    left.set_xticks(levels, [str(c) for c in levels])
    left.set_xlabel("requests in flight (closed loop)")
    left.set_ylabel("post-login flows/s (median of 1-s windows)")
    left.set_title("Throughput vs concurrency")
    left.set_ylim(bottom=0, top=max(TARGET_FLOWS_PER_S * 1.1, report["saturation"]["flows_per_s"] * 1.2))
    left.legend(loc="upper left", fontsize=8)
    left.grid(True, alpha=0.3)

    ol = report["open_loop"]
    if open_latencies:
        ms = sorted(v / 1000 for v in open_latencies)
        middle.plot(ms, [i / len(ms) for i in range(len(ms))], color="tab:blue", label="latency CDF")
    for q, style in (("p50_us", ":"), ("p99_us", "-.")):
        value = ol["latency_from_schedule"][q] / 1000
        middle.axvline(value, color="tab:blue", linestyle=style, linewidth=1, label=f"{q[:3]} {value:.1f} ms")
    middle.axvline(TARGET_P99_MS, color="tab:red", linestyle="--", linewidth=1, label="target p99 20 ms")
    middle.set_xscale("log")
    # Labels at 1, 2, 5, 10, 20, 50... ms only: the default labels every minor tick, and they overlap.
    middle.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    middle.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    middle.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    middle.set_xlabel("latency from the scheduled arrival (ms, log scale)")
    middle.set_ylabel("fraction of flows")
    middle.set_title(f"Open loop at {ol['rate_per_s']:,.0f} flows/s (80% of saturation), {ol['seconds']:.0f} s")
    middle.legend(loc="lower right", fontsize=8)
    middle.grid(True, which="both", alpha=0.3)

    rows = report["latency_by_load"]["loops"]
    rates = [row["rate_per_s"] for row in rows]
    for key, label, marker in (("p50_ms", "p50", "o"), ("p90_ms", "p90", "^"), ("p99_ms", "p99", "s")):
        by_load.plot(rates, [row[key] for row in rows], marker=marker, label=label)
    by_load.axhline(TARGET_P99_MS, color="tab:red", linestyle="--", linewidth=1, label="target p99 20 ms")
    by_load.axvline(report["saturation"]["flows_per_s"], color="grey", linestyle=":", linewidth=1,
                    label="saturation (closed loop)")  # fmt: skip
    by_load.set_yscale("log")
    by_load.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    by_load.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    by_load.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    by_load.set_xlim(left=0)
    by_load.set_xlabel("flows/s offered (open loops at 20, 40, 60 and 80% of saturation)")
    by_load.set_ylabel("latency from the scheduled arrival (ms, log scale)")
    by_load.set_title("Latency by load")
    by_load.legend(loc="upper left", fontsize=8)
    by_load.grid(True, which="both", alpha=0.3)

    cpu = report["breakdown"]["cpu_per_flow_at_saturation"]
    labels = {"server_event_loop_thread": "server: event loop thread",
              "server_other_threads": "server: other threads (executor hand-off)",
              "executors": "executor processes", "postgres_backends": "Postgres backends",
              "load_generator": "load generator", "rest_of_machine": "rest of the machine (others' work)"}  # fmt: skip
    ours = sum(cpu[f"{k}_us"] for k in CPU_PARTS if k != "rest_of_machine")
    names = ["total: server, executors, Postgres, generator"] + [labels[k] for k in CPU_PARTS]
    values = [ours] + [cpu[f"{k}_us"] for k in CPU_PARTS]
    bars = right.barh(names, values, color=["#dd8452"] + ["#4c72b0"] * len(CPU_PARTS))
    right.bar_label(bars, fmt="%.0f µs", fontsize=8, padding=2)
    right.set_xlim(0, max(*values, 2e6 / TARGET_FLOWS_PER_S) * 1.2)
    right.axvline(2e6 / TARGET_FLOWS_PER_S, color="tab:red", linestyle="--", linewidth=1,
                  label="2 cores' whole budget per flow at 1,000/s")  # fmt: skip
    right.invert_yaxis()
    right.set_xlabel("CPU per flow at saturation (µs)")
    right.set_title(f"Where the CPU goes at {report['saturation']['flows_per_s']:,.0f} flows/s")
    right.legend(loc="lower right", fontsize=8)
    fig.suptitle(
        f"POST /api/v2/flows/post-login, one bound action, {report['workload']['event_json_bytes']:,} B event; "
        f"{report['machine']['cpus']} CPUs shared by server, executors, Postgres and load generator; {report['date']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _cores(value: float | None) -> str:
    """Cores used, or what stands for none measured (every window held a slow flow, say)."""
    return "no window" if value is None else f"{value:.2f} cores"


def print_report(report: dict[str, Any]) -> None:
    w = report["workload"]
    say(f"\nClosed loop: one bound action, {w['event_json_bytes']:,} B event, a session id per login "
        f"({w['sessions']:,} sessions), {report['settings']['rounds']} interleaved rounds:")  # fmt: skip
    say(f"  {'in flight':>9} {'flows/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for r in report["closed_loop"]["with_session"]:
        lat = r["latency"]
        say(f"  {r['concurrency']:9} {r['per_s']:9,.0f} {lat['p50_us'] / 1000:8.2f} {lat['p90_us'] / 1000:8.2f} "
            f"{lat['p99_us'] / 1000:8.2f} {sum(r['errors'].values()):7}")  # fmt: skip
    sat = report["saturation"]
    say(f"Saturation: {sat['flows_per_s']:,.0f} flows/s at {sat['concurrency']} in flight "
        f"(without a session id: {sat['without_session_flows_per_s']:,.0f} flows/s)")  # fmt: skip

    ol = report["open_loop"]
    lat, svc, wait = ol["latency_from_schedule"], ol["latency_from_send"], ol["wait_for_a_free_connection"]
    say(
        f"\nOpen loop at {ol['rate_per_s']:,.0f} flows/s (80% of saturation) for {ol['seconds']:.0f} s: "
        f"{lat['count']:,} flows, at most {ol['max_in_flight']} in flight, {sum(ol['errors'].values())} errors"
    )
    say(f"  latency from the scheduled arrival: p50 {lat['p50_us'] / 1000:.2f} ms, p90 {lat['p90_us'] / 1000:.2f} ms,"
        f" p99 {lat['p99_us'] / 1000:.2f} ms, max {lat['max_us'] / 1000:.1f} ms")  # fmt: skip
    say(f"  from the send: p50 {svc['p50_us'] / 1000:.2f} ms, p99 {svc['p99_us'] / 1000:.2f} ms; "
        f"waiting for a free connection: p99 {wait['p99_us'] / 1000:.2f} ms; "
        f"machine {ol['cpu']['machine_busy_cores']:.2f} cores busy")  # fmt: skip
    if "wal_bytes_per_flow" in ol:
        light_ol = report["light_open_loop"]
        say(f"  per flow, at 80% and 20% load: PostgreSQL's WAL {ol['wal_bytes_per_flow']:,.0f} and "
            f"{light_ol['wal_bytes_per_flow']:,.0f} bytes; the executors' epoch ticker threads "
            f"{ol['executor_side_threads_us_per_flow']:.0f} and {light_ol['executor_side_threads_us_per_flow']:.0f} µs "
            "of CPU")  # fmt: skip
    turns = ol.get("from_execution_records")
    if turns and turns["action_turn"]["count"]:
        turn, box = turns["action_turn"], turns["sandbox"]
        say(f"  the actions' turns, from the execution records ({turn['count']:,}; from the action's start to its "
            f"answer: the wait for an executor, the pipe, the sandbox): p50 {turn['p50_us'] / 1000:.1f} ms, "
            f"p90 {turn['p90_us'] / 1000:.1f} ms, p99 {turn['p99_us'] / 1000:.1f} ms; the sandbox alone p50 "
            f"{box['p50_us'] / 1000:.2f} ms, p99 {box['p99_us'] / 1000:.2f} ms")  # fmt: skip
    split = ol.get("connections_by_server_process") or []
    if len(split) > 1:
        say(f"  the generator's {ol['connections']} connections fell {' and '.join(map(str, split))} on the "
            f"{len(split)} server processes (each keeps its own: its event loop's share of the load)")  # fmt: skip
    say(f"  served {ol['served_per_s']:,.0f} flows/s of the {ol['rate_per_s']:,.0f}/s offered; the last answer came "
        f"{ol['drain_s'] * 1000:,.0f} ms after the last scheduled arrival")  # fmt: skip
    if "capacity_just_before_per_s" in ol:
        before, after = ol["capacity_just_before_per_s"], ol["capacity_just_after_per_s"]
        say(f"  the closed loop at {sat['concurrency']} in flight gave {before:,.0f} flows/s just before the open loop "
            f"and {after:,.0f} just after (saturation: {sat['flows_per_s']:,.0f}): the rate offered was "
            f"{ol['rate_per_s'] / before:.0%} and {ol['rate_per_s'] / after:.0%} of them")  # fmt: skip
    bw = ol["by_window"]
    if bw["windows_with_a_slow_flow"]:
        say(f"  {bw['slow_flows']:,} flows over {bw['slow_over_us'] / 1000:.0f} ms, scheduled in "
            f"{bw['windows_with_a_slow_flow']} of the {bw['windows']} windows of {bw['window_s'] * 1000:.0f} ms; "
            f"processes outside the benchmark used {_cores(bw['others_cores_near_slow_windows'])} in those "
            f"windows and the ones before, {_cores(bw['others_cores_elsewhere'])} in the rest; the host took "
            f"{_cores(bw.get('lost_cores_near_slow_windows'))} and {_cores(bw.get('lost_cores_elsewhere'))} "
            "(busy time no process here ran)")  # fmt: skip
        say(
            f"  the worst windows (from the start of the measured {ol['seconds']:.0f} s; cores used by our processes "
            "and others, others, taken by the host): "
            + "; ".join(
                f"{w['at_s']:.1f} s: {w['worst_ms']:.0f} ms, {w['busy_cores']:.2f} used, others "
                f"{w['others_cores']:.2f} (before: {w['others_cores_window_before']}), "
                f"host {w.get('lost_cores', 0):.2f}"
                for w in bw["worst_windows"]
            )
        )
        clear = bw.get("latency_clear_of_others", {"count": 0})
        if clear["count"] < 0.1 * ol["latency_from_schedule"]["count"]:
            say(f"  fewer than a tenth of the flows were scheduled {bw.get('clear_of_others_s', 2):.0f} s or more "
                "after other processes and the host last took over a quarter of a core")  # fmt: skip
        else:
            say(f"  the {clear['count']:,} flows scheduled at least {bw['clear_of_others_s']:.0f} s after other "
                f"processes and the host last took over a quarter of a core: p50 {clear['p50_us'] / 1000:.2f} ms, "
                f"p99 {clear['p99_us'] / 1000:.2f} ms (the tail the benchmark's own processes make)")  # fmt: skip
        if bw["others_when_busy_cpu_s"]:
            say(
                "  processes outside the benchmark when they used over a quarter of a core, CPU s: "
                + ", ".join(f"{name} {cpu:.2f}" for name, cpu in bw["others_when_busy_cpu_s"].items())
            )
        if bw.get("others_in_all_cpu_s"):
            say(
                "  processes outside the benchmark over the whole loop, CPU s: "
                + ", ".join(f"{name} {cpu:.2f}" for name, cpu in bw["others_in_all_cpu_s"].items())
            )
    if ol["served_per_s"] < OPEN_LOOP_KEPT_UP * ol["rate_per_s"]:
        say("  the server did not keep up with the offered rate during this run (saturation, measured earlier, was "
            "higher than the machine gave now): these latencies are those of a growing queue")  # fmt: skip

    by_load = report.get("latency_by_load")
    if by_load:  # absent from the results of earlier builds
        say("\nLatency by load (open loops, from the scheduled arrival; the 80% loop is the one above):")
        say("  load    flows/s   served    p50 ms    p90 ms    p99 ms   machine busy   CPU per flow")
        for row in by_load["loops"]:
            say(f"  {row['fraction']:4.0%} {row['rate_per_s']:10,.0f} {row['served_per_s']:8,.0f} {row['p50_ms']:9.2f} "
                f"{row['p90_ms']:9.2f} {row['p99_ms']:9.2f} {row['machine_busy_cores']:10.2f} of 2 "
                f"{row['cpu_us_per_flow']:9,.0f} µs")  # fmt: skip
        held = by_load["p99_target_held_up_to_per_s"]
        say(f"  the p99 target ({TARGET_P99_MS:.0f} ms) held up to {held:,.0f} flows/s "
            f"({held / sat['flows_per_s']:.0%} of saturation) in these loops" if held is not None
            else f"  the p99 target ({TARGET_P99_MS:.0f} ms) was met at none of these loads")  # fmt: skip

    floors, gen = report["floors"], report["generator"]
    say("\nThe load generator and the server's cheapest answers (16 in flight; p50 one at a time):")
    for name, label in (("stub_server_same_request", "generator vs a stub server, same bytes"),
                        ("openapi_json", "GET /api/v2/openapi.json"),
                        ("no_key_401", "401: no API key"),
                        ("key_and_body_checked_400", "400: key checked, body validated"),
                        ("healthz_keep_alive", "GET /healthz, keep-alive"),
                        ("healthz_new_connection_each", "GET /healthz, a new connection each")):  # fmt: skip
        f = floors.get(name)
        if f is None:  # results of an earlier build
            continue
        say(
            f"  {label:40} {f['c16']['per_s']:8,.0f}/s   p50 {f['c1']['latency']['p50_us'] / 1000:5.2f} ms   "
            f"server event loops {f['c16']['cpu']['server_event_loop_thread_us']:5,.0f} µs each"
        )
    say(f"  the generator's CPU per flow at saturation: {gen['cpu_us_per_request_at_saturation']:.0f} µs")

    b = report["breakdown"]
    say("\nWhere the time goes, one flow at a time (p50 of each part, each measured on its own):")
    for name, value in b["latency_one_flow_at_a_time_us"].items():
        say(f"  {name:72} {value / 1000:6.2f} ms")
    say("The event loop's CPU per call, one at a time (measured directly):")
    for name, value in b["event_loop_cpu_one_flow_at_a_time_us"].items():
        say(f"  {name:72} {value:6,.0f} µs")
    cpu = b["cpu_per_flow_at_saturation"]
    say(
        f"\nWhere the CPU goes at saturation, µs per flow (the machine {cpu['machine_busy_cores']:.2f} of "
        f"{report['machine']['cpus']} cores busy; the event loop threads {cpu['server_event_loop_busy_fraction']:.0%} "
        f"of one core):"
    )
    for key in CPU_PARTS:
        say(f"  {key.replace('_', ' '):42} {cpu[key + '_us']:7,.0f}")
    light = report["light_open_loop"]["latency_from_schedule"]
    say(f"  at {LIGHT_FRACTION:.0%} load ({report['light_open_loop']['rate_per_s']:,.0f} flows/s, open loop): "
        f"p50 {light['p50_us'] / 1000:.2f} ms, p99 {light['p99_us'] / 1000:.2f} ms")  # fmt: skip
    loads = [(f"{LIGHT_FRACTION:.0%} load", report["light_open_loop"]["cpu"]),
             (f"{LOAD_FRACTION:.0%} load", report["open_loop"]["cpu"]), ("saturation", cpu)]  # fmt: skip
    # The closed loops at the saturation's concurrency just before and after the 80% loop: what a flow cost
    # then at the saturation's concurrency, so that the machine's drift and the open loop's own premium part.
    around = report["open_loop"].get("closed_loops_around")
    if around:
        loads += [("closed loop just before", around["just_before"]["cpu"]),
                  ("just after", around["just_after"]["cpu"])]  # fmt: skip
    say("  CPU per flow by load, µs (" + "; ".join(f"{name}: machine {c['machine_busy_cores']:.2f} busy"
                                                for name, c in loads) + "):")  # fmt: skip
    for key in [k for k in CPU_PARTS if k != "rest_of_machine"]:
        say(f"    {key.replace('_', ' '):40} " + "".join(f"{c[key + '_us']:9,.0f}" for _, c in loads))
    totals = [sum(c[f"{k}_us"] for k in CPU_PARTS if k != "rest_of_machine") for _, c in loads]
    ratios = f"{totals[0] / totals[2]:.2f} and {totals[1] / totals[2]:.2f} times saturation's"
    if around:
        ratios += (
            f"; the {LOAD_FRACTION:.0%} loop {2 * totals[1] / (totals[3] + totals[4]):.2f} times the closed loops'"
        )
    say(f"    {'in all':40} " + "".join(f"{t:9,.0f}" for t in totals) + f"   ({ratios})")
    say("  context switches per flow by load: waited + preempted (the core taken while it could run on)")
    for key in SWITCH_PARTS:
        cells = [f"{c[key + '_waits_per_flow']:.1f}+{c[key + '_preemptions_per_flow']:.1f}" for _, c in loads]
        say(f"    {key.replace('_', ' '):40} " + "".join(f"{cell:>9}" for cell in cells))
    say(f"    {'the whole machine':40} " + "".join(f"{c['machine_switches_per_flow']:9.1f}" for _, c in loads))
    c401, c400 = b["cpu_per_request_401"], b["cpu_per_request_400"]
    say(
        f"  event loop CPU per request: 401 {c401['server_event_loop_thread_us']:,.0f} µs, "
        f"400 {c400['server_event_loop_thread_us']:,.0f} µs, flow {cpu['server_event_loop_thread_us']:,.0f} µs"
    )
    ex = b["direct_execution"]
    say(f"  the sandbox alone: {ex['sandbox_in_process']['cpu_us']:.0f} µs CPU per execution; through the pool: "
        f"{ex['executor_pool']['executor_cpu_us']:.0f} µs in the executor + "
        f"{ex['executor_pool']['cpu_us']:.0f} µs in the caller")  # fmt: skip
    handoff = ex["handoff_one_executor_busy_loop"]
    say(f"  one executor shared by {HANDOFF_CALLERS} callers on a loop that also runs other work in slices, "
        "executions/s: " + ", ".join(f"{k.removeprefix('slices_').removesuffix('_per_s').replace('_', ' ')} "
                                     f"{v:,.0f}" for k, v in handoff.items()))  # fmt: skip
    ceil = b["ceilings"]
    say(f"  derived ceilings: {ceil['if_the_machine_were_ours_per_s']:,.0f} flows/s if the machine were ours, "
        f"{ceil['one_event_loop_thread_per_s']:,.0f} flows/s for one event loop thread")  # fmt: skip
    say("\nStore calls timed directly, one at a time (p50 latency; the calling thread's CPU per call):")
    for name, s in b["direct_store"].items():
        say(f"  {name.replace('_', ' '):54} {s['p50_us'] / 1000:6.2f} ms {s['cpu_us']:6.0f} µs")
    profile = b["profile"]
    if profile and profile.get("share_of_samples"):
        say(f"\nThe server's event loop thread by part (py-spy, {profile['samples_event_loop_thread']:,} samples "
            f"at {b['profile_run_per_s']:,.0f} flows/s; share of its work, then of all samples):")  # fmt: skip
        for part, share in profile["share_of_samples"].items():
            work = profile["share_of_work_excluding_epoll"].get(part)
            say(f"  {part:54} {f'{work:6.1%}' if work is not None else '':>6}  {share:6.1%}")
    elif profile:
        say(f"\npy-spy failed: {profile.get('error')}")

    say("\nRatios:")
    say(
        f"  flows/s / Keycloak refresh-token anchor ({ANCHOR_PER_S}/s at 2 vCPUs)   "
        f"{report['ratios']['saturation_over_keycloak_refresh_anchor']:.2f}  (aim ≥ 4)"
    )
    say("\nTargets:")
    for name, ok in report["targets"].items():
        say(f"  {'met    ' if ok else 'MISSED '} {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (about a minute)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of the closed-loop ramp (default 3; quick 1)")
    parser.add_argument("--seconds", type=float, help="seconds per closed-loop level and round (default 3; quick 2)")
    parser.add_argument("--open-seconds", type=float, help="seconds of the open-loop run (default 30; quick 5)")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="skip the py-spy profile")
    args = parser.parse_args()

    report = run(args)
    open_latencies = report["open_loop"].pop("_latencies_us", None)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "flow_throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, open_latencies, RESULTS / "flow_throughput.png")
    print_report(report)
    say(f"\nWrote {RESULTS / 'flow_throughput.json'} and {RESULTS / 'flow_throughput.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
