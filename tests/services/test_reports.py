"""The Reports service on known data (``tests/reports_data``): sales from every channel on the
site-local day they were made, occupancy history of a lot group, violations by where they stand,
the query a URL carries, and the CSV and XLSX files."""

from __future__ import annotations

import csv
import io
from datetime import date

import openpyxl
import pytest

from dashboard.services import reports
from dashboard.services.errors import ValidationFailed
from dashboard.services.reports import Cell, Column, ReportKind, Table
from tests.reports_data import FIRST, LAST, SOUTH, TZ, make_report_data

TODAY = date(2026, 11, 30)


@pytest.fixture
def data(session):
    return make_report_data(session)


def days(first: str = FIRST, last: str = LAST) -> reports.DayRange:
    return reports.day_range(first, last, TZ, TODAY)


def rows(report) -> list[tuple[str, str, int, int]]:
    return [(r.label, r.currency, r.count, r.amount_cents) for r in report.rows]


def test_sales_by_day_count_every_channel_on_its_local_day(session, data):
    report = reports.sales(session, days(), TZ)
    assert rows(report) == [
        ("Mon 2 Nov 2026", "CAD", 2, 12500),  # the 23:30 quick checkout is the 2nd here, the 3rd in UTC
        ("Tue 3 Nov 2026", "CAD", 3, 675),
        ("Wed 4 Nov 2026", "CAD", 2, 1400),  # ParkMobile by its start; a cancelled sale stays a sale
    ]
    assert [(t.count, t.amount_cents) for t in report.totals] == [(7, 14575)]


def test_a_day_without_sales_has_a_zero_row(session, data):
    report = reports.sales(session, days("2026-11-01", "2026-11-02"), TZ)
    assert rows(report) == [("Sun 1 Nov 2026", "CAD", 0, 0), ("Mon 2 Nov 2026", "CAD", 2, 12500)]


def test_sales_by_source_lot_and_product(session, data):
    by_source = reports.sales(session, days(), TZ, group_by="source")
    assert rows(by_source) == [
        ("Standard permits (online)", "CAD", 1, 12000),
        ("Office", "CAD", 1, 1000),
        ("Quick checkout", "CAD", 1, 500),
        ("ParkMobile", "CAD", 1, 400),
        ("HotSpot", "CAD", 1, 300),
        ("Pay stations and meters", "CAD", 1, 250),
        ("Cale", "CAD", 1, 125),
    ]
    by_lot = reports.sales(session, days(), TZ, group_by="lot")
    assert rows(by_lot) == [
        ("North Garage", "CAD", 3, 13500),
        (SOUTH, "CAD", 3, 775),
        ("Zone Z1 (no single lot)", "CAD", 1, 300),
    ]
    by_product = reports.sales(session, days(), TZ, group_by="product")
    assert rows(by_product)[0] == ("Fall term · North Garage", "CAD", 1, 12000)
    assert ("No product (ParkMobile)", "CAD", 1, 400) in rows(by_product)
    assert sum(r.amount_cents for r in by_product.rows) == 14575


def test_sales_filtered_by_lot_and_by_source(session, data):
    north = reports.sales(session, days(), TZ, group_by="source", lot=data.north)
    assert rows(north) == [
        ("Standard permits (online)", "CAD", 1, 12000),
        ("Office", "CAD", 1, 1000),
        ("Quick checkout", "CAD", 1, 500),
    ]
    parkmobile = reports.sales(session, days(), TZ, source="parkmobile")
    assert [(t.count, t.amount_cents) for t in parkmobile.totals] == [(1, 400)]
    assert reports.sales_channels(session)[0] == ("cale", "Cale")
    assert ("quick-checkout", "Quick checkout") in reports.sales_channels(session)


def test_occupancy_physical_vs_permits_heat_map_and_daily_peaks(session, data):
    report = reports.occupancy(session, days(), TZ, data.group)
    assert report.group_name == "North Campus" and report.physical_source == "mistall"
    assert [(p.hour.day, p.hour.hour, p.physical, p.permits) for p in report.hours] == [
        (2, 9, 50.0, 70.0),  # the devices' 99 is not the group's configured count
        (3, 14, 80.0, 75.0),
    ]
    assert report.heat[0][9] == 50.0 and report.heat[1][14] == 80.0 and report.heat[2][9] is None
    assert reports.occupancy(session, days(), TZ, None).group_name == "Airport"  # first by name
    table = report.table()
    assert table.rows == (
        ("Mon 2 Nov 2026", 60, 100, 60.0, "09:40", 70, 80),
        ("Tue 3 Nov 2026", 80, 100, 80.0, "14:05", 75, 80),
        ("Wed 4 Nov 2026", None, None, None, None, None, None),
    )
    with pytest.raises(ValidationFailed) as refused:
        reports.occupancy(session, days(), TZ, 999_999)
    assert refused.value.errors == {"group": "that lot group does not exist"}


def test_violations_issued_paid_void_and_outstanding_add_up(session, data):
    report = reports.violations(session, days(), TZ)
    assert report.table().rows == (
        ("Mon 2 Nov 2026", 3, 11000, 1, 5000, 1, 1, 2000),  # a reduction lowers what is owed
        ("Tue 3 Nov 2026", 1, 2500, 0, 0, 0, 1, 2500),  # under appeal is still outstanding
        ("Wed 4 Nov 2026", 0, 0, 0, 0, 0, 0, 0),
    )
    assert report.table().totals == (("Total", 4, 13500, 1, 5000, 1, 2, 4500),)
    by_lot = reports.violations(session, days(), TZ, group_by="lot")
    assert [(r.label, r.issued) for r in by_lot.rows] == [("North Garage", 2), (SOUTH, 1), ("No lot", 1)]
    south = reports.violations(session, days(), TZ, lot=data.south)
    assert south.total.issued == 1 and south.total.void == 1


def test_the_query_of_a_url_defaults_validates_and_round_trips():
    default = reports.parse_query({}, TZ, TODAY)
    assert default.kind is ReportKind.SALES and default.group_by == "day"
    assert (default.days.first, default.days.last) == (date(2026, 11, 1), TODAY)
    asked = {
        "report": "sales",
        "from": FIRST,
        "to": LAST,
        "group_by": "lot",
        "lot": "7",
        "source": "parkmobile",
    }
    query = reports.parse_query(asked, TZ, TODAY)
    assert query.params() == asked and reports.parse_query(query.params(), TZ, TODAY) == query
    occupancy = reports.parse_query({"report": "occupancy", "group": "3", "lot": "7"}, TZ, TODAY)
    assert occupancy.params() == {
        "report": "occupancy",
        "from": "2026-11-01",
        "to": "2026-11-30",
        "group": "3",
    }
    with pytest.raises(ValidationFailed) as bad:
        reports.parse_query(
            {"report": "nope", "from": "2026-13-01", "group_by": "x", "lot": "²", "source": "a b"}, TZ, TODAY
        )
    assert set(bad.value.errors) == {"report", "from", "group_by", "lot", "source"}
    with pytest.raises(ValidationFailed) as long:
        reports.parse_query({"from": "2025-01-01", "to": "2026-11-30"}, TZ, TODAY)
    assert long.value.errors == {"to": "a report spans at most 366 days"}
    with pytest.raises(ValidationFailed) as reversed_days:
        reports.parse_query({"from": "2026-11-05", "to": "2026-11-04"}, TZ, TODAY)
    assert "to" in reversed_days.value.errors
    with pytest.raises(ValidationFailed):
        reports.parse_query({"report": "violations", "group_by": "product"}, TZ, TODAY)


def test_csv_keeps_text_as_text_and_writes_money_with_two_decimals():
    table = Table(
        (Column("Lot"), Column("Sales", Cell.COUNT), Column("Amount", Cell.MONEY), Column("%", Cell.PERCENT)),
        (("=HYPERLINK(1)", 2, 12345, 60.04), ("North", 0, 5, None)),
        (("Total", 2, 12350, None),),
    )
    read = list(csv.reader(io.StringIO(reports.to_csv(table))))
    assert read == [
        ["Lot", "Sales", "Amount", "%"],
        ["'=HYPERLINK(1)", "2", "123.45", "60.0"],
        ["North", "0", "0.05", ""],
        ["Total", "2", "123.50", ""],
    ]


def test_xlsx_holds_the_same_cells_as_numbers(session, data):
    report = reports.sales(session, days(), TZ, group_by="lot")
    book = openpyxl.load_workbook(io.BytesIO(reports.to_xlsx(report.table(), "Sales", "By lot")))
    sheet = book["Report"]
    assert sheet["A1"].value == "Sales" and sheet["A2"].value == "By lot"
    values = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=4)]
    assert values == [
        ["Lot", "Currency", "Sales", "Amount"],
        ["North Garage", "CAD", 3, 135.0],
        [SOUTH, "CAD", 3, 7.75],  # a string, never a formula
        ["Zone Z1 (no single lot)", "CAD", 1, 3.0],
        ["Total", "CAD", 7, 145.75],
    ]
    assert sheet["B6"].data_type == "s" and sheet["A6"].data_type == "s"
