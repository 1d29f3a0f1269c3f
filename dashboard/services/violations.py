"""Violations (tickets): writing one on a phone, reading, searching and voiding them, and the seam
through which a payment marks one paid.

Writing a ticket (``issue_ticket``) is one transaction that starts by locking the officer's own
user row (an UPDATE, the first statement: on PostgreSQL a row lock, on SQLite the write lock), so
two submits of the same form queue: the second finds the ticket the first wrote under the form's
``submit_key`` and returns it (a phone on a slow connection retries; the officer taps twice). The
key is also unique in the database. A boot is taken inside the same transaction
(``boots.assign_boot``: the boot's row lock, then a check that it is available), so a ticket and its
boot are written together or not at all.

Ticket numbers (``ticket_numbers``) read well aloud and on paper: ``T-7K3-9QX``.

"Overdue" is derived, not stored: an unpaid violation whose due date has passed. A violation under
appeal is never overdue (its status is not unpaid).

Why this module is long: writing, searching, voiding and paying a ticket share the ticket's
numbering, its lock and its states; each public function is a step of that one lifecycle.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from urllib.parse import urlencode

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from dashboard.services import audit, boots, offences
from dashboard.services.days import day_bounds
from dashboard.services.errors import NotAllowed, NotFound, ValidationFailed
from dashboard.services.plates import MAX_TYPED, clean_plate, normalize_plate
from dashboard.services.spreadsheet import safe_cell
from dashboard.services.ticket_numbers import TICKET_SEARCH_MAX, clean_ticket_number, new_unused_number
from models import (
    Appeal,
    AppealStatus,
    Boot,
    BootAssignment,
    ItemKind,
    Lot,
    OffenceType,
    Payment,
    PaymentAllocation,
    PaymentStatus,
    Role,
    User,
    Vehicle,
    Violation,
    ViolationItem,
    ViolationPhoto,
    ViolationStatus,
)

KEY_RE = re.compile(r"^[A-Za-z0-9-]{16,64}$")
NOTES_MAX = 2000
MAX_ITEMS = 10
MAX_PHOTOS = 6
REASON_MAX = 255
PAGE_SIZE = 50
EXPORT_LIMIT = 50_000
OVERDUE = "overdue"
STATUS_LABELS = {
    ViolationStatus.UNPAID.value: "Unpaid",
    ViolationStatus.PAID.value: "Paid",
    ViolationStatus.VOID.value: "Void",
    ViolationStatus.UNDER_APPEAL.value: "Under appeal",
    OVERDUE: "Overdue",
}
PAID_PAYMENTS = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


def display_status(status: ViolationStatus | str, due_at: datetime | None, now: datetime) -> str:
    """The status a person reads: "overdue" for an unpaid violation past its due date."""
    value = str(status)
    if value == ViolationStatus.UNPAID and due_at is not None and due_at < now:
        return OVERDUE
    return value


def status_label(value: str) -> str:
    return STATUS_LABELS.get(value, value)


# -- views --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemView:
    id: int
    kind: str
    code: str | None
    description: str
    amount_cents: int
    apply_boot: bool
    # The early-payment price and until when it holds (None: no discount on this item).
    discounted_cents: int | None = None
    discount_until: datetime | None = None


@dataclass(frozen=True)
class BootOnTicket:
    assignment_id: int
    boot_id: int
    boot_name: str
    status: str
    applied_at: datetime
    released_at: datetime | None
    returned_at: datetime | None


@dataclass(frozen=True)
class AppealOnTicket:
    id: int
    status: str
    text: str
    email: str
    submitted_at: datetime
    decided_at: datetime | None
    decision_note: str
    reduced_to_cents: int | None
    photo_ids: tuple[int, ...]


@dataclass(frozen=True)
class TicketView:
    id: int
    ticket_number: str
    status: str  # as stored
    shown_status: str  # with "overdue"
    plate: str
    lot_id: int | None
    lot_name: str | None
    officer_id: int | None
    officer_name: str | None
    issued_at: datetime
    due_at: datetime | None
    notes: str
    items: tuple[ItemView, ...]
    total_cents: int
    paid_at: datetime | None
    void_reason: str
    photo_ids: tuple[int, ...] = ()
    boots: tuple[BootOnTicket, ...] = ()
    appeal: AppealOnTicket | None = None

    @property
    def booted(self) -> bool:
        return bool(self.boots)

    @property
    def boot_deposit_cents(self) -> int:
        """The seed's deposit: every Apply Boot item's fine, no discount considered."""
        return sum(item.amount_cents for item in self.items if item.apply_boot)

    @property
    def early_total_cents(self) -> int | None:
        """What paying before the earliest discount deadline costs, when any item has a discount."""
        if not any(item.discounted_cents is not None for item in self.items):
            return None
        return sum(
            item.discounted_cents if item.discounted_cents is not None else item.amount_cents
            for item in self.items
        )

    @property
    def discount_until(self) -> datetime | None:
        deadlines = [item.discount_until for item in self.items if item.discount_until is not None]
        return min(deadlines) if deadlines else None


def _item_view(item: ViolationItem, issued_at: datetime) -> ItemView:
    offence = item.offence_type
    discounted = until = None
    if offence is not None and item.kind == ItemKind.OFFENCE:
        type_view = offences.view_of(offence)
        until = offences.discount_deadline(type_view, issued_at)
        if until is not None:
            discounted = offences.discounted_cents(type_view, item.amount_cents, issued_at, issued_at)
    return ItemView(
        id=item.id,
        kind=str(item.kind),
        code=offence.code if offence is not None else None,
        description=item.description,
        amount_cents=item.amount_cents,
        apply_boot=bool(offence is not None and offence.apply_boot and item.kind == ItemKind.OFFENCE),
        discounted_cents=discounted,
        discount_until=until,
    )


def _load(session: Session, query: Select) -> list[Violation]:
    return list(
        session.scalars(
            query.options(
                selectinload(Violation.items).selectinload(ViolationItem.offence_type),
                selectinload(Violation.lot),
            )
        )
    )


def _view(session: Session, violation: Violation, now: datetime, *, detail: bool = True) -> TicketView:
    officer = session.get(User, violation.officer_id) if violation.officer_id else None
    photo_ids: tuple[int, ...] = ()
    boot_rows: tuple[BootOnTicket, ...] = ()
    appeal_view = None
    if detail:
        photo_ids = tuple(
            session.scalars(
                select(ViolationPhoto.id)
                .where(ViolationPhoto.violation_id == violation.id)
                .order_by(ViolationPhoto.id)
            )
        )
        boot_rows = tuple(
            BootOnTicket(a.id, a.boot_id, name, str(a.status), a.applied_at, a.released_at, a.returned_at)
            for a, name in session.execute(
                select(BootAssignment, Boot.name)
                .join(Boot, Boot.id == BootAssignment.boot_id)
                .where(BootAssignment.violation_id == violation.id)
                .order_by(BootAssignment.id)
            )
        )
        appeal = session.scalar(select(Appeal).where(Appeal.violation_id == violation.id))
        if appeal is not None:
            appeal_view = AppealOnTicket(
                id=appeal.id,
                status=str(appeal.status),
                text=appeal.text,
                email=appeal.email,
                submitted_at=appeal.submitted_at,
                decided_at=appeal.decided_at,
                decision_note=appeal.decision_note,
                reduced_to_cents=appeal.reduced_to_cents,
                photo_ids=tuple(
                    session.scalars(
                        select(ViolationPhoto.id)
                        .where(ViolationPhoto.appeal_id == appeal.id)
                        .order_by(ViolationPhoto.id)
                    )
                ),
            )
    return TicketView(
        id=violation.id,
        ticket_number=violation.ticket_number,
        status=str(violation.status),
        shown_status=display_status(violation.status, violation.due_at, now),
        plate=violation.plate,
        lot_id=violation.lot_id,
        lot_name=violation.lot.name if violation.lot is not None else None,
        officer_id=violation.officer_id,
        officer_name=officer.full_name if officer is not None else None,
        issued_at=violation.issued_at,
        due_at=violation.due_at,
        notes=violation.notes,
        items=tuple(_item_view(item, violation.issued_at) for item in violation.items),
        total_cents=violation.total_cents,
        paid_at=violation.paid_at,
        void_reason=violation.void_reason,
        photo_ids=photo_ids,
        boots=boot_rows,
        appeal=appeal_view,
    )


def get_violation(session: Session, violation_id: int, now: datetime) -> TicketView:
    found = _load(session, select(Violation).where(Violation.id == violation_id))
    if not found:
        raise NotFound("That violation does not exist.")
    return _view(session, found[0], now)


def get_ticket(session: Session, ticket_number: str, now: datetime) -> TicketView:
    found = _load(
        session, select(Violation).where(Violation.ticket_number == clean_ticket_number(ticket_number))
    )
    if not found:
        raise NotFound("There is no ticket with that number.")
    return _view(session, found[0], now)


def officer_choices(session: Session) -> list[tuple[int, str]]:
    """(id, name) of every officer and above: who may have written a ticket."""
    rows = session.execute(
        select(User.id, User.first_name, User.last_name, User.email)
        .where(User.role >= int(Role.OFFICER))
        .order_by(User.last_name, User.first_name, User.email)
    )
    return [(uid, f"{first} {last}".strip() or email) for uid, first, last, email in rows]


def recent_for_officer(session: Session, officer_id: int, now: datetime, limit: int = 10) -> list[TicketView]:
    """The officer's own latest tickets, newest first (the list under the ticket form)."""
    rows = _load(
        session,
        select(Violation)
        .where(Violation.officer_id == officer_id)
        .order_by(Violation.issued_at.desc(), Violation.id.desc())
        .limit(limit),
    )
    return [_view(session, row, now, detail=False) for row in rows]


# -- writing a ticket ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketDraft:
    """What the officer's form sends. ``submit_key``: one per form shown (a retry resends it)."""

    submit_key: str
    officer_id: int
    lot_id: int | None
    plate: str
    offence_type_ids: Sequence[int]
    notes: str = ""
    boot_id: int | None = None
    photo_ids: Sequence[int] = field(default_factory=tuple)


@dataclass(frozen=True)
class Issued:
    ticket: TicketView
    created: bool  # False: this form had already made the ticket (a retried submit)


def _lock_user(session: Session, user_id: int) -> None:
    locked = session.execute(update(User).where(User.id == user_id).values(updated_at=User.updated_at))
    if locked.rowcount == 0:  # type: ignore[attr-defined]
        raise NotAllowed("Your account no longer exists.")


def _owner_of(session: Session, plate_normalized: str) -> int | None:
    """The account whose registered vehicle has this plate, when exactly one has it: then the owner
    sees the ticket in their account and may appeal it signed in."""
    owners = set(session.scalars(select(Vehicle.user_id).where(Vehicle.plate_normalized == plate_normalized)))
    return owners.pop() if len(owners) == 1 else None


def issue_ticket(
    session: Session,
    draft: TicketDraft,
    now: datetime,
    *,
    due_days: int,
    boots_enabled: bool,
) -> Issued:
    """Write a ticket (see the module's docstring). ``ValidationFailed`` per field, ``boots.BootInUse``
    when the boot was taken by someone else first; nothing is written in either case."""
    if not isinstance(draft.submit_key, str) or not KEY_RE.match(draft.submit_key):
        raise ValidationFailed({"form": "reload the page and try again"})
    _lock_user(session, draft.officer_id)
    known = session.scalar(select(Violation).where(Violation.submit_key == draft.submit_key))
    if known is not None:
        if known.officer_id != draft.officer_id:
            raise ValidationFailed({"form": "reload the page and try again"})
        return Issued(get_violation(session, known.id, now), created=False)

    errors: dict[str, str] = {}
    lot = session.get(Lot, draft.lot_id) if isinstance(draft.lot_id, int) else None
    if lot is None or not lot.is_active:
        errors["lot"] = "choose the lot"
    typed = normalized = ""
    try:
        typed, normalized = clean_plate(draft.plate)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    ids = [i for i in dict.fromkeys(draft.offence_type_ids or ()) if isinstance(i, int)]
    types = {
        row.id: row
        for row in session.scalars(
            select(OffenceType).where(OffenceType.id.in_(ids), OffenceType.is_active.is_(True))
        )
    }
    if not ids:
        errors["offences"] = "choose at least one offence"
    elif len(ids) > MAX_ITEMS:
        errors["offences"] = f"at most {MAX_ITEMS} offences on one ticket"
    elif len(types) != len(ids):
        errors["offences"] = "an offence chosen is no longer in use; reload the page"
    booting = any(row.apply_boot for row in types.values())
    if booting and not boots_enabled:
        errors["offences"] = "boots are turned off (Universal Boot Enabled): remove the Apply Boot item"
    elif booting and not isinstance(draft.boot_id, int):
        errors["boot"] = "choose the boot you applied"
    elif not booting and draft.boot_id is not None:
        errors["boot"] = "a boot goes with an Apply Boot offence item: add it, or clear the boot"
    notes = (draft.notes or "").strip()
    if len(notes) > NOTES_MAX:
        errors["notes"] = f"at most {NOTES_MAX} characters"
    photo_ids = [i for i in dict.fromkeys(draft.photo_ids or ()) if isinstance(i, int)]
    if len(photo_ids) > MAX_PHOTOS:
        errors["photos"] = f"at most {MAX_PHOTOS} photos"
    if errors:
        raise ValidationFailed(errors)
    assert lot is not None

    violation = Violation(
        ticket_number=new_unused_number(session),
        status=ViolationStatus.UNPAID,
        user_id=_owner_of(session, normalized),
        officer_id=draft.officer_id,
        lot_id=lot.id,
        plate=typed,
        plate_normalized=normalized,
        issued_at=now,
        due_at=now + timedelta(days=due_days),
        notes=notes,
        submit_key=draft.submit_key,
    )
    violation.items = [
        ViolationItem(
            offence_type_id=types[i].id,
            kind=ItemKind.OFFENCE,
            amount_cents=types[i].fine_cents,
            description=types[i].name,
        )
        for i in ids
    ]
    session.add(violation)
    session.flush()
    boot_name = None
    if booting:
        assert draft.boot_id is not None
        deposit = sum(types[i].fine_cents for i in ids if types[i].apply_boot)
        boot_name = boots.assign_boot(session, draft.boot_id, violation.id, deposit, now)
    if photo_ids:
        session.execute(
            update(ViolationPhoto)
            .where(
                ViolationPhoto.id.in_(photo_ids),
                ViolationPhoto.draft_key == draft.submit_key,
                ViolationPhoto.uploaded_by_id == draft.officer_id,
                ViolationPhoto.violation_id.is_(None),
            )
            .values(violation_id=violation.id)
        )
    audit.record(
        session,
        actor_id=draft.officer_id,
        action="violation.issue",
        entity_type="violation",
        entity_id=str(violation.id),
        changes={
            "ticket_number": violation.ticket_number,
            "plate": typed,
            "lot_id": lot.id,
            "items": [types[i].code for i in ids],
            "boot": boot_name,
        },
    )
    session.flush()
    return Issued(get_violation(session, violation.id, now), created=True)


def add_draft_photo(
    session: Session, *, submit_key: str, officer_id: int, stored: object, now: datetime
) -> int:
    """Record a photo taken while a ticket is being written (``stored``: a ``photos.StoredPhoto``);
    the ticket's submit attaches it. Returns the photo's id."""
    if not isinstance(submit_key, str) or not KEY_RE.match(submit_key):
        raise ValidationFailed({"form": "reload the page and try again"})
    pending = session.scalar(
        select(func.count())
        .select_from(ViolationPhoto)
        .where(ViolationPhoto.draft_key == submit_key, ViolationPhoto.violation_id.is_(None))
    )
    if (pending or 0) >= MAX_PHOTOS:
        raise ValidationFailed({"photos": f"at most {MAX_PHOTOS} photos"})
    row = ViolationPhoto(
        draft_key=submit_key,
        stored_name=stored.stored_name,  # type: ignore[attr-defined]
        content_type=stored.content_type,  # type: ignore[attr-defined]
        size_bytes=stored.size_bytes,  # type: ignore[attr-defined]
        width=stored.width,  # type: ignore[attr-defined]
        height=stored.height,  # type: ignore[attr-defined]
        uploaded_by_id=officer_id,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row.id


@dataclass(frozen=True)
class PhotoFile:
    stored_name: str
    content_type: str


def photo_file(session: Session, photo_id: int) -> PhotoFile | None:
    row = session.get(ViolationPhoto, photo_id)
    return PhotoFile(row.stored_name, row.content_type) if row is not None else None


# -- search, export, void -----------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    ticket: str | None = None
    plate: str | None = None
    lot_id: int | None = None
    officer_id: int | None = None
    status: str | None = None  # a stored status or "overdue"
    issued_from: date | None = None  # site-local days, inclusive
    issued_to: date | None = None
    user_id: int | None = None  # the owner's (the user administration's view of one account)


@dataclass(frozen=True)
class SearchRow:
    id: int
    ticket_number: str
    shown_status: str
    plate: str
    lot_name: str | None
    officer_name: str | None
    issued_at: datetime
    due_at: datetime | None
    total_cents: int
    booted: bool


@dataclass(frozen=True)
class SearchPage:
    rows: tuple[SearchRow, ...]
    total: int
    page: int
    pages: int


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def check_search_text(ticket: str | None, plate: str | None) -> None:
    """A ticket number or a plate searched by is no longer than either can be: a longer one
    matches nothing, and a LIKE pattern of thousands of characters is refused by SQLite
    ("LIKE or GLOB pattern too complex")."""
    errors = {}
    if ticket and len(ticket) > TICKET_SEARCH_MAX:
        errors["ticket"] = f"at most {TICKET_SEARCH_MAX} characters"
    if plate and len(plate) > MAX_TYPED:
        errors["plate"] = f"at most {MAX_TYPED} characters"
    if errors:
        raise ValidationFailed(errors)


def _filtered(filters: Filters, now: datetime, tz: tzinfo) -> Select:
    check_search_text(filters.ticket, filters.plate)
    start, end = day_bounds(filters.issued_from, filters.issued_to, tz)
    query = select(Violation)
    if filters.ticket and filters.ticket.strip():
        query = query.where(
            Violation.ticket_number.ilike(_like(clean_ticket_number(filters.ticket)), escape="\\")
        )
    if filters.plate and normalize_plate(filters.plate):
        query = query.where(
            Violation.plate_normalized.like(_like(normalize_plate(filters.plate)), escape="\\")
        )
    if filters.lot_id is not None:
        query = query.where(Violation.lot_id == filters.lot_id)
    if filters.officer_id is not None:
        query = query.where(Violation.officer_id == filters.officer_id)
    if filters.user_id is not None:
        query = query.where(Violation.user_id == filters.user_id)
    if filters.status:
        if filters.status == OVERDUE:
            query = query.where(Violation.status == ViolationStatus.UNPAID, Violation.due_at < now)
        elif filters.status == ViolationStatus.UNPAID:
            query = query.where(
                Violation.status == ViolationStatus.UNPAID,
                or_(Violation.due_at.is_(None), Violation.due_at >= now),
            )
        else:
            try:
                query = query.where(Violation.status == ViolationStatus(filters.status))
            except ValueError:
                raise ValidationFailed({"status": "not one of the offered statuses"}) from None
    if start is not None:
        query = query.where(Violation.issued_at >= start)
    if end is not None:
        query = query.where(Violation.issued_at < end)
    return query


def _rows(session: Session, violations: list[Violation], now: datetime) -> list[SearchRow]:
    ids = [v.id for v in violations]
    officers = {
        uid: (first, last, email)
        for uid, first, last, email in session.execute(
            select(User.id, User.first_name, User.last_name, User.email).where(
                User.id.in_({v.officer_id for v in violations if v.officer_id})
            )
        )
    }
    booted = set(
        session.scalars(select(BootAssignment.violation_id).where(BootAssignment.violation_id.in_(ids)))
    )

    def name(uid: int | None) -> str | None:
        if uid is None or uid not in officers:
            return None
        first, last, email = officers[uid]
        return f"{first} {last}".strip() or email

    return [
        SearchRow(
            id=v.id,
            ticket_number=v.ticket_number,
            shown_status=display_status(v.status, v.due_at, now),
            plate=v.plate,
            lot_name=v.lot.name if v.lot is not None else None,
            officer_name=name(v.officer_id),
            issued_at=v.issued_at,
            due_at=v.due_at,
            total_cents=v.total_cents,
            booted=v.id in booted,
        )
        for v in violations
    ]


def search(
    session: Session, filters: Filters, now: datetime, tz: tzinfo, page: int = 1, page_size: int = PAGE_SIZE
) -> SearchPage:
    """Newest first, one page at a time."""
    query = _filtered(filters, now, tz)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    violations = _load(
        session,
        query.order_by(Violation.issued_at.desc(), Violation.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size),
    )
    return SearchPage(tuple(_rows(session, violations, now)), total, page, pages)


def export_csv(session: Session, filters: Filters, now: datetime, tz: tzinfo) -> str:
    """Every violation that matches (not only the page shown), times in the site's zone."""
    violations = _load(
        session,
        _filtered(filters, now, tz)
        .order_by(Violation.issued_at.desc(), Violation.id.desc())
        .limit(EXPORT_LIMIT),
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["ticket", "status", "plate", "lot", "officer", "issued (local)", "due (local)", "total", "booted"]
    )

    def local(moment: datetime | None) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else ""

    for row in _rows(session, violations, now):
        cells = [
            row.ticket_number,
            status_label(row.shown_status),
            row.plate,
            row.lot_name,
            row.officer_name,
            local(row.issued_at),
            local(row.due_at),
            f"{row.total_cents / 100:.2f}",
            "yes" if row.booted else "no",
        ]
        writer.writerow([safe_cell(cell) for cell in cells])
    return out.getvalue()


def void_violation(
    session: Session, violation_id: int, reason: str, actor_id: int | None, now: datetime
) -> None:
    """Void with a reason (required; audited). A paid violation is refunded, not voided."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationFailed({"reason": "say why the violation is void"})
    if len(reason) > REASON_MAX:
        raise ValidationFailed({"reason": f"at most {REASON_MAX} characters"})
    violation = session.get(Violation, violation_id)
    if violation is None:
        raise NotFound("That violation does not exist.")
    if violation.status in (ViolationStatus.PAID, ViolationStatus.VOID):
        raise NotAllowed(f"A {violation.status.value} violation cannot be voided.")
    old = str(violation.status)
    violation.status = ViolationStatus.VOID
    violation.void_reason = reason
    violation.voided_at = now
    appeal = session.scalar(select(Appeal).where(Appeal.violation_id == violation_id))
    if appeal is not None and appeal.status == AppealStatus.PENDING:
        appeal.status = AppealStatus.CANCELLED
        appeal.decided_at = now
        appeal.decided_by_id = actor_id
        appeal.decision_note = f"Violation voided: {reason}"
    audit.record(
        session,
        actor_id=actor_id,
        action="violation.void",
        entity_type="violation",
        entity_id=str(violation_id),
        changes={"status": [old, "void"], "reason": reason},
    )
    session.flush()


# -- payments (the seam for paying violations) --------------------------------------------------


def mark_paid(session: Session, violation_id: int, payment_id: int, now: datetime) -> bool:
    """Record that ``payment_id`` paid ``violation_id``: the payment must have succeeded and carry
    an allocation to this violation (``PaymentAllocation.violation_id``: the link between a payment
    and what it paid for). Idempotent: returns False when the violation was already paid."""
    allocation = session.scalar(
        select(PaymentAllocation)
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(
            PaymentAllocation.payment_id == payment_id,
            PaymentAllocation.violation_id == violation_id,
            Payment.status.in_(PAID_PAYMENTS),
        )
    )
    if allocation is None:
        raise NotAllowed("That payment did not pay this violation.")
    changed = session.execute(
        update(Violation)
        .where(
            Violation.id == violation_id,
            Violation.status.in_([ViolationStatus.UNPAID, ViolationStatus.UNDER_APPEAL]),
        )
        .values(status=ViolationStatus.PAID, paid_at=now, updated_at=now)
    )
    if changed.rowcount:  # type: ignore[attr-defined]
        audit.record(
            session,
            actor_id=None,
            action="violation.paid",
            entity_type="violation",
            entity_id=str(violation_id),
            changes={"payment_id": payment_id},
        )
    session.expire_all()
    return bool(changed.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PaidBy:
    payment_id: int
    amount_cents: int  # what the payment put on this violation
    refundable_cents: int  # what is left of the payment to refund


def paid_by(session: Session, violation_id: int) -> PaidBy | None:
    """The latest successful payment that paid this violation, or None (never paid)."""
    row = session.execute(
        select(Payment, PaymentAllocation.amount_cents)
        .join(PaymentAllocation, PaymentAllocation.payment_id == Payment.id)
        .where(
            PaymentAllocation.violation_id == violation_id,
            Payment.status.in_([PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED]),
        )
        .order_by(Payment.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    payment, allocated = row
    refunded = sum(r.amount_cents for r in payment.refunds if r.status == PaymentStatus.SUCCEEDED)
    return PaidBy(payment.id, allocated, payment.amount_cents - refunded)


def overdue_ids(
    session: Session, now: datetime, *, user_id: int | None = None, plate: str | None = None
) -> list[int]:
    """The overdue violations of an account (or of a plate, for a guest): what Require Overdue
    Paid puts in the same payment."""
    who = []
    if user_id is not None:
        who.append(Violation.user_id == user_id)
    if plate and normalize_plate(plate):
        who.append(Violation.plate_normalized == normalize_plate(plate))
    if not who:
        return []
    return list(
        session.scalars(
            select(Violation.id)
            .where(or_(*who), and_(Violation.status == ViolationStatus.UNPAID, Violation.due_at < now))
            .order_by(Violation.issued_at)
        )
    )


def for_plate(session: Session, plate: str, now: datetime, limit: int = 200) -> list[TicketView]:
    """Every violation of a plate, newest first (the partner API)."""
    normalized = normalize_plate(plate)
    rows = _load(
        session,
        select(Violation)
        .where(Violation.plate_normalized == normalized)
        .order_by(Violation.issued_at.desc(), Violation.id.desc())
        .limit(limit),
    )
    return [_view(session, row, now) for row in rows]


class NotPayable(NotAllowed):
    """A violation asked to be paid that cannot be (paid, void, under appeal, a payment of it being
    processed, or its amount changed since it was shown): nothing is reserved or charged."""


@dataclass(frozen=True)
class ViolationRequest:
    """One violation in a card payment (``payments.checkout``), at the amount the server computed
    (``amount_due``); the reserve step checks it again under the violation's row lock."""

    violation_id: int
    amount_cents: int
    currency: str = "CAD"


def amount_due(violation: Violation, now: datetime) -> int:
    """What paying ``violation`` at ``now`` costs, computed here and nowhere else: each offence item
    at its early-payment price while its discount holds (``offences.discounted_cents``, never on an
    Apply Boot item), late fees in full. A violation an appeal reduced is owed as the manager set
    it: no early-payment discount on top."""
    reduced = any(item.kind == ItemKind.REDUCTION for item in violation.items)
    total = 0
    for item in violation.items:
        offence = item.offence_type
        if item.kind == ItemKind.OFFENCE and offence is not None and not reduced:
            total += offences.discounted_cents(
                offences.view_of(offence), item.amount_cents, violation.issued_at, now
            )
        else:
            total += item.amount_cents
    return max(total, 0)


def pending_payment_ids(session: Session, violation_ids: Sequence[int]) -> set[int]:
    """Those of ``violation_ids`` a pending payment is paying now (it may still be charged)."""
    if not violation_ids:
        return set()
    return set(
        session.scalars(
            select(PaymentAllocation.violation_id)
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .where(
                PaymentAllocation.violation_id.in_(violation_ids),
                Payment.status == PaymentStatus.PENDING,
            )
        )
    )


def hold_for_payment(session: Session, request: ViolationRequest, now: datetime) -> str:
    """The reserve step of a payment of one violation, inside the transaction that writes the
    pending payment: the violation's row is locked (an UPDATE: on PostgreSQL a row lock, on SQLite
    the write lock), so two payments of one violation queue here, and the second finds the first's
    pending payment (or the violation paid) and is refused with ``NotPayable``. Returns the ticket
    number."""
    locked = session.execute(
        update(Violation)
        .where(Violation.id == request.violation_id, Violation.status == ViolationStatus.UNPAID)
        .values(updated_at=Violation.updated_at)
    )
    violation = session.get(Violation, request.violation_id)
    if violation is None:
        raise NotPayable("That violation does not exist.")
    if not locked.rowcount:  # type: ignore[attr-defined]
        label = status_label(str(violation.status)).lower()
        raise NotPayable(f"Ticket {violation.ticket_number} is {label}: it cannot be paid.")
    if pending_payment_ids(session, [violation.id]):
        raise NotPayable(
            f"A payment of ticket {violation.ticket_number} is already being processed: it is not "
            "charged twice. Reload the page in a minute to see its outcome."
        )
    session.refresh(violation)
    if amount_due(violation, now) != request.amount_cents:
        raise NotPayable(
            f"The amount of ticket {violation.ticket_number} changed (an early-payment discount ended, "
            "or a manager changed it). Nothing was charged: check the new total."
        )
    return violation.ticket_number


def ticket_numbers(session: Session, violation_ids: Sequence[int]) -> dict[int, str]:
    if not violation_ids:
        return {}
    rows = session.execute(
        select(Violation.id, Violation.ticket_number).where(Violation.id.in_(violation_ids))
    )
    return {violation_id: number for violation_id, number in rows}


def pay_url(base_url: str, ticket_number: str) -> str:
    """The payment page of a ticket (the QR code on the printed ticket, the appeal emails)."""
    return f"{base_url.rstrip('/')}/pay-violation?{urlencode({'ticket': ticket_number})}"


def when_words(moment: datetime | None, tz: tzinfo, *, with_time: bool = True) -> str:
    """A time as a person reads it, in the site's zone: "Tuesday 1 December 2026 at 14:05"."""
    if moment is None:
        return ""
    local = moment.astimezone(tz)
    day = f"{local:%A} {local.day} {local:%B %Y}"
    return f"{day} at {local:%H:%M}" if with_time else day
