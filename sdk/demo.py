"""The demo: Acme Bank's custom second factor, both branches, in the local runner.

``make demo`` runs this. Each step runs the tenant's unmodified action in the
production sandbox and prints what it did:

1. compile the action;
2. a first login: no record of the custom factor in the session, so the
   action sends the user to the bank's verification page with a signed token;
3. the verification page (played here) checks that token and signs its own
   answer, carrying the platform's ``state``;
4. the user comes back to ``/continue``: the action validates the answer and
   records the factor in the session;
5. the next login in that session skips the factor;
6. a forged answer is refused, so that login fails closed.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt

from runtime.sandbox import compile_action
from sdk.runner import RunReport, run_action

ROOT = Path(__file__).resolve().parent.parent
TENANT = ROOT / "tenants" / "acme-bank"
ACTION = TENANT / "actions" / "custom-factor.js"
EVENT = TENANT / "events" / "first-login.json"


def heading(step: int, text: str) -> None:
    print(f"\n{'─' * 78}\n{step}. {text}\n")


def show(report: RunReport) -> None:
    print("   " + report.render().replace("\n", "\n   "))


def verification_page(redirect_url: str, secret: str, event: dict[str, Any]) -> dict[str, str]:
    """What the bank's page does: check the token it was sent, answer with its own."""
    query = parse_qs(urlsplit(redirect_url).query)
    incoming = jwt.decode(
        query["session_token"][0],
        secret,
        algorithms=["HS256"],
        issuer=event["request"]["hostname"],
        options={"require": ["iat", "exp", "sub", "iss"]},
    )
    now = int(time.time())
    answer = jwt.encode(
        {
            "iat": now,
            "exp": now + 300,
            "sub": incoming["sub"],
            "iss": incoming["iss"],
            "state": query["state"][0],
            "user_id": incoming["user_id"],
            "verified": True,
        },
        secret,
        algorithm="HS256",
    )
    return {"state": query["state"][0], "session_token": answer}


def main() -> int:
    source = ACTION.read_text()
    event = json.loads(EVENT.read_text())
    secret = secrets.token_urlsafe(32)
    action_secrets = {"SESSION_TOKEN_SECRET": secret}
    print("Tollgate demo: Acme Bank's custom second factor")
    print(f"Action: {ACTION.relative_to(ROOT)} (the announcement's code, unmodified apart from its typos)")

    heading(1, "Compile the action inside the sandbox")
    started = time.perf_counter()
    compiled = compile_action(source)
    print(
        f"   compiled in {1000 * (time.perf_counter() - started):.1f} ms: {len(compiled.bytecode):,} bytes of "
        f"bytecode, handlers {', '.join(compiled.handlers)}, engine build {compiled.build_id[:12]}"
    )

    heading(2, "First login of the session: no custom factor recorded yet")
    first = run_action(source, name=ACTION.name, event=event, secrets=action_secrets)
    show(first)
    redirects = [c for c in first.as_dict()["commands"] if c["type"] == "redirect"]
    if not first.ok or not redirects:
        print("\nThe action did not send the user to the factor; the demo stops here.", file=sys.stderr)
        return 1
    # The platform adds its own opaque state to the redirect (the action cannot set it).
    state = secrets.token_urlsafe(24)
    target = f"{redirects[0]['url']}&{urlencode({'state': state})}"
    print(f"\n   The platform suspends the login and sends the browser to:\n   {target[:110]}…")

    heading(3, "The bank's verification page checks the token and answers")
    answer = verification_page(target, secret, event)
    print("   It verified the session token, then signed an answer carrying the same state.")
    print(f"   The browser comes back to /continue?state={state[:12]}…&session_token={answer['session_token'][:24]}…")

    heading(4, "/continue: the action validates the answer and records the factor")
    back = run_action(
        source, name=ACTION.name, handler="onContinuePostLogin", event=event, secrets=action_secrets, query=answer
    )
    show(back)
    recorded = [c for c in back.as_dict()["commands"] if c["type"] == "record_method"]
    if not back.ok or not recorded:
        print("\nThe action did not record the factor; the demo stops here.", file=sys.stderr)
        return 1

    heading(5, "Next login in the same session: the factor is in event.authentication.methods")
    later = json.loads(json.dumps(event))
    now_iso = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    later["authentication"]["methods"].append({"name": recorded[0]["url"], "timestamp": now_iso})
    second = run_action(source, name=ACTION.name, event=later, secrets=action_secrets)
    show(second)
    if second.as_dict()["commands"]:
        print("\nThe action asked for the factor again; it should have skipped it.", file=sys.stderr)
        return 1
    print("\n   No commands: the login completes without sending the user to the factor again.")

    heading(6, "A forged answer on /continue is refused")
    forged = dict(answer, session_token=jwt.encode({"sub": "someone"}, "wrong-secret-" + "x" * 32, algorithm="HS256"))
    refused = run_action(
        source, name=ACTION.name, handler="onContinuePostLogin", event=event, secrets=action_secrets, query=forged
    )
    show(refused)
    if refused.ok:
        print("\nA forged token was accepted.", file=sys.stderr)
        return 1
    print("\n   The action threw, so the login fails closed: nothing is recorded in the session.")
    print(f"\n{'─' * 78}\nDemo complete: both branches of the custom factor ran in fresh sandboxes.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
