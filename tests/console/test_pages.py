"""Serving the console: its page and files with a strict policy, and a plain page when it was not built."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from runtime.console import routes
from runtime.console.site import BUILT


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A stand-in for the bundle: what `make console` writes, in a folder of the test's own."""
    (tmp_path / "console.js").write_text("export {};\n")
    (tmp_path / "console.css").write_text("body { margin: 0 }\n")
    (tmp_path / "console.js.map").write_text("{}\n")
    return tmp_path


def client(built: Path) -> TestClient:
    return TestClient(Starlette(routes=routes(built)))


def policy(header: str) -> dict[str, str]:
    return dict(d.strip().split(" ", 1) for d in header.split(";"))


def test_the_page_loads_only_this_origins_files_and_styles_with_its_nonce(built: Path) -> None:
    """No inline script, a fresh style nonce per page (handed to the editor), never framed, cached or referred."""
    first, second = client(built).get("/console"), client(built).get("/console/")
    assert first.status_code == second.status_code == 200
    rules = policy(first.headers["content-security-policy"])
    nonce = re.search(r"'nonce-([^']+)'", rules["style-src"])
    assert nonce is not None and f'content="{nonce.group(1)}"' in first.text
    assert nonce.group(1) not in second.text
    assert rules["default-src"] == "'none'" and rules["script-src"] == "'self'" and rules["connect-src"] == "'self'"
    assert rules["frame-ancestors"] == "'none'" and "unsafe" not in first.headers["content-security-policy"]
    assert "<script>" not in first.text and 'src="/console/assets/console.js?v=' in first.text
    assert (first.headers["x-frame-options"], first.headers["referrer-policy"]) == ("DENY", "no-referrer")
    assert first.headers["cache-control"] == "no-store"


def test_the_bundle_is_served_by_exact_name_and_nothing_else(built: Path) -> None:
    """The built files with their types; other names, hidden files and paths out of the folder are 404s."""
    app = client(built)
    script = app.get("/console/assets/console.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    assert app.get("/console/assets/console.css").headers["content-type"].startswith("text/css")
    (built / ".secret").write_text("x")
    for path in ("/console/assets/missing.js", "/console/assets/.secret", "/console/assets/..%2Fconsole.js",
                 "/console/assets/%2E%2E%2F%2E%2E%2Fsite.py"):  # fmt: skip
        assert app.get(path).status_code == 404, path
    assert app.get("/console/favicon.svg").headers["content-type"].startswith("image/svg+xml")


def test_without_a_build_the_console_says_how_to_make_one(tmp_path: Path) -> None:
    """An unbuilt console is a short page naming `make console`; the server (and the API) run regardless."""
    reply = client(tmp_path).get("/console")
    assert reply.status_code == 503
    assert "make console" in reply.text
    assert reply.headers["content-security-policy"] == "default-src 'none'"


def test_the_app_serves_the_console_beside_the_api(api: TestClient) -> None:
    """/console is part of the same app; whether or not it was built, the API answers."""
    reply = api.get("/console")
    assert reply.status_code == (200 if (BUILT / "console.js").is_file() else 503)
    assert api.get("/api/v2/openapi.json").status_code == 200
    assert "/console" not in api.get("/api/v2/openapi.json").json()["paths"]
