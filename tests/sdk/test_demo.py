"""The demo (`make demo`) runs both branches of the seed's custom factor."""

import subprocess
import sys


def test_the_demo_runs_both_branches() -> None:
    """It exits 0 having redirected, recorded the method, skipped the factor and refused a forgery."""
    done = subprocess.run([sys.executable, "-m", "sdk.demo"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "redirect the user to https://verify.acme-bank.example/factor?session_token=" in out
    assert "record the completed method https://verify.acme-bank.example/factor in the session" in out
    assert "the login completes without sending the user to the factor again" in out
    assert "The session token is invalid: Invalid signature." in out
    assert "Demo complete" in out
