"""What a server has done and holds now, for Prometheus: ``GET /metrics`` (the operator's key).

Counters and histograms are kept as logins run; the gauges (executor
processes, database connections, execution records waiting to be written)
are read from the services every few seconds and when ``/metrics`` is asked.
Nothing names a tenant, a user or an action: per-tenant figures are in
``GET /api/v2/tenants/{id}/usage``.

With several server processes (``tollgate serve --workers N``) a request for
``/metrics`` reaches one of them, so each process writes its figures to a
file of its own in the directory ``PROMETHEUS_MULTIPROC_DIR`` names (``serve``
makes one for its processes and removes it when it stops) and the process
that answers sums them all: counters and histograms over every process that
ran since the server started, gauges over the processes running now.
"""

from __future__ import annotations

import contextlib
import functools
import os
import weakref
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

__all__ = ["CONTENT_TYPE", "MULTIPROCESS_ENV", "continue_refused", "execution_ran", "exposition",
           "forget_ended_processes", "login_ran", "process_stopped", "read_services"]  # fmt: skip

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# The server's own metrics only, the same with one process or several (the client library's default registry
# adds the process's CPU, memory and garbage collection, which with several processes would be one's at random).
_REGISTRY = CollectorRegistry()
# Nor the time each series was created, which only one process's figures would have.
disable_created_metrics()  # type: ignore[no-untyped-call]

# A login's run lasts from a few milliseconds to an action's whole budget (20 s by default).
_LOGIN_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)
_EXECUTION_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 20.0)

LOGINS = Counter(
    "tollgate_logins",
    "Runs of the post-login flow: its start, or its /continue after a redirect. way: how the login came in "
    "(api: the flow API; hosted: the hosted login page; refresh: a refresh-token exchange). status: completed, "
    "denied (by an action), redirect (suspended, the user sent away), failed (see tollgate_login_failures).",
    ["way", "step", "status"],
    registry=_REGISTRY,
)
CONTINUES_REFUSED = Counter(
    "tollgate_continues_refused",
    "Requests to /continue refused without running anything: a state unknown, expired, already used, another "
    "tenant's, or sent from another browser.",
    registry=_REGISTRY,
)
LOGIN_FAILURES = Counter(
    "tollgate_login_failures",
    "Runs of the post-login flow that failed closed, by error class (action_error, action_timeout, "
    "resource_exhausted, interaction_required, platform_error...).",
    ["error_class"],
    registry=_REGISTRY,
)
LOGIN_SECONDS = Histogram(
    "tollgate_login_seconds",
    "Time of a run of the post-login flow in the server, from its start or /continue until it stopped, its "
    "actions' executions and its writes included.",
    ["step"],
    buckets=_LOGIN_BUCKETS,
    registry=_REGISTRY,
)
EXECUTIONS = Counter(
    "tollgate_action_executions",
    "Executions of actions in the sandbox, by result: ok, or the error class.",
    ["result"],
    registry=_REGISTRY,
)
EXECUTION_SECONDS = Histogram(
    "tollgate_action_execution_seconds",
    "Time of an action's execution through the executor processes, waiting for a free one included.",
    buckets=_EXECUTION_BUCKETS,
    registry=_REGISTRY,
)
EXECUTORS = Gauge(
    "tollgate_executors",
    "Executor processes by state: alive, idle (alive and free), starting (replacements on their way).",
    ["state"],
    multiprocess_mode="livesum",
    registry=_REGISTRY,
)
EXECUTORS_REPLACED = Counter(
    "tollgate_executors_replaced",
    "Executor processes that crashed or stopped answering and were replaced.",
    registry=_REGISTRY,
)
DATABASE_CONNECTIONS = Gauge(
    "tollgate_database_connections",
    "Connections of the database pools by state: open, idle; waiting counts requests waiting for one.",
    ["state"],
    multiprocess_mode="livesum",
    registry=_REGISTRY,
)
RECORDS_WAITING = Gauge(
    "tollgate_execution_records_waiting",
    "Execution records of answered logins not yet written to the database (they are written within moments).",
    multiprocess_mode="livesum",
    registry=_REGISTRY,
)


# The series of each label set, found once (labels() takes a lock and builds a key at every call).
_login_series = functools.lru_cache(maxsize=256)(LOGINS.labels)
_login_seconds_series = functools.lru_cache(maxsize=16)(LOGIN_SECONDS.labels)
_execution_series = functools.lru_cache(maxsize=64)(EXECUTIONS.labels)


def login_ran(way: str, step: str, status: str, error_class: str | None, seconds: float) -> None:
    """A run of the flow (`step`: start or continue) stopped with `status`."""
    _login_series(way, step, status).inc()
    if error_class is not None:
        LOGIN_FAILURES.labels(error_class).inc()
    _login_seconds_series(step).observe(seconds)


def continue_refused() -> None:
    CONTINUES_REFUSED.inc()


def execution_ran(result: str, seconds: float) -> None:
    """An action's execution came back: `result` is "ok" or its error class."""
    _execution_series(result).inc()
    EXECUTION_SECONDS.observe(seconds)


# The executor replacements counted so far, by pool (each pool keeps a running total).
_replaced_seen: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def read_services(services: Any) -> None:
    """Set the gauges from `services` (runtime.api.services.Services) as they stand now."""
    pool = services.executors.stats()
    for state in ("alive", "idle", "starting"):
        EXECUTORS.labels(state).set(pool[state])
    seen = _replaced_seen.get(services.executors, 0)
    if pool["replaced"] > seen:
        EXECUTORS_REPLACED.inc(pool["replaced"] - seen)
        _replaced_seen[services.executors] = pool["replaced"]
    stats = services.store.pool.get_stats()
    DATABASE_CONNECTIONS.labels("open").set(stats.get("pool_size", 0))
    DATABASE_CONNECTIONS.labels("idle").set(stats.get("pool_available", 0))
    DATABASE_CONNECTIONS.labels("waiting").set(stats.get("requests_waiting", 0))
    RECORDS_WAITING.set(services.store.records_behind.waiting)


def exposition() -> bytes:
    """Every metric in Prometheus's text format: this process's, or all the server processes' summed."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(_REGISTRY)


def forget_ended_processes() -> None:
    """Drop from the gauges' sums the server processes that ended without saying so (a crash: the server
    starts another in their place)."""
    directory = os.environ.get(MULTIPROCESS_ENV)
    if not directory:
        return
    pids = set()
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            if name.startswith("gauge_live") and name.endswith(".db"):
                pids.add(int(name.rsplit("_", 1)[1].removesuffix(".db")))
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
        except OSError:
            pass  # alive, another user's


def process_stopped() -> None:
    """This server process stops: its gauges leave the sums (its counters stay counted)."""
    if os.environ.get(MULTIPROCESS_ENV):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
