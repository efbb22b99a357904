"""Envelope encryption for action secrets (AES-256-GCM, from ``cryptography``).

Each tenant has a data key (256 bits, random) per key version; a secret value
is encrypted with the tenant's data key. Data keys are stored wrapped
(encrypted) by the master key, which never enters the database.

Every ciphertext is bound by its associated data to where it belongs:

- a wrapped data key to its tenant and key version;
- a secret value to its tenant, action, draft or version, name and key version;
- a token signing key to its tenant, key id and key version.

A ciphertext copied into any other row fails to decrypt (``SecretUnreadable``).

The master keyring is one or more keys, the first current: new data keys are
wrapped with it, any key in the ring unwraps. Rotation without downtime:
give every server the ring "new,old", run ``tollgate rotate-master-key`` (it
re-wraps every data key with the new key), then drop the old key.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "MasterKeyMalformed",
    "MasterKeyMissing",
    "MasterKeyring",
    "SecretUnreadable",
    "VaultError",
    "open_secret",
    "seal_secret",
    "secret_context",
    "signing_key_context",
]

KEY_BYTES = 32
NONCE_BYTES = 12


class VaultError(Exception):
    """Root of the vault's errors; messages never contain key material."""


class MasterKeyMissing(VaultError):
    """No master key was given, and the database holds secrets that need one."""


class MasterKeyMalformed(VaultError):
    """The master keyring is not comma-separated base64url keys of 256 bits."""


class SecretUnreadable(VaultError):
    """A ciphertext failed to decrypt: wrong key, or moved from where it belongs."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _seal(key: bytes, associated: bytes, plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def _open(key: bytes, associated: bytes, blob: bytes) -> bytes:
    if len(blob) < NONCE_BYTES + 16:
        raise SecretUnreadable("the ciphertext is truncated")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated)
    except InvalidTag:
        raise SecretUnreadable("the ciphertext does not belong here or the key is wrong") from None


@dataclass(frozen=True)
class _MasterKey:
    key_id: str
    key: bytes

    def __repr__(self) -> str:
        return f"_MasterKey({self.key_id})"


class MasterKeyring:
    """The master keys: the first wraps, any of them unwraps."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise MasterKeyMissing("the master keyring is empty")
        self._keys = [_MasterKey(self.key_id(k), k) for k in keys]

    @staticmethod
    def key_id(key: bytes) -> str:
        """A public fingerprint of a master key, stored beside what it wrapped."""
        return hashlib.sha256(b"tollgate master key id\x00" + key).hexdigest()[:16]

    @classmethod
    def parse(cls, text: str) -> MasterKeyring:
        keys = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            try:
                key = _unb64(part)
            except (ValueError, TypeError):
                raise MasterKeyMalformed("a master key is not base64url text") from None
            if len(key) != KEY_BYTES:
                raise MasterKeyMalformed(f"a master key must be {KEY_BYTES} bytes (256 bits), not {len(key)}")
            keys.append(key)
        if not keys:
            raise MasterKeyMalformed("the master keyring holds no key")
        return cls(keys)

    @staticmethod
    def generate_text() -> str:
        """A new random master key, as the text TOLLGATE_MASTER_KEY takes."""
        return _b64(os.urandom(KEY_BYTES))

    def text(self) -> str:
        return ",".join(_b64(k.key) for k in self._keys)

    @property
    def current_id(self) -> str:
        return self._keys[0].key_id

    @property
    def ids(self) -> list[str]:
        return [k.key_id for k in self._keys]

    def __repr__(self) -> str:
        return f"MasterKeyring(current={self.current_id}, keys={len(self._keys)})"

    @staticmethod
    def _data_key_context(tenant_id: str, version: int) -> bytes:
        return f"data key\x00{tenant_id}\x00{version}".encode()

    def wrap(self, tenant_id: str, version: int, data_key: bytes) -> tuple[str, bytes]:
        """(master key id, wrapped data key) with the current master key."""
        current = self._keys[0]
        return current.key_id, _seal(current.key, self._data_key_context(tenant_id, version), data_key)

    def unwrap(self, master_key_id: str, tenant_id: str, version: int, wrapped: bytes) -> bytes:
        for k in self._keys:
            if k.key_id == master_key_id:
                return _open(k.key, self._data_key_context(tenant_id, version), wrapped)
        raise SecretUnreadable(f"the data key was wrapped by master key {master_key_id}, which is not in the keyring")


def new_data_key() -> bytes:
    return os.urandom(KEY_BYTES)


def secret_context(tenant_id: str, action_id: str, scope: str, name: str, key_version: int) -> bytes:
    """The associated data that binds a secret's ciphertext to its row."""
    return f"secret\x00{tenant_id}\x00{action_id}\x00{scope}\x00{name}\x00{key_version}".encode()


def signing_key_context(tenant_id: str, kid: str, key_version: int) -> bytes:
    """The associated data that binds a sealed signing key to its row.

    A sealed key copied to another tenant's row, or filed under another key's id, fails to open
    instead of signing that tenant's tokens.
    """
    return f"signing key\x00{tenant_id}\x00{kid}\x00{key_version}".encode()


def seal_secret(data_key: bytes, context: bytes, value: str) -> bytes:
    return _seal(data_key, context, value.encode())


def open_secret(data_key: bytes, context: bytes, blob: bytes) -> str:
    return _open(data_key, context, blob).decode()
