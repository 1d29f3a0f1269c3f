"""Encryption of secrets at rest (vendor passwords, API keys, boot release codes).

The Fernet key is derived from the app's secret key with HKDF, so rotating ``PARKOPS_SECRET_KEY``
means re-entering stored secrets; the ``enc:v1:`` prefix leaves room for a future key scheme.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "enc:v1:"


class SecretError(ValueError):
    """A stored secret cannot be decrypted (wrong or rotated secret key)."""


class SecretBox:
    def __init__(self, secret_key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"parkops-secrets", info=b"settings-v1"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plaintext: str) -> str:
        if plaintext == "":
            return ""
        return PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, stored: str | None) -> str:
        if not stored:
            return ""
        if not stored.startswith(PREFIX):
            raise SecretError("value is not an encrypted secret")
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SecretError("secret cannot be decrypted with the current PARKOPS_SECRET_KEY") from exc


def mask(plaintext: str) -> str:
    """What the UI may show of a secret: that it is set, and its last few characters if long."""
    if not plaintext:
        return ""
    tail = plaintext[-4:] if len(plaintext) >= 12 else ""
    return "•" * 8 + tail
