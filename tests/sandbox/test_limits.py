"""Every limit ends a runaway execution with its class, and the next execution works."""

import pytest

from runtime.limits import KiB, Limits, LimitsError, MiB
from runtime.sandbox import (
    ActionIncomplete,
    ActionLimitExceeded,
    ActionMemoryExceeded,
    ActionThrew,
    ActionTimeout,
    ExecutionResult,
)
from tests.helpers import logged, run

SMALL = Limits(fuel=50_000_000, wall_ms=2_000)


def assert_next_execution_works() -> None:
    result = run("console.log('still healthy'); api.access.deny('fine')")
    assert result.ok, result.error
    assert logged(result) == ["still healthy"]
    assert result.commands == [{"type": "deny", "reason": "fine"}]


def failed_with(result: ExecutionResult, cls: type, limit: str | None = None) -> None:
    assert result.status == "failed"
    assert isinstance(result.error, cls), result.error
    if limit is not None:
        assert result.error.limit == limit  # type: ignore[attr-defined]
    assert result.commands == []


def test_infinite_loop_is_stopped_by_fuel() -> None:
    """`while (true) {}` runs out of fuel and ends as action_timeout (limit: fuel)."""
    result = run("while (true) {}", limits=SMALL)
    failed_with(result, ActionTimeout, "fuel")
    assert result.error.error_class == "action_timeout"
    assert result.stats.fuel_used == SMALL.fuel
    assert_next_execution_works()


def test_infinite_loop_with_plenty_of_fuel_is_stopped_by_the_wall_clock() -> None:
    """With fuel set high, the epoch deadline stops the loop after about wall_ms."""
    limits = Limits(fuel=50_000_000_000, wall_ms=200)
    result = run("while (true) {}", limits=limits)
    failed_with(result, ActionTimeout, "wall_ms")
    assert 150_000 <= result.stats.duration_us < 5_000_000
    assert_next_execution_works()


def test_the_wall_clock_holds_after_the_idle_engine_stopped_ticking() -> None:
    """An idle process's epoch ticker sleeps (no wakeups while nothing runs); the next guest call wakes
    it, so a loop is still stopped by the wall clock, and it sleeps again once the process is idle."""
    import time

    from runtime.sandbox import _engine

    wasm = _engine.engine().wasm

    def asleep() -> bool:
        deadline = time.monotonic() + 30
        while not wasm.ticker_asleep and time.monotonic() < deadline:
            time.sleep(0.005)
        return wasm.ticker_asleep

    wasm.set_ticker_linger(2)
    try:
        assert asleep(), "the ticker did not go to sleep with nothing running"
        result = run("while (true) {}", limits=Limits(fuel=50_000_000_000, wall_ms=200))
        failed_with(result, ActionTimeout, "wall_ms")
        assert 150_000 <= result.stats.duration_us < 5_000_000
        assert asleep(), "the ticker did not go back to sleep"
        assert_next_execution_works()
    finally:
        wasm.set_ticker_linger(wasm.TICK_LINGER)


def test_a_caught_timeout_still_times_out() -> None:
    """The guest cannot catch a fuel trap: the host decides."""
    result = run("try { while (true) {} } catch (e) {} api.access.deny('escaped')", limits=SMALL)
    failed_with(result, ActionTimeout, "fuel")


def test_endless_microtasks_run_out_of_fuel() -> None:
    """`for (;;) await null` keeps the job queue busy until the fuel is spent."""
    result = run("for (;;) await null;", limits=SMALL)
    failed_with(result, ActionTimeout, "fuel")
    assert_next_execution_works()


def test_a_promise_that_never_settles_is_incomplete_at_once() -> None:
    """`await new Promise(() => {})`: the queue is empty and the promise pending."""
    result = run("await new Promise(() => {});")
    failed_with(result, ActionIncomplete)
    assert result.error.error_class == "action_incomplete"
    assert result.stats.duration_us < 1_000_000
    assert_next_execution_works()


def test_an_interval_that_never_stops_runs_out_of_fuel() -> None:
    """Virtual timers keep firing until the fuel limit ends them."""
    result = run("setInterval(() => {}, 10); await new Promise(() => {});", limits=SMALL)
    failed_with(result, ActionTimeout, "fuel")


@pytest.mark.parametrize(
    "bomb",
    [
        "const a = []; while (true) a.push(new Array(1000).fill(1));",
        "const keep = []; for (let n = 1; ; n *= 2) keep.push('x'.repeat(n));",
        "const parts = []; while (true) parts.push('y'.repeat(65536) + parts.length);",
        "new ArrayBuffer(1024 * 1024 * 1024);",
    ],
    ids=["arrays", "doubling-strings", "many-strings", "huge-buffer"],
)
def test_memory_bombs_end_as_action_memory(bomb: str) -> None:
    """Allocating past memory_bytes ends the execution as action_memory."""
    result = run(bomb, limits=Limits(memory_bytes=16 * MiB))
    failed_with(result, ActionMemoryExceeded, "memory_bytes")
    assert result.error.error_class == "action_memory"
    assert_next_execution_works()


def test_a_caught_memory_bomb_still_ends_as_action_memory() -> None:
    """`try { bomb() } catch {}` does not save the action."""
    result = run(
        "try { const a = []; while (true) a.push('z'.repeat(4096) + a.length); } catch (e) {}\n"
        "api.access.deny('escaped');",
        limits=Limits(memory_bytes=16 * MiB),
    )
    failed_with(result, ActionMemoryExceeded)


def test_string_ropes_hit_the_string_length_limit_cleanly() -> None:
    """Doubling a string forever ends in the engine's own error, not a crash."""
    result = run("let s = 'x'; while (true) s = s + s;")
    failed_with(result, ActionThrew)
    assert "string too long" in result.error.message
    assert_next_execution_works()


def test_runaway_recursion_is_a_clean_range_error() -> None:
    """Deep recursion raises a RangeError the action sees; uncaught, it is an action_error."""
    result = run("function f(n) { return f(n + 1) + 1; } f(0);")
    failed_with(result, ActionThrew)
    assert result.error.name == "RangeError"
    assert "stack" in result.error.message.lower()
    assert_next_execution_works()


def test_caught_recursion_lets_the_action_go_on() -> None:
    """Like Node, a caught stack overflow is recoverable within the stack limit."""
    result = run("function f() { return f() + 1; } try { f() } catch (e) { console.log(e.name) }")
    assert result.ok, result.error
    assert logged(result) == ["RangeError"]


def test_catastrophic_regex_backtracking_runs_out_of_fuel() -> None:
    """A ReDoS pattern is just more instructions: the fuel limit ends it."""
    result = run("/^(a+)+$/.test('a'.repeat(40) + 'b');", limits=SMALL)
    failed_with(result, ActionTimeout, "fuel")
    assert_next_execution_works()


def test_a_hundred_thousand_log_calls_end_at_the_log_limit() -> None:
    """100,000 console.log calls pass the default log limit: action_limit (log_bytes), output kept."""
    result = run("for (let i = 0; i < 100000; i++) console.log(i);")
    failed_with(result, ActionLimitExceeded, "log_bytes")
    assert 1000 < len(result.logs) < 100_000, "the output up to the limit is kept for debugging"
    assert [e["message"] for e in result.logs[:3]] == ["0", "1", "2"]
    assert_next_execution_works()


def test_a_hundred_thousand_log_calls_fit_a_larger_log_limit() -> None:
    """With log_bytes raised, all 100,000 lines are returned in order."""
    result = run(
        "for (let i = 0; i < 100000; i++) console.log(i);", limits=Limits(log_bytes=4 * MiB, fuel=10_000_000_000)
    )
    assert result.ok, result.error
    assert len(result.logs) == 100_000
    assert result.logs[-1]["message"] == "99999"


def test_a_hundred_megabyte_result_is_refused() -> None:
    """A claim of 100 MB cannot be recorded: memory or output limit, never a crash."""
    result = run(
        "api.idToken.setCustomClaim('big', 'x'.repeat(100 * 1024 * 1024));",
        limits=Limits(memory_bytes=256 * MiB, fuel=10_000_000_000),
    )
    assert result.status == "failed"
    assert isinstance(result.error, ActionLimitExceeded | ActionMemoryExceeded)
    assert_next_execution_works()


def test_output_bytes_bounds_the_recorded_commands() -> None:
    """Commands past output_bytes end the execution as action_limit (output_bytes)."""
    result = run(
        "for (let i = 0; i < 100; i++) api.idToken.setCustomClaim('c' + i, 'v'.repeat(1000));",
        limits=Limits(output_bytes=16 * KiB),
    )
    failed_with(result, ActionLimitExceeded, "output_bytes")


def test_max_commands_bounds_the_number_of_commands() -> None:
    """The command after max_commands ends the execution as action_limit."""
    ok = run("for (let i = 0; i < 10; i++) api.access.deny('x');", limits=Limits(max_commands=10))
    assert ok.ok and len(ok.commands) == 10
    result = run("for (let i = 0; i < 11; i++) api.access.deny('x');", limits=Limits(max_commands=10))
    failed_with(result, ActionLimitExceeded, "max_commands")


def test_max_host_calls_bounds_crossings_to_the_host() -> None:
    """Token validations past max_host_calls end the execution as action_limit."""
    event = {"request": {"query": {"session_token": "a.b.c", "state": "s"}}, "user": {"user_id": "u"}}
    body = "for (let i = 0; i < 5; i++) { try { api.redirect.validateToken({secret: 'k'}) } catch (e) {} }"
    assert run(body, event, limits=Limits(max_host_calls=5)).ok
    result = run(body, event, limits=Limits(max_host_calls=4))
    failed_with(result, ActionLimitExceeded, "max_host_calls")


def test_stats_report_what_was_used() -> None:
    """Fuel, memory and duration are reported for every execution."""
    result = run("let s = 0; for (let i = 0; i < 10000; i++) s += i;")
    assert result.ok
    assert 0 < result.stats.fuel_used < result.limits.fuel
    assert result.stats.memory_peak_bytes > 0
    assert result.stats.duration_us > 0
    bigger = run("let s = 0; for (let i = 0; i < 100000; i++) s += i;")
    assert bigger.stats.fuel_used > result.stats.fuel_used


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fuel": 0}, "fuel must be at least 1"),
        ({"wall_ms": -5}, "wall_ms must be at least 1"),
        ({"memory_bytes": 1.5}, "memory_bytes must be a whole number"),
        ({"max_commands": True}, "max_commands must be a whole number"),
        ({"bogus": 1}, "unknown limit: bogus"),
    ],
)
def test_invalid_limits_are_refused(changes: dict[str, object], message: str) -> None:
    """Limits are whole numbers of at least 1, and only the known names."""
    with pytest.raises(LimitsError, match=message):
        Limits().replace(**changes)


def test_stack_bytes_bounds_the_recursion_depth() -> None:
    """A smaller stack_bytes gives a RangeError at a shallower depth."""
    body = "let depth = 0; function f() { depth++; f(); } try { f() } catch (e) { console.log(e.name, depth) }"
    shallow = run(body, limits=Limits(stack_bytes=32 * KiB))
    deep = run(body, limits=Limits(stack_bytes=160 * KiB))
    (name_shallow, depth_shallow), (name_deep, depth_deep) = (r.logs[0]["message"].split() for r in (shallow, deep))
    assert name_shallow == name_deep == "RangeError"
    assert 50 < int(depth_shallow) < int(depth_deep)


def test_tenant_limits_are_kept_per_set_of_overrides() -> None:
    """Each login asks for its tenant's limits: equal overrides give the same answer, others their own,
    and an unknown or unhashable override is refused every time."""
    from runtime.limits import TenantLimits

    first = TenantLimits.from_overrides({"fuel": 1_000_000, "max_concurrent_executions": 7})
    assert TenantLimits.from_overrides({"max_concurrent_executions": 7, "fuel": 1_000_000}) is first
    assert (first.execution.fuel, first.quotas.max_concurrent_executions) == (1_000_000, 7)
    other = TenantLimits.from_overrides({"fuel": 2_000_000})
    assert (other.execution.fuel, other.quotas.max_concurrent_executions) == (2_000_000, 50)
    assert TenantLimits.from_overrides({}).execution == Limits()
    for _ in range(2):
        with pytest.raises(LimitsError, match="unknown limit: nope"):
            TenantLimits.from_overrides({"nope": 1})
        with pytest.raises((LimitsError, TypeError)):
            TenantLimits.from_overrides({"fuel": [1]})  # type: ignore[dict-item]
