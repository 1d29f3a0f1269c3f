"""Card payments: a built-in sandbox processor, checkout and refunds.

``PaymentProvider`` (``payment_providers``) is what a real processor adapter implements: charge and
refund, each under an idempotency key, and two questions about a key whose charge had no clear
answer (``find_charge``, ``cancel``). ``SandboxProvider`` behaves like one, with its own ledger
(``SandboxCharge``) and test cards (``TEST_CARDS``): one succeeds, some decline, one fails as if the
network dropped.

``checkout`` sells permits and takes payment of violations in three steps, each a transaction of
its own:

1. reserve: the permits are held (``permits.reserve``: pending, counted against the allowance), each
   violation is locked and checked payable (``violations.hold_for_payment``: a second payment of it
   queues behind the first and is refused), and a ``pending`` payment is written under the
   checkout's idempotency key, in one commit;
2. charge the card (outside any transaction: a processor may take seconds);
3. settle: the processor's answer is recorded. Charged: the permits become active, the violations
   paid (``violations.mark_paid``), the boot on a paid violation Released with its release code
   mailed (``boots.release_boot_for_paid_violation``), the payment ``succeeded`` and the receipt
   emails go to the outbox, all in the commit that makes the payment succeeded: a code is never
   sent before payment, and never twice (only the settle that moved the payment out of pending
   does any of it). Declined, or never charged: the holds are released.

Work per purchase (README, Performance): a permit's checkout is three short transactions and 13
statements (reserve 6, the sandbox's charge 1, settle 6), each statement built once with named
parameters and run on the session's connection (``_statements``, ``permits._statements``): request
threads share one interpreter, so CPU per purchase is what bounds a web process's sales per second.
The idempotency key is looked up only when reserving fails (a key already used fails to insert its
payment, or finds its lot full or its violations held), not before every sale.

A database step that loses its connection (a failover, a restart, a terminated backend) is run
again on a fresh connection (``RETRY_DELAYS``); settling is idempotent (only a ``pending`` payment
is settled, in one conditional UPDATE), so a retry whose first COMMIT did go through neither
activates nor emails twice.

A payment left ``pending`` (the request gave up, or died) is never guessed at: the processor is
asked what it holds under the idempotency key (``_reconcile``). Charged: settle. Declined: release.
Nothing there: while the checkout may still be running (``ABANDONED_AFTER``), the same form sent
again goes on to the card under the same key (the processor charges a key once) and a reloaded page
is told it is being processed; after that, the key is cancelled at the processor (a late charge
under it is refused) and only then is the hold released and the buyer told nothing was charged.
That happens when the same form is submitted again, when its page is reloaded (``resume``) and in
the Waitlist Offers task (``reconcile_pending``), which settles a charged payment whose buyer never
came back and sends its receipt.

A hosted processor (``HostedPaymentProvider``: Stripe, ``stripe_payments``) takes the card on its
own page: step 2 opens that page under the key and sends the buyer there, and the payment stays
pending (its permits held) until the processor's answer is asked for: by its webhook, the buyer's
return (``resume``), the buyer leaving its page (``abandon``) or ``reconcile_pending``.

The idempotency key comes from the checkout form (one per form; kept across a reload of the page
until the buyer has been told the outcome), so a double-click, a retried request or a reload finds
the first attempt's payment (the key is unique) and answers with its outcome: the card is charged
once.

Why this module is long: checkout, the sandbox processor, settlement and refunds are one state
machine of a payment (reserve, charge, settle) with one idempotency key; its steps are kept side by
side so the rules about a charge with no clear answer read in one place.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import secrets as token_source
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Executable, Row, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from dashboard.crypto import SecretBox
from dashboard.db import Database, lost_connection
from dashboard.services import audit, boots, email, permits, stripe_payments, violations
from dashboard.services.errors import DomainError, NotFound, ValidationFailed
from dashboard.services.payment_providers import (
    Card,
    ChargeResult,
    HostedPaymentProvider,
    PaymentProvider,
    ProviderUnavailable,
    is_hosted,
)
from dashboard.services.permits import PermitRequest, PermitView, SoldOut
from dashboard.services.violations import NotPayable, ViolationRequest
from models import (
    Cart,
    CartStatus,
    Payment,
    PaymentAllocation,
    PaymentStatus,
    Permit,
    PermitStatus,
    Refund,
    SandboxCharge,
    User,
)

log = logging.getLogger(__name__)

RECEIPT_TEMPLATE = "permit-receipt"
# The receipt of a payment of violations (the permit receipt names one permit).
PAYMENT_RECEIPT_TEMPLATE = "payment-receipt"
# Waits between attempts of a database step whose connection dropped: about 3.3 s in all, then the
# request gives up ("being confirmed") and the payment is left pending for ``_reconcile``.
RETRY_DELAYS = (0.05, 0.25, 1.0, 2.0)
# A pending payment with nothing at the processor may still be on its way to the card step for
# this long (a slow request, a double-click's first submission); after it, it is abandoned.
ABANDONED_AFTER = timedelta(minutes=2)
T = TypeVar("T")


class DatabaseUnavailable(Exception):
    """A database step kept losing its connection through every retry."""


def with_retries(step: Callable[[], T], what: str) -> T:
    """Run ``step`` (one whole transaction of its own) and run it again, on a fresh connection, when
    the database connection drops; ``DatabaseUnavailable`` once ``RETRY_DELAYS`` are spent. Only
    for steps that are safe to repeat."""
    for delay in (*RETRY_DELAYS, None):
        try:
            return step()
        except DBAPIError as exc:
            if not lost_connection(exc):
                raise
            if delay is None:
                raise DatabaseUnavailable(f"{what}: {exc.orig or exc}") from exc
            log.warning("%s: the database connection dropped (%s); trying again", what, exc.orig or exc)
            time.sleep(delay)
    raise AssertionError("unreachable")


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
CANCELLED = "Cancelled before any charge."


class SandboxProvider:
    """A card processor for demos and tests, with a ledger of its own (its own transactions, as a
    remote processor's would be). A cancelled key is a ledger row too (``FAILED``, no amount), so
    that a charge arriving after the cancellation finds it and is refused. A database error inside
    the sandbox is what a network error is for a remote processor: ``ProviderUnavailable``, outcome
    unknown (a COMMIT whose answer was lost may have gone through)."""

    name = "sandbox"

    def __init__(self, database: Database) -> None:
        self.database = database

    @staticmethod
    def _result(row: SandboxCharge | Row[tuple[PaymentStatus, str, str]]) -> ChargeResult:
        return ChargeResult(row.status == PaymentStatus.SUCCEEDED, row.reference, row.message)

    def _record(self, values: dict[str, object]) -> Row[tuple[PaymentStatus, str, str]]:
        """The ledger row under ``values``' key: the one there, else these values inserted. Of two
        inserts under one key the first wins and the second finds it, as a processor's
        idempotency does (``INSERT ... ON CONFLICT DO NOTHING``, then a read if it did nothing)."""
        try:
            with self.database.session() as session:
                sql, statements = session.connection(), _statements(session.get_bind().dialect.name)
                inserted = sql.execute(statements["charge"], values).first()
                if inserted is not None:
                    return inserted
                return sql.execute(statements["charge_found"], {"key": values["idempotency_key"]}).one()
        except DBAPIError as exc:
            raise ProviderUnavailable(f"the sandbox processor failed: {exc.orig or exc}") from exc

    def charge(
        self, *, amount_cents: int, currency: str, card: Card, idempotency_key: str, description: str
    ) -> ChargeResult:
        if card.number == NETWORK_ERROR_CARD:
            raise ProviderUnavailable("the sandbox processor did not answer (test card 4000 0000 0000 0119)")
        succeeded = card.number == SUCCESS_CARD
        message = {
            SUCCESS_CARD: "Approved",
            DECLINED_CARD: "Your card was declined.",
            INSUFFICIENT_FUNDS_CARD: "Your card has insufficient funds.",
        }.get(card.number, "Declined: use one of the sandbox test cards.")
        return self._result(
            self._record(
                {
                    "reference": "sbx_" + token_source.token_hex(10),
                    "idempotency_key": idempotency_key,
                    "amount_cents": amount_cents,
                    "currency": currency,
                    "card_last4": card.last4,
                    "status": PaymentStatus.SUCCEEDED if succeeded else PaymentStatus.DECLINED,
                    "message": message,
                }
            )
        )

    def find_charge(self, *, idempotency_key: str) -> ChargeResult | None:
        try:
            with self.database.session() as session:
                row = session.scalar(
                    select(SandboxCharge).where(SandboxCharge.idempotency_key == idempotency_key)
                )
        except DBAPIError as exc:
            raise ProviderUnavailable(f"the sandbox processor failed: {exc.orig or exc}") from exc
        if row is None or row.status == PaymentStatus.FAILED:
            return None
        return self._result(row)

    def cancel(self, *, idempotency_key: str) -> ChargeResult | None:
        row = self._record(
            {
                "reference": "sbx_" + token_source.token_hex(10),
                "idempotency_key": idempotency_key,
                "amount_cents": 0,
                "currency": "",
                "card_last4": "",
                "status": PaymentStatus.FAILED,
                "message": CANCELLED,
            }
        )
        return None if row.status == PaymentStatus.FAILED else self._result(row)

    def refund(self, *, reference: str, amount_cents: int, idempotency_key: str) -> ChargeResult:
        with self.database.session() as session:
            charge = session.scalar(select(SandboxCharge).where(SandboxCharge.reference == reference))
            if charge is None or charge.status != PaymentStatus.SUCCEEDED:
                return ChargeResult(False, reference, "No such charge to refund.")
            if charge.refunded_cents + amount_cents > charge.amount_cents:
                return ChargeResult(False, reference, "The refund exceeds what is left of the charge.")
            charge.refunded_cents += amount_cents
            return ChargeResult(True, f"{reference}_r{charge.refunded_cents}", "Refunded")


@functools.cache
def _statements(dialect_name: str) -> dict[str, Executable]:
    """A checkout's statements, built once with named parameters: building and keying a statement
    costs more CPU than running it (``permits._statements``)."""
    ledger = (SandboxCharge.status, SandboxCharge.reference, SandboxCharge.message)
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    pays_fines = (
        select(PaymentAllocation.id)
        .where(
            PaymentAllocation.payment_id == bindparam("payment_id"),
            PaymentAllocation.violation_id.is_not(None),
        )
        .exists()
    )
    return {
        "payment": insert(Payment).returning(Payment.id),
        "allocations": insert(PaymentAllocation),
        # Settling claims the payment: only a pending one, so a second settle changes nothing.
        "claim": update(Payment)
        .where(Payment.id == bindparam("payment_id"), Payment.status == PaymentStatus.PENDING)
        .values(
            status=bindparam("new_status"),
            provider_ref=bindparam("new_reference"),
            message=bindparam("new_message"),
            receipt_token=bindparam("new_token"),
        )
        .returning(Payment.payer_email, Payment.cart_id, pays_fines.label("pays_fines")),
        "close_cart": update(Cart)
        .where(Cart.id == bindparam("cart_id"), Cart.status == CartStatus.OPEN)
        .values(status=CartStatus.CHECKED_OUT),
        # The sandbox's ledger: the first insert under a key wins, a second finds it.
        "charge": dialect.insert(SandboxCharge).on_conflict_do_nothing().returning(*ledger),
        "charge_found": select(*ledger).where(SandboxCharge.idempotency_key == bindparam("key")),
    }


PROVIDERS: dict[str, Callable[[Database], PaymentProvider]] = {SandboxProvider.name: SandboxProvider}


def provider_for(name: str, database: Database, secrets: SecretBox | None = None) -> PaymentProvider:
    """The processor a payment was made with (``Payment.provider``), to ask it about the payment.
    Stripe's keys are settings, encrypted: it needs ``secrets`` to read them."""
    if name == "stripe":
        if secrets is None:
            raise NotFound("Stripe's keys cannot be read here.")
        return stripe_payments.configured(database, secrets)
    try:
        return PROVIDERS[name](database)
    except KeyError:
        raise NotFound(f"No card processor is called {name!r}.") from None


# --- checkout ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoutResult:
    """``status``: paid; declined; failed (nothing was charged: the processor said so); sold_out;
    refused (a violation cannot be paid: nothing was reserved or charged); in_progress (being
    processed or confirmed: the buyer must not pay again, and the same form finds it again); busy
    (the database could not be reached before anything was decided: press Pay again, with the same
    key); redirect (a hosted processor: the buyer goes on to its payment page at ``redirect_url``;
    the form keeps its key, which finds the payment on return)."""

    status: str
    message: str
    payment_id: int | None = None
    receipt_token: str | None = None
    permits: tuple[PermitView, ...] = ()
    tickets: tuple[str, ...] = ()  # the ticket numbers of the violations it paid
    redirect_url: str | None = None

    @property
    def paid(self) -> bool:
        return self.status == "paid"

    @property
    def settled(self) -> bool:
        """The buyer has a final answer: a new attempt needs a new key."""
        return self.status in ("paid", "declined", "failed")


PROCESSING = "Your payment is being processed."
CONFIRMING = (
    "Your payment is being confirmed. You will not be charged twice: reload this page in a minute "
    "to see the outcome; the receipt comes by e-mail."
)
BUSY = "Payments are briefly unavailable. Press Pay again in a moment: you will not be charged twice."
NOT_CHARGED = "That attempt did not go through and nothing was charged; please try again."
PROCESSOR_DOWN = "The card processor could not be reached, and your card was not charged. Please try again."
CONTINUE = "Continue to the secure payment page to enter your card."
ON_PROCESSOR_PAGE = (
    "Your payment has not been completed yet: finish it on the secure payment page. Nothing is "
    "charged until you do."
)
LEFT_PAGE = "You left the secure payment page before paying: nothing was charged."


@dataclass(frozen=True)
class ReceiptContext:
    """What the receipt email needs that the permit does not carry, and what releasing a boot on a
    paid violation needs: the secrets that decrypt its release code and where it goes back to. A
    payment of a violation settled without ``secrets`` is an error (it rolls back and the payment
    stays pending), never a paid boot without its code."""

    name: str
    site_name: str
    base_url: str
    tz: ZoneInfo
    secrets: SecretBox | None = None
    return_location: str = ""


@dataclass(frozen=True)
class _Pending:
    """A payment whose outcome is not recorded yet, with what its charge is."""

    id: int
    idempotency_key: str
    provider: str
    created_at: datetime
    amount_cents: int
    currency: str
    description: str
    payer_name: str | None = None


def checkout(
    database: Database,
    provider: PaymentProvider,
    *,
    items: Sequence[PermitRequest | ViolationRequest],
    card: Card | None = None,
    idempotency_key: str,
    email_address: str,
    user_id: int | None,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    now: datetime,
    cart_id: int | None = None,
    return_url: str | None = None,
    secrets: SecretBox | None = None,
) -> CheckoutResult:
    """Sell ``items`` with one card payment (see the module's docstring). A key already used
    answers with its payment's outcome, reconciled with the processor if it is still pending; a
    pending one the processor has nothing for yet goes on to the card under the same key (the
    form was sent again: a double-click, or a retry after a dropped connection), which the
    processor's idempotency charges once.

    With a hosted processor (``is_hosted``) there is no ``card``: step 2 opens the processor's
    payment page under the key and answers ``redirect``; the buyer comes back to ``return_url``
    (``?payment=return``, or ``?payment=cancel`` when leaving the page), and a webhook, that
    return (``resume``) or the reconcile task settles the payment with what the processor holds."""
    if not idempotency_key or len(idempotency_key) > 80:
        raise ValidationFailed({"form": "reload the page and try again"})
    if not items:
        raise ValidationFailed({"items": "nothing to pay for"})
    hosted = is_hosted(provider)
    if hosted and not return_url:
        raise ValidationFailed({"form": "no page to come back to after paying"})
    if not hosted and card is None:
        raise ValidationFailed({"card_number": "enter the card"})
    if hosted:
        card = None  # never passed on: the processor's page takes the card
    back = (email_address, return_url) if hosted and return_url else None
    attempts = 0

    def reserve() -> _Pending | CheckoutResult:
        nonlocal attempts
        attempts += 1
        if attempts > 1:  # the attempt whose connection dropped may have committed (answer lost)
            found = _look_up(database, idempotency_key)
            if found is not None:
                return found
        return _reserve(
            database, provider.name, items, card, idempotency_key, email_address, user_id, cart_id, now
        )

    try:
        reserved = with_retries(reserve, "reserving a checkout")
    except (DomainError, IntegrityError) as exc:
        # The key is looked up only now, on the way to refusing: a form sent again (a double
        # click, a retry, a reload) fails to reserve (its key is taken, its violations held, its
        # lot maybe full since) and is answered with its payment instead, which the processor's
        # idempotency charges at most once. A new key, nearly every checkout, skips the look-up.
        try:
            known = _resume(database, provider, idempotency_key, now, receipt, backend, card, back, secrets)
        except DatabaseUnavailable:
            return CheckoutResult("busy", BUSY)
        if known is not None:
            return known
        if isinstance(exc, SoldOut):
            return CheckoutResult("sold_out", str(exc))
        if isinstance(exc, NotPayable):
            return CheckoutResult("refused", str(exc))
        if isinstance(exc, IntegrityError):  # the other request's payment is not readable yet
            return CheckoutResult("in_progress", PROCESSING)
        raise
    except DatabaseUnavailable as exc:
        log.error(
            "checkout %s: nothing done in this attempt, the database is unreachable: %s", idempotency_key, exc
        )
        return CheckoutResult("busy", BUSY)
    if isinstance(reserved, CheckoutResult):
        return reserved
    if attempts > 1:  # maybe found, not made, by this request: ask the processor first
        return _reconcile(database, provider, reserved, now, receipt, backend, card, back)
    if back is not None:
        return _start_hosted(database, provider, reserved, back, now, receipt, backend)  # type: ignore[arg-type]
    assert card is not None
    return _charge(database, provider, reserved, card, now, receipt, backend)


def _reserve(
    database: Database,
    provider_name: str,
    items: Sequence[PermitRequest | ViolationRequest],
    card: Card | None,
    idempotency_key: str,
    email_address: str,
    user_id: int | None,
    cart_id: int | None,
    now: datetime,
) -> _Pending:
    """Step 1 in one transaction: the holds and the pending payment. Violations are locked in id
    order, so two payments of overlapping violations cannot deadlock."""
    permit_items = [item for item in items if isinstance(item, PermitRequest)]
    fines = sorted(
        (item for item in items if isinstance(item, ViolationRequest)), key=lambda i: i.violation_id
    )
    with database.session() as session:
        held = [permits.reserve(session, item, now) for item in sorted(permit_items, key=lambda i: i.lot_id)]
        tickets = [violations.hold_for_payment(session, fine, now) for fine in fines]
        amount = sum(item.amount_cents for item in items)
        sql, statements = session.connection(), _statements(session.get_bind().dialect.name)
        payment_id = sql.scalar(
            statements["payment"],
            {
                "idempotency_key": idempotency_key,
                "provider": provider_name,
                "status": PaymentStatus.PENDING,
                "amount_cents": amount,
                "currency": items[0].currency,
                "payer_email": email_address,
                "user_id": user_id,
                "cart_id": cart_id,
                "card_last4": card.last4 if card is not None else None,
                "created_at": now,
            },
        )
        sql.execute(
            statements["allocations"],
            [
                {
                    "payment_id": payment_id,
                    "permit_id": p.id,
                    "violation_id": None,
                    "amount_cents": p.amount_cents,
                }
                for p in held
            ]
            + [
                {
                    "payment_id": payment_id,
                    "permit_id": None,
                    "violation_id": f.violation_id,
                    "amount_cents": f.amount_cents,
                }
                for f in fines
            ],
        )
        return _Pending(
            id=payment_id,
            idempotency_key=idempotency_key,
            provider=provider_name,
            created_at=now,
            amount_cents=amount,
            currency=items[0].currency,
            description=_description(held, tickets),
        )


def _tickets(session: Session, payment: Payment) -> list[str]:
    """The ticket numbers of the violations a payment pays, in allocation order."""
    ids = [a.violation_id for a in payment.allocations if a.violation_id is not None]
    numbers = violations.ticket_numbers(session, ids)
    return [numbers[i] for i in ids if i in numbers]


def _pending(
    payment: Payment,
    held: Sequence[PermitView],
    payer_name: str | None = None,
    tickets: Sequence[str] = (),
) -> _Pending:
    return _Pending(
        id=payment.id,
        idempotency_key=payment.idempotency_key,
        provider=payment.provider,
        created_at=payment.created_at,
        amount_cents=payment.amount_cents,
        currency=payment.currency,
        description=_description(held, tickets),
        payer_name=payer_name,
    )


def _description(held: Sequence[PermitView], tickets: Sequence[str]) -> str:
    """What the card statement says the charge is for."""
    return ", ".join(
        [f"{p.product_name or p.kind} permit {p.number}" for p in held]
        + [f"parking ticket {number}" for number in tickets]
    )


def _charge(
    database: Database,
    provider: PaymentProvider,
    pending: _Pending,
    card: Card,
    now: datetime,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
) -> CheckoutResult:
    """Step 2, then step 3. A processor that gives no answer is asked what it holds under the key;
    if nothing, the key is cancelled there before the buyer is told nothing was charged."""
    key = pending.idempotency_key
    answer: ChargeResult | None
    try:
        answer = provider.charge(
            amount_cents=pending.amount_cents,
            currency=pending.currency,
            card=card,
            idempotency_key=key,
            description=pending.description,
        )
    except ProviderUnavailable as exc:
        log.warning("payment %s: processor error: %s", pending.id, exc)
        try:
            answer = _ask(lambda: provider.find_charge(idempotency_key=key))
            if answer is None:
                answer = _ask(lambda: provider.cancel(idempotency_key=key))
        except ProviderUnavailable as again:
            log.error("payment %s: left pending, the processor cannot be asked: %s", pending.id, again)
            return CheckoutResult("in_progress", CONFIRMING, pending.id)
        reason = f"the processor failed ({exc})"
        return _record_answer(database, pending.id, answer, now, receipt, backend, reason, PROCESSOR_DOWN)
    return _record_answer(database, pending.id, answer, now, receipt, backend)


def _return_urls(return_url: str) -> tuple[str, str]:
    """Where the processor's page sends the buyer back: paid, or left without paying."""
    glue = "&" if "?" in return_url else "?"
    return f"{return_url}{glue}payment=return", f"{return_url}{glue}payment=cancel"


def _start_hosted(
    database: Database,
    provider: HostedPaymentProvider,
    pending: _Pending,
    back: tuple[str, str],
    now: datetime,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
) -> CheckoutResult:
    """Step 2 for a hosted processor: its payment page under the payment's key (the same page for
    the same key). The page's reference is kept with the payment so the processor can be asked
    about it. A processor that does not answer has taken no card yet: its page (if one was made)
    is closed and the buyer told nothing was charged."""
    email_address, return_url = back
    success_url, cancel_url = _return_urls(return_url)
    key = pending.idempotency_key
    try:
        page = _ask(
            lambda: provider.start_session(
                amount_cents=pending.amount_cents,
                currency=pending.currency,
                idempotency_key=key,
                description=pending.description,
                email_address=email_address,
                success_url=success_url,
                cancel_url=cancel_url,
                now=now,
            )
        )
    except ProviderUnavailable as exc:
        log.warning("payment %s: the processor's payment page could not be opened: %s", pending.id, exc)
        try:
            answer = _ask(lambda: provider.cancel(idempotency_key=key))
        except ProviderUnavailable:
            return CheckoutResult("in_progress", CONFIRMING, pending.id)
        reason = f"the processor failed ({exc})"
        return _record_answer(database, pending.id, answer, now, receipt, backend, reason, PROCESSOR_DOWN)

    def keep_reference() -> None:
        with database.session() as session:
            session.execute(
                update(Payment)
                .where(Payment.id == pending.id, Payment.status == PaymentStatus.PENDING)
                .values(provider_ref=page.reference)
            )

    try:
        with_retries(keep_reference, f"keeping payment {pending.id}'s payment page")
    except DatabaseUnavailable as exc:
        # Not sent to a page we could not note: pressing Pay again opens the same one.
        log.error("payment %s: the payment page is not recorded: %s", pending.id, exc)
        return CheckoutResult("busy", BUSY, pending.id)
    return CheckoutResult("redirect", CONTINUE, pending.id, redirect_url=page.url)


def _ask(question: Callable[[], T]) -> T:
    """Ask the processor, again after a pause when it does not answer (``RETRY_DELAYS``)."""
    for delay in (*RETRY_DELAYS, None):
        try:
            return question()
        except ProviderUnavailable:
            if delay is None:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


def _record_answer(
    database: Database,
    payment_id: int,
    answer: ChargeResult | None,
    now: datetime,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    reason: str = "abandoned before the card step",
    not_charged: str = NOT_CHARGED,
) -> CheckoutResult:
    """Settle with the processor's answer (None: nothing was charged, and the key is cancelled),
    retried on a fresh connection. A charge that cannot be recorded is "being confirmed", never
    "not charged": the payment stays pending for ``reconcile``."""
    try:
        return with_retries(
            lambda: _settle(database, payment_id, answer, now, receipt, backend, reason, not_charged),
            f"settling payment {payment_id}",
        )
    except DatabaseUnavailable as exc:
        log.error("payment %s: processor answered, but it is not recorded yet: %s", payment_id, exc)
        if answer is None:
            return CheckoutResult("failed", not_charged, payment_id)
        if not answer.succeeded:
            return CheckoutResult("declined", answer.message, payment_id)
        return CheckoutResult("in_progress", CONFIRMING, payment_id)


def _settle(
    database: Database,
    payment_id: int,
    answer: ChargeResult | None,
    now: datetime,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    reason: str,
    not_charged: str,
) -> CheckoutResult:
    """Step 3, one transaction: record the processor's answer, activate or release the held
    permits with the payment, queue the receipt emails and close the cart in the same commit.
    Only a pending payment is settled (a conditional UPDATE, which also queues a concurrent
    settler behind this one), so settling again changes nothing and answers the recorded outcome."""
    if answer is None:
        status, reference, message = PaymentStatus.FAILED, None, f"Not charged: {reason}; cancelled."
    elif answer.succeeded:
        status, reference, message = PaymentStatus.SUCCEEDED, answer.reference, answer.message
    else:
        status, reference, message = PaymentStatus.DECLINED, answer.reference, answer.message
    token = token_source.token_urlsafe(24) if status == PaymentStatus.SUCCEEDED else None
    with database.session() as session:
        sql, statements = session.connection(), _statements(session.get_bind().dialect.name)
        claimed = sql.execute(
            statements["claim"],
            {
                "payment_id": payment_id,
                "new_status": status,
                "new_reference": reference,
                "new_message": message[:255],
                "new_token": token,
            },
        ).first()
        if claimed is None:
            payment = session.get(Payment, payment_id)
            assert payment is not None  # written by the checkout
            return _outcome(session, payment, not_charged)
        if token is None:  # declined, or never charged
            permits.release_unpaid(session, payment_id)
            if status == PaymentStatus.DECLINED:
                return CheckoutResult("declined", message[:255], payment_id)
            return CheckoutResult("failed", not_charged, payment_id)
        views = permits.activate_paid(session, payment_id, now)
        if claimed.payer_email:
            for view in views:
                _send_receipt(session, view, claimed.payer_email, token, receipt, backend)
        tickets: list[str] = []
        if claimed.pays_fines:
            payment = session.get(Payment, payment_id)
            assert payment is not None
            tickets = _settle_violations(session, payment, now, receipt, backend)
        if claimed.cart_id is not None:
            sql.execute(statements["close_cart"], {"cart_id": claimed.cart_id})
        return CheckoutResult("paid", "Payment received.", payment_id, token, tuple(views), tuple(tickets))


def _settle_violations(
    session: Session, payment: Payment, now: datetime, receipt: ReceiptContext, backend: email.EmailBackend
) -> list[str]:
    """In the settle that made the payment succeeded: each violation it paid is marked paid, the
    boots on it turn Released with the release code mailed to the payer, and the payment receipt
    goes out. Returns the ticket numbers."""
    fines = [a for a in payment.allocations if a.violation_id is not None]
    if not fines:
        return []
    if receipt.secrets is None:
        raise RuntimeError("a payment of violations is settled with the secrets that decrypt release codes")
    numbers = violations.ticket_numbers(session, [a.violation_id for a in fines if a.violation_id])
    for allocation in fines:
        violation_id = allocation.violation_id
        assert violation_id is not None
        if not violations.mark_paid(session, violation_id, payment.id, now):
            # Voided (or paid) while the card was being charged: the money is there to refund.
            log.error("payment %s: violation %s was no longer payable when paid", payment.id, violation_id)
            continue
        if payment.payer_email:
            mail = boots.ReleaseMail(
                to=payment.payer_email,
                name=boots.owner_name(session, violation_id),
                site_name=receipt.site_name,
                return_location=receipt.return_location,
            )
            boots.release_boot_for_paid_violation(session, receipt.secrets, violation_id, mail, backend, now)
    if payment.payer_email and payment.receipt_token:
        items = [
            {"description": f"Parking ticket {numbers.get(a.violation_id or 0, '')}", "amount_cents": cents}
            for a, cents in ((a, a.amount_cents) for a in fines)
        ]
        context = {
            "name": receipt.name,
            "reference": payment.receipt_token[:10],
            "paid_at": violations.when_words(now, receipt.tz),
            "items": items,
            "total_cents": payment.amount_cents,
            "currency": payment.currency,
            "site_name": receipt.site_name,
        }
        try:
            message = email.compose(session, PAYMENT_RECEIPT_TEMPLATE, context, [payment.payer_email])
        except DomainError:
            log.exception("payment %s: the %s template does not render", payment.id, PAYMENT_RECEIPT_TEMPLATE)
        else:
            email.send_email(session, message, backend)
    return [numbers[a.violation_id] for a in fines if a.violation_id in numbers]


def _outcome(session: Session, payment: Payment, not_charged: str = NOT_CHARGED) -> CheckoutResult:
    """What the buyer is told about a payment as recorded."""
    if payment.status == PaymentStatus.PENDING:
        return CheckoutResult("in_progress", PROCESSING, payment.id)
    if payment.status == PaymentStatus.DECLINED:
        return CheckoutResult("declined", payment.message, payment.id)
    if payment.status == PaymentStatus.FAILED:
        # Recorded only once the processor said nothing was charged (and the key is cancelled).
        return CheckoutResult("failed", not_charged, payment.id)
    views = tuple(
        permits.get_permit(session, a.permit_id) for a in payment.allocations if a.permit_id is not None
    )
    tickets = tuple(_tickets(session, payment))
    return CheckoutResult("paid", "Payment received.", payment.id, payment.receipt_token, views, tickets)


def _look_up(database: Database, idempotency_key: str) -> CheckoutResult | _Pending | None:
    with database.session() as session:
        payment = session.scalar(select(Payment).where(Payment.idempotency_key == idempotency_key))
        if payment is None:
            return None
        if payment.status != PaymentStatus.PENDING:
            return _outcome(session, payment)
        held = [permits.get_permit(session, a.permit_id) for a in payment.allocations if a.permit_id]
        return _pending(payment, held, tickets=_tickets(session, payment))


def _resume(
    database: Database,
    provider: PaymentProvider,
    idempotency_key: str,
    now: datetime,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    card: Card | None = None,
    back: tuple[str, str] | None = None,
    secrets: SecretBox | None = None,
) -> CheckoutResult | None:
    """The outcome of an earlier checkout with this key (None: there was none); a pending one is
    reconciled first. ``DatabaseUnavailable`` when it cannot be read."""
    found = with_retries(lambda: _look_up(database, idempotency_key), "looking up a checkout")
    if not isinstance(found, _Pending):
        return found
    if found.provider != provider.name:
        try:
            provider = provider_for(found.provider, database, secrets or receipt.secrets)
        except (NotFound, DomainError) as exc:
            log.error("payment %s: its processor cannot be asked now: %s", found.id, exc)
            return CheckoutResult("in_progress", CONFIRMING, found.id)
        back = None  # not the processor the form is for: only asked
    return _reconcile(database, provider, found, now, receipt, backend, card, back)


def _reconcile(
    database: Database,
    provider: PaymentProvider,
    pending: _Pending,
    now: datetime,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    card: Card | None = None,
    back: tuple[str, str] | None = None,
) -> CheckoutResult:
    """Ask the processor about a pending payment and settle it accordingly (module docstring).
    With the ``card`` (the form was sent again), a recent payment with nothing at the processor
    goes on to the charge under its key; with a hosted processor and ``back`` (its form was sent
    again), the buyer goes back to the same payment page."""
    key = pending.idempotency_key
    hosted = is_hosted(provider)
    try:
        answer = _ask(lambda: provider.find_charge(idempotency_key=key))
        if answer is None:
            window = provider.abandoned_after if hosted else ABANDONED_AFTER  # type: ignore[attr-defined]
            if now - pending.created_at < window:
                if hosted and back is not None:
                    return _start_hosted(database, provider, pending, back, now, receipt, backend)  # type: ignore[arg-type]
                if card is not None and not hosted:
                    return _charge(database, provider, pending, card, now, receipt, backend)
                if hosted:
                    url = _ask(lambda: provider.page_url(idempotency_key=key))  # type: ignore[attr-defined]
                    return CheckoutResult("in_progress", ON_PROCESSOR_PAGE, pending.id, redirect_url=url)
                return CheckoutResult("in_progress", PROCESSING, pending.id)
            answer = _ask(lambda: provider.cancel(idempotency_key=key))
    except ProviderUnavailable as exc:
        log.warning("payment %s: still pending, the processor cannot be asked: %s", pending.id, exc)
        return CheckoutResult("in_progress", CONFIRMING, pending.id)
    return _record_answer(database, pending.id, answer, now, receipt, backend)


def resume(
    database: Database,
    provider: PaymentProvider,
    idempotency_key: object,
    *,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    now: datetime,
    secrets: SecretBox | None = None,
) -> CheckoutResult | None:
    """Where the checkout under a form's key stands (None: the key is unused), reconciled with the
    processor if it is pending: what a reloaded checkout page shows instead of charging again,
    and what a buyer coming back from a hosted processor's page sees (paid only once the
    processor says the charge succeeded)."""
    if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 80:
        return None
    try:
        return _resume(database, provider, idempotency_key, now, receipt, backend, secrets=secrets)
    except DatabaseUnavailable:
        return CheckoutResult("busy", BUSY)


def abandon(
    database: Database,
    provider: PaymentProvider,
    idempotency_key: object,
    *,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    now: datetime,
    secrets: SecretBox | None = None,
) -> CheckoutResult | None:
    """The buyer came back from a hosted processor's page through its "back" link: the page is
    closed at the processor (``cancel``; a payment made there just before still counts) and the
    hold released. Anything but a pending payment answers as ``resume``."""
    if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 80:
        return None
    try:
        found = with_retries(lambda: _look_up(database, idempotency_key), "looking up a checkout")
        if not isinstance(found, _Pending):
            return found
        if found.provider != provider.name:
            provider = provider_for(found.provider, database, secrets or receipt.secrets)
        if not is_hosted(provider):
            return _reconcile(database, provider, found, now, receipt, backend)
        try:
            answer = _ask(lambda: provider.cancel(idempotency_key=idempotency_key))
        except ProviderUnavailable as exc:
            log.warning("payment %s: left the payment page; the processor cannot be asked: %s", found.id, exc)
            return CheckoutResult("in_progress", CONFIRMING, found.id)
        return _record_answer(
            database, found.id, answer, now, receipt, backend, "the buyer left the payment page", LEFT_PAGE
        )
    except (NotFound, DomainError) as exc:
        log.error("checkout %s: cannot be closed now: %s", idempotency_key, exc)
        return CheckoutResult("in_progress", CONFIRMING)
    except DatabaseUnavailable:
        return CheckoutResult("busy", BUSY)


def settle_from_processor(
    database: Database,
    provider: PaymentProvider,
    idempotency_key: str,
    *,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    now: datetime,
) -> CheckoutResult | None:
    """What a processor's notification (a webhook) about a payment does: the processor is asked
    what it holds now (the notification's own content is never trusted: notifications arrive
    late, twice and out of order) and the payment settled with that; the receipt greets an
    account holder by name. None for a key that is not ours."""
    with database.session() as session:
        row = session.execute(
            select(Payment, User)
            .outerjoin(User, User.id == Payment.user_id)
            .where(Payment.idempotency_key == idempotency_key)
        ).first()
        if row is None:
            return None
        name = row.User.full_name if row.User is not None else None
    named = dataclasses.replace(receipt, name=name) if name else receipt
    return _resume(database, provider, idempotency_key, now, named, backend)


@dataclass(frozen=True)
class Reconciled:
    settled: int  # charged: permits active, receipts queued
    released: int  # declined or never charged: holds released
    waiting: int  # the processor could not be asked, or the checkout may still be running


def reconcile_pending(
    database: Database,
    now: datetime,
    *,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    secrets: SecretBox | None = None,
) -> Reconciled:
    """Resolve every pending payment with its processor (a checkout whose request gave up or
    died): charged ones are settled (permit active, receipt to the payer, by name when the payer
    has an account), the others released. Then lapsed holds without a pending payment are
    cancelled. Safe to run while checkouts run and to run twice."""

    def listed() -> list[_Pending]:
        with database.session() as session:
            rows = session.execute(
                select(Payment, User)
                .outerjoin(User, User.id == Payment.user_id)
                .where(Payment.status == PaymentStatus.PENDING)
                .order_by(Payment.id)
            ).all()
            return [
                _pending(
                    payment,
                    [permits.get_permit(session, a.permit_id) for a in payment.allocations if a.permit_id],
                    user.full_name if user else None,
                    _tickets(session, payment),
                )
                for payment, user in rows
            ]

    settled = released = waiting = 0
    for pending in with_retries(listed, "listing pending payments"):
        try:
            provider = provider_for(pending.provider, database, secrets or receipt.secrets)
            named = dataclasses.replace(receipt, name=pending.payer_name) if pending.payer_name else receipt
            result = _reconcile(database, provider, pending, now, named, backend)
        except (DomainError, DatabaseUnavailable) as exc:
            log.error("payment %s: cannot be reconciled now: %s", pending.id, exc)
            waiting += 1
            continue
        if result.paid:
            settled += 1
        elif result.settled:
            released += 1
        else:
            waiting += 1

    def expire() -> None:
        with database.session() as session:
            permits.expire_holds(session, now)

    with_retries(expire, "cancelling lapsed holds")
    return Reconciled(settled, released, waiting)


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
        "currency": permit.currency,
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
    tickets: tuple[tuple[str, int], ...] = ()  # (ticket number, amount paid) of each violation paid


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
        tickets=tuple(
            zip(
                _tickets(session, payment),
                [a.amount_cents for a in payment.allocations if a.violation_id is not None],
                strict=False,
            )
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
    secrets: SecretBox | None = None,
) -> PaymentStatus:
    """Refund part or all of a successful payment; a full refund cancels its permits (their spaces
    become available again). Recorded and audited whatever the processor answers. The refund goes
    to the processor the payment was made with, whichever ``provider`` is chosen now (Stripe's
    keys need ``secrets``).

    ``claim(session, refund_id)`` runs in the transaction that records the refund, before the
    processor is called: a caller that must refund something once (a boot deposit) links the refund
    there, and raising refuses it with nothing written."""
    with database.session() as session:
        made_with = session.scalar(select(Payment.provider).where(Payment.id == payment_id))
    if made_with is not None and made_with != provider.name:
        provider = provider_for(made_with, database, secrets)
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
        row = session.get_one(Refund, refund_id)
        payment = session.get_one(Payment, payment_id)
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
