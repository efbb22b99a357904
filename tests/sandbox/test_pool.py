"""The executor pool: results cross processes intact; a dead executor is replaced."""

import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.limits import Limits
from runtime.sandbox import ActionTimeout, CompiledAction, PlatformError, execute
from runtime.sandbox.pool import SCRUBBED_ENVIRONMENT, ExecutorPool


@pytest.fixture(scope="module")
def pool() -> Iterator[ExecutorPool]:
    """Two executors, started while the platform's credentials are in the environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", "postgresql://must-not-reach-executors")
        patch.setenv("TOLLGATE_MASTER_KEY", "must-not-reach-executors")
        with ExecutorPool(processes=2) as pool:
            yield pool


def test_results_from_the_pool_match_in_process_results(
    pool: ExecutorPool, custom_factor: CompiledAction, login_event: dict[str, Any]
) -> None:
    """The same execution gives the same commands, logs and error in an executor as in-process."""
    seed = bytes(range(32))
    kwargs: dict[str, Any] = {"secrets": {"SESSION_TOKEN_SECRET": "k" * 40}, "seed": seed, "now_ms": 1.8e12}
    remote = pool.execute(custom_factor, "onExecutePostLogin", login_event, **kwargs)
    local = execute(custom_factor, "onExecutePostLogin", login_event, **kwargs)
    assert remote.ok and remote.commands == local.commands and remote.logs == local.logs
    assert remote.stats.fuel_used == local.stats.fuel_used
    assert remote.trace.seed == seed.hex()


def test_failures_cross_the_pipe_with_their_class(pool: ExecutorPool, custom_factor: CompiledAction) -> None:
    """A limit hit in an executor comes back as the same typed error."""
    from runtime.sandbox import compile_action

    looping = compile_action("exports.onExecutePostLogin = async () => { while (true) {} };")
    result = pool.execute(looping, "onExecutePostLogin", {}, limits=Limits(fuel=10_000_000))
    assert isinstance(result.error, ActionTimeout) and result.error.limit == "fuel"


def test_executions_from_many_threads_all_complete(pool: ExecutorPool, custom_factor: CompiledAction) -> None:
    """The pool is safe to use from several threads at once."""
    results: list[bool] = []
    event = {
        "user": {"user_id": "u"},
        "request": {"hostname": "h", "ip": "192.0.2.1"},
        "authentication": {"methods": []},
    }

    def worker() -> None:
        for _ in range(20):
            r = pool.execute(custom_factor, "onExecutePostLogin", event, secrets={"SESSION_TOKEN_SECRET": "s" * 32})
            results.append(r.ok)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 80


def test_executors_do_not_hold_database_credentials(pool: ExecutorPool) -> None:
    """DATABASE_URL and the platform keys are removed from every executor's environment."""
    environments = pool.environments()
    assert len(environments) == pool.size
    for names in environments:
        assert "PATH" in names
        assert not set(names) & set(SCRUBBED_ENVIRONMENT)


def test_a_killed_executor_is_replaced(pool: ExecutorPool, custom_factor: CompiledAction) -> None:
    """Killing an executor fails the execution it was given; the pool then works as before."""
    event = {"user": {"user_id": "u"}, "request": {"hostname": "h", "ip": "192.0.2.1"}}
    for executor in list(pool._all):
        os.kill(executor.process.pid, signal.SIGKILL)
        executor.process.join()
    failures = 0
    for _ in range(pool.size):
        try:
            pool.execute(custom_factor, "onExecutePostLogin", event, secrets={"SESSION_TOKEN_SECRET": "s" * 32})
        except PlatformError as exc:
            failures += 1
            assert "failed" in exc.message
    assert failures == pool.size
    after = pool.execute(custom_factor, "onExecutePostLogin", event, secrets={"SESSION_TOKEN_SECRET": "s" * 32})
    assert after.ok
