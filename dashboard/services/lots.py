"""Lot Administration: the lot list, and the lot editor's three tabs (General, Permits & Prices,
Zones & Location).

Why it is shaped this way:

* **Lot group on the General tab.** The seed moved the field there from the LPR section, so sites
  without LPR still put their lots on the real-time maps. "None" is allowed: a lot outside every
  group is sold but shown on no map.
* **Permits allowed may exceed capacity** on purpose: a manager oversells a lot that is never
  physically full (the seed's "the number of available permits can be increased"). Blank means
  "same as capacity" (``Lot.allowance``).
* **Maps follow edits at once.** The group, capacity, allowance, sells flags, active flag and name
  all feed ``occupancy.group_states`` (the permit figure and the popups' lot lines), so a save that
  changed one of them says which groups to refresh (``LotSaved.announce_groups``) and the caller
  publishes with ``announce`` after its unit of work has committed, as ``lot_groups.announce``
  does, so no page re-reads the old state.
* **Money in cents.** Prices are typed and shown in dollars; ``parse_dollars`` refuses negatives
  and fractions of a cent instead of rounding them away.
* **Zones by days.** A schedule puts a zone (``lot_zones``) on the lot for some days of the week
  between two local times; days are stored as the 7-character mask of ``LotZoneSchedule``.

Lots are never deleted here: permits keep a reference to their lot (``ondelete="RESTRICT"``), so a
lot that is no longer sold is made inactive instead.

Why this module is long: it serves the lot list and the three tabs of the lot editor (the same lot's
fields, products and zone schedules), each change checked, audited and announced the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from dashboard.services import audit, system_settings
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.occupancy import announce_changes, permit_counts
from models import Lot, LotGroup, LotZone, LotZoneSchedule, PermitKind, PermitProduct, Pricing, UserType

NAME_MAX = 120
CODE_MAX = 32
ADDRESS_MAX = 200
DESCRIPTION_MAX = 5000
# Far above any real lot, low enough that a typo of three extra zeros is caught.
SPACES_MAX = 100_000
PRICE_MAX_CENTS = 100_000_00
# A temporary permit lasts at most a year; longer is a standard permit.
DURATION_MAX_MINUTES = 366 * 24 * 60
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
TEMPORARY_PRICINGS = (Pricing.HOURLY, Pricing.DAILY, Pricing.FIXED)
# Fields the maps read (``occupancy.group_states``): a change to one is announced.
MAP_FIELDS = frozenset(
    {"name", "lot_group_id", "capacity", "permits_allowed", "sells_standard", "sells_temporary", "is_active"}
)


# ---------------------------------------------------------------------------------------------
# The list


@dataclass(frozen=True)
class LotRow:
    """One line of the Lot Administration list."""

    id: int
    name: str
    code: str | None
    group_id: int | None
    group_name: str | None
    capacity: int
    permits_allowed: int | None
    allowance: int
    sold: int
    sells_standard: bool
    sells_temporary: bool
    is_active: bool
    product_count: int
    zone_names: tuple[str, ...]

    @property
    def oversold(self) -> bool:
        """Permits allowed above capacity: deliberate, but worth a glance in the list."""
        return self.allowance > self.capacity


def list_lots(session: Session, now: datetime) -> list[LotRow]:
    """Every lot, ordered by name, with the valid permits sold now (``occupancy.permit_counts``, the
    same count the maps use) and the zones scheduled on it."""
    lots = session.scalars(
        select(Lot)
        .options(
            selectinload(Lot.lot_group),
            selectinload(Lot.zone_schedules).selectinload(LotZoneSchedule.zone),
        )
        .order_by(Lot.name)
    )
    sold = permit_counts(session, now)
    products = dict(
        session.execute(
            select(PermitProduct.lot_id, func.count(PermitProduct.id))
            .where(PermitProduct.is_active)
            .group_by(PermitProduct.lot_id)
        ).all()
    )
    return [
        LotRow(
            id=lot.id,
            name=lot.name,
            code=lot.code,
            group_id=lot.lot_group_id,
            group_name=lot.lot_group.name if lot.lot_group else None,
            capacity=lot.capacity,
            permits_allowed=lot.permits_allowed,
            allowance=lot.allowance,
            sold=sold.get(lot.id, 0),
            sells_standard=lot.sells_standard,
            sells_temporary=lot.sells_temporary,
            is_active=lot.is_active,
            product_count=products.get(lot.id, 0),
            zone_names=tuple(sorted({schedule.zone.name for schedule in lot.zone_schedules})),
        )
        for lot in lots
    ]


def group_choices(session: Session) -> list[tuple[int, str]]:
    """(id, name) of every lot group, for the General tab's Lot Group dropdown."""
    return [
        (gid, name)
        for gid, name in session.execute(select(LotGroup.id, LotGroup.name).order_by(LotGroup.name))
    ]


def lot_choices(session: Session) -> list[tuple[int, str]]:
    """(id, "name (code)") of every active lot, by name: the lot pickers of officers' screens."""
    rows = session.execute(select(Lot.id, Lot.name, Lot.code).where(Lot.is_active).order_by(Lot.name))
    return [(lot_id, f"{name} ({code})" if code else name) for lot_id, name, code in rows]


def user_type_choices(session: Session) -> list[tuple[int, str]]:
    return [
        (tid, name)
        for tid, name in session.execute(select(UserType.id, UserType.name).order_by(UserType.name))
    ]


# ---------------------------------------------------------------------------------------------
# General and location


@dataclass(frozen=True)
class LotDetail:
    """A lot's own fields, as the editor shows them."""

    id: int
    name: str
    code: str | None
    description: str
    address: str | None
    lot_group_id: int | None
    group_name: str | None
    capacity: int
    permits_allowed: int | None
    is_active: bool
    sells_standard: bool
    sells_temporary: bool
    latitude: float | None
    longitude: float | None

    @property
    def allowance(self) -> int:
        return self.capacity if self.permits_allowed is None else self.permits_allowed


@dataclass(frozen=True)
class GeneralFields:
    """The General tab as typed: raw values (numbers may arrive as text), checked by ``_general``."""

    name: str | None
    code: str | None = None
    description: str | None = None
    address: str | None = None
    lot_group_id: Any = None
    capacity: Any = 0
    permits_allowed: Any = None
    is_active: bool = True
    sells_standard: bool = True
    sells_temporary: bool = False


@dataclass(frozen=True)
class LotSaved:
    """What a save did: ``changes`` as audited ({field: [old, new]}), and the lot groups whose map
    figures changed (announce them with ``announce`` after the commit)."""

    lot: LotDetail
    created: bool
    changes: dict[str, list[Any]] = field(default_factory=dict)
    announce_groups: tuple[int, ...] = ()


def _detail(lot: Lot) -> LotDetail:
    return LotDetail(
        id=lot.id,
        name=lot.name,
        code=lot.code,
        description=lot.description or "",
        address=lot.address,
        lot_group_id=lot.lot_group_id,
        group_name=lot.lot_group.name if lot.lot_group else None,
        capacity=lot.capacity,
        permits_allowed=lot.permits_allowed,
        is_active=lot.is_active,
        sells_standard=lot.sells_standard,
        sells_temporary=lot.sells_temporary,
        latitude=lot.latitude,
        longitude=lot.longitude,
    )


def _lot(session: Session, lot_id: int) -> Lot:
    lot = session.get(Lot, lot_id)
    if lot is None:
        raise NotFound(f"There is no lot with id {lot_id}.")
    return lot


def get_lot(session: Session, lot_id: int) -> LotDetail:
    return _detail(_lot(session, lot_id))


def _text(value: Any) -> str:
    return " ".join(str(value or "").split())


def _whole(value: Any, errors: dict[str, str], key: str, *, maximum: int, blank: str | None) -> int | None:
    """A whole number 0..maximum; ``blank`` is the message for an empty value (None: allowed)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if blank is not None:
            errors[key] = blank
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        errors[key] = "enter a whole number"
        return None
    if not number.is_finite() or number != number.to_integral_value():
        errors[key] = "enter a whole number"
        return None
    if number < 0:
        errors[key] = "cannot be negative"
        return None
    if number > maximum:
        errors[key] = f"at most {maximum:,}"
        return None
    return int(number)


def _optional_id(value: Any) -> int | None:
    if value in (None, "", "none"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _general(session: Session, fields: GeneralFields, lot_id: int | None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    name = _text(fields.name)
    if not name:
        errors["name"] = "enter the lot's name"
    elif len(name) > NAME_MAX:
        errors["name"] = f"at most {NAME_MAX} characters"
    elif session.scalar(select(Lot.id).where(func.lower(Lot.name) == name.lower(), Lot.id != (lot_id or 0))):
        errors["name"] = "another lot already has this name"
    code = _text(fields.code) or None
    if code is not None:
        if len(code) > CODE_MAX:
            errors["code"] = f"at most {CODE_MAX} characters"
        elif session.scalar(
            select(Lot.id).where(func.lower(Lot.code) == code.lower(), Lot.id != (lot_id or 0))
        ):
            errors["code"] = "another lot already has this code"
    description = str(fields.description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        errors["description"] = f"at most {DESCRIPTION_MAX} characters"
    address = _text(fields.address) or None
    if address is not None and len(address) > ADDRESS_MAX:
        errors["address"] = f"at most {ADDRESS_MAX} characters"
    group_id = _optional_id(fields.lot_group_id)
    if group_id is not None and session.get(LotGroup, group_id) is None:
        errors["lot_group_id"] = "choose a lot group from the list, or none"
    capacity = _whole(
        fields.capacity, errors, "capacity", maximum=SPACES_MAX, blank="enter the number of spaces"
    )
    allowed = _whole(fields.permits_allowed, errors, "permits_allowed", maximum=SPACES_MAX, blank=None)
    if errors:
        raise ValidationFailed(errors)
    return {
        "name": name,
        "code": code,
        "description": description,
        "address": address,
        "lot_group_id": group_id,
        "capacity": capacity,
        "permits_allowed": allowed,
        "is_active": bool(fields.is_active),
        "sells_standard": bool(fields.sells_standard),
        "sells_temporary": bool(fields.sells_temporary),
    }


def _apply(lot: Lot, values: dict[str, Any]) -> dict[str, list[Any]]:
    changes = {}
    for key, new in values.items():
        old = getattr(lot, key)
        if old != new:
            changes[key] = [old, new]
            setattr(lot, key, new)
    return changes


def _groups_to_announce(changes: dict[str, list[Any]], *group_ids: int | None) -> tuple[int, ...]:
    if not MAP_FIELDS & changes.keys():
        return ()
    return tuple(sorted({gid for gid in group_ids if gid is not None}))


def create_lot(session: Session, fields: GeneralFields, actor_id: int | None) -> LotSaved:
    values = _general(session, fields, None)
    lot = Lot()
    session.add(lot)
    changes = _apply(lot, values)
    session.flush()
    audit.record(
        session,
        actor_id=actor_id,
        action="lot.create",
        entity_type="lot",
        entity_id=str(lot.id),
        changes=changes,
    )
    session.refresh(lot)
    return LotSaved(_detail(lot), True, changes, _groups_to_announce(changes, lot.lot_group_id))


def update_general(session: Session, lot_id: int, fields: GeneralFields, actor_id: int | None) -> LotSaved:
    """Save the General tab; saving what is already stored changes and audits nothing."""
    lot = _lot(session, lot_id)
    values = _general(session, fields, lot.id)
    old_group = lot.lot_group_id
    changes = _apply(lot, values)
    if changes:
        audit.record(
            session,
            actor_id=actor_id,
            action="lot.update",
            entity_type="lot",
            entity_id=str(lot.id),
            changes=changes,
        )
        session.flush()
        session.refresh(lot)
    return LotSaved(_detail(lot), False, changes, _groups_to_announce(changes, old_group, lot.lot_group_id))


def _coordinate(value: Any, errors: dict[str, str], key: str, limit: int) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        errors[key] = "enter a number in decimal degrees, e.g. 43.4723"
        return None
    if not -limit <= number <= limit:
        errors[key] = f"must be between -{limit} and {limit}"
        return None
    return round(number, 6)


def update_location(
    session: Session, lot_id: int, latitude: Any, longitude: Any, actor_id: int | None
) -> LotSaved:
    """The lot's own point (open data publishes it; the maps pin the lot group). Both or neither:
    half a coordinate places nothing."""
    lot = _lot(session, lot_id)
    errors: dict[str, str] = {}
    lat = _coordinate(latitude, errors, "latitude", 90)
    lon = _coordinate(longitude, errors, "longitude", 180)
    if not errors and (lat is None) != (lon is None):
        errors["longitude" if lon is None else "latitude"] = "enter both latitude and longitude, or neither"
    if errors:
        raise ValidationFailed(errors)
    changes = _apply(lot, {"latitude": lat, "longitude": lon})
    if changes:
        audit.record(
            session,
            actor_id=actor_id,
            action="lot.location",
            entity_type="lot",
            entity_id=str(lot.id),
            changes=changes,
        )
        session.flush()
    return LotSaved(_detail(lot), False, changes)


def announce(client: redis.Redis, saved: LotSaved, now: datetime | None = None) -> None:
    """Publish a committed lot change once per affected group (old and new), so open maps and
    lists re-read them (``occupancy.announce_changes``)."""
    if saved.announce_groups:
        messages = [{"group_id": g, "changed": "lot", "lot_id": saved.lot.id} for g in saved.announce_groups]
        announce_changes(client, messages, now)


# ---------------------------------------------------------------------------------------------
# Permits & Prices


PRICING_UNITS = {
    Pricing.TERM: "per term",
    Pricing.HOURLY: "per hour",
    Pricing.DAILY: "per day",
    Pricing.FIXED: "flat",
}


def format_dollars(cents: int) -> str:
    """ "265.00" for 26500: what the price field shows (no currency sign, so it can be edited)."""
    return f"{Decimal(cents) / 100:,.2f}".replace(",", "")


def parse_dollars(value: Any) -> int:
    """Dollars as typed ("265", "265.5", "$1,200.00") to cents; ``ValueError`` with a message to
    show for anything else (negative, more than two decimals, not a number)."""
    text = str(value if value is not None else "").strip().replace("$", "").replace(",", "")
    if not text:
        raise ValueError("enter a price in dollars (0 for free)")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError("enter a price in dollars, e.g. 265.00") from None
    if not amount.is_finite():
        raise ValueError("enter a price in dollars, e.g. 265.00")
    if amount < 0:
        raise ValueError("cannot be negative")
    # Compared before any arithmetic: "1e999999999" is a finite Decimal, but a hundred times it
    # leaves Decimal's range (``decimal.Overflow``, not a ValueError).
    if amount > Decimal(PRICE_MAX_CENTS) / 100:
        raise ValueError(f"at most {format_dollars(PRICE_MAX_CENTS)}")
    if amount and amount.adjusted() < -2:
        raise ValueError("at most two decimals (whole cents)")
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError("at most two decimals (whole cents)")
    return int(cents)


@dataclass(frozen=True)
class ProductView:
    """One permit product of a lot. ``kind_sold`` is False when the lot does not sell this kind
    (its General tab flag is off): the product exists but is offered nowhere."""

    id: int
    lot_id: int
    kind: PermitKind
    name: str
    pricing: Pricing
    price_cents: int
    currency: str
    term_start: date | None
    term_end: date | None
    max_duration_minutes: int | None
    is_active: bool
    user_type_ids: tuple[int, ...]
    user_type_names: tuple[str, ...]
    kind_sold: bool

    @property
    def price(self) -> str:
        return format_dollars(self.price_cents)

    @property
    def price_label(self) -> str:
        return f"${self.price} {self.currency} {PRICING_UNITS[self.pricing]}"


@dataclass(frozen=True)
class ProductFields:
    """The product form as typed. ``price`` is in dollars; the rest is checked by
    ``_product_values``. Whether it is on sale is not here: Deactivate / Activate say that."""

    kind: str | None
    name: str | None
    pricing: str | None
    price: Any
    term_start: Any = None
    term_end: Any = None
    max_duration_minutes: Any = None
    user_type_ids: Iterable[Any] = ()


def _product_view(product: PermitProduct, lot: Lot) -> ProductView:
    types = sorted(product.eligible_user_types, key=lambda t: t.name)
    kind = PermitKind(product.kind)
    return ProductView(
        id=product.id,
        lot_id=product.lot_id,
        kind=kind,
        name=product.name,
        pricing=Pricing(product.pricing),
        price_cents=product.price_cents,
        currency=product.currency,
        term_start=product.term_start,
        term_end=product.term_end,
        max_duration_minutes=product.max_duration_minutes,
        is_active=product.is_active,
        user_type_ids=tuple(t.id for t in types),
        user_type_names=tuple(t.name for t in types),
        kind_sold=lot.sells_standard if kind is PermitKind.STANDARD else lot.sells_temporary,
    )


def list_products(session: Session, lot_id: int) -> list[ProductView]:
    """Active products first, then standard before temporary, then by term start and name."""
    lot = _lot(session, lot_id)
    products = session.scalars(
        select(PermitProduct)
        .where(PermitProduct.lot_id == lot.id)
        .options(selectinload(PermitProduct.eligible_user_types))
    )
    views = [_product_view(product, lot) for product in products]
    return sorted(
        views,
        key=lambda p: (
            not p.is_active,
            p.kind is not PermitKind.STANDARD,
            p.term_start or date.min,
            p.name.lower(),
        ),
    )


def _product(session: Session, lot_id: int, product_id: int) -> PermitProduct:
    product = session.get(PermitProduct, product_id)
    if product is None or product.lot_id != lot_id:
        raise NotFound(f"Lot {lot_id} has no permit product with id {product_id}.")
    return product


def get_product(session: Session, lot_id: int, product_id: int) -> ProductView:
    return _product_view(_product(session, lot_id, product_id), _lot(session, lot_id))


def _date(value: Any, errors: dict[str, str], key: str) -> date | None:
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    if not text:
        errors[key] = "choose a date"
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        errors[key] = "enter a date as YYYY-MM-DD"
        return None


def _product_values(
    session: Session, lot_id: int, product_id: int | None, fields: ProductFields
) -> dict[str, Any]:
    errors: dict[str, str] = {}
    try:
        kind = PermitKind(str(fields.kind or ""))
    except ValueError:
        raise ValidationFailed({"kind": "choose standard or temporary"}) from None
    name = _text(fields.name)
    if not name:
        errors["name"] = "enter the product's name, e.g. Fall 2026 Term or Hourly"
    elif len(name) > NAME_MAX:
        errors["name"] = f"at most {NAME_MAX} characters"
    elif session.scalar(
        select(PermitProduct.id).where(
            PermitProduct.lot_id == lot_id,
            func.lower(PermitProduct.name) == name.lower(),
            PermitProduct.id != (product_id or 0),
        )
    ):
        errors["name"] = "this lot already has a product with this name"
    try:
        price_cents: int | None = parse_dollars(fields.price)
    except ValueError as exc:
        errors["price"] = str(exc)
        price_cents = None
    values: dict[str, Any] = {"kind": kind, "name": name, "price_cents": price_cents}
    if kind is PermitKind.STANDARD:
        values["pricing"] = Pricing.TERM
        start = _date(fields.term_start, errors, "term_start")
        end = _date(fields.term_end, errors, "term_end")
        if start and end and end < start:
            errors["term_end"] = "must be on or after the term start"
        type_ids = sorted({int(t) for t in fields.user_type_ids if str(t).lstrip("-").isdecimal()})
        types = list(session.scalars(select(UserType).where(UserType.id.in_(type_ids)))) if type_ids else []
        if len(types) != len(type_ids):
            errors["user_type_ids"] = "choose user types from the list"
        elif not types:
            errors["user_type_ids"] = "tick at least one user type: who may buy this permit"
        values.update(term_start=start, term_end=end, max_duration_minutes=None, eligible_user_types=types)
    else:
        try:
            pricing = Pricing(str(fields.pricing or ""))
        except ValueError:
            pricing = None
        if pricing not in TEMPORARY_PRICINGS:
            errors["pricing"] = "choose hourly, daily or fixed"
        minutes = _whole(
            fields.max_duration_minutes,
            errors,
            "max_duration_minutes",
            maximum=DURATION_MAX_MINUTES,
            blank="enter how long the permit may last, in minutes",
        )
        if minutes == 0:
            errors["max_duration_minutes"] = "must be at least 1 minute"
        # Eligible user types are the standard permits' rule; a temporary product's are kept as
        # they are (the demo seeds "everyone"), not silently cleared by an unrelated edit.
        values.update(pricing=pricing, term_start=None, term_end=None, max_duration_minutes=minutes)
    if errors:
        raise ValidationFailed(errors)
    return values


def _product_changes(product: PermitProduct, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Audit-ready ({field: [old, new]}, plain JSON values); sets the new values on ``product``."""
    changes: dict[str, list[Any]] = {}
    for key, new in values.items():
        old = getattr(product, key)
        if key == "eligible_user_types":
            before, after = sorted(t.code for t in old or []), sorted(t.code for t in new)
            if before != after:
                changes[key] = [before, after]
        elif old != new:
            changes[key] = [_plain(old), _plain(new)]
        setattr(product, key, new)
    return changes


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, PermitKind | Pricing):
        return value.value
    return value


def save_product(
    session: Session, lot_id: int, product_id: int | None, fields: ProductFields, actor_id: int | None
) -> ProductView:
    """Add (``product_id`` None) or edit a product. Products are never deleted: sold permits keep
    pointing at them; deactivate one to stop selling it."""
    lot = _lot(session, lot_id)
    product = _product(session, lot.id, product_id) if product_id is not None else None
    values = _product_values(session, lot.id, product_id, fields)
    created = product is None
    if product is None:
        # Priced in the site's currency from now on; an existing product keeps its own.
        product = PermitProduct(lot_id=lot.id, currency=system_settings.currency(session))
        session.add(product)
    changes = _product_changes(product, values)
    session.flush()
    if changes:
        audit.record(
            session,
            actor_id=actor_id,
            action="permit_product.add" if created else "permit_product.update",
            entity_type="permit_product",
            entity_id=str(product.id),
            changes={"lot_id": [None, lot.id], **changes} if created else changes,
        )
    return _product_view(product, lot)


def set_product_active(
    session: Session, lot_id: int, product_id: int, active: bool, actor_id: int | None
) -> ProductView:
    lot = _lot(session, lot_id)
    product = _product(session, lot.id, product_id)
    if product.is_active != active:
        audit.record(
            session,
            actor_id=actor_id,
            action="permit_product.activate" if active else "permit_product.deactivate",
            entity_type="permit_product",
            entity_id=str(product.id),
            changes={"is_active": [product.is_active, active]},
        )
        product.is_active = active
        session.flush()
    return _product_view(product, lot)


# ---------------------------------------------------------------------------------------------
# Zones by days


@dataclass(frozen=True)
class ScheduleView:
    id: int
    lot_id: int
    zone_id: int
    zone_name: str
    days: str
    start_time: time
    end_time: time

    @property
    def days_label(self) -> str:
        return days_label(self.days)

    @property
    def hours_label(self) -> str:
        """ "07:00 until 18:00:59": the end minute is included (``permits.zones_at`` compares whole
        minutes, so 00:00 to 23:59 is the whole day), and the label says so rather than "18:00"."""
        return f"{self.start_time:%H:%M} until {self.end_time:%H:%M}:59"

    @property
    def summary(self) -> str:
        return f"{self.zone_name}: {self.days_label}, {self.hours_label}"


def days_mask(days: Iterable[Any]) -> str:
    """Day numbers (0 = Monday .. 6 = Sunday) to the stored mask, e.g. [0, 1, 2, 3, 4] -> "1111100"."""
    chosen = {int(day) for day in days if str(day).isdecimal() and 0 <= int(day) <= 6}
    return "".join("1" if index in chosen else "0" for index in range(7))


def days_label(mask: str) -> str:
    """ "Every day", "Mon–Fri", "Sat, Sun" or "Mon, Wed, Fri": how a parking sign reads."""
    chosen = [index for index, flag in enumerate(mask) if flag == "1"]
    if len(chosen) == 7:
        return "Every day"
    if not chosen:
        return "No days"
    if len(chosen) >= 3 and chosen == list(range(chosen[0], chosen[-1] + 1)):
        return f"{DAY_NAMES[chosen[0]]}–{DAY_NAMES[chosen[-1]]}"
    return ", ".join(DAY_NAMES[index] for index in chosen)


def parse_hhmm(value: Any) -> time:
    """ "07:30" to a time; ``ValueError`` with a message to show otherwise."""
    match = TIME_RE.match(str(value or "").strip())
    if not match:
        raise ValueError("enter a time as HH:MM (24-hour), e.g. 07:30")
    return time(int(match.group(1)), int(match.group(2)))


def _schedule_view(schedule: LotZoneSchedule) -> ScheduleView:
    return ScheduleView(
        schedule.id,
        schedule.lot_id,
        schedule.zone_id,
        schedule.zone.name,
        schedule.days,
        schedule.start_time,
        schedule.end_time,
    )


def list_schedules(session: Session, lot_id: int) -> list[ScheduleView]:
    lot = _lot(session, lot_id)
    rows = session.scalars(
        select(LotZoneSchedule)
        .join(LotZone, LotZone.id == LotZoneSchedule.zone_id)
        .where(LotZoneSchedule.lot_id == lot.id)
        .options(selectinload(LotZoneSchedule.zone))
        .order_by(LotZone.name, LotZoneSchedule.start_time, LotZoneSchedule.id)
    )
    return [_schedule_view(row) for row in rows]


def add_schedule(
    session: Session,
    lot_id: int,
    zone_id: Any,
    days: Iterable[Any],
    start: Any,
    end: Any,
    actor_id: int | None,
) -> ScheduleView:
    """Put a zone on the lot for some days between two local times ("Add Zone by Days")."""
    lot = _lot(session, lot_id)
    errors: dict[str, str] = {}
    zone_key = _optional_id(zone_id)
    zone = session.get(LotZone, zone_key) if zone_key is not None and zone_key > 0 else None
    if zone is None:
        errors["zone_id"] = "choose a zone (add zones under Manage Lot Zones)"
    mask = days_mask(days)
    if "1" not in mask:
        errors["days"] = "choose at least one day"
    start_time = end_time = None
    try:
        start_time = parse_hhmm(start)
    except ValueError as exc:
        errors["start_time"] = str(exc)
    try:
        end_time = parse_hhmm(end)
    except ValueError as exc:
        errors["end_time"] = str(exc)
    if start_time is not None and end_time is not None and end_time <= start_time:
        errors["end_time"] = "must be after the start time"
    if not errors and session.scalar(
        select(LotZoneSchedule.id).where(
            LotZoneSchedule.lot_id == lot.id,
            LotZoneSchedule.zone_id == zone_key,
            LotZoneSchedule.days == mask,
            LotZoneSchedule.start_time == start_time,
            LotZoneSchedule.end_time == end_time,
        )
    ):
        errors["zone_id"] = "this lot already has this zone at these days and times"
    if errors:
        raise ValidationFailed(errors)
    schedule = LotZoneSchedule(lot=lot, zone=zone, days=mask, start_time=start_time, end_time=end_time)
    session.add(schedule)
    session.flush()
    view = _schedule_view(schedule)
    audit.record(
        session,
        actor_id=actor_id,
        action="lot.zone_schedule.add",
        entity_type="lot",
        entity_id=str(lot.id),
        changes={"zone_schedule": [None, view.summary]},
    )
    return view


def delete_schedule(session: Session, lot_id: int, schedule_id: int, actor_id: int | None) -> ScheduleView:
    schedule = session.get(LotZoneSchedule, schedule_id)
    if schedule is None or schedule.lot_id != lot_id:
        raise NotFound(f"Lot {lot_id} has no zone schedule with id {schedule_id}.")
    view = _schedule_view(schedule)
    session.delete(schedule)
    audit.record(
        session,
        actor_id=actor_id,
        action="lot.zone_schedule.delete",
        entity_type="lot",
        entity_id=str(lot_id),
        changes={"zone_schedule": [view.summary, None]},
    )
    session.flush()
    return view
