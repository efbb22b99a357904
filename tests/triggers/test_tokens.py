"""api.redirect.encodeToken (signed in the guest) and validateToken (checked on the host)."""

import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from runtime.sandbox import ActionThrew
from runtime.triggers.tokens import validate_token
from tests.helpers import logged, run

SECRET = "a-shared-secret-long-enough-for-every-hmac-size-" + "x" * 20
NOW = 1_800_000_000
USER = "auth0|5f7c8ec7c33c6c004bbafe82"
HOST = "login.example.com"
EVENT: dict[str, Any] = {
    "user": {"user_id": USER},
    "request": {"hostname": HOST, "ip": "198.51.100.4", "query": {}, "body": {}},
}


def encode(options: str) -> str:
    result = run(f"console.log(api.redirect.encodeToken({options}))", EVENT, now_ms=NOW * 1000.0)
    assert result.ok, result.error
    return logged(result)[0]


def test_encode_token_matches_pyjwt_byte_for_byte() -> None:
    """The guest's HS256 token is exactly what PyJWT signs for the same claims."""
    token = encode(f"{{secret: {json.dumps(SECRET)}, payload: {{user_id: event.user.user_id}}}}")
    claims = {"iat": NOW, "iss": HOST, "sub": USER, "exp": NOW + 900, "ip": "198.51.100.4", "user_id": USER}
    assert token == jwt.encode(claims, SECRET, algorithm="HS256")


def test_encode_token_claims_and_payload_override() -> None:
    """Default claims come first; the payload is spread over them; expiresInSeconds sets exp."""
    token = encode(f"{{secret: {json.dumps(SECRET)}, expiresInSeconds: 60, payload: {{iss: 'custom', extra: [1]}}}}")
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False})
    assert claims == {"iat": NOW, "iss": "custom", "sub": USER, "exp": NOW + 60, "ip": "198.51.100.4", "extra": [1]}


def test_encode_token_handles_non_ascii_payloads() -> None:
    """Non-ASCII claims are signed over their UTF-8 bytes and decode intact."""
    token = encode(f"{{secret: {json.dumps(SECRET)}, payload: {{name: 'Zoë 🌍'}}}}")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False})
    assert claims["name"] == "Zoë 🌍"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("{payload: {}}", 'needs a non-empty string "secret"'),
        ("{secret: ''}", 'needs a non-empty string "secret"'),
        ("{secret: 's', payload: 'x'}", 'needs "payload" to be an object'),
        ("undefined", "needs an options object"),
    ],
)
def test_encode_token_argument_errors(options: str, message: str) -> None:
    """encodeToken refuses a missing secret or a payload that is not an object."""
    result = run(f"api.redirect.encodeToken({options})", EVENT)
    assert isinstance(result.error, ActionThrew)
    assert message in result.error.message


def returned_token(state: str = "st4te", **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "iat": int(time.time()),
        "exp": int(time.time()) + 300,
        "sub": USER,
        "iss": HOST,
        "state": state,
        "verified": True,
    }
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, algorithm="HS256")


def validate(query: dict[str, str], body: dict[str, str] | None = None, name: str | None = None) -> Any:
    event = {**EVENT, "request": {**EVENT["request"], "query": query, "body": body or {}}}
    param = f", tokenParameterName: {json.dumps(name)}" if name else ""
    result = run(
        f"console.log(JSON.stringify(api.redirect.validateToken({{secret: {json.dumps(SECRET)}{param}}})))",
        event,
        handler="onContinuePostLogin",
    )
    if result.ok:
        return json.loads(logged(result)[0])
    assert isinstance(result.error, ActionThrew), result.error
    return result.error.message


def test_validate_token_returns_the_payload() -> None:
    """A valid token with the right state, sub and iss returns all its claims."""
    payload = validate({"state": "st4te", "session_token": returned_token()})
    assert payload["verified"] is True and payload["sub"] == USER


def test_validate_token_reads_the_body_before_the_query() -> None:
    """With the parameter in both, the POST body wins."""
    good = returned_token()
    assert isinstance(validate({"state": "st4te", "session_token": "junk"}, {"session_token": good}), dict)
    assert validate({"state": "st4te", "session_token": good}, {"session_token": "junk"}).endswith("malformed.")


def test_validate_token_uses_the_named_parameter() -> None:
    """tokenParameterName picks another parameter; a missing one names itself."""
    assert isinstance(validate({"state": "st4te", "answer": returned_token()}, name="answer"), dict)
    assert validate({"state": "st4te"}, name="answer") == (
        "There is no parameter called 'answer' available in either the POST body or query string."
    )
    assert validate({"state": "st4te"}) == (
        "There is no parameter called 'session_token' available in either the POST body or query string."
    )


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda: "not-a-jwt", "The token is malformed."),
        (lambda: jwt.encode({"sub": USER}, "other-secret-" + "y" * 60, algorithm="HS256"), "Invalid signature."),
        (lambda: returned_token(exp=int(time.time()) - 10), "Token has expired."),
        (lambda: returned_token(iat=int(time.time()) + 3600), "The token is not valid yet."),
        (lambda: returned_token(state=None), "Missing or invalid standard claims"),
        (lambda: returned_token(iss=None), "Missing or invalid standard claims"),
        (lambda: returned_token(state="other"), "State in the token does not match the /continue state."),
        (lambda: returned_token(sub="auth0|someone-else"), "The sub claim does not match the user_id."),
        (lambda: returned_token(iss="evil.example"), "The iss claim does not match the tenant hostname."),
        (lambda: jwt.encode({"sub": USER}, SECRET, algorithm="HS512"), "Unexpected token algorithm."),
        (lambda: jwt.encode({"sub": USER}, None, algorithm="none"), "Unexpected token algorithm."),
        (
            lambda: jwt.encode({"sub": USER}, SECRET, algorithm="HS256", headers={"typ": "at+jwt"}),
            "Unexpected token payload type",
        ),
    ],
    ids=[
        "malformed",
        "signature",
        "expired",
        "future-iat",
        "no-state",
        "no-iss",
        "state",
        "sub",
        "iss",
        "hs512",
        "alg-none",
        "typ",
    ],
)
def test_validate_token_failures_say_why(make_token: Callable[[], str], reason: str) -> None:
    """Each failed check throws 'The session token is invalid: <reason>'.

    The tokens are made when the test runs, not when it is collected: one
    made at collection could expire before a long run reaches it."""
    assert validate({"state": "st4te", "session_token": make_token()}) == f"The session token is invalid: {reason}"


def test_the_host_check_never_accepts_a_token_without_a_secret() -> None:
    """The host refuses requests missing the secret or the token outright."""
    assert validate_token({"token": returned_token(), "secret": ""}) == {"error": "The token is malformed."}
    assert validate_token({"secret": SECRET}) == {"error": "The token is malformed."}


def test_validation_answers_are_recorded_for_replay_without_secrets() -> None:
    """The trace keeps the host's answer to validateToken, not the request that held the secret."""
    event = {**EVENT, "request": {**EVENT["request"], "query": {"state": "st4te", "session_token": returned_token()}}}
    result = run(f"api.redirect.validateToken({{secret: {json.dumps(SECRET)}}})", event)
    assert result.ok
    assert len(result.trace.host_calls) == 1
    assert result.trace.host_calls[0]["op"] == "validate_token"
    assert SECRET not in json.dumps(result.trace.as_dict())


def test_claims_are_serialised_exactly_as_json_stringify_would() -> None:
    """Escapes, lone surrogates, floats, nested values, toJSON and skipped members match JSON.stringify."""
    payload = (
        "{s: 'q\"b\\\\s\\n\\t\\u0001\\ud800 é', f: 0.1, big: 1e21, neg: -5, nan: NaN, d: new Date(0),"
        " nested: {a: [1, undefined, () => 1, null, true]}, skip: undefined, fn() {}}"
    )
    result = run(
        f"const t = api.redirect.encodeToken({{secret: 's', payload: {payload}}});"
        f"const body = Buffer.from(t.split('.')[1], 'base64url').toString();"
        f"const {{iat, iss, sub, exp, ip, ...rest}} = JSON.parse(body);"
        f"console.log(JSON.stringify(rest) === JSON.stringify({payload}) ? 'same' : body);",
        EVENT,
    )
    assert logged(result) == ["same"]


def test_encode_token_refuses_payloads_json_cannot_hold_with_a_catchable_type_error() -> None:
    """A BigInt or a cycle in the payload throws a TypeError the action can catch; JSON's own rules apply otherwise."""
    result = run(
        f"const secret = {json.dumps(SECRET)};"
        " const cyclic = {}; cyclic.self = cyclic;"
        " for (const payload of [{n: 1n}, cyclic, {u: undefined, f() {}, d: new Date(0), s: 'é'}]) {"
        "   try { const t = api.redirect.encodeToken({secret, payload});"
        "         console.log(JSON.stringify(JSON.parse(atob(t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')))));"
        "   } catch (e) { console.log(e.name); } }",
        EVENT,
        now_ms=NOW * 1000.0,
    )
    assert result.ok, result.error
    first, second, third = logged(result)
    assert (first, second) == ("TypeError", "TypeError")
    claims = json.loads(third.encode("latin-1").decode("utf-8"))
    assert claims["d"] == "1970-01-01T00:00:00.000Z" and claims["s"] == "é"
    assert "u" not in claims and "f" not in claims
