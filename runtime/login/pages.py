"""The few pages a browser sees from the login plane: errors and the login form. Plain HTML, escaped."""

from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse, RedirectResponse, Response

__all__ = ["error_page", "form_targets", "page", "redirect"]

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#1d2330}"
    "h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}"
    "input{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}"
    "button{margin-top:1.2rem;padding:.6rem 1.2rem;font-size:1rem}"
    ".error{color:#a01c1c}"
)

# Pages with forms and codes are never cached, framed or leaked through Referer.
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}
# A host as a CSP source may name it: letters, digits, dots and dashes, and a port.
_SOURCE_HOST = re.compile(r"^[a-z0-9.-]+(:[0-9]{1,5})?$")


def form_targets(callbacks: Iterable[str], redirect_hosts: Iterable[str]) -> list[str]:
    """Where a login form's submission may end up: the origins of the client's callbacks (the code, or an
    error, goes there) and the hosts the tenant's actions may send users to (over https).

    Browsers check ``form-action`` against every redirect after the POST, not only its first target, so
    a policy of ``'self'`` alone would stop the browser on its way back to the application."""
    out: list[str] = []
    for url in callbacks:
        parts = urlsplit(url)
        if parts.scheme in ("https", "http") and _SOURCE_HOST.match(parts.netloc.lower()):
            out.append(f"{parts.scheme}://{parts.netloc.lower()}")
    out += [f"https://{host}" for host in redirect_hosts if _SOURCE_HOST.match(host)]
    return sorted(set(out))


def page(title: str, body_html: str, status: int = 200, *, form_targets: Iterable[str] = ()) -> HTMLResponse:
    """A page; `body_html` must already be escaped. A form on it may post to this server, and be
    redirected on to `form_targets` (origins, from :func:`form_targets`)."""
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_STYLE}</style></head>'
        f"<body>{body_html}</body></html>"
    )
    headers = dict(_HEADERS)
    targets = " ".join(form_targets)
    if targets:
        headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
            "form-action 'self'", f"form-action 'self' {targets}"
        )
    return HTMLResponse(html, status_code=status, headers=headers)


def error_page(status: int, error: str, description: str) -> HTMLResponse:
    """An error the browser shows, in the OAuth vocabulary (`error`, `error_description`)."""
    return page(
        "Login failed",
        f'<h1>Login failed</h1><p class="error" data-error="{escape(error)}">{escape(description)}</p>'
        f"<p><small>{escape(error)}</small></p>",
        status,
    )


def redirect(location: str, *, after_post: bool) -> Response:
    """Send the browser on: 303 after a POST (so it GETs the target), 302 otherwise; no Referer leaks."""
    return RedirectResponse(location, status_code=303 if after_post else 302, headers=_HEADERS)
