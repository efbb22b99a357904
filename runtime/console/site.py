"""Serving the console: its page, its bundled files, and a plain page when it was not built.

The page is sent with a strict Content-Security-Policy: scripts, styles,
images and API calls from this origin only, nothing inline but the styles
CodeMirror writes at run time, which carry a nonce fresh for each page
(the page hands it to the editor in a ``<meta>`` tag). It is never framed,
cached or named in a Referer. The files are looked up by exact name in
``_built/``, so no path reaches outside it.

Lifecycle: :func:`routes` once per application; a version tag of the built
files is read once per process, at the first page served.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

__all__ = ["BUILT", "routes"]

BUILT = Path(__file__).resolve().parent / "_built"
ENTRY = ("console.js", "console.css")

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".map": "application/json", ".txt": "text/plain"}
_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1d3b6e"/>'
    '<path d="M7 12h18v4H18v10h-4V16H7z" fill="#fff"/></svg>'
)
_NOT_BUILT = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tollgate console</title></head><body>'
    "<h1>The console is not built</h1>"
    "<p>This server has no console files. Build them with <code>make console</code> (Node.js 18 or later with npm),"
    " then reload this page. The management API at <code>/api/v2</code> works without them.</p></body></html>"
)


def _policy(nonce: str) -> str:
    return (
        "default-src 'none'; script-src 'self'; "
        f"style-src 'self' 'nonce-{nonce}'; "
        # CodeMirror draws the squiggle under an error as a data: image.
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


@functools.cache
def _version(built: Path) -> str:
    """A tag of the built files' contents, so that a rebuilt console is never mixed with a cached one."""
    digest = hashlib.sha256()
    for name in ENTRY:
        digest.update((built / name).read_bytes())
    return digest.hexdigest()[:12]


def _page(built: Path) -> Response:
    if not all((built / name).is_file() for name in ENTRY):
        headers = {**_HEADERS, "Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'"}
        return HTMLResponse(_NOT_BUILT, status_code=503, headers=headers)
    nonce = secrets.token_urlsafe(18)
    version = _version(built)
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="tollgate-style-nonce" content="{nonce}">'
        "<title>Tollgate console</title>"
        '<link rel="icon" href="/console/favicon.svg" type="image/svg+xml">'
        f'<link rel="stylesheet" href="/console/assets/console.css?v={version}">'
        f'<script type="module" src="/console/assets/console.js?v={version}"></script>'
        '</head><body><noscript>The Tollgate console needs JavaScript.</noscript><div id="app"></div></body></html>'
    )
    headers = {**_HEADERS, "Cache-Control": "no-store", "Content-Security-Policy": _policy(nonce)}
    return HTMLResponse(html, headers=headers)


def routes(built: Path = BUILT) -> list[Route]:
    """The console's routes, serving the files bundled in `built`."""

    async def page(request: Request) -> Response:
        return _page(built)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        path = built / name
        if not _SAFE_NAME.match(name) or not path.is_file():
            return Response("Not found", status_code=404, media_type="text/plain", headers=_HEADERS)
        media_type = _TYPES.get(path.suffix, "application/octet-stream")
        # Revalidated every time (ETag): the page names the files with a version tag anyway.
        return FileResponse(path, media_type=media_type, headers={**_HEADERS, "Cache-Control": "no-cache"})

    async def icon(request: Request) -> Response:
        return Response(_ICON, media_type="image/svg+xml", headers={**_HEADERS, "Cache-Control": "max-age=86400"})

    return [
        Route("/console", page, methods=["GET"]),
        Route("/console/", page, methods=["GET"]),
        Route("/console/assets/{name}", asset, methods=["GET"]),
        Route("/console/favicon.svg", icon, methods=["GET"]),
    ]
