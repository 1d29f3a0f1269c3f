"""A guest pays a temporary permit through Stripe in a real browser, against the local Stripe
(``tests/stripe_fake.py``) whose webhooks go to the live server, signed as Stripe signs them.

The quick checkout shows no card fields, only "Continue to secure payment"; the browser goes on to
Stripe's page, where a declined card is refused and another card tried; Stripe sends the browser
back, and the page shows the permit as paid. No card number ever reached ParkOps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from dashboard.components import checkout
from dashboard.services import email
from models import (
    Lot,
    OutboxMessage,
    Payment,
    PaymentStatus,
    Permit,
    PermitKind,
    PermitProduct,
    PermitStatus,
    Pricing,
    ProcessorEvent,
)
from tests.services.test_stripe_payments import configure
from tests.stripe_fake import DECLINED_CARD, SUCCESS_CARD, FakeStripe, stripe_server

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture
def fake(core, live_server, monkeypatch) -> Iterator[FakeStripe]:
    # Stripe sends the buyer back to the site's public URL: here, the live server.
    monkeypatch.setattr(checkout, "base_url", lambda: live_server)
    with stripe_server() as stripe_fake:
        configure(core, stripe_fake.base)

        def deliver(payload: bytes, header: str) -> requests.Response:
            return requests.post(
                f"{live_server}/hooks/stripe",
                data=payload,
                headers={"Stripe-Signature": header, "Content-Type": "application/json"},
                timeout=30,
            )

        stripe_fake.deliver = deliver
        yield stripe_fake


@pytest.fixture
def lot(session) -> int:
    email.ensure_default_templates(session)
    row = Lot(name="Visitor Lot", code="VL", capacity=5, sells_temporary=True)
    session.add(row)
    session.flush()
    session.add(
        PermitProduct(
            lot_id=row.id,
            kind=PermitKind.TEMPORARY,
            name="Hourly",
            pricing=Pricing.HOURLY,
            price_cents=300,
            max_duration_minutes=240,
        )
    )
    session.commit()
    return row.id


def test_a_guest_pays_a_temporary_permit_on_stripes_page(page: Page, live_server, fake, lot, session) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{live_server}/checkout/temp/{lot}")
    expect(page.locator("#checkout-title")).to_have_text("Temporary permit: Visitor Lot")
    pay = page.locator("#checkout-pay")
    expect(pay).to_have_text("Continue to secure payment")
    expect(page.locator("#checkout-card-number")).to_be_hidden()
    expect(page.locator("#checkout-hosted-note")).to_be_visible()
    page.fill("#checkout-plate", "STRP 42")
    page.fill("#checkout-email", "driver@example.com")
    expect(page.locator("#checkout-price")).to_contain_text("$3.00 CAD")
    pay.click()

    expect(page).to_have_url(re.compile(re.escape(fake.base) + r"/pay/cs_"))
    expect(page.locator("h1")).to_have_text("Pay 3.00 CAD")
    page.select_option("#fake-card", DECLINED_CARD)
    page.click("#fake-pay")
    expect(page.locator("#fake-note")).to_have_text("Your card was declined.")
    session.expire_all()
    assert session.scalar(select(Payment.status)) == PaymentStatus.PENDING  # another card may follow
    page.screenshot(path=str(ARTIFACTS / "stripe-payment-page.png"), full_page=True)
    page.select_option("#fake-card", SUCCESS_CARD)
    page.click("#fake-pay")

    expect(page).to_have_url(re.compile(rf"/checkout/temp/{lot}\?payment=return$"))
    confirmation = page.locator("#checkout-confirmation")
    expect(confirmation).to_contain_text("Payment received")
    expect(confirmation).to_contain_text("STRP 42")
    page.screenshot(path=str(ARTIFACTS / "stripe-checkout-paid.png"), full_page=True)

    session.expire_all()
    paid = session.scalar(select(Payment))
    assert paid.status == PaymentStatus.SUCCEEDED and paid.provider == "stripe" and paid.card_last4 is None
    assert session.scalar(select(Permit.status)) == PermitStatus.ACTIVE
    assert session.scalar(select(func.count(OutboxMessage.id))) == 1  # one receipt
    # The webhooks arrived and were acted on (the failure too, which left the payment open).
    assert session.scalar(select(func.count(ProcessorEvent.id))) >= 1
    assert [e["type"] for e in fake.events] == [
        "payment_intent.payment_failed",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    page.locator("#checkout-receipt-link").click()
    expect(page).to_have_url(re.compile(r"/receipts/"))
