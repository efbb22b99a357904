"""The demo (``make demo``): Acme Bank's custom second factor, end to end, on a real server.

It runs what a new user would otherwise do by hand, and prints each step:

1. start ``tollgate serve`` on the embedded PostgreSQL, in ``.demo/`` (kept
   between runs, so a second demo starts in seconds);
2. create the ``acme-bank`` tenant from ``tenants/acme-bank/tenant.json``
   through the management API (:mod:`sdk.client`): client, user, allowed
   hosts, the custom-factor action with its secret, deployed and bound. A
   tenant left by an earlier demo is deleted first, so every run starts from
   the descriptor;
3. serve the bank's verification page (:mod:`sdk.factor_page`) over HTTPS;
4. play a browser (a cookie jar that follows redirects one at a time) and the
   client app: sign in with PKCE, get sent to the factor with a session
   token, come back through ``/continue``, exchange the code for tokens and
   check the ID token against the tenant's keys;
5. sign in again in the same browser (straight through: the session holds the
   factor) and in a new one (asked again);
6. stop the server with Ctrl+C's signal, which stops the embedded PostgreSQL.

Nothing leaves this machine: the demo's browser resolves the made-up hosts
itself. The demo is also a smoke test: it exits 1 at the first step that does
not behave as it should, saying what happened instead, with the end of the
server's log.

``--database-url`` runs the server on that PostgreSQL database instead of
the embedded one (the test suite uses it to be quick).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import jwt

from runtime.vault import MasterKeyring
from sdk.client import Tollgate, TollgateError
from sdk.descriptor import CreatedTenant, CreatedUser, DescriptorError, create_tenant, load
from sdk.factor_page import FactorPage

ROOT = Path(__file__).resolve().parent.parent
TENANT_FOLDER = ROOT / "tenants" / "acme-bank"
DEFAULT_HOME = ROOT / ".demo"
FACTOR_URL = "https://verify.acme-bank.example/factor"
FACTOR_HOST = urlsplit(FACTOR_URL).hostname or ""
ACTION, SECRET_NAME = "custom-factor", "SESSION_TOKEN_SECRET"
APP_STATE = "app-" + secrets.token_hex(4)
RULE = "─" * 78


class DemoFailed(Exception):
    """A step did not behave as it should; the message says what happened instead."""


def expect(condition: bool, failure: str) -> None:
    if not condition:
        raise DemoFailed(failure)


@dataclass
class Narrator:
    """Prints the story: numbered steps, and what happened in each, indented."""

    step_count: int = 0

    def step(self, title: str) -> None:
        self.step_count += 1
        print(f"\n{RULE}\n{self.step_count}. {title}\n", flush=True)

    def say(self, text: str = "") -> None:
        print(("   " + text) if text else "", flush=True)


def short(text: str, keep: int = 16) -> str:
    """A token or secret as the demo shows it: its start only."""
    return text if len(text) <= keep else text[:keep] + "…"


def path_of(url: str) -> str:
    """`url` without its origin, with long query values shortened, as the demo prints requests."""
    parts = urlsplit(url)
    query = "&".join(f"{k}={short(v[0], 12)}" for k, v in parse_qs(parts.query).items())
    return parts.path + (f"?{query}" if query else "")


# -- the server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _master_key(home: Path) -> str:
    """The demo home's master key file (as the embedded default keeps it), made on first use."""
    path = home / "master.key"
    if path.exists():
        return path.read_text().strip()
    text = MasterKeyring.generate_text()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return text


class Server:
    """``tollgate serve`` in a child process, started as an operator would, its output in a log file."""

    def __init__(self, home: Path, database_url: str | None) -> None:
        self.home = home
        self.embedded = database_url is None
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "server.log"
        # The operator key is ours to choose: a new one each run, never stored.
        self.operator_key = "tgo_demo_" + secrets.token_urlsafe(32)
        # A demo runs one login at a time: two executors start quicker than one per core.
        self.arguments = ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--executors", "2"]
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TOLLGATE_HOME", "TOLLGATE_MASTER_KEY")}
        env.update(
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
            PYTHONUNBUFFERED="1",
            TOLLGATE_HOME=str(home),
            TOLLGATE_OPERATOR_KEY=self.operator_key,
        )
        if database_url is not None:
            env.update(DATABASE_URL=database_url, TOLLGATE_MASTER_KEY=_master_key(home))
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> float:
        """Start the server and wait until it answers; the seconds it took."""
        started = time.monotonic()
        with self.log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
            command = [sys.executable, "-m", "runtime.cli", *self.arguments]
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise DemoFailed(f"tollgate serve exited with status {self.process.returncode} before it was ready")
            try:
                if httpx2.get(self.url + "/api/v2/openapi.json", timeout=2, trust_env=False).status_code == 200:
                    return time.monotonic() - started
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
        raise DemoFailed(f"tollgate serve did not answer within {timeout:.0f} s")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        """Stop the server as Ctrl+C does (the embedded PostgreSQL stops with it); its exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


# -- the browser and the app -----------------------------------------------------------------


class ResolvingTransport(httpx2.BaseTransport):
    """An /etc/hosts entry for one client: requests to `hosts` go to 127.0.0.1 on the given ports.

    The request keeps its Host header and TLS still checks the certificate
    against the real name (sent as SNI), as it would be for the real site.
    """

    def __init__(self, hosts: Mapping[str, int], trust: ssl.SSLContext) -> None:
        self._hosts = dict(hosts)
        self._inner = httpx2.HTTPTransport(verify=trust)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        port = self._hosts.get(request.url.host)
        if port is not None:
            request = httpx2.Request(
                request.method, request.url.copy_with(host="127.0.0.1", port=port), headers=request.headers,
                stream=request.stream, extensions={**request.extensions, "sni_hostname": request.url.host},
            )  # fmt: skip
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(values.get("action", ""), values.get("method", "get").lower()))
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1].fields[values["name"]] = values.get("value", "")
        self._in_title = tag == "title"

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


@dataclass(frozen=True)
class Page:
    """A page the browser shows: its title and its first form."""

    title: str
    form: Form | None


class Browser:
    """What the login needs of a browser: a cookie jar, redirects followed one at a time, forms submitted.

    A new Browser is a new device: no cookies, so no session.
    """

    def __init__(self, transport: httpx2.BaseTransport) -> None:
        self.http = httpx2.Client(
            transport=transport, follow_redirects=False, timeout=30, trust_env=False,
            headers={"User-Agent": "Mozilla/5.0 (Tollgate demo browser)", "Accept-Language": "en-GB"},
        )  # fmt: skip

    def get(self, url: str) -> httpx2.Response:
        return self.http.get(url)

    def submit(self, page_url: httpx2.URL, form: Form, **values: str) -> httpx2.Response:
        target = page_url.join(form.action)
        data = {**form.fields, **values}
        return self.http.post(target, data=data) if form.method == "post" else self.http.get(target, params=data)

    def close(self) -> None:
        self.http.close()


def read_page(response: httpx2.Response) -> Page:
    parser = _FormParser()
    parser.feed(response.text)
    return Page(parser.title.strip(), parser.forms[0] if parser.forms else None)


def location(response: httpx2.Response) -> str:
    expect(response.status_code in (302, 303), f"expected a redirect, got HTTP {response.status_code}")
    return response.headers["location"]


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).decode().rstrip("="))


@dataclass(frozen=True)
class Attempt:
    """One login the app starts: its PKCE pair and nonce."""

    pkce: Pkce = field(default_factory=Pkce.new)
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))


@dataclass
class App:
    """Acme Bank's web app: it starts logins and redeems codes at the tenant's token endpoint."""

    issuer: str
    client_id: str
    client_secret: str
    callback: str
    http: httpx2.Client

    def authorize_url(self, attempt: Attempt) -> str:
        query = {
            "response_type": "code", "client_id": self.client_id, "redirect_uri": self.callback,
            "scope": "openid profile email", "state": APP_STATE, "nonce": attempt.nonce,
            "code_challenge": attempt.pkce.challenge, "code_challenge_method": "S256",
        }  # fmt: skip
        return f"{self.issuer}authorize?{urlencode(query)}"

    def code_from(self, callback_url: str) -> str:
        """The code on the app's callback; the app checks its own state came back."""
        expect(callback_url.startswith(self.callback + "?"), f"expected the app's callback, got {callback_url}")
        query = parse_qs(urlsplit(callback_url).query)
        expect("error" not in query, f"the login failed: {query.get('error')} {query.get('error_description')}")
        expect(query.get("state") == [APP_STATE], "the callback does not carry the app's state")
        return query["code"][0]

    def tokens(self, code: str, attempt: Attempt) -> dict[str, Any]:
        reply = self.http.post(
            self.issuer + "oauth/token",
            data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": self.callback,
                "code_verifier": attempt.pkce.verifier,
                "client_id": self.client_id, "client_secret": self.client_secret,
            },
        )  # fmt: skip
        expect(reply.status_code == 200, f"the token endpoint answered HTTP {reply.status_code}: {reply.text}")
        body: dict[str, Any] = reply.json()
        return body

    def id_claims(self, id_token: str, nonce: str) -> tuple[dict[str, Any], str]:
        """The ID token's claims, checked against the keys the discovery document names; and the key id."""
        discovery = self.http.get(self.issuer + ".well-known/openid-configuration").json()
        expect(discovery["issuer"] == self.issuer, f"the discovery document names another issuer: {discovery}")
        keys = self.http.get(discovery["jwks_uri"]).json()["keys"]
        kid = jwt.get_unverified_header(id_token).get("kid")
        jwk = next((k for k in keys if k.get("kid") == kid), None)
        if jwk is None:
            raise DemoFailed(f"the ID token's key {kid} is not in the tenant's JWKS")
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token, jwt.PyJWK(jwk), algorithms=["RS256"], audience=self.client_id, issuer=self.issuer
            )
        except jwt.PyJWTError as exc:
            raise DemoFailed(f"the ID token does not verify: {exc}") from None
        expect(claims.get("nonce") == nonce, "the ID token does not carry the app's nonce")
        return claims, str(kid)


# -- the story -------------------------------------------------------------------------------


@dataclass
class Story:
    """The demo's steps, in order: each prints what happens and checks that it is what should happen."""

    server: Server
    out: Narrator = field(default_factory=Narrator)
    factor: FactorPage | None = None
    browsers: list[Browser] = field(default_factory=list)

    def run(self) -> None:
        self.start_server()
        tenant = self.create_tenant()
        client, user = next(iter(tenant.clients.values())), next(iter(tenant.users.values()))
        issuer = f"{self.server.url}/t/{tenant.name}/"
        secret = tenant.actions[ACTION].secrets[SECRET_NAME]
        self.start_factor_page(secret, issuer + "continue")
        with httpx2.Client(timeout=30, trust_env=False) as back_end:
            app = App(issuer, client.client_id, client.client_secret, client.callbacks[0], back_end)
            browser, attempt = self.new_browser(), Attempt()
            form = self.open_login(browser, app, attempt)
            target = self.sign_in(browser, form, user, secret)
            code = self.pass_factor(browser, app, target)
            claims = self.exchange(app, code, attempt, user)
            self.sign_in_again(browser, app, claims)
            self.new_device(app, user)

    def start_server(self) -> None:
        server, out = self.server, self.out
        where = "the embedded PostgreSQL" if server.embedded else "the PostgreSQL database of --database-url"
        out.step(f"Start the server: tollgate serve, on {where}")
        out.say(f"tollgate {' '.join(server.arguments)}")
        out.say(f"with TOLLGATE_HOME={_shown(server.home)} (its log: {_shown(server.log_path)})")
        if server.embedded and not (server.home / "pgdata" / "PG_VERSION").exists():
            out.say(f"First start: the embedded PostgreSQL is created in {_shown(server.home / 'pgdata')}.")
        seconds = server.start()
        out.say(f"Ready in {seconds:.1f} s: the management API is at {server.url}/api/v2")

    def create_tenant(self) -> CreatedTenant:
        out = self.out
        descriptor = load(TENANT_FOLDER)
        out.step(f"Create the tenant {_shown(TENANT_FOLDER / 'tenant.json')} describes, with the management API")
        # The demo talks to 127.0.0.1 only: its own transport keeps any proxy settings out of the way.
        with Tollgate(self.server.url, self.server.operator_key, transport=httpx2.HTTPTransport()) as operator:
            for earlier in (t for t in operator.tenants.list() if t["name"] == descriptor.name):
                operator.tenants.delete(earlier["id"])
                out.say(f"An earlier demo's {descriptor.name} tenant is there: deleted, to start from the descriptor.")
            return create_tenant(operator, descriptor, report=out.say)

    def start_factor_page(self, secret: str, continue_url: str) -> None:
        self.out.step("Start the bank's verification page, the site the action sends users to")
        self.factor = FactorPage(FACTOR_HOST, secret=secret, continue_url=continue_url).__enter__()
        self.out.say(f"{FACTOR_URL} is served on 127.0.0.1:{self.factor.port}, over HTTPS with a")
        self.out.say("certificate made now for its name. The demo's browser trusts that certificate and resolves")
        self.out.say("the name itself: nothing goes to DNS or /etc/hosts. The page holds the SESSION_TOKEN_SECRET")
        self.out.say("generated for the action when the tenant was created.")

    def open_login(self, browser: Browser, app: App, attempt: Attempt) -> tuple[httpx2.URL, Form]:
        self.out.step("Jane opens Acme Bank's app, which sends her browser to the hosted login")
        url = app.authorize_url(attempt)
        reply = browser.get(url)
        page = read_page(reply)
        expect(reply.status_code == 200 and page.form is not None, f"no login form: HTTP {reply.status_code}")
        assert page.form is not None
        self.out.say(f"GET {urlsplit(url).path}?response_type=code&client_id={short(app.client_id, 8)}&redirect_uri=…")
        self.out.say("(the authorization code flow, with the app's state and nonce, and a PKCE S256 challenge:")
        self.out.say("the app keeps the code verifier to itself)")
        self.out.say(f'-> {reply.status_code}, the page "{page.title}": an email and a password to fill in.')
        return reply.url, page.form

    def sign_in(self, browser: Browser, form: tuple[httpx2.URL, Form], user: CreatedUser, secret: str) -> str:
        self.out.step("Jane signs in with her email and password; the action sends her to the factor")
        reply = browser.submit(*form, email=user.email, password=user.password)
        target = location(reply)
        expect(target.startswith(FACTOR_URL + "?"), f"expected to be sent to the factor, was sent to {target}")
        self.out.say(f"POST {form[1].action} -> {reply.status_code} to {FACTOR_URL}?session_token=…&state=…")
        self.out.say("The password is right, so the post-login flow runs custom-factor's onExecutePostLogin. This")
        self.out.say("new session has no record of the factor: the action redirects, with a token it signed.")
        sent = parse_qs(urlsplit(target).query)
        expect("session_token" in sent and "state" in sent, f"the redirect lacks a session_token or a state: {target}")
        try:
            claims = jwt.decode(sent["session_token"][0], secret, algorithms=["HS256"], options={"verify_iss": False})
        except jwt.PyJWTError as exc:
            raise DemoFailed(f"the action's session token does not verify with {SECRET_NAME}: {exc}") from None
        self.out.say(f"session_token: sub {claims['sub']}, iss {claims['iss']} (the login's host name),")
        self.out.say(f"user_id {claims['user_id']}, good for {_minutes(claims)};")
        self.out.say(f"state {short(sent['state'][0])}: added by the platform, which suspended the login under it.")
        return target

    def pass_factor(self, browser: Browser, app: App, target: str) -> str:
        self.out.step("The verification page checks the token, approves, and posts Jane back to /continue")
        reply = browser.get(target)
        page = read_page(reply)
        expect(reply.status_code == 200 and page.form is not None, f"the factor refused: {reply.text[:300]}")
        assert page.form is not None
        self.out.say(f'GET {path_of(target)} -> {reply.status_code}, "{page.title}"')
        self.out.say("The page checked the session token with the shared secret, then signed its own answer")
        self.out.say("(HS256: iat, exp, sub, the same iss, state, user_id, verified: true) in a form that")
        self.out.say("submits itself:")
        answer = page.form.fields.get("session_token", "")
        reply = browser.submit(reply.url, page.form)
        callback = location(reply)
        code = app.code_from(callback)
        state = short(page.form.fields.get("state", ""), 12)
        self.out.say(f"POST {urlsplit(page.form.action).path} state={state} session_token={short(answer, 12)}")
        self.out.say(f"-> {reply.status_code} to {app.callback}?code={short(code, 8)}&state={APP_STATE}")
        self.out.say("onContinuePostLogin validated the answer (a forged or expired one fails the login) and")
        self.out.say(f"recorded {FACTOR_URL} in the session's authentication methods.")
        self.out.say("The login is complete: the browser is back at the app, with a code.")
        return code

    def exchange(self, app: App, code: str, attempt: Attempt, user: CreatedUser) -> dict[str, Any]:
        self.out.step("The app exchanges the code for tokens and checks the ID token")
        tokens = app.tokens(code, attempt)
        names = ", ".join(k for k in tokens if k.endswith("token"))
        self.out.say(f"POST {urlsplit(app.issuer).path}oauth/token (code, PKCE verifier, client secret)")
        self.out.say(f"-> 200: {names}")
        claims, kid = app.id_claims(tokens["id_token"], attempt.nonce)
        expect(claims["sub"] == user.user_id, "the ID token is about another user")
        self.out.say(f"The ID token verifies (RS256, key {short(kid, 12)} of the tenant's JWKS; audience, nonce):")
        for name in ("iss", "sub", "aud", "email", "email_verified", "name", "sid", "auth_time"):
            value = claims.get(name)
            self.out.say(f"  {name:<15} {_when(value) if name == 'auth_time' else value}")
        self.out.say("Jane is signed in to the app.")
        return claims

    def sign_in_again(self, browser: Browser, app: App, first: dict[str, Any]) -> None:
        self.out.step("Later, Jane signs in to the app again in the same browser: straight through")
        attempt = Attempt()
        url = app.authorize_url(attempt)
        reply = browser.get(url)
        callback = location(reply)
        expect(not callback.startswith(FACTOR_URL), "the browser was sent to the factor again")
        code = app.code_from(callback)
        claims, _ = app.id_claims(app.tokens(code, attempt)["id_token"], attempt.nonce)
        expect(claims["sid"] == first["sid"], "the second login is in another session")
        self.out.say(f"GET {urlsplit(url).path}?… (a new state, nonce and PKCE challenge; the session cookie is sent)")
        self.out.say(f"-> {reply.status_code} to the app's callback with a code at once: no form, no factor, and the")
        self.out.say(f"ID token names the same session (sid {short(claims['sid'], 13)}).")
        self.out.say("The session cookie brought the session back, and with it the methods it holds: the action")
        self.out.say(f"ran again and found {FACTOR_URL} in event.authentication.methods,")
        self.out.say("recorded moments ago, well within its 24 hours, so it had nothing to ask.")

    def new_device(self, app: App, user: CreatedUser) -> None:
        self.out.step("On another device (a new browser, so a new session), the factor is asked again")
        browser = self.new_browser()
        url = app.authorize_url(Attempt())
        reply = browser.get(url)
        page = read_page(reply)
        expect(page.form is not None, "the new browser was not asked to sign in")
        assert page.form is not None
        self.out.say(f'GET {urlsplit(url).path}?… -> {reply.status_code}, "{page.title}": no session in this browser')
        reply = browser.submit(reply.url, page.form, email=user.email, password=user.password)
        target = location(reply)
        expect(target.startswith(FACTOR_URL + "?"), f"the new session was not sent to the factor: {target}")
        self.out.say(f"POST {page.form.action} -> {reply.status_code} to {FACTOR_URL}?session_token=…")
        self.out.say("The factor was recorded in a session, not on the user: a new session asks for it again.")

    def new_browser(self) -> Browser:
        assert self.factor is not None
        trust = ssl.create_default_context(cadata=self.factor.certificate.decode())
        browser = Browser(ResolvingTransport({FACTOR_HOST: self.factor.port}, trust))
        self.browsers.append(browser)
        return browser

    def stop(self) -> None:
        """The last step: stop the server as an operator does, and check that it stopped cleanly."""
        self.close()
        server = self.server
        self.out.step("Stop the server (SIGINT, as Ctrl+C does)")
        status = server.stop()
        expect(status == 0, f"tollgate serve exited with status {status}")
        if server.embedded:
            pid_file = server.home / "pgdata" / "postmaster.pid"
            expect(not pid_file.exists(), "the embedded PostgreSQL is still running")
            self.out.say("Stopped, and the embedded PostgreSQL with it. Its data stays in")
            self.out.say(f"{_shown(server.home)} for the next run, which starts from the descriptor again.")
        else:
            self.out.say("Stopped.")

    def close(self) -> None:
        for browser in self.browsers:
            browser.close()
        self.browsers.clear()
        if self.factor is not None:
            self.factor.close()
            self.factor = None


def _shown(path: Path) -> str:
    """`path` relative to the repository when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _when(epoch: Any) -> str:
    moment = datetime.fromtimestamp(int(epoch), UTC) if isinstance(epoch, int) else None
    return f"{epoch} ({moment:%H:%M:%S} UTC)" if moment else str(epoch)


def _minutes(claims: dict[str, Any]) -> str:
    return f"{(int(claims['exp']) - int(claims['iat'])) // 60} minutes"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdk.demo", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="the server's TOLLGATE_HOME (default: .demo)")
    parser.add_argument(
        "--database-url", help="run on this PostgreSQL database, not the embedded one (master key: HOME/master.key)"
    )
    args = parser.parse_args(argv)
    home: Path = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)

    print("Tollgate demo: Acme Bank's custom second factor, end to end")
    print(f"The action: {_shown(TENANT_FOLDER / 'actions' / 'custom-factor.js')}, the announcement's code.")
    story = Story(Server(home, args.database_url))
    try:
        story.run()
        story.stop()
    except (DemoFailed, DescriptorError, TollgateError, httpx2.HTTPError, OSError) as exc:
        print(f"\nThe demo failed at step {story.out.step_count}: {exc}", file=sys.stderr)
        log = story.server.log().splitlines()
        if log:
            print(f"\nThe end of the server's log ({_shown(story.server.log_path)}):", file=sys.stderr)
            print("\n".join("   " + line for line in log[-25:]), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    finally:
        story.close()
        story.server.stop()
    print(f"\n{RULE}\nDemo complete: the custom factor was asked once per session, on a real server, end to end.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
