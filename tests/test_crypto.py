"""Secrets at rest: encrypted, tied to the secret key, and masked for display."""

import pytest

from dashboard.crypto import PREFIX, SecretBox, SecretError, mask

PLAINTEXT = "key-3f9a7c1e5b2d"


def test_encrypt_hides_the_plaintext_and_decrypts_back():
    box = SecretBox("one-secret-key")
    stored = box.encrypt(PLAINTEXT)
    assert stored.startswith(PREFIX) and stored.startswith("enc:v1:")
    assert PLAINTEXT not in stored
    assert box.decrypt(stored) == PLAINTEXT


def test_encrypting_twice_gives_different_tokens():
    """Fernet's random IV: equal secrets cannot be spotted by comparing stored values."""
    box = SecretBox("one-secret-key")
    assert box.encrypt(PLAINTEXT) != box.encrypt(PLAINTEXT)


def test_another_secret_key_cannot_decrypt():
    stored = SecretBox("one-secret-key").encrypt(PLAINTEXT)
    with pytest.raises(SecretError):
        SecretBox("a-rotated-secret-key").decrypt(stored)


def test_a_plaintext_value_is_not_accepted_as_a_secret():
    with pytest.raises(SecretError):
        SecretBox("one-secret-key").decrypt(PLAINTEXT)


def test_empty_stays_empty():
    box = SecretBox("one-secret-key")
    assert box.encrypt("") == ""
    assert box.decrypt("") == "" and box.decrypt(None) == ""


@pytest.mark.parametrize("length", range(1, 41))
def test_mask_reveals_at_most_the_last_four_characters(length):
    secret = "".join(chr(ord("a") + i % 26) for i in range(length - 1)) + "Z"
    shown = mask(secret).replace("•", "")
    assert len(shown) <= 4
    assert shown == "" or secret.endswith(shown)
    if length < 12:
        assert shown == "", "short secrets show nothing: four characters would be too much of them"


def test_mask_says_nothing_for_an_unset_secret():
    assert mask("") == ""
    assert mask("abcdefghijklmnop") == "••••••••mnop"
