"""Envelope encryption: keys wrap and unwrap, ciphertexts are bound to where they belong."""

from __future__ import annotations

import pytest

from runtime.vault import (
    MasterKeyMalformed,
    MasterKeyring,
    SecretUnreadable,
    new_data_key,
    open_secret,
    seal_secret,
    secret_context,
)


def test_a_data_key_unwraps_only_for_its_tenant_and_version() -> None:
    """The wrapped key's associated data names its tenant and version."""
    ring = MasterKeyring.parse(MasterKeyring.generate_text())
    key = new_data_key()
    key_id, wrapped = ring.wrap("tenant-a", 1, key)
    assert ring.unwrap(key_id, "tenant-a", 1, wrapped) == key
    for tenant, version in (("tenant-b", 1), ("tenant-a", 2)):
        with pytest.raises(SecretUnreadable):
            ring.unwrap(key_id, tenant, version, wrapped)


def test_a_secret_opens_only_in_its_own_context() -> None:
    """Tenant, action, scope, name and key version are all bound."""
    key = new_data_key()
    context = secret_context("t", "a", "draft", "NAME", 1)
    blob = seal_secret(key, context, "value")
    assert open_secret(key, context, blob) == "value"
    for other in (
        secret_context("t2", "a", "draft", "NAME", 1),
        secret_context("t", "a2", "draft", "NAME", 1),
        secret_context("t", "a", "v1", "NAME", 1),
        secret_context("t", "a", "draft", "OTHER", 1),
        secret_context("t", "a", "draft", "NAME", 2),
    ):
        with pytest.raises(SecretUnreadable):
            open_secret(key, other, blob)
    with pytest.raises(SecretUnreadable):
        open_secret(new_data_key(), context, blob)
    with pytest.raises(SecretUnreadable):
        open_secret(key, context, blob[:-1] + bytes([blob[-1] ^ 1]))


def test_a_keyring_unwraps_with_any_key_and_wraps_with_the_first() -> None:
    """Rotation: 'new,old' unwraps what old wrapped and wraps anew with new."""
    old_text, new_text = MasterKeyring.generate_text(), MasterKeyring.generate_text()
    old = MasterKeyring.parse(old_text)
    both = MasterKeyring.parse(f"{new_text},{old_text}")
    key_id, wrapped = old.wrap("t", 1, b"k" * 32)
    assert both.unwrap(key_id, "t", 1, wrapped) == b"k" * 32
    assert both.wrap("t", 1, b"k" * 32)[0] == MasterKeyring.parse(new_text).current_id != key_id


@pytest.mark.parametrize("text", ["", "not base64 at all!", "c2hvcnQ", ",,,"])
def test_malformed_master_keys_are_refused(text: str) -> None:
    """Only base64url keys of 256 bits are accepted."""
    with pytest.raises(MasterKeyMalformed):
        MasterKeyring.parse(text)


def test_keys_never_show_in_repr() -> None:
    """A keyring's repr names key ids, never key material."""
    text = MasterKeyring.generate_text()
    assert text not in repr(MasterKeyring.parse(text))
