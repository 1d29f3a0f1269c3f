"""Placing a new lot group with a click, in a real browser: an admin opens the editor, clicks the
map, sees latitude and longitude filled from the click and the pin where it was clicked, saves,
and lands on the list with a message and the new group in the table."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from models import LotGroup, Role
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def test_an_admin_places_a_new_group_by_clicking_the_map(
    journey: Page, live_server, make_user, session
) -> None:
    admin = make_user(Role.ADMIN)
    sign_in(journey, live_server, admin.email, "/admin/lot-groups")

    journey.click("#lotgroups-add")
    expect(journey).to_have_url(f"{live_server}/admin/lot-groups/new")
    expect(journey.get_by_role("heading", name="Add lot group")).to_be_visible()
    latitude, longitude = journey.locator("#lotgroupedit-lat"), journey.locator("#lotgroupedit-lon")
    expect(latitude).to_have_value("")

    the_map = journey.locator("#lotgroupedit-map")
    expect(the_map).to_be_visible()
    box = the_map.bounding_box()
    assert box is not None
    the_map.click(position={"x": box["width"] * 0.6, "y": box["height"] * 0.4})
    expect(latitude).not_to_have_value("")
    expect(longitude).not_to_have_value("")
    lat, lon = float(latitude.input_value()), float(longitude.input_value())
    # Right of and above the centre of the initial world view ([20, 0], zoom 2).
    assert 20 < lat <= 90 and 0 < lon <= 180
    expect(journey.locator("#lotgroupedit-map path.leaflet-interactive")).to_have_count(1)

    journey.fill("#lotgroupedit-name", "Picker Garage")
    journey.fill("#lotgroupedit-plx-name", "Picker PL")
    ARTIFACTS.mkdir(exist_ok=True)
    journey.screenshot(path=str(ARTIFACTS / "lot-group-picker.png"), full_page=True)
    journey.click("#lotgroupedit-save")

    expect(journey).to_have_url(f"{live_server}/admin/lot-groups")
    expect(journey.locator("#lotgroups-notice")).to_contain_text("Lot group “Picker Garage” created.")
    expect(journey.locator("#lotgroups-grid")).to_contain_text("Picker Garage")
    group = session.scalar(select(LotGroup).where(LotGroup.name == "Picker Garage"))
    assert group is not None
    assert (round(group.latitude, 6), round(group.longitude, 6)) == (lat, lon)
    assert group.parking_logix_name == "Picker PL"


def test_an_existing_group_shows_its_pin_and_a_typed_point_moves_it(
    journey: Page, live_server, make_user, session
) -> None:
    group = LotGroup(name="Typed Garage", map_color="#aa0000", latitude=43.4762, longitude=-80.5478)
    session.add(group)
    session.commit()
    admin = make_user(Role.ADMIN)
    sign_in(journey, live_server, admin.email, f"/admin/lot-groups/{group.id}/edit")
    expect(journey.locator("#lotgroupedit-name")).to_have_value("Typed Garage")
    expect(journey.locator("#lotgroupedit-lat")).to_have_value("43.4762")
    pin = journey.locator("#lotgroupedit-map path.leaflet-interactive")
    expect(pin).to_have_count(1)
    before = pin.get_attribute("d")

    journey.fill("#lotgroupedit-lat", "43.4770")
    journey.press("#lotgroupedit-lat", "Enter")
    expect(pin).not_to_have_attribute("d", before)  # the pin moved north
    journey.click("#lotgroupedit-save")
    expect(journey).to_have_url(f"{live_server}/admin/lot-groups")
    expect(journey.locator("#lotgroups-notice")).to_contain_text("changed: Latitude")
