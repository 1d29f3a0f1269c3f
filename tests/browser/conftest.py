"""A live server on a free port and a Playwright page in Debian's Chromium.

Playwright's own browser download is not used (it cannot work offline); ``/usr/bin/chromium`` is.
Every module here sets ``pytestmark = pytest.mark.browser`` so ``make test`` leaves them to ``.ci/run``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from werkzeug.serving import make_server

from dashboard import push

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture
def journey(page: Page, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    """A page for journeys on live-updating screens: a short heartbeat lets the server notice the
    closed page at once, so no push stream outlives the test (later tests count open streams)."""
    monkeypatch.setattr(push, "HEARTBEAT_SECONDS", 0.3)
    yield page
    page.goto("about:blank")
    deadline = time.monotonic() + 5
    while push.active_streams() and time.monotonic() < deadline:
        time.sleep(0.05)
