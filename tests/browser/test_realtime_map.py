"""A guest on a phone opens the Real-Time Map: the pins arrive, a pin's popup shows the donut and
the lots, and the page does not scroll sideways at 390 px."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Browser, expect

from dashboard import push
from dashboard.services import demo

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
    phone.goto(f"{live_server}/real-time")
    pins = phone.locator("path.realtime-pin")
    expect(pins).to_have_count(7)
    pins.first.click(force=True)
    popup = phone.locator(".leaflet-popup")
    expect(popup).to_be_visible()
    expect(popup.locator(".realtime-donut .main-svg").first).to_be_attached()
    expect(popup.locator(".realtime-donut")).to_have_attribute("aria-label", re.compile(r"\d+% available$"))
    expect(popup.get_by_role("link", name="Book permit")).to_be_visible()
    expect(popup.locator(".permit-standard")).to_have_count(0)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
