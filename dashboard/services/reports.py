"""Reports for managers: permit sales and revenue, occupancy history per lot group, violations.

One ``ReportQuery`` (the report, its site-local days and its filters) is what the page keeps in
its URL, what the download route reads and what the API takes, so a bookmark, a download and the
page show the same figures: each report's ``table`` is the one the page renders and the CSV and
XLSX files hold, cell for cell.

**Sales** are every permit ever in force (``permits.issued``: a checkout's hold or a declined card
is no sale; a sale later cancelled or refunded stays, it was sold) from every channel (online
standard permits, quick checkout, the office, pay stations, meters, HotSpot and partners pushing
through the API, ParkMobile) plus the pay-station records kept from older imports. A sale falls on
the site-local day it was made: a permit's ``created_at``, except a pulled session (ParkMobile),
which ParkOps learns of after the fact and which was sold when it started; a record's start.
Amounts are what the sale was for, in integer cents, one row per currency (refunds are not
subtracted: a partial refund names a payment, not a permit).

**Occupancy** reads ``occupancy_snapshots`` (the periodic history of each lot group, one row per
source): the physical count (the group's configured source, as the live map chooses it) against
the permits valid then, by hour, by weekday and hour (average percent of capacity), and each day's
peak.

**Violations** are the tickets issued on the days, grouped by issue day or lot: how many were
issued and for how much, and of those how many are paid, void, or still outstanding (unpaid or
under appeal), so each row adds up.

Why this module is long: the three reports share one query type, one table shape and the CSV and
XLSX writers that make a download equal the page; split apart, each would import the others.
"""

from __future__ import annotations

import csv
import enum
import io
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from dashboard.services.days import FIRST_DAY, day_bounds, parse_day
from dashboard.services.errors import ValidationFailed
from dashboard.services.occupancy import PHYSICAL
from dashboard.services.pay_stations import source_label
from dashboard.services.permits import PULLED_SOURCES, issued
from dashboard.services.spreadsheet import safe_cell
from models import (
    Lot,
    LotGroup,
    LotZone,
    OccupancySnapshot,
    OccupancySource,
    PayStationRecord,
    Permit,
    PermitKind,
    PermitProduct,
    PermitSource,
    Violation,
    ViolationItem,
    ViolationStatus,
)

MAX_DAYS = 366  # one report spans at most a year (and a leap day): a bounded query and chart
DEFAULT_DAYS = 30
TEXT_MAX = 40  # longer than any value a filter can take; anything longer is not one of them


class ReportKind(enum.StrEnum):
    SALES = "sales"
    OCCUPANCY = "occupancy"
    VIOLATIONS = "violations"


KIND_TITLES = {
    ReportKind.SALES: "Permit sales and revenue",
    ReportKind.OCCUPANCY: "Occupancy history",
    ReportKind.VIOLATIONS: "Violations issued, paid and outstanding",
}
SALES_GROUPS = ("day", "lot", "product", "source")
VIOLATION_GROUPS = ("day", "lot")
GROUP_TITLES = {"day": "Day", "lot": "Lot", "product": "Product", "source": "Source"}

# Sales channels: a permit's source, except that permits bought on the site are told apart into
# standard permits and quick-checkout temporary ones. Pay-station records keep their vendor's name.
STANDARD_ONLINE = "standard"
QUICK_CHECKOUT = "quick-checkout"
CHANNEL_LABELS = {
    STANDARD_ONLINE: "Standard permits (online)",
    QUICK_CHECKOUT: "Quick checkout",
    "admin": "Office",
    "paystation": "Pay stations and meters",
    "hotspot": "HotSpot",
    "api": "Partners (API)",
    "parkmobile": "ParkMobile",
}


def channel_label(channel: str) -> str:
    return CHANNEL_LABELS.get(channel, source_label(channel))


def _channel(source: str, kind: str | None) -> str:
    if source == PermitSource.PORTAL.value:
        return STANDARD_ONLINE if kind == PermitKind.STANDARD.value else QUICK_CHECKOUT
    return source


# -- the query: what a URL, a download and the API ask for -----------------------------------------


@dataclass(frozen=True)
class DayRange:
    """Site-local days ``first`` to ``last`` (both included); ``start``/``end``: their UTC bounds."""

    first: date
    last: date
    start: datetime
    end: datetime

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def day_range(first_text: str | None, last_text: str | None, tz: tzinfo, today: date) -> DayRange:
    """The days asked for: ``to`` defaults to today, ``from`` to 30 days before ``to``. Raises
    ``ValidationFailed`` (``from``/``to``) for a bad date, a reversed or over-long range."""
    last = parse_day(last_text, "to") or today
    first = parse_day(first_text, "from")
    if first is None:  # a default that stays in the calendar: a ``to`` of 0001-01-01 is refused below
        back = timedelta(days=DEFAULT_DAYS - 1)
        first = last - back if last >= FIRST_DAY + back else FIRST_DAY
    start, end = day_bounds(first, last, tz)
    assert start is not None and end is not None
    if (last - first).days + 1 > MAX_DAYS:
        raise ValidationFailed({"to": f"a report spans at most {MAX_DAYS} days"})
    return DayRange(first, last, start, end)


@dataclass(frozen=True)
class ReportQuery:
    """A report as its URL says it. ``lot``, ``group``: ids; ``source``: a sales channel."""

    kind: ReportKind
    days: DayRange
    group_by: str
    lot: int | None = None
    source: str | None = None
    group: int | None = None

    def params(self) -> dict[str, str]:
        """The query string that reopens this report (only what this kind reads)."""
        values = {
            "report": self.kind.value,
            "from": self.days.first.isoformat(),
            "to": self.days.last.isoformat(),
        }
        if self.kind is ReportKind.OCCUPANCY:
            if self.group is not None:
                values["group"] = str(self.group)
            return values
        values["group_by"] = self.group_by
        if self.lot is not None:
            values["lot"] = str(self.lot)
        if self.kind is ReportKind.SALES and self.source:
            values["source"] = self.source
        return values


def _id(value: str | None, field: str, errors: dict[str, str]) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        errors[field] = "choose one from the list"
        return None
    return int(value)


def parse_query(args: Mapping[str, str | None], tz: tzinfo, today: date) -> ReportQuery:
    """A ``ReportQuery`` from text (a URL's query string, the page's controls). Missing values take
    their defaults (sales, the last 30 days, by day); a wrong one raises ``ValidationFailed``
    naming the field."""
    errors: dict[str, str] = {}
    texts: dict[str, str | None] = {}
    for name in ("report", "from", "to", "group_by", "lot", "source", "group"):
        value = args.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > TEXT_MAX or "\x00" in value):
            errors[name] = "not a value this report takes"
            value = None
        texts[name] = value or None
    try:
        kind = ReportKind(texts["report"] or ReportKind.SALES.value)
    except ValueError:
        errors["report"] = "one of " + ", ".join(k.value for k in ReportKind)
        kind = ReportKind.SALES
    groups = SALES_GROUPS if kind is ReportKind.SALES else VIOLATION_GROUPS
    group_by = texts["group_by"] or "day"
    if kind is not ReportKind.OCCUPANCY and group_by not in groups:
        errors["group_by"] = "one of " + ", ".join(groups)
    lot = _id(texts["lot"], "lot", errors)
    group = _id(texts["group"], "group", errors)
    source = texts["source"]
    if source is not None and not all(c.isalnum() or c in "-_" for c in source):
        errors["source"] = "choose one from the list"
    try:
        days = day_range(texts["from"], texts["to"], tz, today)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return ReportQuery(kind, days, group_by, lot=lot, source=source, group=group)


# -- tables: what the page shows and the files hold -------------------------------------------------


class Cell(enum.StrEnum):
    TEXT = "text"
    COUNT = "count"
    MONEY = "money"  # integer cents
    PERCENT = "percent"  # a float, one decimal


@dataclass(frozen=True)
class Column:
    title: str
    kind: Cell = Cell.TEXT


@dataclass(frozen=True)
class Table:
    """Rows of plain values (``None``: no figure), then totals rows (the page shows them bold)."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[object, ...], ...]
    totals: tuple[tuple[object, ...], ...] = ()


def cell_text(value: object, kind: Cell) -> str:
    """A cell as the page and the CSV write it: money as ``1234.50``, percents to one decimal."""
    if value is None:
        return ""
    if kind is Cell.MONEY:
        return f"{Decimal(int(value)) / 100:.2f}"  # type: ignore[call-overload]
    if kind is Cell.PERCENT:
        return f"{float(value):.1f}"  # type: ignore[arg-type]
    return str(value)


def to_csv(table: Table) -> str:
    """The table as CSV; every text cell through ``safe_cell`` (a lot named ``=HYPERLINK(...)``
    stays text in a spreadsheet)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(column.title) for column in table.columns])
    for row in (*table.rows, *table.totals):
        writer.writerow(
            [
                safe_cell(cell_text(value, column.kind))
                if column.kind is Cell.TEXT
                else cell_text(value, column.kind)
                for value, column in zip(row, table.columns, strict=True)
            ]
        )
    return out.getvalue()


def to_xlsx(table: Table, title: str, subtitle: str) -> bytes:
    """The table as an Excel workbook: numbers as numbers (money in currency units with two
    decimals, percents with one), text written as strings so that nothing is run as a formula."""
    import xlsxwriter  # here, not at import: only a download needs it

    out = io.BytesIO()
    book = xlsxwriter.Workbook(
        out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    sheet = book.add_worksheet("Report")
    bold = book.add_format({"bold": True})
    formats = {
        Cell.MONEY: book.add_format({"num_format": "#,##0.00"}),
        Cell.PERCENT: book.add_format({"num_format": "0.0"}),
        Cell.COUNT: book.add_format({"num_format": "0"}),
    }
    totals = {
        kind: book.add_format({"num_format": fmt.num_format, "bold": True}) for kind, fmt in formats.items()
    }
    sheet.write_string(0, 0, title, bold)
    sheet.write_string(1, 0, subtitle)
    header_row = 3
    for col, column in enumerate(table.columns):
        sheet.write_string(header_row, col, column.title, bold)
        sheet.set_column(col, col, max(12, min(len(column.title) + 2, 40)))
    lines = [(row, False) for row in table.rows] + [(row, True) for row in table.totals]
    for offset, (row, is_total) in enumerate(lines, start=header_row + 1):
        for col, (value, column) in enumerate(zip(row, table.columns, strict=True)):
            if value is None:
                continue
            if column.kind is Cell.TEXT:
                sheet.write_string(offset, col, str(value), bold if is_total else None)
            elif column.kind is Cell.MONEY:
                number = float(Decimal(int(value)) / 100)  # type: ignore[call-overload]
                sheet.write_number(offset, col, number, (totals if is_total else formats)[Cell.MONEY])
            else:
                number = round(float(value), 1) if column.kind is Cell.PERCENT else int(value)  # type: ignore[arg-type, call-overload]
                sheet.write_number(offset, col, number, (totals if is_total else formats)[column.kind])
    book.close()
    return out.getvalue()


def day_label(day: date) -> str:
    """ "Fri 4 Dec 2026": short enough for a phone's table, never ISO."""
    return f"{day:%a} {day.day} {day:%b %Y}"


# -- sales -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SalesRow:
    key: str
    label: str
    currency: str
    count: int
    amount_cents: int


@dataclass(frozen=True)
class SalesReport:
    days: DayRange
    group_by: str
    rows: tuple[SalesRow, ...]
    totals: tuple[SalesRow, ...]  # one per currency, key "total"

    def table(self) -> Table:
        columns = (
            Column(GROUP_TITLES[self.group_by]),
            Column("Currency"),
            Column("Sales", Cell.COUNT),
            Column("Amount", Cell.MONEY),
        )
        rows = tuple((r.label, r.currency, r.count, r.amount_cents) for r in self.rows)
        totals = tuple(("Total", t.currency, t.count, t.amount_cents) for t in self.totals)
        return Table(columns, rows, totals)


@dataclass(frozen=True)
class _Sale:
    moment: datetime
    channel: str
    lot_id: int | None
    lot_name: str | None
    zone_name: str | None
    product_id: int | None
    product_name: str | None
    currency: str
    amount_cents: int


def _sales_rows(session: Session, days: DayRange, lot: int | None) -> list[_Sale]:
    pulled = [source.value for source in PULLED_SOURCES]
    moment_in_range = or_(
        and_(Permit.source.in_(pulled), Permit.valid_from >= days.start, Permit.valid_from < days.end),
        and_(Permit.source.not_in(pulled), Permit.created_at >= days.start, Permit.created_at < days.end),
    )
    permits = (
        select(
            Permit.source,
            Permit.kind,
            Permit.created_at,
            Permit.valid_from,
            Permit.lot_id,
            Lot.name,
            LotZone.name,
            Permit.product_id,
            PermitProduct.name,
            Permit.currency,
            Permit.amount_cents,
        )
        .outerjoin(Lot, Lot.id == Permit.lot_id)
        .outerjoin(LotZone, LotZone.id == Permit.zone_id)
        .outerjoin(PermitProduct, PermitProduct.id == Permit.product_id)
        .where(issued(), moment_in_range)
    )
    records = (
        select(
            PayStationRecord.source,
            PayStationRecord.start_at,
            PayStationRecord.lot_id,
            Lot.name,
            PayStationRecord.zone_name,
            PayStationRecord.currency,
            PayStationRecord.amount_cents,
        )
        .outerjoin(Lot, Lot.id == PayStationRecord.lot_id)
        .where(PayStationRecord.start_at >= days.start, PayStationRecord.start_at < days.end)
    )
    if lot is not None:
        permits = permits.where(Permit.lot_id == lot)
        records = records.where(PayStationRecord.lot_id == lot)
    found: list[_Sale] = []
    for (
        source,
        kind,
        created,
        valid_from,
        lot_id,
        lot_name,
        zone,
        product_id,
        product,
        currency,
        cents,
    ) in session.execute(permits):
        found.append(
            _Sale(
                moment=valid_from if source in pulled else created,
                channel=_channel(str(source), str(kind)),
                lot_id=lot_id,
                lot_name=lot_name,
                zone_name=zone,
                product_id=product_id,
                product_name=f"{product} · {lot_name}" if product and lot_name else product,
                currency=currency,
                amount_cents=int(cents or 0),
            )
        )
    for record_source, start, lot_id, lot_name, record_zone, currency, cents in session.execute(records):
        found.append(
            _Sale(
                start,
                str(record_source),
                lot_id,
                lot_name,
                record_zone,
                None,
                None,
                currency,
                int(cents or 0),
            )
        )
    return found


def _sale_group(sale: _Sale, group_by: str, tz: tzinfo) -> tuple[str, str]:
    """(sort key, label) of the row a sale counts in."""
    if group_by == "day":
        day = sale.moment.astimezone(tz).date()
        return day.isoformat(), day_label(day)
    if group_by == "lot":
        if sale.lot_id is not None:
            return f"lot-{sale.lot_id}", sale.lot_name or f"Lot {sale.lot_id}"
        if sale.zone_name:
            return f"zone-{sale.zone_name}", f"Zone {sale.zone_name} (no single lot)"
        return "none", "No lot"
    if group_by == "product":
        if sale.product_id is not None:
            return f"product-{sale.product_id}", sale.product_name or f"Product {sale.product_id}"
        return f"none-{sale.channel}", f"No product ({channel_label(sale.channel)})"
    return sale.channel, channel_label(sale.channel)


def sales(
    session: Session,
    days: DayRange,
    tz: tzinfo,
    *,
    group_by: str = "day",
    lot: int | None = None,
    source: str | None = None,
) -> SalesReport:
    """Sales made on ``days`` grouped by day, lot, product or source (channel), optionally of one
    lot or one channel. By day, every day of the range has a row for each currency sold in it
    (zero where nothing sold: a chart's gaps are real); other groupings list the biggest first."""
    if group_by not in SALES_GROUPS:
        raise ValidationFailed({"group_by": "one of " + ", ".join(SALES_GROUPS)})
    found = [s for s in _sales_rows(session, days, lot) if source is None or s.channel == source]
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    labels: dict[str, str] = {}
    for sale in found:
        key, label = _sale_group(sale, group_by, tz)
        labels[key] = label
        counts[(key, sale.currency)][0] += 1
        counts[(key, sale.currency)][1] += sale.amount_cents
    currencies = sorted({currency for _key, currency in counts})
    if group_by == "day":
        for day in days.days:
            labels[day.isoformat()] = day_label(day)
            for currency in currencies:
                counts[(day.isoformat(), currency)]  # noqa: B018  (a zero row for a day without sales)
    rows = [SalesRow(key, labels[key], currency, n, cents) for (key, currency), (n, cents) in counts.items()]
    if group_by == "day":
        rows.sort(key=lambda r: (r.key, r.currency))
    else:
        rows.sort(key=lambda r: (r.currency, -r.amount_cents, -r.count, r.label))
    totals = tuple(
        SalesRow(
            "total",
            "Total",
            currency,
            sum(r.count for r in rows if r.currency == currency),
            sum(r.amount_cents for r in rows if r.currency == currency),
        )
        for currency in currencies
    )
    return SalesReport(days, group_by, tuple(rows), totals)


def sales_channels(session: Session) -> list[tuple[str, str]]:
    """(channel, label) of every channel that has sold something, for the Source filter."""
    permit_channels = {
        _channel(str(source), str(kind))
        for source, kind in session.execute(select(Permit.source, Permit.kind).distinct().where(issued()))
    }
    record_channels = set(session.scalars(select(PayStationRecord.source).distinct()))
    return sorted(((c, channel_label(c)) for c in permit_channels | record_channels), key=lambda c: c[1])


# -- occupancy -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HourPoint:
    """The average reading of one site-local hour (None: no reading of that kind then)."""

    hour: datetime
    physical: float | None
    physical_capacity: int | None
    permits: float | None
    permits_capacity: int | None


@dataclass(frozen=True)
class DayPeak:
    day: date
    physical_peak: int | None
    physical_capacity: int | None
    physical_percent: float | None
    physical_at: datetime | None  # site-local
    permits_peak: int | None
    permits_capacity: int | None


@dataclass(frozen=True)
class OccupancyReport:
    days: DayRange
    group_id: int | None
    group_name: str | None
    physical_source: str | None
    hours: tuple[HourPoint, ...]
    heat: tuple[tuple[float | None, ...], ...]  # 7 weekdays (Monday first) x 24 hours: average %
    peaks: tuple[DayPeak, ...]

    def table(self) -> Table:
        columns = (
            Column("Day"),
            Column("Physical peak", Cell.COUNT),
            Column("Capacity", Cell.COUNT),
            Column("Peak %", Cell.PERCENT),
            Column("Peak at"),
            Column("Permits peak", Cell.COUNT),
            Column("Permits allowed", Cell.COUNT),
        )
        rows = tuple(
            (
                day_label(p.day),
                p.physical_peak,
                p.physical_capacity,
                p.physical_percent,
                f"{p.physical_at:%H:%M}" if p.physical_at else None,
                p.permits_peak,
                p.permits_capacity,
            )
            for p in self.peaks
        )
        return Table(columns, rows)


def _physical_source(group: LotGroup, present: set[str]) -> str | None:
    """The live map's precedence (``occupancy.choose_physical``) among the sources with history:
    the one the group is configured for first, else whichever physical source has readings."""
    if group.mistall_lot_id and OccupancySource.MISTALL.value in present:
        return OccupancySource.MISTALL.value
    if group.parking_logix_name and OccupancySource.PARKING_LOGIX.value in present:
        return OccupancySource.PARKING_LOGIX.value
    for source in (OccupancySource.DEVICES, *PHYSICAL):
        if source.value in present:
            return source.value
    return None


def _percent(occupied: float, capacity: int | None) -> float | None:
    if not capacity or capacity <= 0:
        return None
    return round(min(max(occupied * 100.0 / capacity, 0.0), 100.0), 1)


def occupancy(session: Session, days: DayRange, tz: tzinfo, group_id: int | None) -> OccupancyReport:
    """One lot group's history over ``days`` (the first group by name when none is given)."""
    group = (
        session.get(LotGroup, group_id)
        if group_id is not None
        else session.scalars(select(LotGroup).order_by(LotGroup.name).limit(1)).first()
    )
    if group is None:
        if group_id is not None:
            raise ValidationFailed({"group": "that lot group does not exist"})
        return OccupancyReport(days, None, None, None, (), tuple((None,) * 24 for _ in range(7)), ())
    in_days = (
        OccupancySnapshot.lot_group_id == group.id,
        OccupancySnapshot.recorded_at >= days.start,
        OccupancySnapshot.recorded_at < days.end,
    )
    present = {
        str(source) for source in session.scalars(select(OccupancySnapshot.source).where(*in_days).distinct())
    }
    physical = _physical_source(group, present)
    # Only the two series shown, read without the ORM: a year of five-minute readings is 200,000 rows.
    rows = session.connection().execute(
        select(
            OccupancySnapshot.source,
            OccupancySnapshot.occupied,
            OccupancySnapshot.capacity,
            OccupancySnapshot.recorded_at,
        )
        .where(
            *in_days,
            OccupancySnapshot.source.in_([s for s in (physical, OccupancySource.PERMITS.value) if s]),
        )
        .order_by(OccupancySnapshot.recorded_at, OccupancySnapshot.id)
    )
    permits = OccupancySource.PERMITS.value
    by_hour: dict[datetime, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    heat_sums: dict[tuple[int, int], list[float]] = defaultdict(list)
    peaks: dict[date, dict[str, tuple[int, int, datetime]]] = defaultdict(dict)
    for row_source, occupied, capacity, recorded in rows:
        source = str(row_source)
        if source not in (physical, permits):
            continue
        local = recorded.astimezone(tz)
        hour = local.replace(minute=0, second=0, microsecond=0)
        by_hour[hour][source].append((occupied, capacity))
        if source == physical:
            share = _percent(occupied, capacity)
            if share is not None:
                heat_sums[(local.weekday(), local.hour)].append(share)
        best = peaks[local.date()].get(source)
        if best is None or occupied > best[0]:
            peaks[local.date()][source] = (occupied, capacity, local)

    def average(readings: list[tuple[int, int]]) -> tuple[float | None, int | None]:
        if not readings:
            return None, None
        return round(sum(o for o, _c in readings) / len(readings), 1), max(c for _o, c in readings)

    hours = []
    for hour in sorted(by_hour):
        phys, phys_cap = average(by_hour[hour].get(physical or "", []))
        perm, perm_cap = average(by_hour[hour].get(permits, []))
        hours.append(HourPoint(hour, phys, phys_cap, perm, perm_cap))
    heat = tuple(
        tuple(
            round(sum(heat_sums[(wd, h)]) / len(heat_sums[(wd, h)]), 1) if heat_sums.get((wd, h)) else None
            for h in range(24)
        )
        for wd in range(7)
    )
    day_peaks = []
    for day in days.days:
        phys_peak = peaks.get(day, {}).get(physical or "")
        perm_peak = peaks.get(day, {}).get(permits)
        day_peaks.append(
            DayPeak(
                day=day,
                physical_peak=phys_peak[0] if phys_peak else None,
                physical_capacity=phys_peak[1] if phys_peak else None,
                physical_percent=_percent(phys_peak[0], phys_peak[1]) if phys_peak else None,
                physical_at=phys_peak[2] if phys_peak else None,
                permits_peak=perm_peak[0] if perm_peak else None,
                permits_capacity=perm_peak[1] if perm_peak else None,
            )
        )
    return OccupancyReport(days, group.id, group.name, physical, tuple(hours), heat, tuple(day_peaks))


def group_options(session: Session) -> list[tuple[int, str]]:
    return [
        (gid, name)
        for gid, name in session.execute(select(LotGroup.id, LotGroup.name).order_by(LotGroup.name))
    ]


def lot_options(session: Session) -> list[tuple[int, str]]:
    return [(lot_id, name) for lot_id, name in session.execute(select(Lot.id, Lot.name).order_by(Lot.name))]


# -- violations ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ViolationRow:
    key: str
    label: str
    issued: int = 0
    issued_cents: int = 0
    paid: int = 0
    paid_cents: int = 0
    void: int = 0
    outstanding: int = 0
    outstanding_cents: int = 0


@dataclass(frozen=True)
class ViolationsReport:
    days: DayRange
    group_by: str
    rows: tuple[ViolationRow, ...]
    total: ViolationRow

    def table(self) -> Table:
        columns = (
            Column(GROUP_TITLES[self.group_by]),
            Column("Issued", Cell.COUNT),
            Column("Issued amount", Cell.MONEY),
            Column("Paid", Cell.COUNT),
            Column("Paid amount", Cell.MONEY),
            Column("Void", Cell.COUNT),
            Column("Outstanding", Cell.COUNT),
            Column("Outstanding amount", Cell.MONEY),
        )

        def line(r: ViolationRow) -> tuple[object, ...]:
            return (
                r.label,
                r.issued,
                r.issued_cents,
                r.paid,
                r.paid_cents,
                r.void,
                r.outstanding,
                r.outstanding_cents,
            )

        return Table(columns, tuple(line(r) for r in self.rows), (line(self.total),))


def violations(
    session: Session, days: DayRange, tz: tzinfo, *, group_by: str = "day", lot: int | None = None
) -> ViolationsReport:
    """Tickets issued on ``days`` by issue day or lot and where each stands now (amounts: what the
    ticket's items add up to, appeal reductions included)."""
    if group_by not in VIOLATION_GROUPS:
        raise ValidationFailed({"group_by": "one of " + ", ".join(VIOLATION_GROUPS)})
    owed = (
        select(func.coalesce(func.sum(ViolationItem.amount_cents), 0))
        .where(ViolationItem.violation_id == Violation.id)
        .scalar_subquery()
    )
    query = (
        select(Violation.issued_at, Violation.status, Violation.lot_id, Lot.name, owed)
        .outerjoin(Lot, Lot.id == Violation.lot_id)
        .where(Violation.issued_at >= days.start, Violation.issued_at < days.end)
    )
    if lot is not None:
        query = query.where(Violation.lot_id == lot)
    tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    labels: dict[str, str] = {}
    if group_by == "day":
        for day in days.days:
            labels[day.isoformat()] = day_label(day)
            tally[day.isoformat()]  # noqa: B018  (every day has a row)
    for issued_at, status, lot_id, lot_name, cents in session.execute(query):
        if group_by == "day":
            key = issued_at.astimezone(tz).date().isoformat()
        else:
            key = f"lot-{lot_id}" if lot_id is not None else "none"
            labels[key] = lot_name or "No lot"
        counts = tally[key]
        cents = int(cents or 0)
        counts["issued"] += 1
        counts["issued_cents"] += cents
        if status == ViolationStatus.PAID:
            counts["paid"] += 1
            counts["paid_cents"] += cents
        elif status == ViolationStatus.VOID:
            counts["void"] += 1
        else:
            counts["outstanding"] += 1
            counts["outstanding_cents"] += cents
    rows = [ViolationRow(key, labels[key], **counts) for key, counts in tally.items()]
    rows.sort(key=(lambda r: r.key) if group_by == "day" else (lambda r: (-r.issued, r.label)))
    fields = ("issued", "issued_cents", "paid", "paid_cents", "void", "outstanding", "outstanding_cents")
    total = ViolationRow("total", "Total", **{f: sum(getattr(r, f) for r in rows) for f in fields})
    return ViolationsReport(days, group_by, tuple(rows), total)


# -- one entry point for the page and the download --------------------------------------------------

Report = SalesReport | OccupancyReport | ViolationsReport


def build(session: Session, query: ReportQuery, tz: tzinfo) -> Report:
    if query.kind is ReportKind.SALES:
        return sales(session, query.days, tz, group_by=query.group_by, lot=query.lot, source=query.source)
    if query.kind is ReportKind.OCCUPANCY:
        return occupancy(session, query.days, tz, query.group)
    return violations(session, query.days, tz, group_by=query.group_by, lot=query.lot)


def describe(query: ReportQuery, report: Report) -> str:
    """What a download's second line says: the report's days and filters in words."""
    span = f"{day_label(query.days.first)} to {day_label(query.days.last)}"
    if isinstance(report, OccupancyReport):
        return f"{report.group_name or 'No lot group'}, {span}"
    return f"By {GROUP_TITLES[query.group_by].lower()}, {span}"


def file_name(query: ReportQuery, extension: str) -> str:
    return f"parkops-{query.kind.value}-{query.days.first:%Y%m%d}-{query.days.last:%Y%m%d}.{extension}"


def site_today(tz: tzinfo, now: datetime | None = None) -> date:
    """Today in the site's time zone: the default last day of a report."""
    return (now or datetime.now(UTC)).astimezone(tz).date()
