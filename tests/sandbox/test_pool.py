"""The executor pool: results cross processes intact; a dead or hung executor is replaced."""

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runtime.limits import Limits
from runtime.sandbox import ActionTimeout, CompiledAction, ExecutionResult, PlatformError, compile_action, execute
from runtime.sandbox.pool import SCRUBBED_ENVIRONMENT, ExecutorPool

# Only ever an upper bound, to turn a hang into a failure; no test depends on how fast anything is.
HANG_S = 30.0
MARGIN_S = 0.5

EVENT = {"user": {"user_id": "u"}, "request": {"hostname": "h", "ip": "192.0.2.1"}, "authentication": {"methods": []}}
SECRETS = {"SESSION_TOKEN_SECRET": "s" * 32}


@pytest.fixture(scope="module")
def pool() -> Iterator[ExecutorPool]:
    """Two executors, started while the platform's credentials are in the environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", "postgresql://must-not-reach-executors")
        patch.setenv("TOLLGATE_MASTER_KEY", "must-not-reach-executors")
        with ExecutorPool(processes=2, deadline_margin_s=MARGIN_S) as pool:
            yield pool


@pytest.fixture(scope="module")
def busy_loop() -> CompiledAction:
    return compile_action("exports.onExecutePostLogin = async () => { while (true) {} };")


def wait_for(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + HANG_S
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what} after {HANG_S:g} s"
        time.sleep(0.002)


def is_full(pool: ExecutorPool) -> bool:
    stats = pool.stats()
    return stats["alive"] == stats["size"] == len(pool.pids())


def is_gone(pid: int) -> bool:
    """Whether process `pid` has ended and been reaped (by the pool, whose children they are)."""
    return not os.path.exists(f"/proc/{pid}")


def alive(pool: ExecutorPool) -> int:
    """Executors alive as the pool sees them (a killed one counts until the pool has reaped it)."""
    return pool.stats()["alive"]


class Call:
    """One pool.execute in a thread of its own: what it returned or raised."""

    def __init__(self, pool: ExecutorPool, action: CompiledAction, limits: Limits, event: dict[str, Any]) -> None:
        self.outcome: ExecutionResult | PlatformError | None = None
        self._thread = threading.Thread(target=self._run, args=(pool, action, limits, event))
        self._thread.start()

    def _run(self, pool: ExecutorPool, action: CompiledAction, limits: Limits, event: dict[str, Any]) -> None:
        try:
            self.outcome = pool.execute(action, "onExecutePostLogin", event, limits=limits)
        except PlatformError as exc:
            self.outcome = exc

    def result(self) -> ExecutionResult | PlatformError | None:
        self._thread.join(HANG_S)
        assert not self._thread.is_alive(), f"the call did not return within {HANG_S:g} s"
        return self.outcome


def busy_pid(pool: ExecutorPool) -> int:
    """The executor that runs the one request in flight."""
    wait_for(lambda: pool.pids(busy_only=True), "the execution to start")
    (pid,) = pool.pids(busy_only=True)
    return pid


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


def test_failures_cross_the_pipe_with_their_class(pool: ExecutorPool, busy_loop: CompiledAction) -> None:
    """A limit hit in an executor comes back as the same typed error."""
    result = pool.execute(busy_loop, "onExecutePostLogin", {}, limits=Limits(fuel=10_000_000))
    assert isinstance(result.error, ActionTimeout) and result.error.limit == "fuel"


def test_an_executor_refuses_bytecode_that_differs_from_its_digest_and_carries_on(pool: ExecutorPool) -> None:
    """Altered bytecode on the pipe fails that execution closed; the executor answers the next one."""
    action = compile_action("exports.onExecutePostLogin = async (event, api) => { api.access.deny('no'); };")
    altered = compile_action("exports.onExecutePostLogin = async (event, api) => { api.access.deny('no'); };")
    changed = bytearray(altered.bytecode)
    changed[-1] ^= 0xFF
    object.__setattr__(altered, "bytecode", bytes(changed))  # as a damaged store row would arrive
    pids = set(pool.pids())
    for _ in range(2):  # each executor gets it
        with pytest.raises(PlatformError, match="does not match its digest"):
            pool.execute(altered, "onExecutePostLogin", EVENT)
    assert set(pool.pids()) == pids
    assert pool.execute(action, "onExecutePostLogin", EVENT).commands == [{"type": "deny", "reason": "no"}]


def test_the_guest_wall_clock_limit_is_not_taken_for_a_hang(pool: ExecutorPool, busy_loop: CompiledAction) -> None:
    """An action that runs into its own wall_ms ends as action_timeout; its executor is kept."""
    before = pool.stats()
    result = pool.execute(busy_loop, "onExecutePostLogin", {}, limits=Limits(fuel=50_000_000_000, wall_ms=100))
    assert isinstance(result.error, ActionTimeout) and result.error.limit == "wall_ms"
    assert pool.stats()["replaced"] == before["replaced"]


def test_executions_from_many_threads_all_complete(pool: ExecutorPool, custom_factor: CompiledAction) -> None:
    """The pool is safe to use from several threads at once."""
    results: list[bool] = []

    def worker() -> None:
        for _ in range(20):
            r = pool.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS)
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


def test_ctrl_c_leaves_executors_to_the_pool(custom_factor: CompiledAction) -> None:
    """SIGINT (Ctrl+C reaches every process in the terminal's group) does not end an executor: it goes on
    answering, and stops when its pool closes."""
    with ExecutorPool(processes=1, deadline_margin_s=MARGIN_S) as own:
        (pid,) = own.pids()
        os.kill(pid, signal.SIGINT)
        time.sleep(0.2)
        assert own.pids() == [pid]
        assert own.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS).ok
        assert own.stats()["replaced"] == 0
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), "the executor to stop with its pool")


def test_an_executor_killed_mid_execution_fails_that_execution_only(
    pool: ExecutorPool, busy_loop: CompiledAction, custom_factor: CompiledAction
) -> None:
    """SIGKILL during a long execution: that call fails closed at once, the pool carries on at full size."""
    replaced = pool.stats()["replaced"]
    call = Call(pool, busy_loop, Limits(fuel=50_000_000_000, wall_ms=20_000), {})
    pid = busy_pid(pool)
    os.kill(pid, signal.SIGKILL)
    outcome = call.result()
    assert isinstance(outcome, PlatformError) and "failed" in outcome.message
    assert pid not in pool.pids()
    assert pool.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS).ok
    wait_for(lambda: is_full(pool), "the replacement executor")
    assert pool.stats()["replaced"] == replaced + 1


def test_a_stopped_executor_misses_its_deadline_and_is_replaced(
    pool: ExecutorPool, busy_loop: CompiledAction, custom_factor: CompiledAction
) -> None:
    """SIGSTOP during an execution is a hang the guest's limits cannot end: the host's deadline does."""
    call = Call(pool, busy_loop, Limits(fuel=50_000_000_000, wall_ms=500), {})
    pid = busy_pid(pool)
    os.kill(pid, signal.SIGSTOP)
    outcome = call.result()
    assert isinstance(outcome, PlatformError), outcome
    assert outcome.message == "The executor running the action stopped answering; it was replaced"
    assert pid not in pool.pids()
    wait_for(lambda: is_gone(pid), "the stopped executor to be killed")
    assert pool.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS).ok
    wait_for(lambda: is_full(pool), "the replacement executor")


def test_a_request_too_big_for_the_pipe_does_not_block_on_a_stopped_executor(
    pool: ExecutorPool, custom_factor: CompiledAction
) -> None:
    """Writing a request to an executor that stopped reading fails after the margin instead of blocking."""
    stopped = pool.pids()
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        call = Call(pool, custom_factor, Limits(), {**EVENT, "padding": "x" * (8 << 20)})
        outcome = call.result()
    finally:
        for pid in set(stopped) & set(pool.pids()):
            os.kill(pid, signal.SIGCONT)
    assert isinstance(outcome, PlatformError) and "stopped answering" in outcome.message
    assert pool.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS).ok
    wait_for(lambda: is_full(pool), "the replacement executor")


def test_executors_that_die_while_idle_are_replaced_without_failing_an_execution(
    pool: ExecutorPool, custom_factor: CompiledAction
) -> None:
    """No request is sent to a dead executor; the replacements hold no credentials either."""
    replaced = pool.stats()["replaced"]
    killed = pool.pids()
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: alive(pool) == 0, "the executors to die")
    for _ in range(pool.size + 1):
        assert pool.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS).ok
    wait_for(lambda: is_full(pool), "the replacement executors")
    assert pool.stats()["replaced"] == replaced + len(killed)
    assert not set(pool.pids()) & set(killed)
    for names in pool.environments():
        assert not set(names) & set(SCRUBBED_ENVIRONMENT)


def test_concurrent_callers_survive_a_killed_executor(pool: ExecutorPool, custom_factor: CompiledAction) -> None:
    """8 threads x 20 executions while an executor is killed: each call succeeds or fails closed."""
    replaced = pool.stats()["replaced"]
    outcomes: list[bool | PlatformError] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            try:
                ok = pool.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS).ok
            except PlatformError as exc:
                ok_or_error: bool | PlatformError = exc
            else:
                ok_or_error = ok
            with lock:
                outcomes.append(ok_or_error)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: len(outcomes) >= 20, "the first executions")
    os.kill((pool.pids(busy_only=True) or pool.pids())[0], signal.SIGKILL)
    for t in threads:
        t.join(HANG_S)
        assert not t.is_alive(), f"a caller did not finish within {HANG_S:g} s"
    assert len(outcomes) == 160
    assert all(o is True or isinstance(o, PlatformError) for o in outcomes)
    wait_for(lambda: pool.stats()["replaced"] > replaced, "the killed executor to be dropped")
    wait_for(lambda: is_full(pool), "the replacement executor")
    assert pool.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS).ok


def test_one_caller_at_a_time_is_answered_by_the_same_warm_executor(
    pool: ExecutorPool, custom_factor: CompiledAction
) -> None:
    """Under light load the executor freed last answers next, so its caches stay warm."""
    wait_for(lambda: is_full(pool), "the pool to be full")
    assert pool.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS).ok
    warm = pool._idle[-1].pid
    for _ in range(5):
        assert pool.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS).ok
        assert pool._idle[-1].pid == warm
    assert sorted(pool.pids()) == sorted(e.pid for e in pool._idle), "the other executor stays ready"


def test_a_replacement_that_cannot_start_is_retried_on_the_next_request(
    pool: ExecutorPool, custom_factor: CompiledAction, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While executors cannot start, the pool runs on what it has and fails closed with none; then it grows back."""
    # An executor started with this setting fails while loading its engine.
    monkeypatch.setenv("TOLLGATE_KEEP_RESIDENT_BYTES", "not a number")
    failures = pool.stats()["start_failures"]
    first, second = pool.pids()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: alive(pool) == 1, "the first executor to die")
    for _ in range(pool.size):  # each request checks the free executors and replaces the dead one
        assert pool.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS).ok
    wait_for(lambda: pool.stats()["start_failures"] > failures, "the replacement to fail")
    assert pool.pids() == [second]
    assert pool.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS).ok

    os.kill(second, signal.SIGKILL)
    wait_for(lambda: alive(pool) == 0, "the second executor to die")
    with pytest.raises(PlatformError, match="No executor could be started"):
        pool.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS)

    monkeypatch.delenv("TOLLGATE_KEEP_RESIDENT_BYTES")
    wait_for(lambda: pool.stats()["starting"] == 0, "the last failing start to end")

    def recovered() -> bool:
        try:
            pool.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS)
        except PlatformError:
            return False
        return is_full(pool)

    wait_for(recovered, "the pool to grow back to its size")


def test_closing_the_pool_ends_executions_in_flight_and_refuses_new_ones(
    busy_loop: CompiledAction, custom_factor: CompiledAction
) -> None:
    pool = ExecutorPool(processes=1)
    call = Call(pool, busy_loop, Limits(fuel=50_000_000_000, wall_ms=20_000), {})
    pid = busy_pid(pool)
    pool.close()
    assert isinstance(call.result(), PlatformError)
    assert is_gone(pid)
    pool.close()
    with pytest.raises(PlatformError, match="closed"):
        pool.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS)


def test_executors_keep_the_actions_they_ran_and_get_a_forgotten_one_whole() -> None:
    """Actions are sent once per executor and named after; one the executor lacks is sent again whole."""
    claims = [
        compile_action(f"exports.onExecutePostLogin = async (e, api) => {{ api.idToken.setCustomClaim('n', {n}); }};")
        for n in range(3)
    ]
    with ExecutorPool(processes=1, deadline_margin_s=MARGIN_S) as single:
        for _ in range(2):
            for n, action in enumerate(claims):
                result = single.execute(action, "onExecutePostLogin", EVENT)
                assert result.commands == [{"type": "set_claim", "token": "id", "key": "n", "value": n}]
        (executor,) = single._all
        assert executor.actions == {a.bytecode_sha256 for a in claims}
        stranger = compile_action("exports.onExecutePostLogin = async (e, api) => { api.access.deny('x'); };")
        executor.actions.add(stranger.bytecode_sha256)  # as if sent before, but the executor never had it
        assert single.execute(stranger, "onExecutePostLogin", EVENT).commands == [{"type": "deny", "reason": "x"}]


def test_asyncio_callers_get_the_same_results_and_failures(
    pool: ExecutorPool, busy_loop: CompiledAction, custom_factor: CompiledAction
) -> None:
    """execute_async: results as execute's; many at once; a killed executor fails its call only."""
    import asyncio

    async def scenario() -> None:
        kwargs: dict[str, Any] = {"secrets": SECRETS, "limits": Limits()}
        results = await asyncio.gather(
            *(pool.execute_async(custom_factor, "onExecutePostLogin", EVENT, **kwargs) for _ in range(20))
        )
        assert all(r.ok and r.commands[0]["type"] == "redirect" for r in results)
        slow = asyncio.create_task(
            pool.execute_async(busy_loop, "onExecutePostLogin", EVENT, limits=Limits(wall_ms=20_000, fuel=10**12))
        )
        deadline = time.monotonic() + HANG_S
        while not (busy := pool.pids(busy_only=True)) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        os.kill(busy[0], signal.SIGKILL)
        with pytest.raises(PlatformError, match="failed; it was replaced"):
            await slow
        after = await pool.execute_async(custom_factor, "onExecutePostLogin", EVENT, **kwargs)
        assert after.ok

    asyncio.run(scenario())
    wait_for(lambda: pool.stats()["alive"] == pool.size, "the pool to be whole again")


def test_an_asyncio_caller_does_not_wait_past_the_deadline_of_a_stopped_executor(
    pool: ExecutorPool, busy_loop: CompiledAction
) -> None:
    import asyncio

    async def scenario() -> None:
        call = asyncio.create_task(
            pool.execute_async(busy_loop, "onExecutePostLogin", EVENT, limits=Limits(wall_ms=300, fuel=10**12))
        )
        deadline = time.monotonic() + HANG_S
        while not (busy := pool.pids(busy_only=True)) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        os.kill(busy[0], signal.SIGSTOP)
        with pytest.raises(PlatformError, match="stopped answering"):
            await asyncio.wait_for(call, HANG_S)

    asyncio.run(scenario())
    wait_for(lambda: pool.stats()["alive"] == pool.size, "the pool to be whole again")


def test_asyncio_callers_wait_for_a_busy_pool_on_the_loop_without_threads(
    busy_loop: CompiledAction, custom_factor: CompiledAction, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every executor busy, event-loop callers queue on the loop; a cancelled one leaves the queue."""
    import asyncio

    import anyio.to_thread

    def no_threads(*_: object, **__: object) -> None:
        raise AssertionError("an event-loop caller waited in a worker thread")

    monkeypatch.setattr(anyio.to_thread, "run_sync", no_threads)
    monkeypatch.setattr(asyncio, "to_thread", no_threads)

    async def scenario(single: ExecutorPool) -> None:
        slow = asyncio.create_task(
            single.execute_async(busy_loop, "onExecutePostLogin", EVENT, limits=Limits(wall_ms=400, fuel=10**12))
        )
        deadline = time.monotonic() + HANG_S
        while not single.pids(busy_only=True) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        threads = threading.active_count()
        first = asyncio.create_task(single.execute_async(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS))
        rest = [
            asyncio.create_task(single.execute_async(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS))
            for _ in range(5)
        ]
        await asyncio.sleep(0.05)
        assert len(single._async_waiters) == 6, "all six wait for the one executor"
        assert threading.active_count() == threads
        first.cancel()  # the longest waiter gives up and leaves the queue
        assert (await slow).error is not None
        results = await asyncio.wait_for(asyncio.gather(*rest), HANG_S)
        assert all(r.ok and r.commands[0]["type"] == "redirect" for r in results)
        with pytest.raises(asyncio.CancelledError):
            await first
        assert not single._async_waiters

    with ExecutorPool(processes=1) as single:
        asyncio.run(scenario(single))


def test_a_caller_cancelled_while_its_execution_runs_leaves_the_executor_to_finish_and_serve_the_next(
    busy_loop: CompiledAction, custom_factor: CompiledAction
) -> None:
    """A caller that gives up (a client gone) does not cost an executor: the execution ends by its own
    limits, its answer is read and dropped, and the same process runs the next request, which waited."""
    import asyncio

    async def scenario(single: ExecutorPool) -> None:
        (pid,) = single.pids()
        slow = asyncio.create_task(
            single.execute_async(busy_loop, "onExecutePostLogin", EVENT, limits=Limits(wall_ms=300, fuel=10**12))
        )
        deadline = time.monotonic() + HANG_S
        while not single.pids(busy_only=True) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        waiting = asyncio.create_task(single.execute_async(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS))
        await asyncio.sleep(0.05)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert single.pids(busy_only=True) == [pid], "the cancelled execution still runs on its executor"
        result = await asyncio.wait_for(waiting, HANG_S)
        assert result.ok and result.commands[0]["type"] == "redirect"
        assert single.pids() == [pid]
        assert single.stats()["replaced"] == 0

    with ExecutorPool(processes=1) as single:
        asyncio.run(scenario(single))


@pytest.mark.parametrize(("sig", "message"), [(signal.SIGKILL, "failed; it was replaced"),
                                              (signal.SIGSTOP, "stopped answering")])  # fmt: skip
def test_a_request_queued_behind_a_failing_execution_runs_on_another_executor(
    busy_loop: CompiledAction, custom_factor: CompiledAction, monkeypatch: pytest.MonkeyPatch, sig: int, message: str
) -> None:
    """An event-loop caller that finds the executor busy writes its request behind the running one; when
    the executor dies or hangs, the running execution fails closed and the queued one, which the executor
    never started, runs on the replacement."""
    import asyncio

    from runtime.sandbox import pool as pool_module

    monkeypatch.setattr(pool_module, "_PIPELINE_FRESH_S", HANG_S)  # whatever the machine's pace

    async def scenario(single: ExecutorPool) -> None:
        running = asyncio.create_task(
            single.execute_async(busy_loop, "onExecutePostLogin", EVENT, limits=Limits(wall_ms=300, fuel=10**12))
        )
        await asyncio.sleep(0)
        queued = asyncio.create_task(single.execute_async(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS))
        await asyncio.sleep(0)
        (executor,) = single._all
        assert len(executor.calls) == 2 and not single._async_waiters, "the second request waits in the pipe"
        os.kill(executor.pid, sig)
        with pytest.raises(PlatformError, match=message):
            await asyncio.wait_for(running, HANG_S)
        result = await asyncio.wait_for(queued, HANG_S)
        assert result.ok and result.commands[0]["type"] == "redirect"
        assert single.pids() != [executor.pid]
        assert single.stats()["replaced"] == 1

    with ExecutorPool(processes=1, deadline_margin_s=MARGIN_S) as single:
        asyncio.run(scenario(single))


def test_requests_queued_in_the_pipe_are_answered_in_order_and_keep_first_come_first_served(
    custom_factor: CompiledAction, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many event-loop callers on one executor: each gets the answer to its own request (the event's user
    comes back inside the redirect's signed token), whether it waited in the pipe or for the executor."""
    import asyncio
    from urllib.parse import parse_qs, urlsplit

    import jwt

    from runtime.sandbox import pool as pool_module

    monkeypatch.setattr(pool_module, "_PIPELINE_FRESH_S", HANG_S)
    queued_in_pipe = []

    async def scenario(single: ExecutorPool) -> None:
        async def one(i: int) -> str:
            event = {**EVENT, "user": {"user_id": f"user-{i}"}}
            pending = single.execute_async(custom_factor, "onExecutePostLogin", event, secrets=SECRETS)
            task = asyncio.ensure_future(pending)
            await asyncio.sleep(0)
            queued_in_pipe.append(len(single._all[0].calls))
            result = await task
            assert result.ok, result.error
            (command,) = [c for c in result.commands if c["type"] == "redirect"]
            (token,) = parse_qs(urlsplit(command["url"]).query)["session_token"]
            claims = jwt.decode(token, SECRETS["SESSION_TOKEN_SECRET"], algorithms=["HS256"])
            return str(claims["user_id"])

        users = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(40))), HANG_S)
        assert users == [f"user-{i}" for i in range(40)]

    with ExecutorPool(processes=1) as single:
        asyncio.run(scenario(single))
    assert max(queued_in_pipe) == 2, "some requests waited in the pipe"


def test_an_asyncio_caller_waiting_for_an_executor_fails_closed_when_none_can_start(
    busy_loop: CompiledAction, custom_factor: CompiledAction, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event-loop caller waiting on a pool whose last executor died and cannot be replaced is not left hanging."""
    import asyncio

    async def scenario(single: ExecutorPool) -> None:
        slow = asyncio.create_task(
            single.execute_async(busy_loop, "onExecutePostLogin", EVENT, limits=Limits(wall_ms=20_000, fuel=10**12))
        )
        deadline = time.monotonic() + HANG_S
        while not (busy := single.pids(busy_only=True)) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        waiting = asyncio.create_task(single.execute_async(custom_factor, "onExecutePostLogin", EVENT))
        await asyncio.sleep(0.05)
        monkeypatch.setenv("TOLLGATE_KEEP_RESIDENT_BYTES", "not a number")  # replacements fail to start
        os.kill(busy[0], signal.SIGKILL)
        with pytest.raises(PlatformError):
            await slow
        with pytest.raises(PlatformError, match="No executor could be started"):
            await asyncio.wait_for(waiting, HANG_S)

    with ExecutorPool(processes=1) as single:
        asyncio.run(scenario(single))


def test_a_freed_executor_goes_to_the_longest_waiting_caller_not_to_a_newcomer(
    busy_loop: CompiledAction, custom_factor: CompiledAction
) -> None:
    """First come, first served: a caller arriving as an executor is freed queues behind those already waiting."""
    import asyncio

    async def scenario(single: ExecutorPool) -> None:
        order: list[str] = []

        async def call(name: str, action: CompiledAction = custom_factor, limits: Limits | None = None) -> None:
            await single.execute_async(action, "onExecutePostLogin", EVENT, secrets=SECRETS, limits=limits or Limits())
            order.append(name)

        slow = asyncio.create_task(call("slow", busy_loop, Limits(wall_ms=300, fuel=10**12)))
        deadline = time.monotonic() + HANG_S
        while not single.pids(busy_only=True) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        waiting = asyncio.create_task(call("waiting"))
        await asyncio.sleep(0.05)
        assert len(single._async_waiters) == 1
        newcomers: list[asyncio.Task[None]] = []
        release = single._release

        def release_then_arrive(executor: Any) -> None:
            release(executor)
            if not newcomers:  # a new caller, scheduled the moment the executor is freed
                newcomers.append(asyncio.get_running_loop().create_task(call("newcomer")))

        single._release = release_then_arrive  # type: ignore[method-assign]
        await asyncio.wait_for(asyncio.gather(slow, waiting, *newcomers), HANG_S)
        await asyncio.wait_for(newcomers[0], HANG_S)
        assert order == ["slow", "waiting", "newcomer"]

    with ExecutorPool(processes=1) as single:
        asyncio.run(scenario(single))


def test_many_asyncio_callers_with_kills_and_cancellations_all_end_and_lose_no_executor(
    custom_factor: CompiledAction,
) -> None:
    """Hundreds of queued event-loop callers, executors killed and waiters cancelled meanwhile: every call
    ends (a result, a PlatformError or its cancellation), no waiter is left behind, and the pool is whole again."""
    import asyncio
    import random

    rng = random.Random(7)

    async def scenario(pool: ExecutorPool) -> None:
        async def one() -> bool:
            await asyncio.sleep(rng.random() * 0.3)
            try:
                return (await pool.execute_async(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS)).ok
            except PlatformError:
                return False

        tasks = [asyncio.create_task(one()) for _ in range(200)]
        for _ in range(2):
            await asyncio.sleep(0.1)
            os.kill(rng.choice(pool.pids()), signal.SIGKILL)
        for task in rng.sample(tasks, 10):
            task.cancel()
        done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), HANG_S)
        succeeded = sum(d is True for d in done)
        assert succeeded >= 150, done
        assert all(d is True or d is False or isinstance(d, asyncio.CancelledError) for d in done)
        assert not pool._async_waiters

    with ExecutorPool(processes=2) as pool:
        asyncio.run(scenario(pool))
        wait_for(lambda: len(pool._idle) == pool.size and pool.stats()["alive"] == pool.size, "the pool to be whole")
        assert pool.execute(custom_factor, "onExecutePostLogin", EVENT, secrets=SECRETS).ok
