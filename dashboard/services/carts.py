"""The cart for standard (term) permits: one open cart per signed-in user, paid with one card
payment through ``payments.checkout``.

A cart item holds no space. Availability, eligibility, the term and the price are checked again
when the cart is shown and when it is paid, because a term can sell out, or a manager can change a
product, between adding and paying: an item that cannot be sold any more is named, and nothing is
charged. The space itself is taken by ``permits.reserve`` inside the checkout, under the lot's lock.

What is charged is what was shown: the page sends the total it showed (``expected_total_cents``),
and a cart whose total changed since is refused rather than charged.

Who may buy a standard permit: a product lists the user types it is sold to
(``PermitProduct.eligible_user_types``); a product that lists none is sold to nobody, so a product
saved without choosing types is not bookable by accident.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dashboard.crypto import SecretBox
from dashboard.db import Database
from dashboard.services import email, payments, permits
from dashboard.services.errors import NotAllowed, NotFound, ValidationFailed
from dashboard.services.payment_providers import Card, PaymentProvider
from dashboard.services.payments import CheckoutResult, ReceiptContext
from dashboard.services.permits import MAX_PLATES, PermitRequest, SoldOut
from dashboard.services.plates import clean_plate, normalize_plate
from models import (
    Cart,
    CartItem,
    CartItemKind,
    CartStatus,
    Lot,
    Payment,
    PaymentStatus,
    PermitKind,
    PermitProduct,
    User,
    Vehicle,
)

INELIGIBLE = "not sold to your user type"

# --- views -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StandardOption:
    """A standard permit the user may book, for the booking page."""

    product_id: int
    lot_id: int
    name: str
    price_cents: int
    currency: str
    valid_from: datetime
    valid_to: datetime
    available: int
    allowance: int

    @property
    def sold_out(self) -> bool:
        return self.available <= 0


@dataclass(frozen=True)
class StandardOffer:
    """What a lot sells this user: the eligible standard permits, and what the page needs to
    explain an empty list (the lot sells none, or none to this user type)."""

    lot_id: int
    lot_name: str
    sells_standard: bool
    user_type: str | None  # the user type's name
    options: tuple[StandardOption, ...]
    not_eligible: int  # standard permits of the lot this user type may not buy
    saved_plates: tuple[str, ...]  # the user's vehicles, to prefill the plates


@dataclass(frozen=True)
class CartLine:
    """One cart item as it would be sold now: the current term and price, availability, and why
    it cannot be sold (``problem``), if it cannot."""

    item_id: int
    product_id: int | None
    lot_id: int | None
    lot_name: str
    name: str
    plates: tuple[str, ...]
    valid_from: datetime | None
    valid_to: datetime | None
    amount_cents: int
    currency: str
    available: int | None
    problem: str | None

    @property
    def sold_out(self) -> bool:
        return self.available is not None and self.available <= 0


@dataclass(frozen=True)
class CartView:
    cart_id: int | None
    lines: tuple[CartLine, ...]

    @property
    def total_cents(self) -> int:
        return sum(line.amount_cents for line in self.lines)

    @property
    def currency(self) -> str:
        return self.lines[0].currency if self.lines else "CAD"

    @property
    def payable(self) -> bool:
        return bool(self.lines) and not any(line.problem for line in self.lines)


@dataclass(frozen=True)
class CartCheckout:
    """``status``: paid, declined, failed, in_progress, busy and sold_out as ``payments.checkout``
    answers; ``unavailable`` (an item cannot be sold any more) and ``changed`` (the total is not
    the one shown) are refused before anything is reserved or charged. ``problems`` names the
    items that stopped the sale."""

    status: str
    message: str
    problems: tuple[CartLine, ...] = ()
    payment: CheckoutResult | None = None

    @property
    def paid(self) -> bool:
        return self.status == "paid"


# --- what a lot sells this user ----------------------------------------------------------------


def _eligible(product: PermitProduct, user: User) -> bool:
    return user.user_type_id is not None and any(
        t.id == user.user_type_id for t in product.eligible_user_types
    )


def _problem(product: PermitProduct | None, user: User, tz: ZoneInfo, now: datetime) -> str | None:
    """Why this product cannot be sold to this user now, or None."""
    if product is None or not product.is_active:
        return "this permit is no longer sold"
    if product.kind != PermitKind.STANDARD:
        return "not a standard permit"
    lot = product.lot
    if not lot.is_active or not lot.sells_standard:
        return f"{lot.name} does not sell standard permits now"
    if not _eligible(product, user):
        return INELIGIBLE
    try:
        _, end = permits.term_window(product, tz)
    except ValidationFailed:
        return "this permit has no term dates; ask the parking office"
    if end <= now:
        return "this term has ended"
    return None


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotFound("That account does not exist.")
    return user


def standard_offer(session: Session, user_id: int, lot_id: int, tz: ZoneInfo, now: datetime) -> StandardOffer:
    """The lot's standard permits this user may book, each with its term, price and what is left."""
    user = _user(session, user_id)
    lot = session.get(Lot, lot_id)
    if lot is None or not lot.is_active:
        raise NotFound("That lot does not exist.")
    products = session.scalars(
        select(PermitProduct)
        .where(
            PermitProduct.lot_id == lot.id,
            PermitProduct.kind == PermitKind.STANDARD,
            PermitProduct.is_active.is_(True),
        )
        .order_by(PermitProduct.term_start, PermitProduct.name)
    ).all()
    options = []
    not_eligible = 0
    for product in products if lot.sells_standard else []:
        if not _eligible(product, user):
            not_eligible += 1
            continue
        if _problem(product, user, tz, now) is not None:
            continue
        start, end = permits.term_window(product, tz)
        free = permits.lot_availability(session, lot.id, start, end, now)
        options.append(
            StandardOption(
                product_id=product.id,
                lot_id=lot.id,
                name=product.name,
                price_cents=permits.quote(product, start, end),
                currency=product.currency,
                valid_from=start,
                valid_to=end,
                available=free.available,
                allowance=free.allowance,
            )
        )
    return StandardOffer(
        lot_id=lot.id,
        lot_name=lot.name,
        sells_standard=lot.sells_standard,
        user_type=user.user_type.name if user.user_type else None,
        options=tuple(options),
        not_eligible=not_eligible,
        saved_plates=saved_plates(session, user_id),
    )


def saved_plates(session: Session, user_id: int) -> tuple[str, ...]:
    return tuple(
        session.scalars(select(Vehicle.plate).where(Vehicle.user_id == user_id).order_by(Vehicle.id))
    )


def clean_plates(values: Sequence[object]) -> tuple[tuple[str, str], ...]:
    """The plates of one permit as typed in the form's boxes (blank boxes skipped): 1 to
    ``MAX_PLATES``, each cleaned, none twice. Errors are keyed ``plate_<box number>``."""
    errors: dict[str, str] = {}
    cleaned: list[tuple[str, str]] = []
    for index, value in enumerate(values, start=1):
        if not isinstance(value, str) or not value.strip():
            continue
        try:
            plate = clean_plate(value, f"plate_{index}")
        except ValidationFailed as exc:
            errors.update(exc.errors)
            continue
        if any(plate[1] == known[1] for known in cleaned):
            errors[f"plate_{index}"] = "this plate is already on the permit"
            continue
        cleaned.append(plate)
    if not cleaned and not errors:
        errors["plates"] = "enter at least one licence plate"
    elif len(cleaned) > MAX_PLATES:
        errors["plates"] = f"at most {MAX_PLATES} licence plates on one permit"
    if errors:
        raise ValidationFailed(errors)
    return tuple(cleaned)


# --- the cart ------------------------------------------------------------------------------------


def _open_cart(session: Session, user_id: int) -> Cart | None:
    return session.scalar(
        select(Cart).where(Cart.user_id == user_id, Cart.status == CartStatus.OPEN).order_by(Cart.id).limit(1)
    )


def _lock_user(session: Session, user_id: int) -> None:
    """Take the user's row first, so two "Add to cart" clicks at once find or create one cart
    (the same technique as ``permits.lock_lot``)."""
    locked = session.execute(update(User).where(User.id == user_id).values(updated_at=User.updated_at))
    if locked.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("That account does not exist.")


def add_standard_item(
    session: Session,
    user_id: int,
    product_id: int,
    plates: Sequence[object],
    tz: ZoneInfo,
    now: datetime,
) -> CartLine:
    """Put a standard permit in the user's open cart (made when missing). Refused when the product
    is not sold to this user (``NotAllowed``), is not sold now or the plates are wrong
    (``ValidationFailed``), or the term is sold out (``SoldOut``)."""
    _lock_user(session, user_id)
    user = _user(session, user_id)
    product = session.get(PermitProduct, product_id)
    problem = _problem(product, user, tz, now)
    if problem == INELIGIBLE:
        raise NotAllowed("This permit is not sold to your user type.")
    if problem is not None:
        raise ValidationFailed({"product": problem})
    assert product is not None  # _problem says so
    cleaned = clean_plates(plates)
    cart = _open_cart(session, user_id)
    if cart is not None and any(item.product_id == product.id for item in cart.items):
        raise ValidationFailed({"product": "already in your cart (remove it there to change its plates)"})
    start, end = permits.term_window(product, tz)
    if permits.lot_availability(session, product.lot_id, start, end, now).available <= 0:
        raise SoldOut(f"{product.name} at {product.lot.name} is sold out.")
    if cart is None:
        cart = Cart(user_id=user_id, status=CartStatus.OPEN)
        session.add(cart)
    item = CartItem(
        kind=CartItemKind.PERMIT,
        product_id=product.id,
        plates=[typed for typed, _ in cleaned],
        valid_from=start,
        valid_to=end,
        amount_cents=permits.quote(product, start, end),
        added_at=now,
    )
    cart.items.append(item)
    session.flush()
    return _line(session, item, user, tz, now)


def _line(session: Session, item: CartItem, user: User, tz: ZoneInfo, now: datetime) -> CartLine:
    product = session.get(PermitProduct, item.product_id) if item.product_id is not None else None
    problem = _problem(product, user, tz, now)
    valid_from, valid_to, amount, available = item.valid_from, item.valid_to, item.amount_cents, None
    if product is not None and problem is None:
        valid_from, valid_to = permits.term_window(product, tz)
        amount = permits.quote(product, valid_from, valid_to)
        available = permits.lot_availability(session, product.lot_id, valid_from, valid_to, now).available
        if available <= 0:
            problem = "sold out"
    return CartLine(
        item_id=item.id,
        product_id=product.id if product else None,
        lot_id=product.lot_id if product else None,
        lot_name=product.lot.name if product else "",
        name=product.name if product else "A permit no longer sold",
        plates=tuple(item.plates or ()),
        valid_from=valid_from,
        valid_to=valid_to,
        amount_cents=amount,
        currency=product.currency if product else "CAD",
        available=available,
        problem=problem,
    )


def cart_view(session: Session, user_id: int, tz: ZoneInfo, now: datetime) -> CartView:
    """The user's open cart as it would be sold now (an empty view when there is none)."""
    user = _user(session, user_id)
    cart = _open_cart(session, user_id)
    if cart is None:
        return CartView(None, ())
    items = sorted(cart.items, key=lambda i: i.id)
    return CartView(cart.id, tuple(_line(session, item, user, tz, now) for item in items))


def cart_size(session: Session, user_id: int) -> int:
    cart = _open_cart(session, user_id)
    return len(cart.items) if cart else 0


def remove_item(session: Session, user_id: int, item_id: int) -> None:
    """Take an item out of the user's own open cart; anyone else's item is "not in your cart"."""
    item = session.get(CartItem, item_id)
    if item is None or item.cart.user_id != user_id or item.cart.status != CartStatus.OPEN:
        raise NotFound("That item is not in your cart.")
    item.cart.items.remove(item)  # delete-orphan: the row goes, and the loaded cart forgets it
    session.flush()


# --- paying ------------------------------------------------------------------------------------


def _request(line: CartLine, user: User) -> PermitRequest:
    assert line.lot_id and line.product_id and line.valid_from and line.valid_to
    return PermitRequest(
        lot_id=line.lot_id,
        product_id=line.product_id,
        plates=tuple((plate, normalize_plate(plate)) for plate in line.plates),
        valid_from=line.valid_from,
        valid_to=line.valid_to,
        amount_cents=line.amount_cents,
        currency=line.currency,
        email=user.email,
        user_id=user.id,
    )


def _stored_request(session: Session, item: CartItem, user: User) -> PermitRequest:
    """An item as it was added: for a repeated checkout, which ``payments.checkout`` answers from
    its record of the first attempt without reserving or charging anything."""
    product = session.get(PermitProduct, item.product_id)
    assert product is not None and item.valid_from and item.valid_to  # items go with their product
    return PermitRequest(
        lot_id=product.lot_id,
        product_id=product.id,
        plates=tuple((plate, normalize_plate(plate)) for plate in item.plates),
        valid_from=item.valid_from,
        valid_to=item.valid_to,
        amount_cents=item.amount_cents,
        currency=product.currency,
        email=user.email,
        user_id=user.id,
    )


def _problems_message(problems: Sequence[CartLine]) -> str:
    named = "; ".join(f"{line.name} ({line.lot_name or 'no lot'}): {line.problem}" for line in problems)
    return f"Nothing was charged. {named}."


def interrupted_payment(
    database: Database,
    provider: PaymentProvider,
    user_id: int,
    *,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    now: datetime,
    leaving: bool = False,
    secrets: SecretBox | None = None,
) -> CheckoutResult | None:
    """The payment for the user's open cart still pending (its page gave up, or its answer was
    lost), reconciled with the processor: paid (its settling closed the cart), or still being
    confirmed. None when there is none, or the processor said it was not charged (its holds are
    released, and the cart can be paid again). ``leaving``: the user came back from a hosted
    processor's page through its back link, which closes that page first (``payments.abandon``)."""
    with database.session() as session:
        cart = _open_cart(session, user_id)
        key = (
            session.scalar(
                select(Payment.idempotency_key)
                .where(Payment.cart_id == cart.id, Payment.status == PaymentStatus.PENDING)
                .order_by(Payment.id)
                .limit(1)
            )
            if cart is not None
            else None
        )
    if key is None:
        return None
    ask = payments.abandon if leaving else payments.resume
    result = ask(database, provider, key, receipt=receipt, backend=backend, now=now, secrets=secrets)
    return None if result is None or result.status in ("declined", "failed") else result


def checkout_cart(
    database: Database,
    provider: PaymentProvider,
    user_id: int,
    card: Card | None,
    idempotency_key: str,
    *,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    now: datetime,
    expected_total_cents: int | None = None,
    return_url: str | None = None,
    secrets: SecretBox | None = None,
) -> CartCheckout:
    """Pay for the user's open cart; on success it is checked out (by the payment's settling). A
    repeated submission with the same key answers with the first one's outcome (one charge), even
    once the cart is closed. A payment for the cart still pending under another key (its page gave
    up or was reloaded) is reconciled first: charged, it paid the cart; not known yet, nothing new
    is charged; only once the processor said it was not charged does a new payment start."""
    tz = receipt.tz
    with database.session() as session:
        earlier = session.scalar(select(Payment).where(Payment.idempotency_key == idempotency_key))
    if earlier is None:
        before = interrupted_payment(
            database, provider, user_id, receipt=receipt, backend=backend, now=now, secrets=secrets
        )
        if before is not None:
            return CartCheckout(before.status, before.message, payment=before)
    with database.session() as session:
        user = _user(session, user_id)
        if earlier is not None:
            cart = session.get(Cart, earlier.cart_id) if earlier.cart_id is not None else None
            if earlier.user_id != user_id or cart is None or not cart.items:
                raise ValidationFailed({"form": "reload the page and try again"})
            requests = [_stored_request(session, item, user) for item in cart.items]
        else:
            view = cart_view(session, user_id, tz, now)
            if not view.lines:
                raise ValidationFailed({"items": "your cart is empty"})
            problems = tuple(line for line in view.lines if line.problem)
            if problems:
                status = "sold_out" if any(line.sold_out for line in problems) else "unavailable"
                return CartCheckout(status, _problems_message(problems), problems)
            if expected_total_cents is not None and expected_total_cents != view.total_cents:
                return CartCheckout(
                    "changed", "The total changed since the page was shown. Nothing was charged: check it."
                )
            requests = [_request(line, user) for line in view.lines]
            cart = session.get(Cart, view.cart_id)
        assert cart is not None
        cart_id, address = cart.id, user.email
    result = payments.checkout(
        database,
        provider,
        items=requests,
        card=card,
        idempotency_key=idempotency_key,
        email_address=address,
        user_id=user_id,
        receipt=receipt,
        backend=backend,
        now=now,
        cart_id=cart_id,
        return_url=return_url,
        secrets=secrets,
    )
    if result.paid:  # the settling closed the cart
        return CartCheckout("paid", result.message, payment=result)
    if result.status == "sold_out":
        with database.session() as session:
            sold_out = tuple(line for line in cart_view(session, user_id, tz, now).lines if line.sold_out)
        if sold_out:
            return CartCheckout("sold_out", _problems_message(sold_out), sold_out, result)
        return CartCheckout("sold_out", f"Nothing was charged. {result.message}", payment=result)
    return CartCheckout(result.status, result.message, payment=result)
