"""Permits: what a lot has left to sell, selling without overselling, permits other systems sold
(pay-and-display machines, HotSpot, OC-TOMA clients), and the permits of a plate.

Availability. A lot sells up to its allowance (``Lot.allowance``: the permits a manager allows,
which may exceed the physical capacity on purpose). What counts against it for a period is every
permit of the lot whose validity overlaps that period and that is active, or pending and still
within its checkout hold (``HOLD``), plus the waitlist offers still open for the lot (an offer
holds its space until it expires). Overlap, not "valid right now": a term permit bought in August
for September holds its space in September.

A buyer with an open waitlist offer for the product (``WaitlistEntry``, by account or email)
buys the space the offer holds: ``reserve`` does not count it against them, and ``activate``
fulfils the offer.

Never oversell. ``reserve`` takes the lot's row first (``lock_lot``: an UPDATE of the row, the
first statement of its transaction), then counts and inserts, in one statement (``_hold``:
INSERT ... SELECT ... WHERE the count is below the allowance). On PostgreSQL the UPDATE's row lock
queues concurrent buyers of the lot, and the count (a new snapshot per statement under READ
COMMITTED) sees every committed sale; on SQLite the same UPDATE takes the database's write lock
before anything is read. The last space is sold once whatever the number of buyers or processes.

A sale is two steps around the card charge (``dashboard.services.payments``): ``reserve`` commits
a ``pending`` permit that holds the space, then ``activate`` or ``release`` once the processor has
answered. A crash in between leaves a pending payment, which the card processor's answer settles
or releases (``payments.reconcile_pending``); the hold stops counting after ``HOLD``.

One rule for every channel (README, "Permits"). Whatever sells a permit valid in a lot (the quick
checkout and the cart through ``reserve``, partners through ``record_external_permit``: the permit
API and OC-TOMA pushes) counts against that lot's availability under that lot's lock, and is refused
(``SoldOut``) once the allowance is taken. A zone permit is valid in every lot the zone is
scheduled on, so it takes no space of any one lot: it counts against its zone's ``capacity`` when
one is set (zone permits and pay-station records of the zone overlapping the period, under the
zone's lock, ``lock_zone``), and against nothing when none is. A partner key holding
``permits:over-allowance`` records past either limit; the permit then says ``over_allowance``.
Pulled sessions (ParkMobile, ``pay_stations.import_records``) become temporary permits under the
same locks, but a session that already happened cannot be refused: past the limit it is recorded
and flagged ``over_allowance``, like the over-allowance key's permits.

Third-party permits are idempotent on (source, external_id) and belong to their source: a partner
(``Partner``: the sources its API key acts for) records, sees and changes only permits of its own
sources, by their random ``reference``.

Why this module is long: availability, reservation under the lot's lock and recording permits other
systems sold all apply the one counting rule (what holds a space for a period); keeping them
together keeps that rule single.
"""

from __future__ import annotations

import functools
import math
import secrets as token_source
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Executable,
    Insert,
    Row,
    ScalarSelect,
    Select,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from dashboard.services import system_settings
from dashboard.services.days import moment_words
from dashboard.services.errors import DomainError, NotAllowed, NotFound, ValidationFailed
from dashboard.services.open_data import FIRST_YEAR, LAST_YEAR, in_service_range
from dashboard.services.plates import clean_plate, normalize_plate
from models import (
    Lot,
    LotZone,
    LotZoneSchedule,
    Payment,
    PaymentAllocation,
    PaymentStatus,
    PayStationRecord,
    Permit,
    PermitKind,
    PermitProduct,
    PermitSource,
    PermitStatus,
    PermitVehicle,
    Pricing,
    WaitlistEntry,
    WaitlistStatus,
)
from models.permits import new_reference

HOLD = timedelta(minutes=15)  # how long a checkout may hold a space before paying
MAX_PLATES = 3  # plates on one permit (a household's cars; one parks at a time)
MAX_EXTERNAL_ID = 80
MAX_AMOUNT_CENTS = 10_000_000  # $100,000: anything above is a typo, not a parking permit
THIRD_PARTY_SOURCES = (PermitSource.API, PermitSource.HOTSPOT, PermitSource.PAYSTATION)
PULLED_SOURCES = (PermitSource.PARKMOBILE,)  # sessions ParkOps reads from a vendor (a task)


class SoldOut(DomainError):
    """The lot (or a zone) has nothing left for the period: shown as is, and the waitlist is
    offered; partners get a 409."""


class SourceNotAllowed(NotAllowed):
    """A partner's key acts for other sources than the one named (answered 403)."""


@dataclass(frozen=True)
class Partner:
    """Who records a third-party permit: the sources its API key acts for, and whether the key
    holds ``permits:over-allowance`` (it may record past a lot's or a zone's limit)."""

    sources: frozenset[str]
    over_allowance: bool = False

    def default_source(self, fallback: str) -> str:
        """The source a call that names none records for: the key's only source, else ``fallback``."""
        return next(iter(self.sources)) if len(self.sources) == 1 else fallback

    def owns(self, permit: Permit | PermitView) -> bool:
        """Its own permits: third-party permits of one of its sources."""
        source = str(permit.source)
        return permit.external_id is not None and source in THIRD_PARTY_SOURCES and source in self.sources


# --- views -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Availability:
    lot_id: int
    allowance: int
    taken: int  # sold, held by checkouts, and held by open waitlist offers

    @property
    def available(self) -> int:
        return max(0, self.allowance - self.taken)


@dataclass(frozen=True)
class PermitView:
    id: int
    number: str
    reference: str
    kind: str
    status: str
    source: str
    external_id: str | None
    lot_id: int | None
    lot_name: str | None
    zone_id: int | None
    zone_name: str | None
    product_id: int | None
    product_name: str | None
    plates: tuple[str, ...]
    valid_from: datetime
    valid_to: datetime
    amount_cents: int
    currency: str
    email: str | None
    user_id: int | None
    over_allowance: bool = False

    def valid_at(self, moment: datetime) -> bool:
        return self.status == PermitStatus.ACTIVE and self.valid_from <= moment < self.valid_to


def view(permit: Permit) -> PermitView:
    return PermitView(
        id=permit.id,
        number=permit.number,
        reference=permit.reference,
        kind=str(permit.kind),
        status=str(permit.status),
        source=str(permit.source),
        external_id=permit.external_id,
        lot_id=permit.lot_id,
        lot_name=permit.lot.name if permit.lot else None,
        zone_id=permit.zone_id,
        zone_name=permit.zone.name if permit.zone else None,
        product_id=permit.product_id,
        product_name=permit.product.name if permit.product else None,
        plates=tuple(vehicle.plate for vehicle in permit.vehicles),
        valid_from=permit.valid_from,
        valid_to=permit.valid_to,
        amount_cents=permit.amount_cents,
        currency=permit.currency,
        email=permit.email,
        user_id=permit.user_id,
        over_allowance=permit.over_allowance,
    )


def get_permit(session: Session, permit_id: int) -> PermitView:
    permit = session.get(Permit, permit_id)
    if permit is None:
        raise NotFound("That permit does not exist.")
    return view(permit)


# --- availability ------------------------------------------------------------------------------


def _awaiting_processor() -> ColumnElement[bool]:
    """A pending permit whose payment is still pending: the card may have been charged."""
    return (
        select(PaymentAllocation.id)
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(PaymentAllocation.permit_id == Permit.id, Payment.status == PaymentStatus.PENDING)
        .exists()
    )


def _holding(held_since: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """Permits that hold a space: active ones, pending ones still within their hold (created
    after ``held_since``: now less ``HOLD``), and pending ones past it whose payment is unresolved
    (a card charged while the connection dropped: the space is the buyer's until the processor
    says otherwise, see ``expire_holds``)."""
    return or_(
        Permit.status == PermitStatus.ACTIVE,
        and_(
            Permit.status == PermitStatus.PENDING, or_(Permit.created_at > held_since, _awaiting_processor())
        ),
    )


def lot_taken(
    session: Session, lot_ids: Sequence[int], start: datetime, end: datetime, now: datetime
) -> dict[int, int]:
    """What counts against each lot's allowance for ``[start, end)`` (the module's rule); the
    caller holds the lot's lock when it sells on the answer."""
    permits = session.execute(
        select(Permit.lot_id, func.count(Permit.id))
        .where(
            Permit.lot_id.in_(lot_ids),
            _holding(now - HOLD),
            Permit.valid_from < end,
            Permit.valid_to > start,
        )
        .group_by(Permit.lot_id)
    )
    offers = session.execute(
        select(WaitlistEntry.lot_id, func.count(WaitlistEntry.id))
        .where(
            WaitlistEntry.lot_id.in_(lot_ids),
            WaitlistEntry.status == WaitlistStatus.OFFERED,
            WaitlistEntry.offer_expires_at > now,
        )
        .group_by(WaitlistEntry.lot_id)
    )
    taken = dict.fromkeys(lot_ids, 0)
    for lot_id, count in [*permits, *offers]:
        taken[lot_id] += count
    return taken


def availability(
    session: Session, lot_ids: Iterable[int], start: datetime, end: datetime, now: datetime
) -> dict[int, Availability]:
    """What each lot has left for ``[start, end)``; unknown lots are absent."""
    lots = {lot.id: lot for lot in session.scalars(select(Lot).where(Lot.id.in_(list(lot_ids))))}
    if not lots:
        return {}
    taken = lot_taken(session, list(lots), start, end, now)
    return {lot_id: Availability(lot_id, lot.allowance, taken[lot_id]) for lot_id, lot in lots.items()}


def lot_availability(
    session: Session, lot_id: int, start: datetime, end: datetime, now: datetime
) -> Availability:
    found = availability(session, [lot_id], start, end, now)
    if lot_id not in found:
        raise NotFound("That lot does not exist.")
    return found[lot_id]


def zone_taken(
    session: Session, zone_ids: Sequence[int], start: datetime, end: datetime, now: datetime
) -> dict[int, int]:
    """What counts against each zone's capacity for ``[start, end)``: its zone permits that hold a
    space and its pay-station records (ParkMobile and others), overlapping the period."""
    permits = session.execute(
        select(Permit.zone_id, func.count(Permit.id))
        .where(
            Permit.zone_id.in_(zone_ids),
            _holding(now - HOLD),
            Permit.valid_from < end,
            Permit.valid_to > start,
        )
        .group_by(Permit.zone_id)
    )
    records = session.execute(
        select(PayStationRecord.zone_id, func.count(PayStationRecord.id))
        .where(
            PayStationRecord.zone_id.in_(zone_ids),
            PayStationRecord.start_at < end,
            PayStationRecord.end_at > start,
        )
        .group_by(PayStationRecord.zone_id)
    )
    taken = dict.fromkeys(zone_ids, 0)
    for zone_id, count in [*permits, *records]:
        taken[zone_id] += count
    return taken


# --- pricing -----------------------------------------------------------------------------------


def local_day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC)


def term_window(product: PermitProduct, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """A term permit is valid from local midnight of its first day to local midnight after its
    last day."""
    if product.term_start is None or product.term_end is None:
        raise ValidationFailed({"product": "this permit has no term dates; ask the parking office"})
    return local_day_start(product.term_start, tz), local_day_start(product.term_end + timedelta(days=1), tz)


def quote(product: PermitProduct, start: datetime, end: datetime) -> int:
    """The price in cents for ``[start, end)``: hourly and daily prices are charged per started
    hour or day (a driver who stays 61 minutes pays two hours, as at a meter)."""
    if end <= start:
        raise ValidationFailed({"end": "must be after the start"})
    minutes = (end - start).total_seconds() / 60
    if product.max_duration_minutes and minutes > product.max_duration_minutes:
        raise ValidationFailed(
            {"duration": f"at most {duration_text(product.max_duration_minutes)} for this permit"}
        )
    if product.pricing == Pricing.HOURLY:
        return math.ceil(minutes / 60) * product.price_cents
    if product.pricing == Pricing.DAILY:
        return math.ceil(minutes / (24 * 60)) * product.price_cents
    return product.price_cents


def duration_text(minutes: int) -> str:
    """How a length reads in limits and choices: "90 minutes", "2 hours", "1 day"."""
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return f"{days} day{'s' if days != 1 else ''}"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minutes"


# --- selling -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PermitRequest:
    """One permit to sell, already priced and with plates cleaned (``plates.clean_plate``)."""

    lot_id: int
    product_id: int
    plates: tuple[tuple[str, str], ...]  # (as typed, normalised)
    valid_from: datetime
    valid_to: datetime
    amount_cents: int
    currency: str
    email: str | None
    user_id: int | None
    source: PermitSource = PermitSource.PORTAL


def lock_lot(session: Session, lot_id: int | ScalarSelect[int]) -> int:
    """Take the lot's row before reading anything (see the module's docstring); returns how many
    rows were taken (0: no such lot). Waitlist offers, joins and allowance changes take it too, so
    everything that changes a lot's count queues behind one lock. ``lot_id`` may be a subquery
    (the lot of a product), so even that look-up happens after the lock."""
    locked = session.execute(update(Lot).where(Lot.id == lot_id).values(capacity=Lot.capacity))
    return int(locked.rowcount or 0)  # type: ignore[attr-defined]


def lock_zone(session: Session, zone_id: int) -> int:
    """``lock_lot`` for a zone: whatever counts against a zone's capacity queues behind its row."""
    locked = session.execute(update(LotZone).where(LotZone.id == zone_id).values(capacity=LotZone.capacity))
    return int(locked.rowcount or 0)  # type: ignore[attr-defined]


def _locked_lot(session: Session, lot_id: int) -> Lot:
    if lock_lot(session, lot_id) == 0:
        raise NotFound("That lot does not exist.")
    lot = session.get(Lot, lot_id, populate_existing=True)
    assert lot is not None  # just updated
    return lot


def new_number(kind: PermitKind | str) -> str:
    """Short enough to read over the phone, random enough not to be guessed."""
    prefix = "S" if kind == PermitKind.STANDARD else "T"
    return f"{prefix}-{token_source.token_hex(4).upper()}"


# The checkout's statements are built once, with named parameters (``_statements``): building
# and keying a statement costs more CPU than running it, and a checkout runs a dozen.
_HOLD_COLUMNS = (
    "number",
    "reference",
    "kind",
    "status",
    "source",
    "user_id",
    "email",
    "lot_id",
    "product_id",
    "valid_from",
    "valid_to",
    "amount_cents",
    "currency",
    "over_allowance",
    "created_at",
    "updated_at",
)


def _buyer_offers(buyer: str) -> Select[int]:
    """The open waitlist offers of a product (``:offer_product``) to the buyer at ``:at``, oldest
    first: by account (``buyer`` "user", ``:buyer_user``) or by e-mail ("email", ``:buyer_email``,
    lower case)."""
    who = (
        WaitlistEntry.user_id == bindparam("buyer_user")
        if buyer == "user"
        else func.lower(WaitlistEntry.email) == bindparam("buyer_email")
    )
    return (
        select(WaitlistEntry.id)
        .where(
            WaitlistEntry.product_id == bindparam("offer_product"),
            WaitlistEntry.status == WaitlistStatus.OFFERED,
            WaitlistEntry.offer_expires_at > bindparam("at"),
            who,
        )
        .order_by(WaitlistEntry.offered_at)
    )


def _buyer(user_id: int | None, email: str | None) -> tuple[str, dict[str, object]]:
    """How a buyer's waitlist offers are found (``_buyer_offers``): "none" without either."""
    if user_id is not None:
        return "user", {"buyer_user": user_id}
    if email:
        return "email", {"buyer_email": email.lower()}
    return "none", {}


@functools.cache
def _hold(buyer: str) -> Insert:
    """The availability count and the hold in one statement: ``INSERT INTO permits ... SELECT
    :values WHERE taken < :allowance RETURNING id``, where taken is ``lot_taken`` for
    ``:hold_lot`` over ``[:hold_from, :hold_to)`` at ``:at``, less the space the buyer's own open
    offer holds. Under the lot's lock, no row inserted means sold out."""
    columns = Permit.__table__.c
    start: BindParameter[datetime] = bindparam("hold_from")
    end: BindParameter[datetime] = bindparam("hold_to")
    now: BindParameter[datetime] = bindparam("at")
    held = (
        select(func.count(Permit.id))
        .where(
            Permit.lot_id == bindparam("hold_lot"), _holding(bindparam("held_since")), Permit.valid_from < end
        )
        .where(Permit.valid_to > start)
        .scalar_subquery()
    )
    offers = (
        select(func.count(WaitlistEntry.id))
        .where(
            WaitlistEntry.lot_id == bindparam("hold_lot"),
            WaitlistEntry.status == WaitlistStatus.OFFERED,
            WaitlistEntry.offer_expires_at > now,
        )
        .scalar_subquery()
    )
    taken = held + offers
    if buyer != "none":
        taken = taken - case((_buyer_offers(buyer).exists(), 1), else_=0)
    values = select(*(bindparam(f"new_{name}", type_=columns[name].type) for name in _HOLD_COLUMNS))
    return (
        insert(Permit)
        .from_select(list(_HOLD_COLUMNS), values.where(taken < bindparam("allowance")))
        .returning(Permit.id)
    )


@functools.cache
def _statements() -> dict[str, Executable]:
    """The other statements of a sale, each with named parameters."""
    held_by_payment = select(PaymentAllocation.permit_id).where(
        PaymentAllocation.payment_id == bindparam("payment_id"), PaymentAllocation.permit_id.is_not(None)
    )
    return {
        "lock": update(Lot).where(Lot.id == bindparam("lot_id")).values(capacity=Lot.capacity),  # lock_lot
        "lot_and_product": select(
            Lot.name,
            Lot.capacity,
            Lot.permits_allowed,
            Lot.is_active,
            Lot.sells_standard,
            Lot.sells_temporary,
            PermitProduct.lot_id.label("product_lot_id"),
            PermitProduct.kind,
            PermitProduct.name.label("product_name"),
            PermitProduct.is_active.label("product_active"),
        )
        .outerjoin(PermitProduct, PermitProduct.id == bindparam("product_id"))
        .where(Lot.id == bindparam("lot_id")),
        "plates": insert(PermitVehicle),
        "activate": update(Permit)
        .where(Permit.id.in_(held_by_payment), Permit.status == PermitStatus.PENDING)
        .values(status=PermitStatus.ACTIVE)
        .returning(Permit.product_id, Permit.user_id, Permit.email),
        "release": update(Permit)
        .where(Permit.id.in_(held_by_payment), Permit.status == PermitStatus.PENDING)
        .values(status=PermitStatus.CANCELLED),
        "views": select(
            *Permit.__table__.c,
            Lot.name.label("lot_name"),
            LotZone.name.label("zone_name"),
            PermitProduct.name.label("product_name"),
            PermitVehicle.plate,
        )
        .outerjoin(Lot, Lot.id == Permit.lot_id)
        .outerjoin(LotZone, LotZone.id == Permit.zone_id)
        .outerjoin(PermitProduct, PermitProduct.id == Permit.product_id)
        .outerjoin(PermitVehicle, PermitVehicle.permit_id == Permit.id)
        .where(Permit.id.in_(held_by_payment))
        .order_by(Permit.id, PermitVehicle.id),
        **{
            f"fulfil_{buyer}": update(WaitlistEntry)
            .where(WaitlistEntry.id == _buyer_offers(buyer).limit(1).scalar_subquery().correlate(None))
            .values(status=WaitlistStatus.FULFILLED)
            for buyer in ("user", "email")
        },
    }


def reserve(session: Session, request: PermitRequest, now: datetime) -> PermitView:
    """Hold a space: a ``pending`` permit, or ``SoldOut``. Must run at the start of its own
    transaction (the caller commits it before charging the card).

    Four statements, as a checkout's throughput depends on them: the lot's lock, one read of the
    lot and the product, the availability count and the hold in one (``_hold``), and the plates.
    Core statements on the session's connection: none of the ORM's per-statement work."""
    sql, statements = session.connection(), _statements()
    if not sql.execute(statements["lock"], {"lot_id": request.lot_id}).rowcount:
        raise NotFound("That lot does not exist.")
    lot = sql.execute(
        statements["lot_and_product"], {"lot_id": request.lot_id, "product_id": request.product_id}
    ).one()
    if lot.product_lot_id != request.lot_id or not lot.product_active:
        raise ValidationFailed({"product": "this permit is not sold in this lot any more"})
    sells = lot.sells_standard if lot.kind == PermitKind.STANDARD else lot.sells_temporary
    if not lot.is_active or not sells:
        raise ValidationFailed({"product": f"{lot.name} does not sell {lot.kind} permits now"})
    if not request.plates or len(request.plates) > MAX_PLATES:
        raise ValidationFailed({"plates": f"one to {MAX_PLATES} licence plates"})
    values: dict[str, object] = {
        "number": new_number(lot.kind),
        "reference": new_reference(),
        "kind": PermitKind(lot.kind),
        "status": PermitStatus.PENDING,
        "source": request.source,
        "user_id": request.user_id,
        "email": request.email,
        "lot_id": request.lot_id,
        "product_id": request.product_id,
        "valid_from": request.valid_from,
        "valid_to": request.valid_to,
        "amount_cents": request.amount_cents,
        "currency": request.currency,
        "over_allowance": False,
        "created_at": now,
        "updated_at": now,
    }
    buyer, who = _buyer(request.user_id, request.email)
    permit_id = sql.scalar(
        _hold(buyer),
        {
            **{f"new_{name}": value for name, value in values.items()},
            **who,
            "hold_lot": request.lot_id,
            "offer_product": request.product_id,
            "hold_from": request.valid_from,
            "hold_to": request.valid_to,
            "at": now,
            "held_since": now - HOLD,
            "allowance": lot.capacity if lot.permits_allowed is None else lot.permits_allowed,
        },
    )
    if permit_id is None:
        raise SoldOut(f"{lot.name} is sold out for that time.")
    sql.execute(
        statements["plates"],
        [
            {"permit_id": permit_id, "plate": typed, "plate_normalized": normal}
            for typed, normal in request.plates
        ],
    )
    return PermitView(
        id=permit_id,
        number=str(values["number"]),
        reference=str(values["reference"]),
        kind=str(values["kind"]),
        status=str(PermitStatus.PENDING),
        source=str(request.source),
        external_id=None,
        lot_id=request.lot_id,
        lot_name=lot.name,
        zone_id=None,
        zone_name=None,
        product_id=request.product_id,
        product_name=lot.product_name,
        plates=tuple(typed for typed, _normal in request.plates),
        valid_from=request.valid_from,
        valid_to=request.valid_to,
        amount_cents=request.amount_cents,
        currency=request.currency,
        email=request.email,
        user_id=request.user_id,
    )


def _open_offer(
    session: Session, product_id: int, user_id: int | None, email: str | None, now: datetime
) -> WaitlistEntry | None:
    """The buyer's open waitlist offer for this product (by account, else by email), if any."""
    buyer, who = _buyer(user_id, email)
    if buyer == "none":
        return None
    offer_id = session.scalar(_buyer_offers(buyer).limit(1), {**who, "offer_product": product_id, "at": now})
    return None if offer_id is None else session.get(WaitlistEntry, offer_id)


def activate(session: Session, permit_id: int, now: datetime) -> PermitView:
    """The charge succeeded: the held permit becomes valid, and the buyer's waitlist offer for it,
    if any, is fulfilled (its held space is now this permit). Activating twice changes nothing."""
    permit = session.get(Permit, permit_id)
    if permit is None:
        raise NotFound("That permit does not exist.")
    if permit.status == PermitStatus.PENDING:
        permit.status = PermitStatus.ACTIVE
        if permit.product_id is not None:
            offer = _open_offer(session, permit.product_id, permit.user_id, permit.email, now)
            if offer is not None:
                offer.status = WaitlistStatus.FULFILLED
        session.flush()
    return view(permit)


def release(session: Session, permit_id: int) -> None:
    """The charge failed or was declined: give the held space back."""
    permit = session.get(Permit, permit_id)
    if permit is not None and permit.status == PermitStatus.PENDING:
        permit.status = PermitStatus.CANCELLED
        session.flush()


def activate_paid(session: Session, payment_id: int, now: datetime) -> list[PermitView]:
    """``activate`` for each permit the payment holds, in id order: one UPDATE for them all, one
    per permit whose buyer may hold a waitlist offer, and one read of the views (a checkout's
    settle, while it holds the payment's row)."""
    sql, statements = session.connection(), _statements()
    activated = sql.execute(statements["activate"], {"payment_id": payment_id}).all()
    for product_id, user_id, email in activated:
        buyer, who = _buyer(user_id, email)
        if product_id is not None and buyer != "none":
            sql.execute(statements[f"fulfil_{buyer}"], {**who, "offer_product": product_id, "at": now})
    return payment_views(session, payment_id)


def release_unpaid(session: Session, payment_id: int) -> None:
    """``release`` for each permit the payment holds, in one statement."""
    session.connection().execute(_statements()["release"], {"payment_id": payment_id})


def payment_views(session: Session, payment_id: int) -> list[PermitView]:
    """The views of the permits a payment is for, in id order, read in one statement (no ORM
    objects: a checkout's settle builds its receipts from these)."""
    rows = session.connection().execute(_statements()["views"], {"payment_id": payment_id}).all()
    plates: dict[int, list[str]] = {}
    first: dict[int, Row[Any]] = {}
    for row in rows:
        first.setdefault(row.id, row)
        if row.plate is not None:
            plates.setdefault(row.id, []).append(row.plate)
    return [
        PermitView(
            id=row.id,
            number=row.number,
            reference=row.reference,
            kind=str(row.kind),
            status=str(row.status),
            source=str(row.source),
            external_id=row.external_id,
            lot_id=row.lot_id,
            lot_name=row.lot_name,
            zone_id=row.zone_id,
            zone_name=row.zone_name,
            product_id=row.product_id,
            product_name=row.product_name,
            plates=tuple(plates.get(row.id, ())),
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            amount_cents=row.amount_cents,
            currency=row.currency,
            email=row.email,
            user_id=row.user_id,
            over_allowance=row.over_allowance,
        )
        for row in first.values()
    ]


def expire_holds(session: Session, now: datetime) -> int:
    """Cancel pending permits whose hold has lapsed (a checkout that never came back); returns
    how many. They already stopped counting against the allowance when the hold lapsed. A hold
    whose payment is still pending is kept, and keeps its space: the card may have been charged,
    and only the processor can say (``payments.reconcile_pending`` settles or releases it)."""
    unresolved = (
        select(PaymentAllocation.permit_id)
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(Payment.status == PaymentStatus.PENDING, PaymentAllocation.permit_id.is_not(None))
    )
    result = session.execute(
        update(Permit)
        .where(
            Permit.status == PermitStatus.PENDING,
            Permit.created_at <= now - HOLD,
            Permit.id.not_in(unresolved),
        )
        .values(status=PermitStatus.CANCELLED)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- permits sold by other systems ---------------------------------------------------------------


@dataclass(frozen=True)
class ExternalPermit:
    """A permit a pay-and-display machine, HotSpot or another partner sold (validated by
    ``record_external_permit``)."""

    source: object
    external_id: object
    plate: object
    lot: object = None  # a lot's name or code
    zone: object = None  # a lot zone's name
    start: object = None  # datetime, or ISO-8601 text with an offset
    end: object = None
    amount_cents: object = 0
    currency: object = None  # None: the site's currency (System Settings > General)


def _instant(value: object, field: str, errors: dict[str, str]) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            errors[field] = "an ISO-8601 date and time with its offset, e.g. 2026-11-28T09:30:00-05:00"
            return None
    else:
        errors[field] = "required"
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        errors[field] = "needs a time zone offset (e.g. -05:00 or Z)"
        return None
    if not in_service_range(moment):
        errors[field] = f"a date between {FIRST_YEAR} and {LAST_YEAR}"
        return None
    return moment.astimezone(UTC)


def _text_field(value: object) -> str:
    """Stripped text, or "" for anything else, control characters included (PostgreSQL refuses
    NUL, and no name or id of ours contains one)."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    return "" if any(ord(char) < 32 for char in text) else text


def find_lot(session: Session, name: str) -> Lot | None:
    """A lot by its name or its code, ignoring case (partners type either)."""
    wanted = name.strip().casefold()
    return session.scalar(
        select(Lot).where(or_(func.lower(Lot.name) == wanted, func.lower(Lot.code) == wanted))
    )


def find_zone(session: Session, name: str) -> LotZone | None:
    return session.scalar(select(LotZone).where(func.lower(LotZone.name) == name.strip().casefold()))


def _find_external(session: Session, source: PermitSource, external_id: str) -> Permit | None:
    return session.scalar(
        select(Permit)
        .options(selectinload(Permit.vehicles))
        .where(Permit.source == source, Permit.external_id == external_id)
        .execution_options(populate_existing=True)
    )


def _check_source(partner: Partner, source: PermitSource) -> None:
    if source.value not in partner.sources:
        acts_for = ", ".join(sorted(partner.sources))
        raise SourceNotAllowed(
            f"this API key records {acts_for} permits, not {source.value}"
            if acts_for
            else "this API key acts for no permit source yet: an administrator sets its sources (API Keys)"
        )


def _limit(
    session: Session, lot: Lot | None, zone: LotZone | None, start: datetime, end: datetime, now: datetime
) -> tuple[str, int | None, int]:
    """Lock the permit's lot or zone, then count: ``(what, limit, taken)``; limit None: none set."""
    if lot is not None:
        locked = _locked_lot(session, lot.id)
        return locked.name, locked.allowance, lot_taken(session, [lot.id], start, end, now)[lot.id]
    assert zone is not None
    lock_zone(session, zone.id)
    capacity = session.scalar(select(LotZone.capacity).where(LotZone.id == zone.id))
    if capacity is None:
        return f"zone {zone.name}", None, 0
    return f"zone {zone.name}", capacity, zone_taken(session, [zone.id], start, end, now)[zone.id]


def _full(what: str, limit: int) -> SoldOut:
    return SoldOut(
        f"{what[0].upper()}{what[1:]} has no space left for that time: "
        f"all {limit} permit{'s' if limit != 1 else ''} it allows are taken. Nothing was recorded."
    )


def record_external_permit(
    session: Session, permit: ExternalPermit, *, partner: Partner, now: datetime
) -> tuple[PermitView, bool]:
    """Store a permit sold elsewhere; ``(permit, created)``. A second call with the same source
    and external id returns the first permit unchanged (``created`` False), even once the lot is
    full: partners retry. ``SourceNotAllowed`` for a source the partner does not act for;
    ``SoldOut`` past the lot's allowance or the zone's capacity (the module's rule) unless the
    partner may go over, which the permit then records. Like ``reserve``, it takes the lot's or
    zone's lock before counting; on SQLite nothing before it in the transaction may have read."""
    errors: dict[str, str] = {}
    try:
        if not isinstance(permit.source, str):
            raise ValueError("not a source name")
        source = PermitSource(permit.source)
        if source not in THIRD_PARTY_SOURCES:
            raise ValueError
    except ValueError:
        errors["source"] = "one of " + ", ".join(s.value for s in THIRD_PARTY_SOURCES)
        source = PermitSource.API
    else:
        _check_source(partner, source)
    external_id = _text_field(permit.external_id)
    if not external_id or len(external_id) > MAX_EXTERNAL_ID:
        errors["external_id"] = f"required, at most {MAX_EXTERNAL_ID} characters"
    if not errors:
        existing = _find_external(session, source, external_id)
        if existing is not None:
            return view(existing), False
    plate = None
    try:
        plate = clean_plate(permit.plate)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    lot = zone = None
    lot_name = _text_field(permit.lot)
    zone_name = _text_field(permit.zone)
    if bool(lot_name) == bool(zone_name):
        errors["lot"] = "give either a lot or a zone"
    elif lot_name:
        lot = find_lot(session, lot_name)
        if lot is None:
            errors["lot"] = "no lot has this name or code"
    else:
        zone = find_zone(session, zone_name)
        if zone is None:
            errors["zone"] = "no lot zone has this name (Parking > Lot Zones)"
    start = _instant(permit.start, "start", errors)
    end = _instant(permit.end, "end", errors)
    if start and end and end <= start:
        errors["end"] = "must be after the start"
    amount = permit.amount_cents
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_AMOUNT_CENTS:
        errors["amount_cents"] = "a whole number of cents, 0 or more"
    given = system_settings.currency(session) if permit.currency is None else permit.currency
    currency = given.strip().upper() if isinstance(given, str) else ""
    if len(currency) != 3 or not currency.isalpha():
        errors["currency"] = "a three-letter currency code such as CAD"
    if errors:
        raise ValidationFailed(errors)
    assert plate and start and end and isinstance(amount, int)
    what, limit, taken = _limit(session, lot, zone, start, end, now)
    existing = _find_external(session, source, external_id)  # stored while this call waited for the lock
    if existing is not None:
        return view(existing), False
    over = limit is not None and taken >= limit
    if over and not partner.over_allowance:
        assert limit is not None
        raise _full(what, limit)
    row = Permit(
        number=new_number(PermitKind.TEMPORARY),
        kind=PermitKind.TEMPORARY,
        status=PermitStatus.ACTIVE,
        source=source,
        external_id=external_id,
        lot_id=lot.id if lot else None,
        zone_id=zone.id if zone else None,
        valid_from=start,
        valid_to=end,
        amount_cents=amount,
        currency=currency,
        over_allowance=over,
        created_at=now,
    )
    row.vehicles = [PermitVehicle(plate=plate[0], plate_normalized=plate[1])]
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # The same permit arrived twice at once: the other request stored it first.
        existing = _find_external(session, source, external_id)
        if existing is None:
            raise
        return view(existing), False
    return view(row), True


# --- whether a plate may park ------------------------------------------------------------------


@dataclass(frozen=True)
class PaidSession:
    """A pay-station record that covers the plate."""

    id: int
    source: str
    zone_name: str | None
    lot_id: int | None
    start_at: datetime
    end_at: datetime


@dataclass(frozen=True)
class PlateCheck:
    plate: str  # normalised
    lot_id: int
    lot_name: str
    at: datetime
    valid: bool
    reason: str
    permits: tuple[PermitView, ...]  # valid here and now
    sessions: tuple[PaidSession, ...]  # pay-station records valid here and now
    elsewhere: tuple[PermitView, ...]  # the plate's other current or recent permits, for the officer


def zones_at(session: Session, lot_id: int, at: datetime, tz: ZoneInfo) -> dict[int, str]:
    """The zones scheduled on the lot at ``at`` (site-local day and time; the end minute is
    included, so 00:00-23:59 covers the whole day)."""
    local = at.astimezone(tz)
    minute = local.time().replace(second=0, microsecond=0)
    rows = session.execute(
        select(
            LotZone.id,
            LotZone.name,
            LotZoneSchedule.days,
            LotZoneSchedule.start_time,
            LotZoneSchedule.end_time,
        )
        .join(LotZoneSchedule, LotZoneSchedule.zone_id == LotZone.id)
        .where(LotZoneSchedule.lot_id == lot_id)
    )
    return {
        zone_id: name
        for zone_id, name, days, start, end in rows
        if len(days) == 7 and days[local.weekday()] == "1" and start <= minute <= end
    }


PAID = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


def issued() -> ColumnElement[bool]:
    """Permits that were ever in force: active ones, and cancelled ones that had been (a refund, a
    partner's cancellation). Not the holds of checkouts (``reserve``): pending, or cancelled with
    a payment that never went through (declined, failed, abandoned), which were never permits."""
    unpaid = (
        select(PaymentAllocation.id)
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(PaymentAllocation.permit_id == Permit.id, Payment.status.not_in(PAID))
        .exists()
    )
    return or_(Permit.status == PermitStatus.ACTIVE, and_(Permit.status == PermitStatus.CANCELLED, ~unpaid))


def check_plate(session: Session, plate: str, lot_id: int, at: datetime, tz: ZoneInfo) -> PlateCheck:
    """May this plate park in this lot at this moment, and why (which permit, zone rule or paid
    session)? Cancelled permits never make a plate valid; checkout holds (``issued``) are not
    shown at all, so a declined card does not read as "permit ... is cancelled"."""
    normalized = normalize_plate(plate)
    if not normalized:
        raise ValidationFailed({"plate": "enter the licence plate"})
    if not in_service_range(at):
        raise ValidationFailed({"at": f"a date between {FIRST_YEAR} and {LAST_YEAR}"})
    lot = session.get(Lot, lot_id)
    if lot is None:
        raise NotFound("That lot does not exist.")
    zones = zones_at(session, lot_id, at, tz)
    candidates = [
        view(permit)
        for permit in session.scalars(
            select(Permit)
            .join(PermitVehicle, PermitVehicle.permit_id == Permit.id)
            .options(selectinload(Permit.vehicles))
            .where(
                PermitVehicle.plate_normalized == normalized,
                Permit.valid_to > at - timedelta(days=1),
                Permit.valid_from <= at + timedelta(days=1),
                issued(),
            )
            .order_by(Permit.valid_to.desc())
        )
    ]
    here = tuple(
        p
        for p in candidates
        if p.valid_at(at) and (p.lot_id == lot_id or (p.zone_id is not None and p.zone_id in zones))
    )
    records = session.scalars(
        select(PayStationRecord).where(
            PayStationRecord.plate_normalized == normalized,
            PayStationRecord.start_at <= at,
            PayStationRecord.end_at > at,
        )
    )
    paid = tuple(
        PaidSession(r.id, r.source, r.zone_name, r.lot_id, r.start_at, r.end_at)
        for r in records
        if r.lot_id == lot_id or (r.zone_id is not None and r.zone_id in zones)
    )
    elsewhere = tuple(p for p in candidates if p not in here)
    return PlateCheck(
        plate=normalized,
        lot_id=lot_id,
        lot_name=lot.name,
        at=at,
        valid=bool(here or paid),
        reason=_reason(here, paid, elsewhere, zones, at, tz),
        permits=here,
        sessions=paid,
        elsewhere=elsewhere,
    )


def _reason(
    here: Sequence[PermitView],
    paid: Sequence[PaidSession],
    elsewhere: Sequence[PermitView],
    zones: dict[int, str],
    at: datetime,
    tz: ZoneInfo,
) -> str:
    """Why the plate may or may not park, in words an officer reads (times in the site's zone)."""

    def when(moment: datetime) -> str:
        return moment_words(moment, at, tz)

    if here:
        permit = here[0]
        where = f"zone {permit.zone_name}" if permit.zone_id else "this lot"
        return f"Valid: {permit.kind} permit {permit.number} for {where}, until {when(permit.valid_to)}."
    if paid:
        record = paid[0]
        where = f"zone {record.zone_name}" if record.zone_name else "this lot"
        return f"Valid: paid at a {record.source} pay station for {where}, until {when(record.end_at)}."
    if not elsewhere:
        return "No permit: this plate has no permit or paid session here now."
    other = elsewhere[0]
    if other.status != PermitStatus.ACTIVE:
        return f"No valid permit: permit {other.number} is {other.status}."
    if other.valid_to <= at:
        return f"No valid permit: permit {other.number} expired at {when(other.valid_to)}."
    if other.valid_from > at:
        return f"No valid permit: permit {other.number} starts at {when(other.valid_from)}."
    if other.zone_id is not None:
        scheduled = ", ".join(sorted(zones.values())) or "none"
        return (
            f"No valid permit: permit {other.number} is for zone {other.zone_name}, which is not scheduled "
            f"on this lot now (zones here now: {scheduled})."
        )
    return f"No valid permit: permit {other.number} is for {other.lot_name}, not this lot."


# --- partners' references, updates, cancellations and zone counts (OC-TOMA) -----------------------
#
# OC-TOMA clients update and delete a permit by the ``referenceID`` ParkOps answered when they pushed
# it: the permit's random ``reference`` (a UUID). A partner reaches only permits of its own sources
# (``Partner.owns``); another partner's reference is "not found", exactly like one that names nothing.


def partner_reference(permit: PermitView) -> str | None:
    """The ``referenceID`` of a permit another system sold; None for ParkOps' own permits."""
    if permit.external_id is None or permit.source not in THIRD_PARTY_SOURCES:
        return None
    return permit.reference


def _by_reference(session: Session, reference: object, partner: Partner) -> Permit:
    try:
        parsed = uuid.UUID(str(reference).strip())
    except ValueError:
        raise ValidationFailed(
            {"referenceID": "the referenceID answered when the permit was pushed"}
        ) from None
    permit = session.scalar(select(Permit).where(Permit.reference == str(parsed)))
    if permit is None or not partner.owns(permit):
        raise NotFound("No permit has this referenceID.")
    return permit


def permit_by_reference(session: Session, reference: object, *, partner: Partner) -> PermitView:
    return view(_by_reference(session, reference, partner))


@dataclass(frozen=True)
class PermitChange:
    """What a partner may change on a permit it sold; None leaves a field as it is."""

    plate: object = None
    end: object = None  # datetime, or ISO-8601 text with an offset
    amount_cents: object = None
    currency: object = None


def update_external_permit(
    session: Session, reference: object, change: PermitChange, *, partner: Partner, now: datetime
) -> PermitView:
    """Extend or shorten a partner's own permit, correct its plate, amount or currency. A cancelled
    permit stays cancelled (``NotAllowed``): a late update must not bring it back. An extension
    is a sale of the added time: it counts like a new permit for ``[old end, new end)`` (``SoldOut``
    when the lot or zone is full then, unless the partner may go over)."""
    permit = _by_reference(session, reference, partner)
    if permit.status == PermitStatus.CANCELLED:
        raise NotAllowed(f"Permit {permit.number} was cancelled; it cannot be changed.")
    errors: dict[str, str] = {}
    plate = end = amount = currency = None
    if change.plate is not None:
        try:
            plate = clean_plate(change.plate)
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if change.end is not None:
        end = _instant(change.end, "end", errors)
        if end is not None and end <= permit.valid_from:
            errors["end"] = "must be after the permit's start"
    if change.amount_cents is not None:
        amount = change.amount_cents
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_AMOUNT_CENTS:
            errors["amount_cents"] = "a whole number of cents, 0 or more"
    if change.currency is not None:
        currency = change.currency.strip().upper() if isinstance(change.currency, str) else ""
        if len(currency) != 3 or not currency.isalpha():
            errors["currency"] = "a three-letter currency code such as CAD"
    if errors:
        raise ValidationFailed(errors)
    if end is not None and end > permit.valid_to and permit.status == PermitStatus.ACTIVE:
        what, limit, taken = _limit(session, permit.lot, permit.zone, permit.valid_to, end, now)
        if limit is not None and taken >= limit:
            if not partner.over_allowance:
                raise _full(what, limit)
            permit.over_allowance = True
    if plate is not None and [v.plate_normalized for v in permit.vehicles] != [plate[1]]:
        permit.vehicles.clear()
        session.flush()  # the old plate's row goes before the new one can take its place
        permit.vehicles.append(PermitVehicle(plate=plate[0], plate_normalized=plate[1]))
    if end is not None:
        permit.valid_to = end
    if isinstance(amount, int):
        permit.amount_cents = amount
    if currency is not None:
        permit.currency = currency
    session.flush()
    return view(permit)


def cancel_external_permit(session: Session, reference: object, *, partner: Partner) -> PermitView:
    """A partner withdrew one of its permits (refund, mistake). Cancelling twice is harmless; the
    row stays so a repeated push of the same permit number still finds it and does not recreate it."""
    permit = _by_reference(session, reference, partner)
    if permit.status != PermitStatus.CANCELLED:
        permit.status = PermitStatus.CANCELLED
        session.flush()
    return view(permit)


@dataclass(frozen=True)
class ZoneCount:
    zone: str
    standard: int
    temporary: int


def zone_stats(session: Session, zone_names: Sequence[str] | None, now: datetime) -> list[ZoneCount]:
    """Active permits valid at ``now`` per zone, by kind: permits sold for the zone, plus permits of
    every lot that has the zone on its schedule (any day or time: a lot's permit holders are
    the zone's regulars). ``zone_names`` None or empty: every zone. Unknown names are refused, so
    that a typo is not read as "no permits"."""
    query = select(LotZone).order_by(LotZone.name)
    wanted = [name.strip() for name in zone_names or () if name and name.strip()]
    zones = list(session.scalars(query))
    if wanted:
        by_name = {zone.name.casefold(): zone for zone in zones}
        unknown = [name for name in wanted if name.casefold() not in by_name]
        if unknown:
            raise ValidationFailed({"zones": "no lot zone has the name " + ", ".join(unknown)})
        zones = list({by_name[name.casefold()].id: by_name[name.casefold()] for name in wanted}.values())
    if not zones:
        return []
    ids = [zone.id for zone in zones]
    valid_now = (
        Permit.status == PermitStatus.ACTIVE,
        Permit.valid_from <= now,
        Permit.valid_to > now,
    )
    counts: dict[tuple[int, str], int] = {}
    for_zone = session.execute(
        select(Permit.zone_id, Permit.kind, func.count(Permit.id))
        .where(Permit.zone_id.in_(ids), *valid_now)
        .group_by(Permit.zone_id, Permit.kind)
    )
    for_lots = session.execute(
        select(LotZoneSchedule.zone_id, Permit.kind, func.count(func.distinct(Permit.id)))
        .join(Permit, Permit.lot_id == LotZoneSchedule.lot_id)
        .where(
            LotZoneSchedule.zone_id.in_(ids),
            # a permit of the zone sold in one of its lots (ParkMobile's) counts once, above
            or_(Permit.zone_id.is_(None), Permit.zone_id != LotZoneSchedule.zone_id),
            *valid_now,
        )
        .group_by(LotZoneSchedule.zone_id, Permit.kind)
    )
    for zone_id, kind, count in [*for_zone, *for_lots]:
        counts[(zone_id, str(kind))] = counts.get((zone_id, str(kind)), 0) + count
    return [
        ZoneCount(
            zone=zone.name,
            standard=counts.get((zone.id, PermitKind.STANDARD.value), 0),
            temporary=counts.get((zone.id, PermitKind.TEMPORARY.value), 0),
        )
        for zone in zones
    ]


def lot_by_reference(session: Session, reference: str) -> Lot | None:
    """A lot by its name or code (what partners type), else by its id when the text is a number."""
    text = reference.strip()
    if not text:
        return None
    lot = find_lot(session, text)
    if lot is None and text.isascii() and text.isdigit() and len(text) < 10:  # "²" is a digit too
        lot = session.get(Lot, int(text))
    return lot
