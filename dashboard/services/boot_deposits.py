"""A returned boot's deposit back to the card that paid its violation: what Process Refund would
refund (``refund_plan``, shown before the admin confirms) and the refund itself (``refund_deposit``).

**A deposit is refunded once.** The refund is linked to the assignment by a conditional UPDATE in
the very transaction that records it (``payments.refund``'s ``claim``), before the processor is
called; a second refund finds the link and is refused (a failed refund can be retried).

A module of its own because it sits above the three it joins: the boot's deposit (``boots``), the
payment that paid the violation (``violations.paid_by``) and the refund (``payments.refund``), and
``payments`` itself releases boots when a violation is paid; none of them imports this one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from dashboard.crypto import SecretBox
from dashboard.db import Database
from dashboard.services import boots, payments, violations
from dashboard.services.errors import NotAllowed, NotFound
from dashboard.services.payment_providers import PaymentProvider
from models import BootAssignment, BootStatus, PaymentStatus, Refund, Violation


class NothingToRefund(NotAllowed):
    """The violation was never paid, the deposit is zero, or it was refunded already."""


@dataclass(frozen=True)
class RefundPlan:
    """What Process Refund would do for an assignment (shown before the admin confirms)."""

    deposit_cents: int
    payment_id: int | None  # None: the violation was never paid, there is nothing to refund
    amount_cents: int  # what would be refunded (the deposit, capped by what is left of the payment)
    refunded_cents: int  # already refunded for this assignment

    @property
    def possible(self) -> bool:
        return self.payment_id is not None and self.amount_cents > 0 and not self.refunded_cents


def refund_plan(session: Session, assignment_id: int) -> RefundPlan:
    assignment = session.get(BootAssignment, assignment_id)
    if assignment is None:
        raise NotFound("That boot assignment does not exist.")
    deposit = boots.deposit_cents(session, assignment.violation_id)
    paid = violations.paid_by(session, assignment.violation_id)
    refunded = 0
    if assignment.refund_id is not None:
        refund = session.get(Refund, assignment.refund_id)
        if refund is not None and refund.status == PaymentStatus.SUCCEEDED:
            refunded = refund.amount_cents
    amount = min(deposit, paid.amount_cents, paid.refundable_cents) if paid is not None else 0
    return RefundPlan(deposit, paid.payment_id if paid else None, max(amount, 0), refunded)


@dataclass(frozen=True)
class RefundOutcome:
    succeeded: bool
    amount_cents: int
    message: str


def refund_deposit(
    database: Database,
    provider: PaymentProvider,
    assignment_id: int,
    actor_id: int | None,
    secrets: SecretBox | None = None,
) -> RefundOutcome:
    """Refund the deposit of a returned boot through the payment provider, once: the processor
    the violation was paid with (a payment on Stripe's page is refunded with Stripe's refund API,
    whose keys ``secrets`` decrypts), whichever is chosen now.

    ``NothingToRefund`` when the violation was never paid (say so: there is no money to return), the
    deposit is zero, or it was refunded already."""
    with database.session() as session:
        assignment = session.get(BootAssignment, assignment_id)
        if assignment is None:
            raise NotFound("That boot assignment does not exist.")
        if assignment.status != BootStatus.RETURNED:
            raise NotAllowed("Mark the boot returned before refunding its deposit.")
        plan = refund_plan(session, assignment_id)
        number = session.scalar(
            select(Violation.ticket_number).where(Violation.id == assignment.violation_id)
        )
    if plan.refunded_cents:
        raise NothingToRefund("This deposit was refunded already.")
    if plan.payment_id is None:
        raise NothingToRefund("The violation was never paid: there is no deposit to refund.")
    if plan.amount_cents <= 0:
        raise NothingToRefund("The violation has no Apply Boot item: the deposit is zero.")

    def claim(session: Session, refund_id: int) -> None:
        failed = select(Refund.id).where(Refund.status == PaymentStatus.FAILED)
        linked = session.execute(
            update(BootAssignment)
            .where(
                BootAssignment.id == assignment_id,
                or_(BootAssignment.refund_id.is_(None), BootAssignment.refund_id.in_(failed)),
            )
            .values(refund_id=refund_id)
        )
        if not linked.rowcount:  # type: ignore[attr-defined]
            raise NothingToRefund("This deposit was refunded already.")

    status = payments.refund(
        database,
        provider,
        payment_id=plan.payment_id,
        amount_cents=plan.amount_cents,
        reason=f"Boot deposit, ticket {number}",
        actor_id=actor_id,
        claim=claim,
        secrets=secrets,
    )
    if status == PaymentStatus.FAILED:
        return RefundOutcome(False, plan.amount_cents, "The payment provider refused the refund; try again.")
    return RefundOutcome(True, plan.amount_cents, "Deposit refunded.")
