"""Pay-station records: paid parking sessions from pay stations, meters and apps (Cale, ParkMobile ...).

The seed imports ParkMobile permits "as paystation (Cale) records": one ``PayStationRecord`` per
vendor session, shown on the Pay Station Status page and wherever those records are used.

Import rules (``import_records``):

* **Idempotent on (source, external_id)**: a permit read twice is one row. A re-read permit that
  changed (an extension moves its end, adds to its amount; a corrected plate) updates the row;
  one that did not is left alone, so a run that overlaps the previous one writes nothing.
* **Only zones the site knows.** The seed imports a permit only when a lot zone of the same name
  exists. The match ignores case (zone names are unique regardless of case, see ``lot_zones``),
  and an exact-case match wins should old data hold two names differing only in case. Other
  permits are skipped and counted by zone name, so the admin sees which zone to create.
* **Nothing is dropped silently.** An entry that cannot be stored (a plate or id longer than the
  columns, a plate without a letter or digit) is rejected with its reason, for the run log.
* **Zone capacity.** A record counts against its zone's capacity like a zone permit (the rule in
  ``dashboard.services.permits``), under the zone's lock. A pulled record was sold already and
  cannot be refused: one imported when its zone was full is kept and flagged ``over_capacity``
  (Pay Station Status shows it, the run log counts it by zone).

A zone is valid in every lot that schedules it, so an imported record names its zone and leaves
``lot_id`` empty; the status page shows the lots that schedule the zone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from dashboard.services.errors import ValidationFailed
from dashboard.services.open_data import FIRST_YEAR, LAST_YEAR, in_service_range
from dashboard.services.permits import lock_zone, zone_taken
from dashboard.services.plates import normalize_plate
from models import Lot, LotZone, LotZoneSchedule, PayStationRecord

PLATE_MAX = 16
EXTERNAL_ID_MAX = 80
ZONE_NAME_MAX = 80
SOURCE_MAX = 24
PAGE_SIZE = 50
PAGE_SIZE_MAX = 500
_ID_CHUNK = 500  # ids per IN (...) query: well under SQLite's variable limit
SOURCE_LABELS = {
    "parkmobile": "ParkMobile",
    "cale": "Cale",
    "paystation": "Pay station",
    "hotspot": "HotSpot",
    "api": "API",
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
    session: Session, source: str, records: Iterable[IncomingRecord], now: datetime
) -> ImportResult:
    """Insert or update ``records`` of ``source`` (see the module's rules). When a record id comes
    twice in one batch, the later one wins: vendors list changes oldest first."""
    if not source or len(source) > SOURCE_MAX:
        raise ValueError(f"source must be 1 to {SOURCE_MAX} characters")
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

    existing = _existing(session, source, [record.external_id for record, _zone in matched])
    limited = sorted({zone.id for record, zone in matched if zone.capacity is not None})
    for zone_id in limited:  # in id order, so two imports cannot wait on each other
        lock_zone(session, zone_id)
    capacities = {
        zone_id: capacity
        for zone_id, capacity in session.execute(
            select(LotZone.id, LotZone.capacity).where(LotZone.id.in_(limited))
        )
    }
    over: Counter[str] = Counter()
    created = updated = unchanged = 0
    for record, zone in matched:
        values = {
            "plate": record.plate.strip().upper(),
            "plate_normalized": normalize_plate(record.plate),
            "zone_id": zone.id,
            "zone_name": record.zone_name,
            "start_at": record.start_at,
            "end_at": record.end_at,
            "amount_cents": record.amount_cents,
            "currency": record.currency.upper(),
            "raw": record.raw,
        }
        row = existing.get(record.external_id)
        if row is None:
            full = False
            capacity = capacities.get(zone.id)
            if capacity is not None:
                session.flush()  # the records added so far count too
                taken = zone_taken(session, [zone.id], record.start_at, record.end_at, now)[zone.id]
                full = taken >= capacity
            if full:
                over[zone.name] += 1
            session.add(
                PayStationRecord(
                    source=source,
                    external_id=record.external_id,
                    imported_at=now,
                    over_capacity=full,
                    **values,
                )
            )
            created += 1
        elif any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            updated += 1
        else:
            unchanged += 1
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


def _existing(session: Session, source: str, external_ids: Sequence[str]) -> dict[str, PayStationRecord]:
    found: dict[str, PayStationRecord] = {}
    for start in range(0, len(external_ids), _ID_CHUNK):
        chunk = external_ids[start : start + _ID_CHUNK]
        query = select(PayStationRecord).where(
            PayStationRecord.source == source, PayStationRecord.external_id.in_(chunk)
        )
        found.update({row.external_id: row for row in session.scalars(query)})
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


@dataclass(frozen=True)
class RecordRow:
    id: int
    source: str
    external_id: str
    plate: str
    zone_name: str | None  # as the vendor sent it
    zone: str | None  # the local zone it matched
    lot_names: tuple[str, ...]  # the record's lot, else every lot that schedules its zone
    start_at: datetime
    end_at: datetime
    amount_cents: int
    currency: str
    over_capacity: bool = False  # imported when its zone's capacity was taken

    def active_at(self, moment: datetime) -> bool:
        return self.start_at <= moment < self.end_at


@dataclass(frozen=True)
class RecordPage:
    """One page of matching records, newest start first, with totals over every match."""

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


def filter_options(session: Session) -> FilterOptions:
    """Sources and zones that records have, and every lot (a lot may take records through a zone)."""
    sources = session.scalars(select(PayStationRecord.source).distinct().order_by(PayStationRecord.source))
    zones = session.execute(
        select(LotZone.id, LotZone.name)
        .where(LotZone.id.in_(select(PayStationRecord.zone_id).where(PayStationRecord.zone_id.is_not(None))))
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
) -> RecordPage:
    """Records matching every filter given. ``plate`` matches the normalised plate anywhere in it
    ("abc" finds ABC-123); the lot filter takes records of that lot and of zones it schedules;
    the window takes records active at some moment in it. A page past the end shows the last."""
    if plate is not None and plate.strip() and not normalize_plate(plate):
        raise ValidationFailed({"plate": "enter letters or digits of the plate"})
    page_size = min(max(int(page_size), 1), PAGE_SIZE_MAX)
    conditions = _conditions(source, zone_id, lot_id, plate, window or Window())

    total, active = session.execute(
        select(
            func.count(PayStationRecord.id),
            func.count(PayStationRecord.id).filter(
                PayStationRecord.start_at <= now, PayStationRecord.end_at > now
            ),
        ).where(*conditions)
    ).one()
    amounts = session.execute(
        select(PayStationRecord.currency, func.sum(PayStationRecord.amount_cents))
        .where(*conditions)
        .group_by(PayStationRecord.currency)
        .order_by(PayStationRecord.currency)
    )
    pages = max(1, -(-total // page_size))
    page = min(max(int(page), 1), pages)
    query: Select[tuple[PayStationRecord, str | None]] = (
        select(PayStationRecord, LotZone.name)
        .outerjoin(LotZone, LotZone.id == PayStationRecord.zone_id)
        .where(*conditions)
        .order_by(PayStationRecord.start_at.desc(), PayStationRecord.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    found = session.execute(query).all()
    lots_by_zone, lot_names = _lot_names(session, [record for record, _zone in found])
    rows = tuple(
        RecordRow(
            id=record.id,
            source=record.source,
            external_id=record.external_id,
            plate=record.plate,
            zone_name=record.zone_name,
            zone=zone_name,
            lot_names=(
                (lot_names[record.lot_id],)
                if record.lot_id in lot_names
                else lots_by_zone.get(record.zone_id or 0, ())
            ),
            start_at=record.start_at,
            end_at=record.end_at,
            amount_cents=record.amount_cents,
            currency=record.currency,
            over_capacity=record.over_capacity,
        )
        for record, zone_name in found
    )
    return RecordPage(
        rows=rows,
        total=total,
        active_now=active,
        amounts=tuple((currency, int(cents or 0)) for currency, cents in amounts),
        page=page,
        page_size=page_size,
        now=now,
    )


def _conditions(
    source: str | None, zone_id: int | None, lot_id: int | None, plate: str | None, window: Window
) -> list[Any]:
    conditions: list[Any] = []
    if source:
        conditions.append(PayStationRecord.source == source)
    if zone_id is not None:
        conditions.append(PayStationRecord.zone_id == zone_id)
    if lot_id is not None:
        zones_of_lot = select(LotZoneSchedule.zone_id).where(LotZoneSchedule.lot_id == lot_id)
        conditions.append(
            or_(
                PayStationRecord.lot_id == lot_id,
                and_(PayStationRecord.lot_id.is_(None), PayStationRecord.zone_id.in_(zones_of_lot)),
            )
        )
    normalized = normalize_plate(plate or "")
    if normalized:
        escaped = normalized.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(PayStationRecord.plate_normalized.like(f"%{escaped}%", escape="\\"))
    if window.start is not None:
        conditions.append(PayStationRecord.end_at > window.start)
    if window.end is not None:
        conditions.append(PayStationRecord.start_at < window.end)
    return conditions


def _lot_names(
    session: Session, records: Sequence[PayStationRecord]
) -> tuple[dict[int, tuple[str, ...]], dict[int, str]]:
    """Lots scheduling each zone of ``records``, and the names of the lots records name directly."""
    zone_ids = {record.zone_id for record in records if record.zone_id is not None}
    lot_ids = {record.lot_id for record in records if record.lot_id is not None}
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
        rows = session.execute(select(Lot.id, Lot.name).where(Lot.id.in_(lot_ids)))
        names = {lot_id: name for lot_id, name in rows}
    return {zone_id: tuple(lots) for zone_id, lots in by_zone.items()}, names
