"""SSH keys typed into System Settings for the SFTP pull: the server's pinned host key and the
login's private key.

Both arrive through single-line inputs, and browsers drop the line breaks of a pasted private key,
so ``private_key`` rebuilds the armoured block before reading it. Each is checked when saved, so a
key that cannot work is refused on the settings page rather than at 3 a.m. in the task log.
"""

from __future__ import annotations

import re

import asyncssh

_ARMOUR = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


def host_key(text: str) -> asyncssh.SSHKey:
    """The public key in ``text``: a ``.pub`` / ``ssh-keyscan`` line (``ssh-ed25519 AAAA...``),
    optionally with the host names of a known_hosts line before it. Raises ``ValueError``."""
    words = text.split()
    for start in range(min(2, len(words))):
        try:
            return asyncssh.import_public_key(" ".join(words[start : start + 2]))
        except (asyncssh.KeyImportError, ValueError):
            continue
    raise ValueError(
        "not an SSH public key: paste one line such as ssh-keyscan -t ed25519 <host> prints "
        "(ssh-ed25519 AAAA...)"
    )


def check_host_key(text: str) -> str:
    """A settings check: the key in OpenSSH one-line form (type and base64, no comment)."""
    kind, blob = host_key(text).export_public_key("openssh").decode("ascii").split()[:2]
    return f"{kind} {blob}"


def describe(key: asyncssh.SSHKey) -> str:
    """How people compare host keys: the type and the SHA256 fingerprint ``ssh-keygen -l`` shows."""
    return f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"


def _rebuilt(text: str) -> str:
    """The armoured key with its line breaks back (base64 wrapped at 70 columns)."""
    match = _ARMOUR.search(text)
    if match is None:
        return text
    label, body = match.group(1), "".join(match.group(2).split())
    lines = [body[i : i + 70] for i in range(0, len(body), 70)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""])


def private_key(text: str) -> asyncssh.SSHKey:
    """The private key in ``text`` (OpenSSH or PEM, pasted with or without its line breaks).
    Raises ``ValueError``; a key protected by a passphrase is refused (it is stored encrypted)."""
    rebuilt = _rebuilt(text.strip())
    try:
        return asyncssh.import_private_key(rebuilt)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, ValueError) as exc:
        if "passphrase" in str(exc).lower() or "encrypted" in str(exc).lower():
            raise ValueError(
                "this key is protected by a passphrase: paste it without one (ParkOps stores it encrypted)"
            ) from None
        raise ValueError(
            "not a private key ParkOps can read: paste the whole key file, from -----BEGIN to -----END"
        ) from None


def check_private_key(text: str) -> str:
    """A settings check: the key as stored, with its line breaks restored."""
    private_key(text)
    return _rebuilt(text.strip())
