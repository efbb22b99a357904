"""Actions loaded ahead: each executor loads an action's bytecode once and copies the pages that changed into
every fresh instance that runs it, instead of reading the bytecode in every execution."""

import json
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.limits import Limits, MiB
from runtime.sandbox import CompiledAction, ExecutionResult, compile_action, execute, executor
from runtime.sandbox import _engine as sandbox_engine
from runtime.sandbox._wasmtime import PAGE_BYTES, Pages, WasmFailure
from tests.helpers import handler_source, logged

ROOT = Path(__file__).resolve().parents[2]
SEED_ACTION = ROOT / "tenants" / "acme-bank" / "actions" / "custom-factor.js"
SEED_EVENT = ROOT / "tenants" / "acme-bank" / "events" / "first-login.json"
SECRETS = {"SESSION_TOKEN_SECRET": "a-test-secret-" + "s" * 32}
SEED = bytes(range(32))
NOW_MS = 1.8e12


def many_functions(count: int) -> str:
    """An action with `count` top-level functions: with a few hundred, loading it grows the sandbox's memory."""
    functions = "".join(f"function f{i}(a){{return {{k{i}:a}}.k{i}+{i}}}\n" for i in range(count))
    return (
        functions
        + f"exports.onExecutePostLogin = async (event, api) => {{ api.idToken.setCustomClaim('x', f{count - 1}(1)); }};\n"
    )


CASES = {
    "the seed action's redirect": (SEED_ACTION.read_text(), "seed"),
    "console output and timers": (
        handler_source(
            "console.log('a', {b: [1, 2]}); await new Promise((r) => setTimeout(r, 50)); console.warn(Date.now());"
        ),
        {},
    ),
    "randomness at the top level and in the handler": (
        handler_source(
            "api.idToken.setCustomClaim('r', [top, Math.random(), crypto.randomUUID()]);",
            prelude="const top = Math.random();",
        ),
        {},
    ),
    "an error with its line and column": (handler_source("const x = 1;\n  null.boom;"), {}),
    "a memory bomb": (handler_source("const a = []; for (;;) a.push('x'.repeat(1000) + a.length);"), {}),
    "an action that grows the memory when loaded": (many_functions(400), {}),
}


@pytest.fixture
def preloading() -> Iterator[None]:
    yield
    executor.PRELOAD = True


def run_both(
    action: CompiledAction, event: dict[str, Any], limits: Limits | None = None
) -> tuple[ExecutionResult, ExecutionResult]:
    results = []
    for preload in (True, False):
        executor.PRELOAD = preload
        results.append(
            execute(action, "onExecutePostLogin", event, secrets=SECRETS, seed=SEED, now_ms=NOW_MS, limits=limits)
        )
    executor.PRELOAD = True
    return results[0], results[1]


def comparable(result: ExecutionResult) -> dict[str, Any]:
    """A result without what loading ahead changes on purpose: the instructions counted and the time taken."""
    data = result.as_dict()
    stats = data.pop("stats")
    data["memory_peak_bytes"] = stats["memory_peak_bytes"]
    data["heap_peak_bytes"] = stats["heap_peak_bytes"]
    return data


@pytest.mark.parametrize("case", list(CASES))
def test_an_action_loaded_ahead_runs_exactly_as_one_loaded_in_the_run(case: str, preloading: None) -> None:
    """Commands, console output, errors (with positions) and memory figures are the same either way."""
    source, event = CASES[case]
    action = compile_action(source)
    ahead, in_run = run_both(action, json.loads(SEED_EVENT.read_text()) if event == "seed" else event,
                             limits=Limits(memory_bytes=16 * MiB) if "bomb" in case else None)  # fmt: skip
    assert comparable(ahead) == comparable(in_run)
    assert sandbox_engine.engine().preloads[action.bytecode_sha256] is not None, "the action was loaded ahead"
    if "bomb" not in case:
        assert ahead.stats.fuel_used < in_run.stats.fuel_used, "loading ahead saves the guest the bytecode's reading"


def test_every_execution_of_an_action_counts_the_same_instructions() -> None:
    """The first execution (which loads the action ahead) and the next ones report the same fuel."""
    action = compile_action(
        handler_source("api.idToken.setCustomClaim('n', event.n);", prelude="// " + secrets.token_hex(8))
    )
    fuel = {execute(action, "onExecutePostLogin", {"n": 1}, seed=SEED, now_ms=NOW_MS).stats.fuel_used for _ in range(3)}
    assert len(fuel) == 1


def test_the_pages_of_an_action_hold_nothing_of_its_executions() -> None:
    """Pages are made from a fresh instance and the bytecode: no event, secret or output is ever in them."""
    marker = "PRELOAD-" + secrets.token_hex(12)
    action = compile_action(
        handler_source(f"globalThis.k = event.marker + '{marker[:4]}'; console.log(event.secrets.S, k);")
    )
    for _ in range(3):
        result = execute(action, "onExecutePostLogin", {"marker": marker}, secrets={"S": marker})
        assert result.ok and logged(result) == [f"{marker} {marker}PREL"]
    pages = sandbox_engine.engine().preloads[action.bytecode_sha256]
    assert pages is not None and pages.count > 0
    assert marker.encode() not in pages.data()
    with sandbox_engine.engine().wasm.instance(
        fuel=1_000_000, wall_ms=1_000, memory_bytes=32 * MiB, pages=pages
    ) as inst:
        assert marker.encode() not in inst.read(0, inst.memory_size())


def test_each_action_runs_from_its_own_pages() -> None:
    """Actions run in turn each get their own pages (keyed by their bytecode), never another's."""
    deny = compile_action(handler_source("api.access.deny('no ' + event.n);"))
    claim = compile_action(handler_source("api.idToken.setCustomClaim('n', event.n);"))
    for n in range(5):
        assert execute(deny, "onExecutePostLogin", {"n": n}).commands == [{"type": "deny", "reason": f"no {n}"}]
        assert execute(claim, "onExecutePostLogin", {"n": n}).commands == [
            {"type": "set_claim", "token": "id", "key": "n", "value": n}
        ]
    preloads = sandbox_engine.engine().preloads
    deny_pages, claim_pages = preloads[deny.bytecode_sha256], preloads[claim.bytecode_sha256]
    assert deny_pages is not None and claim_pages is not None and deny_pages.data() != claim_pages.data()


def test_the_pages_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past PRELOAD_CACHE_BYTES the least recently run action's pages go (it is loaded ahead again when run)."""
    handle = sandbox_engine.engine()
    monkeypatch.setattr(sandbox_engine, "PRELOAD_CACHE_BYTES", 1)
    actions = [compile_action(handler_source(f"api.access.deny('{i}');")) for i in range(3)]
    for i, action in enumerate(actions):
        assert execute(action, "onExecutePostLogin", {}).commands == [{"type": "deny", "reason": str(i)}]
    assert list(handle.preloads) == [actions[-1].bytecode_sha256]
    assert execute(actions[0], "onExecutePostLogin", {}).commands == [{"type": "deny", "reason": "0"}]
    assert list(handle.preloads) == [actions[0].bytecode_sha256]


def test_an_execution_whose_memory_cannot_hold_the_loaded_action_loads_it_in_the_run(preloading: None) -> None:
    """An action whose loaded pages need more memory than this execution may have runs from its bytecode."""
    action = compile_action(many_functions(2000))  # some 90 KB of source
    pages = sandbox_engine.preloaded(sandbox_engine.engine(), action.bytecode, action.bytecode_sha256)
    assert pages is not None and pages.memory_bytes > sandbox_engine.minimum_memory_bytes()
    tight = Limits(memory_bytes=pages.memory_bytes - 64 * 1024)
    ahead, in_run = run_both(action, {}, limits=tight)
    assert comparable(ahead) == comparable(in_run)
    assert ahead.stats.fuel_used == in_run.stats.fuel_used, "both loaded the bytecode in the run"


def test_pages_are_checked_against_the_memory() -> None:
    """A page beyond the declared size is refused; a size beyond the instance's limit fails to grow."""
    with pytest.raises(ValueError, match="beyond"):
        Pages([(10, bytes(PAGE_BYTES))], memory_bytes=10 * PAGE_BYTES)
    wasm = sandbox_engine.engine().wasm
    huge = Pages([(4095, bytes(PAGE_BYTES))], memory_bytes=4096 * PAGE_BYTES)
    with pytest.raises(WasmFailure):
        wasm.instance(fuel=1_000_000, wall_ms=1_000, memory_bytes=2 * MiB, pages=huge)
    with wasm.instance(fuel=1_000_000, wall_ms=1_000, memory_bytes=32 * MiB, pages=huge) as inst:
        assert inst.memory_size() == 4096 * PAGE_BYTES


def test_threads_running_a_new_action_at_once_load_it_ahead_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several threads running an action this process has not loaded yet: one loads it, the others wait for
    its pages, and all run from the same pages."""
    action = compile_action(
        handler_source("api.idToken.setCustomClaim('n', event.n);", prelude="// " + secrets.token_hex(8))
    )
    loads: list[str] = []
    real_preload = sandbox_engine._preload

    def counted(handle: Any, bytecode: bytes) -> Pages | None:
        loads.append(threading.current_thread().name)
        time.sleep(0.2)  # every other thread asks meanwhile
        return real_preload(handle, bytecode)

    monkeypatch.setattr(sandbox_engine, "_preload", counted)
    start = threading.Barrier(4)
    results: dict[int, ExecutionResult] = {}

    def run(n: int) -> None:
        start.wait()
        results[n] = execute(action, "onExecutePostLogin", {"n": 7}, seed=SEED, now_ms=NOW_MS)

    threads = [threading.Thread(target=run, args=(n,), name=f"caller-{n}") for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(loads) == 1
    assert [r.commands for r in results.values()] == [
        [{"type": "set_claim", "token": "id", "key": "n", "value": 7}]
    ] * 4
    alone = execute(action, "onExecutePostLogin", {"n": 7}, seed=SEED, now_ms=NOW_MS)
    # Each ran from the pages (an execution that loads the action itself counts more instructions).
    assert {r.stats.fuel_used for r in results.values()} == {alone.stats.fuel_used}
    assert sandbox_engine.engine().preloading == {}
