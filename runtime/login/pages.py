"""The few pages a browser sees from the login plane: errors and the login form. Plain HTML, escaped."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse, RedirectResponse, Response

__all__ = ["error_page", "page", "redirect"]

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


def page(title: str, body_html: str, status: int = 200) -> HTMLResponse:
    """A page; `body_html` must already be escaped."""
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_STYLE}</style></head>'
        f"<body>{body_html}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


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
