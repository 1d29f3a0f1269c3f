"""Known sales, occupancy history and tickets on 2 to 4 November 2026 (Toronto, UTC-5 that week),
shared by the Reports tests of the service, the page, the downloads and the API.

Sales (counted on the site-local day they were made):

=========  ===============================================  ======  ==============
day        what                                             cents   lot
=========  ===============================================  ======  ==============
Mon 2 Nov  standard permit "Fall term" bought online         12000  North Garage
Mon 2 Nov  quick checkout at 23:30 (04:30 UTC on the 3rd)      500  North Garage
Tue 3 Nov  pay station pushed                                   250  =South Lot
Tue 3 Nov  HotSpot zone permit (zone Z1, no single lot)         300  —
Tue 3 Nov  Cale record from an old import                       125  =South Lot
Wed 4 Nov  ParkMobile session started 09:00, imported the 5th   400  =South Lot
Wed 4 Nov  office permit, later cancelled (it was sold)        1000  North Garage
=========  ===============================================  ======  ==============

Not sales: a checkout's hold (pending) on the 2nd, a permit sold on the 5th. The South Lot's
name starts like a formula, so a download must keep it text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from models import (
    ItemKind,
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
    PermitStatus,
    Pricing,
    Violation,
    ViolationItem,
    ViolationStatus,
)

TZ = ZoneInfo("America/Toronto")
FIRST, LAST = "2026-11-02", "2026-11-04"
SOUTH = "=South Lot"


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


@dataclass(frozen=True)
class ReportData:
    north: int
    south: int
    group: int
    other_group: int
    product: int


def make_report_data(session) -> ReportData:
    group = LotGroup(name="North Campus", mistall_lot_id="M1")
    other_group = LotGroup(name="Airport")
    session.add_all([group, other_group])
    session.flush()
    north = Lot(name="North Garage", capacity=100, lot_group_id=group.id)
    south = Lot(name=SOUTH, capacity=20)
    zone = LotZone(name="Z1")
    session.add_all([north, south, zone])
    session.flush()
    product = PermitProduct(
        lot_id=north.id, kind=PermitKind.STANDARD, name="Fall term", pricing=Pricing.TERM, price_cents=12000
    )
    session.add(product)
    session.flush()
    numbers = iter(range(1, 100))

    def permit(created: datetime, cents: int, source: PermitSource, **values: object) -> None:
        valid_from = values.pop("valid_from", created)
        session.add(
            Permit(
                number=f"R-{next(numbers):03d}",
                kind=values.pop("kind", PermitKind.TEMPORARY),
                source=source,
                created_at=created,
                valid_from=valid_from,
                valid_to=valid_from.replace(hour=23),
                amount_cents=cents,
                **values,
            )
        )

    permit(
        local(2, 10),
        12000,
        PermitSource.PORTAL,
        kind=PermitKind.STANDARD,
        lot_id=north.id,
        product_id=product.id,
    )
    permit(local(2, 23, 30), 500, PermitSource.PORTAL, lot_id=north.id)
    permit(local(3, 8), 250, PermitSource.PAYSTATION, lot_id=south.id, external_id="PS-1")
    permit(local(3, 9), 300, PermitSource.HOTSPOT, zone_id=zone.id, external_id="HS-1")
    permit(
        local(5, 1), 400, PermitSource.PARKMOBILE, lot_id=south.id, external_id="PM-1", valid_from=local(4, 9)
    )
    permit(local(4, 11), 1000, PermitSource.ADMIN, lot_id=north.id, status=PermitStatus.CANCELLED)
    permit(local(2, 12), 700, PermitSource.PORTAL, lot_id=north.id, status=PermitStatus.PENDING)
    permit(local(5, 10), 900, PermitSource.PORTAL, lot_id=north.id)
    session.add(
        PayStationRecord(
            source="cale",
            external_id="C-1",
            plate="MTR 1",
            plate_normalized="MTR1",
            lot_id=south.id,
            zone_name="Meter 1",
            start_at=local(3, 12),
            end_at=local(3, 13),
            amount_cents=125,
            currency="CAD",
        )
    )

    def snapshot(source: OccupancySource, occupied: int, capacity: int, at: datetime) -> None:
        session.add(
            OccupancySnapshot(
                lot_group_id=group.id, source=source, occupied=occupied, capacity=capacity, recorded_at=at
            )
        )

    snapshot(OccupancySource.MISTALL, 40, 100, local(2, 9, 10))
    snapshot(OccupancySource.MISTALL, 60, 100, local(2, 9, 40))
    snapshot(OccupancySource.PERMITS, 70, 80, local(2, 9, 10))
    snapshot(OccupancySource.DEVICES, 99, 100, local(2, 9, 20))  # not the group's configured source
    snapshot(OccupancySource.MISTALL, 80, 100, local(3, 14, 5))
    snapshot(OccupancySource.PERMITS, 75, 80, local(3, 14, 5))
    snapshot(OccupancySource.MISTALL, 100, 100, local(5, 9))  # after the days

    tickets = iter(range(1, 100))

    def ticket(issued: datetime, status: ViolationStatus, *amounts: int, lot_id: int | None = None) -> None:
        n = next(tickets)
        violation = Violation(
            ticket_number=f"V-{n:04d}",
            status=status,
            plate=f"P {n}",
            plate_normalized=f"P{n}",
            issued_at=issued,
            lot_id=lot_id,
        )
        violation.items = [
            ViolationItem(amount_cents=a, kind=ItemKind.OFFENCE if a > 0 else ItemKind.REDUCTION)
            for a in amounts
        ]
        session.add(violation)

    ticket(local(2, 8), ViolationStatus.PAID, 5000, lot_id=north.id)
    ticket(local(2, 9), ViolationStatus.UNPAID, 3000, -1000, lot_id=north.id)
    ticket(local(2, 10), ViolationStatus.VOID, 4000, lot_id=south.id)
    ticket(local(3, 11), ViolationStatus.UNDER_APPEAL, 2500)
    ticket(local(6, 11), ViolationStatus.UNPAID, 9000, lot_id=north.id)
    session.commit()
    return ReportData(north.id, south.id, group.id, other_group.id, product.id)
