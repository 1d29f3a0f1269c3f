"""The quick checkout for temporary permits: one page, no cart, no account needed.

The seed: the lot group page's temporary permit button, and the QR code posted at a lot, open "the
checkout used for QR codes ... It allows the user to purchase the permit and checkout immediately
without adding it to their cart". So a driver standing in the lot picks an option (hourly, daily or
fixed), when it starts (now, or a time today or tomorrow in the site's time zone), how long, the
plate and an e-mail for the receipt, and pays.

Durations are offered in whole units of the price (hours for hourly, days for daily) up to the
product's ``max_duration_minutes``: ``permits.quote`` charges per started unit anyway, so a
90-minute choice would only sell 30 minutes that are paid and not offered. A fixed-price permit
lasts its ``max_duration_minutes``, or, without one, until the end of the local day it starts in.

Temporary permits are for anyone (guests have no user type), so eligibility is not checked here;
the lot must sell temporary permits and the product must be active.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.crypto import SecretBox
from dashboard.db import Database
from dashboard.services import email, payment_providers, payments, permits
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.payment_providers import PaymentProvider
from dashboard.services.payments import CheckoutResult, ReceiptContext
from dashboard.services.permits import PermitRequest
from dashboard.services.plates import clean_plate
from models import Lot, PermitKind, PermitProduct, Pricing

HOUR = 60
DAY = 24 * 60
# Without a maximum on the product: what a visitor can sensibly buy in one go.
DEFAULT_MAX = {Pricing.HOURLY: DAY, Pricing.DAILY: 7 * DAY}
NOW, LATER = "now", "later"
TODAY, TOMORROW = "today", "tomorrow"
T = TypeVar("T")


@dataclass(frozen=True)
class TemporaryOption:
    product_id: int
    name: str
    pricing: str
    price_cents: int
    currency: str
    durations: tuple[int, ...]  # minutes; empty: a fixed permit valid until the end of the day

    @property
    def unit(self) -> str:
        return {Pricing.HOURLY: "per hour", Pricing.DAILY: "per day"}.get(Pricing(self.pricing), "flat")


@dataclass(frozen=True)
class TemporaryOffer:
    lot_id: int
    lot_name: str
    options: tuple[TemporaryOption, ...]


@dataclass(frozen=True)
class TemporaryOrder:
    """What the quick checkout form sends, unchecked (``start``: "now" or "later"; ``day``:
    "today" or "tomorrow"; ``at``: "HH:MM" site time; ``duration``: minutes)."""

    lot_id: object
    product_id: object
    start: object = NOW
    day: object = TODAY
    at: object = None
    duration: object = None
    plate: object = None
    email: object = None


@dataclass(frozen=True)
class TemporaryQuote:
    lot_id: int
    lot_name: str
    product_id: int
    product_name: str
    valid_from: datetime
    valid_to: datetime
    amount_cents: int
    currency: str
    available: int

    @property
    def sold_out(self) -> bool:
        return self.available <= 0


def durations(product: PermitProduct) -> tuple[int, ...]:
    """The lengths offered for a product, in minutes (see the module's docstring)."""
    if product.pricing == Pricing.FIXED:
        return (product.max_duration_minutes,) if product.max_duration_minutes else ()
    unit = HOUR if product.pricing == Pricing.HOURLY else DAY
    limit = product.max_duration_minutes or DEFAULT_MAX.get(product.pricing, DAY)
    if limit < unit:
        return (limit,)
    return tuple(unit * count for count in range(1, limit // unit + 1))


def _sellable(product: PermitProduct) -> bool:
    return product.pricing != Pricing.TERM and (product.pricing == Pricing.FIXED or bool(durations(product)))


def _lot(session: Session, lot_id: object) -> Lot:
    lot = session.get(Lot, lot_id) if isinstance(lot_id, int) else None
    if lot is None or not lot.is_active:
        raise NotFound("That lot does not exist.")
    return lot


def temporary_offer(session: Session, lot_id: int) -> TemporaryOffer:
    """The lot's active temporary permits (none when the lot does not sell them now)."""
    lot = _lot(session, lot_id)
    products = (
        session.scalars(
            select(PermitProduct)
            .where(
                PermitProduct.lot_id == lot.id,
                PermitProduct.kind == PermitKind.TEMPORARY,
                PermitProduct.is_active.is_(True),
            )
            .order_by(PermitProduct.price_cents, PermitProduct.name)
        ).all()
        if lot.sells_temporary
        else []
    )
    options = tuple(
        TemporaryOption(p.id, p.name, str(p.pricing), p.price_cents, p.currency, durations(p))
        for p in products
        if _sellable(p)
    )
    return TemporaryOffer(lot.id, lot.name, options)


def _whole(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value.strip())
    return None


def _start(order: TemporaryOrder, tz: ZoneInfo, now: datetime, errors: dict[str, str]) -> datetime | None:
    if order.start == NOW:
        return now.replace(second=0, microsecond=0)
    if order.start != LATER:
        errors["start"] = "choose now or a later time"
        return None
    if order.day not in (TODAY, TOMORROW):
        errors["day"] = "today or tomorrow"
        return None
    try:
        at = time.fromisoformat(order.at.strip()) if isinstance(order.at, str) else None
    except ValueError:
        at = None
    if at is None:
        errors["at"] = "a time such as 14:30"
        return None
    day: date = now.astimezone(tz).date() + timedelta(days=1 if order.day == TOMORROW else 0)
    start = datetime.combine(day, at.replace(second=0, microsecond=0), tzinfo=tz).astimezone(now.tzinfo)
    if start < now - timedelta(minutes=1):
        errors["at"] = "that time has passed: choose now, or a later time"
        return None
    return start


def quote_order(session: Session, order: TemporaryOrder, tz: ZoneInfo, now: datetime) -> TemporaryQuote:
    """The price, validity and availability of what the form describes (plate and e-mail are not
    needed for a price); ``ValidationFailed`` names each wrong field."""
    lot, product, start, end, amount = _priced(session, order, tz, now)
    free = permits.lot_availability(session, lot.id, start, end, now)
    return TemporaryQuote(
        lot_id=lot.id,
        lot_name=lot.name,
        product_id=product.id,
        product_name=product.name,
        valid_from=start,
        valid_to=end,
        amount_cents=amount,
        currency=product.currency,
        available=free.available,
    )


def _priced(
    session: Session, order: TemporaryOrder, tz: ZoneInfo, now: datetime
) -> tuple[Lot, PermitProduct, datetime, datetime, int]:
    """What the form describes, checked: lot, product, validity and price."""
    lot = _lot(session, order.lot_id)
    errors: dict[str, str] = {}
    product_id = _whole(order.product_id)
    product = session.get(PermitProduct, product_id) if product_id is not None else None
    if (
        product is None
        or product.lot_id != lot.id
        or product.kind != PermitKind.TEMPORARY
        or not product.is_active
        or not lot.sells_temporary
        or not _sellable(product)
    ):
        raise ValidationFailed({"product": "choose one of this lot's temporary permits"})
    start = _start(order, tz, now, errors)
    offered = durations(product)
    minutes = _whole(order.duration)
    if offered and minutes not in offered:
        errors["duration"] = "choose how long"
    if errors or start is None:
        raise ValidationFailed(errors)
    if offered:
        assert minutes is not None
        end = start + timedelta(minutes=minutes)
    else:  # a fixed permit without a length: until local midnight
        end = permits.local_day_start(start.astimezone(tz).date() + timedelta(days=1), tz)
    return lot, product, start, end, permits.quote(product, start, end)


def clean_email(value: object) -> str:
    address = value.strip() if isinstance(value, str) else ""
    if not address:
        raise ValidationFailed({"email": "enter an e-mail address for the receipt"})
    if len(address) > 254 or not email.ADDRESS_RE.match(address):
        raise ValidationFailed({"email": "not a valid e-mail address"})
    return address


def _collect(errors: dict[str, str], check: Callable[[], T]) -> T | None:
    try:
        return check()
    except ValidationFailed as exc:
        errors.update(exc.errors)
        return None


def buy(
    database: Database,
    provider: PaymentProvider,
    order: TemporaryOrder,
    card_number: object,
    card_expiry: object,
    card_cvc: object,
    *,
    idempotency_key: str,
    user_id: int | None,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    now: datetime,
    return_url: str | None = None,
    secrets: SecretBox | None = None,
) -> CheckoutResult:
    """Check the whole form (every wrong field at once), then sell the permit with one payment
    (``payments.checkout``: a repeated key answers with the first outcome, one charge). With a
    hosted processor (Stripe) there are no card fields: the answer is ``redirect`` to its page,
    which sends the buyer back to ``return_url``."""
    hosted = payment_providers.is_hosted(provider)
    tz = receipt.tz
    errors: dict[str, str] = {}
    with database.session() as session:  # availability is not asked: the sale counts under the lock
        priced = _collect(errors, lambda: _priced(session, order, tz, now))
    plate = _collect(errors, lambda: clean_plate(order.plate))
    address = _collect(errors, lambda: clean_email(order.email))
    card = None
    if not hosted:
        card = _collect(
            errors,
            lambda: payment_providers.clean_card(
                card_number, card_expiry, card_cvc, now.astimezone(tz).date()
            ),
        )
    if errors:
        raise ValidationFailed(errors)
    assert priced is not None and plate is not None and address is not None and (card is not None or hosted)
    lot, product, start, end, amount = priced
    request = PermitRequest(
        lot_id=lot.id,
        product_id=product.id,
        plates=(plate,),
        valid_from=start,
        valid_to=end,
        amount_cents=amount,
        currency=product.currency,
        email=address,
        user_id=user_id,
    )
    return payments.checkout(
        database,
        provider,
        items=[request],
        card=card,
        idempotency_key=idempotency_key,
        email_address=address,
        user_id=user_id,
        receipt=receipt,
        backend=backend,
        now=now,
        return_url=return_url,
        secrets=secrets,
    )
