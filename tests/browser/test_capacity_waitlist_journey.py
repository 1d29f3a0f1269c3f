"""On a phone (the person waiting at 360 px, the manager at 390 px): a manager raises a visitor
lot's allowance to the spaces the advice keeps for visitors and the first person on the waitlist
gets an offer; that person sees it on My Waitlist. At 1366 px a manager reads the chart, is refused
a value below sold and is asked before a change that leaves one permit to sell. No page scrolls
sideways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from dashboard.services import demo, email
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
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser
# plotly.js (3.5 MB) loads when the first chart opens: slow on a busy machine, so wait for it longer.
CHART_WAIT_MS = 30_000
ARTIFACTS = "tests/artifacts"


@pytest.fixture
def site(session) -> dict[str, int]:
    now = datetime.now(UTC)
    group = LotGroup(name="North Garage")
    session.add(group)
    session.flush()
    lot = Lot(
        name="North A",
        capacity=20,
        permits_allowed=10,
        lot_group_id=group.id,
        sells_standard=False,
        sells_temporary=True,
    )
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


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size["width"]
    assert width <= viewport, f"the page is {width}px wide on a {viewport}px screen"


def test_phone_journey(browser, live_server, make_user, site) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        waiter = context.new_page()
        waiter.set_default_timeout(15_000)
        user = make_user(Role.USER)
        sign_in(waiter, live_server, user.email, f"/waitlist/join/{site['product']}")
        expect(waiter.locator("#waitlistjoin-reason")).to_contain_text("All 10 permits allowed in North A")
        waiter.get_by_role("button", name="Join the waitlist").click()
        expect(waiter.locator("#waitlistjoin-result")).to_contain_text("You joined the waitlist for Hourly")
        expect(waiter.locator("#waitlistjoin-content")).to_contain_text("number 1 in line")
        no_sideways_scroll(waiter)
        waiter.screenshot(path=f"{ARTIFACTS}/waitlist-join-phone.png", full_page=True)

        manager_context = browser.new_context(viewport={"width": 390, "height": 844})
        manager_page = manager_context.new_page()
        manager_page.set_default_timeout(15_000)
        try:
            sign_in(manager_page, live_server, make_user(Role.MANAGER).email, "/manage/capacity")
            card = manager_page.locator(f"#capacity-row-{site['lot']}")
            expect(card).to_contain_text("Keep 18 for visitors")  # 20 spaces less the 10% margin
            expect(card).to_contain_text("keep 18 of the 20 spaces for visitors")
            no_sideways_scroll(manager_page)
            manager_page.screenshot(path=f"{ARTIFACTS}/capacity-phone.png", full_page=True)
            card.get_by_role("button", name="Edit").click()
            dialog = manager_page.locator("#capacity-modal")
            expect(dialog.locator("#capacity-chart .main-svg").first).to_be_attached(timeout=CHART_WAIT_MS)
            expect(dialog).to_contain_text("the lot was about 50% full")
            dialog.get_by_role("button", name="Use suggestion").click()
            expect(manager_page.locator("#capacity-allowance")).to_have_value("18")
            no_sideways_scroll(manager_page)
            manager_page.screenshot(path=f"{ARTIFACTS}/capacity-dialog-phone.png")
            dialog.get_by_role("button", name="Save").click()
            expect(manager_page.locator("#capacity-flash")).to_contain_text(
                "permits allowed changed from 10 to 18. 1 person waiting was offered a space."
            )
            expect(card).to_contain_text("18")
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


def test_desktop_manager_is_refused_below_sold_and_asked_before_selling_out(
    browser, live_server, make_user, session, site
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        sign_in(page, live_server, make_user(Role.MANAGER).email, "/manage/capacity")
        card = page.locator(f"#capacity-row-{site['lot']}")
        expect(card).to_contain_text("Keep 18 for visitors")
        no_sideways_scroll(page)
        card.get_by_role("button", name="Edit").click()
        dialog = page.locator("#capacity-modal")
        expect(dialog.locator("#capacity-chart .main-svg").first).to_be_attached(timeout=CHART_WAIT_MS)
        page.screenshot(path=f"{ARTIFACTS}/capacity-dialog-desktop.png")

        page.fill("#capacity-allowance", "9")
        dialog.get_by_role("button", name="Save").click()
        expect(page.locator("#capacity-modal-error")).to_contain_text(
            "Permits allowed: at least the 10 permits valid now"
        )

        asked: list[str] = []

        def answer(prompt) -> None:
            asked.append(prompt.message)
            prompt.accept()

        page.once("dialog", answer)
        page.fill("#capacity-allowance", "11")
        dialog.get_by_role("button", name="Save").click()
        expect(page.locator("#capacity-flash")).to_contain_text("permits allowed changed from 10 to 11")
        assert asked == ["11 allowed with 10 sold leaves only 1 permit to sell in North A. Save 11 anyway?"]
        expect(page.locator("#capacity-flash")).to_contain_text("leaves only 1 permit to sell")
        no_sideways_scroll(page)
        page.screenshot(path=f"{ARTIFACTS}/capacity-desktop.png", full_page=True)
        session.expire_all()
        assert session.get(Lot, site["lot"]).permits_allowed == 11
    finally:
        context.close()


def test_the_demo_campus_advises_on_a_phone(browser, live_server, core, session, tmp_path) -> None:
    """On the demo's weeks of history every lot has advice, none below sold, and the list and the
    dialog fit a 390 px phone."""
    demo.seed_demo(session, core.secrets, tmp_path)
    session.commit()
    manager = next(c for c in demo.read_credentials(tmp_path) if c["role"] == "manager")
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        sign_in(page, live_server, manager["email"], "/manage/capacity", password=manager["password"])
        expect(page.locator("#capacity-count")).to_have_text(f"{len(demo.LOTS)} of {len(demo.LOTS)} lot(s)")
        expect(page.locator(".capacity-advice")).to_have_count(len(demo.LOTS))
        pay_lot = session.scalars(select(Lot).where(Lot.code == "CP")).one()
        expect(page.locator(f"#capacity-row-{pay_lot.id}")).to_contain_text("Keep 81 for visitors")
        assert page.locator(".capacity-advice", has_text="No advice").count() == 0
        no_sideways_scroll(page)
        page.screenshot(path=f"{ARTIFACTS}/capacity-demo-phone.png", full_page=True)
        engineering = session.scalars(select(Lot).where(Lot.code == "E1")).one()
        page.locator(f"#capacity-row-{engineering.id}").get_by_role("button", name="Edit").click()
        dialog = page.locator("#capacity-modal")
        expect(dialog.locator("#capacity-chart .main-svg").first).to_be_attached(timeout=CHART_WAIT_MS)
        expect(dialog.locator("#capacity-modal-advice")).to_contain_text("At the busiest hour")
        no_sideways_scroll(page)
        page.screenshot(path=f"{ARTIFACTS}/capacity-demo-dialog-phone.png")
    finally:
        context.close()
