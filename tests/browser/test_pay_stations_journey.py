"""Pay Station Status in a real browser: a manager sees the imported records with the "active now"
badge and totals, narrows them by plate, and on a 360 px phone the page does not scroll sideways."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from models import Lot, LotZone, LotZoneSchedule, PayStationRecord, Role, utcnow
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture
def records(session) -> None:
    zone = LotZone(name="1001")
    lot = Lot(name="Green Staff Lot East", capacity=50)
    session.add_all([zone, lot])
    session.flush()
    session.add(LotZoneSchedule(lot_id=lot.id, zone_id=zone.id))
    now = utcnow()
    for n, (plate, hours) in enumerate([("ABC-123", 1), ("CBXR 442", -3), ("GHJ 778", 2)]):
        session.add(
            PayStationRecord(
                source="parkmobile",
                external_id=f"PM-{n}",
                plate=plate,
                plate_normalized=plate.replace("-", "").replace(" ", ""),
                zone_id=zone.id,
                zone_name="1001",
                start_at=now - timedelta(hours=2),
                end_at=now + timedelta(hours=hours),
                amount_cents=650 * (n + 1),
                currency="CAD",
            )
        )
    session.commit()


def test_a_manager_reads_and_filters_pay_station_records(page: Page, live_server, make_user, records) -> None:
    manager = make_user(Role.MANAGER)
    sign_in(page, live_server, manager.email, "/admin/pay-stations")

    grid = page.locator("#paystations-grid")
    expect(grid).to_contain_text("Green Staff Lot East")
    expect(grid.locator("tbody tr")).to_have_count(3)
    expect(page.locator("#paystations-count")).to_have_text("3")
    expect(page.locator("#paystations-active")).to_have_text("2")
    expect(page.locator("#paystations-amount")).to_have_text("CAD 39.00")
    expect(page.locator("#paystations-source")).to_contain_text("ParkMobile")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "pay-stations-wide.png"), full_page=True)

    page.get_by_label("Plate").fill("abc 123")
    page.get_by_label("Plate").press("Enter")
    expect(grid.locator("tbody tr")).to_have_count(1)
    expect(grid).to_contain_text("Active now")
    expect(page.locator("#paystations-amount")).to_have_text("CAD 6.50")

    page.set_viewport_size({"width": 360, "height": 800})
    page.get_by_label("Plate").fill("")
    page.get_by_label("Plate").press("Enter")
    expect(grid.locator("tbody tr")).to_have_count(3)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=str(ARTIFACTS / "pay-stations-phone.png"), full_page=True)
