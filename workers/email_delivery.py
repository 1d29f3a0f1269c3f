"""Delivering the outbox: the RQ job that sends one message, the backend the settings choose, and
the test send of the settings page.

Flow: ``send_email`` with the ``QueuedBackend`` of ``configured_backend`` stores a ``queued`` row;
after the caller's commit it is enqueued here (``enqueue_delivery``) as job
``parkops-email-<id>-<attempt>``, so enqueuing the same attempt twice (after-commit hook and the
Deliver Queued Email task) queues one job. ``deliver`` claims the row, sends with the backend the
settings describe *now* (an admin fixing a password mid-outage helps the retries), and records the
attempt. A failed attempt leaves the row ``queued`` with ``next_attempt_at`` after the backoff; the
task (every minute) enqueues what is due and releases claims of dead workers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from email.utils import formataddr

from rq import Queue
from rq.job import Job
from sqlalchemy.orm import Session

from dashboard.core import Core, get_core
from dashboard.crypto import SecretError
from dashboard.services import audit, email, outbox, system_settings
from dashboard.services.email import (
    Delivered,
    DeliveryError,
    EmailBackend,
    EmailMessage,
    PermanentDeliveryError,
)
from models import OutboxStatus, utcnow
from workers.mailgun import US_BASE_URL, DnsRecord, MailgunClient
from workers.smtp_mail import SmtpBackend, new_message_id

log = logging.getLogger(__name__)

JOB_TIMEOUT_SECONDS = 120
SENDER_KEYS = ("mail_from_address", "mail_from_name", "site_name", "system_reply_to_email")
SMTP_KEYS = ("smtp_host", "smtp_port", "smtp_username", "smtp_password", "smtp_security")
MAILGUN_KEYS = ("mailgun_domain", "mailgun_api_key", "mailgun_base_url")


class NotConfigured(DeliveryError):
    """The settings lack what the backend needs; ``str()`` names the setting."""


def job_id(message_id: int, attempt: int) -> str:
    return f"parkops-email-{message_id}-{attempt}"


def enqueue_delivery(core: Core, message_id: int, attempt: int = 0) -> str:
    """Queue the delivery of ``message_id``; ``attempt`` = attempts already made (the job id)."""
    jid = job_id(message_id, attempt)
    if Job.exists(jid, connection=core.redis):
        return jid
    queue = Queue(core.settings.queue_name, connection=core.redis)
    queue.enqueue(
        deliver_outbox_message,
        message_id,
        job_id=jid,
        job_timeout=JOB_TIMEOUT_SECONDS,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"deliver email {message_id}",
    )
    return jid


def configured_backend(core: Core, session: Session) -> EmailBackend:
    """What System Settings > Email > Mail Delivery says: the outbox (store only, the default) or a
    queued backend delivered by the worker."""
    name = str(system_settings.get(session, core.secrets, "mail_backend"))
    try:
        return email.backend_for(name, enqueue=lambda message_id: enqueue_delivery(core, message_id))
    except ValueError:
        log.warning("mail backend %r unknown: messages stay in the outbox", name)
        return email.OutboxBackend()


@dataclass(frozen=True)
class Envelope:
    sender: str  # "Name <address>"
    sender_address: str
    admin_reply_to: str


def _envelope(values: dict[str, system_settings.Value]) -> Envelope:
    address = str(values["mail_from_address"])
    if not address:
        raise NotConfigured("From Address is not set (System Settings > Email > Sender)")
    name = str(values["mail_from_name"]) or f"{values['site_name']} Parking"
    return Envelope(formataddr((name, address)), address, str(values["system_reply_to_email"]))


def direct_backend(core: Core, session: Session, name: str) -> tuple[EmailBackend, Envelope]:
    """The backend that really sends, built from the saved settings; ``NotConfigured`` says what
    is missing."""
    try:
        values = system_settings.get_many(session, core.secrets, [*SENDER_KEYS, *SMTP_KEYS, *MAILGUN_KEYS])
    except SecretError as exc:
        raise NotConfigured(
            f"a stored mail password or key cannot be decrypted: enter it again ({exc})"
        ) from exc
    envelope = _envelope(values)
    if name == "smtp":
        if not values["smtp_host"]:
            raise NotConfigured("SMTP Host is not set (System Settings > Email > SMTP)")
        backend: EmailBackend = SmtpBackend(
            str(values["smtp_host"]),
            int(values["smtp_port"]),
            security=str(values["smtp_security"]),
            sender=envelope.sender,
            sender_address=envelope.sender_address,
            username=str(values["smtp_username"]),
            password=str(values["smtp_password"]),
            cafile=core.settings.smtp_ca_file,
        )
        return backend, envelope
    if name == "mailgun":
        if not values["mailgun_domain"] or not values["mailgun_api_key"]:
            raise NotConfigured(
                "Mailgun Domain and Private API Key are required (System Settings > Third Party)"
            )
        return _MailgunBackend(
            str(values["mailgun_base_url"] or US_BASE_URL),
            str(values["mailgun_domain"]),
            str(values["mailgun_api_key"]),
            envelope.sender,
        ), envelope
    raise NotConfigured(f"mail delivery {name!r} does not send (System Settings > Email > Mail Delivery)")


class _MailgunBackend:
    name = "mailgun"

    def __init__(self, base_url: str, domain: str, api_key: str, sender: str) -> None:
        self.base_url, self.domain, self.api_key, self.sender = base_url, domain, api_key, sender

    def deliver(self, message: EmailMessage) -> Delivered:
        with MailgunClient(self.base_url, self.domain, self.api_key) as client:
            return client.send(message, self.sender)


def reply_to_for(message: EmailMessage, envelope: Envelope) -> str | None:
    """The seed's Reply-to Admin Email is the sender of system-level and task-automation messages
    (import failures, PeopleSoft reports, test sends): replies to those reach the admin."""
    if message.reply_to:
        return message.reply_to
    system = message.template_key is None or message.template_key in email.SYSTEM_TEMPLATES
    return (envelope.admin_reply_to or None) if system else None


def deliver(core: Core, message_id: int) -> str:
    """Claim, send and record one message; returns its status afterwards (or why nothing was done).
    Never raises for a delivery failure: that is an attempt, recorded on the row."""
    now = utcnow()
    with core.db.session() as session:
        claimed = outbox.claim(session, message_id, now)
    if claimed is None:
        return "not claimed (sent, being sent, not due, or gone)"
    delivered: Delivered | None = None
    error: str | None = None
    permanent = False
    try:
        with core.db.session() as session:
            backend, envelope = direct_backend(core, session, claimed.backend)
            reply_to = reply_to_for(claimed.message, envelope)
            message_id_header = None
            if claimed.backend == "smtp":
                message_id_header = claimed.message.message_id or new_message_id(envelope.sender_address)
            outbox.set_envelope(session, message_id, envelope.sender, reply_to, message_id_header)
        delivered = backend.deliver(replace(claimed.message, reply_to=reply_to, message_id=message_id_header))
    except PermanentDeliveryError as exc:
        error, permanent = str(exc), True
    except DeliveryError as exc:
        error = str(exc) or type(exc).__name__
    except Exception as exc:  # a bug must not leave the row claimed until the stale-claim sweep
        log.exception("email %s: delivery crashed", message_id)
        error = f"{type(exc).__name__}: {exc}"
    with core.db.session() as session:
        status = outbox.record_attempt(
            session, message_id, utcnow(), delivered=delivered, error=error, permanent=permanent
        )
    if status is OutboxStatus.SENT:
        log.info(
            "email %s sent (attempt %d): %s",
            message_id,
            claimed.attempt,
            delivered.answer if delivered else "",
        )
    else:
        log.warning("email %s attempt %d failed (%s): %s", message_id, claimed.attempt, status.value, error)
    return status.value


def deliver_outbox_message(message_id: int) -> str:
    """The RQ job: a plain id in, the status out."""
    return deliver(get_core(), message_id)


@dataclass(frozen=True)
class Sweep:
    enqueued: int
    released: int


def sweep(core: Core) -> Sweep:
    """Queue the messages whose (next) attempt is due and release dead workers' claims: what
    covers a queue that was down at commit time and every retry after a backoff."""
    now = utcnow()
    with core.db.session() as session:
        released = outbox.release_stale_claims(session, now)
    with core.db.session() as session:
        due = outbox.due(session, now)
    for message_id, attempts in due:
        enqueue_delivery(core, message_id, attempts)
    return Sweep(len(due), len(released))


@dataclass(frozen=True)
class TestResult:
    ok: bool
    answer: str


def send_test(core: Core, to: str, actor_id: int | None) -> TestResult:
    """Send a test message now, with the saved settings, and say exactly what the server answered.
    It goes through the outbox like every message (so it is on record) but is delivered inline:
    the admin is waiting for the answer."""
    with core.db.session() as session:
        name = str(system_settings.get(session, core.secrets, "mail_backend"))
        if name == "outbox":
            return TestResult(
                False, 'Mail Delivery is "Outbox only": nothing is sent. Choose SMTP or Mailgun and save.'
            )
        try:
            backend, envelope = direct_backend(core, session, name)
        except NotConfigured as exc:
            return TestResult(False, str(exc))
        site_name = str(system_settings.get(session, core.secrets, "site_name"))
        message = EmailMessage(
            to=[to],
            subject=f"{site_name}: test message",
            text=(
                f"This is a test message from {site_name} ParkOps, sent by an administrator from "
                f"System Settings > Email to check the {name} settings.\n"
            ),
            reply_to=envelope.admin_reply_to or None,
        )
        message_id = email.send_email(session, message, backend)
        outbox.set_envelope(session, message_id, envelope.sender, message.reply_to, None)
        audit.record(
            session,
            actor_id=actor_id,
            action="email.test_send",
            entity_type="outbox_message",
            entity_id=str(message_id),
            changes={"to": to, "backend": name},
        )
        detail = email.get_outbox_message(session, message_id)
    assert detail is not None
    if detail.status is OutboxStatus.SENT:
        return TestResult(True, detail.attempts[-1]["result"] if detail.attempts else "sent")
    return TestResult(False, detail.error or "not sent")


# --- the sending domain's DNS records (Admin > Email Domain) ------------------------------------


@dataclass(frozen=True)
class DnsRow:
    record_type: str
    host: str
    value: str
    purpose: str
    priority: str = ""
    status: str = ""  # Mailgun's verdict ("valid", "unverified") when its API was asked


@dataclass(frozen=True)
class DomainSetup:
    domain: str
    rows: list[DnsRow]
    source: str  # where the records come from, in words
    problem: str = ""  # why Mailgun could not be asked, if it could not


def _eu(base_url: str) -> bool:
    return ".eu." in base_url


def domain_setup(core: Core) -> DomainSetup:
    """The DNS records the sending domain needs, as the seed lists them: SPF for Mailgun and the
    DKIM key (the minimum to send), the tracking CNAME, and Mailgun's MX records if replies are
    received through it. With an API key, Mailgun's domain API is asked (it knows the DKIM key and
    whether each record is verified); otherwise the DKIM settings fill in."""
    with core.db.session() as session:
        values = system_settings.get_many(
            session,
            core.secrets,
            [*MAILGUN_KEYS, "mailgun_dkim_host", "mailgun_dkim_value", "mailgun_receiving"],
        )
    domain = str(values["mailgun_domain"])
    if not domain:
        return DomainSetup(
            "", [], "", "Set the Mailgun Domain (System Settings > Third Party > Mailgun) first."
        )
    base = str(values["mailgun_base_url"] or US_BASE_URL)
    receiving = bool(values["mailgun_receiving"])
    problem = ""
    if values["mailgun_api_key"]:
        try:
            with MailgunClient(base, domain, str(values["mailgun_api_key"])) as client:
                records = client.domain_records()
        except DeliveryError as exc:
            problem = f"Mailgun's domain API could not be asked: {exc}"
        else:
            rows = [_api_row(r) for r in records.sending]
            if receiving:
                rows += [_api_row(r, purpose="MX for receiving through Mailgun") for r in records.receiving]
            return DomainSetup(domain, rows, "Mailgun's domain API")
    mx_suffix = "eu.mailgun.org" if _eu(base) else "mailgun.org"
    dkim_value = str(values["mailgun_dkim_value"]) or "the DKIM key Mailgun generated for the domain"
    rows = [
        DnsRow("TXT", domain, "v=spf1 include:mailgun.org ~all", "SPF: lets Mailgun send for the domain"),
        DnsRow(
            "TXT",
            str(values["mailgun_dkim_host"]) or f"smtp._domainkey.{domain}",
            dkim_value,
            "DKIM key used with Mailgun",
        ),
        DnsRow("CNAME", f"email.{domain}", mx_suffix, "Tracking (opens, clicks, unsubscribes)"),
    ]
    if receiving:
        rows += [
            DnsRow("MX", domain, f"mxa.{mx_suffix}", "MX for receiving through Mailgun", priority="10"),
            DnsRow("MX", domain, f"mxb.{mx_suffix}", "MX for receiving through Mailgun", priority="10"),
        ]
    return DomainSetup(domain, rows, "the settings (no Mailgun API key to ask)", problem)


_PURPOSES = {"TXT": "SPF or DKIM", "CNAME": "Tracking", "MX": "MX for receiving through Mailgun"}


def _api_row(record: DnsRecord, purpose: str = "") -> DnsRow:
    if not purpose:
        if record.value.startswith("v=spf1"):
            purpose = "SPF: lets Mailgun send for the domain"
        elif "_domainkey" in record.name:
            purpose = "DKIM key used with Mailgun"
        else:
            purpose = _PURPOSES.get(record.record_type.upper(), record.record_type)
    return DnsRow(record.record_type, record.name, record.value, purpose, record.priority, record.valid)
