"""globex-retail: progressive profiling asks a business customer for the company once, and stores the answer."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from runtime.sandbox import ActionThrew, CompiledAction, ExecutionResult, compile_action, execute
from sdk.descriptor import load
from tests.conftest import ROOT

TENANT = ROOT / "tenants" / "globex-retail"
PROFILE_PAGE = "https://profile.globex-retail.example/complete"
SECRET = "a-secret-the-profile-page-shares-" + "x" * 16
# The secret events/continue-with-company.json's token is signed with (tenants/README.md).
EXAMPLE_SECRET = "example-profile-token-secret-not-for-production"
STATE = "q3V8mJ0xN5pT2rW7yK4bH9cF6dL1sA0gZ8eU3iO5kPw"


@pytest.fixture(scope="module")
def profiling() -> CompiledAction:
    return compile_action((TENANT / "actions" / "progressive-profile.js").read_text())


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((TENANT / "events" / f"{name}.json").read_text())
    return event


def run(
    action: CompiledAction, event: dict[str, Any], handler: str = "onExecutePostLogin", secret: str = SECRET
) -> ExecutionResult:
    return execute(action, handler, event, secrets={"PROFILE_TOKEN_SECRET": secret})


def commands(
    action: CompiledAction, event: dict[str, Any], handler: str = "onExecutePostLogin"
) -> list[dict[str, Any]]:
    result = run(action, event, handler)
    assert result.ok, result.error
    return result.commands


def answer(claims: dict[str, Any], *, secret: str = SECRET, state: str = STATE) -> dict[str, Any]:
    """The /continue event for the profile page's answer: a token signed as the page signs it."""
    now = int(time.time())
    standard = {
        "iat": now, "exp": now + 300, "sub": "auth0|66f3c9e1b2a4d8003e7f1a29",
        "iss": "login.globex-retail.example", "state": state,
    }  # fmt: skip
    event = sample("continue-with-company")
    event["request"]["body"] = {"state": STATE, "session_token": jwt.encode({**standard, **claims}, secret)}
    return event


def test_the_descriptor_loads() -> None:
    """The profile page's host is allowed, and the shared secret is generated when the tenant is made."""
    descriptor = load(TENANT)
    assert descriptor.allowed_redirect_hosts == ["profile.globex-retail.example"]
    assert descriptor.bindings == {"post-login": ["progressive-profile"]}
    [action] = descriptor.actions
    assert action.secrets["PROFILE_TOKEN_SECRET"].generate is True


def test_a_missing_company_sends_the_user_to_the_profile_page(profiling: CompiledAction) -> None:
    """First login without a company: a redirect to an allowed host with a signed token naming the question."""
    event = sample("first-login-no-company")
    [command] = commands(profiling, event)
    assert command["type"] == "redirect"
    url = urlsplit(command["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == PROFILE_PAGE
    assert url.hostname in load(TENANT).allowed_redirect_hosts
    [token] = parse_qs(url.query)["session_token"]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == event["user"]["user_id"]
    assert claims["iss"] == event["request"]["hostname"]
    assert claims["ip"] == event["request"]["ip"]
    assert claims["ask"] == ["company"]
    assert claims["exp"] - claims["iat"] == 900
    # Signed, not encrypted: nothing about the user beyond the claims every token has.
    assert set(claims) == {"iat", "exp", "iss", "sub", "ip", "ask"}


def test_nothing_is_asked_when_the_company_is_on_file(profiling: CompiledAction) -> None:
    """The field is present: no redirect, no command at all."""
    assert commands(profiling, sample("company-on-file")) == []


@pytest.mark.parametrize("company", ["", "   ", "x" * 101, 42])
def test_a_company_that_is_not_usable_is_asked_again(profiling: CompiledAction, company: Any) -> None:
    """Blank, too long or not text: the profile page asks."""
    event = sample("company-on-file")
    event["user"]["user_metadata"]["company"] = company
    assert [c["type"] for c in commands(profiling, event)] == ["redirect"]


def test_logins_that_cannot_show_a_page_are_not_held_up(profiling: CompiledAction) -> None:
    """A refresh token exchange or prompt=none without a company: nothing happens, the question waits."""
    assert commands(profiling, sample("refresh-no-company")) == []
    silent = sample("first-login-no-company")
    silent["request"]["query"]["prompt"] = "none"
    assert commands(profiling, silent) == []


def test_the_sample_answer_is_stored_in_user_metadata(profiling: CompiledAction) -> None:
    """events/continue-with-company.json, with the example secret, as `tollgate run` would run it."""
    result = run(profiling, sample("continue-with-company"), "onContinuePostLogin", EXAMPLE_SECRET)
    assert result.ok, result.error
    assert result.commands == [{"type": "set_user_metadata", "key": "company", "value": "Globex Partner Supplies Ltd"}]


def test_the_answer_is_trimmed_before_it_is_stored(profiling: CompiledAction) -> None:
    """What the user typed is stored without surrounding whitespace."""
    event = answer({"company": "  Initech Ltd \n"})
    assert commands(profiling, event, "onContinuePostLogin") == [
        {"type": "set_user_metadata", "key": "company", "value": "Initech Ltd"}
    ]


@pytest.mark.parametrize("claims", [{}, {"company": "  "}, {"company": "x" * 101}, {"company": ["Initech"]}])
def test_an_answer_without_a_usable_company_denies_the_login(profiling: CompiledAction, claims: dict[str, Any]) -> None:
    """The page requires the field; an answer without it is refused with a reason, and nothing is stored."""
    assert commands(profiling, answer(claims), "onContinuePostLogin") == [
        {"type": "deny", "reason": "A company name of 1 to 100 characters is needed to use Globex Business Store."}
    ]


@pytest.mark.parametrize(
    ("signed", "reason"),
    [
        ({"secret": "not-the-shared-secret-" + "y" * 16}, "Invalid signature."),
        ({"state": "another-login"}, "State in the token does not match the /continue state."),
        ({"claims": {"sub": "auth0|someone-else"}}, "The sub claim does not match the user_id."),
    ],
    ids=["signature", "state", "user"],
)
def test_an_answer_the_page_did_not_sign_for_this_login_fails_it(
    profiling: CompiledAction, signed: dict[str, Any], reason: str
) -> None:
    """validateToken throws: the login fails and the metadata is not touched."""
    claims = {"company": "Initech Ltd", **signed.pop("claims", {})}
    result = run(profiling, answer(claims, **signed), "onContinuePostLogin")
    assert isinstance(result.error, ActionThrew)
    assert result.error.message == f"The session token is invalid: {reason}"
    assert result.commands == []


def test_the_user_is_asked_once(profiling: CompiledAction) -> None:
    """Redirect, answer, continue: the metadata is set, and the next login with it goes straight through."""
    first = sample("first-login-no-company")
    [redirect] = commands(profiling, first)
    asked = jwt.decode(parse_qs(urlsplit(redirect["url"]).query)["session_token"][0], SECRET, algorithms=["HS256"])
    # The profile page answers for the user the token names, with the platform's state for this login.
    back = answer({"sub": asked["sub"], "company": "Vandelay Industries"})
    [stored] = commands(profiling, back, "onContinuePostLogin")
    assert stored == {"type": "set_user_metadata", "key": "company", "value": "Vandelay Industries"}
    first["user"]["user_metadata"][stored["key"]] = stored["value"]
    assert commands(profiling, first) == []
