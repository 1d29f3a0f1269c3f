"""Every page of every role in a real Chromium, on a 360 px phone and a 1366 px desktop.

The pages come from the app's own registry (``dash.page_registry``): a page added tomorrow is walked
without touching this file, with the real ids of the demo campus in its URL. Each role walks every
page it may open, signed in once in its own browser context. On each page, at both widths:

- the page does not scroll sideways (``document.scrollingElement.scrollWidth`` within the window);
- nothing was written to the console as an error and no script threw;
- no ``/_dash-update-component`` call failed (an answer of 400 or more, or no answer at all);
- axe-core (the axe-core script bundled by ``axe-playwright-python``) finds no serious or critical
  violation of WCAG 2 A/AA.

Every finding of a role is collected before the test fails, so one run lists them all. The one
page Flask renders itself (single sign-on's refusal) has its own test below, as do the phone fit
of the receipt and System Tasks tables and the Check a Plate lot picker's name.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dash
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, Request, Response, expect
from sqlalchemy import select

from dashboard import push
from dashboard.auth import ROLE_ATTR
from dashboard.services import content, demo, email, payment_providers, payments
from dashboard.services.payments import SUCCESS_CARD, ReceiptContext, SandboxProvider
from dashboard.services.permits import PermitRequest
from dashboard.services.plates import clean_plate
from models import Boot, Lot, LotGroup, PermitKind, PermitProduct, Role, User, Violation
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser

WIDTHS = (360, 1366)
CALLBACK = "/_dash-update-component"
AXE_SCRIPT = Axe().axe_script  # axe.min.js as axe-playwright-python bundles it
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}
BLOCKING_IMPACTS = {"serious", "critical"}
BLANK_TILE = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
DEMO_LOGIN = {
    Role.USER: "student@parkops.example",
    Role.OFFICER: "officer@parkops.example",
    Role.MANAGER: "manager@parkops.example",
    Role.ADMIN: "admin@parkops.example",
}


def tile_pattern(tile_url: str) -> str:
    """The map tiles' URLs as a Playwright glob: this machine has no tile server to reach, so the
    walk answers for it (a failed tile is a console error that says nothing about ParkOps)."""
    return re.sub(r"\{[^}]*\}", "*", tile_url)


@dataclass
class Campus:
    """The demo campus plus a paid receipt and a content page: a real id for every page's URL."""

    ids: dict[str, str]
    passwords: dict[str, str] = field(default_factory=dict)


def _receipt_token(core, lot: Lot, product: PermitProduct) -> str:
    now = datetime.now(UTC)
    result = payments.checkout(
        core.db,
        SandboxProvider(core.db),
        items=[
            PermitRequest(
                lot_id=lot.id,
                product_id=product.id,
                plates=(clean_plate("WALK 360"),),
                valid_from=now,
                valid_to=now + timedelta(hours=2),
                amount_cents=600,
                currency="CAD",
                email="walker@example.com",
                user_id=None,
            )
        ],
        card=payment_providers.clean_card(SUCCESS_CARD, "12/39", "123", now.date()),
        idempotency_key="every-page-walk",
        email_address="walker@example.com",
        user_id=None,
        receipt=ReceiptContext(
            name="Walker", site_name="Campus", base_url="http://127.0.0.1", tz=ZoneInfo("America/Toronto")
        ),
        backend=email.OutboxBackend(),
        now=now,
    )
    assert result.status == "paid", result.message
    return str(result.receipt_token)


@pytest.fixture
def campus(core, session, tmp_path) -> Campus:
    email.ensure_default_templates(session)
    demo.seed_demo(session, core.secrets, tmp_path)
    content.save_page(
        session,
        slug="parking-rules",
        title="Parking rules",
        body="Park inside the lines. [real-time-legend]",
        body_format="markdown",
        is_published=True,
        actor_id=None,
    )
    session.commit()
    temporary = session.scalars(
        select(PermitProduct).where(PermitProduct.kind == PermitKind.TEMPORARY).order_by(PermitProduct.id)
    ).first()
    standard = session.scalars(
        select(PermitProduct).where(PermitProduct.kind == PermitKind.STANDARD).order_by(PermitProduct.id)
    ).first()
    assert temporary is not None and standard is not None
    temporary_lot = session.get(Lot, temporary.lot_id)
    violation = session.scalars(select(Violation).order_by(Violation.id)).first()
    assert temporary_lot is not None and violation is not None
    ids = {
        "lot_id": str(temporary_lot.id),
        "group_id": str(session.scalars(select(LotGroup.id).order_by(LotGroup.id)).first()),
        "target": f"{session.scalars(select(LotGroup.id).order_by(LotGroup.id)).first()}/edit",
        "boot_id": str(session.scalars(select(Boot.id).order_by(Boot.id)).first()),
        "user_id": str(session.scalars(select(User.id).where(User.email == DEMO_LOGIN[Role.USER])).one()),
        "violation_id": str(violation.id),
        "number": violation.ticket_number,
        "product_id": str(standard.id),
        "slug": "parking-rules",
        "token": _receipt_token(core, temporary_lot, temporary),
    }
    passwords = {row["email"]: row["password"] for row in demo.read_credentials(tmp_path)}
    return Campus(ids=ids, passwords=passwords)


def pages_for(role: Role, campus: Campus) -> list[str]:
    """Every page ``role`` may open, templated ones with a real id (and the empty "new" form too)."""
    paths = []
    for page in dash.page_registry.values():
        if page[ROLE_ATTR] > role:
            continue
        template = page.get("path_template")
        if template:
            filled = template
            for name, value in campus.ids.items():
                filled = filled.replace(f"<{name}>", value)
            assert "<" not in filled, f"no demo id for {template}"
            paths.append(filled)
            if page["path"].endswith("/new"):
                paths.append(page["path"])
        else:
            paths.append(page["path"])
    return sorted(paths)


class Watch:
    """What the browser reports while a page loads: console errors, script errors, failed callbacks,
    and how many callbacks are still waiting for their answer."""

    def __init__(self, page: Page) -> None:
        self.findings: list[str] = []
        self.in_flight = 0
        self.path = ""
        self.leaving = False  # the walk is navigating away: the old page's callbacks are cut off
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.findings.append(f"{self.path}: script error: {exc}"))
        page.on("request", self._request)
        page.on("requestfinished", self._done)
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message) -> None:
        if message.type == "error":
            self.findings.append(f"{self.path}: console error: {message.text}")

    def _request(self, request: Request) -> None:
        if CALLBACK in request.url:
            self.in_flight += 1

    def _done(self, request: Request) -> None:
        if CALLBACK in request.url:
            self.in_flight -= 1

    def _failed(self, request: Request) -> None:
        if CALLBACK in request.url:
            self.in_flight -= 1
            if not (self.leaving and request.failure == "net::ERR_ABORTED"):
                self.findings.append(f"{self.path}: callback got no answer: {request.failure}")

    def open(self, page: Page, url: str) -> None:
        """Go to ``url``; a callback of the page left behind that the browser cancels (a timer's
        refresh, say) is not a failure of either page."""
        self.leaving = True
        try:
            page.goto(url)
        finally:
            self.leaving = False

    def _response(self, response: Response) -> None:
        if CALLBACK in response.url and response.status >= 400:
            body = response.request.post_data or ""
            self.findings.append(f"{self.path}: callback answered {response.status}: {body[:160]}")

    def settle(self, page: Page) -> None:
        """Wait until the page has drawn and its callbacks have answered (quiet for 300 ms)."""
        page.wait_for_selector("#_pages_content > *", state="attached")
        deadline = time.monotonic() + 15
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            page.wait_for_timeout(100)
            if self.in_flight > 0:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= 0.3:
                return
        self.findings.append(f"{self.path}: callbacks still running after 15 s")


def overflow(page: Page) -> int:
    """How many pixels the page scrolls sideways (0: it fits)."""
    return page.evaluate(
        "() => document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
    )


def axe_findings(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now (its script is injected
    once per page load: ``window.axe`` stays until the next navigation)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SCRIPT)
    violations = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)["violations"]
    found = []
    for violation in violations:
        if violation["impact"] in BLOCKING_IMPACTS:
            nodes = violation["nodes"]
            targets = [" ".join(map(str, node["target"])) for node in nodes[:3]]
            found.append(
                f"axe {violation['impact']} {violation['id']} ({violation['help']}) at {targets}: "
                f"{nodes[0]['html'][:200]} {nodes[0].get('failureSummary', '')[:300]!r}"
            )
    return found


def sign_in_as(page: Page, live_server: str, role: Role, campus: Campus) -> None:
    """Sign in with the demo account of ``role``, landing on the home page."""
    address = DEMO_LOGIN[role]
    sign_in(page, live_server, address, "/", password=campus.passwords[address])


@pytest.fixture
def quiet_streams(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A short heartbeat lets the server notice a page left at once, so no push stream outlives the
    walk (other browser tests count open streams)."""
    monkeypatch.setattr(push, "HEARTBEAT_SECONDS", 0.3)
    yield
    deadline = time.monotonic() + 5
    while push.active_streams() and time.monotonic() < deadline:
        time.sleep(0.05)


ROLES = [Role.GUEST, Role.USER, Role.OFFICER, Role.MANAGER, Role.ADMIN]


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name.lower())
def test_every_page_fits_works_and_passes_axe(
    browser: Browser, live_server: str, core, campus: Campus, role: Role, quiet_streams: None
) -> None:
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": 800})
    context.route(tile_pattern(core.settings.tile_url), lambda route: route.fulfill(body=BLANK_TILE))
    page = context.new_page()
    page.set_default_timeout(15_000)
    watch = Watch(page)
    try:
        if role is not Role.GUEST:
            watch.path = "/login (signing in)"
            sign_in_as(page, live_server, role, campus)
            watch.settle(page)
        paths = pages_for(role, campus)
        assert len(paths) >= 10
        for path in paths:
            watch.path = path
            page.set_viewport_size({"width": WIDTHS[0], "height": 800})
            watch.open(page, f"{live_server}{path}")
            watch.settle(page)
            assert page.url.startswith(f"{live_server}{path.split('?')[0]}"), f"{path} sent {role} away"
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 800})
                page.wait_for_timeout(80)  # a frame for the resize (and assets/a11y.js)
                spill = overflow(page)
                if spill > 0:
                    watch.findings.append(f"{path} at {width} px: scrolls sideways by {spill} px")
                watch.findings.extend(f"{path} at {width} px: {found}" for found in axe_findings(page))
        page.goto("about:blank")
    finally:
        context.close()
    assert not watch.findings, "\n".join(watch.findings)


def test_the_receipt_and_system_tasks_tables_fit_a_phone(
    browser: Browser, live_server: str, campus: Campus
) -> None:
    """At 360 px every cell of the receipt's permits, and the RUN button and last outcome of every
    system task, are on screen: the tables stack instead of scrolling sideways."""
    context = browser.new_context(viewport={"width": 360, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server}/receipts/{campus.ids['token']}")
        cells = page.locator(".receipt-permit td")
        expect(page.locator(".receipt-permit")).to_contain_text(re.compile(r"WALK ?360"))
        assert_inside_the_screen(page, cells, 5)
        sign_in_as(page, live_server, Role.ADMIN, campus)
        page.goto(f"{live_server}/admin/tasks")
        runs = page.get_by_role("button", name="RUN")
        expect(runs.first).to_be_visible()
        count = runs.count()
        assert_inside_the_screen(page, runs, count)
        assert_inside_the_screen(page, page.locator('#tasks-table-grid td[data-label="Last outcome"]'), count)
        page.goto("about:blank")
    finally:
        context.close()


def assert_inside_the_screen(page: Page, cells, expected: int) -> None:
    boxes = [cell.bounding_box() for cell in cells.all()]
    assert len(boxes) >= expected
    assert all(box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360 for box in boxes), boxes
    assert page.evaluate(
        "() => [...document.querySelectorAll('.table-responsive')].every(b => b.scrollWidth <= b.clientWidth)"
    )


def test_the_check_a_plate_lot_picker_is_named_and_takes_the_tab_key(
    browser: Browser, live_server: str, campus: Campus
) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in_as(page, live_server, Role.OFFICER, campus)
        page.goto(f"{live_server}/officer/check")
        picker = page.locator("#check-lot")
        expect(picker).to_have_accessible_name(re.compile(r"^Lot\b"))
        expect(picker).to_have_attribute("tabindex", "0")
        proxy = page.locator(".dash-dropdown-focus-target").first  # Dash's own Tab stop, aria-hidden
        expect(proxy).to_have_attribute("tabindex", "-1")
        page.goto("about:blank")
    finally:
        context.close()


def test_the_flask_rendered_refusal_page_fits_and_passes_axe(browser: Browser, live_server: str) -> None:
    """The one page Flask renders itself (not Dash): single sign-on's refusal, here because SSO is
    not set up (503)."""
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        response = page.goto(f"{live_server}/sso/login")
        assert response is not None and response.status == 503
        expect(page.locator("#sso-refused")).to_have_text("Single sign-on did not work")
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            assert overflow(page) == 0, width
            assert axe_findings(page) == [], width
        assert errors == []
    finally:
        context.close()


def test_an_admins_menu_fits_a_tablet(browser: Browser, live_server: str, campus: Campus) -> None:
    """At 800 px (above the phone menu's breakpoint) an admin's menu is wider than the screen: its
    entries wrap onto a second line, so System and Log out stay on screen with no sideways scroll."""
    context = browser.new_context(viewport={"width": 800, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in_as(page, live_server, Role.ADMIN, campus)
        page.goto(f"{live_server}/")
        expect(page.get_by_role("button", name="Log out")).to_be_visible()
        assert page.evaluate("document.scrollingElement.scrollWidth - innerWidth") <= 0
        entries = page.locator("#shell-nav > *, #shell-user button")
        boxes = [entry.bounding_box() for entry in entries.all()]
        assert len(boxes) >= 8  # the admin's entries (Home ... System) and Log out
        inside = [box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 800 for box in boxes]
        assert all(inside), boxes
        page.goto("about:blank")
    finally:
        context.close()
