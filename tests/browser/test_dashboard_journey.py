"""The Dashboard in a browser: with Enable Mistall Usage on and Mistall lots imported, an admin adds
mistall-lot-stats on Edit Dashboard (by keyboard, too), sees its bars labelled with the lot group's
name or Mistall's lot name on /admin, removes it, and it is gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from dashboard.services import system_settings
from dashboard.services.occupancy import LiveStore, apply_figure
from models import LotGroup, MistallLot, OccupancySnapshot, OccupancySource, Role
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture
def mistall(core) -> None:
    now = datetime.now(UTC)
    with core.db.session() as s:
        # Universal Boot on: the admin's default dashboard then holds Boots In Use too (six widgets).
        system_settings.update(
            s, core.secrets, {"mistall_enabled": True, "boot_universal_enabled": True}, actor_id=None
        )
        s.add_all(
            [
                MistallLot(
                    mistall_id="M-1",
                    name="Mistall Lot Alpha",
                    capacity=300,
                    occupied=120,
                    reported_at=now - timedelta(minutes=4),
                    imported_at=now - timedelta(minutes=3),
                ),
                MistallLot(
                    mistall_id="M-2",
                    name="Mistall Lot Beta",
                    capacity=90,
                    occupied=30,
                    reported_at=now - timedelta(minutes=4),
                    imported_at=now - timedelta(minutes=3),
                ),
                LotGroup(name="Garage Group", mistall_lot_id="M-1"),
            ]
        )


def test_admin_adds_sees_and_removes_the_mistall_widget(
    journey: Page, live_server, make_user, core, mistall
) -> None:
    admin = make_user(Role.ADMIN)
    sign_in(journey, live_server, admin.email, "/admin/dashboard/edit")

    offered = journey.locator("#dashedit-available-mistall-lot-stats")
    expect(offered).to_contain_text("mistall-lot-stats")
    offered.get_by_role("button", name="Add").click()
    expect(journey.locator("#dashedit-status")).to_contain_text("Mistall Lot Stats added")
    current = journey.locator("#dashedit-current-mistall-lot-stats")
    expect(current).to_be_visible()
    expect(offered).to_have_count(0)

    # keyboard: Move up by Enter keeps the focus on the moved widget's button
    current.get_by_role("button", name="Move up").focus()
    journey.keyboard.press("Enter")
    expect(journey.locator("#dashedit-status")).to_contain_text("moved to place 6")
    moved = journey.locator("#dashedit-current-list li").nth(5)
    expect(moved).to_have_id("dashedit-current-mistall-lot-stats")
    expect(moved.get_by_role("button", name="Move up")).to_be_focused()

    journey.get_by_role("link", name="Back to the Dashboard").click()
    expect(journey).to_have_url(f"{live_server}/admin")
    card = journey.locator("#dashboard-widget-mistall-lot-stats")
    expect(card).to_contain_text("Mistall Lot Stats")
    expect(card).to_contain_text("Reported 4 min ago")
    labels = card.locator(".ytick text")
    expect(labels).to_have_count(2)
    expect(labels.nth(0)).to_have_text("Garage Group")
    expect(labels.nth(1)).to_have_text("Mistall Lot Beta")
    card.get_by_text("Show the figures as a table").click()
    expect(card.locator("table")).to_contain_text("Mistall Lot Alpha (M-1)")
    ARTIFACTS.mkdir(exist_ok=True)
    journey.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    journey.get_by_role("link", name="Edit Dashboard").click()
    expect(journey).to_have_url(f"{live_server}/admin/dashboard/edit")
    journey.locator("#dashedit-current-mistall-lot-stats").get_by_role("button", name="Remove").click()
    expect(journey.locator("#dashedit-status")).to_contain_text("Mistall Lot Stats removed")
    expect(journey.locator("#dashedit-available-mistall-lot-stats")).to_be_visible()

    journey.get_by_role("link", name="Back to the Dashboard").click()
    expect(journey.locator("#dashboard-widget-occupancy-summary")).to_be_visible()
    expect(journey.locator("#dashboard-widget-mistall-lot-stats")).to_have_count(0)


def test_the_dashboard_fits_a_phone(journey: Page, live_server, make_user, core, mistall) -> None:
    """360 px wide: no horizontal page scroll, charts included."""
    now = datetime.now(UTC)
    with core.db.session() as s:
        group = s.scalars(select(LotGroup)).one()
        store = LiveStore(core.redis)
        apply_figure(s, store, group.id, OccupancySource.MISTALL, 150, 300, now, step_percent=5)
        s.add_all(
            OccupancySnapshot(
                lot_group_id=group.id,
                source=OccupancySource.MISTALL,
                occupied=occupied,
                capacity=300,
                recorded_at=now - timedelta(minutes=minutes),
            )
            for occupied, minutes in ((60, 50), (90, 30), (120, 10))
        )
    admin = make_user(Role.ADMIN)
    journey.set_viewport_size({"width": 360, "height": 740})
    sign_in(journey, live_server, admin.email, "/admin")
    expect(journey.locator("#dashboard-widget-occupancy-today")).to_contain_text(
        "Percent full since midnight"
    )
    expect(journey.locator("#dashboard-widget-permits-today")).to_contain_text("permit(s) sold")
    expect(journey.locator("#dashboard-widget-occupancy-summary")).to_contain_text("150 / 300")
    expect(journey.locator("#dashboard-widget-occupancy-today .scatterlayer .trace")).to_have_count(1)
    width = journey.evaluate("document.documentElement.scrollWidth")
    assert width <= 360
    ARTIFACTS.mkdir(exist_ok=True)
    journey.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
