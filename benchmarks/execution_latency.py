"""Execution latency, throughput and memory of one fresh sandbox per execution.

The workload is the seed action's redirect branch (tenants/acme-bank: it
checks the session's methods, signs a session token with encodeToken and
calls sendUserTo) with a realistic post-login event of about 1.9 KB.

Measured in the same run, interleaved round by round so that noise on this
shared machine affects all three alike:

- tollgate: ``execute()``, a fresh wasmtime instance per execution, everything
  from packing the event to the checked result. As in an executor, the
  sandbox is reset (its memory slot restored from the snapshot) after the
  result is there: that reset is timed on its own and shown beside the
  latency, added to it ("answer + reset"), and in every throughput figure;
- Node's ``vm`` with a fresh context per execution (benchmarks/anchors/node_vm.js);
- quickjs-rs with a fresh context per execution (token signing as a host
  function, since it has no crypto).

Then throughput with one and with two executor processes, and the resident
memory each live instance adds. Results go to benchmarks/results/ as JSON
and a PNG; the ratios and the targets are printed.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/execution_latency.py``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime.sandbox import compile_action, execute  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
ACTION = ROOT / "tenants" / "acme-bank" / "actions" / "custom-factor.js"
EVENT = ROOT / "tenants" / "acme-bank" / "events" / "first-login.json"
SECRETS = {"SESSION_TOKEN_SECRET": "benchmark-secret-" + "k" * 32}

TARGET_P50_US = 150.0
TARGET_NODE_RATIO = 1 / 3
TARGET_THROUGHPUT_2P = 10_000
TARGET_RSS_PER_INSTANCE = 1024 * 1024

Runner = Callable[[int], list[int]]  # n executions -> their durations in ns


def guest_instructions() -> int:
    """WebAssembly instructions one execution of the workload runs (wasmtime's fuel): the same on every machine."""
    result = execute(compile_action(ACTION.read_text()), "onExecutePostLogin", json.loads(EVENT.read_text()),
                     secrets=SECRETS, seed=bytes(32), now_ms=1.8e12)  # fmt: skip
    return result.stats.fuel_used


class TollgateRunner:
    """``execute()`` as an executor runs it: the answer first, then the sandbox's reset.

    An executor sends the result as soon as ``execute()`` returns and resets
    the sandbox's memory slot (wasmtime restores it from the snapshot when
    the store is dropped) before it reads the next request. The latency is
    the time to the answer; the reset after it is timed on its own
    (`resets`) and is part of every throughput figure.
    """

    def __init__(self) -> None:
        from runtime.sandbox._engine import engine

        self.action = compile_action(ACTION.read_text())
        self.event = json.loads(EVENT.read_text())
        self.wasm = engine().wasm
        self.resets: list[int] = []

    def __call__(self, n: int) -> list[int]:
        wasm = self.wasm
        times = []
        wasm.defer_drops = True
        try:
            for _ in range(n):
                started = time.perf_counter_ns()
                result = execute(self.action, "onExecutePostLogin", self.event, secrets=SECRETS)
                answered = time.perf_counter_ns()
                wasm.drop_deferred()
                self.resets.append(time.perf_counter_ns() - answered)
                times.append(answered - started)
                if not result.ok or result.commands[0]["type"] != "redirect":
                    raise RuntimeError(f"unexpected result: {result.error}")
        finally:
            wasm.defer_drops = False
        return times


class NodeRunner:
    """The Node anchor as a long-lived subprocess, driven over stdin/stdout."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["node", str(ROOT / "benchmarks" / "anchors" / "node_vm.js")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        setup = {"source": ACTION.read_text(), "event": json.loads(EVENT.read_text()), "secrets": SECRETS}
        reply = self._ask({"setup": setup})
        sample = json.loads(reply["sample"])
        if sample["commands"][0]["type"] != "redirect":
            raise RuntimeError("the Node anchor did not produce the redirect")

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        reply: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return reply

    def __call__(self, n: int) -> list[int]:
        times: list[int] = self._ask({"run": n})["times"]
        return times

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()


QUICKJS_RS_API = """
var __commands = [];
function __b64url(s) { return btoa(s).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, ''); }
function __api(event) {
  var api = { redirect: {
    encodeToken: function (o) {
      var iat = Math.floor(Date.now() / 1000);
      var claims = Object.assign({ iat: iat, iss: event.request.hostname, sub: event.user.user_id,
                                   exp: iat + (o.expiresInSeconds || 900), ip: event.request.ip }, o.payload || {});
      var input = __b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' })) + '.' + __b64url(JSON.stringify(claims));
      return input + '.' + __sign(o.secret, input);
    },
    sendUserTo: function (url, o) {
      var q = Object.keys(o.query).map(function (k) {
        return encodeURIComponent(k) + '=' + encodeURIComponent(o.query[k]);
      });
      __commands.push({ type: 'redirect', url: url + '?' + q.join('&') });
      return api;
    } } };
  return api;
}
"""


def quickjs_rs_runner() -> Runner:
    import quickjs_rs

    source = ACTION.read_text()
    module_code = (
        "var module = { exports: {} }; (function (exports, require, module) { " + source + "\n})"
        "(module.exports, function () { throw new Error('no modules') }, module);"
    )
    event = json.loads(EVENT.read_text())
    event["secrets"] = SECRETS
    event_json = json.dumps(event)
    runtime = quickjs_rs.Runtime()

    def sign(key: str, data: str) -> str:
        digest = hmac.new(key.encode(), data.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def run(n: int) -> list[int]:
        times = []
        for _ in range(n):
            started = time.perf_counter_ns()
            ctx = quickjs_rs.Context(runtime)
            ctx.register("__sign", sign)
            ctx.eval(QUICKJS_RS_API)
            ctx.eval(module_code)
            ctx.eval(
                f"var __event = JSON.parse({json.dumps(event_json)});"
                " module.exports.onExecutePostLogin(__event, __api(__event)); undefined"
            )
            out = ctx.eval("JSON.stringify(__commands)")
            ctx.close()
            times.append(time.perf_counter_ns() - started)
            if '"redirect"' not in out:
                raise RuntimeError("quickjs-rs did not produce the redirect")
        return times

    return run


def summary(times_ns: list[int]) -> dict[str, float]:
    us = sorted(t / 1000 for t in times_ns)
    n = len(us)
    return {
        "count": n,
        "p50_us": us[n // 2],
        "p90_us": us[int(n * 0.90)],
        "p99_us": us[int(n * 0.99)],
        "mean_us": statistics.fmean(us),
        "min_us": us[0],
    }


def _throughput_worker(seconds: float, queue: Any) -> None:
    run = TollgateRunner()
    run(300)
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        run(50)
        count += 50
    queue.put((count, time.perf_counter() - started))


def throughput(processes: int, seconds: float) -> float:
    """Executions per second with `processes` executor processes, each with its own engine."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_throughput_worker, args=(seconds, queue)) for _ in range(processes)]
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    return sum(count / elapsed for count, elapsed in results)


def pool_throughput(processes: int, seconds: float, threads: int) -> float:
    """Executions per second through ExecutorPool (msgpack over pipes), from `threads` callers."""
    import threading

    from runtime.sandbox.pool import ExecutorPool

    action = compile_action(ACTION.read_text())
    event = json.loads(EVENT.read_text())
    counts = [0] * threads
    with ExecutorPool(processes=processes) as pool:
        for _ in range(200):
            pool.execute(action, "onExecutePostLogin", event, secrets=SECRETS)
        deadline = time.perf_counter() + seconds

        def caller(i: int) -> None:
            while time.perf_counter() < deadline:
                pool.execute(action, "onExecutePostLogin", event, secrets=SECRETS)
                counts[i] += 1

        started = time.perf_counter()
        workers = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return sum(counts) / (time.perf_counter() - started)


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _rss_worker(live: int, queue: Any) -> None:
    """Hold `live` instances that have each run the seed handler; report the RSS they add."""
    import msgpack

    from runtime.limits import Limits
    from runtime.sandbox import _engine, _protocol

    action = compile_action(ACTION.read_text())
    event = json.loads(EVENT.read_text())
    event["secrets"] = SECRETS
    request = msgpack.packb({"trigger": "post-login", "handler": "onExecutePostLogin", "event": event, "cache": {}})
    limits = Limits()
    handle = _engine.engine()
    payload = _protocol.encode_input(
        _protocol.MAGIC_RUN, action.bytecode, request, limits,
        heap_bytes=_engine.heap_bytes(handle, limits), seed=os.urandom(32), now_ms=time.time() * 1000,
    )  # fmt: skip

    def start_one(stack: ExitStack) -> None:
        inst = stack.enter_context(
            handle.wasm.instance(fuel=limits.fuel, wall_ms=limits.wall_ms, memory_bytes=limits.memory_bytes)
        )
        inst.write(handle.input_ptr, payload)
        inst.call(b"tg_run", len(payload))

    for _ in range(200):  # warm the pool's slots and the process
        with ExitStack() as stack:
            start_one(stack)
    before = _rss_bytes()
    with ExitStack() as stack:
        for _ in range(live):
            start_one(stack)
        after = _rss_bytes()
    queue.put((before, after))


def rss_per_instance(live: int) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_rss_worker, args=(live, queue))
    proc.start()
    before, after = queue.get()
    proc.join()
    return {"live_instances": live, "rss_before_bytes": before, "rss_after_bytes": after,
            "rss_per_instance_bytes": (after - before) / live}  # fmt: skip


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except FileNotFoundError:
        return "not found"


def plot(report: dict[str, Any], samples: dict[str, list[int]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [2, 1]})
    for name, times in samples.items():
        us = sorted(t / 1000 for t in times)
        left.plot(us, [i / len(us) for i in range(len(us))], label=f"{name} (p50 {us[len(us) // 2]:.0f} µs)")
    left.axvline(TARGET_P50_US, color="grey", linestyle="--", linewidth=1, label=f"target p50 {TARGET_P50_US:.0f} µs")
    left.set_xscale("log")
    left.set_xlabel("latency per execution, fresh sandbox or context (µs, log scale)")
    left.set_ylabel("fraction of executions")
    left.set_title("Seed action, redirect branch, ~1.9 KB event")
    left.legend(loc="lower right")
    left.grid(True, which="both", alpha=0.3)
    tp = report["throughput"]
    values = [tp["one_process_per_s"], tp["two_processes_per_s"]]
    bars = right.bar(["1 process", "2 processes"], values, color="#4c72b0")
    right.bar_label(bars, fmt="%.0f/s")
    right.axhline(TARGET_THROUGHPUT_2P, color="grey", linestyle="--", linewidth=1, label="target, 2 processes")
    right.set_title("tollgate throughput (executions/s)")
    right.legend(loc="lower right")
    fig.suptitle(f"{report['machine']['cpus']} CPUs · wasmtime {report['machine']['wasmtime']} · {report['date']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--per-round", type=int, default=150, help="executions per runtime per round (default 150)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per throughput run (default 5)")
    args = parser.parse_args()

    print("Preparing the three runtimes (tollgate, Node vm, quickjs-rs)…", flush=True)
    ours_runner = TollgateRunner()
    runners: dict[str, Runner] = {"tollgate": ours_runner}
    node = NodeRunner()
    runners["node vm, fresh context"] = node
    runners["quickjs-rs, fresh context"] = quickjs_rs_runner()
    for run in runners.values():
        run(200)  # warm-up, not measured

    samples: dict[str, list[int]] = {name: [] for name in runners}
    for r in range(args.rounds):
        for name, run in runners.items():
            samples[name].extend(run(args.per_round))
        print(f"  round {r + 1}/{args.rounds} done", flush=True)
    node.close()

    resets = ours_runner.resets[-len(samples["tollgate"]) :]
    full = [answer + reset for answer, reset in zip(samples["tollgate"], resets, strict=True)]
    latency = {name: summary(times) for name, times in samples.items()}
    latency_full = summary(full)
    reset = summary(resets)
    ours = latency["tollgate"]["p50_us"]
    node_p50 = latency["node vm, fresh context"]["p50_us"]
    ratios = {
        "tollgate_p50_over_node_p50": ours / node_p50,
        "tollgate_p50_with_reset_over_node_p50": latency_full["p50_us"] / node_p50,
        "tollgate_p50_over_quickjs_rs_p50": ours / latency["quickjs-rs, fresh context"]["p50_us"],
    }

    print(f"Throughput: {args.seconds:.0f} s with one executor process, then with two…", flush=True)
    tp1 = throughput(1, args.seconds)
    tp2 = throughput(2, args.seconds)
    print("Throughput through the executor pool (2 executors, 4 calling threads)…", flush=True)
    tp_pool = pool_throughput(2, args.seconds, threads=4)
    print("Resident memory per live instance (15 live instances)…", flush=True)
    rss = rss_per_instance(15)

    from runtime import engine
    from runtime.sandbox._wasmtime import WASMTIME_VERSION

    report: dict[str, Any] = {
        "benchmark": "execution_latency",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "wasmtime": WASMTIME_VERSION,
            "node": _version(["node", "--version"]),
        },
        "engine_build_id": engine.load().build_id,
        "guest_instructions_per_execution": guest_instructions(),
        "workload": {
            "action": str(ACTION.relative_to(ROOT)),
            "handler": "onExecutePostLogin (redirect branch)",
            "event_json_bytes": len(json.dumps(json.loads(EVENT.read_text()), separators=(",", ":"))),
        },
        "latency": latency,
        "latency_note": (
            "tollgate: from calling execute() to its result, which is when an executor sends its answer; "
            "the sandbox's reset follows the answer (reset_after_answer) and is included in "
            "tollgate_with_reset and in every throughput figure"
        ),
        "reset_after_answer": reset,
        "tollgate_with_reset": latency_full,
        "ratios": ratios,
        "throughput": {
            "one_process_per_s": tp1,
            "two_processes_per_s": tp2,
            "executor_pool_2_processes_per_s": tp_pool,
        },
        "memory": rss,
        "targets": {
            "p50_at_most_150_us": ours <= TARGET_P50_US,
            "p50_at_most_a_third_of_node": ratios["tollgate_p50_over_node_p50"] <= TARGET_NODE_RATIO,
            "two_processes_at_least_10000_per_s": tp2 >= TARGET_THROUGHPUT_2P,
            "rss_per_live_instance_at_most_1_mib": rss["rss_per_instance_bytes"] <= TARGET_RSS_PER_INSTANCE,
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "execution_latency.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, {**samples, "tollgate answer + reset": full}, RESULTS / "execution_latency.png")

    print(f"\nLatency per execution ({latency['tollgate']['count']:,} executions each, interleaved):")
    print(f"  {'runtime':30} {'p50 µs':>9} {'p90 µs':>9} {'p99 µs':>9} {'mean µs':>9}")
    rows = {**latency, "  then the sandbox's reset": reset, "  tollgate answer + reset": latency_full}
    for name, s in rows.items():
        print(f"  {name:30} {s['p50_us']:9.1f} {s['p90_us']:9.1f} {s['p99_us']:9.1f} {s['mean_us']:9.1f}")
    print("  (tollgate: until the result, when an executor answers; it resets the sandbox after answering)")
    print("\nRatios (p50):")
    print(f"  tollgate / node vm      {ratios['tollgate_p50_over_node_p50']:.3f}  (target ≤ 0.333)")
    print(f"  with the reset          {ratios['tollgate_p50_with_reset_over_node_p50']:.3f}")
    print(f"  tollgate / quickjs-rs   {ratios['tollgate_p50_over_quickjs_rs_p50']:.3f}")
    print(f"\nThroughput: {tp1:,.0f}/s with one process, {tp2:,.0f}/s with two (target ≥ 10,000/s)")
    print(f"  through the executor pool (IPC included, caller in the same machine): {tp_pool:,.0f}/s")
    print(f"Memory: {rss['rss_per_instance_bytes'] / 1024:,.0f} KiB of RSS per live instance (target ≤ 1,024 KiB)")
    print(f"Guest work: {report['guest_instructions_per_execution']:,} WebAssembly instructions per execution "
          "(wasmtime's fuel; the same on every machine)")  # fmt: skip
    print("\nTargets:")
    for name, ok in report["targets"].items():
        print(f"  {'met    ' if ok else 'MISSED '} {name}")
    print(f"\nWrote {RESULTS / 'execution_latency.json'} and {RESULTS / 'execution_latency.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
