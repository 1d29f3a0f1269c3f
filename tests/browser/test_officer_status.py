"""Lot Status (officers) in a browser, on a 390 px phone: the cards sort fullest first, emptiest
first or by name, closed groups last, without asking the server again; a new count moves a card's
figure and its place without a reload; and the page never scrolls sideways."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from dashboard.services.occupancy import LiveStore, apply_figure
from models import Lot, LotGroup, OccupancySource, Role
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def lots(core, session) -> dict[str, int]:
    """Three groups of one lot each, with a physical count apiece, and one closed group."""
    found = {}
    for name, occupied, closed in (("Alpha", 50, False), ("Bravo", 150, False), ("Charlie", 10, True)):
        group = LotGroup(
            name=f"{name} Garage", map_color="#123456", latitude=43.47, longitude=-80.54, is_closed=closed
        )
        session.add(group)
        session.flush()
        lot = Lot(
            name=f"{name} Level", code=name[:2], capacity=200, permits_allowed=100, lot_group_id=group.id
        )
        session.add(lot)
        session.flush()
        found[name] = lot.id
        session.commit()
        record(core, session, group.id, occupied)
    return found


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


def order(page: Page) -> list[str]:
    return [
        card_id.removeprefix("officer-lot-")
        for card_id in page.locator(".officer-card").evaluate_all("cards => cards.map(card => card.id)")
    ]


def test_cards_sort_and_follow_new_counts_on_a_phone(
    journey: Page, live_server, make_user, core, session, lots
) -> None:
    ids = {name: str(lot_id) for name, lot_id in lots.items()}
    officer = make_user(Role.OFFICER)
    journey.set_viewport_size({"width": 390, "height": 800})
    sign_in(journey, live_server, officer.email, "/officer")
    cards = journey.locator(".officer-card")
    expect(cards).to_have_count(3)
    assert order(journey) == [ids["Bravo"], ids["Alpha"], ids["Charlie"]]  # fullest first, closed last
    bravo = journey.locator(f"#officer-lot-{ids['Bravo']}")
    expect(bravo.locator(".officer-physical")).to_have_text("150 / 200")
    expect(bravo.locator(".officer-permits")).to_have_text("0 / 100")
    expect(journey.locator(f"#officer-lot-{ids['Charlie']}")).to_contain_text("Closed")

    requests: list[str] = []
    journey.on("request", lambda request: requests.append(request.url) if "/live/" in request.url else None)
    journey.get_by_label("Emptiest first").check()
    expect(cards.first).to_have_id(f"officer-lot-{ids['Alpha']}")
    assert order(journey) == [ids["Alpha"], ids["Bravo"], ids["Charlie"]]
    journey.get_by_label("Name").check()
    expect(cards.first).to_have_id(f"officer-lot-{ids['Alpha']}")
    assert order(journey) == [ids["Alpha"], ids["Bravo"], ids["Charlie"]]
    assert requests == []  # sorted in the browser, from the body it holds
    journey.get_by_label("Fullest first").check()
    expect(cards.first).to_have_id(f"officer-lot-{ids['Bravo']}")

    # A new count: the figure changes on its card, which moves to its new place, without a reload.
    expect(journey.locator("#officer-live-status")).to_have_text("Live")
    alpha_group = session.get(Lot, lots["Alpha"]).lot_group_id
    record(core, session, alpha_group, 190)
    alpha = journey.locator(f"#officer-lot-{ids['Alpha']}")
    expect(alpha.locator(".officer-physical")).to_have_text("190 / 200", timeout=3_000)
    assert order(journey) == [ids["Alpha"], ids["Bravo"], ids["Charlie"]]
    assert journey.evaluate("document.scrollingElement.scrollWidth") <= 390
