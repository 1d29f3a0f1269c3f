"""Card payments: one provider interface, a built-in sandbox processor, checkout and refunds.

``PaymentProvider`` is what a real processor adapter implements (charge, refund, each with an
idempotency key). ``SandboxProvider`` behaves like one, with its own ledger (``SandboxCharge``) and
test cards (``TEST_CARDS``): one succeeds, some decline, one fails as if the network dropped.

``checkout`` sells permits in three steps, each a transaction of its own, so nothing is ever half
done:

1. reserve: the permits are held (``permits.reserve``: pending, counted against the allowance) and
   a ``pending`` payment is written under the checkout's idempotency key, in one commit;
2. charge the card (outside any transaction: a processor may take seconds);
3. settle: on success the permits become active, the payment ``succeeded`` and a receipt email
   goes to the outbox; on a decline or a processor error the holds are released and the payment
   records why. The card was not charged in either case.

The idempotency key comes from the checkout form (one per form shown), so a double-click or a
retried request finds the first attempt's payment (the key is unique) and answers with its
outcome: the card is charged once. A crash between steps leaves a pending payment and holds that
lapse after ``permits.HOLD``.
"""

from __future__ import annotations

import logging
import re
import secrets as token_source
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dashboard.db import Database
from dashboard.services import audit, email, permits
from dashboard.services.errors import DomainError, NotFound, ValidationFailed
from dashboard.services.permits import PermitRequest, PermitView, SoldOut
from models import (
    Payment,
    PaymentAllocation,
    PaymentStatus,
    Permit,
    PermitStatus,
    Refund,
    SandboxCharge,
)

log = logging.getLogger(__name__)

RECEIPT_TEMPLATE = "permit-receipt"


class ProviderUnavailable(Exception):
    """The processor could not be reached or failed: the charge did not happen."""


@dataclass(frozen=True)
class Card:
    """A card as the form gave it, validated (``clean_card``). Only the last four digits are ever
    stored."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str

    @property
    def last4(self) -> str:
        return self.number[-4:]


def _luhn(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def clean_card(number: object, expiry: object, cvc: object, today: date) -> Card:
    """Validate what a payment form sends; ``ValidationFailed`` keyed card_number / expiry / cvc."""
    errors: dict[str, str] = {}
    digits = re.sub(r"[\s-]", "", number) if isinstance(number, str) else ""
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not _luhn(digits):
        errors["card_number"] = "not a valid card number"
    month = year = 0
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", expiry) if isinstance(expiry, str) else None
    if match is None:
        errors["expiry"] = "month and year as MM/YY"
    else:
        month, year = int(match.group(1)), int(match.group(2))
        year += 2000 if year < 100 else 0
        if not 1 <= month <= 12:
            errors["expiry"] = "month and year as MM/YY"
        elif (year, month) < (today.year, today.month):
            errors["expiry"] = "this card has expired"
    code = cvc.strip() if isinstance(cvc, str) else ""
    if not code.isdigit() or len(code) not in (3, 4):
        errors["cvc"] = "the 3 or 4 digits on the back of the card"
    if errors:
        raise ValidationFailed(errors)
    return Card(digits, month, year, code)


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    reference: str
    message: str


class PaymentProvider(Protocol):
    name: str

    def charge(
        self, *, amount_cents: int, currency: str, card: Card, idempotency_key: str, description: str
    ) -> ChargeResult:
        """Charge once per ``idempotency_key`` (a repeat returns the first result); raise
        ``ProviderUnavailable`` when the outcome is an error rather than an answer."""
        ...

    def refund(self, *, reference: str, amount_cents: int, idempotency_key: str) -> ChargeResult: ...


# The sandbox's test cards (any future expiry, any CVC). Other numbers are declined: a sandbox
# that accepted real card numbers would invite people to type them.
SUCCESS_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
INSUFFICIENT_FUNDS_CARD = "4000000000009995"
NETWORK_ERROR_CARD = "4000000000000119"
TEST_CARDS = {
    SUCCESS_CARD: "succeeds",
    DECLINED_CARD: "is declined (card declined)",
    INSUFFICIENT_FUNDS_CARD: "is declined (insufficient funds)",
    NETWORK_ERROR_CARD: "fails with a processor error (nothing is charged)",
}


class SandboxProvider:
    """A card processor for demos and tests, with a ledger of its own (its own transactions, as a
    remote processor's would be)."""

    name = "sandbox"

    def __init__(self, database: Database) -> None:
        self.database = database

    def charge(
        self, *, amount_cents: int, currency: str, card: Card, idempotency_key: str, description: str
    ) -> ChargeResult:
        if card.number == NETWORK_ERROR_CARD:
            raise ProviderUnavailable("the sandbox processor did not answer (test card 4000 0000 0000 0119)")
        with self.database.session() as session:
            known = session.scalar(
                select(SandboxCharge).where(SandboxCharge.idempotency_key == idempotency_key)
            )
            if known is not None:
                return ChargeResult(known.status == PaymentStatus.SUCCEEDED, known.reference, known.message)
            succeeded = card.number == SUCCESS_CARD
            message = {
                SUCCESS_CARD: "Approved",
                DECLINED_CARD: "Your card was declined.",
                INSUFFICIENT_FUNDS_CARD: "Your card has insufficient funds.",
            }.get(card.number, "Declined: use one of the sandbox test cards.")
            row = SandboxCharge(
                reference="sbx_" + token_source.token_hex(10),
                idempotency_key=idempotency_key,
                amount_cents=amount_cents,
                currency=currency,
                card_last4=card.last4,
                status=PaymentStatus.SUCCEEDED if succeeded else PaymentStatus.DECLINED,
                message=message,
            )
            session.add(row)
            session.flush()
            return ChargeResult(succeeded, row.reference, message)

    def refund(self, *, reference: str, amount_cents: int, idempotency_key: str) -> ChargeResult:
        with self.database.session() as session:
            charge = session.scalar(select(SandboxCharge).where(SandboxCharge.reference == reference))
            if charge is None or charge.status == PaymentStatus.DECLINED:
                return ChargeResult(False, reference, "No such charge to refund.")
            if charge.refunded_cents + amount_cents > charge.amount_cents:
                return ChargeResult(False, reference, "The refund exceeds what is left of the charge.")
            charge.refunded_cents += amount_cents
            return ChargeResult(True, f"{reference}_r{charge.refunded_cents}", "Refunded")


# --- checkout ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoutResult:
    """``status``: paid, declined, failed (processor error), sold_out, or in_progress (the same
    checkout is being processed by another request: a double-click)."""

    status: str
    message: str
    payment_id: int | None = None
    receipt_token: str | None = None
    permits: tuple[PermitView, ...] = ()

    @property
    def paid(self) -> bool:
        return self.status == "paid"


@dataclass(frozen=True)
class ReceiptContext:
    """What the receipt email needs that the permit does not carry."""

    name: str
    site_name: str
    base_url: str
    tz: ZoneInfo


def checkout(
    database: Database,
    provider: PaymentProvider,
    *,
    items: Sequence[PermitRequest],
    card: Card,
    idempotency_key: str,
    email_address: str,
    user_id: int | None,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    now: datetime,
    cart_id: int | None = None,
) -> CheckoutResult:
    """Sell ``items`` with one card payment (see the module's docstring)."""
    if not idempotency_key or len(idempotency_key) > 80:
        raise ValidationFailed({"form": "reload the page and try again"})
    if not items:
        raise ValidationFailed({"items": "nothing to pay for"})
    known = _known(database, idempotency_key)
    if known is not None:
        return known
    total = sum(item.amount_cents for item in items)
    currency = items[0].currency
    try:
        with database.session() as session:
            held = [permits.reserve(session, item, now) for item in sorted(items, key=lambda i: i.lot_id)]
            payment = Payment(
                idempotency_key=idempotency_key,
                provider=provider.name,
                status=PaymentStatus.PENDING,
                amount_cents=total,
                currency=currency,
                payer_email=email_address,
                user_id=user_id,
                cart_id=cart_id,
                card_last4=card.last4,
            )
            payment.allocations = [
                PaymentAllocation(permit_id=p.id, amount_cents=p.amount_cents) for p in held
            ]
            session.add(payment)
            session.flush()
            payment_id = payment.id
    except SoldOut as exc:
        return CheckoutResult("sold_out", str(exc))
    except IntegrityError:
        # The same form was submitted twice at once; the other request holds its payment.
        return _known(database, idempotency_key) or CheckoutResult(
            "in_progress", "Your payment is being processed."
        )
    description = ", ".join(f"{p.product_name or p.kind} permit {p.number}" for p in held)
    try:
        result = provider.charge(
            amount_cents=total,
            currency=currency,
            card=card,
            idempotency_key=idempotency_key,
            description=description,
        )
    except ProviderUnavailable as exc:
        log.warning("payment %s: processor error: %s", payment_id, exc)
        _settle(database, payment_id, PaymentStatus.FAILED, None, str(exc)[:255], now)
        return CheckoutResult(
            "failed",
            "The card processor could not be reached, and your card was not charged. Please try again.",
            payment_id,
        )
    if not result.succeeded:
        _settle(database, payment_id, PaymentStatus.DECLINED, result.reference, result.message, now)
        return CheckoutResult("declined", result.message, payment_id)
    token = _settle(
        database, payment_id, PaymentStatus.SUCCEEDED, result.reference, result.message, now, receipt, backend
    )
    with database.session() as session:
        views = tuple(permits.get_permit(session, p.id) for p in held)
    return CheckoutResult("paid", "Payment received.", payment_id, token, views)


def _settle(
    database: Database,
    payment_id: int,
    status: PaymentStatus,
    reference: str | None,
    message: str,
    now: datetime,
    receipt: ReceiptContext | None = None,
    backend: email.EmailBackend | None = None,
) -> str | None:
    """Record the processor's answer: activate or release the held permits with the payment, and
    queue the receipt emails in the same commit. Returns the receipt token on success."""
    with database.session() as session:
        payment = session.get(Payment, payment_id)
        assert payment is not None  # written by this checkout
        payment.status, payment.provider_ref, payment.message = status, reference, message
        permit_ids = [a.permit_id for a in payment.allocations if a.permit_id is not None]
        if status != PaymentStatus.SUCCEEDED:
            for permit_id in permit_ids:
                permits.release(session, permit_id)
            return None
        payment.receipt_token = token_source.token_urlsafe(24)
        for permit_id in permit_ids:
            view = permits.activate(session, permit_id, now)
            if receipt is not None and backend is not None and payment.payer_email:
                _send_receipt(session, view, payment.payer_email, payment.receipt_token, receipt, backend)
        return payment.receipt_token


def receipt_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/receipts/{token}"


def _send_receipt(
    session: Session,
    permit: PermitView,
    to: str,
    token: str,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
) -> None:
    def local(moment: datetime) -> str:
        return moment.astimezone(receipt.tz).strftime("%Y-%m-%d %H:%M")

    context = {
        "name": receipt.name,
        "permit_number": permit.number,
        "permit_name": permit.product_name or f"{permit.kind.title()} permit",
        "lot_name": permit.lot_name or permit.zone_name or "",
        "valid_from": local(permit.valid_from),
        "valid_until": local(permit.valid_to),
        "plates": list(permit.plates),
        "amount_cents": permit.amount_cents,
        "site_name": receipt.site_name,
        "receipt_url": receipt_url(receipt.base_url, token),
    }
    try:
        message = email.compose(session, RECEIPT_TEMPLATE, context, [to])
    except DomainError:
        # A broken template must not undo a payment: the receipt page still has everything.
        log.exception(
            "receipt for permit %s: the %s template does not render", permit.number, RECEIPT_TEMPLATE
        )
        return
    email.send_email(session, message, backend)


def _known(database: Database, idempotency_key: str) -> CheckoutResult | None:
    """The outcome of an earlier checkout with this key, if there was one."""
    with database.session() as session:
        payment = session.scalar(select(Payment).where(Payment.idempotency_key == idempotency_key))
        if payment is None:
            return None
        permit_views = tuple(
            permits.get_permit(session, a.permit_id) for a in payment.allocations if a.permit_id is not None
        )
        if payment.status == PaymentStatus.PENDING:
            return CheckoutResult("in_progress", "Your payment is being processed.", payment.id)
        if payment.status == PaymentStatus.DECLINED:
            return CheckoutResult("declined", payment.message, payment.id)
        if payment.status == PaymentStatus.FAILED:
            # A processor error ends that attempt; the form issues a new key for the next try.
            return CheckoutResult(
                "failed", "That attempt failed and nothing was charged; please try again.", payment.id
            )
        return CheckoutResult("paid", "Payment received.", payment.id, payment.receipt_token, permit_views)


def expire_abandoned(session: Session, now: datetime) -> int:
    """Close checkouts that never came back from the card step (a crash, a killed worker): their
    payments fail as abandoned and their holds are cancelled (they already stopped counting after
    ``permits.HOLD``). Returns how many payments were closed."""
    cutoff = now - permits.HOLD
    stale = list(
        session.scalars(
            select(Payment).where(Payment.status == PaymentStatus.PENDING, Payment.created_at <= cutoff)
        )
    )
    for payment in stale:
        payment.status = PaymentStatus.FAILED
        payment.message = "Abandoned: the checkout did not finish within the hold."
    permits.expire_holds(session, now)
    session.flush()
    return len(stale)


# --- receipts and refunds ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptView:
    payment_id: int
    status: str
    amount_cents: int
    currency: str
    refunded_cents: int
    card_last4: str | None
    payer_email: str | None
    paid_at: datetime | None
    permits: tuple[PermitView, ...]


def get_receipt(session: Session, token: str) -> ReceiptView | None:
    """The purchase behind a receipt link; None for an unknown token (never says more)."""
    if not isinstance(token, str) or not 16 <= len(token) <= 64:
        return None
    payment = session.scalar(select(Payment).where(Payment.receipt_token == token))
    if payment is None:
        return None
    return ReceiptView(
        payment_id=payment.id,
        status=str(payment.status),
        amount_cents=payment.amount_cents,
        currency=payment.currency,
        refunded_cents=sum(r.amount_cents for r in payment.refunds if r.status == PaymentStatus.SUCCEEDED),
        card_last4=payment.card_last4,
        payer_email=payment.payer_email,
        paid_at=payment.updated_at,
        permits=tuple(
            permits.get_permit(session, a.permit_id) for a in payment.allocations if a.permit_id is not None
        ),
    )


def refund(
    database: Database,
    provider: PaymentProvider,
    *,
    payment_id: int,
    amount_cents: int,
    reason: str,
    actor_id: int | None,
    claim: Callable[[Session, int], None] | None = None,
) -> PaymentStatus:
    """Refund part or all of a successful payment; a full refund cancels its permits (their spaces
    become available again). Recorded and audited whatever the processor answers.

    ``claim(session, refund_id)`` runs in the transaction that records the refund, before the
    processor is called: a caller that must refund something once (a boot deposit) links the refund
    there, and raising refuses it with nothing written."""
    with database.session() as session:
        payment = session.get(Payment, payment_id)
        if payment is None:
            raise NotFound("That payment does not exist.")
        refunded = sum(r.amount_cents for r in payment.refunds if r.status == PaymentStatus.SUCCEEDED)
        if payment.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED):
            raise ValidationFailed({"payment": f"a {payment.status} payment cannot be refunded"})
        if not isinstance(amount_cents, int) or not 0 < amount_cents <= payment.amount_cents - refunded:
            raise ValidationFailed({"amount": "more than zero and at most what is left of the payment"})
        row = Refund(
            payment_id=payment.id, amount_cents=amount_cents, reason=reason[:255], created_by_id=actor_id
        )
        session.add(row)
        session.flush()
        if claim is not None:
            claim(session, row.id)
        refund_id, reference = row.id, payment.provider_ref or ""
    try:
        result = provider.refund(
            reference=reference, amount_cents=amount_cents, idempotency_key=f"refund-{refund_id}"
        )
    except ProviderUnavailable as exc:
        result = ChargeResult(False, reference, str(exc)[:255])
    with database.session() as session:
        row = session.get(Refund, refund_id)
        payment = session.get(Payment, payment_id)
        assert row is not None and payment is not None
        row.status = PaymentStatus.SUCCEEDED if result.succeeded else PaymentStatus.FAILED
        row.provider_ref = result.reference
        if result.succeeded:
            total = refunded + amount_cents
            payment.status = (
                PaymentStatus.REFUNDED if total >= payment.amount_cents else PaymentStatus.PARTIALLY_REFUNDED
            )
            if payment.status == PaymentStatus.REFUNDED:
                for allocation in payment.allocations:
                    permit = session.get(Permit, allocation.permit_id) if allocation.permit_id else None
                    if permit is not None:
                        permit.status = PermitStatus.CANCELLED
        audit.record(
            session,
            actor_id=actor_id,
            action="payment.refund",
            entity_type="payment",
            entity_id=str(payment_id),
            changes={"amount_cents": amount_cents, "succeeded": result.succeeded, "reason": reason[:255]},
        )
        return payment.status if result.succeeded else PaymentStatus.FAILED
