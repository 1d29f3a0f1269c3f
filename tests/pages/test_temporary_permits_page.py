"""Temporary Permits over HTTP: only managers and admins get choices, rows or downloads; every
channel's temporary sale is listed (a checkout's hold and standard permits are not); filters,
site-local days, times in words, paging, and a CSV of the filtered list whose cells a spreadsheet
cannot run as formulas."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest

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
    Role,
    utcnow,
)
from tests.dash_helpers import dash_post, find_output, outputs_of

TABLE = "temps-table.children"
OPTIONS = "temps-source.options"
DOWNLOAD = "..temps-download.data"
REFUSED = [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403)]


@pytest.fixture
def sample(session) -> dict[str, int]:
    """One sale per channel in Green Staff Lot East (or its zone 1001), a hold, a standard permit."""
    zone = LotZone(name="1001")
    lot, other = Lot(name="Green Staff Lot East", capacity=50), Lot(name="Far Lot", capacity=5)
    session.add_all([zone, lot, other])
    session.flush()
    session.add(LotZoneSchedule(lot_id=lot.id, zone_id=zone.id))
    now = utcnow()

    def permit(number: str, plate: str, source: PermitSource, **values: Any) -> None:
        row = Permit(
            number=number,
            kind=values.pop("kind", PermitKind.TEMPORARY),
            source=source,
            valid_from=values.pop("valid_from", now - timedelta(hours=1)),
            valid_to=values.pop("valid_to", now + timedelta(hours=1)),
            amount_cents=values.pop("amount_cents", 500),
            **values,
        )
        row.vehicles = [PermitVehicle(plate=plate, plate_normalized=plate.replace(" ", "").replace("-", ""))]
        session.add(row)

    permit("T-QUICK1", "QC 111", PermitSource.PORTAL, lot_id=lot.id, amount_cents=300)
    permit("T-PUSHED", "PAY 222", PermitSource.PAYSTATION, external_id="PS-2", lot_id=lot.id)
    permit("T-HOTSPT", "HS 333", PermitSource.HOTSPOT, external_id="HS-3", zone_id=zone.id)
    permit("T-PARKMB", "PM 444", PermitSource.PARKMOBILE, external_id="PM-4", zone_id=zone.id, lot_id=lot.id)
    permit(
        "T-OLDONE",
        "=HYPERLINK(1)",
        PermitSource.API,
        external_id="+SUM(A1)",
        lot_id=other.id,
        valid_from=now - timedelta(days=10),
        valid_to=now - timedelta(days=10) + timedelta(hours=2),
    )
    permit("T-HOLDON", "HOLD 1", PermitSource.PORTAL, lot_id=lot.id, status=PermitStatus.PENDING)
    permit("S-TERMXX", "TERM 1", PermitSource.PORTAL, lot_id=lot.id, kind=PermitKind.STANDARD)
    session.add(
        PayStationRecord(
            source="cale",
            external_id="C-9",
            plate="MTR 555",
            plate_normalized="MTR555",
            lot_id=other.id,
            zone_name="Meter 12",
            start_at=now - timedelta(hours=2),
            end_at=now - timedelta(hours=1),
            amount_cents=125,
            currency="CAD",
        )
    )
    session.commit()
    return {"zone": zone.id, "lot": lot.id, "other": other.id}


def table(client, app, source="", lot="", plate=None, first=None, last=None, page=1, triggered=None) -> Any:
    inputs = [source, lot, plate, first, last, page]
    return dash_post(client, app, find_output(app, TABLE), inputs, triggered=triggered)


def out(response: Any) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.data
    return outputs_of(response)


def text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def test_the_page_is_for_managers_holds_no_data_and_is_in_the_parking_menu(login_as, sample) -> None:
    assert login_as(Role.GUEST).get("/admin/temporary-permits").status_code == 302
    assert login_as(Role.OFFICER).get("/admin/temporary-permits").status_code == 403
    page = login_as(Role.MANAGER).get("/admin/temporary-permits")
    assert page.status_code == 200
    assert b"QC 111" not in page.data and b"Green Staff Lot East" not in page.data


@pytest.mark.parametrize(("role", "status"), REFUSED)
def test_lower_roles_get_no_rows_no_choices_and_no_download(app, login_as, sample, role, status) -> None:
    client = login_as(role)
    listed = table(client, app)
    assert listed.status_code == status and b"QC 111" not in listed.data
    chosen = dash_post(client, app, find_output(app, OPTIONS), [0])
    assert chosen.status_code == status and b"Green Staff Lot East" not in chosen.data
    download = dash_post(client, app, find_output(app, DOWNLOAD), [1], ["", "", None, None, None])
    assert download.status_code == status and b"QC 111" not in download.data


@pytest.mark.parametrize("role", [Role.MANAGER, Role.ADMIN])
def test_every_channel_is_listed_with_its_source_and_times_in_words(app, login_as, sample, role) -> None:
    got = out(table(login_as(role), app))
    grid = text(got["temps-table"]["children"])
    for plate in ("QC 111", "PAY 222", "HS 333", "PM 444", "=HYPERLINK(1)", "MTR 555"):
        assert plate in grid
    assert "HOLD 1" not in grid and "TERM 1" not in grid
    for label in ("Quick checkout", "Pay station", "HotSpot", "ParkMobile", "API", "Cale"):
        assert label in grid
    assert "1001 · Green Staff Lot East" in grid and "Meter 12 · Far Lot" in grid
    assert " today" in grid or " yesterday" in grid or " tomorrow" in grid  # words, not ISO
    assert " at " in grid  # ten days ago: "Monday 23 November 2026 at 09:30"
    assert got["temps-count"]["children"] == "6" and got["temps-active"]["children"] == "4"
    assert got["temps-amount"]["children"] == "CAD 24.25"
    assert got["temps-range"]["children"] == "Showing 1–6 of 6 permits"
    assert got["temps-error"]["children"] is None


def test_the_choices_are_the_sources_present_and_every_lot(app, core, login_as, sample) -> None:
    got = out(dash_post(login_as(Role.MANAGER), app, find_output(app, OPTIONS), [0]))
    assert [o["label"] for o in got["temps-source"]["options"]] == [
        "All sources",
        "API",
        "Cale",
        "HotSpot",
        "ParkMobile",
        "Pay station",
        "Quick checkout",
    ]
    assert {"label": "Far Lot", "value": str(sample["other"])} in got["temps-lot"]["options"]
    assert "America/Toronto" in got["temps-tz"]["children"]


def test_filters_narrow_the_list_and_the_totals(app, core, login_as, sample) -> None:
    client = login_as(Role.MANAGER)
    hotspot = out(table(client, app, source="hotspot"))
    assert hotspot["temps-count"]["children"] == "1" and "HS 333" in text(hotspot)
    far = out(table(client, app, lot=str(sample["other"])))
    assert far["temps-count"]["children"] == "2" and far["temps-amount"]["children"] == "CAD 6.25"
    plate = out(table(client, app, plate="pm-444"))
    assert plate["temps-count"]["children"] == "1" and "PM 444" in text(plate)
    today = utcnow().astimezone(core.settings.tz).date().isoformat()
    recent = out(table(client, app, first=today))
    assert "=HYPERLINK(1)" not in text(recent) and "QC 111" in text(recent)
    nothing = out(table(client, app, source="hotspot", lot=str(sample["other"])))
    assert "No temporary permits match these filters." in text(nothing)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"first": "2026-12-05", "last": "2026-12-01"}, "To: the end date is before the start date"),
        ({"first": "yesterday"}, "From: a date as YYYY-MM-DD"),
        ({"first": "0001-01-01"}, "From: a date from 1900 to 2999"),
        ({"plate": " - "}, "Plate: enter letters or digits of the plate"),
        ({"plate": "X" * 40}, "Plate: at most 16 letters or digits"),
        ({"source": "s" * 200}, "Source: choose a source from the list"),
    ],
)
def test_bad_filters_say_what_is_wrong_and_keep_the_table(app, login_as, sample, values, message) -> None:
    got = out(table(login_as(Role.MANAGER), app, **values))
    assert message in text(got["temps-error"])
    assert "temps-table" not in got


def test_pages_of_fifty_and_a_changed_filter_starts_at_page_one(app, login_as, session) -> None:
    start = utcnow() - timedelta(days=1)
    for n in range(60):
        row = Permit(
            number=f"T-{n:06d}",
            kind=PermitKind.TEMPORARY,
            source=PermitSource.PARKMOBILE,
            external_id=f"PM-{n}",
            valid_from=start + timedelta(minutes=n),
            valid_to=start + timedelta(minutes=n + 30),
            amount_cents=100,
        )
        row.vehicles = [PermitVehicle(plate=f"PLT{n:03d}", plate_normalized=f"PLT{n:03d}")]
        session.add(row)
    session.commit()
    client = login_as(Role.MANAGER)
    first = out(table(client, app))
    assert first["temps-pages"] == {"max_value": 2, "active_page": 1}
    assert "PLT059" in text(first) and "PLT009" not in text(first)
    second = out(table(client, app, page=2, triggered="temps-pages.active_page"))
    assert second["temps-range"]["children"] == "Showing 51–60 of 60 permits"
    assert "PLT009" in text(second) and second["temps-amount"]["children"] == "CAD 60.00"
    refiltered = out(table(client, app, plate="plt", page=2, triggered="temps-plate.value"))
    assert refiltered["temps-pages"]["active_page"] == 1


def test_the_csv_holds_the_filtered_list_with_formulas_neutralised(app, core, login_as, sample) -> None:
    client = login_as(Role.MANAGER)
    every = outputs_of(dash_post(client, app, find_output(app, DOWNLOAD), [1], ["", "", None, None, None]))
    download = every["temps-download"]["data"]
    assert download["filename"].startswith("temporary-permits-") and download["type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(download["content"])))
    assert sorted(row["plate"] for row in rows) == sorted(
        ["QC 111", "PAY 222", "HS 333", "PM 444", "'=HYPERLINK(1)", "MTR 555"]
    )
    api = next(row for row in rows if row["permit"] == "T-OLDONE")
    assert api["external id"] == "'+SUM(A1)" and api["source"] == "API" and api["amount"] == "5.00"
    pushed = next(row for row in rows if row["permit"] == "T-PUSHED")
    assert pushed["lot"] == "Green Staff Lot East" and pushed["status"] == "active"
    # The start in the site's zone, as the page reads it.
    local = utcnow().astimezone(core.settings.tz)
    assert pushed["start (local)"][:4] == str(local.year)

    far = outputs_of(
        dash_post(client, app, find_output(app, DOWNLOAD), [1], ["", str(sample["other"]), None, None, None])
    )
    far_rows = list(csv.DictReader(io.StringIO(far["temps-download"]["data"]["content"])))
    assert sorted(row["plate"] for row in far_rows) == ["'=HYPERLINK(1)", "MTR 555"]


def test_a_bad_filter_exports_nothing_and_says_why(app, login_as, sample) -> None:
    client = login_as(Role.MANAGER)
    got = outputs_of(
        dash_post(client, app, find_output(app, DOWNLOAD), [1], ["", "", None, "2026-12-05", "2026-12-01"])
    )
    assert "temps-download" not in got
    assert "Not exported:" in text(got["temps-error"])
