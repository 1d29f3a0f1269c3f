"""Live occupancy journeys: an admin keeps Manage Parking Lot Groups open while a new count is
recorded. Through the push channel the row changes within 2 s without a reload; with the stream
refused (per-process cap 0) the poll fallback brings the same change within its interval.

Each test also checks *which* input refreshed the table (the EventSource's message or the poll),
so a broken push channel cannot pass the first test on a lucky poll.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, Request, Response, expect

from dashboard import push
from dashboard.components.live import FALLBACK_POLL_MS
from dashboard.services.occupancy import LiveStore, apply_figure
from models import LotGroup, OccupancySource, Role
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser

LIVE = "lotgroups-live.data"
POLL = "lotgroups-poll.n_intervals"


class Traffic:
    """What the page asked the server: the stream's answers and what triggered each refresh."""

    def __init__(self, page: Page) -> None:
        self.stream_statuses: list[int] = []
        self.refresh_triggers: list[str] = []
        page.on("request", self._request)
        page.on("response", self._response)

    def _request(self, request: Request) -> None:
        if "/_dash-update-component" in request.url and request.post_data:
            body = json.loads(request.post_data)
            if "lotgroups-table.children" in body.get("output", ""):
                self.refresh_triggers.extend(body.get("changedPropIds") or [])

    def _response(self, response: Response) -> None:
        if response.url.endswith(push.STREAM_PATH):
            self.stream_statuses.append(response.status)


@pytest.fixture
def garage(core, session) -> int:
    group = LotGroup(name="North Garage", map_color="#123456")
    session.add(group)
    session.commit()
    record(core, session, group.id, 10)
    return group.id


def record(core, session, group_id: int, occupied: int) -> None:
    apply_figure(
        session,
        LiveStore(core.redis),
        group_id,
        OccupancySource.DEVICES,
        occupied,
        200,
        datetime.now(UTC),
        step_percent=5,
    )
    session.commit()


def open_page(page: Page, live_server: str, make_user, garage: int) -> None:
    admin = make_user(Role.ADMIN)
    sign_in(page, live_server, admin.email, "/admin/lot-groups")
    expect(page.locator(f"#lotgroups-row-{garage} .lotgroups-physical")).to_have_text("10 / 200")


def test_a_new_count_appears_within_two_seconds_through_push(
    journey: Page, live_server, make_user, core, session, garage
) -> None:
    traffic = Traffic(journey)
    open_page(journey, live_server, make_user, garage)
    expect(journey.locator("#lotgroups-live-status")).to_have_text("Live")
    traffic.refresh_triggers.clear()
    physical = journey.locator(f"#lotgroups-row-{garage} .lotgroups-physical")

    record(core, session, garage, 57)
    expect(physical).to_have_text("57 / 200", timeout=2_000)
    record(core, session, garage, 58)
    expect(physical).to_have_text("58 / 200", timeout=2_000)

    assert LIVE in traffic.refresh_triggers
    assert POLL not in traffic.refresh_triggers
    assert traffic.stream_statuses == [200], "one stream for the whole visit, not one per change"

    row = journey.locator(f"#lotgroups-row-{garage}")
    row.get_by_role("button", name="Close").click()
    expect(journey.locator("#lotgroups-flash")).to_contain_text("North Garage is closed")
    expect(row).to_contain_text("closed")
    expect(row.get_by_role("button", name="Open")).to_be_visible()


def test_with_the_stream_refused_the_poll_brings_the_change(
    journey: Page, live_server, make_user, core, session, garage, monkeypatch
) -> None:
    monkeypatch.setattr(push, "MAX_STREAMS", 0)
    traffic = Traffic(journey)
    open_page(journey, live_server, make_user, garage)
    expect(journey.locator("#lotgroups-live-status")).to_contain_text("unavailable")
    assert traffic.stream_statuses == [503]
    traffic.refresh_triggers.clear()

    record(core, session, garage, 57)

    expect(journey.locator(f"#lotgroups-row-{garage} .lotgroups-physical")).to_have_text(
        "57 / 200", timeout=FALLBACK_POLL_MS + 2_000
    )
    assert POLL in traffic.refresh_triggers
    assert LIVE not in traffic.refresh_triggers


def test_leaving_the_page_closes_its_stream(journey: Page, live_server, make_user, garage) -> None:
    """Dash's router swaps pages without a reload: the stream must not outlive the page."""
    open_page(journey, live_server, make_user, garage)
    expect(journey.locator("#lotgroups-live-status")).to_have_text("Live")
    assert push.active_streams() == 1
    journey.get_by_role("link", name="Home").click()
    expect(journey).to_have_url(f"{live_server}/")
    deadline = time.monotonic() + 5
    while push.active_streams() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert push.active_streams() == 0
