"""The web console end to end, in a real headless Chromium against a real ``tollgate serve``.

One server for the module, on a fresh database of the test PostgreSQL server,
with the real sandbox; the browser is Debian's ``chromium`` (or ``$CHROMIUM``)
driven by Playwright. A tenant writes an action with a syntax error and sees
it marked on its line, fixes it, sets a secret, tests, deploys twice, binds
it, signs in through the hosted login in another tab of the same browser,
watches the run arrive in the live tail, rolls back and sees the next login
run the old version. The operator finds a limit refused past its maximum
with the API's message, reads the usage and makes and revokes a key.

Any uncaught error or console error in any page fails the test, but for the
browser's own note of each request the test makes the API refuse on purpose.
Each screen is saved in ``tests/artifacts/console/`` for a reviewer to look at.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import jwt
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect, sync_playwright

from runtime.console.site import BUILT
from runtime.vault import MasterKeyring
from sdk.client import ApiError, Tollgate
from tests.test_server import ROOT, Server, _environment

OPERATOR_KEY = "tgo_console_" + "o" * 40
ARTIFACTS = ROOT / "tests" / "artifacts" / "console"
EMAIL, PASSWORD = "jane@acme-console.example", "correct horse battery staple"
GREETING = "hello-from-the-vault"
CLAIM = "https://acme-console.example/greeting"
BROKEN = """exports.onExecutePostLogin = async (event, api) => {
  console.log('welcome', event.user.email);
  api.idToken.setCustomClaim('https://acme-console.example/greeting',
    event.secrets.GREETING event.user.email);
};
"""
FIXED = BROKEN.replace("event.secrets.GREETING event.user.email", "event.secrets.GREETING")
SECOND = FIXED.replace("console.log('welcome',", "console.log('welcome back',")
AUDIT = "exports.onExecutePostLogin = async (event) => { console.log('audit', event.user.user_id); };"

expect.set_options(timeout=15_000)


def _chromium() -> str:
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(path).is_file():
        pytest.fail(
            f"No Chromium at {path}: the console's browser tests need Debian's chromium "
            "(apt-get install chromium) or CHROMIUM naming another build"
        )
    return path


@dataclass
class Callback:
    """The client application's callback: a page on its own origin that records the codes it is sent."""

    url: str
    codes: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def callback() -> Iterator[Callback]:
    made = Callback("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/callback":
                self.send_response(204)  # the browser's favicon request, say
                self.end_headers()
                return
            made.codes += parse_qs(parts.query).get("code", [])
            body = b'<!doctype html><html lang="en"><title>Console App</title><h1>Signed in to Console App</h1>'
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    made.url = f"http://127.0.0.1:{server.server_address[1]}/callback"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield made
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def server(new_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not (BUILT / "console.js").is_file():
        pytest.fail("The console is not built: run `make console` (the set-up of `make test` does it)")
    env = _environment(DATABASE_URL=new_database(), TOLLGATE_MASTER_KEY=MasterKeyring.generate_text(),
                       TOLLGATE_OPERATOR_KEY=OPERATOR_KEY)  # fmt: skip
    started = Server(env, tmp_path_factory.mktemp("console-server") / "server.log", "--workers", "1")
    try:
        started.wait_ready()
        yield started
    finally:
        assert started.stop() == 0
    assert "Traceback" not in started.output()


@pytest.fixture(scope="module")
def base_url(server: Server) -> str:
    return server.url.removesuffix("/api/v2")


@dataclass(frozen=True)
class Tenant:
    name: str
    id: str
    key: str
    client_id: str
    client_secret: str


@pytest.fixture(scope="module")
def tenant(base_url: str, callback: Callback) -> Tenant:
    """acme-console, made through the API: a client whose callback is the local page, a user, and a deployed
    action (audit) to share the flow with the one written in the browser."""
    with Tollgate(base_url, OPERATOR_KEY) as operator:
        made = operator.tenants.create("acme-console")
    with Tollgate(base_url, made["api_key"]["key"]) as acme:
        client = acme.clients.create("Console App", callbacks=[callback.url])
        acme.users.create(EMAIL, password=PASSWORD, name="Jane Console", email_verified=True)
        acme.actions.create("audit", AUDIT, deploy=True)
    return Tenant(
        "acme-console", made["id"], made["api_key"]["key"], client["client_id"], client.get("client_secret", "")
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable)
        yield launched
        launched.close()


class Watch:
    """Every console error and uncaught error in a browser context's pages; the API refusals a test provokes
    on purpose are announced with :meth:`refusal` (Chromium notes each failed request in the console)."""

    def __init__(self, context: BrowserContext) -> None:
        self.errors: list[str] = []
        self.expected: list[tuple[int, str]] = []
        context.on("console", self._console)
        context.on("weberror", lambda error: self.errors.append(f"uncaught: {error.error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            self.errors.append(f"{message.text} [{message.location.get('url')}]")

    def refusal(self, status: int, path: str) -> None:
        self.expected.append((status, path))

    def check(self) -> None:
        unexpected = list(self.errors)
        for status, url in self.expected:
            note = f"Failed to load resource: the server responded with a status of {status} "
            note += f"({HTTPStatus(status).phrase}) [{url}]"
            assert note in unexpected, f"the browser did not note the refusal {note}; it noted {self.errors}"
            unexpected.remove(note)
        assert unexpected == [], "errors in the browser console"


@pytest.fixture
def context(browser: Browser) -> Iterator[tuple[BrowserContext, Watch]]:
    # A laptop's screen; the clipboard lets the test paste code into the editor as a user would.
    made = browser.new_context(
        viewport={"width": 1440, "height": 900}, permissions=["clipboard-read", "clipboard-write"]
    )
    watch = Watch(made)
    try:
        yield made, watch
        watch.check()
    finally:
        made.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def sign_in(page: Page, base_url: str, key: str, screen: str | None = None) -> None:
    page.goto(base_url + "/console")
    expect(page.get_by_role("heading", name="Sign in to the Tollgate console")).to_be_visible()
    key_field = page.get_by_label("API key")
    expect(key_field).to_have_attribute("type", "password")
    key_field.fill(key)
    if screen:
        shot(page, screen)
    page.get_by_role("button", name="Sign in").click()


def paste_code(page: Page, code: str) -> None:
    """Replace the editor's text the way a user pastes it: select all, then Ctrl+V."""
    page.evaluate("text => navigator.clipboard.writeText(text)", code)
    page.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Control+V")
    expect(page.locator(".cm-content")).to_contain_text(code.splitlines()[-2].strip())


def marked_line(page: Page) -> tuple[int, str]:
    """The number the gutter shows beside the editor's error marker, and the text of the underlined line."""
    underlined = page.locator(".cm-line", has=page.locator(".cm-lintRange-error")).inner_text()
    marker = page.locator(".cm-lint-marker-error").bounding_box()
    assert marker is not None
    middle = marker["y"] + marker["height"] / 2
    for number in page.locator(".cm-lineNumbers .cm-gutterElement").all():
        box = number.bounding_box()
        if box is not None and box["height"] and box["y"] <= middle < box["y"] + box["height"]:
            return int(number.inner_text()), underlined
    raise AssertionError("no line number beside the error marker")


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def sign_in_to_the_app(page: Page, base_url: str, tenant: Tenant, callback: Callback, *, fill: bool) -> str:
    """The hosted login from the application's side: authorize with PKCE, the form (unless the session
    signs the user in), the callback; the ID token the code is exchanged for."""
    verifier, challenge = pkce()
    params = {"client_id": tenant.client_id, "redirect_uri": callback.url, "response_type": "code",
              "scope": "openid email profile", "state": secrets.token_urlsafe(8), "nonce": "n-1",
              "code_challenge": challenge, "code_challenge_method": "S256"}  # fmt: skip
    seen = len(callback.codes)
    page.goto(f"{base_url}/t/{tenant.name}/authorize?{urlencode(params)}")
    if fill:
        expect(page.get_by_role("heading", name="Sign in to Console App")).to_be_visible()
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        shot(page, "07-hosted-login")
        page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Signed in to Console App")).to_be_visible()
    assert len(callback.codes) == seen + 1
    tokens = httpx2.post(f"{base_url}/t/{tenant.name}/oauth/token", data={
        "grant_type": "authorization_code", "code": callback.codes[-1], "redirect_uri": callback.url,
        "code_verifier": verifier, "client_id": tenant.client_id, "client_secret": tenant.client_secret,
    }, timeout=30)  # fmt: skip
    assert tokens.status_code == 200, tokens.text
    token: str = tokens.json()["id_token"]
    return token


def test_a_tenant_writes_tests_deploys_binds_watches_and_rolls_back_an_action(
    context: tuple[BrowserContext, Watch], base_url: str, tenant: Tenant, callback: Callback
) -> None:
    """The issue's story in one browser: every step through the management API, each visible on the screen."""
    browser_context, watch = context
    page = browser_context.new_page()
    sign_in(page, base_url, tenant.key, "01-sign-in")
    expect(page.get_by_role("heading", name="Actions")).to_be_visible()
    expect(page.locator("header")).to_contain_text("Tenant acme-console")
    assert page.evaluate("sessionStorage.getItem('tollgate.key')") == tenant.key
    assert browser_context.cookies() == [] and tenant.key not in page.url
    expect(page.get_by_role("link", name="audit")).to_be_visible()
    shot(page, "02-actions")

    # A syntax error on line 4: the compiler's line and column, marked in the editor.
    page.get_by_role("link", name="New action").click()
    page.get_by_label("Name").fill("add-claim")
    paste_code(page, BROKEN)
    watch.refusal(400, f"{base_url}/api/v2/actions/actions")
    page.get_by_role("button", name="Create action").click()
    expect(page.get_by_role("alert")).to_contain_text("Line 4, column 28")
    assert marked_line(page) == (4, "    event.secrets.GREETING event.user.email);")
    shot(page, "03-syntax-error")

    paste_code(page, FIXED)
    page.get_by_role("button", name="Create action").click()
    expect(page.get_by_role("heading", name="add-claim")).to_be_visible()
    expect(page.locator(".summary")).to_contain_text("not deployed yet")
    expect(page.locator(".cm-lintRange-error")).to_have_count(0)

    # The secret: set through its panel, listed by name, its value never on the page again.
    page.get_by_role("tab", name="Secrets").click()
    page.get_by_label("Secret name").fill("GREETING")
    page.get_by_label("Secret value").fill(GREETING)
    page.get_by_role("button", name="Set secret").click()
    expect(page.get_by_role("row", name=re.compile("GREETING"))).to_be_visible()
    assert GREETING not in page.content()

    # The test panel: the trigger's sample event, then commands, console output and the limits.
    page.get_by_role("tab", name="Test").click()
    expect(page.get_by_label("Event (JSON)")).to_have_value(re.compile("jane.doe@example.com"))
    page.get_by_role("button", name="Run test").click()
    result = page.locator(".test-result")
    expect(result.locator(".badge")).to_have_text("completed")
    expect(result.locator(".commands")).to_contain_text('"type": "set_claim"')
    expect(result.locator(".commands")).to_contain_text(GREETING)
    expect(result.locator(".logs")).to_have_text("log: welcome jane.doe@example.com")
    fuel = result.get_by_role("row", name=re.compile("^Fuel"))
    expect(fuel).to_contain_text("1,000,000,000")
    fuel.scroll_into_view_if_needed()
    shot(page, "04-test")

    page.get_by_role("button", name="Deploy").click()
    expect(page.get_by_role("status").filter(has_text="Deployed as version 1")).to_be_visible()
    paste_code(page, SECOND)
    expect(page.get_by_text("unsaved changes")).to_be_visible()
    page.get_by_role("button", name="Deploy").click()
    expect(page.get_by_role("status").filter(has_text="Deployed as version 2")).to_be_visible()
    expect(page.get_by_text("unsaved changes")).to_be_hidden()

    # The history, and what changed from version 1 to version 2.
    page.get_by_role("tab", name="Versions").click()
    page.get_by_label("From version").select_option(label="Version 1")
    page.get_by_label("To version").select_option(label="Version 2")
    diff = page.locator(".diff")
    expect(diff.locator("figcaption")).to_have_text("version 1 → version 2: 1 line added, 1 removed")
    expect(diff.locator(".del")).to_have_text("-  console.log('welcome', event.user.email);")
    expect(diff.locator(".add")).to_have_text("+  console.log('welcome back', event.user.email);")
    shot(page, "05-versions")

    # The flow: add the new action, put audit first with the keyboard, save.
    page.get_by_role("link", name="Flow").click()
    expect(page.get_by_role("heading", name="Post-login flow")).to_be_visible()
    for name in ("add-claim", "audit"):
        page.get_by_label("Deployed action to add").select_option(label=name)
        page.get_by_role("button", name="Add to the flow").click()
    page.get_by_role("button", name="Move audit up").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".flow li .flow-name")).to_have_text(["audit", "add-claim"])
    page.get_by_role("button", name="Save flow").click()
    expect(page.get_by_role("status").filter(has_text="Flow saved: audit → add-claim")).to_be_visible()
    shot(page, "06-flow")
    with Tollgate(base_url, tenant.key) as acme:
        assert [b["action"]["name"] for b in acme.actions.bindings()] == ["audit", "add-claim"]

    # The live tail is on before the login starts, in another tab of the same browser.
    page.get_by_role("link", name="Executions").click()
    page.get_by_role("button", name="Start the live tail").click()
    expect(page.locator("[data-following]")).to_have_text(re.compile("Following"))
    app = browser_context.new_page()
    claims = jwt.decode(sign_in_to_the_app(app, base_url, tenant, callback, fill=True),
                        options={"verify_signature": False})  # fmt: skip
    assert claims[CLAIM] == GREETING and claims["email"] == EMAIL
    live = page.get_by_role("list", name="Runs as they are recorded, newest first")
    expect(live.locator("li", has_text="add-claim")).to_contain_text(f"log: welcome back {EMAIL}")
    expect(live.locator("li", has_text="audit")).to_contain_text("log: audit")
    expect(live.locator("li", has_text="add-claim")).to_contain_text("login")
    page.bring_to_front()
    shot(page, "08-live-tail")

    # Roll back to version 1: a copy deployed as version 3, and the next login runs it.
    page.get_by_role("link", name="Actions").click()
    page.get_by_role("link", name="add-claim").click()
    page.get_by_role("tab", name="Versions").click()
    page.get_by_role("button", name="Roll back to version 1").click()
    expect(page.get_by_role("status").filter(has_text="Rolled back: version 3, a copy of version 1")).to_be_visible()
    expect(page.locator(".summary")).to_contain_text("version 3 deployed")
    expect(page.locator("[data-version='3']")).to_contain_text("a copy of version 1")
    shot(page, "09-rollback")
    sign_in_to_the_app(app, base_url, tenant, callback, fill=False)  # the session signs Jane in at once
    page.get_by_role("link", name="Executions").click()
    newest = page.locator("table.executions tbody tr").first
    expect(newest).to_contain_text("login")
    newest.get_by_role("button", name=re.compile("^Details")).click()
    expect(page.locator(".record").first).to_contain_text(f"log: welcome {EMAIL}")
    expect(page.locator(".record").first).not_to_contain_text("welcome back")

    # How the action runs: one test and two logins, all completed.
    page.get_by_role("link", name="Actions").click()
    page.get_by_role("link", name="add-claim").click()
    page.get_by_role("tab", name="Statistics").click()
    expect(page.locator(".figures")).to_contain_text("3 runs")
    expect(page.locator("[data-outcome='completed']")).to_have_text("completed: 3 (100%)")
    with Tollgate(base_url, tenant.key) as acme:
        action_id = acme.actions.list(name="add-claim")["actions"][0]["id"]
        buckets = len(acme.actions.stats(action_id)["buckets"])
    chart = page.get_by_role("img", name="Run time over time: p50 and p99")
    expect(chart.locator("circle.p99")).to_have_count(buckets)
    expect(chart.locator("circle.p50")).to_have_count(buckets)
    shot(page, "10-statistics")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to the Tollgate console")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_the_operator_edits_limits_within_the_maximums_reads_usage_and_manages_keys(
    context: tuple[BrowserContext, Watch], base_url: str, tenant: Tenant
) -> None:
    """The operator's view: a limit past the platform's maximum is refused with the API's words; usage and keys."""
    browser_context, watch = context
    with Tollgate(base_url, tenant.key) as acme:
        audit = acme.actions.list(name="audit")["actions"][0]
        acme.actions.test(audit["id"], acme.actions.sample_event())
    with Tollgate(base_url, OPERATOR_KEY) as operator:
        usage = operator.tenants.usage(tenant.id)
    page = browser_context.new_page()
    sign_in(page, base_url, OPERATOR_KEY)
    expect(page.get_by_role("heading", name="Tenants")).to_be_visible()
    expect(page.locator("header")).to_contain_text("Operator")
    shot(page, "11-tenants")

    page.get_by_role("link", name="acme-console").click()
    expect(page.get_by_role("heading", name="acme-console")).to_be_visible()
    expect(page.locator("[data-figure='executions']")).to_have_text(f"{usage['executions']:,}")
    expect(page.locator("[data-figure='fuel_used']")).to_have_text(f"{usage['fuel_used']:,}")
    expect(page.locator("[data-figure='tests']")).not_to_have_text("0")

    wall = page.get_by_label("wall_ms", exact=True)
    wall.fill("30000")
    watch.refusal(400, f"{base_url}/api/v2/tenants/{tenant.id}")
    page.get_by_role("button", name="Save limits").click()
    expect(page.get_by_role("alert")).to_have_text("Not saved: wall_ms may be at most 20,000")
    shot(page, "12-limit-refused")
    wall.fill("2000")
    page.get_by_role("button", name="Save limits").click()
    expect(page.get_by_role("status").filter(has_text="Limits saved: wall_ms.")).to_be_visible()
    expect(page.get_by_label("wall_ms", exact=True)).to_have_value("2000")

    page.get_by_role("button", name="Create a key").click()
    new_key = page.get_by_label("New API key").input_value()
    assert new_key.startswith("tgt_")
    with Tollgate(base_url, OPERATOR_KEY) as operator:
        made = next(k for k in operator.keys.list(tenant.id) if new_key.startswith(k["prefix"]))
        assert operator.tenants.get(tenant.id)["limits"]["wall_ms"] == 2000
    row = page.locator(f"tr[data-key='{made['prefix']}']")
    row.get_by_role("button", name=f"Revoke the key {made['prefix']}").click()
    row.get_by_role("button", name=f"Yes, revoke {made['prefix']}").click()
    expect(page.get_by_role("status").filter(has_text=f"Key {made['prefix']} revoked")).to_be_visible()
    expect(page.locator(f"tr[data-key='{made['prefix']}'] td").nth(1)).not_to_have_text("no")
    shot(page, "13-usage-and-keys")
    with Tollgate(base_url, new_key) as revoked, pytest.raises(ApiError) as refused:
        revoked.settings.get()
    assert refused.value.status == 401
