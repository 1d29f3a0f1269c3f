"""Signing in through the login form, as a person does, for journeys that start signed in."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD


def sign_in(
    page: Page,
    live_server: str,
    email: str,
    target: str = "/",
    *,
    password: str = PASSWORD,
    arrive: bool = True,
) -> None:
    """Fill and send the login form opened for ``target`` (its ``next``); with ``arrive``, wait
    until the browser is on ``target``'s page (any query string), so the journey starts there. A
    journey that expects the login to be refused passes ``arrive=False`` and checks the form."""
    page.goto(f"{live_server}/login?next={target}")
    page.fill("#login-email", email)
    page.fill("#login-password", password)
    page.click("#login-submit")
    if arrive:
        path = target.split("?")[0]
        expect(page).to_have_url(re.compile(re.escape(f"{live_server}{path}") + r"(\?.*)?$"))
