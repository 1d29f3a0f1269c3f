"""Real-Time Map (Admin) in a browser: an admin opens the map, clicks a lot group's pin and reads
both figures in its popup; a new count then shows in the open popup and in the text table without
a reload, the popup staying open on the same pin. A name typed by an admin shows as text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from dashboard.services.occupancy import LiveStore, apply_figure
from models import Lot, LotGroup, OccupancySource, Role
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def garage(core, session) -> int:
    group = LotGroup(
        name="North Garage", map_color="#123456", latitude=43.4762, longitude=-80.5478, mistall_lot_id="M-17"
    )
    session.add(group)
    session.flush()
    session.add(
        Lot(name="North Level 1", code="N1", capacity=280, permits_allowed=250, lot_group_id=group.id)
    )
    session.commit()
    record(core, session, group.id, 10)
    return group.id


def record(core, session, group_id: int, occupied: int) -> None:
    apply_figure(
        session,
        LiveStore(core.redis),
        group_id,
        OccupancySource.MISTALL,
        occupied,
        200,
        datetime.now(UTC),
        step_percent=5,
    )
    session.commit()


def test_the_popup_shows_both_figures_and_follows_new_counts(
    journey: Page, live_server, make_user, core, session, garage
) -> None:
    admin = make_user(Role.ADMIN)
    tiles: list[int] = []
    journey.on(
        "request", lambda r: tiles.append(int(r.url.split("/")[-3])) if r.url.endswith(".png") else None
    )
    errors: list[str] = []
    journey.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(journey, live_server, admin.email, "/admin/map")
    row = journey.locator(f"#adminmap-row-{garage}")
    expect(row.locator(".adminmap-physical")).to_have_text("10 / 200")

    # The map opened on the pin (its bounds came with the page), never on the world.
    assert tiles and min(tiles) >= 13, tiles
    journey.locator("#adminmap-map path.leaflet-interactive").first.click()
    popup = journey.locator(".leaflet-popup .adminmap-popup")
    expect(popup).to_be_visible()
    expect(popup).to_contain_text("Physical count (Mistall)")
    expect(popup.locator(".adminmap-physical")).to_have_text("10 / 200")
    expect(popup).to_contain_text("Permits sold (lot info)")
    expect(popup).to_contain_text("North Level 1")
    expect(popup.locator(".adminmap-permits")).to_contain_text("0 / 250 sold")
    expect(popup).to_contain_text("meant to differ")

    pin = journey.locator("#adminmap-map path.adminmap-pin")
    pin.first.evaluate("pin => { pin.dataset.seen = 'before'; }")

    record(core, session, garage, 57)
    expect(popup.locator(".adminmap-physical")).to_have_text("57 / 200", timeout=3_000)
    expect(row.locator(".adminmap-physical")).to_have_text("57 / 200", timeout=3_000)
    # Updated in place: the popup never closed, and the pin is the same element, where it was.
    expect(journey.locator(".leaflet-popup")).to_have_count(1)
    expect(journey.locator("#adminmap-map path.adminmap-pin[data-seen='before']")).to_have_count(1)
    expect(popup).to_contain_text("updated ")
    assert errors == []  # opening the popup moved the map: nothing threw


def test_a_name_typed_by_an_admin_is_text(journey: Page, live_server, make_user, core, session) -> None:
    name = '<img src=x onerror="window.parkopsInjected=1">Garage'
    group = LotGroup(name=name, map_color="#123456", latitude=43.47, longitude=-80.54)
    session.add(group)
    session.flush()
    session.add(Lot(name="<b>Level</b>", code="L1", capacity=10, permits_allowed=5, lot_group_id=group.id))
    session.commit()
    admin = make_user(Role.ADMIN)
    sign_in(journey, live_server, admin.email, "/admin/map")
    expect(journey.locator(f"#adminmap-row-{group.id} th")).to_have_text(name)
    journey.locator("#adminmap-map path.leaflet-interactive").first.click()
    popup = journey.locator(".leaflet-popup .adminmap-popup")
    expect(popup.locator(".fw-bold").first).to_have_text(name)
    expect(popup.locator(".adminmap-lots td").first).to_have_text("<b>Level</b>")
    assert popup.locator("img, b").count() == 0
    assert journey.evaluate("window.parkopsInjected === undefined")


def test_on_a_phone_the_popup_opens_clear_of_the_zoom_buttons_inside_the_map(
    journey: Page, live_server, make_user, core, session, garage
) -> None:
    """One pin, so the map centres on it and its popup opens upwards into the zoom buttons' corner:
    the title must end up below them, the popup inside the map, its text at least 14 px."""
    admin = make_user(Role.ADMIN)
    journey.set_viewport_size({"width": 360, "height": 740})
    sign_in(journey, live_server, admin.email, "/admin/map")
    expect(journey.locator(f"#adminmap-row-{garage}")).to_be_visible()
    journey.locator("#adminmap-map path.leaflet-interactive").first.click()
    popup = journey.locator(".leaflet-popup .adminmap-popup")
    expect(popup).to_contain_text("North Garage")
    journey.wait_for_timeout(600)  # Leaflet's pan into view is animated
    title = popup.locator(".fw-bold").first.bounding_box()
    zoom = journey.locator("#adminmap-map .leaflet-control-zoom").bounding_box()
    area = journey.locator("#adminmap-map").bounding_box()
    box = journey.locator(".leaflet-popup-content-wrapper").bounding_box()
    assert title["y"] >= zoom["y"] + zoom["height"], (title, zoom)
    assert box["x"] >= area["x"] and box["x"] + box["width"] <= area["x"] + area["width"], (box, area)
    sizes = popup.locator("div, td, th").evaluate_all(
        "nodes => nodes.filter(n => n.textContent.trim()).map(n => parseFloat(getComputedStyle(n).fontSize))"
    )
    assert sizes and min(sizes) >= 14, sizes
    assert popup.evaluate("p => p.scrollWidth <= p.parentElement.clientWidth")  # nothing cut off
    assert journey.evaluate("document.scrollingElement.scrollWidth") <= 360
