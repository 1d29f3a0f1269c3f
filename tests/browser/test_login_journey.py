"""Signing in and out in a real browser; a guest sent to the login page from an admin screen."""

import pytest
from playwright.sync_api import Page, expect

from models import Role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_guest_is_sent_to_login_and_lands_back_after_signing_in(page: Page, live_server, make_user):
    admin = make_user(Role.ADMIN, first_name="Ada", last_name="Admin")
    page.goto(f"{live_server}/admin/settings")
    expect(page).to_have_url(f"{live_server}/login?next=%2Fadmin%2Fsettings")
    page.fill("#login-email", admin.email)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(f"{live_server}/admin/settings")
    expect(page.get_by_text("Ada Admin (Admin)")).to_be_visible()
    expect(page.get_by_role("heading", name="System Settings")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()


def test_wrong_password_shows_an_error(page: Page, live_server, make_user):
    user = make_user(Role.USER)
    page.goto(f"{live_server}/login")
    page.fill("#login-email", user.email)
    page.fill("#login-password", "not-the-password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_contain_text("incorrect")


def test_plain_user_sees_no_admin_menu(page: Page, live_server, make_user):
    user = make_user(Role.USER)
    page.goto(f"{live_server}/login")
    page.fill("#login-email", user.email)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_role("link", name="System Settings")).to_have_count(0)


def test_a_next_link_with_a_tab_cannot_send_the_browser_off_site(page: Page, live_server, make_user):
    """The issue's link: Chromium drops the tab from ``/\t/evil.example`` and would follow
    ``//evil.example``; after the fix the login lands on this site's home page."""
    user = make_user(Role.USER)
    page.goto(f"{live_server}/login?next=/%09/evil.example")
    page.fill("#login-email", user.email)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page).to_have_url(f"{live_server}/")


def test_after_ten_wrong_passwords_the_page_says_to_wait(page: Page, live_server, app, make_user):
    user = make_user(Role.USER)
    guesser = app.test_client()
    for n in range(10):
        guesser.post("/login", data={"email": user.email, "password": f"guess-{n}"})
    page.goto(f"{live_server}/login")
    page.fill("#login-email", user.email)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("Too many attempts; try again in 15 minutes.")
    expect(page.get_by_role("link", name="Log in")).to_be_visible()


def test_a_cookie_copied_to_another_browser_dies_with_the_logout(browser, page: Page, live_server, make_user):
    admin = make_user(Role.ADMIN, first_name="Ada", last_name="Admin")
    page.goto(f"{live_server}/login?next=/admin/settings")
    page.fill("#login-email", admin.email)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    expect(page.get_by_role("heading", name="System Settings")).to_be_visible()
    other = browser.new_context()
    try:
        other.add_cookies(page.context.cookies())
        copy = other.new_page()
        copy.goto(f"{live_server}/admin/settings")
        expect(copy.get_by_role("heading", name="System Settings")).to_be_visible()
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("link", name="Log in")).to_be_visible()
        copy.goto(f"{live_server}/admin/settings")
        expect(copy).to_have_url(f"{live_server}/login?next=%2Fadmin%2Fsettings")
    finally:
        other.close()


def test_on_a_phone_the_menu_closes_when_a_page_is_chosen(page: Page, live_server, make_user):
    officer = make_user(Role.OFFICER)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server}/login")
    page.fill("#login-email", officer.email)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    expect(page.get_by_role("button", name="Log out")).to_be_hidden()  # folded into the menu
    page.locator("#shell-toggler").click()
    page.get_by_role("button", name="Enforcement").click()
    page.locator("#shell-collapse .dropdown-item", has_text="Check a Plate").click()
    expect(page).to_have_url(f"{live_server}/officer/check")
    expect(page.get_by_role("heading", name="Check a Plate")).to_be_visible()
    expect(page.locator("#shell-collapse")).not_to_have_class("collapse show")
    expect(page.get_by_role("button", name="Log out")).to_be_hidden()  # the menu is closed again
