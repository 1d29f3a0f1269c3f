"""Email: one ``send_email`` for every part of ParkOps, pluggable delivery, and an outbox.

Every message is written to the outbox *before* the backend is called, and a delivery failure is
recorded on that row instead of raised: a boot release code or a PeopleSoft holds report must never
vanish because the mail server was down, and admins read the outbox to see what went out and what
did not. The default backend (``outbox``) only stores, which is also what demo and test runs want.

Real delivery (SMTP, Mailgun) is a ``QueuedBackend``: ``send_email`` stores the row ``queued`` and,
only once the caller's transaction has committed, hands its id to the queue (an RQ job in
``workers.email_delivery``), so a payment rolled back never e-mails its receipt and a mail server
that is down never slows or breaks the caller. The job *claims* the row (``claim``: one atomic
UPDATE from ``queued`` to ``sending``), delivers, and records the attempt (``record_attempt``):
two workers, a repeated job or an admin's resend can never send one row twice. The one window left
is a worker that dies after the server accepted the message and before the row says ``sent``: the
row stays ``sending`` and, once the claim is older than ``STALE_CLAIM``, is queued again with a note
that it may already have gone out (at-least-once there; at-most-once would mean losing mail).

Templates are admin-editable, so they are rendered in Jinja's immutable sandbox (no attribute
tricks reaching Python internals, no mutating the context) with ``StrictUndefined`` (a typo in a
variable name is an error, not a silently blank release code). HTML bodies autoescape, so a user's
name cannot inject markup into an email. Templates are test-rendered with a sample context before
they are saved, so the sample context doubles as the list of variables a template may use.

Why this module is long: composing, rendering (sanitised templates), the outbox and the delivery
backends share the outbox row's lifecycle (queued, sending, sent or failed); every part of ParkOps
sends through the one ``send_email`` defined here.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from sqlalchemy import Insert, Select, String, bindparam, cast, event, func, insert, or_, select
from sqlalchemy.orm import Session

from dashboard.services.errors import DomainError, NotFound, ValidationFailed
from models import (
    AuditLog,
    EmailTemplate,
    OutboxAttachment,
    OutboxMessage,
    OutboxStatus,
    utcnow,
)

log = logging.getLogger(__name__)

# Stricter than "has an @": no separators or brackets, so one entry is exactly one mailbox and
# cannot smuggle a second recipient or a display name into the header.
ADDRESS_RE = re.compile(r"^[^@\s,;<>()\"']+@[^@\s,;<>()\"'.]+(\.[^@\s,;<>()\"'.]+)+$")
MAX_RECIPIENTS = 50
MAX_SUBJECT = 255  # OutboxMessage.subject
MAX_OUTBOX_LIMIT = 500
# Retries: 1, 2, 4 ... minutes after each failed attempt, at most MAX_ATTEMPTS attempts (about 4 h
# 15 min in all), then ``failed`` for an admin to look at and resend.
FIRST_RETRY = timedelta(minutes=1)
MAX_ATTEMPTS = 9
# A claim older than this belongs to a worker that died mid-delivery (a send takes seconds).
STALE_CLAIM = timedelta(minutes=15)
# Templates of system-level and task-automation messages: the seed's Reply-to Admin Email is their
# sender, so replies reach the admin rather than the no-reply From address.
SYSTEM_TEMPLATES = frozenset({"csv-import-failures", "peoplesoft-holds-report"})


class DeliveryError(Exception):
    """A backend could not hand the message on; ``str()`` is recorded in the outbox. A temporary
    failure (server down, 4xx): the message is retried later."""


class PermanentDeliveryError(DeliveryError):
    """The server refused the message for good (a 5xx reply, an unknown domain): retrying cannot
    help, so the row is ``failed`` at once."""


@dataclass(frozen=True)
class Delivered:
    """What the server answered when it accepted a message: its id for the message (to match
    bounces against), and the reply in words (``250 2.0.0 Ok: queued as ...``, ``200 Queued``)."""

    provider_message_id: str | None
    answer: str


class TemplateError(DomainError):
    """A template that cannot be rendered; the message names the part and the cause."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass
class EmailMessage:
    to: list[str]
    subject: str
    text: str
    html: str | None = None
    reply_to: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    template_key: str | None = None
    # The Message-ID header to send (SMTP); ``None``: the backend makes one.
    message_id: str | None = None


class EmailBackend(Protocol):
    """How a message leaves ParkOps. ``name`` is recorded on each outbox row."""

    name: str

    def deliver(self, message: EmailMessage) -> Delivered | None:
        """Hand the message on, or raise ``DeliveryError`` with a reason fit for the outbox."""
        ...


class OutboxBackend:
    """Delivery is storing: ``send_email`` has already written the row, so there is nothing to do.
    Messages it handles get the status ``stored`` (kept, not sent) rather than ``sent``."""

    name = "outbox"

    def deliver(self, message: EmailMessage) -> Delivered | None:
        return None


class QueuedBackend:
    """Delivery later, by a worker: ``send_email`` stores the row ``queued`` and calls
    ``enqueue(row id)`` after the session commits (never if it rolls back). ``name`` is the real
    backend's (``smtp``, ``mailgun``), which the worker builds from the settings."""

    def __init__(self, name: str, enqueue: Callable[[int], object]) -> None:
        self.name = name
        self.enqueue = enqueue

    def deliver(self, message: EmailMessage) -> Delivered | None:
        raise TypeError("a queued backend is delivered by the worker, through claim()")


DELIVERY_BACKENDS = ("smtp", "mailgun")


def backend_for(name: str, enqueue: Callable[[int], object] | None = None, **config: Any) -> EmailBackend:
    """The backend configured by name (System Settings > Email > Mail Delivery). ``smtp`` and
    ``mailgun`` need ``enqueue`` (their delivery runs in a worker); without it they are refused
    with ``ValueError`` and the caller keeps the message in the outbox."""
    if name == "outbox":
        return OutboxBackend()
    if name in DELIVERY_BACKENDS and enqueue is not None:
        return QueuedBackend(name, enqueue)
    raise ValueError(f"unknown email backend {name!r} (known: outbox, smtp, mailgun)")


def _validate(message: EmailMessage) -> None:
    errors: dict[str, str] = {}
    bad = [address for address in message.to if not ADDRESS_RE.match(address)]
    if not message.to:
        errors["to"] = "at least one recipient is required"
    elif bad:
        errors["to"] = "not a valid e-mail address: " + ", ".join(repr(a) for a in bad)
    elif len(message.to) > MAX_RECIPIENTS:
        errors["to"] = f"at most {MAX_RECIPIENTS} recipients"
    if message.reply_to is not None and not ADDRESS_RE.match(message.reply_to):
        errors["reply_to"] = f"not a valid e-mail address: {message.reply_to!r}"
    if not message.subject.strip():
        errors["subject"] = "a subject is required"
    elif "\r" in message.subject or "\n" in message.subject:
        errors["subject"] = "must be a single line"
    elif len(message.subject) > MAX_SUBJECT:
        errors["subject"] = f"at most {MAX_SUBJECT} characters"
    for attachment in message.attachments:
        if not attachment.filename or any(c in attachment.filename for c in "\r\n/\\"):
            errors["attachments"] = f"not a valid file name: {attachment.filename!r}"
    if errors:
        raise ValidationFailed(errors)


def send_email(session: Session, message: EmailMessage, backend: EmailBackend) -> int:
    """Store ``message`` in the outbox, deliver it, record the outcome; returns the outbox id.

    Invalid messages raise ``ValidationFailed`` (a caller's bug or bad input, not an outage).
    Delivery failures are recorded as ``failed`` with the error and logged, never raised: the caller
    (a payment, an import) has succeeded and must not be undone by the mail server. The row is
    flushed, not committed: it becomes permanent with the caller's unit of work. With a
    ``QueuedBackend`` nothing is delivered here: the row stays ``queued`` and its id is enqueued
    once that unit of work commits.
    """
    _validate(message)
    now = utcnow()
    if isinstance(backend, QueuedBackend):
        message_id = _insert(session, message, backend.name, OutboxStatus.QUEUED, now, next_attempt_at=now)
        _enqueue_after_commit(session, backend, message_id)
        return message_id
    if isinstance(backend, OutboxBackend):  # storing is its delivery: the row goes in stored
        return _insert(session, message, backend.name, OutboxStatus.STORED, now, sent_at=now)
    row = _new_row(message, backend.name)
    session.add(row)
    session.flush()
    try:
        delivered = backend.deliver(message)
    except DeliveryError as exc:
        log.warning("email %s to %s not delivered by %s: %s", row.id, message.to, backend.name, exc)
        row.status, row.error = OutboxStatus.FAILED, str(exc) or type(exc).__name__
        row.attempts = [attempt_entry(now, ok=False, result=row.error)]
    except Exception as exc:  # a backend bug must not lose the message or break the caller either
        log.exception("email %s: backend %s crashed", row.id, backend.name)
        row.status, row.error = OutboxStatus.FAILED, f"{type(exc).__name__}: {exc}"
    else:
        row.status = OutboxStatus.SENT
        row.sent_at = now
        if delivered is not None:
            row.provider_message_id = bare_message_id(delivered.provider_message_id)
            row.attempts = [attempt_entry(now, ok=True, result=delivered.answer)]
    session.flush()
    return row.id


def _new_row(message: EmailMessage, backend_name: str) -> OutboxMessage:
    return OutboxMessage(
        to_addresses=list(message.to),
        reply_to=message.reply_to,
        subject=message.subject,
        body_text=message.text,
        body_html=message.html,
        template_key=message.template_key,
        backend=backend_name,
        status=OutboxStatus.QUEUED,
        attempts=[],
        attachments=[
            OutboxAttachment(filename=a.filename, content_type=a.content_type, content=a.content)
            for a in message.attachments
        ],
    )


def _insert(
    session: Session,
    message: EmailMessage,
    backend_name: str,
    status: OutboxStatus,
    now: datetime,
    **fields: Any,
) -> int:
    """The outbox row (and its attachments) in Core INSERTs, for a message whose status is known
    before it is stored: cheaper than the ORM's flush (receipts are written inside checkouts)."""
    sql = session.connection()
    message_id: int = sql.scalar(
        _insert_message(),
        {
            "to_addresses": list(message.to),
            "reply_to": message.reply_to,
            "subject": message.subject,
            "body_text": message.text,
            "body_html": message.html,
            "template_key": message.template_key,
            "backend": backend_name,
            "status": status,
            "attempts": [],
            "created_at": now,
            "sent_at": None,
            "next_attempt_at": None,
            **fields,
        },
    )
    if message.attachments:
        sql.execute(
            insert(OutboxAttachment),
            [
                {
                    "message_id": message_id,
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "content": a.content,
                }
                for a in message.attachments
            ],
        )
    return message_id


@functools.cache
def _insert_message() -> Insert:
    return insert(OutboxMessage).returning(OutboxMessage.id)


_PENDING = "parkops_email_pending"


def _enqueue_after_commit(session: Session, backend: QueuedBackend, message_id: int) -> None:
    """Enqueue ``message_id`` once the session's transaction commits; forget it on rollback. A
    queue that is down is logged, not raised (the caller's work is committed by then): the row
    stays ``queued`` and due, and the Deliver Queued Email task picks it up."""
    pending: list[tuple[QueuedBackend, int]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []

        def after_commit(committed: Session) -> None:
            items = committed.info.pop(_PENDING, [])
            for queued, item in items:
                try:
                    queued.enqueue(item)
                except Exception:
                    log.exception("email %s: could not be queued now; the delivery task retries it", item)

        def after_rollback(rolled_back: Session, previous: Any) -> None:
            if previous.parent is None:  # the whole transaction, not a savepoint inside it
                rolled_back.info.pop(_PENDING, None)

        event.listen(session, "after_commit", after_commit, once=True)
        event.listen(session, "after_soft_rollback", after_rollback, once=True)
    pending.append((backend, message_id))


def attempt_entry(at: datetime, *, ok: bool, result: str) -> dict[str, object]:
    return {"at": at.isoformat(), "ok": ok, "result": result[:1000]}


def bare_message_id(message_id: str | None) -> str | None:
    """Message ids without their angle brackets: Mailgun's send API answers ``<id@domain>`` and its
    webhooks say ``id@domain``."""
    return message_id.strip().strip("<>") if message_id else None


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 1, 2, 4, 8 ... minutes."""
    return FIRST_RETRY * (2 ** max(0, attempts - 1))


# --- templates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DefaultTemplate:
    """A template as shipped. ``sample`` is the context callers provide (with example values):
    the editor's preview and the save-time test render use it."""

    key: str
    name: str
    subject: str
    body_text: str
    body_html: str
    sample: Mapping[str, Any]


DEFAULT_TEMPLATES: tuple[DefaultTemplate, ...] = (
    DefaultTemplate(
        key="boot-release",
        name="Boot Release Email",
        subject="Your boot release code for {{ plate }}",
        body_text=(
            "Hello {{ name }},\n\n"
            "Thank you for paying violation {{ ticket_number }}. The release code for the boot on "
            "vehicle {{ plate }} ({{ boot_name }}) is:\n\n"
            "    {{ release_code }}\n\n"
            "To remove the boot:\n"
            "1. Enter the code on the keypad of the boot and press the unlock button.\n"
            "2. Lift the boot away from the wheel; do not drive off with it attached.\n"
            "3. Return the boot within 24 hours to: {{ return_location }}.\n\n"
            "Boots that are not returned may result in additional fees on your account.\n\n"
            "{{ site_name }} Parking Services\n"
        ),
        body_html=(
            "<p>Hello {{ name }},</p>\n"
            "<p>Thank you for paying violation <strong>{{ ticket_number }}</strong>. The release code "
            "for the boot on vehicle <strong>{{ plate }}</strong> ({{ boot_name }}) is:</p>\n"
            '<p style="font-size:1.5em"><strong>{{ release_code }}</strong></p>\n'
            "<h3>To remove the boot</h3>\n<ol>\n"
            "<li>Enter the code on the keypad of the boot and press the unlock button.</li>\n"
            "<li>Lift the boot away from the wheel; do not drive off with it attached.</li>\n"
            "<li>Return the boot within 24 hours to: {{ return_location }}.</li>\n</ol>\n"
            "<p>Boots that are not returned may result in additional fees on your account.</p>\n"
            "<p>{{ site_name }} Parking Services</p>\n"
        ),
        sample={
            "name": "Alex Morgan",
            "ticket_number": "V-000123",
            "plate": "ABCD 123",
            "boot_name": "Red Boot 01",
            "release_code": "4821",
            "return_location": "Parking Office, Lot A, 100 University Ave",
            "site_name": "Campus",
        },
    ),
    DefaultTemplate(
        key="appeal-received",
        name="Appeal Received",
        subject="We received your appeal of ticket {{ ticket_number }}",
        body_text=(
            "Hello,\n\n"
            "We received your appeal of parking ticket {{ ticket_number }} (vehicle {{ plate }}) on "
            "{{ submitted_at }}. While it is reviewed the ticket is on hold: it does not become "
            "overdue.\n\n"
            "Your appeal:\n{{ appeal_text }}\n\n"
            "You will receive the decision by e-mail.\n\n"
            "{{ site_name }} Parking Services\n"
        ),
        body_html=(
            "<p>Hello,</p>\n"
            "<p>We received your appeal of parking ticket <strong>{{ ticket_number }}</strong> (vehicle "
            "{{ plate }}) on {{ submitted_at }}. While it is reviewed the ticket is on hold: it does not "
            "become overdue.</p>\n"
            "<p>Your appeal:</p>\n<blockquote>{{ appeal_text }}</blockquote>\n"
            "<p>You will receive the decision by e-mail.</p>\n"
            "<p>{{ site_name }} Parking Services</p>\n"
        ),
        sample={
            "ticket_number": "T-7K3-9QX",
            "plate": "ABCD 123",
            "submitted_at": "Tuesday 1 December 2026 at 14:05",
            "appeal_text": "The pay station was out of order.",
            "site_name": "Campus",
        },
    ),
    DefaultTemplate(
        key="appeal-decision",
        name="Appeal Decision",
        subject="Decision on your appeal of ticket {{ ticket_number }}: {{ outcome }}",
        body_text=(
            "Hello,\n\n"
            "Your appeal of parking ticket {{ ticket_number }} (vehicle {{ plate }}) was decided: "
            "{{ outcome }}.\n\n"
            "{% if note %}{{ note }}\n\n{% endif %}"
            "{% if amount_due_cents %}Amount due: {{ amount_due_cents | money }}, by {{ due_date }}.\n"
            "Pay online: {{ pay_url }}\n\n{% else %}Nothing is owed for this ticket.\n\n{% endif %}"
            "{{ site_name }} Parking Services\n"
        ),
        body_html=(
            "<p>Hello,</p>\n"
            "<p>Your appeal of parking ticket <strong>{{ ticket_number }}</strong> (vehicle {{ plate }}) "
            "was decided: <strong>{{ outcome }}</strong>.</p>\n"
            "{% if note %}<p>{{ note }}</p>\n{% endif %}"
            "{% if amount_due_cents %}<p>Amount due: {{ amount_due_cents | money }}, by {{ due_date }}. "
            '<a href="{{ pay_url }}">Pay online</a>.</p>\n'
            "{% else %}<p>Nothing is owed for this ticket.</p>\n{% endif %}"
            "<p>{{ site_name }} Parking Services</p>\n"
        ),
        sample={
            "ticket_number": "T-7K3-9QX",
            "plate": "ABCD 123",
            "outcome": "Reduced",
            "note": "The pay station log shows a fault that morning; the fine is halved.",
            "amount_due_cents": 2500,
            "due_date": "Thursday 31 December 2026",
            "pay_url": "https://parking.example.edu/pay-violation?ticket=T-7K3-9QX",
            "site_name": "Campus",
        },
    ),
    DefaultTemplate(
        key="permit-receipt",
        name="Permit Receipt",
        subject="Your permit {{ permit_number }}: {{ permit_name }}",
        body_text=(
            "Hello {{ name }},\n\n"
            "Your permit is confirmed.\n\n"
            "Permit: {{ permit_name }} ({{ permit_number }})\n"
            "Lot: {{ lot_name }}\n"
            "Valid: {{ valid_from }} to {{ valid_until }}\n"
            "Vehicles: {{ plates | join(', ') }}\n"
            "Paid: {{ amount_cents | money }}\n\n"
            "Your receipt, any time: {{ receipt_url }}\n\n"
            "{{ site_name }} Parking Services\n"
        ),
        body_html=(
            "<p>Hello {{ name }},</p>\n<p>Your permit is confirmed.</p>\n<table>\n"
            "<tr><th>Permit</th><td>{{ permit_name }} ({{ permit_number }})</td></tr>\n"
            "<tr><th>Lot</th><td>{{ lot_name }}</td></tr>\n"
            "<tr><th>Valid</th><td>{{ valid_from }} to {{ valid_until }}</td></tr>\n"
            "<tr><th>Vehicles</th><td>{{ plates | join(', ') }}</td></tr>\n"
            "<tr><th>Paid</th><td>{{ amount_cents | money }}</td></tr>\n</table>\n"
            '<p><a href="{{ receipt_url }}">Your receipt</a>, to find this permit again.</p>\n'
            "<p>{{ site_name }} Parking Services</p>\n"
        ),
        sample={
            "name": "Alex Morgan",
            "permit_number": "P-2025-0042",
            "receipt_url": "https://parking.example.edu/receipts/Zm9vYmFyYmF6cXV4cXV1eA",
            "permit_name": "Fall Term Student Permit",
            "lot_name": "Lot A",
            "valid_from": "2025-09-01",
            "valid_until": "2025-12-31",
            "plates": ["ABCD 123"],
            "amount_cents": 18500,
            "site_name": "Campus",
        },
    ),
    DefaultTemplate(
        key="payment-receipt",
        name="Violation Payment Receipt",
        subject="Payment receipt {{ reference }}",
        body_text=(
            "Hello {{ name }},\n\n"
            "We received your payment on {{ paid_at }}.\n\n"
            "{% for item in items %}{{ item.description }}: {{ item.amount_cents | money }}\n{% endfor %}"
            "Total: {{ total_cents | money }}\n"
            "Reference: {{ reference }}\n\n"
            "{{ site_name }} Parking Services\n"
        ),
        body_html=(
            "<p>Hello {{ name }},</p>\n<p>We received your payment on {{ paid_at }}.</p>\n<table>\n"
            "{% for item in items %}<tr><td>{{ item.description }}</td>"
            "<td>{{ item.amount_cents | money }}</td></tr>\n{% endfor %}"
            "<tr><th>Total</th><th>{{ total_cents | money }}</th></tr>\n</table>\n"
            "<p>Reference: {{ reference }}</p>\n<p>{{ site_name }} Parking Services</p>\n"
        ),
        sample={
            "name": "Alex Morgan",
            "reference": "PAY-000987",
            "paid_at": "2025-09-02 14:05",
            "items": [
                {"description": "Violation V-000123", "amount_cents": 5000},
                {"description": "Boot fee", "amount_cents": 7500},
            ],
            "total_cents": 12500,
            "site_name": "Campus",
        },
    ),
    DefaultTemplate(
        key="csv-import-failures",
        name="CSV Import Failures",
        subject=(
            "CSV user import {{ filename }}: "
            "{% if error %}file refused{% else %}{{ failed_count }} user(s) failed{% endif %}"
        ),
        body_text=(
            "The user import of {{ filename }} finished at {{ finished_at }}.\n\n"
            "{% if error %}The file was not imported: {{ error }}\n"
            "It is kept in the .bak folder; correct it and upload it again.\n"
            "{% else %}Imported: {{ imported_count }}\n"
            "Failed: {{ failed_count }} (all of them, with their reasons, in the attached CSV)\n\n"
            "{% for failure in failures %}Row {{ failure.row }} ({{ failure.email or 'no e-mail' }}): "
            "{{ failure.reason }}\n{% endfor %}\n"
            "Correct these rows and upload the file again; users already imported are not duplicated.\n"
            "{% endif %}"
        ),
        body_html=(
            "<p>The user import of <strong>{{ filename }}</strong> finished at {{ finished_at }}.</p>\n"
            "{% if error %}<p>The file was not imported: {{ error }}</p>\n"
            "<p>It is kept in the .bak folder; correct it and upload it again.</p>\n"
            "{% else %}<p>Imported: {{ imported_count }}<br>Failed: {{ failed_count }} (all of them, "
            "with their reasons, in the attached CSV)</p>\n"
            "<table>\n<tr><th>Row</th><th>E-mail</th><th>Reason</th></tr>\n"
            "{% for failure in failures %}<tr><td>{{ failure.row }}</td><td>{{ failure.email }}</td>"
            "<td>{{ failure.reason }}</td></tr>\n{% endfor %}</table>\n"
            "<p>Correct these rows and upload the file again; users already imported are not "
            "duplicated.</p>\n{% endif %}"
        ),
        sample={
            "filename": "users-2025-09-01.csv",
            "finished_at": "2025-09-01 02:05",
            "imported_count": 412,
            "failed_count": 2,
            "failures": [
                {"row": 7, "email": "", "reason": "email: missing"},
                {"row": 19, "email": "sam@campus.test", "reason": "user_type: unknown value 'Alumni'"},
            ],
            "error": "",
        },
    ),
    DefaultTemplate(
        key="peoplesoft-holds-report",
        name="PeopleSoft Holds Report",
        subject="PeopleSoft holds report {{ report_date }}",
        body_text=(
            "Attached are the PeopleSoft holds files for {{ report_date }}.\n\n"
            "Holds added: {{ added_count }} ({{ added_filename }})\n"
            "Holds released: {{ released_count }} ({{ released_filename }})\n\n"
            "Amounts in the added file are the total owed and replace any existing hold value.\n"
        ),
        body_html=(
            "<p>Attached are the PeopleSoft holds files for {{ report_date }}.</p>\n<ul>\n"
            "<li>Holds added: {{ added_count }} ({{ added_filename }})</li>\n"
            "<li>Holds released: {{ released_count }} ({{ released_filename }})</li>\n</ul>\n"
            "<p>Amounts in the added file are the total owed and replace any existing hold value.</p>\n"
        ),
        sample={
            "report_date": "2025-09-01",
            "added_count": 37,
            "added_filename": "holds_added_20250901.txt",
            "released_count": 12,
            "released_filename": "holds_released_20250901.txt",
        },
    ),
    DefaultTemplate(
        key="email-verification",
        name="Registration: Verify Your E-mail",
        subject="Confirm your e-mail address for {{ site_name }} Parking",
        body_text=(
            "Hello {{ name }},\n\n"
            "Thank you for registering. To finish, confirm that this is your e-mail address by "
            "opening this link:\n\n{{ verify_url }}\n\n"
            "The link works once, until {{ expires_at }}. Until then you cannot sign in; after that "
            "you can ask for a new link on the sign-in page.\n\n"
            "If you did not register, ignore this message: no account is usable without this link.\n\n"
            "{{ site_name }} Parking Services\n"
        ),
        body_html=(
            "<p>Hello {{ name }},</p>\n"
            "<p>Thank you for registering. To finish, confirm that this is your e-mail address:</p>\n"
            '<p><a href="{{ verify_url }}">Confirm my e-mail address</a></p>\n'
            "<p>The link works once, until {{ expires_at }}. Until then you cannot sign in; after that "
            "you can ask for a new link on the sign-in page.</p>\n"
            "<p>If you did not register, ignore this message: no account is usable without this "
            "link.</p>\n"
            "<p>{{ site_name }} Parking Services</p>\n"
        ),
        sample={
            "name": "Alex Morgan",
            "verify_url": "https://parking.example.edu/verify?token=Zm9vYmFyYmF6cXV4cXV1eA",
            "expires_at": "Saturday 5 December 2026 at 14:05",
            "site_name": "Campus",
        },
    ),
    DefaultTemplate(
        key="password-reset",
        name="Password Reset",
        subject="Reset your {{ site_name }} Parking password",
        body_text=(
            "Hello {{ name }},\n\n"
            "Someone (we hope you) asked to reset the password of your account. To choose a new "
            "password, open this link:\n\n{{ reset_url }}\n\n"
            "The link works once, until {{ expires_at }}. Choosing a new password signs you out "
            "everywhere else.\n\n"
            "If you did not ask for this, ignore this message: your password stays as it is.\n\n"
            "{{ site_name }} Parking Services\n"
        ),
        body_html=(
            "<p>Hello {{ name }},</p>\n"
            "<p>Someone (we hope you) asked to reset the password of your account.</p>\n"
            '<p><a href="{{ reset_url }}">Choose a new password</a></p>\n'
            "<p>The link works once, until {{ expires_at }}. Choosing a new password signs you out "
            "everywhere else.</p>\n"
            "<p>If you did not ask for this, ignore this message: your password stays as it is.</p>\n"
            "<p>{{ site_name }} Parking Services</p>\n"
        ),
        sample={
            "name": "Alex Morgan",
            "reset_url": "https://parking.example.edu/password/reset?token=Zm9vYmFyYmF6cXV4cXV1eA",
            "expires_at": "Thursday 3 December 2026 at 15:05",
            "site_name": "Campus",
        },
    ),
    DefaultTemplate(
        key="waitlist-offer",
        name="Waitlist Offer",
        subject="A space is held for you: {{ product_name }} at {{ lot_name }}",
        body_text=(
            "Hello {{ name }},\n\n"
            "A space opened up in {{ lot_name }}, and as the next person on the waitlist it is held "
            "for you: {{ product_name }}.\n\n"
            "Book it before {{ expires_at }}:\n{{ book_url }}\n\n"
            "Sign in with the account you joined the waitlist with. After that time the space goes to "
            "the next person waiting. If you no longer need it, there is nothing to do.\n\n"
            "{{ site_name }} Parking Services\n"
        ),
        body_html=(
            "<p>Hello {{ name }},</p>\n"
            "<p>A space opened up in {{ lot_name }}, and as the next person on the waitlist it is held "
            "for you: <strong>{{ product_name }}</strong>.</p>\n"
            '<p><a href="{{ book_url }}">Book it</a> before <strong>{{ expires_at }}</strong>.</p>\n'
            "<p>Sign in with the account you joined the waitlist with. After that time the space goes "
            "to the next person waiting. If you no longer need it, there is nothing to do.</p>\n"
            "<p>{{ site_name }} Parking Services</p>\n"
        ),
        sample={
            "name": "Alex Morgan",
            "product_name": "Winter Term Permit",
            "lot_name": "Lot A",
            "book_url": "https://parking.example.edu/permits/book/12",
            "expires_at": "2026-12-02 10:00 EST",
            "site_name": "Campus",
        },
    ),
)
_DEFAULTS_BY_KEY = {template.key: template for template in DEFAULT_TEMPLATES}

# What each variable holds, for the template editor. Keyed by name: a name means the same thing in
# every template (``name`` is always the recipient's name). A variable without an entry is shown
# with its example value only.
VARIABLE_DOCS: dict[str, str] = {
    "name": "the recipient's name (or their e-mail address when the name is unknown)",
    "site_name": "the Site Name (System Settings > General)",
    "ticket_number": "the violation's ticket number",
    "plate": "the vehicle's plate",
    "boot_name": "the boot's name, as on its label",
    "release_code": "the code that unlocks the boot",
    "return_location": "where the boot goes back (System Settings > Third Party > Universal Boot)",
    "submitted_at": "when the appeal was submitted, in the site's time zone, in words",
    "appeal_text": "what the driver wrote",
    "outcome": "the decision: Upheld, Reduced or Cancelled",
    "note": "the reviewer's note (may be empty)",
    "amount_due_cents": "the amount still owed, in cents: write {{ amount_due_cents | money }}",
    "due_date": "the date it is due by",
    "pay_url": "the page to pay the ticket online",
    "permit_number": "the permit's number",
    "permit_name": "the permit product's name",
    "lot_name": "the lot's name",
    "valid_from": "first day of validity",
    "valid_until": "last day of validity",
    "plates": "the vehicles' plates, a list: {{ plates | join(', ') }}",
    "amount_cents": "the amount paid, in cents: {{ amount_cents | money }}",
    "receipt_url": "the receipt's private link",
    "reference": "the payment's reference",
    "paid_at": "when it was paid",
    "items": "the lines paid, a list of {description, amount_cents}",
    "total_cents": "the total paid, in cents: {{ total_cents | money }}",
    "filename": "the imported file's name",
    "finished_at": "when the import finished",
    "imported_count": "how many users were imported",
    "failures": "the first 100 rows that failed, a list of {row, email, reason}",
    "failed_count": "how many rows failed (all are in the attached CSV)",
    "error": "why the whole file was refused (empty when it was imported)",
    "report_date": "the day the report covers",
    "added_count": "how many holds were added",
    "added_filename": "the Holds Added file's name",
    "released_count": "how many holds were released",
    "released_filename": "the Holds Released file's name",
    "product_name": "the permit product offered",
    "book_url": "the page to book the held space",
    "expires_at": "when the link or the offer lapses, in the site's time zone, in words",
    "verify_url": "the single-use link that confirms the e-mail address",
    "reset_url": "the single-use link to choose a new password",
}


@dataclass(frozen=True)
class Variable:
    name: str
    meaning: str
    example: str


def documented_variables(key: str) -> list[Variable]:
    """The variables template ``key`` may use, with what they hold and an example value."""
    return [
        Variable(name, VARIABLE_DOCS.get(name, ""), _example(value))
        for name, value in sorted(sample_context(key).items())
    ]


def _example(value: object) -> str:
    text = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


@jinja2.pass_context
def _money(context: jinja2.runtime.Context, cents: int) -> str:
    """Amounts travel in integer cents (see CONVENTIONS); templates format them with ``| money``,
    followed by the message's ``currency`` (the site's unless the sender gives the payment's)."""
    sign = "-" if cents < 0 else ""
    amount = f"{sign}${abs(int(cents)) // 100:,}.{abs(int(cents)) % 100:02d}"
    currency = context.get("currency")
    return f"{amount} {currency}" if isinstance(currency, str) and currency else amount


def _environment(*, autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=autoescape)
    env.filters["money"] = _money
    return env


_TEXT_ENV = _environment(autoescape=False)
_HTML_ENV = _environment(autoescape=True)


class RenderedEmail(NamedTuple):
    subject: str
    text: str
    html: str | None


@dataclass(frozen=True)
class TemplateInfo:
    key: str
    name: str
    subject: str
    body_text: str
    body_html: str
    variables: list[str]
    updated_at: datetime


@functools.lru_cache(maxsize=256)
def _compiled(source: str, env: jinja2.Environment) -> jinja2.Template:
    """A template compiled once per source text: compiling costs milliseconds (most of a checkout's
    CPU when every receipt was compiled afresh), rendering a compiled one a fraction of that. Keyed
    on the text itself, so an admin's edit is a new entry and the old one ages out."""
    return env.from_string(source)


def _render_part(part: str, source: str, context: Mapping[str, Any], env: jinja2.Environment) -> str:
    try:
        return _compiled(source, env).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{part}: syntax error on line {exc.lineno}: {exc.message}") from exc
    except SecurityError as exc:
        raise TemplateError(f"{part}: not allowed in a template: {exc}") from exc
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{part}: undefined variable: {exc.message}") from exc
    except Exception as exc:  # admin-written code can fail in any way (a bad filter argument...)
        raise TemplateError(f"{part}: cannot be rendered: {type(exc).__name__}: {exc}") from exc


def _render(subject: str, body_text: str, body_html: str, context: Mapping[str, Any]) -> RenderedEmail:
    rendered_subject = _render_part("subject", subject, context, _TEXT_ENV)
    return RenderedEmail(
        # One line whatever the template or the values did: a newline here would end the header.
        subject=" ".join(rendered_subject.split()),
        text=_render_part("body_text", body_text, context, _TEXT_ENV),
        html=_render_part("body_html", body_html, context, _HTML_ENV) if body_html.strip() else None,
    )


def render_source(subject: str, body_text: str, body_html: str, context: Mapping[str, Any]) -> RenderedEmail:
    """Render template source that is not stored (a shipped default, when an admin's edit of a
    message that must go out, such as a boot release code, fails to render)."""
    return _render(subject, body_text, body_html, context)


def _template(session: Session, key: str) -> EmailTemplate:
    row = session.scalar(select(EmailTemplate).where(EmailTemplate.key == key))
    if row is None:
        raise NotFound(f"no email template {key!r}")
    return row


def sample_context(key: str) -> dict[str, Any]:
    """Example values for the template ``key`` ({} for a template ParkOps does not ship)."""
    default = _DEFAULTS_BY_KEY.get(key)
    return dict(default.sample) if default else {}


def ensure_default_templates(session: Session) -> list[str]:
    """Insert the shipped templates that are missing; returns their keys. Existing rows are left
    alone, so running this on every upgrade never reverts an admin's edits."""
    existing = set(session.scalars(select(EmailTemplate.key)))
    added = []
    for default in DEFAULT_TEMPLATES:
        if default.key not in existing:
            session.add(
                EmailTemplate(
                    key=default.key,
                    name=default.name,
                    subject=default.subject,
                    body_text=default.body_text,
                    body_html=default.body_html,
                )
            )
            added.append(default.key)
    session.flush()
    return added


def render_template(session: Session, key: str, context: Mapping[str, Any]) -> RenderedEmail:
    """Render the stored template ``key``; ``TemplateError`` names what is wrong (``NotFound`` if
    the template does not exist). Only its three parts are read (no ORM object: receipts are
    rendered inside checkouts)."""
    from dashboard.services import system_settings  # imports this module's neighbours

    row = session.execute(_template_source(), {"key": key}).first()
    if row is None:
        raise NotFound(f"no email template {key!r}")
    if "currency" not in context:  # a receipt names its payment's own currency
        context = {"currency": system_settings.currency(session), **context}
    return _render(row.subject, row.body_text, row.body_html, context)


@functools.cache
def _template_source() -> Select[str, str, str]:
    return select(EmailTemplate.subject, EmailTemplate.body_text, EmailTemplate.body_html).where(
        EmailTemplate.key == bindparam("key")
    )


def compose(
    session: Session,
    key: str,
    context: Mapping[str, Any],
    to: list[str],
    *,
    reply_to: str | None = None,
    attachments: Iterable[Attachment] = (),
) -> EmailMessage:
    """An ``EmailMessage`` from a template, tagged with its key so the outbox shows its origin."""
    subject, text, html = render_template(session, key, context)
    return EmailMessage(
        to=to,
        subject=subject,
        text=text,
        html=html,
        reply_to=reply_to,
        attachments=list(attachments),
        template_key=key,
    )


def preview_template(key: str, subject: str, body_text: str, body_html: str) -> RenderedEmail:
    """Render an unsaved draft with the sample context; ``ValidationFailed`` per broken part."""
    errors: dict[str, str] = {}
    context = sample_context(key)
    parts = {
        "subject": (subject, _TEXT_ENV),
        "body_text": (body_text, _TEXT_ENV),
        "body_html": (body_html, _HTML_ENV),
    }
    rendered: dict[str, str] = {}
    for part, (source, env) in parts.items():
        try:
            rendered[part] = _render_part(part, source, context, env)
        except TemplateError as exc:
            errors[part] = str(exc).removeprefix(f"{part}: ")
    if errors:
        raise ValidationFailed(errors)
    return RenderedEmail(
        subject=" ".join(rendered["subject"].split()),
        text=rendered["body_text"],
        html=rendered["body_html"] if body_html.strip() else None,
    )


def update_template(
    session: Session, key: str, subject: str, body_text: str, body_html: str, actor_id: int | None
) -> TemplateInfo:
    """Save an admin's edit after a test render, so a broken template is refused at the editor
    instead of failing when a boot release code has to go out. The change is audited."""
    row = _template(session, key)
    errors: dict[str, str] = {}
    if not subject.strip():
        errors["subject"] = "a subject is required"
    elif len(subject) > MAX_SUBJECT:
        errors["subject"] = f"at most {MAX_SUBJECT} characters"
    if not body_text.strip():
        errors["body_text"] = "a plain-text body is required (many mail clients show only that)"
    try:
        preview_template(key, subject, body_text, body_html)
    except ValidationFailed as exc:
        errors = {**exc.errors, **errors}
    if errors:
        raise ValidationFailed(errors)
    changed = [
        name
        for name, value in (("subject", subject), ("body_text", body_text), ("body_html", body_html))
        if getattr(row, name) != value
    ]
    row.subject, row.body_text, row.body_html = subject, body_text, body_html
    if changed:
        session.add(
            AuditLog(
                actor_id=actor_id,
                action="email_template.update",
                entity_type="email_template",
                entity_id=key,
                changes={"fields": changed},
            )
        )
    session.flush()
    return _info(row)


def reset_template(session: Session, key: str, actor_id: int | None) -> TemplateInfo:
    """Put back the shipped wording of ``key`` (subject, text and HTML); audited. ``NotFound`` for
    a template ParkOps does not ship (it has no default to go back to)."""
    default = _DEFAULTS_BY_KEY.get(key)
    if default is None:
        raise NotFound(f"{key!r} has no shipped default to reset to")
    row = _template(session, key)
    row.subject, row.body_text, row.body_html = default.subject, default.body_text, default.body_html
    session.add(
        AuditLog(
            actor_id=actor_id,
            action="email_template.reset",
            entity_type="email_template",
            entity_id=key,
            changes={},
        )
    )
    session.flush()
    return _info(row)


def _info(row: EmailTemplate) -> TemplateInfo:
    return TemplateInfo(
        key=row.key,
        name=row.name,
        subject=row.subject,
        body_text=row.body_text,
        body_html=row.body_html,
        variables=sorted(sample_context(row.key)),
        updated_at=row.updated_at,
    )


def list_templates(session: Session) -> list[TemplateInfo]:
    return [_info(row) for row in session.scalars(select(EmailTemplate).order_by(EmailTemplate.name))]


def get_template(session: Session, key: str) -> TemplateInfo | None:
    row = session.scalar(select(EmailTemplate).where(EmailTemplate.key == key))
    return _info(row) if row else None


# --- outbox queries --------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxRow:
    id: int
    created_at: datetime
    to: list[str]
    subject: str
    status: OutboxStatus
    template_key: str | None


@dataclass(frozen=True)
class AttachmentInfo:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class OutboxDetail:
    id: int
    created_at: datetime
    sent_at: datetime | None
    to: list[str]
    reply_to: str | None
    subject: str
    body_text: str
    body_html: str | None
    template_key: str | None
    backend: str
    status: OutboxStatus
    error: str | None
    attachments: list[AttachmentInfo]
    sender: str | None = None
    provider_message_id: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    next_attempt_at: datetime | None = None
    resent_from_id: int | None = None


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_outbox(
    session: Session, limit: int = 100, search: str | None = None, status: str | None = None
) -> list[OutboxRow]:
    """Newest first. ``search`` matches recipients, subject or template key; ``status`` is an
    ``OutboxStatus`` value (an unknown one is a ``ValidationFailed``, not an empty list)."""
    query = select(
        OutboxMessage.id,
        OutboxMessage.created_at,
        OutboxMessage.to_addresses,
        OutboxMessage.subject,
        OutboxMessage.status,
        OutboxMessage.template_key,
    )
    if search and search.strip():
        pattern = _like(search.strip())
        query = query.where(
            or_(
                cast(OutboxMessage.to_addresses, String).ilike(pattern, escape="\\"),
                OutboxMessage.subject.ilike(pattern, escape="\\"),
                OutboxMessage.template_key.ilike(pattern, escape="\\"),
            )
        )
    if status:
        try:
            query = query.where(OutboxMessage.status == OutboxStatus(status))
        except ValueError:
            raise ValidationFailed({"status": f"unknown status {status!r}"}) from None
    limit = max(1, min(limit, MAX_OUTBOX_LIMIT))
    query = query.order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()).limit(limit)
    return [
        OutboxRow(
            id=r.id,
            created_at=r.created_at,
            to=list(r.to_addresses),
            subject=r.subject,
            status=r.status,
            template_key=r.template_key,
        )
        for r in session.execute(query)
    ]


def get_outbox_message(session: Session, message_id: int) -> OutboxDetail | None:
    """One message with its attachments' names and sizes (the bytes stay in the database)."""
    row = session.get(OutboxMessage, message_id)
    if row is None:
        return None
    attachments = session.execute(
        select(
            OutboxAttachment.filename, OutboxAttachment.content_type, func.length(OutboxAttachment.content)
        )
        .where(OutboxAttachment.message_id == message_id)
        .order_by(OutboxAttachment.id)
    )
    return OutboxDetail(
        id=row.id,
        created_at=row.created_at,
        sent_at=row.sent_at,
        to=list(row.to_addresses),
        reply_to=row.reply_to,
        subject=row.subject,
        body_text=row.body_text,
        body_html=row.body_html,
        template_key=row.template_key,
        backend=row.backend,
        status=row.status,
        error=row.error,
        attachments=[AttachmentInfo(name, ctype, int(size or 0)) for name, ctype, size in attachments],
        sender=row.sender,
        provider_message_id=row.provider_message_id,
        attempts=list(row.attempts or []),
        next_attempt_at=row.next_attempt_at,
        resent_from_id=row.resent_from_id,
    )
