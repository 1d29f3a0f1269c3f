"""Accounts in a real browser: a member of the public registers on a 390 px phone, confirms the
address from the e-mail in the outbox and signs in; someone who forgot their password resets it
from the e-mail and their other session ends; an admin deactivates a user whose open session
ends at once. The admin screens fit a phone too."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from dashboard.services import email
from models import OutboxMessage, Role, UserType
from tests.browser.signing import sign_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

NEW_PASSWORD = "tram lime orbit 42"


def phone(browser: Browser) -> Page:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def link_from_outbox(core, key: str, path: str, live_server: str) -> str:
    """The link in the newest e-mail of ``key``: it starts with the site's public URL (which in
    tests is not the live server's port), so the same path and token are opened on the server."""
    with core.db.session() as s:
        body = s.scalars(
            select(OutboxMessage.body_text)
            .where(OutboxMessage.template_key == key)
            .order_by(OutboxMessage.id.desc())
        ).first()
    assert body is not None, f"no {key} e-mail in the outbox"
    match = re.search(rf"{re.escape(core.settings.public_url)}{re.escape(path)}\?token=([\w-]+)", body)
    assert match, body
    return f"{live_server}{path}?token={match.group(1)}"


def fits(page: Page, width: int = 390) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_register_on_a_phone_confirm_from_the_email_and_sign_in(browser, live_server, core):
    with core.db.session() as s:
        email.ensure_default_templates(s)
        s.add(UserType(code="public", name="Public", self_registration=True))
    page = phone(browser)
    try:
        page.goto(f"{live_server}/login")
        page.click("#login-register")
        expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
        page.fill("#register-first", "Robin")
        page.fill("#register-last", "Quayle")
        page.fill("#register-email", "robin@example.com")
        expect(page.locator("#register-type option", has_text="Public")).to_have_count(1)
        page.select_option("#register-type", label="Public")
        page.fill("#register-password", "password1234")
        page.fill("#register-confirm", "password1234")
        page.click("#register-submit")
        expect(page.locator("#register-status")).to_contain_text("most common passwords")
        expect(page.locator("#register-first")).to_have_value("Robin")  # nothing typed is lost
        page.fill("#register-password", NEW_PASSWORD)
        page.fill("#register-confirm", NEW_PASSWORD)
        fits(page)
        page.click("#register-submit")
        expect(page.locator("#register-done")).to_contain_text("Check your inbox")

        sign_in(page, live_server, "robin@example.com", "/permits", password=NEW_PASSWORD, arrive=False)
        expect(page.locator("#login-error")).to_contain_text("not confirmed yet")
        expect(page.get_by_role("link", name="Send me a new link")).to_be_visible()

        page.goto(link_from_outbox(core, "email-verification", "/verify", live_server))
        expect(page.locator("#verify-done")).to_contain_text("robin@example.com is confirmed")
        fits(page)
        page.get_by_role("link", name="Log in", exact=True).last.click()
        expect(page).to_have_url(re.compile(r"/login"))
        sign_in(page, live_server, "robin@example.com", "/permits", password=NEW_PASSWORD, arrive=False)
        expect(page.get_by_role("heading", name="My Permits")).to_be_visible()
    finally:
        page.context.close()


def test_forgot_password_reset_from_the_email_ends_the_old_session(
    browser, page, live_server, core, make_user
):
    with core.db.session() as s:
        email.ensure_default_templates(s)
    user = make_user(Role.USER, first_name="Alex", last_name="Morgan")
    elsewhere = browser.new_context().new_page()
    try:
        sign_in(elsewhere, live_server, user.email, "/permits", password=PASSWORD, arrive=False)
        expect(elsewhere.get_by_role("heading", name="My Permits")).to_be_visible()

        page.goto(f"{live_server}/login")
        page.click("#login-forgot")
        page.fill("#forgot-email", user.email)
        page.click("#forgot-submit")
        expect(page.locator("#forgot-done")).to_contain_text("If an account uses this address")

        page.goto(link_from_outbox(core, "password-reset", "/password/reset", live_server))
        page.fill("#reset-password", NEW_PASSWORD)
        page.fill("#reset-confirm", NEW_PASSWORD)
        page.click("#reset-submit")
        expect(page.locator("#reset-done")).to_contain_text(
            "every session of your account has been signed out"
        )

        sign_in(page, live_server, user.email, "/permits", password=PASSWORD, arrive=False)
        expect(page.locator("#login-error")).to_contain_text("incorrect")
        sign_in(page, live_server, user.email, "/permits", password=NEW_PASSWORD, arrive=False)
        expect(page.get_by_role("heading", name="My Permits")).to_be_visible()

        elsewhere.goto(f"{live_server}/permits")
        expect(elsewhere).to_have_url(re.compile(r"/login\?next="))
    finally:
        elsewhere.context.close()


def test_an_admin_deactivates_a_user_whose_open_session_ends(browser, page, live_server, make_user):
    admin = make_user(Role.ADMIN, first_name="Ada", last_name="Admin")
    victim = make_user(Role.USER, first_name="Vic", last_name="Tim", external_id="S2024001")
    other = browser.new_context().new_page()
    try:
        sign_in(other, live_server, victim.email, "/permits", password=PASSWORD, arrive=False)
        expect(other.get_by_role("heading", name="My Permits")).to_be_visible()

        sign_in(page, live_server, admin.email, "/admin/users", password=PASSWORD, arrive=False)
        expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
        page.fill("#users-text", "S2024001")
        page.press("#users-text", "Enter")
        expect(page.locator("#users-range")).to_have_text("1–1 of 1")
        page.get_by_role("link", name="Vic Tim").click()
        expect(page.get_by_role("heading", name="Vic Tim")).to_be_visible()
        expect(page.get_by_label("Active (may sign in)")).to_be_checked()
        page.get_by_label("Active (may sign in)").click()
        page.click("#user-save")
        expect(page.locator("#user-saved")).to_contain_text("signed out everywhere")

        other.reload()
        expect(other).to_have_url(re.compile(r"/login\?next="))
        sign_in(other, live_server, victim.email, "/permits", password=PASSWORD, arrive=False)
        expect(other.locator("#login-error")).to_contain_text("incorrect")

        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        expect(page.get_by_role("heading", name="Vic Tim")).to_be_visible()
        fits(page)
        page.goto(f"{live_server}/admin/users")
        expect(page.locator("#users-grid")).to_be_visible()
        fits(page)
        page.goto(f"{live_server}/admin/user-types")
        expect(page.get_by_role("heading", name="User Types")).to_be_visible()
        fits(page)
    finally:
        other.context.close()
