"""The outbox as the record of delivery: claiming a queued message, recording each attempt, retry
times, resending, and what the provider reports back later (bounces, complaints).

The rules (see ``dashboard.services.email`` for the whole story):
- a row is sent only by whoever moved it from ``queued`` to ``sending`` in one UPDATE (``claim``),
  so a job run twice, two workers, or a retry racing the first job send it once;
- ``record_attempt`` appends the attempt and decides: ``sent``, ``queued`` again (due after the
  backoff), or ``failed`` (permanent refusal, or ``MAX_ATTEMPTS`` reached);
- a claim older than ``STALE_CLAIM`` (the worker died mid-send) is queued again with a note: the
  only case where a message may go out twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from dashboard.services import audit
from dashboard.services.email import (
    MAX_ATTEMPTS,
    STALE_CLAIM,
    Attachment,
    Delivered,
    EmailBackend,
    EmailMessage,
    attempt_entry,
    backoff,
    bare_message_id,
    send_email,
)
from dashboard.services.errors import NotAllowed, NotFound
from models import MailgunWebhookToken, OutboxMessage, OutboxStatus, User

log = logging.getLogger(__name__)

# Statuses a message can be resent from: it left (or could not leave) and an admin wants it again.
RESENDABLE = frozenset(
    {
        OutboxStatus.SENT,
        OutboxStatus.FAILED,
        OutboxStatus.BOUNCED,
        OutboxStatus.COMPLAINED,
        OutboxStatus.STORED,
    }
)


@dataclass(frozen=True)
class Claimed:
    """A message this worker now owns: send it, then ``record_attempt``."""

    id: int
    backend: str
    message: EmailMessage
    attempt: int  # 1 for the first attempt


def claim(session: Session, message_id: int, now: datetime) -> Claimed | None:
    """Take ``message_id`` for delivery if it is queued and due; ``None`` if someone else has it,
    it was sent already, or it is not due yet. Commit before sending, so the claim is visible."""
    taken = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.status == OutboxStatus.QUEUED,
            or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
        )
        .values(status=OutboxStatus.SENDING, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    if not taken.rowcount:  # type: ignore[attr-defined]
        return None
    row = session.get(OutboxMessage, message_id, populate_existing=True)
    assert row is not None  # just updated
    message = EmailMessage(
        to=list(row.to_addresses),
        subject=row.subject,
        text=row.body_text,
        html=row.body_html,
        reply_to=row.reply_to,
        attachments=[Attachment(a.filename, a.content_type, a.content) for a in row.attachments],
        template_key=row.template_key,
        message_id=row.provider_message_id if row.backend == "smtp" else None,
    )
    return Claimed(row.id, row.backend, message, len(row.attempts or []) + 1)


def set_envelope(
    session: Session, message_id: int, sender: str, reply_to: str | None, message_id_header: str | None
) -> None:
    """Record, before sending, the From and Reply-To the worker uses (and for SMTP the Message-ID
    it generated), so the outbox shows what the recipient saw and a retry reuses the same id."""
    row = session.get(OutboxMessage, message_id)
    if row is None:
        raise NotFound(f"no outbox message {message_id}")
    row.sender = sender
    row.reply_to = reply_to
    if message_id_header:
        row.provider_message_id = bare_message_id(message_id_header)
    session.flush()


def record_attempt(
    session: Session,
    message_id: int,
    now: datetime,
    *,
    delivered: Delivered | None = None,
    error: str | None = None,
    permanent: bool = False,
) -> OutboxStatus:
    """Close the claim with the outcome of one attempt; returns the row's new status."""
    row = session.get(OutboxMessage, message_id, populate_existing=True)
    if row is None:
        raise NotFound(f"no outbox message {message_id}")
    attempts = list(row.attempts or [])
    row.claimed_at = None
    if delivered is not None:
        attempts.append(attempt_entry(now, ok=True, result=delivered.answer))
        row.status, row.sent_at, row.error, row.next_attempt_at = OutboxStatus.SENT, now, None, None
        row.provider_message_id = bare_message_id(delivered.provider_message_id) or row.provider_message_id
    else:
        reason = error or "unknown error"
        attempts.append(attempt_entry(now, ok=False, result=reason))
        row.error = reason
        if permanent or len(attempts) >= MAX_ATTEMPTS:
            row.status, row.next_attempt_at = OutboxStatus.FAILED, None
        else:
            row.status, row.next_attempt_at = OutboxStatus.QUEUED, now + backoff(len(attempts))
    row.attempts = attempts
    session.flush()
    return row.status


def due(session: Session, now: datetime, limit: int = 200) -> list[tuple[int, int]]:
    """Queued messages whose next attempt is due, oldest first, as (id, attempts made)."""
    rows = session.execute(
        select(OutboxMessage.id, OutboxMessage.attempts)
        .where(
            OutboxMessage.status == OutboxStatus.QUEUED,
            or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    return [(message_id, len(attempts or [])) for message_id, attempts in rows]


def release_stale_claims(session: Session, now: datetime) -> list[int]:
    """Queue again the messages claimed longer than ``STALE_CLAIM`` ago: their worker died, maybe
    after the server took the message. The attempt says so, since the recipient may get it twice."""
    stale = list(
        session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.status == OutboxStatus.SENDING,
                and_(OutboxMessage.claimed_at.is_not(None), OutboxMessage.claimed_at < now - STALE_CLAIM),
            )
        )
    )
    for row in stale:
        note = "the worker stopped during this attempt; the message may have been sent, it is sent again"
        row.attempts = [*(row.attempts or []), attempt_entry(now, ok=False, result=note)]
        row.status, row.claimed_at, row.next_attempt_at, row.error = OutboxStatus.QUEUED, None, now, note
        log.warning("email %s: claim of a dead worker released (may be sent twice)", row.id)
    session.flush()
    return [row.id for row in stale]


def resend(session: Session, message_id: int, backend: EmailBackend, actor_id: int | None) -> int:
    """Send a copy of an old message (same recipients, content and attachments) as a new outbox
    row; the old row keeps its history. Returns the new id. Audited."""
    row = session.get(OutboxMessage, message_id)
    if row is None:
        raise NotFound("That message no longer exists.")
    if row.status not in RESENDABLE:
        raise NotAllowed(f"A {row.status.value} message is still on its way; it cannot be resent now.")
    copy = EmailMessage(
        to=list(row.to_addresses),
        subject=row.subject,
        text=row.body_text,
        html=row.body_html,
        reply_to=row.reply_to,
        attachments=[Attachment(a.filename, a.content_type, a.content) for a in row.attachments],
        template_key=row.template_key,
    )
    new_id = send_email(session, copy, backend)
    new_row = session.get(OutboxMessage, new_id)
    assert new_row is not None
    new_row.resent_from_id = row.id
    audit.record(
        session,
        actor_id=actor_id,
        action="email.resend",
        entity_type="outbox_message",
        entity_id=str(row.id),
        changes={"new_message_id": new_id},
    )
    session.flush()
    return new_id


# --- what the provider reports back ------------------------------------------------------------


@dataclass(frozen=True)
class ProviderEvent:
    """One delivery event reported by the provider, reduced to what ParkOps acts on."""

    provider_message_id: str
    event: str  # "failed" (with severity), "complained", "delivered"...
    recipient: str
    severity: str = ""  # "permanent" or "temporary" for "failed"
    reason: str = ""


def token_seen(session: Session, token: str, now: datetime, window_seconds: int) -> bool:
    """Remember a webhook token; ``True`` if it was seen already (a replay). Tokens older than the
    window are forgotten, since a call that old is refused for its timestamp."""
    session.execute(
        delete(MailgunWebhookToken).where(
            MailgunWebhookToken.seen_at < now - timedelta(seconds=window_seconds)
        )
    )
    if session.get(MailgunWebhookToken, token) is not None:
        return True
    session.add(MailgunWebhookToken(token=token, seen_at=now))
    session.flush()
    return False


def apply_event(session: Session, event: ProviderEvent, now: datetime) -> str:
    """Mark the message a provider event is about; returns what was done, in words (the webhook
    answers it, and it is logged). A permanent failure marks the message ``bounced`` and flags every
    user with that address; a complaint marks it ``complained``. Other events change nothing."""
    row = session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.provider_message_id == bare_message_id(event.provider_message_id)
        )
    )
    if row is None:
        return f"no message with id {event.provider_message_id!r}: ignored"
    if event.event == "failed" and event.severity == "permanent":
        row.status = OutboxStatus.BOUNCED
        row.error = f"bounced by {event.recipient}: {event.reason}".strip()[:2000]
        flagged = flag_bounced(session, event.recipient, event.reason, now)
        outcome = f"message {row.id} marked bounced; {flagged} user(s) flagged"
    elif event.event == "complained":
        row.status = OutboxStatus.COMPLAINED
        row.error = f"{event.recipient} marked it as spam"
        outcome = f"message {row.id} marked complained"
    else:
        return f"message {row.id}: event {event.event!r} {event.severity} needs nothing"
    row.attempts = [
        *(row.attempts or []),
        attempt_entry(
            now, ok=False, result=f"provider event: {event.event} {event.severity} {event.reason}".strip()
        ),
    ]
    session.flush()
    return outcome


def flag_bounced(session: Session, address: str, reason: str, now: datetime) -> int:
    """Flag the users whose e-mail address hard-bounced; returns how many."""
    users = list(session.scalars(select(User).where(func.lower(User.email) == address.strip().lower())))
    for user in users:
        user.email_bounced_at = now
        user.email_bounce_reason = (reason or "hard bounce")[:500]
    session.flush()
    return len(users)


def bounced_addresses(session: Session, addresses: list[str]) -> dict[str, str]:
    """Of ``addresses``, those flagged as hard-bounced on a user, with the reason."""
    if not addresses:
        return {}
    lowered = [a.lower() for a in addresses]
    rows = session.execute(
        select(User.email, User.email_bounce_reason).where(
            func.lower(User.email).in_(lowered), User.email_bounced_at.is_not(None)
        )
    )
    return {email.lower(): reason or "hard bounce" for email, reason in rows}


@dataclass(frozen=True)
class BouncedUser:
    id: int
    email: str
    name: str
    bounced_at: datetime
    reason: str


def bounced_users(session: Session, limit: int = 200) -> list[BouncedUser]:
    """Users whose address hard-bounced, most recent first (shown to admins on the outbox)."""
    rows = session.scalars(
        select(User)
        .where(User.email_bounced_at.is_not(None))
        .order_by(User.email_bounced_at.desc())
        .limit(limit)
    )
    return [
        BouncedUser(u.id, u.email, u.full_name, u.email_bounced_at, u.email_bounce_reason or "hard bounce")  # type: ignore[arg-type]
        for u in rows
    ]


def clear_bounce(session: Session, user_id: int, actor_id: int | None) -> None:
    """An admin confirmed the address works again (the user fixed their mailbox)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("That user no longer exists.")
    user.email_bounced_at, user.email_bounce_reason = None, None
    audit.record(
        session,
        actor_id=actor_id,
        action="user.email_bounce_cleared",
        entity_type="user",
        entity_id=str(user_id),
        changes={},
    )
    session.flush()
