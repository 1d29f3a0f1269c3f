"""A guest on a phone opens the Real-Time Map: the pins arrive, a pin's popup shows the donut and
the lots, and the page does not scroll sideways at 390 px."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Route, expect
from sqlalchemy import select

from dashboard import push
from dashboard.services import demo, occupancy, open_data
from models import Lot, LotGroup, Permit, PermitKind, PermitVehicle

pytestmark = pytest.mark.browser


@pytest.fixture
def phone(browser: Browser, monkeypatch: pytest.MonkeyPatch):
    """A short heartbeat lets the server notice the closed page at once, so no stream outlives the
    test (other browser tests count open streams)."""
    monkeypatch.setattr(push, "HEARTBEAT_SECONDS", 0.3)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    try:
        yield opened
    finally:
        opened.goto("about:blank")
        context.close()
        deadline = time.monotonic() + 5
        while push.active_streams() and time.monotonic() < deadline:
            time.sleep(0.05)


def test_a_guest_opens_a_pin_on_a_phone(live_server, phone, core, session, tmp_path) -> None:
    demo.seed_demo(session, core.secrets, tmp_path)
    session.commit()
    callback_calls: list[str] = []
    phone.on(
        "request",
        lambda r: callback_calls.append(r.post_data or "") if "_dash-update-component" in r.url else None,
    )
    tiles: list[int] = []
    phone.on("request", lambda r: tiles.append(int(r.url.split("/")[-3])) if r.url.endswith(".png") else None)
    errors: list[str] = []
    phone.on("pageerror", lambda error: errors.append(str(error)))
    phone.goto(f"{live_server}/real-time")
    pins = phone.locator("path.realtime-pin")
    expect(pins).to_have_count(7)
    # The map opened on the campus (its bounds came with the page): it never showed the world,
    # nor fetched the world's tiles, and every pin is on the map as drawn.
    assert tiles and min(tiles) >= 13, tiles
    shown = phone.locator("#realtime-map").bounding_box()
    for box in (pins.nth(n).bounding_box() for n in range(7)):
        assert shown["x"] <= box["x"] and box["x"] + box["width"] <= shown["x"] + shown["width"], box
        assert shown["y"] <= box["y"] and box["y"] + box["height"] <= shown["y"] + shown["height"], box
    pins.first.click(force=True)
    popup = phone.locator(".leaflet-popup")
    expect(popup).to_be_visible()
    expect(popup.locator(".realtime-donut .realtime-donut-ring").first).to_be_attached()
    expect(popup.locator(".realtime-donut")).to_have_attribute("aria-label", re.compile(r"\d+% available$"))
    expect(popup.get_by_role("link", name="Book permit")).to_be_visible()
    expect(popup.locator(".permit-standard")).to_have_count(0)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    # Dash's layout and callback list are preloaded by the page and the renderer uses those
    # responses: each is fetched once, by the <link rel=preload>, not again by the renderer.
    for path in ("/_dash-layout", "/_dash-dependencies"):
        fetched = phone.evaluate(
            "(url) => performance.getEntriesByName(url).map(e => e.initiatorType)", f"{live_server}{path}"
        )
        assert fetched == ["link"], (path, fetched)
    # The page and the menu came in the layout's own answer: neither Dash's pages router nor the
    # menu's callback was asked for them (the next test sees both answer a move).
    assert not [body for body in callback_calls if "_pages_content" in body or "shell-nav" in body]
    expect(phone.locator("#shell-nav")).to_contain_text("Real-Time Map")
    # Dash's babel polyfill is not sent; the regenerator runtime Dash's lazy loaders use is there.
    assert phone.evaluate("typeof window.regeneratorRuntime") == "object"
    assert phone.evaluate("typeof window._babelPolyfill") == "undefined"
    # The donut is CSS: the page never loads plotly.js, not even for the open popup.
    assert phone.evaluate("typeof window.Plotly") == "undefined"
    loaded = phone.evaluate("performance.getEntries().map(e => e.name)")
    assert not [url for url in loaded if "plotly" in url]
    # The pins came from the page's preload of their body, read once (the map's first read and the
    # page's first callback share it), drawn with Leaflet's own layer: no GeoJSON code loaded.
    fetched = phone.evaluate(
        "(url) => performance.getEntriesByName(url).map(e => e.initiatorType)",
        f"{live_server}/live/user-map.json",
    )
    assert fetched == ["link"], fetched
    assert not [url for url in loaded if "GeoJSON" in url]
    # Dragging the map (and the popup's own pan before) throws nothing.
    area = phone.locator("#realtime-map").bounding_box()
    phone.mouse.move(area["x"] + 60, area["y"] + area["height"] - 60)
    phone.mouse.down()
    phone.mouse.move(area["x"] + 160, area["y"] + area["height"] - 120, steps=5)
    phone.mouse.up()
    phone.wait_for_timeout(300)
    assert errors == []


def test_pages_reached_in_the_app_are_routed_back_and_forth(live_server, phone, core, session, tmp_path):
    """The first page comes with the layout; every later move is Dash's router's: a menu link,
    the browser's back and forward buttons, each showing its page."""
    demo.seed_demo(session, core.secrets, tmp_path)
    session.commit()
    phone.goto(f"{live_server}/real-time")
    expect(phone.locator("path.realtime-pin")).to_have_count(7)
    phone.get_by_role("button", name="Toggle navigation").click()
    expect(phone.locator("#shell-nav a.active")).to_have_text("Real-Time Map")
    with phone.expect_request(lambda r: "_pages_content" in (r.post_data or "")):
        phone.get_by_role("link", name="Home").click()
    expect(phone).to_have_url(f"{live_server}/")
    expect(phone.locator("#shell-nav a.active")).to_have_text("Home")  # the menu's callback answered
    expect(phone.locator("#realtime-map")).to_have_count(0)
    home = phone.locator("#_pages_content").get_by_role("heading", name="ParkOps", level=1)
    expect(home).to_be_visible()
    phone.go_back()
    expect(phone.locator("path.realtime-pin")).to_have_count(7)
    expect(phone).to_have_title(re.compile("^Real-Time Map"))
    phone.go_forward()
    expect(home).to_be_visible()
    expect(phone.locator("#realtime-map")).to_have_count(0)


def test_without_a_referer_callbacks_build_page_and_menu(live_server, phone, core, session, tmp_path):
    """A browser (or an extension) that sends no Referer gets the frame only: the page and the
    menu then come from their callbacks, as they did before the layout held them."""
    demo.seed_demo(session, core.secrets, tmp_path)
    session.commit()

    def without_referer(route: Route) -> None:
        """The page as served, told to send no Referer with its requests (a browser's setting)."""
        response = route.fetch()
        page = response.text().replace("<head>", '<head><meta name="referrer" content="no-referrer">', 1)
        route.fulfill(response=response, body=page)

    phone.route(f"{live_server}/real-time", without_referer)
    callback_calls: list[str] = []
    phone.on(
        "request",
        lambda r: callback_calls.append(r.post_data or "") if "_dash-update-component" in r.url else None,
    )
    phone.goto(f"{live_server}/real-time")
    expect(phone.locator("path.realtime-pin")).to_have_count(7)
    expect(phone.locator("#shell-nav")).to_contain_text("Real-Time Map")
    layout = phone.evaluate("() => performance.getEntriesByName(location.origin + '/_dash-layout').length")
    assert layout == 1
    assert [body for body in callback_calls if "_pages_content" in body]
    assert [body for body in callback_calls if "shell-nav" in body]


def fill_up(session, lot: Lot, now: datetime) -> None:
    """One more temporary permit, and the lot's allowance cut to what is sold: sold out."""
    permit = Permit(
        number=f"FULL-{lot.id}",
        kind=PermitKind.TEMPORARY,
        lot_id=lot.id,
        valid_from=now - timedelta(hours=1),
        valid_to=now + timedelta(hours=2),
    )
    permit.vehicles = [PermitVehicle(plate=f"FULL{lot.id}", plate_normalized=f"FULL{lot.id}")]
    session.add(permit)
    session.flush()
    lot.permits_allowed = occupancy.permit_counts(session, now, [lot.id])[lot.id]


def test_a_sold_out_pin_near_the_top_opens_clear_of_the_zoom_buttons_on_a_phone(
    live_server, phone, core, session, tmp_path
) -> None:
    """Columbia Street Lots is the northernmost pin, so its popup opens at the map's top edge,
    where the zoom buttons are. Its title must not sit under them, its text must be readable, and
    sold out, it offers a guest another lot and the waitlist instead of a Book button."""
    demo.seed_demo(session, core.secrets, tmp_path)
    now = datetime.now(UTC)
    columbia = session.scalars(select(LotGroup).where(LotGroup.name == "Columbia Street Lots")).one()
    for lot in columbia.lots:
        if lot.sells_temporary:
            fill_up(session, lot, now)
    session.commit()
    phone.set_viewport_size({"width": 360, "height": 740})
    phone.goto(f"{live_server}/real-time")
    pins = phone.locator("path.realtime-pin")
    expect(pins).to_have_count(7)
    phone.wait_for_timeout(500)  # the map fits itself to the pins
    boxes = [pin.bounding_box() for pin in pins.all()]
    top = min(range(len(boxes)), key=lambda i: boxes[i]["y"])
    pins.nth(top).click(force=True)
    popup = phone.locator(".leaflet-popup")
    title = popup.get_by_role("heading", name="Columbia Street Lots")
    expect(title).to_be_visible()
    expect(popup.get_by_text("Sold out: every permit is taken.")).to_be_visible()
    expect(popup.get_by_role("link", name="Book permit")).to_have_count(0)
    expect(popup.get_by_role("link", name="Log in")).to_have_attribute(
        "href", f"/login?next=%2Flot-groups%2F{columbia.id}"
    )
    expect(popup.locator(".realtime-sold-out-offer a[href^='/lot-groups/']")).to_have_count(1)
    phone.wait_for_timeout(600)  # Leaflet's pan into view is animated
    zoom = phone.locator(".leaflet-control-zoom").bounding_box()
    heading = title.bounding_box()
    assert heading["y"] >= zoom["y"] + zoom["height"], (heading, zoom)
    sizes = popup.locator(".realtime-lot, .realtime-lot .badge, .realtime-sold-out-offer li").evaluate_all(
        "nodes => nodes.map(n => parseFloat(getComputedStyle(n).fontSize))"
    )
    assert sizes and min(sizes) >= 14, sizes
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 360


def test_a_map_opened_on_the_world_moves_to_its_first_pins(live_server, phone, core, session) -> None:
    """No lot group is on the map when the page opens, so the map opens on the world. When the
    first group appears, the next read draws its pin and fits the map on it (once: later reads
    never move the map under the visitor's finger)."""
    tiles: list[int] = []
    phone.on("request", lambda r: tiles.append(int(r.url.split("/")[-3])) if r.url.endswith(".png") else None)
    phone.goto(f"{live_server}/real-time")
    expect(phone.locator("#realtime-map .leaflet-tile").first).to_be_attached()
    expect(phone.locator("path.realtime-pin")).to_have_count(0)
    assert tiles and max(tiles) <= 2, tiles
    group = LotGroup(name="First Group", map_color="#1f77b4", latitude=43.4723, longitude=-80.5449)
    group.lots = [Lot(name="First Lot", capacity=100, sells_temporary=True)]
    session.add(group)
    session.commit()
    open_data.list_cache(core.redis).invalidate()
    # The page reads again when its table is opened; the map then fits on the pin, so it asks for
    # the campus's tiles (at most zoom 16), not the world's.
    with phone.expect_request(lambda r: r.url.endswith(".png") and int(r.url.split("/")[-3]) >= 13):
        phone.get_by_role("button", name="Show the map as a table").click()
    pin = phone.locator("path.realtime-pin")
    expect(pin).to_have_count(1)
    expect(phone.locator("#realtime-table")).to_contain_text("First Group")
    shown = phone.locator("#realtime-map").bounding_box()
    box = pin.bounding_box()
    assert shown["x"] <= box["x"] and box["x"] + box["width"] <= shown["x"] + shown["width"], box
    assert shown["y"] <= box["y"] and box["y"] + box["height"] <= shown["y"] + shown["height"], box
