"""Every page of the app, opened in Chromium as an admin and as a guest, runs under the
Content-Security-Policy without a single violation (scripts, styles, images, the live stream);
an unknown address answers 404 but still shows the app's "not found" page, a page above the
signed-in user's role answers 403 but still shows the app ("Not authorised", the menu, a way on),
and a page reached inside the app is still routed."""

from __future__ import annotations

import dash
import pytest
from playwright.sync_api import Page, expect

from dashboard.auth import ROLE_ATTR
from dashboard.services import demo
from models import Lot, LotGroup, Role
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser

# Collects what the browser refused, from the first script of every document on.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
    window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def campus(core, session, tmp_path) -> dict[str, int]:
    demo.seed_demo(session, core.secrets, tmp_path)
    session.commit()
    lot = session.query(Lot).order_by(Lot.id).first()
    group = session.query(LotGroup).order_by(LotGroup.id).first()
    return {"lot_id": lot.id, "group_id": group.id}


def _paths(role: Role, ids: dict[str, int]) -> list[str]:
    values = {"lot_id": ids["lot_id"], "group_id": ids["group_id"], "slug": "none", "token": "none"}
    paths = []
    for page in dash.page_registry.values():
        if page[ROLE_ATTR] > role:
            continue
        template = page.get("path_template")
        if template:
            for name in template.split("<")[1:]:
                name = name.split(">")[0]
                template = template.replace(f"<{name}>", str(values.get(name, ids["lot_id"])))
            paths.append(template)
        else:
            paths.append(page["path"])
    return sorted(paths)


def _visit_all(page: Page, live_server: str, paths: list[str]) -> list[str]:
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    page.add_init_script(RECORD_VIOLATIONS)
    found = []
    for path in paths:
        response = page.goto(f"{live_server}{path}")
        assert response is not None
        policy = response.headers.get("content-security-policy", "")
        assert (
            "script-src 'self' 'sha256-" in policy
            and "unsafe" not in policy.split("script-src")[1].split(";")[0]
        )
        expect(page.locator("#main")).to_be_visible()
        page.wait_for_load_state("networkidle")
        found += [f"{path}: {v}" for v in page.evaluate("window.__cspViolations")]
    return found + console


def test_every_page_runs_under_the_policy_as_an_admin(live_server, journey: Page, campus, make_user):
    admin = make_user(Role.ADMIN)
    sign_in(journey, live_server, admin.email, "/")
    expect(journey.get_by_role("button", name="Log out")).to_be_visible()
    paths = _paths(Role.ADMIN, campus)
    assert "/admin/settings" in paths and f"/lot-groups/{campus['group_id']}" in paths
    assert _visit_all(journey, live_server, paths) == []


def test_every_public_page_runs_under_the_policy_as_a_guest(live_server, journey: Page, campus):
    paths = _paths(Role.GUEST, campus)
    assert "/real-time" in paths and f"/checkout/temp/{campus['lot_id']}" in paths
    assert _visit_all(journey, live_server, paths) == []
    # The policy is in force: a script injected into the page does not run.
    injected = "() => { const s = document.createElement('script'); s.textContent = 'window.__pwned = 1'; "
    injected += "document.body.appendChild(s); return window.__pwned === undefined; }"
    assert journey.evaluate(injected) is True
    # The map really drew under the policy (its bundle, its pins, its inline styles).
    journey.goto(f"{live_server}/real-time")
    expect(journey.locator("path.realtime-pin").first).to_be_attached()


def test_an_unknown_address_is_a_404_that_still_shows_the_not_found_page(live_server, page: Page, campus):
    response = page.goto(f"{live_server}/no/such/page")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    page.get_by_role("link", name="Real-Time Map").first.click()  # routed inside the app
    expect(page).to_have_url(f"{live_server}/real-time")
    expect(page.locator("path.realtime-pin").first).to_be_attached()


def test_a_page_above_ones_role_is_a_403_that_still_shows_the_app(live_server, page: Page, campus, make_user):
    """Someone signed in opens an address their role may not see (a shared link, a bookmark from
    another account): status 403, but the app's frame with their menu, "Not authorised" and a way on."""
    manager = make_user(Role.MANAGER)
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server, manager.email, "/admin")
    response = page.goto(f"{live_server}/admin/users")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not authorised")).to_be_visible()
    expect(page).to_have_title("Not authorised · ParkOps")
    page.get_by_role("link", name="home page").click()  # routed inside the app
    expect(page).to_have_url(f"{live_server}/")
    expect(page.get_by_role("heading", name="ParkOps")).to_be_visible()
