"""On a 360 px phone: a manager raises a lot's allowance to the suggestion and the first person on
the waitlist gets an offer; that person sees it on My Waitlist. No page scrolls sideways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from dashboard.services import email
from models import (
    Lot,
    LotGroup,
    OccupancySnapshot,
    OccupancySource,
    Permit,
    PermitKind,
    PermitProduct,
    PermitStatus,
    Pricing,
    Role,
)
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser
ARTIFACTS = "tests/artifacts"


@pytest.fixture
def site(session) -> dict[str, int]:
    now = datetime.now(UTC)
    group = LotGroup(name="North Garage")
    session.add(group)
    session.flush()
    lot = Lot(name="North A", capacity=10, lot_group_id=group.id, sells_temporary=True)
    session.add(lot)
    session.flush()
    product = PermitProduct(
        lot_id=lot.id,
        kind=PermitKind.TEMPORARY,
        name="Hourly",
        pricing=Pricing.HOURLY,
        price_cents=250,
        max_duration_minutes=480,
    )
    session.add(product)
    for step in range(40):
        session.add(
            OccupancySnapshot(
                lot_group_id=group.id,
                source=OccupancySource.DEVICES,
                occupied=50 if step == 3 else 20,
                capacity=100,
                recorded_at=now - timedelta(hours=6 * step),
            )
        )
    for n in range(10):
        session.add(
            Permit(
                number=f"T-PHONE-{n}",
                kind=PermitKind.TEMPORARY,
                status=PermitStatus.ACTIVE,
                lot_id=lot.id,
                valid_from=now - timedelta(hours=1),
                valid_to=now + timedelta(hours=5),
            )
        )
    email.ensure_default_templates(session)
    session.commit()
    return {"lot": lot.id, "product": product.id}


def sign_in(page: Page, live_server: str, user, target: str) -> None:
    page.goto(f"{live_server}/login?next={target}")
    page.fill("#login-email", user.email)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(f"{live_server}{target}")


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width}px wide on a 360px phone"


def test_phone_journey(browser, live_server, make_user, site) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        waiter = context.new_page()
        waiter.set_default_timeout(15_000)
        user = make_user(Role.USER)
        sign_in(waiter, live_server, user, f"/waitlist/join/{site['product']}")
        expect(waiter.locator("#waitlistjoin-reason")).to_contain_text("All 10 permits allowed in North A")
        waiter.get_by_role("button", name="Join the waitlist").click()
        expect(waiter.locator("#waitlistjoin-result")).to_contain_text("You joined the waitlist for Hourly")
        expect(waiter.locator("#waitlistjoin-content")).to_contain_text("number 1 in line")
        no_sideways_scroll(waiter)
        waiter.screenshot(path=f"{ARTIFACTS}/waitlist-join-phone.png", full_page=True)

        manager_context = browser.new_context(viewport={"width": 360, "height": 740})
        manager_page = manager_context.new_page()
        manager_page.set_default_timeout(15_000)
        try:
            sign_in(manager_page, live_server, make_user(Role.MANAGER), "/manage/capacity")
            row = manager_page.locator(f"#capacity-row-{site['lot']}")
            expect(row).to_contain_text("you can sell about 8 more, 18 in all")  # floor(10 × 0.9 / 0.5)
            no_sideways_scroll(manager_page)
            manager_page.screenshot(path=f"{ARTIFACTS}/capacity-phone.png", full_page=True)
            row.get_by_role("button", name="Edit").click()
            dialog = manager_page.locator("#capacity-modal")
            expect(dialog).to_contain_text("Peak physical use 50% with 10 sold")
            dialog.get_by_role("button", name="Use suggestion").click()
            expect(manager_page.locator("#capacity-allowance")).to_have_value("18")
            manager_page.screenshot(path=f"{ARTIFACTS}/capacity-dialog-phone.png")
            dialog.get_by_role("button", name="Save").click()
            expect(manager_page.locator("#capacity-flash")).to_contain_text(
                "permits allowed changed from 10 to 18. 1 person waiting was offered a space."
            )
            expect(row).to_contain_text("18")
        finally:
            manager_context.close()

        waiter.goto(f"{live_server}/waitlist")
        expect(waiter.locator("#waitlist-entries")).to_contain_text("A space is held for you until")
        expect(waiter.get_by_role("button", name="Book now")).to_have_attribute(
            "href", f"/checkout/temp/{site['lot']}"
        )
        no_sideways_scroll(waiter)
        waiter.screenshot(path=f"{ARTIFACTS}/waitlist-offer-phone.png", full_page=True)
    finally:
        context.close()
