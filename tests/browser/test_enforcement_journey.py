"""Enforcement in a real browser: an officer on a 390 px phone (the form also fits 360 px) checks a
plate, writes a Boot Applied ticket with a boot and opens its print view (the printable area is
72 mm wide when printing); once the ticket is paid and the code sent, an admin marks the boot
returned on the Boot Device Report with Process Refund, and the report shows every date."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from dashboard.services import boots, email
from dashboard.services.boots import ReleaseMail
from models import Role, SandboxCharge, Violation
from tests.conftest import PASSWORD
from tests.enforcement import enable_boots, make_place, pay_violation

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
MM_IN_CSS_PX = 96 / 25.4


def log_in(page: Page, live_server: str, user, target: str) -> None:
    page.goto(f"{live_server}/login?next={target}")
    page.fill("#login-email", user.email)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(re.compile(re.escape(f"{live_server}{target.split('?')[0]}")))


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
    log_in(page, live_server, officer, "/officer/check")
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

    with core.db.session() as s:
        violation = s.scalar(select(Violation).where(Violation.ticket_number == number))
        violation_id, total = violation.id, violation.total_cents
    pay_violation(core, violation_id, total)
    with core.db.session() as s:
        boots.release_boot_for_paid_violation(
            s, core.secrets, violation_id, ReleaseMail("owner@example.com", "Owner", "Campus", "Lot A"),
            email.OutboxBackend(), datetime.now(UTC),
        )  # fmt: skip

    desk = browser.new_context(viewport={"width": 1280, "height": 900})
    page = desk.new_page()
    page.set_default_timeout(15_000)
    log_in(page, live_server, admin, "/admin/boot-report")
    row = page.locator("#bootreport-grid tbody tr", has_text=number)
    expect(row).to_contain_text("Released")
    row.get_by_role("button", name="Edit").click()
    modal = page.locator("#bootreport-modal")
    expect(modal).to_contain_text("$75.00")
    expect(page.locator("#bootreport-refund")).to_be_checked()
    page.click("#bootreport-save")
    expect(page.locator("#bootreport-done")).to_contain_text("Deposit of $75.00 refunded")
    expect(row).to_contain_text("Returned")
    expect(row).to_contain_text("refunded $75.00")
    cells = row.locator("td")
    for column in (4, 5, 6):  # created, released, returned
        expect(cells.nth(column)).to_have_text(re.compile(r"\d{4}, \d{2}:\d{2}$"))
    page.screenshot(path=str(ARTIFACTS / "boot-report-returned.png"), full_page=True)
    desk.close()
    with core.db.session() as s:
        assert s.scalar(select(SandboxCharge.refunded_cents)) == 7500
