"""Nothing an execution does is visible to the next one: state, prototypes, memory."""

import secrets

from runtime.sandbox import compile_action, execute
from runtime.sandbox._engine import engine
from tests.helpers import handler_source, logged

POLLUTER = handler_source(
    """
    globalThis.leaked = 'global';
    Object.prototype.polluted = 'proto';
    Array.prototype.push = () => 'hijacked';
    JSON.stringify = () => 'hijacked';
    Math.random = () => 0.5;
    moduleState.count += 1;
    console.log(moduleState.count);
    """,
    prelude="const moduleState = { count: 0 };",
)
OBSERVER = handler_source(
    """
    const seen = [typeof globalThis.leaked, ({}).polluted, [1].push(2), JSON.stringify({a: 1}), Math.random() === 0.5];
    console.log(JSON.stringify(seen));
    api.idToken.setCustomClaim('ok', [1, 2]);
    """
)


def test_globals_prototypes_and_module_state_do_not_survive() -> None:
    """A global, a polluted prototype, replaced built-ins and module state are gone next time."""
    polluter = compile_action(POLLUTER)
    observer = compile_action(OBSERVER)
    for _ in range(3):
        result = execute(polluter, "onExecutePostLogin", {})
        assert logged(result) == ["1"], "module state starts fresh in every execution"
    result = execute(observer, "onExecutePostLogin", {})
    assert result.ok, result.error
    assert logged(result) == ['["undefined",null,2,"{\\"a\\":1}",false]']
    assert result.commands == [{"type": "set_claim", "token": "id", "key": "ok", "value": [1, 2]}]


def test_an_action_that_breaks_the_builtins_only_breaks_itself() -> None:
    """Replacing JSON.stringify or Array.prototype.push does not change how commands are recorded."""
    action = compile_action(
        handler_source(
            "JSON.stringify = () => { throw new Error('no') }; Array.prototype.push = null;"
            " api.access.deny('still recorded'); console.log('and logged');"
        )
    )
    result = execute(action, "onExecutePostLogin", {})
    assert result.ok, result.error
    assert result.commands == [{"type": "deny", "reason": "still recorded"}]
    assert logged(result) == ["and logged"]


def test_no_execution_finds_anothers_data_in_its_memory() -> None:
    """Canary: marked strings written by one execution appear nowhere in later instances' memory."""
    marker = "CANARY-" + secrets.token_hex(12)
    writer = compile_action(
        handler_source(
            "const keep = []; for (let i = 0; i < 200; i++) keep.push(event.marker + ':' + i);"
            " console.log(keep[0]); api.idToken.setCustomClaim('m', keep.slice(0, 50)); globalThis.k = keep;"
        )
    )
    result = execute(writer, "onExecutePostLogin", {"marker": marker}, secrets={"S": marker})
    assert result.ok and logged(result) == [f"{marker}:0"]

    reader = compile_action(handler_source("api.access.deny('x')"))
    handle = engine()
    needle = marker.encode()
    for _ in range(300):
        with handle.wasm.instance(fuel=10_000_000, wall_ms=1_000, memory_bytes=32 << 20) as inst:
            assert needle not in inst.read(0, inst.memory_size())
    for _ in range(20):
        after = execute(reader, "onExecutePostLogin", {})
        assert after.ok
        with handle.wasm.instance(fuel=10_000_000, wall_ms=1_000, memory_bytes=32 << 20) as inst:
            assert needle not in inst.read(0, inst.memory_size())


def test_the_same_action_gives_the_same_result_with_the_same_inputs() -> None:
    """Executions are deterministic given the event, seed and clock (the basis of replay)."""
    action = compile_action(
        handler_source(
            "const t = api.redirect.encodeToken({secret: 's'.repeat(32), payload: {r: Math.random()}});"
            " api.redirect.sendUserTo('https://f.example/x', {query: {t}}); console.log(crypto.randomUUID());"
        )
    )
    event = {"user": {"user_id": "u1"}, "request": {"hostname": "h.example", "ip": "192.0.2.1"}}
    seed = secrets.token_bytes(32)
    first = execute(action, "onExecutePostLogin", event, seed=seed, now_ms=1.7e12)
    second = execute(action, "onExecutePostLogin", event, seed=seed, now_ms=1.7e12)
    assert first.commands == second.commands and first.logs == second.logs
    other = execute(action, "onExecutePostLogin", event, now_ms=1.7e12)
    assert other.commands != first.commands


def test_a_deferred_drop_leaves_nothing_for_the_next_instance() -> None:
    """With drops deferred (as executors do until their answer is sent) the next instance is still clean."""
    marker = "DEFERRED-" + secrets.token_hex(12)
    writer = compile_action(handler_source("globalThis.k = [event.marker, event.marker + '!']; console.log(k[1]);"))
    handle = engine()
    wasm = handle.wasm
    assert execute(writer, "onExecutePostLogin", {"marker": "warm"}).ok  # the first run also loads the action ahead
    wasm.defer_drops = True
    try:
        result = execute(writer, "onExecutePostLogin", {"marker": marker})
        assert result.ok and logged(result) == [f"{marker}!"]
        assert len(wasm._deferred) == 1, "the writer's store waits for drop_deferred()"
        with wasm.instance(fuel=10_000_000, wall_ms=1_000, memory_bytes=32 << 20) as inst:
            assert marker.encode() not in inst.read(0, inst.memory_size())
        for _ in range(wasm.MAX_DEFERRED_DROPS + 3):
            assert execute(writer, "onExecutePostLogin", {"marker": marker}).ok
        assert len(wasm._deferred) == wasm.MAX_DEFERRED_DROPS, "past the bound, stores are dropped at once"
        wasm.drop_deferred()
        assert wasm._deferred == []
        for _ in range(20):
            with wasm.instance(fuel=10_000_000, wall_ms=1_000, memory_bytes=32 << 20) as inst:
                assert marker.encode() not in inst.read(0, inst.memory_size())
    finally:
        wasm.defer_drops = False
        wasm.drop_deferred()


def test_a_forked_child_makes_its_own_engine() -> None:
    """After a fork the child does not use the parent's engine (its ticker thread did not come along)."""
    import os

    parent = engine()
    action = compile_action(handler_source("api.access.deny('from the child')"))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running the parent's exit handlers
        try:
            result = execute(action, "onExecutePostLogin", {})
            ok = engine() is not parent and result.commands == [{"type": "deny", "reason": "from the child"}]
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert engine() is parent
    assert execute(action, "onExecutePostLogin", {}).ok
