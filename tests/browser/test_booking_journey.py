"""Buying permits in a real browser on the demo campus.

(a) A guest opens the Real-Time Map, a pin's popup, "Book permit", the lot group page's temporary
permit button, and pays in the quick checkout with the sandbox's 4242 card: the confirmation shows
the permit, the receipt e-mail is in the outbox, the lot has one space fewer, and the plate is valid.
(b) A student books a standard permit on the booking page, pays in the cart, and finds it under
My Permits with its receipt; the plate is valid in that lot during the term.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from dashboard.services import demo, email, payments, permits
from models import (
    Lot,
    OutboxMessage,
    PaymentStatus,
    Permit,
    PermitKind,
    PermitProduct,
    PermitStatus,
    Pricing,
    SandboxCharge,
)
from tests.browser.signing import sign_in
from tests.faults import DropConnection

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
EXPIRY = f"12/{(datetime.now(UTC).year + 2) % 100:02d}"


@pytest.fixture
def campus(core, session, tmp_path) -> Path:
    demo.seed_demo(session, core.secrets, tmp_path)
    email.ensure_default_templates(session)  # what prepare_database adds on every start
    session.commit()
    return tmp_path


def pay_by_card(page: Page, prefix: str) -> None:
    page.fill(f"#{prefix}-card-number", "4242 4242 4242 4242")
    page.fill(f"#{prefix}-card-expiry", EXPIRY)
    page.fill(f"#{prefix}-card-cvc", "123")
    page.click(f"#{prefix}-pay")


def test_a_guest_buys_a_temporary_permit_from_the_map(
    journey: Page, live_server, core, session, campus
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    journey.goto(f"{live_server}/real-time")
    journey.locator("path.realtime-pin").first.click(force=True)
    popup = journey.locator(".leaflet-popup")
    popup.get_by_role("link", name="Book permit").click()
    expect(journey).to_have_url(re.compile(r"/lot-groups/\d+$"))
    expect(journey.locator(".lotgroup-standard")).to_have_count(0)  # guests see temporary permits only
    journey.locator(".lotgroup-temporary").first.click()
    expect(journey).to_have_url(re.compile(r"/checkout/temp/\d+$"))
    lot_id = int(journey.url.rsplit("/", 1)[1])
    lot_name = session.get(Lot, lot_id).name
    expect(journey.locator("#checkout-title")).to_have_text(f"Temporary permit: {lot_name}")

    journey.fill("#checkout-plate", "GRU 2026")
    journey.fill("#checkout-email", "driver@example.com")
    expect(journey.locator("#checkout-price")).to_contain_text("$3.00 CAD")  # hourly, one hour
    now = datetime.now(UTC)
    window = (now, now + timedelta(hours=1))
    before = permits.lot_availability(session, lot_id, *window, now).available
    journey.screenshot(path=str(ARTIFACTS / "booking-quick-checkout.png"), full_page=True)
    pay_by_card(journey, "checkout")

    confirmation = journey.locator("#checkout-confirmation")
    expect(confirmation).to_contain_text("Payment received")
    journey.screenshot(path=str(ARTIFACTS / "booking-quick-checkout-paid.png"), full_page=True)
    session.expire_all()
    permit = session.scalars(select(Permit).where(Permit.email == "driver@example.com")).one()
    expect(confirmation).to_contain_text(permit.number)
    assert permit.status == PermitStatus.ACTIVE and permit.lot_id == lot_id
    assert permits.lot_availability(session, lot_id, *window, now).available == before - 1
    sent = session.scalars(select(OutboxMessage).where(OutboxMessage.template_key == "permit-receipt")).one()
    assert sent.to_addresses == ["driver@example.com"] and permit.number in sent.subject
    assert permits.check_plate(session, "gru-2026", lot_id, datetime.now(UTC), core.settings.tz).valid

    journey.click("#checkout-receipt-link")
    expect(journey).to_have_url(re.compile(r"/receipts/[\w-]+$"))
    expect(journey.locator("#receipt-content")).to_contain_text(permit.number)
    expect(journey.locator("#receipt-content")).to_contain_text("GRU 2026")

    journey.set_viewport_size({"width": 360, "height": 780})  # the QR code is scanned with a phone
    journey.goto(f"{live_server}/checkout/temp/{lot_id}")
    expect(journey.locator("#checkout-price")).to_be_visible()
    assert journey.evaluate("document.documentElement.scrollWidth") <= 360
    journey.screenshot(path=str(ARTIFACTS / "booking-quick-checkout-phone.png"), full_page=True)


def test_a_student_books_a_standard_permit_through_the_cart(
    journey: Page, live_server, core, session, campus
):
    ARTIFACTS.mkdir(exist_ok=True)
    student = next(c for c in demo.read_credentials(campus) if c["email"] == "student@parkops.example")
    west = session.scalars(select(Lot).where(Lot.code == "WN")).one()
    sign_in(
        journey,
        live_server,
        student["email"],
        f"/lot-groups/{west.lot_group_id}",
        password=student["password"],
    )
    journey.locator(f"#lotgroup-lot-{west.id} .lotgroup-standard").click()
    expect(journey).to_have_url(f"{live_server}/permits/book/{west.id}")
    expect(journey.locator("#book-title")).to_have_text(f"Book a standard permit: {west.name}")

    journey.fill("#book-plate-1", "LMNO 345")
    journey.get_by_role("button", name="Add to cart").first.click()
    expect(journey.locator("#book-added")).to_contain_text("is in your cart")
    journey.screenshot(path=str(ARTIFACTS / "booking-standard.png"), full_page=True)
    journey.get_by_role("link", name="Go to your cart to pay").click()
    expect(journey).to_have_url(f"{live_server}/cart")
    expect(journey.locator(".cart-line")).to_have_count(1)
    expect(journey.locator(".cart-line")).to_contain_text("LMNO 345")
    pay_by_card(journey, "cart")

    expect(journey.locator("#checkout-confirmation")).to_contain_text("Payment received")
    expect(journey.locator("#cart-empty")).to_be_visible()
    journey.screenshot(path=str(ARTIFACTS / "booking-cart-paid.png"), full_page=True)
    session.expire_all()
    permit = session.scalars(
        select(Permit).where(  # the demo's own term permits in the lot belong to nobody signed in
            Permit.lot_id == west.id,
            Permit.kind == PermitKind.STANDARD,
            Permit.email == "student@parkops.example",
        )
    ).one()
    assert permit.status == PermitStatus.ACTIVE
    during_term = max(datetime.now(UTC), permit.valid_from) + timedelta(minutes=1)
    assert permits.check_plate(session, "LMNO345", west.id, during_term, core.settings.tz).valid

    journey.goto(f"{live_server}/permits")
    mine = journey.locator(f"#mypermits-permit-{permit.id}")
    expect(mine).to_contain_text(permit.number)
    mine.get_by_role("link", name="Receipt").click()
    expect(journey.locator("#receipt-content")).to_contain_text("LMNO 345")


def test_a_guest_whose_payment_could_not_be_settled_reloads_and_finds_the_permit(
    page: Page, live_server, core, session, monkeypatch
) -> None:
    """The database drops every connection that tries to settle a charged card: the guest is told
    the payment is being confirmed (never "not charged"). The database comes back; a reload of the
    page (the form's key survives it in the tab) shows the permit, charged once, one receipt."""
    monkeypatch.setattr(payments, "RETRY_DELAYS", (0.01, 0.01))
    email.ensure_default_templates(session)
    lot = Lot(name="Faulty Lot", code="FL", capacity=5, sells_temporary=True)
    session.add(lot)
    session.flush()
    session.add(
        PermitProduct(
            lot_id=lot.id, kind=PermitKind.TEMPORARY, name="Hourly", pricing=Pricing.HOURLY, price_cents=300
        )
    )
    session.commit()
    page.goto(f"{live_server}/checkout/temp/{lot.id}")
    page.fill("#checkout-plate", "DROP 42")
    page.fill("#checkout-email", "driver@example.com")
    expect(page.locator("#checkout-price")).to_contain_text("$3.00 CAD")
    key = page.evaluate("JSON.parse(sessionStorage.getItem('checkout-key'))")
    with DropConnection(core.db, "payments", after="^INSERT INTO sandbox_charges", times=None) as drop:
        pay_by_card(page, "checkout")
        expect(page.locator("#checkout-confirming")).to_contain_text("being confirmed")
    assert drop.fired >= 3
    expect(page.locator("#checkout-result")).not_to_contain_text("not charged")
    assert page.evaluate("JSON.parse(sessionStorage.getItem('checkout-key'))") == key

    page.reload()
    confirmation = page.locator("#checkout-confirmation")
    expect(confirmation).to_contain_text("Payment received")
    session.expire_all()
    permit = session.scalars(select(Permit).where(Permit.lot_id == lot.id)).one()
    expect(confirmation).to_contain_text(permit.number)
    assert permit.status == PermitStatus.ACTIVE
    paid = select(func.count(SandboxCharge.id)).where(SandboxCharge.status == PaymentStatus.SUCCEEDED)
    assert session.scalar(paid) == 1
    assert session.scalar(select(func.count(OutboxMessage.id))) == 1
    assert page.evaluate("JSON.parse(sessionStorage.getItem('checkout-key'))") != key  # told: a new form

    page.get_by_role("link", name="Buy another permit for this lot").click()
    expect(page.locator("#checkout-pay")).to_be_visible()
    expect(page.locator("#checkout-confirmation")).to_have_count(0)
