"""Boots: the inventory (Setup Boot Devices), putting one on a car, its release, its return (the
deposit refund is ``boot_deposits``), and the Boot Device Report.

The rules money and physical devices need:

* **A boot is never on two cars.** ``assign_boot`` locks the boot's row (an UPDATE, so on SQLite it
  takes the write lock) and assigns only an Available boot; a partial unique index on open
  assignments backs that up in the database.
* **A release code is never sent before payment, and is sent exactly once after it.**
  ``release_boot_for_paid_violation`` refuses an unpaid violation and moves each assignment from In
  Use to Released with a conditional UPDATE: the email goes out only for the row that one call
  moved, so a payment confirmation that arrives twice sends one email.
* **A deposit is refunded once** (``boot_deposits``, which refunds it through ``payments``).

The deposit is the seed's: the fines of every Apply Boot item on the violation, no discount
considered (Apply Discount is never on with Apply Boot).

Boot statuses: a boot is Available, In Use (on a car) or Released (the code was sent, the boot is
not back yet); an assignment ends Returned, which makes its boot Available again.

Why this module is long: inventory, assignment, release, return and the Boot Device Report all read
and move the same assignment's states under the same row locks.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from dashboard.crypto import SecretBox, SecretError, mask
from dashboard.services import audit, email, system_settings
from dashboard.services.days import day_bounds
from dashboard.services.errors import DomainError, NotAllowed, NotFound, ValidationFailed
from dashboard.services.ticket_numbers import TICKET_SEARCH_MAX, clean_ticket_number, new_unused_number
from models import (
    Boot,
    BootAssignment,
    BootStatus,
    ItemKind,
    OffenceType,
    PaymentStatus,
    Refund,
    User,
    Violation,
    ViolationItem,
    ViolationStatus,
)

log = logging.getLogger(__name__)

ENABLED_SETTING = "boot_universal_enabled"
NAME_MAX = 80
CODE_MAX = 64
REASON_MAX = 255
RELEASE_TEMPLATE = "boot-release"
NOT_RETURNED = "not_returned"
PAGE_SIZE = 50
OPEN = (BootStatus.IN_USE, BootStatus.RELEASED)
STATUS_LABELS = {
    BootStatus.AVAILABLE.value: "Available",
    BootStatus.IN_USE.value: "In Use",
    BootStatus.RELEASED.value: "Released",
    BootStatus.RETURNED.value: "Returned",
    NOT_RETURNED: "Released / Not Returned",
}


class BootInUse(NotAllowed):
    """The boot is on another car (or released and not back yet)."""


def enabled(session: Session, secrets: SecretBox) -> bool:
    """Universal Boot Enabled: off hides every boot screen, menu entry and field."""
    return bool(system_settings.get(session, secrets, ENABLED_SETTING))


def status_label(value: str) -> str:
    return STATUS_LABELS.get(value, value)


# -- inventory ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootView:
    id: int
    name: str
    code_mask: str  # never the code itself
    status: str
    is_active: bool
    ticket_number: str | None  # the violation it is on, while in use or released
    violation_id: int | None


def _mask(secrets: SecretBox, stored: str) -> str:
    try:
        return mask(secrets.decrypt(stored)) or "•" * 8
    except SecretError:
        return "unreadable: enter it again"


def list_boots(session: Session, secrets: SecretBox) -> list[BootView]:
    open_on = {
        boot_id: (number, violation_id)
        for boot_id, number, violation_id in session.execute(
            select(BootAssignment.boot_id, Violation.ticket_number, Violation.id)
            .join(Violation, Violation.id == BootAssignment.violation_id)
            .where(BootAssignment.status.in_(OPEN))
        )
    }
    return [
        BootView(
            id=boot.id,
            name=boot.name,
            code_mask=_mask(secrets, boot.release_code),
            status=str(boot.status),
            is_active=boot.is_active,
            ticket_number=open_on.get(boot.id, (None, None))[0],
            violation_id=open_on.get(boot.id, (None, None))[1],
        )
        for boot in session.scalars(select(Boot).order_by(Boot.name))
    ]


def get_boot(session: Session, secrets: SecretBox, boot_id: int) -> BootView:
    found = next((b for b in list_boots(session, secrets) if b.id == boot_id), None)
    if found is None:
        raise NotFound("That boot does not exist.")
    return found


def save_boot(
    session: Session,
    secrets: SecretBox,
    boot_id: int | None,
    *,
    name: str,
    release_code: str,
    is_active: bool,
    actor_id: int | None,
) -> BootView:
    """Add a boot (a release code is required) or edit one (an empty code keeps the stored one).
    The code is encrypted before it is stored and audited only as "changed"."""
    errors: dict[str, str] = {}
    clean_name = " ".join((name or "").split())
    if not clean_name or len(clean_name) > NAME_MAX:
        errors["name"] = f"required, at most {NAME_MAX} characters (e.g. Red Boot 01)"
    code = (release_code or "").strip()
    if boot_id is None and not code:
        errors["release_code"] = "required: the code from the boot's instructions"
    elif len(code) > CODE_MAX:
        errors["release_code"] = f"at most {CODE_MAX} characters"
    taken = session.scalar(
        select(Boot.id).where(func.lower(Boot.name) == clean_name.lower(), Boot.id != (boot_id or 0))
    )
    if clean_name and taken is not None:
        errors["name"] = "another boot has this name"
    if errors:
        raise ValidationFailed(errors)
    changes: dict[str, object] = {}
    if boot_id is None:
        row = Boot(name=clean_name, release_code=secrets.encrypt(code), is_active=is_active)
        session.add(row)
        changes = {"name": [None, clean_name], "release_code": "set", "is_active": [None, is_active]}
    else:
        found = session.get(Boot, boot_id)
        if found is None:
            raise NotFound("That boot does not exist.")
        row = found
        if not is_active and row.is_active and row.status != BootStatus.AVAILABLE:
            raise ValidationFailed({"is_active": "the boot is on a car: return it before retiring it"})
        if row.name != clean_name:
            changes["name"] = [row.name, clean_name]
            row.name = clean_name
        if code:
            try:
                same = secrets.decrypt(row.release_code) == code
            except SecretError:
                same = False
            if not same:
                row.release_code = secrets.encrypt(code)
                changes["release_code"] = "changed"
        if row.is_active != is_active:
            changes["is_active"] = [row.is_active, is_active]
            row.is_active = is_active
    session.flush()
    if changes:
        audit.record(
            session,
            actor_id=actor_id,
            action="boot.create" if boot_id is None else "boot.update",
            entity_type="boot",
            entity_id=str(row.id),
            changes=changes,
        )
    return get_boot(session, secrets, row.id)


# -- the Apply Boot dropdown and assigning ------------------------------------------------------


@dataclass(frozen=True)
class BootChoice:
    """One line of the Apply Boot dropdown: a boot (``boot_id``) or a group heading (None)."""

    boot_id: int | None
    label: str
    selectable: bool


def boot_choices(session: Session) -> list[BootChoice]:
    """The seed's order: available boots first; then, under the headings "Released" and "Issued",
    the boots that are not (so when none is available the list starts with one of those titles).
    Only available boots can be chosen; the others are listed so the officer sees where they are."""
    active = list(session.scalars(select(Boot).where(Boot.is_active.is_(True)).order_by(Boot.name)))
    choices = [BootChoice(b.id, b.name, True) for b in active if b.status == BootStatus.AVAILABLE]
    for heading, status in (("Released", BootStatus.RELEASED), ("Issued", BootStatus.IN_USE)):
        group = [b for b in active if b.status == status]
        if group:
            choices.append(BootChoice(None, heading, False))
            choices.extend(BootChoice(b.id, b.name, False) for b in group)
    return choices


def assign_boot(session: Session, boot_id: int, violation_id: int, deposit: int, now: datetime) -> str:
    """Put the boot on the violation's car; ``BootInUse`` unless it is available. Returns its name.

    The UPDATE that locks the row comes first, so a second officer choosing the same boot at the
    same moment waits here and then finds it in use."""
    locked = session.execute(update(Boot).where(Boot.id == boot_id).values(updated_at=Boot.updated_at))
    boot = session.get(Boot, boot_id) if locked.rowcount else None  # type: ignore[attr-defined]
    if boot is None or not boot.is_active:
        raise ValidationFailed({"boot": "that boot is not in the inventory"})
    session.refresh(boot)
    if boot.status != BootStatus.AVAILABLE:
        where = "released and not returned yet" if boot.status == BootStatus.RELEASED else "on another car"
        raise BootInUse(f"{boot.name} is {where}: choose another boot.")
    boot.status = BootStatus.IN_USE
    session.add(
        BootAssignment(
            boot_id=boot.id,
            violation_id=violation_id,
            status=BootStatus.IN_USE,
            deposit_cents=deposit,
            applied_at=now,
        )
    )
    session.flush()
    return boot.name


# -- release (after payment) --------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseMail:
    """What the Boot Release Email needs besides the violation: who it goes to and the site."""

    to: str
    name: str
    site_name: str
    return_location: str


def release_boot_for_paid_violation(
    session: Session,
    secrets: SecretBox,
    violation_id: int,
    mail: ReleaseMail,
    backend: email.EmailBackend,
    now: datetime,
) -> list[str]:
    """Send the release code of every boot still on this paid violation, once; returns the names
    of the boots this call released (empty on a repeat). ``NotAllowed`` for an unpaid violation.

    The email is written to the outbox in this transaction, so the boot turns Released exactly when
    its code is on its way. Should the admin-edited template fail to render, the shipped wording is
    used instead: the owner paid and must get the code."""
    violation = session.get(Violation, violation_id)
    if violation is None:
        raise NotFound("That violation does not exist.")
    if violation.status != ViolationStatus.PAID:
        raise NotAllowed("The release code is sent only once the violation is paid.")
    released: list[str] = []
    open_rows = session.execute(
        select(BootAssignment.id, BootAssignment.boot_id).where(
            BootAssignment.violation_id == violation_id, BootAssignment.status == BootStatus.IN_USE
        )
    ).all()
    for assignment_id, boot_id in open_rows:
        moved = session.execute(
            update(BootAssignment)
            .where(BootAssignment.id == assignment_id, BootAssignment.status == BootStatus.IN_USE)
            .values(status=BootStatus.RELEASED, released_at=now)
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            continue  # another confirmation of the same payment got here first
        boot = session.get(Boot, boot_id)
        assert boot is not None
        session.refresh(boot)
        boot.status = BootStatus.RELEASED
        context = {
            "name": mail.name,
            "ticket_number": violation.ticket_number,
            "plate": violation.plate,
            "boot_name": boot.name,
            "release_code": secrets.decrypt(boot.release_code),
            "return_location": mail.return_location or "the parking office",
            "site_name": mail.site_name,
        }
        email.send_email(session, _release_message(session, context, mail.to), backend)
        audit.record(
            session,
            actor_id=None,
            action="boot.release",
            entity_type="boot_assignment",
            entity_id=str(assignment_id),
            changes={"boot": boot.name, "ticket_number": violation.ticket_number, "to": mail.to},
        )
        released.append(boot.name)
    session.flush()
    return released


def _release_message(session: Session, context: Mapping[str, object], to: str) -> email.EmailMessage:
    try:
        return email.compose(session, RELEASE_TEMPLATE, context, [to])
    except DomainError:
        log.exception("the %s template does not render: the shipped wording is sent", RELEASE_TEMPLATE)
    shipped = next(t for t in email.DEFAULT_TEMPLATES if t.key == RELEASE_TEMPLATE)
    rendered = email.render_source(shipped.subject, shipped.body_text, shipped.body_html, context)
    return email.EmailMessage(
        to=[to],
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        template_key=RELEASE_TEMPLATE,
    )


# -- deposit and return -------------------------------------------------------------------------


def deposit_cents(session: Session, violation_id: int) -> int:
    """The seed's deposit: every Apply Boot item's fine on the violation, no discount considered."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(ViolationItem.amount_cents), 0))
            .join(OffenceType, OffenceType.id == ViolationItem.offence_type_id)
            .where(
                ViolationItem.violation_id == violation_id,
                ViolationItem.kind == ItemKind.OFFENCE,
                OffenceType.apply_boot.is_(True),
            )
        )
        or 0
    )


def mark_returned(
    session: Session, assignment_id: int, actor_id: int | None, now: datetime, *, skip_reason: str = ""
) -> None:
    """The boot is back: the assignment turns Returned and the boot Available. ``skip_reason``
    records why the deposit is kept (a damaged boot), when it is."""
    reason = " ".join((skip_reason or "").split())
    if len(reason) > REASON_MAX:
        raise ValidationFailed({"reason": f"at most {REASON_MAX} characters"})
    assignment = session.get(BootAssignment, assignment_id)
    if assignment is None:
        raise NotFound("That boot assignment does not exist.")
    session.execute(update(Boot).where(Boot.id == assignment.boot_id).values(updated_at=Boot.updated_at))
    moved = session.execute(
        update(BootAssignment)
        .where(BootAssignment.id == assignment_id, BootAssignment.status.in_(OPEN))
        .values(status=BootStatus.RETURNED, returned_at=now, refund_skipped_reason=reason)
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        raise NotAllowed("That boot was already marked returned.")
    boot = session.get(Boot, assignment.boot_id)
    assert boot is not None
    session.refresh(boot)
    boot.status = BootStatus.AVAILABLE
    audit.record(
        session,
        actor_id=actor_id,
        action="boot.return",
        entity_type="boot_assignment",
        entity_id=str(assignment_id),
        changes={"boot": boot.name, "refund_skipped_reason": reason or None},
    )
    session.flush()


def keep_deposit(session: Session, assignment_id: int, reason: str, actor_id: int | None) -> None:
    """Record why a returned boot's deposit is kept (a damaged boot); audited."""
    clean = " ".join((reason or "").split())
    if not clean or len(clean) > REASON_MAX:
        raise ValidationFailed({"reason": f"say why the deposit is kept (at most {REASON_MAX} characters)"})
    assignment = session.get(BootAssignment, assignment_id)
    if assignment is None:
        raise NotFound("That boot assignment does not exist.")
    if assignment.status != BootStatus.RETURNED:
        raise NotAllowed("Mark the boot returned first.")
    assignment.refund_skipped_reason = clean
    audit.record(
        session,
        actor_id=actor_id,
        action="boot.keep_deposit",
        entity_type="boot_assignment",
        entity_id=str(assignment_id),
        changes={"refund_skipped_reason": clean},
    )
    session.flush()


# -- non-return ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NonReturnResult:
    flagged: tuple[str, ...]  # "boot name (ticket)"
    fees: tuple[str, ...]  # late-fee ticket numbers


def flag_non_returned(
    session: Session, now: datetime, *, days: int, fee_cents: int, due_days: int
) -> NonReturnResult:
    """Flag released boots not back ``days`` after their code was sent, once each; with a fee, add
    it to the owner's account as a new violation (same plate and account) carrying one late-fee
    item. Idempotent: a flagged assignment is never flagged or charged again."""
    cutoff = now - timedelta(days=days)
    due = session.execute(
        select(BootAssignment.id, Boot.name, Violation.id, Violation.ticket_number)
        .join(Boot, Boot.id == BootAssignment.boot_id)
        .join(Violation, Violation.id == BootAssignment.violation_id)
        .where(
            BootAssignment.status == BootStatus.RELEASED,
            BootAssignment.not_returned_at.is_(None),
            BootAssignment.released_at <= cutoff,
        )
        .order_by(BootAssignment.released_at)
    ).all()
    flagged: list[str] = []
    fees: list[str] = []
    for assignment_id, boot_name, violation_id, number in due:
        moved = session.execute(
            update(BootAssignment)
            .where(BootAssignment.id == assignment_id, BootAssignment.not_returned_at.is_(None))
            .values(not_returned_at=now)
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            continue
        changes: dict[str, object] = {"boot": boot_name, "ticket_number": number, "late_fee_cents": 0}
        if fee_cents > 0:
            original = session.get(Violation, violation_id)
            assert original is not None
            fee = Violation(
                ticket_number=new_unused_number(session),
                status=ViolationStatus.UNPAID,
                user_id=original.user_id,
                officer_id=None,
                lot_id=original.lot_id,
                plate=original.plate,
                plate_normalized=original.plate_normalized,
                issued_at=now,
                due_at=now + timedelta(days=due_days),
                notes=f"Boot {boot_name} was not returned after ticket {number}.",
            )
            fee.items = [
                ViolationItem(
                    kind=ItemKind.LATE_FEE,
                    amount_cents=fee_cents,
                    description=f"Late fee: boot {boot_name} not returned (ticket {number})",
                )
            ]
            session.add(fee)
            session.flush()
            session.execute(
                update(BootAssignment)
                .where(BootAssignment.id == assignment_id)
                .values(late_fee_violation_id=fee.id)
            )
            changes["late_fee_cents"] = fee_cents
            changes["late_fee_ticket"] = fee.ticket_number
            fees.append(fee.ticket_number)
        audit.record(
            session,
            actor_id=None,
            action="boot.not_returned",
            entity_type="boot_assignment",
            entity_id=str(assignment_id),
            changes=changes,
        )
        flagged.append(f"{boot_name} ({number})")
    session.flush()
    return NonReturnResult(tuple(flagged), tuple(fees))


# -- the Boot Device Report ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReportFilters:
    status: str | None = None  # in_use, released, returned, or not_returned
    boot_id: int | None = None
    ticket: str | None = None
    applied_from: date | None = None  # site-local days, inclusive
    applied_to: date | None = None


@dataclass(frozen=True)
class ReportRow:
    assignment_id: int
    boot_id: int
    boot_name: str
    violation_id: int
    ticket_number: str
    plate: str
    status: str
    not_returned: bool
    applied_at: datetime
    released_at: datetime | None
    returned_at: datetime | None
    deposit_cents: int
    refund: str  # what happened to the deposit, in words ("" while the boot is out)
    late_fee_ticket: str | None

    @property
    def shown_status(self) -> str:
        return NOT_RETURNED if self.not_returned else self.status


@dataclass(frozen=True)
class ReportPage:
    rows: tuple[ReportRow, ...]
    total: int
    page: int
    pages: int


def _report_query(filters: ReportFilters, now: datetime, non_return_days: int, tz: tzinfo) -> Select:
    if filters.ticket and len(filters.ticket) > TICKET_SEARCH_MAX:
        raise ValidationFailed({"ticket": f"at most {TICKET_SEARCH_MAX} characters"})
    start, end = day_bounds(filters.applied_from, filters.applied_to, tz)
    query = (
        select(BootAssignment, Boot.name, Violation.ticket_number, Violation.plate)
        .join(Boot, Boot.id == BootAssignment.boot_id)
        .join(Violation, Violation.id == BootAssignment.violation_id)
    )
    overdue = now - timedelta(days=non_return_days)
    if filters.status == NOT_RETURNED:
        query = query.where(
            BootAssignment.status == BootStatus.RELEASED,
            or_(BootAssignment.not_returned_at.is_not(None), BootAssignment.released_at <= overdue),
        )
    elif filters.status:
        try:
            query = query.where(BootAssignment.status == BootStatus(filters.status))
        except ValueError:
            raise ValidationFailed({"status": "not one of the offered statuses"}) from None
    if filters.boot_id is not None:
        query = query.where(BootAssignment.boot_id == filters.boot_id)
    if filters.ticket and filters.ticket.strip():
        query = query.where(Violation.ticket_number == clean_ticket_number(filters.ticket))
    if start is not None:
        query = query.where(BootAssignment.applied_at >= start)
    if end is not None:
        query = query.where(BootAssignment.applied_at < end)
    return query.order_by(BootAssignment.applied_at.desc(), BootAssignment.id.desc())


def _report_rows(
    session: Session, rows: Sequence[Any], now: datetime, non_return_days: int
) -> list[ReportRow]:
    overdue = now - timedelta(days=non_return_days)
    currency = system_settings.currency(session)
    refunds = {
        r.id: r
        for r in session.scalars(
            select(Refund).where(Refund.id.in_({a.refund_id for a, *_ in rows if a.refund_id is not None}))
        )
    }
    fee_numbers = dict(
        session.execute(
            select(Violation.id, Violation.ticket_number).where(
                Violation.id.in_({a.late_fee_violation_id for a, *_ in rows if a.late_fee_violation_id})
            )
        ).all()
    )
    out = []
    for assignment, boot_name, number, plate in rows:
        refund = refunds.get(assignment.refund_id) if assignment.refund_id else None
        if refund is not None and refund.status == PaymentStatus.SUCCEEDED:
            words = f"refunded ${refund.amount_cents / 100:,.2f} {currency}"
        elif refund is not None and refund.status == PaymentStatus.FAILED:
            words = "refund failed"
        elif assignment.refund_skipped_reason:
            words = f"kept: {assignment.refund_skipped_reason}"
        elif assignment.status == BootStatus.RETURNED:
            words = "not refunded"
        else:
            words = ""
        out.append(
            ReportRow(
                assignment_id=assignment.id,
                boot_id=assignment.boot_id,
                boot_name=boot_name,
                violation_id=assignment.violation_id,
                ticket_number=number,
                plate=plate,
                status=str(assignment.status),
                not_returned=assignment.status == BootStatus.RELEASED
                and (
                    assignment.not_returned_at is not None
                    or (assignment.released_at is not None and assignment.released_at <= overdue)
                ),
                applied_at=assignment.applied_at,
                released_at=assignment.released_at,
                returned_at=assignment.returned_at,
                deposit_cents=deposit_cents(session, assignment.violation_id),
                refund=words,
                late_fee_ticket=fee_numbers.get(assignment.late_fee_violation_id),
            )
        )
    return out


def report(
    session: Session,
    filters: ReportFilters,
    now: datetime,
    tz: tzinfo,
    *,
    non_return_days: int,
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> ReportPage:
    query = _report_query(filters, now, non_return_days, tz)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    rows = session.execute(query.offset((page - 1) * page_size).limit(page_size)).all()
    return ReportPage(tuple(_report_rows(session, rows, now, non_return_days)), total, page, pages)


def report_row(session: Session, assignment_id: int, now: datetime, non_return_days: int) -> ReportRow:
    rows = session.execute(
        select(BootAssignment, Boot.name, Violation.ticket_number, Violation.plate)
        .join(Boot, Boot.id == BootAssignment.boot_id)
        .join(Violation, Violation.id == BootAssignment.violation_id)
        .where(BootAssignment.id == assignment_id)
    ).all()
    if not rows:
        raise NotFound("That boot assignment does not exist.")
    return _report_rows(session, rows, now, non_return_days)[0]


def report_csv(
    session: Session, filters: ReportFilters, now: datetime, tz: tzinfo, *, non_return_days: int
) -> str:
    rows = session.execute(_report_query(filters, now, non_return_days, tz)).all()

    def local(moment: datetime | None) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else ""

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["boot", "ticket", "plate", "status", "created (local)", "released (local)", "returned (local)",
         "deposit", "deposit refund", "late fee ticket"]
    )  # fmt: skip
    for row in _report_rows(session, rows, now, non_return_days):
        writer.writerow(
            [
                row.boot_name,
                row.ticket_number,
                row.plate,
                status_label(row.shown_status),
                local(row.applied_at),
                local(row.released_at),
                local(row.returned_at),
                f"{row.deposit_cents / 100:.2f}",
                row.refund,
                row.late_fee_ticket or "",
            ]
        )
    return out.getvalue()


@dataclass(frozen=True)
class BootSummary:
    """For the dashboard: boots on cars now, and released boots that count as not returned."""

    in_use: int
    not_returned: int


def summary(session: Session, now: datetime, non_return_days: int) -> BootSummary:
    overdue = now - timedelta(days=non_return_days)
    in_use = session.scalar(
        select(func.count()).select_from(BootAssignment).where(BootAssignment.status == BootStatus.IN_USE)
    )
    late = session.scalar(
        select(func.count())
        .select_from(BootAssignment)
        .where(
            BootAssignment.status == BootStatus.RELEASED,
            or_(BootAssignment.not_returned_at.is_not(None), BootAssignment.released_at <= overdue),
        )
    )
    return BootSummary(int(in_use or 0), int(late or 0))


def owner_name(session: Session, violation_id: int) -> str:
    """How the release email greets the owner: the account's name, else "vehicle owner"."""
    user = session.scalar(
        select(User).join(Violation, Violation.user_id == User.id).where(Violation.id == violation_id)
    )
    return user.full_name if user is not None else "vehicle owner"
