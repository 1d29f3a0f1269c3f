"""A real SMTP server for the delivery tests: aiosmtpd with STARTTLS (or implicit TLS) on a
self-signed certificate the test trusts, and a login it checks."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER, PASSWORD = "parkops", "smtp-secret-pw"


def free_port() -> int:
    """aiosmtpd cannot listen on port 0 (its readiness check connects to the port given)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A P-256 certificate for localhost and 127.0.0.1; returns (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: Message


@dataclass
class Handler:
    """Keeps what arrives; ``refuse_rcpt`` makes RCPT answer with that reply instead."""

    received: list[Received] = field(default_factory=list)
    refuse_rcpt: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, ANN201, N802
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 2.0.0 Ok: queued as TEST123"


def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN201
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # handled=True would leave a failure unanswered


class SmtpServer:
    """Start/stop-able on a fixed port, so a test can take the server down and bring it back."""

    def __init__(self, cert: Path, key: Path, port: int, *, implicit_tls: bool = False) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.port, self.implicit_tls = port, implicit_tls
        self.handler = Handler()
        self.controller: Controller | None = None

    def start(self) -> None:
        if self.implicit_tls:
            self.controller = Controller(
                self.handler, hostname="127.0.0.1", port=self.port, ssl_context=self.context
            )
        else:
            self.controller = Controller(
                self.handler,
                hostname="127.0.0.1",
                port=self.port,
                tls_context=self.context,
                require_starttls=True,
                authenticator=authenticator,
                auth_required=True,
            )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
