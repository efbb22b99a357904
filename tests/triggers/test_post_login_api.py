"""The post-login api inside the sandbox: what each method records, checks and returns."""

import json
from typing import Any

import pytest

from runtime.limits import Limits
from runtime.sandbox import ActionThrew, ExecutionResult, compile_action, execute
from tests.helpers import handler_source, logged, run

EVENT: dict[str, Any] = {
    "user": {"user_id": "auth0|u1", "app_metadata": {}, "user_metadata": {}},
    "request": {"hostname": "login.example.com", "ip": "192.0.2.7", "query": {}, "body": {}},
    "transaction": {"protocol": "oidc-basic-profile", "metadata": {}},
    "session": {"id": "s1"},
}


def commands(body: str, event: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    result = run(body, event if event is not None else EVENT, **kwargs)
    assert result.ok, result.error
    return result.commands


def thrown(body: str, event: dict[str, Any] | None = None, **kwargs: Any) -> ActionThrew:
    result: ExecutionResult = run(body, event if event is not None else EVENT, **kwargs)
    assert isinstance(result.error, ActionThrew), result.error
    assert result.commands == []
    return result.error


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("api.access.deny('Not today')", {"type": "deny", "reason": "Not today"}),
        (
            "api.accessToken.setCustomClaim('https://x/roles', ['a'])",
            {"type": "set_claim", "token": "access", "key": "https://x/roles", "value": ["a"]},
        ),
        ("api.idToken.setCustomClaim('n', 1)", {"type": "set_claim", "token": "id", "key": "n", "value": 1}),
        ("api.accessToken.addScope('read:x')", {"type": "add_scope", "token": "access", "scope": "read:x"}),
        ("api.accessToken.removeScope('write:x')", {"type": "remove_scope", "token": "access", "scope": "write:x"}),
        (
            "api.authentication.challengeWith({type: 'otp'}, {additionalFactors: [{type: 'email'}]})",
            {"type": "challenge_with", "factor": {"type": "otp"}, "additional_factors": [{"type": "email"}]},
        ),
        (
            "api.authentication.challengeWithAny([{type: 'otp'}, {type: 'phone', options: {preferredMethod: 'sms'}}])",
            {
                "type": "challenge_with_any",
                "factors": [{"type": "otp"}, {"type": "phone", "options": {"preferredMethod": "sms"}}],
            },
        ),
        (
            "api.authentication.enrollWith({type: 'webauthn-platform'})",
            {"type": "enroll_with", "factor": {"type": "webauthn-platform"}, "additional_factors": []},
        ),
        (
            "api.authentication.enrollWithAny([{type: 'otp'}])",
            {"type": "enroll_with_any", "factors": [{"type": "otp"}]},
        ),
        ("api.authentication.setPrimaryUser('auth0|p')", {"type": "set_primary_user", "user_id": "auth0|p"}),
        (
            "api.multifactor.enable('any', {allowRememberBrowser: true})",
            {"type": "enable_mfa", "provider": "any", "allow_remember_browser": True},
        ),
        (
            "api.redirect.sendUserTo('https://f.example/go?keep=1', {query: {a: 'b c', keep: 2}})",
            {"type": "redirect", "url": "https://f.example/go?keep=2&a=b+c"},
        ),
        (
            "api.redirect.sendUserTo('https://f.example/go#', {query: {a: 'b c'}})",
            {"type": "redirect", "url": "https://f.example/go?a=b+c#"},
        ),
        (
            "api.redirect.sendUserTo('https://f.example/go#step-2', {query: {a: 1}})",
            {"type": "redirect", "url": "https://f.example/go?a=1#step-2"},
        ),
        (
            "api.user.setAppMetadata('plan', {tier: 'gold'})",
            {"type": "set_app_metadata", "key": "plan", "value": {"tier": "gold"}},
        ),
        ("api.user.setUserMetadata('lang', null)", {"type": "set_user_metadata", "key": "lang", "value": None}),
        ("api.transaction.setMetadata('step', 2)", {"type": "set_transaction_metadata", "key": "step", "value": 2}),
        (
            "api.validation.error('invalid_email', 'Use work email')",
            {"type": "validation_error", "code": "invalid_email", "message": "Use work email"},
        ),
        (
            "api.session.revoke('stolen', {preserveRefreshTokens: true})",
            {"type": "revoke_session", "reason": "stolen", "preserve_refresh_tokens": True},
        ),
        ("api.session.setExpiresAt(1800000000000)", {"type": "set_session_expires_at", "at_ms": 1800000000000}),
        (
            "api.session.setIdleExpiresAt(1800000000000)",
            {"type": "set_session_idle_expires_at", "at_ms": 1800000000000},
        ),
        ("api.session.setCookieMode('non-persistent')", {"type": "set_session_cookie_mode", "mode": "non-persistent"}),
        (
            "api.session.setMetadata('device', 'laptop')",
            {"type": "set_session_metadata", "key": "device", "value": "laptop"},
        ),
        ("api.session.deleteMetadata('device')", {"type": "set_session_metadata", "key": "device", "value": None}),
        ("api.session.evictMetadata()", {"type": "evict_session_metadata"}),
    ],
)
def test_each_method_records_its_command(call: str, expected: dict[str, Any]) -> None:
    """Each api method records one command describing what it asked for."""
    assert commands(call) == [expected]


REDIRECT_TARGETS = [
    "https://f.example/go",
    "https://f.example",
    "http://f.example/a/b/",
    "https://verify.acme-bank.example/factor",
    "https://f.example:8443/go",
    "https://f.example:443/go",
    "https://f.example/go?keep=1",
    "https://f.example/go#frag",
    "https://f.example/a/../b",
    "https://F.Example/Go",
    "https://f.example/go path",
    "https://0x7f.1/go",
    "https://f.example/%2e/x",
]
REDIRECT_QUERIES = [
    "undefined",
    "{}",
    "{session_token: 'a.b.c'}",
    "{a: 'b c', 'x y': 'é/&=?#+%', n: 5, t: true, nil: null, u: undefined}",
    "{2: 'two', b: 'b', 1: 'one'}",
    "{s: Symbol('sym'), o: {toString() { return 'O'; }}, arr: [1, 2]}",
    "{lone: '\\ud800x'}",
    "Object.defineProperty({a: 1}, 'hidden', {value: 2, enumerable: false})",
    "Object.assign(Object.create({inherited: 1}), {own: 2})",
    "new Proxy({p: 1}, {})",
]


def test_redirect_targets_match_the_url_standard_whichever_path_makes_them() -> None:
    """sendUserTo's one-step target for plain URLs equals what URL and URLSearchParams make of them."""
    body = (
        f"const targets = {json.dumps(REDIRECT_TARGETS)};"
        f" const queries = [{', '.join(REDIRECT_QUERIES)}];"
        " for (const url of targets) for (const query of queries) {"
        "   let expected; try { const t = new URL(url);"
        "     if (query !== undefined) for (const k of Object.keys(query))"
        "       if (query[k] !== undefined) t.searchParams.set(k, String(query[k]));"
        "     expected = t.href; } catch (e) { expected = 'throws'; }"
        "   let made; try { api.redirect.sendUserTo(url, {query}); made = 'recorded'; } catch (e) { made = 'throws'; }"
        "   console.log(JSON.stringify([url, String(query && Object.keys(query)), expected, made]));"
        " }"
    )
    result = run(body, EVENT, limits=Limits(max_commands=1000))
    assert result.ok, result.error
    lines = [json.loads(line) for line in logged(result)]
    redirects = iter(c["url"] for c in result.commands)
    checked = 0
    for url, keys, expected, made in lines:
        assert (made == "throws") == (expected == "throws"), (url, keys)
        if made == "recorded":
            got = next(redirects)
            if "?" in url:
                continue  # URLSearchParams.set reorders a query the URL already has; the cases above cover it
            assert got == expected, (url, keys)
            checked += 1
    assert checked >= 60


def test_methods_chain_by_returning_api() -> None:
    """The methods the hosted product chains return api."""
    out = commands(
        "api.access.deny('a').idToken.setCustomClaim('k', 1).authentication.setPrimaryUser('p')"
        ".multifactor.enable('none').user.setAppMetadata('x', 1).transaction.setMetadata('t', 'v')"
        ".redirect.sendUserTo('https://f.example/')"
    )
    assert [c["type"] for c in out] == [
        "deny",
        "set_claim",
        "set_primary_user",
        "enable_mfa",
        "set_app_metadata",
        "set_transaction_metadata",
        "redirect",
    ]


def test_commands_capture_values_when_made() -> None:
    """A claim value changed after the call is recorded as it was at the call."""
    out = commands("const v = {n: 1}; api.idToken.setCustomClaim('k', v); v.n = 2;")
    assert out[0]["value"] == {"n": 1}


def test_code_after_deny_still_runs() -> None:
    """deny records intent; the action runs on to its end, as in the hosted product."""
    result = run("api.access.deny('no'); console.log('after deny'); api.user.setAppMetadata('k', 1);", EVENT)
    assert logged(result) == ["after deny"]
    assert [c["type"] for c in result.commands] == ["deny", "set_app_metadata"]


def test_record_method_is_refused_outside_on_continue() -> None:
    """recordMethod in onExecutePostLogin throws and records nothing."""
    error = thrown("api.authentication.recordMethod('https://factor.example/m')")
    assert error.message == (
        "api.authentication.recordMethod() can only be called in onContinuePostLogin, "
        "after the user returns from a redirect"
    )


def test_record_method_in_on_continue_records_the_url() -> None:
    """recordMethod in onContinuePostLogin records the method's URL."""
    out = commands("api.authentication.recordMethod('https://Factor.Example/m')", handler="onContinuePostLogin")
    assert out == [{"type": "record_method", "url": "https://factor.example/m"}]


@pytest.mark.parametrize(
    "url",
    ["http://factor.example/m", "factor.example/m", "", "https://" + "a" * 2100 + ".example/"],
    ids=["http", "relative", "empty", "too-long"],
)
def test_record_method_needs_an_absolute_https_url(url: str) -> None:
    """recordMethod accepts only absolute https URLs of at most 2048 characters."""
    error = thrown(f"api.authentication.recordMethod({json.dumps(url)})", handler="onContinuePostLogin")
    assert "absolute https URL" in error.message


def test_a_missing_on_continue_handler_is_a_clear_action_error() -> None:
    """Resuming an action without onContinuePostLogin fails with a message that says what to add."""
    action = compile_action(handler_source("api.redirect.sendUserTo('https://f.example/')"))
    result = execute(action, "onContinuePostLogin", EVENT)
    assert isinstance(result.error, ActionThrew)
    assert result.error.message == (
        "The action has no onContinuePostLogin handler. "
        'Export it as "exports.onContinuePostLogin = async function(event, api) { }".'
    )


def test_set_primary_user_is_allowed_once() -> None:
    """A second setPrimaryUser throws the hosted product's message."""
    error = thrown("api.authentication.setPrimaryUser('a'); api.authentication.setPrimaryUser('b')")
    assert error.message == "The primary user can only be altered once per transaction"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("api.accessToken.addScope('has space')", "1 to 280 characters without whitespace"),
        ("api.accessToken.addScope('x'.repeat(281))", "1 to 280 characters without whitespace"),
        ("api.multifactor.enable('sms')", "needs a provider among any, none, guardian"),
        ("api.multifactor.enable('duo', {providerOptions: {host: 'h'}})", "Duo needs providerOptions.ikey"),
        ("api.authentication.challengeWith({type: 'carrier-pigeon'})", "factors of a known type"),
        ("api.authentication.challengeWithAny([])", "non-empty array of factors"),
        ("api.authentication.setPrimaryUser('x'.repeat(129))", "1 to 128 characters"),
        ("api.transaction.setMetadata('k', {nested: true})", "strings, numbers or booleans"),
        ("api.transaction.setMetadata('k', 2 ** 60)", "safe integers"),
        ("api.transaction.setMetadata('k'.repeat(65), 'v')", "1 to 64 characters"),
        ("api.transaction.setMetadata('k', 'v'.repeat(8193))", "at most 8192 bytes"),
        ("api.session.setCookieMode('forever')", '"persistent" or "non-persistent"'),
        ("api.session.setMetadata('bad key!', 'v')", "[a-zA-Z0-9_-]"),
        ("api.session.setExpiresAt('tomorrow')", "milliseconds since the epoch"),
        ("api.redirect.sendUserTo('not a url')", "Invalid URL"),
        ("api.redirect.sendUserTo(42)", "must be a string"),
        ("api.idToken.setCustomClaim('k', 10n)", "BigInt"),
        ("api.refreshToken.revoke('x')", "only available during a refresh token exchange"),
        ("api.prompt.render('form_1')", "has no Forms"),
    ],
)
def test_bad_arguments_throw_a_clear_error(call: str, message: str) -> None:
    """Invalid arguments throw in the action (catchable), with a message that helps."""
    error = thrown(call)
    assert message in error.message


def test_transaction_metadata_is_visible_at_once_and_bounded_in_total() -> None:
    """setMetadata updates event.transaction.metadata immediately; 16 KB in total at most."""
    result = run(
        "api.transaction.setMetadata('a', 'x'); console.log(event.transaction.metadata.a);"
        "api.transaction.setMetadata('a', null); console.log(JSON.stringify(event.transaction.metadata));"
        "try { for (let i = 0; i < 3; i++) api.transaction.setMetadata('k' + i, 'v'.repeat(8000)) }"
        " catch (e) { console.log(e.message) }",
        EVENT,
    )
    assert logged(result) == ["x", "{}", "Transaction metadata must stay within 16384 bytes in total"]


def test_session_metadata_needs_a_session_and_is_visible_at_once() -> None:
    """Session metadata updates event.session.metadata; without a session it throws."""
    result = run("api.session.setMetadata('a', 'b'); console.log(event.session.metadata.a)", EVENT)
    assert logged(result) == ["b"]
    error = thrown("api.session.setMetadata('a', 'b')", {"user": {"user_id": "u"}})
    assert error.message == "There is no session in this transaction"


@pytest.mark.parametrize(
    ("event_changes", "expected"),
    [
        ({}, True),
        ({"request": {"query": {"prompt": "none"}}}, False),
        ({"transaction": {"protocol": "oauth2-refresh-token"}}, False),
        ({"transaction": {"protocol": "oauth2-resource-owner"}}, False),
    ],
)
def test_can_redirect_knows_non_interactive_logins(event_changes: dict[str, Any], expected: bool) -> None:
    """canRedirect() is false for prompt=none and the non-interactive protocols."""
    event = {**EVENT, **event_changes}
    assert logged(run("console.log(api.redirect.canRedirect())", event)) == [str(expected).lower()]


def test_the_refresh_token_api_works_during_a_refresh_exchange() -> None:
    """With event.refresh_token, refreshToken.* record their commands."""
    event = {**EVENT, "refresh_token": {"id": "rt1"}, "transaction": {"protocol": "oauth2-refresh-token"}}
    out = commands("api.refreshToken.setMetadata('k', 'v').refreshToken.revoke('lost device')", event)
    assert out == [
        {"type": "set_refresh_token_metadata", "key": "k", "value": "v"},
        {"type": "revoke_refresh_token", "reason": "lost device"},
    ]


def test_rules_were_never_executed() -> None:
    """There are no Rules on this platform: rules.wasExecuted() is false."""
    assert logged(run("console.log(api.rules.wasExecuted('rul_1'))", EVENT)) == ["false"]


def test_the_event_carries_the_actions_secrets() -> None:
    """event.secrets holds the secrets given to the execution, and only those."""
    result = run("console.log(JSON.stringify(event.secrets))", EVENT, secrets={"API_KEY": "k1"})
    assert logged(result) == ['{"API_KEY":"k1"}']


class TestCache:
    """api.cache works on the entries the host passes in; changes come back as commands."""

    NOW = 1_800_000_000_000.0

    def run_cache(self, body: str, cache: dict[str, Any] | None = None) -> ExecutionResult:
        return run(body, EVENT, cache=cache or {}, now_ms=self.NOW)

    def test_set_then_get(self) -> None:
        """set stores with the default 15-minute TTL; get sees it; a command records it."""
        result = self.run_cache("console.log(JSON.stringify([api.cache.set('k', 'v'), api.cache.get('k')]))")
        expires = int(self.NOW) + 15 * 60 * 1000
        record = {"value": "v", "expires_at": expires}
        assert json.loads(logged(result)[0]) == [{"type": "success", "record": record}, record]
        assert result.commands == [{"type": "cache_set", "key": "k", "value": "v", "expires_at": expires}]

    def test_entries_from_the_host_are_visible_and_expire(self) -> None:
        """Live entries are returned; expired ones are not."""
        cache = {
            "live": {"value": "a", "expires_at": self.NOW + 1000},
            "dead": {"value": "b", "expires_at": self.NOW - 1},
        }
        result = self.run_cache("console.log(JSON.stringify([api.cache.get('live'), api.cache.get('dead')]))", cache)
        assert json.loads(logged(result)[0]) == [{"value": "a", "expires_at": self.NOW + 1000}, None]

    @pytest.mark.parametrize(
        ("call", "code"),
        [
            ("api.cache.set('k'.repeat(65), 'v')", "CacheKeySizeExceeded"),
            ("api.cache.set('k', 'v'.repeat(4097))", "CacheValueSizeExceeded"),
            ("api.cache.set('k', 'v', {ttl: -5})", "ItemAlreadyExpired"),
            ("api.cache.set('k', 'v', {ttl: 25 * 3600 * 1000})", "InvalidExpiry"),
            ("api.cache.set('k', 'v', {ttl: 'soon'})", "InvalidExpiry"),
            ("api.cache.delete('missing')", "CacheKeyDoesNotExist"),
        ],
    )
    def test_errors_have_the_documented_codes(self, call: str, code: str) -> None:
        """Refusals return {type: 'error', code} without throwing."""
        result = self.run_cache(f"console.log(JSON.stringify({call}))")
        assert json.loads(logged(result)[0]) == {"type": "error", "code": code}
        assert result.commands == []

    def test_the_earlier_of_ttl_and_expires_at_wins(self) -> None:
        """With both ttl and expires_at, the earlier expiry is used."""
        result = self.run_cache(
            f"console.log(api.cache.set('k', 'v', {{ttl: 60000, expires_at: {self.NOW + 1000}}}).record.expires_at)"
        )
        assert logged(result) == [str(int(self.NOW) + 1000)]

    def test_the_cache_holds_twenty_entries_and_eight_kilobytes(self) -> None:
        """The 21st entry, or one past 8 KB in total, is CacheSizeExceeded."""
        result = self.run_cache(
            "const codes = []; for (let i = 0; i < 21; i++) codes.push(api.cache.set('k' + i, 'v').type);"
            "console.log(codes.filter((c) => c === 'success').length);"
        )
        assert logged(result) == ["20"]
        big = self.run_cache(
            "const r = []; for (let i = 0; i < 3; i++) r.push(api.cache.set('b' + i, 'x'.repeat(3000)));"
            "console.log(r.map((x) => x.code || x.type).join(','));"
        )
        assert logged(big) == ["success,success,CacheSizeExceeded"]

    def test_delete_removes_and_records(self) -> None:
        """delete removes a live entry and records a cache_delete command."""
        cache = {"k": {"value": "a", "expires_at": self.NOW + 1000}}
        result = self.run_cache("api.cache.delete('k'); console.log(String(api.cache.get('k')))", cache)
        assert logged(result) == ["undefined"]
        assert result.commands == [{"type": "cache_delete", "key": "k"}]


def test_claim_values_convert_as_json_does() -> None:
    """Boxed primitives unwrap, toJSON is applied once, undefined members drop, NaN becomes null."""
    out = commands(
        "api.idToken.setCustomClaim('v', [new Number(3), new String('s'), new Boolean(false),"
        " {toJSON() { return {inner: {toJSON() { return 'deep' }}} }}, new Date(0), NaN, {u: undefined, f() {}}])"
    )
    assert out[0]["value"] == [3, "s", False, {"inner": "deep"}, "1970-01-01T00:00:00.000Z", None, {}]
