"""Pay Station Status over HTTP: only managers and admins get filter choices or records; filters,
totals, the "active now" badge, paging and the time window in the site's time zone (Toronto here)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from models import Lot, LotZone, LotZoneSchedule, PayStationRecord, Permit, PermitStatus, Role, utcnow
from tests.api.partners import bearer, issue_key
from tests.dash_helpers import dash_post, find_output, outputs_of

TABLE = "paystations-table.children"
OPTIONS = "paystations-source.options"
REFUSED = [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403)]


@pytest.fixture
def sample(session) -> dict[str, int]:
    zone = LotZone(name="1001")
    lot = Lot(name="Green Staff Lot East", capacity=50)
    session.add_all([zone, lot])
    session.flush()
    session.add(LotZoneSchedule(lot_id=lot.id, zone_id=zone.id))
    now = utcnow()
    session.add_all(
        [
            PayStationRecord(
                source="parkmobile",
                external_id="PM-1",
                plate="ABC-123",
                plate_normalized="ABC123",
                zone_id=zone.id,
                zone_name="1001",
                start_at=now - timedelta(hours=1),
                end_at=now + timedelta(hours=1),
                amount_cents=650,
                currency="CAD",
            ),
            PayStationRecord(
                source="cale",
                external_id="C-9",
                plate="XYZ 999",
                plate_normalized="XYZ999",
                zone_name="Meter 12",
                start_at=now - timedelta(days=2),
                end_at=now - timedelta(days=2) + timedelta(hours=2),
                amount_cents=1325,
                currency="CAD",
            ),
        ]
    )
    session.commit()
    return {"zone": zone.id, "lot": lot.id}


def table(
    client,
    app,
    source: str = "",
    zone: str = "",
    lot: str = "",
    plate: str | None = None,
    start: str | None = None,
    end: str | None = None,
    page: int = 1,
    triggered: str | None = None,
) -> Any:
    return dash_post(
        client,
        app,
        find_output(app, TABLE),
        [source, zone, lot, plate, start, end, page, None],
        triggered=triggered,
    )


def options(client, app) -> Any:
    return dash_post(client, app, find_output(app, OPTIONS), [0])


def out(response: Any) -> dict[str, dict[str, Any]]:
    return outputs_of(response)


def text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def test_the_page_is_for_managers_and_holds_no_data(login_as, sample) -> None:
    assert login_as(Role.GUEST).get("/admin/pay-stations").status_code == 302
    assert login_as(Role.OFFICER).get("/admin/pay-stations").status_code == 403
    page = login_as(Role.MANAGER).get("/admin/pay-stations")
    assert page.status_code == 200
    assert b"ABC-123" not in page.data and b"Green Staff Lot East" not in page.data


@pytest.mark.parametrize(("role", "status"), REFUSED)
def test_lower_roles_get_no_records_and_no_choices(app, login_as, sample, role, status) -> None:
    client = login_as(role)
    listed = table(client, app)
    assert listed.status_code == status and b"ABC-123" not in listed.data
    chosen = options(client, app)
    assert chosen.status_code == status and b"Green Staff Lot East" not in chosen.data


@pytest.mark.parametrize("role", [Role.MANAGER, Role.ADMIN])
def test_managers_get_the_filter_choices(app, login_as, sample, role) -> None:
    got = out(options(login_as(role), app))
    assert got["paystations-source"]["options"] == [
        {"label": "All sources", "value": ""},
        {"label": "Cale", "value": "cale"},
        {"label": "ParkMobile", "value": "parkmobile"},
    ]
    assert got["paystations-zone"]["options"][1] == {"label": "1001", "value": str(sample["zone"])}
    assert got["paystations-lot"]["options"][1] == {
        "label": "Green Staff Lot East",
        "value": str(sample["lot"]),
    }
    assert "America/Toronto" in got["paystations-tz"]["children"]


def test_a_manager_sees_every_record_with_totals_and_the_active_badge(app, login_as, sample) -> None:
    got = out(table(login_as(Role.MANAGER), app))
    grid = text(got["paystations-table"]["children"])
    assert "ABC-123" in grid and "XYZ 999" in grid
    assert "ParkMobile" in grid and "Green Staff Lot East" in grid and "Meter 12" in grid
    assert grid.count("Active now") == 1 and grid.count("Ended") == 1
    assert "CAD 6.50" in grid and "CAD 13.25" in grid
    assert got["paystations-count"]["children"] == "2"
    assert got["paystations-active"]["children"] == "1"
    assert got["paystations-amount"]["children"] == "CAD 19.75"
    assert got["paystations-range"]["children"] == "Showing 1–2 of 2 records"
    assert got["paystations-pages"] == {"max_value": 1, "active_page": 1}
    assert got["paystations-error"]["children"] is None


def test_a_record_imported_past_its_zone_capacity_is_flagged(app, login_as, session, sample) -> None:
    record = session.query(PayStationRecord).filter_by(external_id="PM-1").one()
    record.over_capacity = True
    session.commit()
    grid = text(out(table(login_as(Role.MANAGER), app))["paystations-table"]["children"])
    assert grid.count("Over allowance") == 1 and "Active now" in grid


def test_filters_narrow_the_records_and_the_totals(app, login_as, sample) -> None:
    client = login_as(Role.MANAGER)
    by_source = out(table(client, app, source="cale"))
    assert "XYZ 999" in text(by_source) and "ABC-123" not in text(by_source)
    assert by_source["paystations-amount"]["children"] == "CAD 13.25"
    by_lot = out(table(client, app, lot=str(sample["lot"])))
    assert "ABC-123" in text(by_lot) and "XYZ 999" not in text(by_lot)
    by_plate = out(table(client, app, plate="xyz-999"))
    assert by_plate["paystations-count"]["children"] == "1" and "XYZ 999" in text(by_plate)
    nothing = out(table(client, app, zone=str(sample["zone"]), source="cale"))
    assert "No records match these filters." in text(nothing)
    assert nothing["paystations-amount"]["children"] == "—"


def test_the_window_is_read_in_the_site_time_zone(app, core, login_as, sample) -> None:
    local_now = utcnow().astimezone(core.settings.tz)
    since = (local_now - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    got = out(table(login_as(Role.MANAGER), app, start=since))
    assert got["paystations-count"]["children"] == "1" and "ABC-123" in text(got)


def test_a_bad_window_is_shown_with_its_label_and_keeps_the_table(app, login_as, sample) -> None:
    got = out(table(login_as(Role.MANAGER), app, start="2024-05-01T10:00", end="2024-05-01T09:00"))
    assert "To: must be after From" in text(got["paystations-error"])
    assert "paystations-table" not in got


def test_a_changed_filter_starts_at_page_one(app, login_as, sample) -> None:
    client = login_as(Role.MANAGER)
    paged = out(table(client, app, page=5, triggered="paystations-pages.active_page"))
    assert paged["paystations-pages"]["active_page"] == 1  # only one page exists
    filtered = out(table(client, app, page=5, plate="abc", triggered="paystations-plate.value"))
    assert filtered["paystations-pages"]["active_page"] == 1
    assert "ABC-123" in text(filtered)


def test_pages_of_fifty(app, login_as, session) -> None:
    start = utcnow() - timedelta(days=1)
    session.add_all(
        PayStationRecord(
            source="parkmobile",
            external_id=f"PM-{n:03d}",
            plate=f"PLT{n:03d}",
            plate_normalized=f"PLT{n:03d}",
            zone_name="9999",
            start_at=start + timedelta(minutes=n),
            end_at=start + timedelta(minutes=n + 30),
            amount_cents=100,
            currency="CAD",
        )
        for n in range(60)
    )
    session.commit()
    client = login_as(Role.MANAGER)
    first = out(table(client, app))
    assert first["paystations-pages"] == {"max_value": 2, "active_page": 1}
    assert first["paystations-range"]["children"] == "Showing 1–50 of 60 records"
    assert "PLT059" in text(first) and "PLT009" not in text(first)
    second = out(table(client, app, page=2, triggered="paystations-pages.active_page"))
    assert second["paystations-range"]["children"] == "Showing 51–60 of 60 records"
    assert "PLT009" in text(second) and "PLT059" not in text(second)
    assert second["paystations-amount"]["children"] == "CAD 60.00"


def test_a_permit_a_pay_station_pushed_is_listed_and_its_cancellation_shows(
    app, core, login_as, sample
) -> None:
    """Point C: a pay station's push through the partner API appears beside the records, in its
    lot, and stays listed, marked cancelled, when the pay station withdraws it."""
    key = issue_key(core, "permits:write", sources=("paystation",))
    now = utcnow()
    body = {
        "source": "paystation",
        "external_id": "PS-77",
        "plate": "PUSH 77",
        "lot": "Green Staff Lot East",
        "start": (now - timedelta(minutes=5)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
        "amount_cents": 400,
    }
    pushed = app.test_client().post("/api/v1/permits", json=body, headers=bearer(key))
    assert pushed.status_code == 201, pushed.get_data(as_text=True)
    client = login_as(Role.MANAGER)
    got = out(table(client, app, source="paystation"))
    grid = text(got["paystations-table"]["children"])
    assert "PUSH 77" in grid and "Pay station" in grid and "Green Staff Lot East" in grid
    assert got["paystations-count"]["children"] == "1" and got["paystations-active"]["children"] == "1"
    assert "Pay station" in text(out(options(client, app))["paystations-source"]["options"])

    with core.db.session() as s:
        s.scalars(select(Permit).where(Permit.external_id == "PS-77")).one().status = PermitStatus.CANCELLED
    after = out(table(client, app, source="paystation"))
    assert "Cancelled" in text(after["paystations-table"]) and after["paystations-active"]["children"] == "0"
