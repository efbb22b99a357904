"""The demo's custom factor: Acme Bank's verification page, served over HTTPS on this machine.

This is the page the seed action sends users to
(``https://verify.acme-bank.example/factor``). It does what the
announcement asks of such a page: it checks the ``session_token`` the action
signed with the secret both share, then sends the user back to the login's
``/continue`` with the platform's ``state`` and its own signed answer
(``verified: true``). A real factor would ask the user something first (a
code, a device); this one approves at once, so the demo can run unattended.

It is served on 127.0.0.1 under a certificate for its real host name, made
at start with ``cryptography`` and trusted by the demo's browser only, so TLS
is checked as a browser would check it and nothing needs DNS, ``/etc/hosts``
or a certificate authority.
"""

from __future__ import annotations

import datetime
import socket
import tempfile
import threading
import time
from html import escape
from pathlib import Path
from types import TracebackType
from typing import Self

import jwt
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

__all__ = ["ANSWER_LIFETIME_S", "FactorPage", "self_signed_certificate"]

# How long the page's answer is good for: the user goes straight back with it.
ANSWER_LIFETIME_S = 300


def self_signed_certificate(host: str) -> tuple[bytes, bytes]:
    """A certificate for `host`, valid for a day, and its private key (both PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
        f"<body><h1>{escape(title)}</h1>{body}</body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def factor_app(secret: str, continue_url: str) -> Starlette:
    """The verification page: GET /factor?session_token=…&state=… answers with a form back to `continue_url`."""

    async def factor(request: Request) -> HTMLResponse:
        token, state = request.query_params.get("session_token"), request.query_params.get("state")
        if not token or not state:
            return _page("Verification failed", "<p>The link has no session token or no state.</p>", 400)
        try:
            sent = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["iat", "exp", "sub", "iss"]})
        except jwt.PyJWTError as exc:
            return _page("Verification failed", f"<p>The session token is not valid: {escape(str(exc))}.</p>", 400)
        now = int(time.time())
        answer = jwt.encode(
            {
                "iat": now,
                "exp": now + ANSWER_LIFETIME_S,
                "sub": sent["sub"],
                "iss": sent["iss"],
                "state": state,
                "user_id": sent.get("user_id", sent["sub"]),
                "verified": True,
            },
            secret,
            algorithm="HS256",
        )
        # The browser posts the answer back at once; the button is there for browsers without scripts.
        return _page(
            "Acme Bank: you are verified",
            f'<form method="post" action="{escape(continue_url)}">'
            f'<input type="hidden" name="state" value="{escape(state)}">'
            f'<input type="hidden" name="session_token" value="{escape(answer)}">'
            "<button type=submit>Continue</button></form>"
            "<script>document.forms[0].submit()</script>",
        )

    return Starlette(routes=[Route("/factor", factor, methods=["GET"])])


class FactorPage:
    """The verification page's HTTPS server, in a thread of this process, on a free port of 127.0.0.1.

    Use it in a ``with`` block: the server is up when the block starts and
    stopped when it ends. :attr:`certificate` is what a client must trust.
    """

    def __init__(self, host: str, *, secret: str, continue_url: str) -> None:
        self.host = host
        self.certificate, key = self_signed_certificate(host)
        self._files = tempfile.TemporaryDirectory(prefix="tollgate-demo-tls-")
        cert_file, key_file = Path(self._files.name) / "cert.pem", Path(self._files.name) / "key.pem"
        cert_file.write_bytes(self.certificate)
        key_file.write_bytes(key)
        config = uvicorn.Config(
            factor_app(secret, continue_url), ssl_certfile=cert_file, ssl_keyfile=key_file,
            log_config=None, log_level="warning", access_log=False, lifespan="off",
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise OSError(f"the verification page could not start on 127.0.0.1:{self.port}")
            time.sleep(0.02)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()
        self._files.cleanup()
