"""A guest pays a booted parking ticket through Stripe in a real browser, against the local Stripe
(``tests/stripe_fake.py``) whose webhooks go to the live server: Pay a Violation shows no card
fields, Stripe's page asks for 3-D Secure, the bank approves, and back on Pay a Violation the ticket
shows paid; the boot's release code is mailed once."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from dashboard.services import email
from models import OutboxMessage, Payment, PaymentStatus, Role, Violation
from tests.browser.test_stripe_checkout_journey import fake  # noqa: F401
from tests.enforcement import enable_boots, make_place, write_ticket
from tests.stripe_fake import THREE_D_SECURE_CARD

pytestmark = pytest.mark.browser


def test_a_guest_pays_a_booted_ticket_on_stripes_page_with_3d_secure(
    page: Page,
    live_server,
    fake,  # noqa: F811
    core,
    make_user,
    session,
) -> None:
    email.ensure_default_templates(session)
    session.commit()
    enable_boots(core)
    place = make_place(core)
    ticket = write_ticket(core, make_user(Role.OFFICER).id, place, boot_id=place.boot_ids[0])

    page.goto(f"{live_server}/pay-violation?ticket={ticket.ticket_number}")
    page.fill("#payviol-plate", "ABC 123")
    page.click("#payviol-find")
    expect(page.locator("#payviol-found-text")).to_contain_text(ticket.ticket_number)
    expect(page.locator("#payviol-total-text")).to_have_text("$115.00 CAD")
    expect(page.locator("#payviol-card-number")).to_be_hidden()
    expect(page.locator("#payviol-hosted-note")).to_be_visible()
    page.fill("#payviol-email", "driver@example.com")
    pay = page.locator("#payviol-pay")
    expect(pay).to_have_text("Continue to secure payment")
    pay.click()

    expect(page).to_have_url(re.compile(re.escape(fake.base) + r"/pay/cs_"))
    expect(page.locator("h1")).to_have_text("Pay 115.00 CAD")
    page.select_option("#fake-card", THREE_D_SECURE_CARD)
    page.click("#fake-pay")
    expect(page.locator("h1")).to_have_text("Authenticate your payment")
    session.expire_all()
    assert session.scalar(select(Payment.status)) == PaymentStatus.PENDING
    assert session.scalar(select(Violation.status).where(Violation.id == ticket.id)) == "unpaid"
    page.click("#fake-3ds-approve")

    expect(page).to_have_url(re.compile(r"/pay-violation\?payment=return$"))
    expect(page.locator("#checkout-confirmation")).to_contain_text("Payment received")
    expect(page.locator("#checkout-confirmation")).to_contain_text(ticket.ticket_number)
    expect(page.locator("#payviol-nothing")).to_contain_text("nothing to pay")  # the list, read again
    page.reload()
    session.expire_all()
    assert session.scalar(select(Violation.status).where(Violation.id == ticket.id)) == "paid"
    mails = select(func.count(OutboxMessage.id)).where(OutboxMessage.template_key == "boot-release")
    assert session.scalar(mails) == 1
