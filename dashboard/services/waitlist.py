"""Waitlists for sold-out permits: joining, leaving, and offering freed spaces first come first served.

How a space reaches someone waiting. When a lot has room again (a permit lapsed or was cancelled,
a checkout hold expired, a manager raised the allowance, an offer expired), ``offer_next`` turns the
first waiting entry into an *offer*: the entry holds one space (``permits.availability`` counts open
offers against the allowance) until ``offer_expires_at``, and an email with the booking link goes to
the outbox. The person books the normal way: ``permits.reserve`` treats their open offer's space as
theirs and ``permits.activate`` marks the offer fulfilled. An offer nobody takes lapses
(``expire_offers``) and the space passes to the next in line. The "waitlist-offers" system task runs
both every minute; ``capacity.set_allowance`` also offers at once when it frees space.

The queue is per lot, not per product, because every space of a lot serves every product of it:
people are served in the order they joined, but someone whose product's period is still full (a
term permit while only the next hour has room) is passed over, not made to block the line. The
position shown is the number of people waiting ahead in the lot's line, plus one.

"Sold out" for joining means sold out for the product's period: the rest of its term for a
standard permit, the next hour (``TEMPORARY_WINDOW``) for a temporary one. Joining while spaces
are free is refused ("book it now") unless people are already waiting, since the free space is
theirs first.

Entries carry the person's account and email: the offer is matched by account when there is one,
else by email (see ``permits._open_offer``). One active entry (waiting or offered) per person and
product; joining twice answers with the existing entry.
"""

from __future__ import annotations

import logging
import secrets as token_source
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from dashboard.crypto import SecretBox
from dashboard.services import email, permits, system_settings
from dashboard.services.errors import DomainError, NotAllowed, NotFound, ValidationFailed
from models import (
    Permit,
    PermitKind,
    PermitProduct,
    PermitStatus,
    User,
    WaitlistEntry,
    WaitlistStatus,
)

log = logging.getLogger(__name__)

TEMPLATE = "waitlist-offer"
HOLD_SETTING = "waitlist_hold_minutes"
TEMPORARY_WINDOW = timedelta(hours=1)
ACTIVE = (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)
HISTORY_LIMIT = 50


def join_path(product_id: int) -> str:
    """Where a sold-out message sends people (booking pages link here)."""
    return f"/waitlist/join/{product_id}"


def book_path(kind: PermitKind | str, lot_id: int) -> str:
    """Where an offer is taken up: the normal booking page of the product's kind."""
    return f"/permits/book/{lot_id}" if kind == PermitKind.STANDARD else f"/checkout/temp/{lot_id}"


# --- views -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryView:
    id: int
    product_id: int
    product_name: str
    kind: str
    lot_id: int
    lot_name: str
    email: str
    user_id: int | None
    status: str  # an offer past its expiry reads "expired" even before the task marks it
    created_at: datetime
    offered_at: datetime | None
    offer_expires_at: datetime | None
    position: int | None  # in the lot's line, for waiting entries

    @property
    def active(self) -> bool:
        return self.status in (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)

    @property
    def book_path(self) -> str:
        return book_path(self.kind, self.lot_id)


def _ahead(entry: WaitlistEntry) -> ColumnElement[bool]:
    """Entries of the same lot's line that joined before ``entry`` (ties broken by id)."""
    return and_(
        WaitlistEntry.lot_id == entry.lot_id,
        WaitlistEntry.status == WaitlistStatus.WAITING,
        or_(
            WaitlistEntry.created_at < entry.created_at,
            and_(WaitlistEntry.created_at == entry.created_at, WaitlistEntry.id < entry.id),
        ),
    )


def _position(session: Session, entry: WaitlistEntry) -> int | None:
    if entry.status != WaitlistStatus.WAITING:
        return None
    ahead = session.scalar(select(func.count(WaitlistEntry.id)).where(_ahead(entry)))
    return int(ahead or 0) + 1


def _view(session: Session, entry: WaitlistEntry, now: datetime) -> EntryView:
    status = str(entry.status)
    if (
        entry.status == WaitlistStatus.OFFERED
        and entry.offer_expires_at is not None
        and entry.offer_expires_at <= now
    ):
        status = WaitlistStatus.EXPIRED.value
    product = entry.product
    return EntryView(
        id=entry.id,
        product_id=entry.product_id,
        product_name=product.name,
        kind=str(product.kind),
        lot_id=entry.lot_id,
        lot_name=product.lot.name,
        email=entry.email,
        user_id=entry.user_id,
        status=status,
        created_at=entry.created_at,
        offered_at=entry.offered_at,
        offer_expires_at=entry.offer_expires_at,
        position=_position(session, entry),
    )


def position(session: Session, entry_id: int) -> int | None:
    """The entry's place in its lot's line (1 = next), None once it is no longer waiting."""
    entry = session.get(WaitlistEntry, entry_id)
    if entry is None:
        raise NotFound("That waitlist entry does not exist.")
    return _position(session, entry)


# --- the product's state, for the join page ------------------------------------------------------


@dataclass(frozen=True)
class ProductWaitlist:
    product_id: int
    product_name: str
    kind: str
    lot_id: int
    lot_name: str
    period_start: datetime | None
    period_end: datetime | None
    allowance: int
    taken: int
    available: int
    waiting: int
    sold_out: bool
    reason: str  # why one may (not) join, in a sentence
    mine: EntryView | None  # the person's active entry for the product

    @property
    def can_join(self) -> bool:
        return self.mine is None and (self.sold_out or self.waiting > 0) and self.period_end is not None


def _product(session: Session, product_id: int) -> PermitProduct:
    product = session.get(PermitProduct, product_id)
    if product is None:
        raise NotFound("That permit does not exist.")
    return product


def _on_sale(product: PermitProduct) -> str | None:
    """Why the product cannot be waited for (None: it can)."""
    lot = product.lot
    sells = lot.sells_standard if product.kind == PermitKind.STANDARD else lot.sells_temporary
    if not product.is_active or not lot.is_active or not sells:
        return f"{product.name} is not sold in {lot.name} any more."
    return None


def period(product: PermitProduct, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The period "sold out" refers to: the rest of a standard permit's term, the next hour for a
    temporary one; None when the term is over (or has no dates)."""
    if product.kind != PermitKind.STANDARD:
        return now, now + TEMPORARY_WINDOW
    try:
        start, end = permits.term_window(product, tz)
    except ValidationFailed:
        return None
    return (max(start, now), end) if end > now else None


def _waiting_count(session: Session, lot_id: int) -> int:
    return int(
        session.scalar(
            select(func.count(WaitlistEntry.id)).where(
                WaitlistEntry.lot_id == lot_id, WaitlistEntry.status == WaitlistStatus.WAITING
            )
        )
        or 0
    )


def _who(user_id: int | None, address: str | None) -> ColumnElement[bool]:
    if user_id is not None:
        return WaitlistEntry.user_id == user_id
    return and_(WaitlistEntry.user_id.is_(None), func.lower(WaitlistEntry.email) == (address or "").lower())


def _mine(
    session: Session, product_id: int, user_id: int | None, address: str | None, now: datetime
) -> WaitlistEntry | None:
    """The person's active entry for the product; an offer past its expiry no longer counts."""
    if user_id is None and not address:
        return None
    return session.scalar(
        select(WaitlistEntry)
        .where(
            WaitlistEntry.product_id == product_id,
            _who(user_id, address),
            or_(
                WaitlistEntry.status == WaitlistStatus.WAITING,
                and_(WaitlistEntry.status == WaitlistStatus.OFFERED, WaitlistEntry.offer_expires_at > now),
            ),
        )
        .order_by(WaitlistEntry.created_at)
        .limit(1)
    )


def product_waitlist(
    session: Session, product_id: int, user_id: int | None, now: datetime, tz: ZoneInfo
) -> ProductWaitlist:
    """What the join page shows: the product, whether and why it is sold out, the line's length,
    and the person's own entry."""
    product = _product(session, product_id)
    lot = product.lot
    window = period(product, now, tz)
    waiting = _waiting_count(session, lot.id)
    mine = _mine(session, product.id, user_id, None, now) if user_id is not None else None
    closed = _on_sale(product)
    base: dict[str, Any] = {
        "product_id": product.id,
        "product_name": product.name,
        "kind": str(product.kind),
        "lot_id": lot.id,
        "lot_name": lot.name,
        "waiting": waiting,
        "mine": _view(session, mine, now) if mine else None,
    }
    if window is None or closed:
        reason = closed or f"The term of {product.name} is over."
        return ProductWaitlist(
            **base,
            period_start=None,
            period_end=None,
            allowance=lot.allowance,
            taken=0,
            available=0,
            sold_out=False,
            reason=reason,
        )
    free = permits.lot_availability(session, lot.id, window[0], window[1], now)
    sold_out = free.available == 0
    if sold_out:
        reason = (
            f"All {free.allowance} permits allowed in {lot.name} are taken for this period "
            f"({free.taken} sold, held in checkouts or offered to people waiting)."
        )
    elif waiting:
        reason = (
            f"{free.available} space(s) just freed up, and {waiting} already waiting: "
            "the spaces go to them first."
        )
    else:
        reason = f"{free.available} space(s) are free: you can book now."
    return ProductWaitlist(
        **base,
        period_start=window[0],
        period_end=window[1],
        allowance=free.allowance,
        taken=free.taken,
        available=free.available,
        sold_out=sold_out,
        reason=reason,
    )


# --- joining and leaving -------------------------------------------------------------------------


@dataclass(frozen=True)
class Joined:
    entry: EntryView
    created: bool  # False: the person was already on the list


def join(
    session: Session,
    product_id: int,
    user_id: int | None,
    address: str | None,
    now: datetime,
    tz: ZoneInfo,
) -> Joined:
    """Put a person in the lot's line for a sold-out product (see the module's docstring). With an
    account, its email is used; without one, ``address`` is required."""
    permits.lock_lot(
        session, select(PermitProduct.lot_id).where(PermitProduct.id == product_id).scalar_subquery()
    )
    product = _product(session, product_id)
    closed = _on_sale(product)
    if closed:
        raise ValidationFailed({"product": closed})
    window = period(product, now, tz)
    if window is None:
        raise ValidationFailed({"product": f"the term of {product.name} is over"})
    user = session.get(User, user_id) if user_id is not None else None
    if user_id is not None and user is None:
        raise NotFound("That account does not exist.")
    address = (user.email if user else (address or "")).strip()
    if not email.ADDRESS_RE.match(address):
        raise ValidationFailed({"email": "enter the e-mail address the offer should go to"})
    eligible = {t.id for t in product.eligible_user_types}
    user_type = user.user_type_id if user else None
    if product.kind == PermitKind.STANDARD and eligible and user_type not in eligible:
        raise NotAllowed(f"{product.name} is not sold to your user type, so you cannot wait for it.")
    existing = _mine(session, product.id, user_id, address, now)
    if existing is not None:
        return Joined(_view(session, existing, now), created=False)
    if _holds_permit(session, product.id, user_id, address, window):
        raise ValidationFailed({"product": f"you already have a {product.name} permit for this period"})
    free = permits.lot_availability(session, product.lot_id, window[0], window[1], now)
    if free.available > 0 and _waiting_count(session, product.lot_id) == 0:
        raise ValidationFailed({"product": f"{free.available} space(s) are free: book it now instead"})
    entry = WaitlistEntry(
        product_id=product.id,
        lot_id=product.lot_id,
        user_id=user_id,
        email=address,
        status=WaitlistStatus.WAITING,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    return Joined(_view(session, entry, now), created=True)


def _holds_permit(
    session: Session, product_id: int, user_id: int | None, address: str, window: tuple[datetime, datetime]
) -> bool:
    who = Permit.user_id == user_id if user_id is not None else func.lower(Permit.email) == address.lower()
    return (
        session.scalar(
            select(Permit.id)
            .where(
                Permit.product_id == product_id,
                Permit.status == PermitStatus.ACTIVE,
                Permit.valid_from < window[1],
                Permit.valid_to > window[0],
                who,
            )
            .limit(1)
        )
        is not None
    )


def leave(session: Session, entry_id: int, user_id: int, now: datetime) -> EntryView:
    """The person leaves the line, or declines an offer (its space goes to the next person on the
    task's next run). Leaving twice, or after the entry ended, changes nothing."""
    entry = session.get(WaitlistEntry, entry_id)
    if entry is None or entry.user_id != user_id:
        raise NotFound("That waitlist entry is not yours, or no longer exists.")
    if entry.status in ACTIVE:
        entry.status = WaitlistStatus.CANCELLED
        session.flush()
    return _view(session, entry, now)


def entries_of(session: Session, user_id: int, now: datetime) -> list[EntryView]:
    """A person's entries: active ones first (offers, then waiting), then the most recent others."""
    rows = session.scalars(
        select(WaitlistEntry)
        .options(selectinload(WaitlistEntry.product).selectinload(PermitProduct.lot))
        .where(WaitlistEntry.user_id == user_id)
        .order_by(WaitlistEntry.created_at.desc(), WaitlistEntry.id.desc())
        .limit(HISTORY_LIMIT)
    )
    views = [_view(session, entry, now) for entry in rows]
    rank = {WaitlistStatus.OFFERED.value: 0, WaitlistStatus.WAITING.value: 1}
    return sorted(views, key=lambda v: rank.get(v.status, 2))


def waiting_counts(session: Session, lot_ids: Iterable[int] | None = None) -> dict[int, int]:
    """People waiting per lot (lots with nobody waiting are absent)."""
    query = (
        select(WaitlistEntry.lot_id, func.count(WaitlistEntry.id))
        .where(WaitlistEntry.status == WaitlistStatus.WAITING)
        .group_by(WaitlistEntry.lot_id)
    )
    if lot_ids is not None:
        query = query.where(WaitlistEntry.lot_id.in_(list(lot_ids)))
    return {lot_id: int(count) for lot_id, count in session.execute(query)}


# --- offers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfferPolicy:
    """How offers are made: how long one holds its space, and what the email needs."""

    hold: timedelta
    site_name: str
    base_url: str
    tz: ZoneInfo
    backend: email.EmailBackend


def hold(session: Session, secrets: SecretBox) -> timedelta:
    """How long an offer holds its space (System Settings > Occupancy > Waitlist)."""
    return timedelta(minutes=int(system_settings.get(session, secrets, HOLD_SETTING)))


def offer_policy(
    session: Session,
    secrets: SecretBox,
    base_url: str,
    tz: ZoneInfo,
    backend: email.EmailBackend | None = None,
) -> OfferPolicy:
    """The admin's hold length (System Settings > Occupancy > Waitlist) and mail delivery:
    ``backend`` is the configured one (``workers.email_delivery.configured_backend``); without it,
    or with a delivery method this process cannot queue, the offer emails stay in the outbox, where
    admins see them, rather than the offers being lost."""
    values = system_settings.get_many(session, secrets, [HOLD_SETTING, "site_name", "mail_backend"])
    if backend is None:
        try:
            backend = email.backend_for(str(values["mail_backend"]))
        except ValueError:
            log.warning(
                "waitlist: mail backend %r cannot be queued here, offers stay in the outbox",
                values["mail_backend"],
            )
            backend = email.OutboxBackend()
    return OfferPolicy(
        hold=timedelta(minutes=int(values[HOLD_SETTING])),
        site_name=str(values["site_name"]),
        base_url=base_url.rstrip("/"),
        tz=tz,
        backend=backend,
    )


def offer_next(session: Session, lot_id: int, now: datetime, policy: OfferPolicy) -> list[EntryView]:
    """While the lot has room and people wait, offer the space to the first in line whose
    product's period has room (FIFO, see the module's docstring). Returns the offers made. Must
    run at the start of its transaction, like ``permits.reserve``; running it twice offers nothing
    twice: a space held by an offer is no longer free."""
    permits.lock_lot(session, lot_id)
    waiting = list(
        session.scalars(
            select(WaitlistEntry)
            .options(selectinload(WaitlistEntry.product).selectinload(PermitProduct.lot))
            .where(WaitlistEntry.lot_id == lot_id, WaitlistEntry.status == WaitlistStatus.WAITING)
            .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
        )
    )
    free: dict[int, int] = {}  # product id -> spaces free in its period, less the offers made here
    made: list[EntryView] = []
    for entry in waiting:
        product = entry.product
        if product.id not in free:
            window = period(product, now, policy.tz)
            free[product.id] = (
                0
                if window is None or _on_sale(product)
                else permits.lot_availability(session, lot_id, window[0], window[1], now).available
            )
        if free[product.id] <= 0:
            continue
        entry.status = WaitlistStatus.OFFERED
        entry.offered_at = now
        entry.offer_expires_at = now + policy.hold
        entry.offer_token = token_source.token_urlsafe(24)
        session.flush()
        for key in free:  # an open offer counts against every period of the lot
            free[key] -= 1
        _send_offer(session, entry, policy)
        made.append(_view(session, entry, now))
    return made


def _send_offer(session: Session, entry: WaitlistEntry, policy: OfferPolicy) -> None:
    product = entry.product
    user = session.get(User, entry.user_id) if entry.user_id is not None else None
    assert entry.offer_expires_at is not None  # just offered
    context = {
        "name": user.full_name if user else entry.email,
        "product_name": product.name,
        "lot_name": product.lot.name,
        "book_url": f"{policy.base_url}{book_path(product.kind, entry.lot_id)}",
        "expires_at": entry.offer_expires_at.astimezone(policy.tz).strftime("%Y-%m-%d %H:%M %Z"),
        "site_name": policy.site_name,
    }
    try:
        message = email.compose(session, TEMPLATE, context, [entry.email])
        email.send_email(session, message, policy.backend)
    except DomainError:
        # The offer stands (the person sees it on My Waitlist); a broken template or address must
        # not stop the line from moving.
        log.exception("waitlist offer %s: the %s email could not be queued", entry.id, TEMPLATE)


@dataclass(frozen=True)
class Expiry:
    expired: int
    offered: tuple[EntryView, ...]


def expire_offers(session: Session, now: datetime, policy: OfferPolicy) -> Expiry:
    """Mark lapsed offers expired and pass their spaces on (``offer_next`` for each of their lots).
    The spaces stopped being held at the expiry time already; this records it and moves the line."""
    lapsed = list(
        session.scalars(
            select(WaitlistEntry).where(
                WaitlistEntry.status == WaitlistStatus.OFFERED, WaitlistEntry.offer_expires_at <= now
            )
        )
    )
    for entry in lapsed:
        entry.status = WaitlistStatus.EXPIRED
    session.flush()
    offered: list[EntryView] = []
    for lot_id in sorted({entry.lot_id for entry in lapsed}):
        offered += offer_next(session, lot_id, now, policy)
    return Expiry(len(lapsed), tuple(offered))
