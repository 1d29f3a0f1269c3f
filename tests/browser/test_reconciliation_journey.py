"""A manager opens Payment Reconciliation from the menu, reads a charge no payment counts (in
words, in the site's zone), refunds it after confirming in the dialog, and finds it under Done;
at phone width the page does not scroll sideways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from dashboard.app import prepare_database
from dashboard.services import reconciliation
from dashboard.services.payment_providers import Card
from dashboard.services.payments import SandboxProvider
from models import Role, SandboxCharge
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser


def test_a_manager_refunds_a_stray_charge_after_confirming(page: Page, live_server, make_user, core, session):
    prepare_database(core)
    SandboxProvider(core.db).charge(
        amount_cents=2250,
        currency="CAD",
        card=Card("4242424242424242", 12, 2099, "123"),
        idempotency_key="typed-at-the-counter",
        description="outside",
    )
    found = datetime.now(UTC) + timedelta(hours=2)
    reconciliation.run(core.db, core.secrets, found)
    # In words in the site's zone: two hours ahead is tomorrow late in the site's evening.
    local = found.astimezone(core.settings.tz)
    day = "today" if local.date() == datetime.now(core.settings.tz).date() else "tomorrow"
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server, make_user(Role.MANAGER).email, "/admin/reconciliation")
    card = page.locator("#recon-rows .card")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("Charged without a settled payment")
    expect(card).to_contain_text("$22.50 CAD")
    expect(card).to_contain_text(f"Found {local:%H:%M} {day}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    card.get_by_role("button", name="Refund the charge").click()
    expect(page.locator("#recon-modal-facts")).to_contain_text("cannot be undone")
    page.fill("#recon-note", "Typed in by mistake at the office")
    page.locator("#recon-confirm").click()
    expect(page.locator("#recon-done")).to_contain_text("$22.50 CAD refunded")
    expect(page.locator("#recon-none")).to_be_visible()
    session.expire_all()
    assert session.scalar(select(SandboxCharge.refunded_cents)) == 2250

    page.get_by_text("Done", exact=True).click()
    expect(page.locator("#recon-rows")).to_contain_text("Refunded by")
    expect(page.locator("#recon-rows")).to_contain_text("Typed in by mistake at the office")
