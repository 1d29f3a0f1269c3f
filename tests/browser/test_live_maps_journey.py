"""Sensor to screen on both maps: a count published over MQTT goes through the ingester and moves
the figure in the admin's open popup and the donut in a guest's open popup, without a reload and
without closing either popup. Then a guest reads a content page that embeds the live map with
``[real-time-map]``: it shows the pins, and only temporary permits.

The broker is the suite's (embedded amqtt, or Mosquitto in the service run) and the ingester is
the real one, in a thread, as ``parkops run`` starts it.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from dashboard.services import content, demo, devices
from models import DeviceKind, Lot, LotGroup, PermitKind, PermitProduct, Pricing, Role
from tests.browser.signing import sign_in
from workers import ingest
from workers.mqtt import make_client

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DEVICE = "cnt-journey-1"


@pytest.fixture
def garage(session) -> int:
    group = LotGroup(name="North Garage", map_color="#123456", latitude=43.4762, longitude=-80.5478)
    session.add(group)
    session.flush()
    lot = Lot(name="North Level 1", code="N1", capacity=200, lot_group_id=group.id, sells_temporary=True)
    session.add(lot)
    session.flush()
    session.add_all(
        [
            PermitProduct(
                lot_id=lot.id, kind=PermitKind.STANDARD, name="Term", pricing=Pricing.TERM, price_cents=1
            ),
            PermitProduct(
                lot_id=lot.id, kind=PermitKind.TEMPORARY, name="Hour", pricing=Pricing.HOURLY, price_cents=1
            ),
        ]
    )
    devices.add_device(session, device_id=DEVICE, kind=DeviceKind.COUNTER, lot_id=lot.id, actor_id=None)
    session.commit()
    return group.id


@pytest.fixture
def ingester(core) -> Iterator[None]:
    stop = threading.Event()
    client_id = f"parkops-ingest-journey-{uuid.uuid4().hex[:8]}"
    thread = ingest.start_ingester_thread(core, stop, client_id=client_id)
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
        client, address = make_client(core.mqtt_url, client_id)  # forget the persistent session
        client.connect(address.host, address.port)
        client.loop_start()
        client.disconnect()
        client.loop_stop()


def publish_count(core, occupied: int) -> None:
    topic = f"{core.settings.mqtt_topic_prefix}/counters/{DEVICE}/count"
    body = {"ts": datetime.now(UTC).isoformat(), "occupied": occupied, "capacity": 200}
    client, address = make_client(core.mqtt_url, f"parkops-journey-pub-{uuid.uuid4().hex[:8]}")
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        client.publish(topic, json.dumps(body).encode(), qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def guest_page(browser: Browser) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    return opened


def test_an_mqtt_count_moves_the_admin_popup_and_the_guest_donut(
    journey: Page, browser: Browser, live_server, make_user, core, garage, ingester
) -> None:
    admin = make_user(Role.ADMIN)
    sign_in(journey, live_server, admin.email, "/admin/map")

    # The first count proves the path broker -> ingester -> Redis -> push is up (the ingester
    # subscribes after its thread starts; the count is re-published until it is seen).
    row = journey.locator(f"#adminmap-row-{garage} .adminmap-physical")
    for _attempt in range(5):
        publish_count(core, 40)
        try:
            expect(row).to_have_text("40 / 200", timeout=3_000)
            break
        except AssertionError:
            continue
    expect(row).to_have_text("40 / 200")

    journey.locator("#adminmap-map path.leaflet-interactive").first.click()
    admin_popup = journey.locator(".leaflet-popup .adminmap-popup")
    expect(admin_popup.locator(".adminmap-physical")).to_have_text("40 / 200")

    guest = guest_page(browser)
    try:
        guest.goto(f"{live_server}/real-time")
        guest.locator("path.realtime-pin").first.hover(force=True)  # its tooltip is made on the way
        expect(guest.locator(".leaflet-tooltip")).to_have_text("North Garage: 80% available")
        guest.locator("path.realtime-pin").first.click(force=True)
        donut = guest.locator(".leaflet-popup .realtime-donut")
        expect(donut).to_have_attribute("aria-label", "North Garage: 80% available")
        expect(guest.locator("#realtime-live-status")).to_have_text("Live")
        # Pins keep their place on a refresh: the same element, not a new pin drawn over it.
        guest.locator("path.realtime-pin").first.evaluate("pin => { pin.dataset.seen = 'before'; }")
        # And an open popup keeps its elements (a tap on its link is not lost to a rebuild): marked
        # by a property, which copying the new figures' attributes onto it would not carry.
        book = guest.locator(".leaflet-popup .realtime-book")
        book.evaluate("link => { link.parkopsSeen = true; }")
        admin_popup.evaluate("box => { box.parkopsSeen = true; }")

        publish_count(core, 150)

        expect(admin_popup.locator(".adminmap-physical")).to_have_text("150 / 200", timeout=3_000)
        expect(donut).to_have_attribute("aria-label", "North Garage: 25% available", timeout=3_000)
        expect(guest.locator(".leaflet-popup")).to_be_visible()  # updated in place, still open
        expect(guest.locator("path.realtime-pin[data-seen='before']")).to_have_count(1)
        assert book.evaluate("link => link.parkopsSeen === true && link.isConnected")
        assert admin_popup.evaluate("box => box.parkopsSeen === true && box.isConnected")
        expect(guest.locator(".leaflet-popup .realtime-donut-value")).to_have_text("25%")
        guest.locator("path.realtime-pin").first.hover(force=True)
        expect(guest.locator(".leaflet-tooltip")).to_have_text("North Garage: 25% available")
        # The pushed message carried the figure the pin shows: applied in the page, no new request
        # for the map's data (thousands of open maps would otherwise all ask on every change).
        asked = guest.evaluate(
            "() => performance.getEntriesByType('resource').filter(e => e.name.includes('fresh=1')).length"
        )
        assert asked == 0
        expect(guest.locator("path.realtime-pin").first).to_have_attribute("fill", "#123456")
        ARTIFACTS.mkdir(exist_ok=True)
        guest.screenshot(path=str(ARTIFACTS / "live-user-donut.png"))
        journey.screenshot(path=str(ARTIFACTS / "live-admin-popup.png"))
    finally:
        guest.goto("about:blank")
        guest.context.close()


def test_a_guest_reads_a_content_page_with_the_live_map(journey: Page, live_server, core, session, tmp_path):
    demo.seed_demo(session, core.secrets, tmp_path)
    content.save_page(
        session,
        slug="parking",
        title="Parking on campus",
        body="## Where to park\n\nPick a **lot group** below.\n\n[real-time-map]\n\n[real-time-legend]",
        body_format="markdown",
        is_published=True,
        actor_id=None,
    )
    session.commit()

    journey.goto(f"{live_server}/p/parking")
    expect(journey.get_by_role("heading", name="Where to park")).to_be_visible()
    expect(journey.locator(".content-page strong")).to_have_text("lot group")
    pins = journey.locator("path.realtime-pin")
    expect(pins).to_have_count(7)
    expect(journey.locator("#realtime-live-status")).to_have_text("Live")
    journey.get_by_role("button", name="Show the map as a table").click()
    table = journey.locator("#realtime-table")
    expect(table.locator(".permit-temporary").first).to_be_visible()
    expect(table.locator(".permit-standard")).to_have_count(0)
    pins.first.click(force=True)
    popup = journey.locator(".leaflet-popup")
    expect(popup.locator(".realtime-donut")).to_have_attribute("aria-label", re.compile(r"available$"))
    expect(popup.locator(".realtime-donut .realtime-donut-ring").first).to_be_visible()
    journey.wait_for_timeout(500)  # Leaflet's pan into view is animated
    box, frame = popup.bounding_box(), journey.locator("#realtime-map").bounding_box()
    assert box and frame and box["y"] >= frame["y"] - 1, "the popup's top is cut off by the map's edge"
    expect(popup.locator(".permit-standard")).to_have_count(0)
    expect(journey.locator(".realtime-legend")).to_contain_text("temporary")
    ARTIFACTS.mkdir(exist_ok=True)
    journey.screenshot(path=str(ARTIFACTS / "content-page-map.png"), full_page=True)
