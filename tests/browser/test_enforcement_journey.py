"""Enforcement in a real browser: an officer on a 390 px phone (the form also fits 360 px) checks a
plate, writes a Boot Applied ticket with a boot and opens its print view (the printable area is
72 mm wide when printing); the owner, with no account, pays it on a phone at /pay-violation with a
sandbox card; the Boot Release Email with the code is in the admin's Email Outbox; the admin marks
the boot returned on the Boot Device Report with Process Refund, and the report shows every date."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from dashboard.services import email
from models import Role, SandboxCharge, Violation
from tests.browser.signing import sign_in
from tests.enforcement import enable_boots, make_place

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
MM_IN_CSS_PX = 96 / 25.4


def choose(page: Page, dropdown: str, option: str) -> None:
    page.locator(f"#{dropdown}").click()
    page.locator(".dash-dropdown-option", has_text=option).first.click()


def test_officer_tickets_a_booted_car_and_the_admin_returns_the_boot_with_a_refund(
    browser, live_server, core, make_user
) -> None:
    enable_boots(core)
    with core.db.session() as s:
        email.ensure_default_templates(s)
    make_place(core)
    officer = make_user(Role.OFFICER)
    admin = make_user(Role.ADMIN)
    ARTIFACTS.mkdir(exist_ok=True)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, live_server, officer.email, "/officer/check")
    choose(page, "check-lot", "Visitor Lot")
    page.fill("#check-plate", "ABC 123")
    page.click("#check-submit")
    expect(page.locator("#check-verdict")).to_have_text("NOT VALID")
    page.click("#check-write-ticket")
    expect(page).to_have_url(re.compile(r"/officer/ticket\?lot=\d+&plate=ABC123"))
    expect(page.locator("#ticket-plate")).to_have_value("ABC123")
    expect(page.locator("#ticket-lot")).to_contain_text("Visitor Lot")

    page.get_by_label(re.compile(r"^NVP · No valid permit")).check()
    page.get_by_label(re.compile(r"^BOOT · Boot applied")).check()
    expect(page.locator("#ticket-boot-row")).to_be_visible()
    choose(page, "ticket-boot", "Red Boot 01")
    page.fill("#ticket-notes", "Blocking the fire lane exit")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 360, "height": 780})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ARTIFACTS / "ticket-phone.png"), full_page=True)
    page.click("#ticket-submit")
    expect(page.locator("#ticket-number")).to_have_text(re.compile(r"^T-[2-9A-Z]{3}-[2-9A-Z]{3}$"))
    expect(page.locator("#ticket-boot-applied")).to_have_text("Boot applied: Red Boot 01")
    number = page.locator("#ticket-number").inner_text()
    expect(page.locator("#ticket-recent-list")).to_contain_text(number)

    page.click("#ticket-print-link")
    expect(page).to_have_url(f"{live_server}/officer/tickets/{number}")
    paper = page.locator("#ticket-paper")
    expect(paper).to_contain_text(number)
    expect(paper).to_contain_text("Red Boot 01")
    expect(page.locator("#ticketprint-qr")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "ticket-print-view.png"), full_page=True)
    page.emulate_media(media="print")
    width = paper.evaluate("element => element.getBoundingClientRect().width")
    assert abs(width - 72 * MM_IN_CSS_PX) < 0.5, width
    expect(page.locator(".navbar")).to_be_hidden()
    expect(page.locator("#ticketprint-print")).to_be_hidden()
    phone.close()

    # The owner, no account, pays on a phone: the ticket's QR code opens the page with the number.
    owner = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = owner.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server}/pay-violation?ticket={number}")
    expect(page.locator("#payviol-ticket")).to_have_value(number)
    page.fill("#payviol-plate", "abc 123")
    page.click("#payviol-find")
    expect(page.locator("#payviol-found")).to_contain_text(f"Ticket {number} found")
    choice = page.locator(".violation-choice", has_text=number)
    expect(choice.locator(".violation-boot-icon")).to_be_visible()
    expect(page.locator("#payviol-total-text")).to_have_text("$115.00 CAD")  # NVP $40 early, boot $75 in full
    page.screenshot(path=str(ARTIFACTS / "pay-violation-found.png"), full_page=True)
    page.fill("#payviol-card-number", "4242 4242 4242 4242")
    page.fill("#payviol-card-expiry", "12/39")
    page.fill("#payviol-card-cvc", "123")
    page.click("#payviol-pay")
    expect(page.locator("#payviol-result")).to_contain_text("E-mail: enter an e-mail address")
    page.fill("#payviol-email", "owner@example.com")
    page.click("#payviol-pay")
    expect(page.locator("#checkout-confirmation")).to_contain_text("Payment received")
    expect(page.locator("#checkout-confirmation")).to_contain_text(number)
    expect(page.locator("#payviol-found")).to_contain_text("nothing to pay")
    expect(page.locator("#checkout-confirmation")).to_be_visible()  # the paid list hides the form, not this
    expect(page.locator("#payviol-pay-section")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "pay-violation-phone.png"), full_page=True)
    owner.close()
    with core.db.session() as s:
        assert s.scalar(select(Violation.status).where(Violation.ticket_number == number)) == "paid"
        assert s.scalar(select(func.count(SandboxCharge.id))) == 1

    desk = browser.new_context(viewport={"width": 1280, "height": 900})
    page = desk.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, live_server, admin.email, "/admin/outbox")
    page.locator("#outbox-table button", has_text="Your boot release code").click()
    detail = page.locator("#outbox-detail")
    expect(detail).to_contain_text("owner@example.com")
    expect(detail).to_contain_text("4801")  # Red Boot 01's code
    expect(detail).to_contain_text(number)
    page.goto(f"{live_server}/admin/boot-report")
    row = page.locator("#bootreport-grid tbody tr", has_text=number)
    expect(row).to_contain_text("Released")
    row.get_by_role("button", name="Edit").click()
    modal = page.locator("#bootreport-modal")
    expect(modal).to_contain_text("$75.00")
    expect(page.locator("#bootreport-refund")).to_be_checked()
    page.click("#bootreport-save")
    expect(page.locator("#bootreport-done")).to_contain_text("Deposit of $75.00 CAD refunded")
    expect(row).to_contain_text("Returned")
    expect(row).to_contain_text("refunded $75.00")
    cells = row.locator("td")
    for column in (4, 5, 6):  # created, released, returned
        expect(cells.nth(column)).to_have_text(re.compile(r"\d{4}, \d{2}:\d{2}$"))
    page.screenshot(path=str(ARTIFACTS / "boot-report-returned.png"), full_page=True)
    desk.close()
    with core.db.session() as s:
        assert s.scalar(select(SandboxCharge.refunded_cents)) == 7500
