"""Where an action may send the browser: `api.redirect.sendUserTo`'s target, checked on the host.

The target is parsed once, with a WHATWG-conformant parser (ada, the parser
inside Node.js), and the URL sent to the browser is that parser's own
serialisation: what was checked is exactly what is sent, so no difference
between two parsers can smuggle another host through. Refused: anything
but https, user info (``https://good@evil``), control characters, spaces and
backslashes in the text the action gave, and every host that is not exactly
on the tenant's ``allowed_redirect_hosts`` (a port other than 443 must be
listed with the host).
"""

from __future__ import annotations

import re
from collections.abc import Collection

import ada_url

__all__ = ["MAX_URL_CHARS", "RedirectRefused", "checked_target", "with_query"]

MAX_URL_CHARS = 4096

# C0 controls, space, DEL and backslash: WHATWG parsing drops or rewrites them silently.
_SUSPICIOUS = re.compile(r"[\x00-\x20\x7f\\]")


class RedirectRefused(ValueError):
    """The target is not one the tenant allows; the message says why, for the action's author."""


def checked_target(url: str, allowed_hosts: Collection[str]) -> str:
    """The URL to send the browser to, or RedirectRefused."""
    if not isinstance(url, str) or not url:
        raise RedirectRefused("the redirect URL is empty")
    if len(url) > MAX_URL_CHARS:
        raise RedirectRefused(f"the redirect URL is longer than {MAX_URL_CHARS} characters")
    if _SUSPICIOUS.search(url):
        raise RedirectRefused("the redirect URL holds spaces, control characters or backslashes")
    try:
        parsed = ada_url.URL(url)
    except ValueError:
        raise RedirectRefused("the redirect URL is not a valid absolute URL") from None
    if parsed.protocol != "https:":
        raise RedirectRefused(f"the redirect URL must use https, not {parsed.protocol.rstrip(':') or 'nothing'}")
    if parsed.username or parsed.password:
        raise RedirectRefused("the redirect URL must not carry a user name or password")
    host = parsed.host  # the hostname, with the port when it is not 443
    if host not in allowed_hosts:
        raise RedirectRefused(
            f"the host {host!r} is not in the tenant's allowed_redirect_hosts; "
            "add it with PATCH /api/v2/tenants/settings"
        )
    href: str = parsed.href
    return href


def with_query(url: str, name: str, value: str) -> str:
    """`url` (already checked) with the query parameter `name` set to `value`, replacing any."""
    parsed = ada_url.URL(url)
    params = ada_url.URLSearchParams(parsed.search)
    params.set(name, value)
    parsed.search = str(params)
    href: str = parsed.href
    return href
