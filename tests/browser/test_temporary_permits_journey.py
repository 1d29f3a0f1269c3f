"""Temporary Permits in a real browser: a manager opens it from the Parking menu, sees the sales of
every channel with times in words, narrows them by source, downloads the CSV of what is shown, and
on a 390 px phone the page does not scroll sideways."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from models import (
    Lot,
    LotZone,
    LotZoneSchedule,
    Permit,
    PermitKind,
    PermitSource,
    PermitVehicle,
    Role,
    utcnow,
)
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture
def sales(session) -> None:
    zone = LotZone(name="1001")
    lot = Lot(name="Green Staff Lot East", capacity=50)
    session.add_all([zone, lot])
    session.flush()
    session.add(LotZoneSchedule(lot_id=lot.id, zone_id=zone.id))
    now = utcnow()
    channels = [
        ("QC 111", PermitSource.PORTAL, None, {"lot_id": lot.id}),
        ("PAY 222", PermitSource.PAYSTATION, "PS-2", {"lot_id": lot.id}),
        ("HS 333", PermitSource.HOTSPOT, "HS-3", {"zone_id": zone.id}),
        ("PM 444", PermitSource.PARKMOBILE, "PM-4", {"zone_id": zone.id, "lot_id": lot.id}),
    ]
    for n, (plate, source, external_id, where) in enumerate(channels):
        permit = Permit(
            number=f"T-JOURNEY{n}",
            kind=PermitKind.TEMPORARY,
            source=source,
            external_id=external_id,
            valid_from=now - timedelta(hours=1),
            valid_to=now + timedelta(hours=n + 1),
            amount_cents=500 * (n + 1),
            **where,
        )
        permit.vehicles = [PermitVehicle(plate=plate, plate_normalized=plate.replace(" ", ""))]
        session.add(permit)
    session.commit()


def test_a_manager_reads_filters_and_downloads_every_temporary_sale(
    page: Page, live_server, make_user, sales
) -> None:
    manager = make_user(Role.MANAGER)
    sign_in(page, live_server, manager.email, "/admin")
    page.goto(f"{live_server}/admin/temporary-permits")
    expect(page.get_by_role("heading", name="Temporary Permits")).to_be_visible()

    expect(page.locator("#temps-source")).to_contain_text("All sources")
    grid = page.locator("#temps-grid")
    expect(grid.locator("tbody tr")).to_have_count(4)
    for text in ("Quick checkout", "Pay station", "HotSpot", "ParkMobile", "1001 · Green Staff Lot East"):
        expect(grid).to_contain_text(text)
    expect(grid).to_contain_text(" today")
    expect(page.locator("#temps-amount")).to_have_text("CAD 50.00")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "temporary-permits-wide.png"), full_page=True)

    page.select_option("#temps-source", label="ParkMobile")
    expect(grid.locator("tbody tr")).to_have_count(1)
    expect(grid).to_contain_text("PM 444")
    expect(page.locator("#temps-amount")).to_have_text("CAD 20.00")
    with page.expect_download() as pending:
        page.click("#temps-export")
    content = Path(pending.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(content)))
    assert [(row["plate"], row["source"], row["amount"]) for row in rows] == [
        ("PM 444", "ParkMobile", "20.00")
    ]

    page.set_viewport_size({"width": 390, "height": 844})
    # Index 0 is dbc.Select's hidden placeholder (also "All sources"); 1 is the choice.
    page.select_option("#temps-source", index=1)
    expect(grid.locator("tbody tr")).to_have_count(4)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "temporary-permits-phone.png"), full_page=True)
