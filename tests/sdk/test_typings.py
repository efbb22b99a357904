"""The action typings (sdk/types/): the example actions type-check, mistakes do not, and they match the sandbox.

TypeScript is the one pinned in sdk/types/package.json, which ``make test``
installs (``make typings``: npm ci). Without Node.js or that install these
tests fail and say what to do: a skipped check would let the typings drift
from the sandbox unnoticed.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runtime.sandbox import compile_action, execute
from tests.conftest import ROOT

TYPES = ROOT / "sdk" / "types"
TSC = TYPES / "node_modules" / ".bin" / "tsc"
TENANTS = ROOT / "tenants"
TSCONFIG = TENANTS / "tsconfig.json"
PRELUDE = ROOT / "runtime" / "engine" / "guest" / "prelude"

DIAGNOSTIC = re.compile(r"^(?P<file>.+?)\((?P<line>\d+),(?P<column>\d+)\): error TS\d+: (?P<message>.*)$")


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    message: str


@functools.cache
def typescript() -> Path:
    """The pinned tsc, or a failure that says how to get it."""
    if shutil.which("node") is None:
        pytest.fail(
            "Node.js is not installed: the action typings are checked with TypeScript's tsc, which runs on node. "
            "Install Node.js 18 or later with npm, then run `make typings`."
        )
    if not TSC.exists():
        pytest.fail(
            f"TypeScript is not installed in {TYPES.relative_to(ROOT)}/node_modules: run `make typings` "
            "(npm ci there; `make test` does it first)."
        )
    pinned = json.loads((TYPES / "package.json").read_text())["devDependencies"]["typescript"]
    version = subprocess.run([TSC, "--version"], capture_output=True, text=True, timeout=60, check=False).stdout
    if version.strip() != f"Version {pinned}":
        pytest.fail(f"{TSC.relative_to(ROOT)} is {version.strip()!r}, not the pinned {pinned}: run `make typings`.")
    return TSC


def tsc(*args: str | Path) -> tuple[int, str, list[Diagnostic]]:
    """Run the pinned tsc; its exit status, output and errors."""
    done = subprocess.run([typescript(), *map(str, args)], capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout + done.stderr
    found = [DIAGNOSTIC.match(line) for line in output.splitlines()]
    errors = [Diagnostic(Path(m["file"]).name, int(m["line"]), m["message"]) for m in found if m]
    return done.returncode, output, errors


def project(folder: Path, source_name: str, source: str) -> Path:
    """A tsconfig in `folder` that checks one file with the tenants' settings and the typings."""
    (folder / source_name).write_text(source)
    config = folder / "tsconfig.json"
    config.write_text(json.dumps({"extends": str(TSCONFIG), "include": [source_name]}))
    return config


def test_every_example_action_type_checks() -> None:
    """tsc --noEmit on tenants/tsconfig.json passes, and it covers every tenant's every action."""
    code, output, _ = tsc("--noEmit", "-p", TSCONFIG)
    assert code == 0, output
    assert output == ""
    _, listed, _ = tsc("--noEmit", "-p", TSCONFIG, "--listFilesOnly")
    checked = {Path(line).resolve() for line in listed.splitlines()}
    actions = set(TENANTS.glob("*/actions/*.js"))
    assert len(actions) >= 3
    assert actions <= checked
    for action in actions:
        assert action.read_text().startswith("// @ts-check\n"), f"{action} does not start with // @ts-check"


# One mistake per line, and a fragment of the error tsc must report on that line.
MISTAKES = [
    ("api.access.deny(42);", "'number' is not assignable to parameter of type 'string'"),
    ("api.redirect.sendUserTo();", "Expected 1-2 arguments, but got 0"),
    ("api.user.setMetadata('company', 'Globex');", "Property 'setMetadata' does not exist"),
    ("event.user.user_metadata.company = 'Globex';", "only permits reading"),
    ("api.redirect.encodeToken({ secret: event.secrets.S, payload: 'x' });", "'string' is not assignable"),
    ("api.redirect.validateToken({ tokenParameterName: 'answer' });", "Property 'secret' is missing"),
    ("api.redirect.encodeToken({ secret: 's' }).token;", "Property 'token' does not exist on type 'string'"),
    ("api.cache.set('k', 1);", "'number' is not assignable to parameter of type 'string'"),
    ("api.cache.get('k').value;", "possibly 'undefined'"),
    ("api.cache.set('k', 'v').record;", "Property 'record' does not exist"),
    ("api.transaction.setMetadata('k', { a: 1 });", "type 'string | number | boolean | null'"),
    ("api.authentication.challengeWith({ type: 'sms' });", "'\"sms\"' is not assignable"),
    ("api.multifactor.enable('duo');", "'\"duo\"' is not assignable"),
    ("api.prompt.render('form');", "Property 'prompt' does not exist"),
    ("event.request.geoip.countryCode.toUpperCase();", "possibly 'undefined'"),
    ("event.user.emial;", "Property 'emial' does not exist"),
    ("fetch('https://api.example.com');", "Cannot find name 'fetch'"),
    ("process.env.SECRET;", "Cannot find name 'process'"),
    ("require('fs');", "'fs'"),
    ("require('axios');", "'axios'"),
    ("new SharedArrayBuffer(8);", "Cannot find name 'SharedArrayBuffer'"),
    ("structuredClone({});", "Cannot find name 'structuredClone'"),
    ("document.title;", "Cannot find name 'document'"),
    ("crypto.subtle;", "Property 'subtle' does not exist"),
    ("require('crypto').createHash('md5');", "'\"md5\"' is not assignable"),
    ("Buffer.from('x').readBigInt64LE();", "Property 'readBigInt64LE' does not exist"),
]

# Correct uses of what the sandbox has: none of these lines may be an error.
CORRECT = [
    "api.idToken.setCustomClaim('https://example.com/roles', ['a']).accessToken.addScope('read:x').access.deny('no');",
    "const token = api.redirect.encodeToken({ secret: event.secrets.S, payload: { a: 1 }, expiresInSeconds: 60 });",
    "api.redirect.sendUserTo('https://verify.example.com/', { query: { session_token: token, n: 1 } });",
    "const hit = api.cache.get('k'); if (hit) console.log(hit.value.length, hit.expires_at + 1);",
    "const set = api.cache.set('k', 'v', { ttl: 1000 }); console.log(set.type === 'success' ? set.record.value : set.code);",
    "const country = event.request.geoip.countryCode ?? 'unknown';",
    "const methods = (event.authentication?.methods ?? []).map((m) => m.name + m.timestamp);",
    "const digest = require('node:crypto').createHmac('sha256', 'key').update('x').digest('hex').toUpperCase();",
    "const q = require('querystring').parse('a=1&a=2').a;",
    "const u = require('url').parse('https://a.example/?x=1', true).query.x;",
    "const text = new (require('util').TextDecoder)().decode(Buffer.from('aGk=', 'base64'));",
    "console.log(country, methods, digest, q, u, text, new URL('https://a.example').searchParams.get('x'), btoa('x'));",
    "setTimeout(() => {}, 10).unref(); queueMicrotask(() => {}); console.log(performance.now(), crypto.randomUUID());",
]


def test_mistakes_are_type_errors(tmp_path: Path) -> None:
    """A wrong call, a missing argument, a method or global the sandbox lacks: each is an error on its line."""
    lines = ["// @ts-check", "/**", " * @param {Event} event", " * @param {PostLoginAPI} api", " */"]
    lines.append("exports.onExecutePostLogin = async (event, api) => {")
    first_mistake = len(lines) + 1
    lines += [f"  {snippet}" for snippet, _ in MISTAKES]
    lines += [f"  {snippet}" for snippet in CORRECT]
    lines.append("};")
    # A handler typed as a whole must be async, as the platform requires at upload.
    lines += ["/** @type {OnContinuePostLogin} */", "exports.onContinuePostLogin = (event, api) => {};"]
    not_async = len(lines)
    config = project(tmp_path, "action.js", "\n".join(lines) + "\n")

    code, output, errors = tsc("--noEmit", "-p", config)

    assert code != 0
    assert {e.file for e in errors} == {"action.js"}, output
    by_line: dict[int, list[str]] = {}
    for error in errors:
        by_line.setdefault(error.line, []).append(error.message)
    expected = {first_mistake + i: fragment for i, (_, fragment) in enumerate(MISTAKES)}
    expected[not_async] = "is not assignable to type 'OnContinuePostLogin'"
    for line, fragment in expected.items():
        messages = by_line.get(line, [])
        assert any(fragment in m for m in messages), f"line {line} ({lines[line - 1].strip()}): {messages}\n{output}"
    unexpected = {line: by_line[line] for line in set(by_line) - set(expected)}
    assert not unexpected, f"errors on correct lines: { {lines[n - 1].strip(): m for n, m in unexpected.items()} }"


# Reports, from inside the sandbox, the names it really has: the api's members,
# the modules require() accepts and theirs, the globals, and the members of the
# objects and classes the typings describe.
PROBE = r"""
const members = (value, stop) => {
  const out = new Set();
  for (let o = value; o !== null && o !== stop && o !== Object.prototype && o !== Function.prototype;
       o = Object.getPrototypeOf(o))
    for (const n of Object.getOwnPropertyNames(o))
      if (n !== 'constructor' && !n.startsWith('_') && !/^\d+$/.test(n)) out.add(n);
  return [...out];
};
const statics = (ctor) => Object.getOwnPropertyNames(ctor).filter((n) => !['length', 'name', 'prototype'].includes(n));
exports.onExecutePostLogin = async (event, api) => {
  let listed = '';
  try { require('no-such-module'); } catch (e) { listed = e.message; }
  const modules = {};
  for (const name of listed.split('the built-in modules are: ')[1].replace(/\.$/, '').split(', '))
    modules[name] = Object.keys(require(name));
  const timer = setTimeout(() => {}, 1);
  clearTimeout(timer);
  console.log(JSON.stringify({
    api: Object.fromEntries(Object.keys(api).map((k) => [k, members(api[k])])),
    modules,
    globals: Object.getOwnPropertyNames(globalThis),
    surfaces: {
      console: members(console),
      crypto: members(crypto),
      performance: members(performance),
      Timeout: members(timer),
      Buffer: members(Buffer.alloc(0), Uint8Array.prototype).filter((n) => !(n in Uint8Array.prototype)),
      BufferConstructor: statics(Buffer),
      URL: members(new URL('https://example.com/')),
      URLConstructor: statics(URL),
      URLSearchParams: members(new URLSearchParams()),
      TextEncoder: members(new TextEncoder()),
      TextDecoder: members(new TextDecoder()),
      Hash: members(require('crypto').createHash('sha256')),
    },
  }));
};
"""

# The TypeScript type listing what the typings declare for each surface the probe reports.
DECLARED = {
    "console": "keyof typeof console",
    "crypto": "keyof typeof crypto",
    "performance": "keyof typeof performance",
    "Timeout": "keyof Timeout",
    "Buffer": "Exclude<keyof Buffer, keyof Uint8Array>",
    "BufferConstructor": "Exclude<keyof BufferConstructor, 'prototype'>",
    "URL": "keyof URL",
    "URLConstructor": "Exclude<keyof typeof URL, 'prototype'>",
    "URLSearchParams": "keyof URLSearchParams",
    "TextEncoder": "keyof TextEncoder",
    "TextDecoder": "keyof TextDecoder",
    "Hash": "keyof import('crypto').Hash",
}

# What the sandbox has and the typings leave out on purpose.
UNDECLARED_API = {
    # api.prompt.render() always throws here (there are no Forms): leaving it
    # out makes calling it a type error instead of a failed login.
    "prompt",
}
# What the ES library declares and the sandbox lacks: lib.es5 itself declares
# Intl, which QuickJS does not have; it cannot be left out of `lib`.
UNAVAILABLE_ES = {"Intl"}


def sandbox_surface() -> dict[str, Any]:
    """What PROBE reports, run in a real sandbox."""
    action = compile_action(PROBE)
    result = execute(action, "onExecutePostLogin", {})
    assert result.ok, result.error
    surface: dict[str, Any] = json.loads(result.logs[0]["message"])
    return surface


def union(names: set[str] | list[str]) -> str:
    """The names as a TypeScript union of string literals."""
    return " | ".join(json.dumps(n) for n in sorted(names)) or "never"


def test_the_declarations_match_the_sandbox(tmp_path: Path) -> None:
    """Each api object, module, global object and class: declared members are exactly the sandbox's.

    Declaring what the sandbox lacks would let an action type-check and then
    fail at login; leaving out what it has would hide it from editors. The
    prelude's own globals must all be declared, and every global the typings
    and the ES library declare must exist in the sandbox.
    """
    surface = sandbox_surface()
    checks: list[tuple[str, str]] = []  # (what, TypeScript declaration that must type-check)
    api = {k: v for k, v in surface["api"].items() if k not in UNDECLARED_API}
    checks.append(("api", f"Same<Names<keyof PostLoginAPI>, {union(list(api))}>"))
    for key, members in api.items():
        checks.append((f"api.{key}", f"Same<Names<keyof PostLoginAPI[{json.dumps(key)}]>, {union(members)}>"))
    for name, exports in surface["modules"].items():
        for module in (name, f"node:{name}"):
            checks.append(
                (f"require('{module}')", f"Same<Names<keyof typeof import({json.dumps(module)})>, {union(exports)}>")
            )
    for what, members in surface["surfaces"].items():
        checks.append((what, f"Same<Names<{DECLARED[what]}>, {union(members)}>"))
    globals_ = set(surface["globals"]) | UNAVAILABLE_ES
    checks.append(("globals declared", f"Subset<Names<keyof typeof globalThis>, {union(globals_)}>"))
    installed = set(re.findall(r"defineGlobal\('(\w+)'", "".join(p.read_text() for p in PRELUDE.glob("*.js"))))
    assert {"console", "Buffer", "URL", "setTimeout"} <= installed
    checks.append(("the prelude's globals", f"Subset<{union(installed)}, Names<keyof typeof globalThis>>"))

    lines = [
        "type Names<T> = Extract<T, string>;",
        "type Same<Declared, Sandbox> = [Exclude<Declared, Sandbox>, Exclude<Sandbox, Declared>] extends [never, never]",
        "  ? 'same'",
        "  : { declared_but_not_in_the_sandbox: Exclude<Declared, Sandbox>; "
        "in_the_sandbox_but_not_declared: Exclude<Sandbox, Declared> };",
        "type Subset<Some, All> = [Exclude<Some, All>] extends [never] ? 'same' : { missing: Exclude<Some, All> };",
    ]
    first = len(lines) + 1
    lines += [f"export const check{i}: {check} = 'same';" for i, (_, check) in enumerate(checks)]
    config = project(tmp_path, "surface.ts", "\n".join(lines) + "\n")

    code, output, errors = tsc("--noEmit", "-p", config)

    labels = {first + i: label for i, (label, _) in enumerate(checks)}
    mismatches = [f"{labels.get(e.line, e.line)}: {e.message}" for e in errors if e.file == "surface.ts"]
    assert not mismatches, "\n".join(mismatches)
    assert code == 0, output


def test_the_declared_modules_are_the_ones_require_accepts() -> None:
    """sandbox.d.ts declares each built-in module, with and without `node:`, and no other."""
    declared = set(re.findall(r"^declare module '([^']+)'", (TYPES / "sandbox.d.ts").read_text(), re.MULTILINE))
    modules = sandbox_surface()["modules"]
    assert declared == set(modules) | {f"node:{m}" for m in modules}
