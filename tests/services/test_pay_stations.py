"""Pay-station records: the import is idempotent on (source, external_id), matches lot zones by
name, and names what it skipped; the status query filters, totals and pages against the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.services import occupancy, pay_stations
from dashboard.services.errors import ValidationFailed
from dashboard.services.pay_stations import IncomingRecord, Scope, Window
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

NOW = datetime(2024, 5, 1, 16, 0, tzinfo=UTC)
TORONTO = ZoneInfo("America/Toronto")


def incoming(external_id: str = "PM-1", zone: str = "1001", **changes: object) -> IncomingRecord:
    values: dict[str, object] = {
        "external_id": external_id,
        "plate": "abc-123",
        "zone_name": zone,
        "start_at": NOW - timedelta(hours=1),
        "end_at": NOW + timedelta(hours=1),
        "amount_cents": 650,
        "currency": "CAD",
        "raw": {"permitId": external_id},
    }
    return IncomingRecord(**(values | changes))  # type: ignore[arg-type]


@pytest.fixture
def zone_ids(session: Session) -> dict[str, int]:
    zones = [LotZone(name="1001"), LotZone(name="Visitor")]
    session.add_all(zones)
    session.flush()
    return {zone.name: zone.id for zone in zones}


def stored(session: Session) -> list[Permit]:
    session.expire_all()
    return list(session.scalars(select(Permit).order_by(Permit.external_id)))


def imported(session: Session, records: list[IncomingRecord], now: datetime = NOW):
    return pay_stations.import_records(session, "parkmobile", records, now, TORONTO)


# Import: each session is a temporary permit


def test_a_new_session_is_a_temporary_permit_with_a_normalised_plate(session, zone_ids):
    result = imported(session, [incoming()])
    assert (result.received, result.created, result.updated, result.unchanged) == (1, 1, 0, 0)
    assert result.rows_touched == 1
    (row,) = stored(session)
    assert (row.source, row.external_id, row.kind, row.status) == (
        PermitSource.PARKMOBILE,
        "PM-1",
        PermitKind.TEMPORARY,
        PermitStatus.ACTIVE,
    )
    assert [(v.plate, v.plate_normalized) for v in row.vehicles] == [("ABC-123", "ABC123")]
    assert (row.zone_id, row.lot_id, row.created_at) == (zone_ids["1001"], None, NOW)
    assert (row.valid_from, row.valid_to, row.amount_cents, row.currency) == (
        NOW - timedelta(hours=1),
        NOW + timedelta(hours=1),
        650,
        "CAD",
    )
    assert row.number.startswith("T-") and not row.over_allowance
    assert session.scalars(select(PayStationRecord)).all() == []


def test_the_same_session_twice_is_one_permit_and_a_change_updates_it(session, zone_ids):
    imported(session, [incoming()])
    number = stored(session)[0].number
    again = imported(session, [incoming()], NOW + timedelta(minutes=3))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)

    later_end = NOW + timedelta(hours=3)
    extended = incoming(end_at=later_end, amount_cents=975, plate="ABC 124")
    changed = imported(session, [extended], NOW + timedelta(minutes=6))
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 0)
    (row,) = stored(session)
    assert (row.valid_to, row.amount_cents, row.number) == (later_end, 975, number)
    assert [v.plate_normalized for v in row.vehicles] == ["ABC124"]
    assert row.created_at == NOW


def test_only_pulled_sources_are_imported(session, zone_ids):
    with pytest.raises(ValueError, match="source must be one of parkmobile"):
        pay_stations.import_records(session, "cale", [incoming()], NOW, TORONTO)
    assert stored(session) == []


def test_an_id_twice_in_one_batch_keeps_the_later(session, zone_ids):
    result = imported(session, [incoming(amount_cents=100), incoming(amount_cents=200)])
    assert (result.received, result.created) == (2, 1)
    assert [row.amount_cents for row in stored(session)] == [200]


def test_zones_match_by_name_ignoring_case_and_spacing_and_others_are_counted(session, zone_ids):
    batch = [
        incoming("A", zone="visitor"),
        incoming("B", zone=" 1001 "),
        incoming("C", zone="9999"),
        incoming("D", zone="9999"),
        incoming("E", zone="Lot 7"),
    ]
    result = imported(session, batch)
    assert result.created == 2
    assert result.skipped_zones == (("9999", 2), ("Lot 7", 1))
    assert result.skipped == 3
    assert {row.external_id: row.zone_id for row in stored(session)} == {
        "A": zone_ids["Visitor"],
        "B": zone_ids["1001"],
    }


def test_an_exact_case_match_wins_and_an_ambiguous_name_is_skipped(session):
    upper, lower = LotZone(name="NORTH"), LotZone(name="north")  # old data, from before the unique rule
    session.add_all([upper, lower])
    session.flush()
    result = imported(session, [incoming("A", zone="north"), incoming("B", zone="North")])
    assert result.skipped_zones == (("North", 1),)
    assert [(row.external_id, row.zone_id) for row in stored(session)] == [("A", lower.id)]


def test_a_session_is_sold_in_the_one_lot_scheduling_its_zone_then(session, zone_ids):
    """NOW is Wednesday 12:00 in Toronto: the weekday schedule of Garage has zone 1001 then, the
    weekend one of Stadium does not; zone Visitor is on two lots at once, so it is in neither."""
    garage, stadium, annex = Lot(name="Garage"), Lot(name="Stadium"), Lot(name="Annex")
    session.add_all([garage, stadium, annex])
    session.flush()
    session.add_all(
        [
            LotZoneSchedule(lot_id=garage.id, zone_id=zone_ids["1001"], days="1111100"),
            LotZoneSchedule(lot_id=stadium.id, zone_id=zone_ids["1001"], days="0000011"),
            LotZoneSchedule(lot_id=garage.id, zone_id=zone_ids["Visitor"]),
            LotZoneSchedule(lot_id=annex.id, zone_id=zone_ids["Visitor"]),
        ]
    )
    session.flush()
    imported(session, [incoming("A"), incoming("B", zone="Visitor")])
    assert {row.external_id: row.lot_id for row in stored(session)} == {"A": garage.id, "B": None}
    counts = occupancy.permit_counts(session, NOW)
    assert counts == {garage.id: 1}


def test_a_session_past_the_lots_allowance_is_recorded_and_flagged(session, zone_ids):
    garage = Lot(name="Garage", capacity=1)
    session.add(garage)
    session.flush()
    session.add(LotZoneSchedule(lot_id=garage.id, zone_id=zone_ids["1001"]))
    session.flush()
    after = {"start_at": NOW + timedelta(hours=1), "end_at": NOW + timedelta(hours=2)}
    result = imported(session, [incoming("A"), incoming("B"), incoming("C", **after)])
    assert result.created == 3
    assert result.over_capacity == (("Garage", 1),)
    flagged = {row.external_id: row.over_allowance for row in stored(session)}
    assert flagged == {"A": False, "B": True, "C": False}  # C starts when A ends: there is room


def test_a_session_past_the_zones_capacity_is_flagged_and_an_extension_into_a_full_zone_too(
    session, zone_ids
):
    session.get(LotZone, zone_ids["Visitor"]).capacity = 1
    session.flush()
    first = incoming("A", zone="Visitor")
    later = incoming("B", zone="Visitor", start_at=NOW + timedelta(hours=1), end_at=NOW + timedelta(hours=2))
    result = imported(session, [first, later])
    assert result.over_capacity == ()
    extended = incoming("A", zone="Visitor", end_at=NOW + timedelta(hours=2))
    again = imported(session, [extended], NOW + timedelta(minutes=5))
    assert (again.updated, again.over_capacity) == (1, (("zone Visitor", 1),))
    assert {row.external_id: row.over_allowance for row in stored(session)} == {"A": True, "B": False}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"plate": "- . -"}, "the plate '- . -' is not letters and digits (spaces, dashes and dots aside)"),
        ({"plate": "AB#12"}, "the plate 'AB#12' is not letters and digits (spaces, dashes and dots aside)"),
        ({"plate": "ABCDEFGHIJKLMNOPQ"}, "the plate 'ABCDEFGHIJKLMNOPQ' is longer than 16 characters"),
        ({"zone_name": "Z" * 81}, "the zone name is longer than 80 characters"),
        ({"currency": "CA"}, "the currency 'CA' is not a three-letter code"),
        ({"end_at": NOW - timedelta(hours=2)}, "it ends before it starts"),
    ],
)
def test_what_cannot_be_stored_is_rejected_with_its_reason(session, zone_ids, change, reason):
    result = imported(session, [incoming("PM-9", **change), incoming()])
    assert result.rejected == (("permit PM-9", reason),)
    assert [row.external_id for row in stored(session)] == ["PM-1"]


def test_a_too_long_id_is_rejected(session, zone_ids):
    result = imported(session, [incoming("X" * 81)])
    assert result.rejected == ((f"permit {'X' * 80}", "the id is longer than 80 characters"),)
    assert stored(session) == []


# The status page's query


@pytest.fixture
def sample(session: Session) -> dict[str, int]:
    """Two zones on lots, one record per situation (active, ended, upcoming, another currency)."""
    north, south, empty = LotZone(name="1001"), LotZone(name="2002"), LotZone(name="3003")
    garage, surface, other = Lot(name="North Garage"), Lot(name="North Surface"), Lot(name="South Lot")
    session.add_all([north, south, empty, garage, surface, other])
    session.flush()
    session.add_all(
        [
            LotZoneSchedule(lot_id=garage.id, zone_id=north.id),
            LotZoneSchedule(lot_id=surface.id, zone_id=north.id),
            LotZoneSchedule(lot_id=other.id, zone_id=south.id),
        ]
    )

    def record(ext: str, plate: str, zone: LotZone | None, start: int, end: int, cents: int, **kw: object):
        session.add(
            PayStationRecord(
                source=kw.pop("source", "parkmobile"),
                external_id=ext,
                plate=plate,
                plate_normalized=plate.replace(" ", "").replace("-", ""),
                zone_id=zone.id if zone else None,
                zone_name=zone.name if zone else "9999",
                start_at=NOW + timedelta(hours=start),
                end_at=NOW + timedelta(hours=end),
                amount_cents=cents,
                currency=kw.pop("currency", "CAD"),
                **kw,
            )
        )

    record("active", "ABC 123", north, -1, 1, 650)
    record("ended", "XYZ-999", north, -5, -3, 325)
    record("upcoming", "ABC 777", south, 2, 4, 1200)
    record("usd", "NY 5555", south, -2, 2, 400, currency="USD")
    record("cale", "CALE 1", None, -1, 1, 200, source="cale", lot_id=other.id)
    session.flush()
    return {"north": north.id, "south": south.id, "empty": empty.id, "garage": garage.id, "other": other.id}


def ids(page: pay_stations.RecordPage) -> list[str]:
    return [row.external_id for row in page.rows]


def test_everything_newest_start_first_with_totals(session, sample):
    page = pay_stations.search(session, now=NOW)
    # Same start: the later record first.
    assert ids(page) == ["upcoming", "cale", "active", "usd", "ended"]
    assert (page.total, page.active_now) == (5, 3)
    assert page.amounts == (("CAD", 650 + 325 + 1200 + 200), ("USD", 400))
    assert (page.page, page.pages, page.first) == (1, 1, 1)


def test_a_row_names_its_zone_and_the_lots_of_that_zone(session, sample):
    rows = {row.external_id: row for row in pay_stations.search(session, now=NOW).rows}
    assert (rows["active"].zone, rows["active"].lot_names) == ("1001", ("North Garage", "North Surface"))
    assert (rows["cale"].zone, rows["cale"].zone_name, rows["cale"].lot_names) == (
        None,
        "9999",
        ("South Lot",),
    )
    assert rows["active"].active_at(NOW) and not rows["ended"].active_at(NOW)
    assert not rows["upcoming"].active_at(NOW)


def test_filters_by_source_zone_and_lot(session, sample):
    assert ids(pay_stations.search(session, now=NOW, source="cale")) == ["cale"]
    assert sorted(ids(pay_stations.search(session, now=NOW, zone_id=sample["north"]))) == ["active", "ended"]
    assert ids(pay_stations.search(session, now=NOW, zone_id=sample["empty"])) == []
    # A lot takes the records of the zones it schedules and the records naming it.
    assert sorted(ids(pay_stations.search(session, now=NOW, lot_id=sample["garage"]))) == ["active", "ended"]
    assert sorted(ids(pay_stations.search(session, now=NOW, lot_id=sample["other"]))) == [
        "cale",
        "upcoming",
        "usd",
    ]
    both = pay_stations.search(session, now=NOW, source="parkmobile", lot_id=sample["other"])
    assert sorted(ids(both)) == ["upcoming", "usd"]
    assert both.amounts == (("CAD", 1200), ("USD", 400))


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("abc-123", ["active"]), ("abc", ["upcoming", "active"]), (" xyz 999 ", ["ended"]), ("QQQ", [])],
)
def test_the_plate_matches_its_normalised_form(session, sample, typed, expected):
    assert ids(pay_stations.search(session, now=NOW, plate=typed)) == expected


def test_a_plate_of_only_separators_is_refused(session, sample):
    with pytest.raises(ValidationFailed) as error:
        pay_stations.search(session, now=NOW, plate=" - ")
    assert error.value.errors == {"plate": "enter letters or digits of the plate"}


def test_like_wildcards_in_the_plate_are_literal(session, sample):
    assert ids(pay_stations.search(session, now=NOW, plate="%")) == []
    assert ids(pay_stations.search(session, now=NOW, plate="A_C")) == []


def test_the_window_takes_records_active_at_some_moment_in_it(session, sample):
    window = Window(NOW - timedelta(hours=4), NOW - timedelta(hours=2, minutes=30))
    assert ids(pay_stations.search(session, now=NOW, window=window)) == ["ended"]
    # A record ending exactly when the window opens was not active in it.
    touching = Window(NOW + timedelta(hours=4), None)
    assert ids(pay_stations.search(session, now=NOW, window=touching)) == []
    upto = Window(None, NOW - timedelta(hours=1))
    assert sorted(ids(pay_stations.search(session, now=NOW, window=upto))) == ["ended", "usd"]


def test_pages_are_limited_and_a_page_past_the_end_shows_the_last(session, sample):
    first = pay_stations.search(session, now=NOW, page_size=2)
    assert (len(first.rows), first.total, first.pages, first.first) == (2, 5, 3, 1)
    last = pay_stations.search(session, now=NOW, page=99, page_size=2)
    assert (last.page, last.first, len(last.rows)) == (3, 5, 1)
    assert set(ids(first)).isdisjoint(ids(last))
    assert last.amounts == first.amounts  # totals cover every match, not the page
    assert pay_stations.search(session, now=NOW, page_size=10_000).page_size == pay_stations.PAGE_SIZE_MAX


def test_no_records_is_one_empty_page(session):
    page = pay_stations.search(session, now=NOW)
    assert (page.rows, page.total, page.active_now, page.amounts, page.pages, page.first) == (
        (),
        0,
        0,
        (),
        1,
        0,
    )


def test_filter_options_list_sources_and_zones_in_use_and_every_lot(session, sample):
    options = pay_stations.filter_options(session)
    assert options.sources == ("cale", "parkmobile")
    assert options.zones == ((sample["north"], "1001"), (sample["south"], "2002"))
    assert [name for _id, name in options.lots] == ["North Garage", "North Surface", "South Lot"]


def test_the_window_is_read_in_the_site_time_zone():
    window = pay_stations.parse_window("2024-05-01T09:30", "2024-05-01T12:00:30", TORONTO)
    assert window == Window(
        datetime(2024, 5, 1, 13, 30, tzinfo=UTC), datetime(2024, 5, 1, 16, 0, 30, tzinfo=UTC)
    )
    assert pay_stations.parse_window("", None, TORONTO) == Window(None, None)


@pytest.mark.parametrize(
    ("start", "end", "errors"),
    [
        ("2024-05-01T10:00", "2024-05-01T10:00", {"to": "must be after From"}),
        ("yesterday", "2024-05-01T10:00", {"from": "enter a date and time, e.g. 2024-05-01 09:30"}),
        ("2024-05-01T10:00", "13/05/2024", {"to": "enter a date and time, e.g. 2024-05-01 09:30"}),
    ],
)
def test_a_bad_window_says_which_field(start, end, errors):
    with pytest.raises(ValidationFailed) as error:
        pay_stations.parse_window(start, end, TORONTO)
    assert error.value.errors == errors


# Permits in the lists: pushed by pay stations, pulled from ParkMobile, and every temporary sale


@pytest.fixture
def sold(session: Session, sample: dict[str, int]) -> dict[str, int]:
    """Beside the records: permits from every channel, a checkout's hold and a refunded sale."""

    def permit(number: str, source: PermitSource, *, kind=PermitKind.TEMPORARY, **values: object) -> None:
        row = Permit(
            number=number,
            kind=kind,
            source=source,
            external_id=values.pop("external_id", None),
            valid_from=NOW - timedelta(minutes=30),
            valid_to=NOW + timedelta(hours=2),
            amount_cents=values.pop("amount_cents", 300),
            created_at=NOW,
            **values,
        )
        row.vehicles = [PermitVehicle(plate=f"{number} 1", plate_normalized=f"{number}1".replace("-", ""))]
        session.add(row)

    permit("T-PAY", PermitSource.PAYSTATION, external_id="PS-7", lot_id=sample["garage"], over_allowance=True)
    permit("T-PM", PermitSource.PARKMOBILE, external_id="PM-7", zone_id=sample["north"], amount_cents=450)
    permit("T-HS", PermitSource.HOTSPOT, external_id="HS-7", zone_id=sample["south"])
    permit("T-QC", PermitSource.PORTAL, lot_id=sample["other"])
    permit("T-HOLD", PermitSource.PORTAL, lot_id=sample["other"], status=PermitStatus.PENDING)
    permit(
        "T-GONE", PermitSource.API, external_id="API-1", lot_id=sample["other"], status=PermitStatus.CANCELLED
    )
    permit("S-TERM", PermitSource.PORTAL, kind=PermitKind.STANDARD, lot_id=sample["other"])
    session.flush()
    return sample


def numbers(page: pay_stations.RecordPage) -> list[str]:
    return [row.number or row.external_id or "" for row in page.rows]


def test_pay_station_status_lists_pushed_and_parkmobile_permits_beside_the_records(session, sold):
    page = pay_stations.search(session, now=NOW)
    assert sorted(numbers(page)) == sorted(["T-PAY", "T-PM", "active", "ended", "upcoming", "usd", "cale"])
    rows = {row.number: row for row in page.rows if row.kind == "permit"}
    pushed = rows["T-PAY"]
    assert (pushed.source, pushed.external_id, pushed.plate, pushed.lot_names) == (
        "paystation",
        "PS-7",
        "T-PAY 1",
        ("North Garage",),
    )
    assert pushed.over_capacity and pushed.active_at(NOW) and pushed.key == f"permit-{pushed.id}"
    pulled = rows["T-PM"]
    assert (pulled.zone, pulled.zone_name, pulled.lot_names) == (
        "1001",
        "1001",
        ("North Garage", "North Surface"),
    )
    assert (page.total, page.active_now) == (7, 5)
    assert page.amounts == (("CAD", 650 + 325 + 1200 + 200 + 300 + 450), ("USD", 400))
    assert set(pay_stations.filter_options(session).sources) == {"cale", "parkmobile", "paystation"}


def test_filters_apply_to_permits_too(session, sold):
    assert numbers(pay_stations.search(session, now=NOW, source="paystation")) == ["T-PAY"]
    assert sorted(numbers(pay_stations.search(session, now=NOW, lot_id=sold["garage"]))) == [
        "T-PAY",
        "T-PM",
        "active",
        "ended",
    ]
    assert numbers(pay_stations.search(session, now=NOW, plate="t-pm")) == ["T-PM"]
    late = Window(NOW + timedelta(hours=3), None)
    assert numbers(pay_stations.search(session, now=NOW, window=late)) == ["upcoming"]


def test_temporary_permits_are_every_temporary_sale_whoever_sold_it(session, sold):
    """Not a checkout's hold, not a standard permit; a sale later cancelled stays, marked so."""
    page = pay_stations.search(session, now=NOW, scope=Scope.TEMPORARY)
    assert sorted(numbers(page)) == sorted(
        ["T-PAY", "T-PM", "T-HS", "T-QC", "T-GONE", "active", "ended", "upcoming", "usd", "cale"]
    )
    gone = next(row for row in page.rows if row.number == "T-GONE")
    assert gone.status == "cancelled" and not gone.active_at(NOW)
    options = pay_stations.filter_options(session, Scope.TEMPORARY)
    assert set(options.sources) == {"api", "cale", "hotspot", "parkmobile", "paystation", "portal"}
    every = pay_stations.every_row(session, scope=Scope.TEMPORARY, source="portal")
    assert [row.number for row in every] == ["T-QC"]
