"""Paying violations: what an owner may pay (signed in: the account's violations; a guest: by ticket
number and plate), the rules of one payment, and the payment itself.

A payment of violations is an ordinary card payment (``payments.checkout`` with
``violations.ViolationRequest`` items): the same reserve -> charge -> settle under the form's
idempotency key, the same pending/resume/reconcile, the same receipts. Its settle marks each
violation paid and releases the boots on them with their codes (see ``payments``), so nothing here
sends a code.

The rules, checked on the server whatever the page sent:

* only an unpaid violation is paid (paid, void and under-appeal ones are not; nor one a pending
  payment is paying);
* the amount is the server's (``violations.amount_due``: the early-payment discount before its
  deadline, never on Apply Boot items), and a total that differs from the one shown is refused;
* an e-mail address is required: the receipt and the release code go there;
* with Require Overdue Paid on, every overdue violation of the account (or of the plate, for a
  guest) is in the same payment; the refusal names them so the page can offer to add them.

A guest who looked a ticket up sees it and the plate's other unpaid tickets: knowing the number and
the plate of one ticket stands for owning the car, and Require Overdue Paid may need the others. A
wrong number and a wrong plate get the same answer (``NOT_FOUND``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session, selectinload

from dashboard.db import Database
from dashboard.services import email, offences, payments, quick_checkout, ticket_numbers, violations
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.payment_providers import Card, PaymentProvider
from dashboard.services.payments import CheckoutResult, ReceiptContext
from dashboard.services.plates import normalize_plate
from dashboard.services.violations import ViolationRequest
from models import (
    BootAssignment,
    BootStatus,
    ItemKind,
    Payment,
    Vehicle,
    Violation,
    ViolationItem,
    ViolationStatus,
)

REQUIRE_OVERDUE_SETTING = "boot_require_overdue_paid"
NOT_FOUND = "No ticket matches this number and plate."
MAX_SELECTED = 50
LIST_LIMIT = 200


@dataclass(frozen=True)
class Payable:
    """A violation as its owner reads it on the payment pages."""

    violation_id: int
    ticket_number: str
    plate: str
    lot_name: str | None
    issued_at: datetime
    due_at: datetime | None
    shown_status: str  # with "overdue"
    total_cents: int  # the items as written (and reduced)
    amount_due_cents: int  # what paying now costs
    discount_until: datetime | None  # while an early-payment discount is in the amount due
    booted: bool  # a boot is on the car now
    reason: str | None  # why it cannot be paid; None: it can

    @property
    def payable(self) -> bool:
        return self.reason is None

    @property
    def overdue(self) -> bool:
        return self.shown_status == violations.OVERDUE


@dataclass(frozen=True)
class Scope:
    """Whose violations a payment may cover: an account (``user_id``), or a guest's plate, proved
    by one of its ticket numbers."""

    user_id: int | None = None
    ticket: str = ""
    plate: str = ""


@dataclass(frozen=True)
class ViolationCheckout:
    """``status``: as ``payments.CheckoutResult`` (paid, declined, failed, refused, in_progress,
    busy), or refused before anything is reserved: ``overdue_missing`` (``missing`` lists them) and
    ``changed`` (the total is not the one shown)."""

    status: str
    message: str
    missing: tuple[Payable, ...] = ()
    payment: CheckoutResult | None = None

    @property
    def paid(self) -> bool:
        return self.status == "paid"


def _reason(violation: Violation, pending: set[int]) -> str | None:
    if violation.status == ViolationStatus.PAID:
        return "already paid"
    if violation.status == ViolationStatus.VOID:
        return "void: nothing to pay"
    if violation.status == ViolationStatus.UNDER_APPEAL:
        return "under appeal: it can be paid once the appeal is decided"
    if violation.status != ViolationStatus.UNPAID:
        return "cannot be paid"
    if violation.id in pending:
        return "a payment of it is being processed"
    return None


def _discount_until(violation: Violation, now: datetime) -> datetime | None:
    if any(item.kind == ItemKind.REDUCTION for item in violation.items):
        return None
    deadlines = []
    for item in violation.items:
        if item.kind == ItemKind.OFFENCE and item.offence_type is not None:
            until = offences.discount_deadline(offences.view_of(item.offence_type), violation.issued_at)
            if until is not None and now <= until:
                deadlines.append(until)
    return min(deadlines) if deadlines else None


def _payables(session: Session, rows: Sequence[Violation], now: datetime) -> list[Payable]:
    ids = [v.id for v in rows]
    pending = violations.pending_payment_ids(session, ids)
    booted = (
        set(
            session.scalars(
                select(BootAssignment.violation_id).where(
                    BootAssignment.violation_id.in_(ids), BootAssignment.status == BootStatus.IN_USE
                )
            )
        )
        if ids
        else set()
    )
    out = []
    for violation in rows:
        shown = violations.display_status(violation.status, violation.due_at, now)
        reason = _reason(violation, pending)
        out.append(
            Payable(
                violation_id=violation.id,
                ticket_number=violation.ticket_number,
                plate=violation.plate,
                lot_name=violation.lot.name if violation.lot is not None else None,
                issued_at=violation.issued_at,
                due_at=violation.due_at,
                shown_status=shown,
                total_cents=violation.total_cents,
                amount_due_cents=violations.amount_due(violation, now) if reason is None else 0,
                discount_until=_discount_until(violation, now) if reason is None else None,
                booted=violation.id in booted,
                reason=reason,
            )
        )
    return out


def _load(session: Session, where: ColumnElement[bool]) -> list[Violation]:
    return list(
        session.scalars(
            select(Violation)
            .where(where)
            .options(
                selectinload(Violation.items).selectinload(ViolationItem.offence_type),
                selectinload(Violation.lot),
            )
            .order_by(Violation.issued_at.desc(), Violation.id.desc())
            .limit(LIST_LIMIT)
        )
    )


def _account_filter(session: Session, user_id: int) -> ColumnElement[bool]:
    """The account's violations: those written to it (``issue_ticket`` finds the owner of a plate)
    and those of the plates registered on it now."""
    plates = list(session.scalars(select(Vehicle.plate_normalized).where(Vehicle.user_id == user_id)))
    return or_(Violation.user_id == user_id, Violation.plate_normalized.in_(plates))


def _guest_violation(session: Session, ticket: object, plate: object) -> Violation:
    number = ticket_numbers.clean_ticket_number(ticket)
    typed = normalize_plate(plate) if isinstance(plate, str) else ""
    violation = session.scalar(select(Violation).where(Violation.ticket_number == number)) if number else None
    if violation is None or not typed or typed != violation.plate_normalized:
        raise NotFound(NOT_FOUND)
    return violation


def account_violations(session: Session, user_id: int, now: datetime) -> list[Payable]:
    """Every violation of the account, newest first, each with whether (and for how much) it can be
    paid now."""
    return _payables(session, _load(session, _account_filter(session, user_id)), now)


def guest_violations(session: Session, ticket: object, plate: object, now: datetime) -> list[Payable]:
    """The ticket looked up (first), then the plate's other unpaid tickets. ``NotFound`` when the
    number and the plate do not match a ticket."""
    found = _guest_violation(session, ticket, plate)
    others = _load(
        session,
        (Violation.plate_normalized == found.plate_normalized)
        & (Violation.status == ViolationStatus.UNPAID)
        & (Violation.id != found.id),
    )
    rows = _payables(session, [found, *others], now)
    return rows[:1] + [row for row in rows[1:] if row.payable]


def scope_violations(session: Session, scope: Scope, now: datetime) -> list[Payable]:
    if scope.user_id is not None:
        return account_violations(session, scope.user_id, now)
    return guest_violations(session, scope.ticket, scope.plate, now)


def missing_overdue(rows: Sequence[Payable], selected: Sequence[int]) -> list[Payable]:
    """The overdue violations Require Overdue Paid adds to a payment that lacks them."""
    chosen = set(selected)
    return [row for row in rows if row.overdue and row.violation_id not in chosen]


def total_cents(rows: Sequence[Payable], selected: Sequence[int]) -> int:
    chosen = set(selected)
    return sum(row.amount_due_cents for row in rows if row.violation_id in chosen and row.payable)


def _selected(values: Sequence[object]) -> list[int]:
    ids = [v for v in dict.fromkeys(values or ()) if isinstance(v, int) and not isinstance(v, bool)]
    if not ids:
        raise ValidationFailed({"violations": "choose at least one ticket to pay"})
    if len(ids) > MAX_SELECTED:
        raise ValidationFailed({"violations": f"at most {MAX_SELECTED} tickets in one payment"})
    return ids


def _overdue_message(missing: Sequence[Payable]) -> str:
    numbers = ", ".join(row.ticket_number for row in missing)
    return (
        f"Every overdue ticket must be paid in the same payment. Add {numbers} to pay. Nothing was charged."
    )


def pay(
    database: Database,
    provider: PaymentProvider,
    scope: Scope,
    violation_ids: Sequence[object],
    email_address: object,
    card: Card | None,
    idempotency_key: str,
    *,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    now: datetime,
    require_overdue: bool,
    expected_total_cents: int | None = None,
    return_url: str | None = None,
    currency: str = "CAD",
) -> ViolationCheckout:
    """Pay the chosen violations with one card payment (see the module's docstring). A repeated
    submission with the same key answers with the first one's outcome (one charge), even once the
    violations are paid. ``ValidationFailed`` for a missing e-mail or choice, ``NotFound`` for a
    guest's wrong ticket and plate.

    With a hosted processor (Stripe) there is no ``card``: the answer is ``redirect`` to its payment
    page, which sends the payer back to ``return_url``; the webhook, that return or the reconcile
    task settles the payment (and only then are the violations paid and a boot's code mailed).
    ``currency``: the site's (``system_settings`` ``currency``), what fines are charged in."""
    errors: dict[str, str] = {}
    address = ""
    try:
        address = quick_checkout.clean_email(email_address)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    ids: list[int] = []
    try:
        ids = _selected(violation_ids)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 80:
        raise ValidationFailed({"form": "reload the page and try again"})
    with database.session() as session:
        earlier = session.scalar(select(Payment).where(Payment.idempotency_key == idempotency_key))
        if earlier is not None:
            paid_for = {a.violation_id: a.amount_cents for a in earlier.allocations if a.violation_id}
            if set(paid_for) != set(ids) or (scope.user_id is not None and earlier.user_id != scope.user_id):
                raise ValidationFailed({"form": "reload the page and try again"})
            requests = [ViolationRequest(vid, cents, earlier.currency) for vid, cents in paid_for.items()]
        else:
            rows = scope_violations(session, scope, now)
            by_id = {row.violation_id: row for row in rows}
            unknown = [i for i in ids if i not in by_id]
            if unknown:
                raise ValidationFailed({"violations": "a ticket chosen is not one of yours: reload the page"})
            refused = [by_id[i] for i in ids if not by_id[i].payable]
            if refused:
                named = "; ".join(f"{row.ticket_number}: {row.reason}" for row in refused)
                return ViolationCheckout("refused", f"Nothing was charged. {named}.")
            if require_overdue:
                missing = missing_overdue(rows, ids)
                if missing:
                    return ViolationCheckout("overdue_missing", _overdue_message(missing), tuple(missing))
            total = total_cents(rows, ids)
            if expected_total_cents is not None and expected_total_cents != total:
                return ViolationCheckout(
                    "changed", "The total changed since the page was shown. Nothing was charged: check it."
                )
            requests = [ViolationRequest(i, by_id[i].amount_due_cents, currency) for i in ids]
    result = payments.checkout(
        database,
        provider,
        items=requests,
        card=card,
        idempotency_key=idempotency_key,
        email_address=address,
        user_id=scope.user_id,
        receipt=receipt,
        backend=backend,
        now=now,
        return_url=return_url,
        secrets=receipt.secrets,
    )
    return ViolationCheckout(result.status, result.message, payment=result)
