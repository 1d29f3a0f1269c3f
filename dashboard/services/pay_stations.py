"""Paid sessions from pay stations, meters and apps, and every temporary sale listed in one place.

The seed stores ParkMobile's permits "locally as temporary permits" that also appear "as paystation
(Cale) records". ParkOps keeps one row per sale: ``import_records`` stores each ParkMobile session
as a temporary ``Permit`` (source ``parkmobile``, external id = ParkMobile's permit id), so it
counts wherever permits count (lot figures, Permits Sold Today, OC-TOMA zone stats, Check a
Plate). ``PayStationRecord`` keeps the sessions of older imports that matched no zone when they
were converted (migration 0015); it is read, never written.

Import rules (``import_records``):

* **Idempotent on (source, external_id)**: a permit read twice is one permit. A re-read permit
  that changed (an extension moves its end, adds to its amount; a corrected plate) updates it;
  one that did not is left alone, so a run that overlaps the previous one writes nothing.
* **Only zones the site knows.** The seed imports a permit only when a lot zone of the same name
  exists. The match ignores case (zone names are unique regardless of case, see ``lot_zones``),
  and an exact-case match wins should old data hold two names differing only in case. Other
  permits are skipped and counted by zone name, so the admin sees which zone to create.
* **Nothing is dropped silently.** An entry that cannot be stored (a plate or id longer than the
  columns, a plate without a letter or digit) is rejected with its reason, for the run log.
* **Its lot.** A session is sold in the one lot whose schedule has its zone at the session's
  start (``_LotOfZone``); when no lot or several do, it is a zone permit (valid wherever the zone
  is scheduled, in no single lot's figure).
* **One rule for every channel** (``dashboard.services.permits``): a session counts against its
  lot's allowance and its zone's capacity, under their locks. It was sold already and cannot be
  refused: one recorded past either limit is kept and flagged ``over_allowance`` (the lists show
  it, the run log counts it by lot or zone).

Lists (``search``, ``every_row``): the pay-station records plus, for Pay Station Status, the
permits pay stations pushed and ParkMobile's (``Scope.PAY_STATIONS``), or, for Temporary Permits,
every temporary permit whoever sold it (``Scope.TEMPORARY``).

Why this module is long: importing paid sessions and listing every temporary sale share the one-row-
per-sale rule and the allowance checks the import makes under the lots' locks.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, tzinfo
from typing import Any

from sqlalchemy import Row, String, Subquery, and_, cast, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, selectinload

from dashboard.services.errors import ValidationFailed
from dashboard.services.open_data import FIRST_YEAR, LAST_YEAR, in_service_range
from dashboard.services.permits import (
    PULLED_SOURCES,
    issued,
    lock_lot,
    lock_zone,
    lot_taken,
    new_number,
    zone_taken,
)
from dashboard.services.plates import normalize_plate
from models import (
    Lot,
    LotZone,
    LotZoneSchedule,
    PayStationRecord,
    Permit,
    PermitKind,
    PermitSource,
    PermitStatus,
    PermitVehicle,
)

PLATE_MAX = 16
EXTERNAL_ID_MAX = 80
ZONE_NAME_MAX = 80
PAGE_SIZE = 50
PAGE_SIZE_MAX = 500
EXPORT_LIMIT = 50_000  # rows in one download: a year of a busy site, and a bounded response
_ID_CHUNK = 500  # ids per IN (...) query: well under SQLite's variable limit
SOURCE_LABELS = {
    "parkmobile": "ParkMobile",
    "cale": "Cale",
    "paystation": "Pay station",
    "hotspot": "HotSpot",
    "api": "API",
    "portal": "Quick checkout",
    "admin": "Office",
}


def source_label(source: str) -> str:
    return SOURCE_LABELS.get(source, source)


# Import


@dataclass(frozen=True)
class IncomingRecord:
    """A vendor's session in plain values: times aware UTC, amount in cents."""

    external_id: str
    plate: str
    zone_name: str
    start_at: datetime
    end_at: datetime
    amount_cents: int
    currency: str
    raw: dict[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ImportResult:
    """What one import did. ``skipped_zones``: (zone name as sent, records) with no local zone of
    that name, most records first; ``rejected``: (which record, why) that could not be stored;
    ``over_capacity``: (zone, records) imported when the zone's capacity was already taken."""

    received: int
    created: int
    updated: int
    unchanged: int
    skipped_zones: tuple[tuple[str, int], ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()
    over_capacity: tuple[tuple[str, int], ...] = ()

    @property
    def skipped(self) -> int:
        return sum(count for _zone, count in self.skipped_zones)

    @property
    def rows_touched(self) -> int:
        return self.created + self.updated


class _ZoneMatcher:
    def __init__(self, zones: Iterable[LotZone]) -> None:
        self._exact: dict[str, LotZone] = {}
        self._folded: dict[str, list[LotZone]] = {}
        for zone in zones:
            self._exact[zone.name] = zone
            self._folded.setdefault(zone.name.casefold(), []).append(zone)

    def find(self, name: str) -> LotZone | None:
        cleaned = " ".join(name.split())
        if cleaned in self._exact:
            return self._exact[cleaned]
        candidates = self._folded.get(cleaned.casefold(), [])
        return candidates[0] if len(candidates) == 1 else None


def _problem(record: IncomingRecord) -> str | None:
    """Why ``record`` cannot be stored as it is, or None."""
    if len(record.external_id) > EXTERNAL_ID_MAX:
        return f"the id is longer than {EXTERNAL_ID_MAX} characters"
    plate = record.plate.strip()
    if not normalize_plate(plate).isalnum():
        return f"the plate {plate!r} is not letters and digits (spaces, dashes and dots aside)"
    if len(plate) > PLATE_MAX:
        return f"the plate {plate!r} is longer than {PLATE_MAX} characters"
    if len(record.zone_name) > ZONE_NAME_MAX:
        return f"the zone name is longer than {ZONE_NAME_MAX} characters"
    if len(record.currency) != 3:
        return f"the currency {record.currency!r} is not a three-letter code"
    if record.end_at <= record.start_at:
        return "it ends before it starts"
    return None


def import_records(
    session: Session, source: str, records: Iterable[IncomingRecord], now: datetime, tz: tzinfo
) -> ImportResult:
    """Store ``records`` of ``source`` as temporary permits (see the module's rules). When a record
    id comes twice in one batch, the later one wins: vendors list changes oldest first. Like every
    sale, it takes the lots' and zones' locks (in id order, lots first) before counting; on SQLite
    nothing before it in the transaction may have read."""
    try:
        pulled = PermitSource(source)
    except ValueError:
        pulled = None
    if pulled not in PULLED_SOURCES:
        raise ValueError(f"source must be one of {', '.join(s.value for s in PULLED_SOURCES)}")
    received = 0
    latest: dict[str, IncomingRecord] = {}
    rejected: list[tuple[str, str]] = []
    for record in records:
        received += 1
        problem = _problem(record)
        if problem:
            rejected.append((f"permit {record.external_id[:EXTERNAL_ID_MAX]}", problem))
            continue
        latest.pop(record.external_id, None)
        latest[record.external_id] = record

    matcher = _ZoneMatcher(session.scalars(select(LotZone)))
    skipped: Counter[str] = Counter()
    matched: list[tuple[IncomingRecord, LotZone]] = []
    for record in latest.values():
        zone = matcher.find(record.zone_name)
        if zone is None:
            skipped[record.zone_name] += 1
        else:
            matched.append((record, zone))

    existing = _existing(session, pulled, [record.external_id for record, _zone in matched])
    lot_of = _LotOfZone(session, {zone.id for _record, zone in matched}, tz)
    placed = [(record, zone, lot_of.find(zone.id, record.start_at)) for record, zone in matched]
    for lot_to_lock in sorted({lot_id for _r, _z, lot_id in placed if lot_id is not None}):
        lock_lot(session, lot_to_lock)  # in id order, so two imports cannot wait on each other
    limited = sorted({zone.id for _record, zone in matched if zone.capacity is not None})
    for zone_id in limited:
        lock_zone(session, zone_id)
    allowances = {
        lot.id: lot.allowance
        for lot in session.scalars(
            select(Lot).where(Lot.id.in_(lot_of.lot_ids())).execution_options(populate_existing=True)
        )
    }
    capacities = dict(
        (zone_id, capacity)
        for zone_id, capacity in session.execute(
            select(LotZone.id, LotZone.capacity).where(LotZone.id.in_(limited))
        )
    )
    lot_names = lot_of.names

    def full(zone: LotZone, lot_id: int | None, start: datetime, end: datetime) -> str | None:
        """What the period would go past (a lot's allowance or the zone's capacity), or None."""
        session.flush()  # the permits of this batch so far count too
        if lot_id is not None and lot_taken(session, [lot_id], start, end, now)[lot_id] >= allowances[lot_id]:
            return lot_names[lot_id]
        capacity = capacities.get(zone.id)
        if capacity is not None and zone_taken(session, [zone.id], start, end, now)[zone.id] >= capacity:
            return f"zone {zone.name}"
        return None

    over: Counter[str] = Counter()
    created = updated = unchanged = 0
    for record, zone, lot_id in placed:
        plate = record.plate.strip().upper()
        normalized = normalize_plate(record.plate)
        values = {
            "zone_id": zone.id,
            "lot_id": lot_id,
            "valid_from": record.start_at,
            "valid_to": record.end_at,
            "amount_cents": record.amount_cents,
            "currency": record.currency.upper(),
        }
        row = existing.get(record.external_id)
        if row is None:
            past = full(zone, lot_id, record.start_at, record.end_at)
            if past is not None:
                over[past] += 1
            permit = Permit(
                number=new_number(PermitKind.TEMPORARY),
                kind=PermitKind.TEMPORARY,
                status=PermitStatus.ACTIVE,
                source=pulled,
                external_id=record.external_id,
                over_allowance=past is not None,
                created_at=now,
                **values,
            )
            permit.vehicles = [PermitVehicle(plate=plate, plate_normalized=normalized)]
            session.add(permit)
            created += 1
            continue
        plates = [(vehicle.plate, vehicle.plate_normalized) for vehicle in row.vehicles]
        if plates == [(plate, normalized)] and all(getattr(row, k) == v for k, v in values.items()):
            unchanged += 1
            continue
        if record.end_at > row.valid_to and row.status == PermitStatus.ACTIVE and not row.over_allowance:
            past = full(zone, lot_id, max(row.valid_to, record.start_at), record.end_at)
            if past is not None:  # an extension is a sale of the added time
                over[past] += 1
                row.over_allowance = True
        if plates != [(plate, normalized)]:
            row.vehicles.clear()
            session.flush()  # the old plate's row goes before the new one can take its place
            row.vehicles.append(PermitVehicle(plate=plate, plate_normalized=normalized))
        for name, value in values.items():
            setattr(row, name, value)
        updated += 1
    session.flush()
    return ImportResult(
        received=received,
        created=created,
        updated=updated,
        unchanged=unchanged,
        skipped_zones=tuple(sorted(skipped.items(), key=lambda item: (-item[1], item[0]))),
        rejected=tuple(rejected),
        over_capacity=tuple(sorted(over.items())),
    )


class _LotOfZone:
    """The lot a pulled session of a zone is sold in: the one lot whose schedule has the zone at
    the session's start (site-local day and minute, as ``permits.zones_at`` reads it). None when no
    lot or several lots have it then: the session is then a zone permit, valid wherever the zone
    is scheduled and counted against no single lot (the rule in ``dashboard.services.permits``)."""

    def __init__(self, session: Session, zone_ids: set[int], tz: tzinfo) -> None:
        self._tz = tz
        self._schedules: dict[int, list[tuple[int, str, time, time]]] = {}
        self.names: dict[int, str] = {}
        if not zone_ids:
            return
        rows = session.execute(
            select(
                LotZoneSchedule.zone_id,
                LotZoneSchedule.lot_id,
                LotZoneSchedule.days,
                LotZoneSchedule.start_time,
                LotZoneSchedule.end_time,
                Lot.name,
            )
            .join(Lot, Lot.id == LotZoneSchedule.lot_id)
            .where(LotZoneSchedule.zone_id.in_(zone_ids))
        )
        for zone_id, lot_id, days, start, end, name in rows:
            self._schedules.setdefault(zone_id, []).append((lot_id, days, start, end))
            self.names[lot_id] = name

    def lot_ids(self) -> list[int]:
        return sorted(self.names)

    def find(self, zone_id: int, at: datetime) -> int | None:
        local = at.astimezone(self._tz)
        minute = local.time().replace(second=0, microsecond=0)
        lots = {
            lot_id
            for lot_id, days, start, end in self._schedules.get(zone_id, [])
            if len(days) == 7 and days[local.weekday()] == "1" and start <= minute <= end
        }
        return next(iter(lots)) if len(lots) == 1 else None


def _existing(session: Session, source: PermitSource, external_ids: Sequence[str]) -> dict[str, Permit]:
    found: dict[str, Permit] = {}
    for start in range(0, len(external_ids), _ID_CHUNK):
        chunk = external_ids[start : start + _ID_CHUNK]
        query = (
            select(Permit)
            .options(selectinload(Permit.vehicles))
            .where(Permit.source == source, Permit.external_id.in_(chunk))
        )
        found.update({row.external_id: row for row in session.scalars(query) if row.external_id})
    return found


# The status page


@dataclass(frozen=True)
class Window:
    """Records active at some moment between ``start`` and ``end`` (aware UTC; None: open)."""

    start: datetime | None = None
    end: datetime | None = None


def parse_window(start_text: str | None, end_text: str | None, tz: tzinfo) -> Window:
    """From/to as a ``datetime-local`` input sends them ("2024-05-01T09:30"), in the site's time
    zone. Raises ``ValidationFailed`` with ``from``/``to`` messages."""
    errors: dict[str, str] = {}
    start = _local(start_text, tz, "from", errors)
    end = _local(end_text, tz, "to", errors)
    if start and end and end <= start:
        errors["to"] = "must be after From"
    if errors:
        raise ValidationFailed(errors)
    return Window(start, end)


def _local(text: str | None, tz: tzinfo, name: str, errors: dict[str, str]) -> datetime | None:
    if text is None or not str(text).strip():
        return None
    try:
        moment = datetime.fromisoformat(str(text).strip())
    except ValueError:
        errors[name] = "enter a date and time, e.g. 2024-05-01 09:30"
        return None
    moment = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment
    if not in_service_range(moment) or not in_service_range(moment.astimezone(UTC)):
        errors[name] = f"must be between the years {FIRST_YEAR} and {LAST_YEAR}"
        return None
    return moment


class Scope(enum.StrEnum):
    """Which sales a search lists besides the stored pay-station records."""

    PAY_STATIONS = "pay_stations"  # permits pay stations pushed and ParkMobile sessions
    TEMPORARY = "temporary"  # every temporary permit, whoever sold it


PAY_STATION_SOURCES = (PermitSource.PAYSTATION, PermitSource.PARKMOBILE)


@dataclass(frozen=True)
class RecordRow:
    """A pay-station record (``kind`` "record") or a permit (``kind`` "permit", with its number)."""

    id: int
    source: str
    external_id: str | None
    plate: str
    zone_name: str | None  # as the vendor sent it (a permit: its zone's name)
    zone: str | None  # the local zone it matched
    lot_names: tuple[str, ...]  # the row's lot, else every lot that schedules its zone
    start_at: datetime
    end_at: datetime
    amount_cents: int
    currency: str
    over_capacity: bool = False  # recorded when its lot's allowance or zone's capacity was taken
    kind: str = "record"
    number: str | None = None
    status: str = "active"

    @property
    def key(self) -> str:
        """Unique over records and permits (their ids are not)."""
        return f"{self.kind}-{self.id}"

    def active_at(self, moment: datetime) -> bool:
        return self.status == "active" and self.start_at <= moment < self.end_at


@dataclass(frozen=True)
class RecordPage:
    """One page of matching rows, newest start first, with totals over every match."""

    rows: tuple[RecordRow, ...]
    total: int
    active_now: int
    amounts: tuple[tuple[str, int], ...]  # (currency, cents), by currency
    page: int
    page_size: int
    now: datetime

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def first(self) -> int:
        """1-based position of the first row shown (0 when there is none)."""
        return (self.page - 1) * self.page_size + 1 if self.rows else 0


@dataclass(frozen=True)
class FilterOptions:
    sources: tuple[str, ...]
    zones: tuple[tuple[int, str], ...]
    lots: tuple[tuple[int, str], ...]


def _sales(scope: Scope) -> Subquery:
    """Pay-station records and the scope's permits as one table of the same columns. Permits
    that were never in force (a checkout's hold, a declined card: ``permits.issued``) are left out;
    a cancelled one that had been sold stays, marked cancelled, because it was a sale."""
    records = select(
        literal("record").label("kind"),
        PayStationRecord.id.label("id"),
        PayStationRecord.source.label("source"),
        PayStationRecord.external_id.label("external_id"),
        literal(None, String(40)).label("number"),
        literal(PermitStatus.ACTIVE.value).label("status"),
        PayStationRecord.plate.label("plate"),
        PayStationRecord.plate_normalized.label("plate_normalized"),
        PayStationRecord.zone_id.label("zone_id"),
        PayStationRecord.lot_id.label("lot_id"),
        PayStationRecord.zone_name.label("zone_name"),
        PayStationRecord.start_at.label("start_at"),
        PayStationRecord.end_at.label("end_at"),
        PayStationRecord.amount_cents.label("amount_cents"),
        PayStationRecord.currency.label("currency"),
        PayStationRecord.over_capacity.label("flagged"),
    )
    first_plate = (
        select(func.min(PermitVehicle.plate)).where(PermitVehicle.permit_id == Permit.id).scalar_subquery()
    )
    first_normalized = (
        select(func.min(PermitVehicle.plate_normalized))
        .where(PermitVehicle.permit_id == Permit.id)
        .scalar_subquery()
    )
    zone_name = select(LotZone.name).where(LotZone.id == Permit.zone_id).scalar_subquery()
    which = (
        Permit.source.in_(PAY_STATION_SOURCES)
        if scope == Scope.PAY_STATIONS
        else Permit.kind == PermitKind.TEMPORARY
    )
    permits = select(
        literal("permit"),
        Permit.id,
        cast(Permit.source, String(24)),
        Permit.external_id,
        Permit.number,
        cast(Permit.status, String(24)),
        first_plate,
        first_normalized,
        Permit.zone_id,
        Permit.lot_id,
        zone_name,
        Permit.valid_from,
        Permit.valid_to,
        Permit.amount_cents,
        Permit.currency,
        Permit.over_allowance,
    ).where(which, issued())
    return union_all(records, permits).subquery("sales")


def filter_options(session: Session, scope: Scope = Scope.PAY_STATIONS) -> FilterOptions:
    """Sources and zones that the scope's rows have, and every lot (a lot may take rows through a
    zone)."""
    sales = _sales(scope)
    sources = session.scalars(select(sales.c.source).distinct().order_by(sales.c.source))
    zones = session.execute(
        select(LotZone.id, LotZone.name)
        .where(LotZone.id.in_(select(sales.c.zone_id).where(sales.c.zone_id.is_not(None))))
        .order_by(LotZone.name)
    )
    lots = session.execute(select(Lot.id, Lot.name).order_by(Lot.name))
    return FilterOptions(
        tuple(sources),
        tuple((zone_id, name) for zone_id, name in zones),
        tuple((lot_id, name) for lot_id, name in lots),
    )


def search(
    session: Session,
    *,
    now: datetime,
    source: str | None = None,
    zone_id: int | None = None,
    lot_id: int | None = None,
    plate: str | None = None,
    window: Window | None = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    scope: Scope = Scope.PAY_STATIONS,
) -> RecordPage:
    """Rows matching every filter given. ``plate`` matches the normalised plate anywhere in it
    ("abc" finds ABC-123); the lot filter takes rows of that lot and of zones it schedules;
    the window takes rows active at some moment in it. A page past the end shows the last."""
    sales, conditions = _filtered(scope, source, zone_id, lot_id, plate, window)
    page_size = min(max(int(page_size), 1), PAGE_SIZE_MAX)
    active_now = and_(
        sales.c.status == PermitStatus.ACTIVE.value, sales.c.start_at <= now, sales.c.end_at > now
    )
    total, active = session.execute(
        select(func.count(), func.count().filter(active_now)).select_from(sales).where(*conditions)
    ).one()
    amounts = session.execute(
        select(sales.c.currency, func.sum(sales.c.amount_cents))
        .where(*conditions)
        .group_by(sales.c.currency)
        .order_by(sales.c.currency)
    )
    pages = max(1, -(-total // page_size))
    page = min(max(int(page), 1), pages)
    found = session.execute(
        select(sales, LotZone.name.label("matched_zone"))
        .outerjoin(LotZone, LotZone.id == sales.c.zone_id)
        .where(*conditions)
        .order_by(sales.c.start_at.desc(), sales.c.kind, sales.c.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    return RecordPage(
        rows=_rows(session, found),
        total=total,
        active_now=active,
        amounts=tuple((currency, int(cents or 0)) for currency, cents in amounts),
        page=page,
        page_size=page_size,
        now=now,
    )


def every_row(
    session: Session,
    *,
    scope: Scope,
    source: str | None = None,
    zone_id: int | None = None,
    lot_id: int | None = None,
    plate: str | None = None,
    window: Window | None = None,
    limit: int = EXPORT_LIMIT,
) -> tuple[RecordRow, ...]:
    """Every matching row (an export), newest start first, at most ``limit``."""
    sales, conditions = _filtered(scope, source, zone_id, lot_id, plate, window)
    found = session.execute(
        select(sales, LotZone.name.label("matched_zone"))
        .outerjoin(LotZone, LotZone.id == sales.c.zone_id)
        .where(*conditions)
        .order_by(sales.c.start_at.desc(), sales.c.kind, sales.c.id.desc())
        .limit(limit)
    ).all()
    return _rows(session, found)


def _filtered(
    scope: Scope,
    source: str | None,
    zone_id: int | None,
    lot_id: int | None,
    plate: str | None,
    window: Window | None,
) -> tuple[Subquery, list[Any]]:
    if plate is not None and plate.strip() and not normalize_plate(plate):
        raise ValidationFailed({"plate": "enter letters or digits of the plate"})
    sales = _sales(Scope(scope))
    window = window or Window()
    conditions: list[Any] = []
    if source:
        conditions.append(sales.c.source == source)
    if zone_id is not None:
        conditions.append(sales.c.zone_id == zone_id)
    if lot_id is not None:
        zones_of_lot = select(LotZoneSchedule.zone_id).where(LotZoneSchedule.lot_id == lot_id)
        conditions.append(or_(sales.c.lot_id == lot_id, sales.c.zone_id.in_(zones_of_lot)))
    normalized = normalize_plate(plate or "")
    if normalized:
        escaped = normalized.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(sales.c.plate_normalized.like(f"%{escaped}%", escape="\\"))
    if window.start is not None:
        conditions.append(sales.c.end_at > window.start)
    if window.end is not None:
        conditions.append(sales.c.start_at < window.end)
    return sales, conditions


def _rows(session: Session, found: Sequence[Row[Any]]) -> tuple[RecordRow, ...]:
    lots_by_zone, lot_names = _lot_names(session, found)
    return tuple(
        RecordRow(
            id=row.id,
            source=row.source,
            external_id=row.external_id,
            plate=row.plate or "",
            zone_name=row.zone_name,
            zone=row.matched_zone,
            lot_names=(
                (lot_names[row.lot_id],)
                if row.lot_id in lot_names
                else lots_by_zone.get(row.zone_id or 0, ())
            ),
            start_at=row.start_at,
            end_at=row.end_at,
            amount_cents=int(row.amount_cents or 0),
            currency=row.currency,
            over_capacity=bool(row.flagged),
            kind=row.kind,
            number=row.number,
            status=row.status,
        )
        for row in found
    )


def _lot_names(
    session: Session, rows: Sequence[Row[Any]]
) -> tuple[dict[int, tuple[str, ...]], dict[int, str]]:
    """Lots scheduling each zone of ``rows``, and the names of the lots rows name directly."""
    zone_ids = {row.zone_id for row in rows if row.zone_id is not None}
    lot_ids = {row.lot_id for row in rows if row.lot_id is not None}
    by_zone: dict[int, list[str]] = {}
    if zone_ids:
        scheduled = session.execute(
            select(LotZoneSchedule.zone_id, Lot.name)
            .join(Lot, Lot.id == LotZoneSchedule.lot_id)
            .where(LotZoneSchedule.zone_id.in_(zone_ids))
            .distinct()
            .order_by(Lot.name)
        )
        for zone_id, name in scheduled:
            by_zone.setdefault(zone_id, []).append(name)
    names: dict[int, str] = {}
    if lot_ids:
        found = session.execute(select(Lot.id, Lot.name).where(Lot.id.in_(lot_ids)))
        names = {lot_id: name for lot_id, name in found}
    return {zone_id: tuple(lots) for zone_id, lots in by_zone.items()}, names
