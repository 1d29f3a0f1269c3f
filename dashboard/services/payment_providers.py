"""What a card processor is to the checkout: the interface a processor adapter implements
(``PaymentProvider``, and ``HostedPaymentProvider`` for one whose buyers pay on its own page) and
the values that cross it (a validated ``Card``, a ``ChargeResult``, a ``ProcessorCharge`` for
reconciliation, a ``HostedSession``), with ``ProviderUnavailable`` for a processor that gave no
answer.

A module of its own so that the adapters (the sandbox in ``payments``, Stripe in
``stripe_payments``) and the checkout that chooses between them (``payments.provider_for``) all
import it and none of them imports the other the wrong way: it imports no service but ``errors``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from dashboard.services.errors import ValidationFailed


class ProviderUnavailable(Exception):
    """The processor gave no answer (unreachable, timed out, failed): whether a charge happened is
    unknown until it is asked again (``PaymentProvider.find_charge``)."""


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
    if not (digits.isascii() and digits.isdigit()) or not 12 <= len(digits) <= 19 or not _luhn(digits):
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
    if not (code.isascii() and code.isdigit()) or len(code) not in (3, 4):
        errors["cvc"] = "the 3 or 4 digits on the back of the card"
    if errors:
        raise ValidationFailed(errors)
    return Card(digits, month, year, code)


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    reference: str
    message: str


@dataclass(frozen=True)
class ProcessorCharge:
    """A charge as the processor records it, for reconciliation: ``reference`` is what a settled
    payment keeps as ``provider_ref`` (Stripe's payment intent, the sandbox's charge), with the
    idempotency key the checkout sent (None for a charge made outside ParkOps)."""

    reference: str
    idempotency_key: str | None
    amount_cents: int
    refunded_cents: int
    currency: str
    created_at: datetime


class PaymentProvider(Protocol):
    """A card processor. A real adapter passes the key on as its own idempotency key and finds the
    charge again by it; one whose buyers pay on its own page (Stripe Checkout,
    ``stripe_payments``) is a ``HostedPaymentProvider`` and its ``cancel`` closes that page."""

    name: str

    def charge(
        self, *, amount_cents: int, currency: str, card: Card, idempotency_key: str, description: str
    ) -> ChargeResult:
        """Charge once per ``idempotency_key`` (a repeat returns the first result); raise
        ``ProviderUnavailable`` when the outcome is an error rather than an answer."""
        ...

    def find_charge(self, *, idempotency_key: str) -> ChargeResult | None:
        """What was charged under ``idempotency_key``: the charge (succeeded or declined), or None
        when nothing was. ``ProviderUnavailable`` when the processor cannot be asked."""
        ...

    def cancel(self, *, idempotency_key: str) -> ChargeResult | None:
        """Make sure nothing is ever charged under ``idempotency_key``: None once that is so (a
        later ``charge`` with the key is refused), else the charge that got there first."""
        ...

    def refund(self, *, reference: str, amount_cents: int, idempotency_key: str) -> ChargeResult: ...


@dataclass(frozen=True)
class HostedSession:
    """A payment page on the processor's own site (a Stripe Checkout Session): ``reference`` is the
    processor's id for it, ``url`` where the buyer is sent to enter the card."""

    reference: str
    url: str


class HostedPaymentProvider(PaymentProvider, Protocol):
    """A processor whose buyers enter the card on its own page, so no card number reaches ParkOps
    (PCI SAQ A). ``charge`` is never called: the checkout opens a page (``start_session``) under the
    payment's idempotency key and sends the buyer there; the charge happens on that page, and
    ``find_charge`` / ``cancel`` answer for the key as for any processor. ``abandoned_after`` is how
    long a buyer may take on that page before the payment counts as abandoned (the page closes by
    then)."""

    abandoned_after: timedelta

    def start_session(
        self,
        *,
        amount_cents: int,
        currency: str,
        idempotency_key: str,
        description: str,
        email_address: str,
        success_url: str,
        cancel_url: str,
        now: datetime,
    ) -> HostedSession:
        """The payment page for ``idempotency_key`` (the same one again for a repeated key);
        ``ProviderUnavailable`` when the processor does not answer."""
        ...

    def page_url(self, *, idempotency_key: str) -> str | None:
        """Where the payment page for ``idempotency_key`` is, while it is still open."""
        ...


def is_hosted(provider: PaymentProvider) -> bool:
    """Whether the buyer pays on the processor's page (no card form on ours)."""
    return callable(getattr(provider, "start_session", None))
