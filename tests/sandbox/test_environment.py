"""The JavaScript environment inside the sandbox behaves like Node's where actions rely on it."""

import base64
import hashlib
import hmac
import json
import re
import uuid

import pytest

from runtime.sandbox import compile_action, execute
from tests.helpers import handler_source, logged, run
from tests.sandbox.node_reference import NODE_FORMAT, NODE_URLS


def single_log(body: str, **kwargs: object) -> str:
    result = run(body, **kwargs)  # type: ignore[arg-type]
    assert result.ok, result.error
    assert len(result.logs) == 1, result.logs
    return result.logs[0]["message"]


@pytest.mark.parametrize(("args", "expected"), NODE_FORMAT, ids=[a for a, _ in NODE_FORMAT])
def test_console_formats_values_like_node(args: str, expected: str) -> None:
    """console.log(...args) prints what Node's util.format prints."""
    assert single_log(f"console.log({args});") == expected


def test_console_levels_are_kept() -> None:
    """info, warn, error and debug keep their level; dir and assert log through too."""
    result = run(
        "console.info('i'); console.warn('w'); console.error('e'); console.debug('d'); console.assert(false, 'a')"
    )
    assert [(e["level"], e["message"]) for e in result.logs] == [
        ("info", "i"),
        ("warn", "w"),
        ("error", "e"),
        ("debug", "d"),
        ("error", "Assertion failed: a"),
    ]


@pytest.mark.parametrize(("url", "base", "expected"), NODE_URLS, ids=[u for u, _, _ in NODE_URLS])
def test_url_parses_like_node(url: str, base: str | None, expected: object) -> None:
    """new URL(url, base): href, host, pathname, search, hash and origin as Node gives them."""
    args = json.dumps(url) + (f", {json.dumps(base)}" if base else "")
    body = (
        f"let out; try {{ const x = new URL({args}); out = [x.href, x.host, x.pathname, x.search, x.hash, x.origin] }}"
        " catch (e) { out = e instanceof TypeError && e.code === 'ERR_INVALID_URL' ? 'ERR' : String(e) }"
        " console.log(JSON.stringify(out));"
    )
    assert json.loads(single_log(body)) == expected


def test_url_search_params_follow_the_standard() -> None:
    """URLSearchParams parses, edits and serialises as application/x-www-form-urlencoded."""
    out = single_log(
        "const p = new URLSearchParams('?a=1&b=two+words&a=3&c=%E2%9C%93');"
        "p.append('d', 'x y&z'); p.set('a', 'one'); p.delete('b');"
        "const u = new URL('https://e.example/p?q=1'); u.searchParams.set('r', 's t');"
        "console.log(JSON.stringify([p.toString(), p.get('c'), p.getAll('a'), [...p.keys()], u.href, p.size]));"
    )
    assert json.loads(out) == [
        "a=one&c=%E2%9C%93&d=x+y%26z",
        "✓",
        ["one"],
        ["a", "c", "d"],
        "https://e.example/p?q=1&r=s+t",
        3,
    ]


def test_text_encoding_round_trips_utf8() -> None:
    """TextEncoder and TextDecoder handle UTF-8, including astral characters."""
    out = single_log(
        "const bytes = new TextEncoder().encode('héllo 🌍');"
        "console.log(JSON.stringify([Array.from(bytes), new TextDecoder().decode(bytes)]));"
    )
    assert json.loads(out) == [list("héllo 🌍".encode()), "héllo 🌍"]


def test_base64_helpers_match_python() -> None:
    """btoa/atob and Buffer's base64, base64url and hex agree with Python's codecs."""
    out = single_log(
        "const b = Buffer.from('any carnal pleasure.?~', 'utf8');"
        "console.log(JSON.stringify([btoa('hello'), atob('aGVsbG8='), b.toString('base64'),"
        " b.toString('base64url'), b.toString('hex'), Buffer.from('68656c6c6f', 'hex').toString()]));"
    )
    data = b"any carnal pleasure.?~"
    assert json.loads(out) == [
        "aGVsbG8=",
        "hello",
        base64.b64encode(data).decode(),
        base64.urlsafe_b64encode(data).decode().rstrip("="),
        data.hex(),
        "hello",
    ]


def test_hex_reads_and_writes_as_node_does() -> None:
    """Hex is written lower-case, every byte value included, and read in pairs up to the first pair that is
    not one (upper-case digits allowed, a trailing single digit left out), as Node's Buffer reads it."""
    out = single_log(
        "const all = Buffer.alloc(256); for (let i = 0; i < 256; i++) all[i] = i;"
        "console.log(JSON.stringify([all.toString('hex'), Array.from(Buffer.from(all.toString('hex').toUpperCase(), 'hex')),"
        " ['0aFf1g', 'abc', ' 1', '1 2', '-1', 'é1', '', '0x10'].map((t) => Array.from(Buffer.from(t, 'hex')))]));"
    )
    written, read_back, partial = json.loads(out)
    assert written == bytes(range(256)).hex()
    assert read_back == list(range(256))
    assert partial == [[0x0A, 0xFF], [0xAB], [], [], [], [], [], []]


def test_crypto_hashes_match_python() -> None:
    """createHash and createHmac (sha256) give the digests hashlib and hmac give."""
    out = single_log(
        "const crypto = require('crypto');"
        "console.log(JSON.stringify([crypto.createHash('sha256').update('abc').digest('hex'),"
        " crypto.createHmac('sha256', 'key').update('The quick brown fox').update(' jumps').digest('base64'),"
        " crypto.createHash('sha256').update('x'.repeat(1000)).digest('hex')]));"
    )
    assert json.loads(out) == [
        hashlib.sha256(b"abc").hexdigest(),
        base64.b64encode(hmac.new(b"key", b"The quick brown fox jumps", hashlib.sha256).digest()).decode(),
        hashlib.sha256(b"x" * 1000).hexdigest(),
    ]


def test_crypto_random_values_are_well_formed() -> None:
    """randomUUID gives version-4 UUIDs; getRandomValues fills integer arrays."""
    out = json.loads(
        single_log(
            "const a = new Uint32Array(8); crypto.getRandomValues(a);"
            "console.log(JSON.stringify([crypto.randomUUID(), require('crypto').randomBytes(16).length,"
            " Array.from(a)]))"
        )
    )
    assert uuid.UUID(out[0]).version == 4
    assert out[1] == 16
    assert len(set(out[2])) > 1


def test_unsupported_digests_say_what_is_supported() -> None:
    """createHash('md5') throws a clear error naming sha256."""
    message = single_log("try { require('crypto').createHash('md5') } catch (e) { console.log(e.message) }")
    assert message == "Digest method not supported: md5. This runtime provides sha256."


@pytest.mark.parametrize("name", ["buffer", "crypto", "querystring", "url", "util", "node:crypto"])
def test_builtin_modules_can_be_required(name: str) -> None:
    """require() gives the allowlisted built-in modules, with or without the node: prefix."""
    assert single_log(f"console.log(typeof require({name!r}))") == "object"


@pytest.mark.parametrize("name", ["fs", "child_process", "http", "axios", "os", "std", "../etc/passwd"])
def test_other_modules_fail_with_a_clear_message(name: str) -> None:
    """require() of anything else throws MODULE_NOT_FOUND naming what is available."""
    out = single_log(f"try {{ require({name!r}) }} catch (e) {{ console.log(e.code + ': ' + e.message) }}")
    assert out.startswith(f"MODULE_NOT_FOUND: Cannot find module '{name}'")
    assert "buffer, crypto, querystring, url, util" in out


def test_the_guest_has_no_host_capabilities() -> None:
    """No std/os modules, no fetch, no SharedArrayBuffer or Atomics, no process."""
    out = single_log(
        "console.log(JSON.stringify(['std', 'os', 'print', 'scriptArgs', 'fetch', 'XMLHttpRequest',"
        " 'SharedArrayBuffer', 'Atomics', 'process', 'WebAssembly'].map((n) => typeof globalThis[n])))"
    )
    assert json.loads(out) == ["undefined"] * 10


def test_the_clock_is_the_hosts_and_stands_still() -> None:
    """Date.now() is the clock reading the host passed, for the whole execution."""
    now_ms = 1_780_000_000_123.0
    out = single_log(
        "const a = Date.now(); for (let i = 0; i < 100000; i++) {} const b = Date.now();"
        "console.log(JSON.stringify([a, b, new Date().toISOString()]))",
        now_ms=now_ms,
    )
    assert json.loads(out) == [now_ms, now_ms, "2026-05-28T20:26:40.123Z"]


def test_timers_run_in_order_on_virtual_time() -> None:
    """setTimeout callbacks run by due time; awaiting one advances Date.now() by its delay."""
    out = single_log(
        "const order = []; const t0 = Date.now();"
        "setTimeout(() => order.push('b'), 20); setTimeout(() => order.push('a'), 10);"
        "const id = setTimeout(() => order.push('never'), 15); clearTimeout(id);"
        "await new Promise((r) => setTimeout(r, 50));"
        "console.log(JSON.stringify([order, Date.now() - t0]))",
        now_ms=1_000_000.0,
    )
    assert json.loads(out) == [["a", "b"], 50]


def test_math_random_is_reseeded_every_execution() -> None:
    """Two executions draw different numbers; the same seed draws the same ones (replay)."""
    body = "console.log(JSON.stringify([Math.random(), Math.random(), crypto.randomUUID()]))"
    first, second = (single_log(body) for _ in range(2))
    assert first != second
    seed = bytes(range(32))
    assert single_log(body, seed=seed) == single_log(body, seed=seed)


def test_querystring_module_parses_and_stringifies() -> None:
    """querystring.parse/stringify behave like Node's for common input."""
    out = single_log(
        "const qs = require('querystring');"
        "console.log(JSON.stringify([qs.parse('a=1&b=x+y&a=2&c'), qs.stringify({a: [1, 2], b: 'x y', c: true})]))"
    )
    assert json.loads(out) == [{"a": ["1", "2"], "b": "x y", "c": ""}, "a=1&a=2&b=x%20y&c=true"]


def test_eval_and_function_work_inside_the_sandbox() -> None:
    """Actions may use eval and new Function: they compile inside the same sandbox."""
    assert single_log("console.log(eval('1 + 2'), new Function('a', 'return a * 2')(21))") == "3 42"


def test_errors_show_only_the_actions_frames() -> None:
    """Stack traces name the action's lines, never the platform's code."""
    result = run("function inner() { null.x }\nfunction outer() { inner() }\nouter();")
    assert result.error is not None
    stack = result.error.to_dict()["stack"]
    assert stack.startswith("TypeError: cannot read property 'x' of null")
    # The body starts on line 3 of the generated action (tests/helpers.py).
    assert re.findall(r"action\.js:(\d+)", stack) == ["3", "4", "5"]
    assert "<null>" not in stack and "prelude" not in stack
    assert logged(result) == []


def test_the_event_reads_back_exactly_whatever_the_size_of_its_parts() -> None:
    """Small and large nested maps and lists (decoded at once or on first use) read, enumerate and change alike."""
    big = {f"k{i}": f"value number {i}" for i in range(12)}
    event = {
        "user": {"user_id": "u1", "app_metadata": {}, "user_metadata": {"a": 1}, "identities": [big, big]},
        "request": {"query": big, "body": {}, "geoip": {"cityName": "Lyon", "latitude": 45.76}},
        "authentication": {"methods": [{"name": "pwd", "timestamp": "2026-01-01T00:00:00.000Z"}]},
        "transaction": {"requested_scopes": ["openid"], "metadata": {}},
    }
    action = compile_action(
        handler_source(
            "console.log(JSON.stringify(event));"
            "console.log(Object.keys(event.request).join(','), Object.keys(event.request.query).length);"
            "event.user.app_metadata = {set: true}; event.request.query.k0 = 'changed'; delete event.request.geoip;"
            "event.user.identities.push('more');"
            "console.log(JSON.stringify([event.user.app_metadata, event.request.query.k0, 'geoip' in event.request,"
            " event.user.identities.length]));"
        )
    )
    result = execute(action, "onExecutePostLogin", event)
    assert result.ok, result.error
    first, keys, changed = logged(result)
    assert json.loads(first) == {**event, "secrets": {}}
    assert first.startswith('{"user":{"user_id":"u1","app_metadata":{},"user_metadata":{"a":1},"identities":[{"k0"')
    assert keys == "query,body,geoip 12"
    assert json.loads(changed) == [{"set": True}, "changed", False, 3]


def test_logging_the_event_shows_every_member_as_node_would() -> None:
    """console.log(event) prints the members an action has not read yet (decoded on first use) as their
    values, the way Node prints a plain object; an accessor the action defines itself is still a getter."""
    event = {
        "user": {"user_id": "u1", "identities": [{"provider": "auth0", "user_id": "1", "connection": "db" * 30}]},
        "request": {"ip": "192.0.2.1", "hostname": "login.example.com", "user_agent": "Mozilla/5.0 " * 8},
    }
    out = single_log(
        "Object.defineProperty(event.user, 'mine', {get() { return 1; }, set(v) {}, enumerable: true});"
        "console.log(require('util').inspect(event, {depth: 4}));",
        event=event,
    )
    assert "[Getter/Setter]" not in out.replace("mine: [Getter/Setter]", "")
    assert "mine: [Getter/Setter]" in out
    assert "hostname: 'login.example.com'" in out and "provider: 'auth0'" in out and "Mozilla/5.0" in out


INSPECTED = [
    "{}",
    "[]",
    "{a: 1}",
    "[1, 'a', true, null, undefined]",
    "{a: {b: {c: {d: {e: 1}}}}}",
    "[[[[[1]]]]]",
    "{n: [-0, 0, 1.5, -2, NaN, Infinity, -Infinity, 1e21, 2 ** 31, 0.1 + 0.2]}",
    "{s: ['it\\'s', 'say \"hi\"', 'both \\' and \" and `', 'all \\' \" `', 'tab\\there', 'line\\nbreak', '\\x01\\x7f\\\\']}",
    "{'a-b': 1, '1': 2, '': 3, 'ü': 4, $ok: 5, _ok: 6, '9lives': 7, 'with space': 8}",
    "{u: ['é', '🌍'.repeat(30), 'x'.repeat(60)]}",
    "{wide: 'x'.repeat(60), n: 1}",
    "{w: 'x'.repeat(56), n: 1}",
    "{w: 'x'.repeat(57), n: 1}",  # exactly the width on one line
    "{w: 'é'.repeat(57), n: 1}",  # the same width in UTF-16 code units, not in bytes
    "{w: '🌍'.repeat(28) + 'x', n: 1}",  # two code units each: fits
    "{w: '🌍'.repeat(29) + 'x', n: 1}",  # does not
    "{w: 'x'.repeat(58), n: 1}",
    "Array.from({length: 30}, (_, i) => ({i, name: 'item ' + i}))",
    "Array.from({length: 100}, (_, i) => i)",
    "{empty: {}, list: [], nested: {list: [{}], more: [[]]}}",
    "(() => { const o = {name: 'loop'}; o.self = o; o.list = [o]; return o; })()",
    "JSON.parse(JSON.stringify(event))",
    "event",
]


@pytest.mark.parametrize("value", INSPECTED)
def test_inspect_writes_plain_data_as_the_general_path_does(value: str) -> None:
    """Plain data is written by the shim in one call (inspect.c): for each value and depth, the text is the
    one the prelude's own inspect writes for the same value made to take it (an array given a prototype of
    its own, an object a hidden symbol key: neither shows), and the shim's way costs fewer instructions."""
    depths = "[undefined, 0, 1, 4, null]"
    body = (
        "const util = require('util');"
        f"const show = (v) => JSON.stringify({depths}.map((d) => util.inspect(v, d === undefined ? {{}} : {{depth: d}})));"
        "const aside = (v) => { if (Array.isArray(v)) Object.setPrototypeOf(v, Object.create(Array.prototype));"
        " else Object.defineProperty(v, Symbol('general'), {value: 1, enumerable: false}); return v; };"
    )
    native = run(body + f"console.log(show({value}));", EVENT_FOR_INSPECT)
    general = run(body + f"console.log(show(aside({value})));", EVENT_FOR_INSPECT)
    assert native.ok and general.ok, (native.error, general.error)
    assert json.loads(logged(native)[0]) == json.loads(logged(general)[0])
    assert native.stats.fuel_used < general.stats.fuel_used


EVENT_FOR_INSPECT = {
    "user": {"user_id": "auth0|1", "email": "jane@example.com", "app_metadata": {"plan": "gold", "roles": ["a"]},
             "identities": [{"provider": "auth0", "user_id": "1", "connection": "Username-Password"}]},
    "request": {"ip": "192.0.2.1", "geoip": {"latitude": 51.5072, "longitude": -0.1276, "cityName": "London"},
                "query": {"state": "s" * 30, "redirect_uri": "https://app.example.com/callback"}},
    "transaction": {"requested_scopes": ["openid", "profile"], "metadata": {}},
}  # fmt: skip


def test_members_with_the_same_key_read_their_own_values() -> None:
    """Lazily read members share their accessors by key; each still reads its own bytes, once."""
    client_md = {f"c{i}": f"client value {i}" for i in range(8)}
    tx_md = {f"t{i}": f"transaction value {i}" for i in range(8)}
    event = {"client": {"metadata": client_md}, "transaction": {"metadata": tx_md}}
    action = compile_action(
        handler_source(
            "const get = Object.getOwnPropertyDescriptor(event.client, 'metadata').get;"
            "console.log(JSON.stringify([event.transaction.metadata, event.client.metadata]));"
            "console.log(String(get && get.call({})), event.client.metadata === event.client.metadata);"
        )
    )
    result = execute(action, "onExecutePostLogin", event)
    assert result.ok, result.error
    both, other = logged(result)
    assert json.loads(both) == [tx_md, client_md]
    assert other == "undefined true"


def test_an_event_with_more_large_members_than_are_read_lazily_reads_back_exactly() -> None:
    """Past the lazy tables' room (distinct keys, members), the rest is decoded at once, and reads the same."""
    # 2,000 members with distinct keys, each holding a large "metadata": more
    # keys than get shared accessors, more lazy members than the table holds.
    event = {f"m{i}": {"metadata": {"text": f"{i:04d}" + "x" * 60, "n": i}} for i in range(2000)}
    action = compile_action(
        handler_source(
            "console.log(JSON.stringify(event.m1999) === JSON.stringify(event.m1999));"
            "console.log(JSON.stringify(event));"
        )
    )
    result = execute(action, "onExecutePostLogin", event)
    assert result.ok, result.error
    same, everything = logged(result)
    assert same == "true"
    assert json.loads(everything) == {**event, "secrets": {}}


FAST_PATH_URLS = [
    "https://example.com",
    "https://example.com/",
    "http://example.com:80/x",
    "https://example.com:443",
    "https://example.com:8443/a/b?c=d#e",
    "https://a-b.c-d.example/x;y=z/@:!$&()*+,;=%20~_.-",
    "https://example.com/a/./b",
    "https://example.com/a/%2e%2E/b",
    "https://example.com/.hidden/x",
    "https://0x7f.1/",
    "https://example.cafe/",
    "https://1.2.3.4/",
    "https://example.com/path?q=1/2?3#frag/'quote'?",
    "https://example.com/it's",
    "https://example.com:65535/",
    "https://example.com:65536/",
    "https://example.com:0/",
    "https://example.com:/",
    "https://example.com:123456/",
    "http://example.com?x",
    "http://example.com#f",
    "https://example..com/",
    "https://example.com./",
    "https://-x.com/",
    "https://example.com/%zz",
    "https://example.com/a b",
    "https://Example.com/",
    "https://example.com/\u00e9",
]


@pytest.mark.parametrize("url", FAST_PATH_URLS)
def test_urls_in_canonical_form_parse_as_the_full_parser_does(url: str) -> None:
    """The shim's quick split of canonical http(s) URLs gives what the full parser gives.

    A leading space sends the same URL through the full parser (which strips it)."""
    parts = "[x.href, x.host, x.hostname, x.port, x.pathname, x.search, x.hash, x.origin]"
    body = (
        "const parse = (u) => { try { const x = new URL(u); return " + parts + " } catch (e) { return 'ERR' } };"
        f" console.log(JSON.stringify([parse({json.dumps(url)}), parse({json.dumps(' ' + url)})]));"
    )
    quick, full = json.loads(single_log(body))
    assert quick == full
