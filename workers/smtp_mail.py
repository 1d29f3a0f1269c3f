"""SMTP delivery with the standard library: STARTTLS or implicit TLS (certificates and host names
always checked), optional login, and the server's own reply kept as the outcome.

``smtplib.send_message`` hides the reply to the message data, so the dialogue is driven step by step
(MAIL, RCPT, DATA): the outbox and the settings page's test send show exactly what the server said,
e.g. ``250 2.0.0 Ok: queued as 4Q1xyz``. 5xx replies are permanent (retrying cannot help); 4xx
replies, refused connections and timeouts are temporary and retried by the outbox.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate, make_msgid

from dashboard.services.email import Delivered, DeliveryError, EmailMessage, PermanentDeliveryError

TIMEOUT_SECONDS = 20.0
SECURITY = ("starttls", "ssl", "none")


def build_mime(message: EmailMessage, sender: str, message_id: str) -> MimeMessage:
    """The MIME message: text, an HTML alternative, then the attachments."""
    mime = MimeMessage()
    mime["From"] = sender
    mime["To"] = ", ".join(message.to)
    mime["Subject"] = message.subject
    mime["Date"] = formatdate(localtime=False)
    mime["Message-ID"] = message_id
    if message.reply_to:
        mime["Reply-To"] = message.reply_to
    mime.set_content(message.text)
    if message.html:
        mime.add_alternative(message.html, subtype="html")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        mime.add_attachment(
            attachment.content,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return mime


def new_message_id(sender_address: str) -> str:
    domain = sender_address.rpartition("@")[2] or "parkops.invalid"
    return make_msgid(domain=domain)


class SmtpBackend:
    """One connection per message: ParkOps sends a few messages a minute, and a fresh connection
    never trips over a server's idle timeout."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str,
        sender: str,
        sender_address: str,
        username: str = "",
        password: str = "",
        cafile: str | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        if security not in SECURITY:
            raise ValueError(f"unknown SMTP security {security!r}")
        self.host, self.port, self.security = host, port, security
        self.sender, self.sender_address = sender, sender_address
        self.username, self.password = username, password
        self.timeout = timeout
        # The system's CAs, plus ``PARKOPS_SMTP_CA_FILE`` for a relay with a private CA; hostname
        # checking stays on either way.
        self.context = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self.context)
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def deliver(self, message: EmailMessage) -> Delivered:
        message_id = message.message_id or new_message_id(self.sender_address)
        if not message_id.startswith("<"):
            message_id = f"<{message_id}>"
        mime = build_mime(message, self.sender, message_id)
        where = f"SMTP server {self.host}:{self.port}"
        try:
            with self._connect() as server:
                server.ehlo()
                if self.security == "starttls":
                    server.starttls(context=self.context)
                    server.ehlo()
                if self.username:
                    server.login(self.username, self.password)
                _expect(server.mail(self.sender_address), "MAIL FROM")
                for recipient in message.to:
                    _expect(server.rcpt(recipient), f"RCPT TO {recipient}")
                code, reply = server.data(mime.as_bytes())
                _expect((code, reply), "DATA")
        except DeliveryError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"{where} refused the login: {_reply(exc.smtp_code, exc.smtp_error)}"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{where}: {exc} (check SMTP Security)") from exc
        except smtplib.SMTPResponseException as exc:
            raise _error(exc.smtp_code, exc.smtp_error, where) from exc
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(f"{where}: its TLS certificate is not trusted: {exc.verify_message}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}") from exc
        return Delivered(message_id, _reply(code, reply))


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(words.split())}"


def _error(code: int, text: bytes | str, step: str) -> DeliveryError:
    said = f"{step}: {_reply(code, text)}"
    return PermanentDeliveryError(said) if 500 <= code < 600 else DeliveryError(said)


def _expect(answer: tuple[int, bytes], step: str) -> None:
    code, text = answer
    if not 200 <= code < 300:
        raise _error(code, text, step)
