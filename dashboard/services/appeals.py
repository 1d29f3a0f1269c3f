"""Appeals: the owner disputes a ticket, a manager decides.

The owner finds the ticket by its number and the plate (a guest needs nothing else; a signed-in
owner whose account the ticket is on needs only the number), writes why, and may add a photo. The
violation turns "under appeal": it is not overdue meanwhile, and it cannot be paid until decided
(its status is not unpaid). A wrong number and a wrong plate get the same answer, so the form
cannot be used to find out which plates have tickets.

A manager decides: upheld (the ticket stands), cancelled (it is voided), or reduced (it stands at a
lower total: a negative "reduction" item, so the items still add up to what is owed; the boot
deposit, made of Apply Boot items, is not touched). An upheld or reduced ticket is due again no
sooner than the setting's due days after the decision, so nobody is overdue the moment they learn
the outcome. Both steps e-mail the owner through editable templates ("Appeal Received", "Appeal
Decision"); both are audited.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.services import audit, email, photos, ticket_numbers, violations
from dashboard.services.errors import DomainError, NotAllowed, NotFound, ValidationFailed
from dashboard.services.plates import normalize_plate
from models import (
    Appeal,
    AppealStatus,
    ItemKind,
    User,
    Violation,
    ViolationItem,
    ViolationPhoto,
    ViolationStatus,
)

log = logging.getLogger(__name__)

TEXT_MAX = 4000
NOTE_MAX = 2000
RECEIVED_TEMPLATE = "appeal-received"
DECISION_TEMPLATE = "appeal-decision"
OUTCOME_LABELS = {
    AppealStatus.UPHELD.value: "Upheld",
    AppealStatus.CANCELLED.value: "Cancelled",
    AppealStatus.REDUCED.value: "Reduced",
    AppealStatus.PENDING.value: "Pending",
}
NOT_FOUND = "No ticket matches this number and plate."


@dataclass(frozen=True)
class Site:
    """What the e-mails need of the site: its name, its public URL and its time zone."""

    name: str
    base_url: str
    tz: tzinfo


@dataclass(frozen=True)
class Submitted:
    appeal_id: int
    ticket_number: str
    email: str


def _violation_for(session: Session, ticket: str, plate: str, user_id: int | None) -> Violation:
    violation = session.scalar(
        select(Violation).where(Violation.ticket_number == ticket_numbers.clean_ticket_number(ticket))
    )
    if violation is None:
        raise NotFound(NOT_FOUND)
    owner = user_id is not None and violation.user_id == user_id
    if not owner and (not normalize_plate(plate) or normalize_plate(plate) != violation.plate_normalized):
        raise NotFound(NOT_FOUND)
    return violation


def submit_appeal(
    session: Session,
    *,
    ticket: str,
    plate: str,
    text: str,
    email_address: str,
    user_id: int | None,
    photo: bytes | None,
    instance_path: Path,
    site: Site,
    backend: email.EmailBackend,
    now: datetime,
) -> Submitted:
    """Record an appeal and e-mail its receipt. Everything is checked (the photo included) before
    anything is written."""
    errors: dict[str, str] = {}
    body = (text or "").strip()
    if len(body) < 10:
        errors["text"] = "say in a few words why the ticket is wrong"
    elif len(body) > TEXT_MAX:
        errors["text"] = f"at most {TEXT_MAX} characters"
    address = (email_address or "").strip()
    if not email.ADDRESS_RE.match(address) or len(address) > 254:
        errors["email"] = "a valid e-mail address: the decision is sent there"
    if errors:
        raise ValidationFailed(errors)
    violation = _violation_for(session, ticket, plate, user_id)
    if violation.status == ViolationStatus.UNDER_APPEAL:
        raise NotAllowed("This ticket is already under appeal; the decision will be e-mailed.")
    if violation.status != ViolationStatus.UNPAID:
        raise NotAllowed(
            f"A {violations.status_label(str(violation.status)).lower()} ticket cannot be appealed."
        )
    if session.scalar(select(Appeal.id).where(Appeal.violation_id == violation.id)) is not None:
        raise NotAllowed("This ticket was appealed already; an appeal is decided once.")
    stored = photos.store_photo(instance_path, photo) if photo else None
    appeal = Appeal(
        violation_id=violation.id,
        status=AppealStatus.PENDING,
        text=body,
        email=address,
        user_id=user_id,
        submitted_at=now,
    )
    session.add(appeal)
    session.flush()
    if stored is not None:
        session.add(
            ViolationPhoto(
                appeal_id=appeal.id,
                stored_name=stored.stored_name,
                content_type=stored.content_type,
                size_bytes=stored.size_bytes,
                width=stored.width,
                height=stored.height,
                uploaded_by_id=user_id,
                created_at=now,
            )
        )
    violation.status = ViolationStatus.UNDER_APPEAL
    audit.record(
        session,
        actor_id=user_id,
        action="appeal.submit",
        entity_type="violation",
        entity_id=str(violation.id),
        changes={"status": ["unpaid", "under_appeal"], "appeal_id": appeal.id, "photo": stored is not None},
    )
    context = {
        "ticket_number": violation.ticket_number,
        "plate": violation.plate,
        "submitted_at": violations.when_words(now, site.tz),
        "appeal_text": body,
        "site_name": site.name,
    }
    _send(session, RECEIVED_TEMPLATE, context, address, backend)
    session.flush()
    return Submitted(appeal.id, violation.ticket_number, address)


def _send(
    session: Session, key: str, context: Mapping[str, object], to: str, backend: email.EmailBackend
) -> None:
    """An appeal's e-mail; a template an admin broke must not lose the appeal or the decision, so
    the failure is logged and the outbox shows nothing was sent (the page shows the outcome)."""
    try:
        message = email.compose(session, key, context, [to])
    except DomainError:
        log.exception("the %s template does not render", key)
        return
    email.send_email(session, message, backend)


@dataclass(frozen=True)
class Decided:
    outcome: str
    amount_due_cents: int
    due_at: datetime | None


def decide_appeal(
    session: Session,
    appeal_id: int,
    *,
    outcome: str,
    note: str,
    reduced_to_cents: int | None,
    actor_id: int | None,
    due_days: int,
    site: Site,
    backend: email.EmailBackend,
    now: datetime,
) -> Decided:
    """Decide a pending appeal (see the module's docstring) and e-mail the owner."""
    errors: dict[str, str] = {}
    if outcome not in (AppealStatus.UPHELD, AppealStatus.CANCELLED, AppealStatus.REDUCED):
        errors["outcome"] = "choose upheld, cancelled or reduced"
    clean_note = (note or "").strip()
    if not clean_note:
        errors["note"] = "a note for the owner is required: it goes in the e-mail"
    elif len(clean_note) > NOTE_MAX:
        errors["note"] = f"at most {NOTE_MAX} characters"
    appeal = session.get(Appeal, appeal_id)
    if appeal is None:
        raise NotFound("That appeal does not exist.")
    violation = session.get(Violation, appeal.violation_id)
    assert violation is not None
    if outcome == AppealStatus.REDUCED:
        total = violation.total_cents
        if not isinstance(reduced_to_cents, int) or not 0 <= reduced_to_cents < total:
            errors["reduced_to"] = f"a new total below the current ${total / 100:,.2f}"
    if errors:
        raise ValidationFailed(errors)
    if appeal.status != AppealStatus.PENDING:
        raise NotAllowed("This appeal was decided already.")
    appeal.status = AppealStatus(outcome)
    appeal.decided_at = now
    appeal.decided_by_id = actor_id
    appeal.decision_note = clean_note
    if outcome == AppealStatus.CANCELLED:
        violation.status = ViolationStatus.VOID
        violation.void_reason = f"Appeal cancelled: {clean_note}"[:255]
        violation.voided_at = now
    else:
        if outcome == AppealStatus.REDUCED:
            assert reduced_to_cents is not None
            appeal.reduced_to_cents = reduced_to_cents
            violation.items.append(
                ViolationItem(
                    kind=ItemKind.REDUCTION,
                    amount_cents=reduced_to_cents - violation.total_cents,
                    description="Reduced on appeal",
                )
            )
        violation.status = ViolationStatus.UNPAID
        fresh_due = now + timedelta(days=due_days)
        if violation.due_at is None or violation.due_at < fresh_due:
            violation.due_at = fresh_due
    session.flush()
    owed = violation.total_cents if violation.status == ViolationStatus.UNPAID else 0
    audit.record(
        session,
        actor_id=actor_id,
        action="appeal.decide",
        entity_type="violation",
        entity_id=str(violation.id),
        changes={"appeal_id": appeal.id, "outcome": outcome, "note": clean_note, "total_cents": owed},
    )
    context = {
        "ticket_number": violation.ticket_number,
        "plate": violation.plate,
        "outcome": OUTCOME_LABELS[outcome],
        "note": clean_note,
        "amount_due_cents": owed,
        "due_date": violations.when_words(violation.due_at, site.tz, with_time=False),
        "pay_url": violations.pay_url(site.base_url, violation.ticket_number),
        "site_name": site.name,
    }
    _send(session, DECISION_TEMPLATE, context, appeal.email, backend)
    return Decided(outcome, owed, violation.due_at if owed else None)


def account_email(session: Session, user_id: int | None) -> str:
    """The signed-in owner's e-mail, to fill the appeal form."""
    return session.scalar(select(User.email).where(User.id == user_id)) or "" if user_id else ""
