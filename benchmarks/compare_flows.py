"""Two builds of the flow API served side by side, measured in alternating rounds: is a change faster?

The machines of this kind drift by a third within the hour, so two full runs
of flow_throughput.py an hour apart say more about the machine than about a
change. This serves the working tree and another build (a git revision,
checked out into a temporary worktree) at the same time, each with its own
database on the same PostgreSQL server, and sends both the same load from one
generator, round by round, alternating which goes first. What it compares is
the CPU per flow of each build's event loops and PostgreSQL backends divided
by its executors' CPU per flow: the executors run the same sandbox in both
builds (unless the change is in the engine), so the machine's speed of the
moment cancels out. Throughput and latency are reported too, with the rounds
they came from.

Both builds run in this virtual environment: a revision that needs other
dependencies cannot be compared this way. A revision whose engine sources
differ has its engine built in its worktree first (a minute or two).

Results go to benchmarks/results/compare_flows.json and a PNG.

    .venv/bin/python benchmarks/compare_flows.py HEAD~3            # closed loops at 16 in flight, 6 rounds
    .venv/bin/python benchmarks/compare_flows.py main --rate 600   # open loops at 600 flows/s
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flow_throughput as ft

ROOT = ft.ROOT
RESULTS = ft.RESULTS
SESSIONS = 1000


say = ft.say


def git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def check_out(revision: str, into: Path) -> str:
    """`revision` checked out into `into` (a detached worktree), ready to serve; its full commit id."""
    commit = git("rev-parse", "--verify", f"{revision}^{{commit}}")
    git("worktree", "add", "--detach", "--quiet", str(into), commit)
    # What the set-up builds is never committed: start from this tree's, then let the engine's own
    # up-to-date check rebuild it if the revision's engine sources differ.
    for built in ("runtime/engine/_built", "runtime/console/_built"):
        if (ROOT / built).is_dir():
            shutil.copytree(ROOT / built, into / built, dirs_exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "runtime.engine.build"], cwd=into, capture_output=True, text=True,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"building the engine of {revision} failed:\n{done.stderr.strip()[-2000:]}")
    say(f"    {done.stdout.strip().splitlines()[-1] if done.stdout.strip() else 'engine ready'}")
    return commit


@dataclass
class Side:
    name: str
    server: ft.Server
    meter: ft.CpuMeter
    requests: list[bytes]
    rounds: list[dict[str, Any]]


def measure(side: Side, generator: ft.LoadGenerator, job: dict[str, Any]) -> dict[str, Any]:
    """One round of one build: its flows/s, latency and CPU per flow by part."""
    marks: list[ft.CpuSnapshot] = []
    side.meter.rescan()
    result = generator.run({**job, "port": side.server.port, "requests": side.requests},
                           on_measuring=lambda: marks.append(side.meter.snapshot()))  # fmt: skip
    delta = ft.CpuMeter.delta(marks[0], side.meter.snapshot(), result["generator_cpu_s"])
    count = len(result["latencies_us"])
    cpu = ft.CpuMeter.per_request([delta], count)
    executors = cpu["executors_us"]
    latency = ft.summary_us(result["latencies_us"])
    return {
        "flows_per_s": count / job["seconds"],
        "p50_ms": latency.get("p50_us", 0.0) / 1000,
        "p99_ms": latency.get("p99_us", 0.0) / 1000,
        "event_loop_us": cpu["server_event_loop_thread_us"],
        "executors_us": executors,
        "postgres_us": cpu["postgres_backends_us"],
        "event_loop_over_executors": cpu["server_event_loop_thread_us"] / executors if executors else None,
        "postgres_over_executors": cpu["postgres_backends_us"] / executors if executors else None,
        "machine_busy_cores": cpu["machine_busy_cores"],
        "errors": sum(result["errors"].values()),
    }


FIGURES = (
    ("flows_per_s", "flows/s", "{:,.0f}", True),
    ("event_loop_over_executors", "event loop CPU ÷ executors'", "{:.2f}", False),
    ("postgres_over_executors", "PostgreSQL CPU ÷ executors'", "{:.2f}", False),
    ("p99_ms", "p99 ms", "{:.1f}", False),
)


def summarise(base: Side, tree: Side) -> dict[str, Any]:
    """Medians and ranges per build, and in how many rounds the working tree did better."""
    out: dict[str, Any] = {}
    for key, _, _, higher_is_better in FIGURES:
        pairs = [(b[key], t[key]) for b, t in zip(base.rounds, tree.rounds, strict=True)
                 if b[key] is not None and t[key] is not None]  # fmt: skip
        if not pairs:
            continue
        better = sum((t > b) if higher_is_better else (t < b) for b, t in pairs)
        out[key] = {}
        for i, side in enumerate((base, tree)):
            values = [pair[i] for pair in pairs]
            out[key][side.name] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
        median_change = statistics.median(t / b - 1 for b, t in pairs if b)
        out[key]["working_tree_better_in_rounds"] = better
        out[key]["rounds"] = len(pairs)
        out[key]["median_change_per_round"] = median_change
    return out


def print_summary(summary: dict[str, Any], base: Side, tree: Side) -> None:
    say(f"\n{'':32} {base.name:>28} {tree.name:>28}   working tree better   change (median of rounds)")
    for key, label, fmt, _ in FIGURES:
        row = summary.get(key)
        if row is None:
            continue
        cells = []
        for side in (base, tree):
            s = row[side.name]
            cells.append(f"{fmt.format(s['median'])} ({fmt.format(s['min'])} to {fmt.format(s['max'])})")
        say(f"  {label:30} {cells[0]:>28} {cells[1]:>28}   {row['working_tree_better_in_rounds']} of "
            f"{row['rounds']} rounds      {row['median_change_per_round']:+.1%}")  # fmt: skip
    say("  (median, then the range over the rounds; CPU ratios cancel the machine's drift, flows/s and p99 do not)")


def plot(base: Side, tree: Side, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(FIGURES), figsize=(5 * len(FIGURES), 4.2))
    for ax, (key, label, _, _) in zip(axes, FIGURES, strict=True):
        for x, side in enumerate((base, tree)):
            values = [r[key] for r in side.rounds if r[key] is not None]
            ax.scatter([x] * len(values), values, alpha=0.7)
            if values:
                ax.hlines(statistics.median(values), x - 0.25, x + 0.25, color="black", linewidth=1.5)
        for b, t in zip(base.rounds, tree.rounds, strict=True):  # each round's pair, joined
            if b[key] is not None and t[key] is not None:
                ax.plot([0, 1], [b[key], t[key]], color="grey", alpha=0.3, linewidth=0.8)
        ax.set_xticks([0, 1], [base.name, tree.name], fontsize=8)
        ax.set_xlim(-0.6, 1.6)
        ax.set_title(label, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"Two builds side by side, {len(base.rounds)} alternating rounds (bar: median; lines: one round)",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the build to compare the working tree with (a git revision)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of each build, alternating (default 6)")
    parser.add_argument("--in-flight", type=int, default=16, help="requests in flight in the closed loops")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measured loop (default 5 s)")
    parser.add_argument("--rate", type=float, help="open loops at this many flows/s instead of closed loops")
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds <= 0 or args.in_flight < 1 or (args.rate is not None and args.rate <= 0):
        parser.error("--rounds, --in-flight, --seconds and --rate must be positive")

    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tollgate-compare-")))
        say(f"[1/4] checking out {args.revision} beside the working tree")
        base_root = work / "base"
        stack.callback(subprocess.run, ["git", "worktree", "remove", "--force", str(base_root)], cwd=ROOT,
                       capture_output=True, check=False)  # fmt: skip
        commit = check_out(args.revision, base_root)
        tree_state = git("describe", "--always", "--dirty")

        say("[2/4] two servers, each on a fresh database, a tenant each, warmed up")
        admin_url, origin = ft.postgres_server(work / "embedded")
        import psycopg

        generator = ft.LoadGenerator()
        stack.callback(generator.close)
        sides = []
        for name, root in ((f"{args.revision} ({commit[:8]})", base_root), (f"working tree ({tree_state})", ROOT)):
            database = f"tollgate_compare_{len(sides)}_{secrets.token_hex(3)}"
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{database}"')

            def drop(database: str = database) -> None:
                with psycopg.connect(admin_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

            stack.callback(drop)
            home = work / f"home-{len(sides)}"
            server = ft.Server(ft._with_database(admin_url, database), home, work / f"server-{len(sides)}.log", root)
            stack.callback(server.stop)
            server.wait_ready()
            meter = ft.CpuMeter(server.pid, admin_url, database, generator.process.pid)
            stack.callback(meter.close)
            tenant = ft.set_up_tenant(server)
            requests = [ft.http_request(server.port, "POST", ft.FLOW_PATH, tenant.key,
                                        ft.flow_body(ft.login_event(i))) for i in range(SESSIONS)]  # fmt: skip
            generator.run({"kind": "closed", "port": server.port, "requests": requests, "concurrency": 8,
                           "total": 2 * SESSIONS, "expect": {}})  # fmt: skip
            sides.append(Side(name, server, meter, requests, []))
            say(f"    {name}: server pid {server.pid} on port {server.port}")
        base, tree = sides

        expect = {"status": 200, "contains": ft.COMPLETED}
        if args.rate is None:
            job: dict[str, Any] = {"kind": "closed", "concurrency": args.in_flight, "warmup_s": 1.0,
                                   "seconds": args.seconds, "expect": expect}  # fmt: skip
            load = f"closed loops at {args.in_flight} in flight"
        else:
            job = {"kind": "open", "rate": args.rate, "connections": ft.OPEN_LOOP_CONNECTIONS, "warmup_s": 2.0,
                   "seconds": args.seconds, "expect": expect}  # fmt: skip
            load = f"open loops at {args.rate:,.0f} flows/s"
        say(f"[3/4] {args.rounds} rounds of {load}, {args.seconds:g} s each, alternating which build goes first")
        for number in range(args.rounds):
            for side in sides if number % 2 == 0 else sides[::-1]:
                row = measure(side, generator, job)
                side.rounds.append(row)
                loop, pg = row["event_loop_over_executors"], row["postgres_over_executors"]
                errors = f", {row['errors']} errors" if row["errors"] else ""
                say(f"    round {number + 1}/{args.rounds} {side.name}: {row['flows_per_s']:,.0f} flows/s, "
                    f"event loop ÷ executors {loop:.2f}, PostgreSQL ÷ executors {pg:.2f}, "
                    f"p99 {row['p99_ms']:.1f} ms{errors}")  # fmt: skip

        say("[4/4] summary")
        summary = summarise(base, tree)
        print_summary(summary, base, tree)
        report = {
            "benchmark": "compare_flows",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "base": {"revision": args.revision, "commit": commit},
            "working_tree": tree_state,
            "load": load,
            "seconds": args.seconds,
            "database_server": origin,
            "rounds": {base.name: base.rounds, tree.name: tree.rounds},
            "summary": summary,
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "compare_flows.json").write_text(json.dumps(report, indent=2) + "\n")
        plot(base, tree, RESULTS / "compare_flows.png")
        say(f"\nWrote {RESULTS / 'compare_flows.json'} and {RESULTS / 'compare_flows.png'} "
            f"({time.perf_counter() - started:.0f} s in all)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
