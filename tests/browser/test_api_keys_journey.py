"""An admin issues a key for a pay station, copies it from the one-time panel, sees it listed by
its prefix only, the key works against the API, and after a confirmed revoke it is refused. The
page also fits a 360 px phone without horizontal scrolling. A key that records permits is bound to
its sources, which the Sources dialog changes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from models import Role
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def test_admin_issues_and_revokes_a_key(page: Page, live_server, make_user):
    admin = make_user(Role.ADMIN)
    sign_in(page, live_server, admin.email, "/admin/api-keys")
    expect(page.locator("#api-keys-table")).to_contain_text("No API keys yet")

    page.get_by_label("Name").fill("Cale pay stations")
    page.get_by_label("permits:read", exact=False).check()
    page.get_by_role("button", name="Create key").click()
    key_field = page.locator("#api-keys-issued-key")
    expect(key_field).to_be_visible()
    expect(page.locator("#api-keys-issued")).to_contain_text("You will not see it again")
    key = key_field.input_value()
    assert key.startswith("pk_")
    row = page.locator("#api-keys-grid tr", has_text="Cale pay stations")
    expect(row).to_contain_text(key[:10] + "…")
    assert key not in page.locator("#api-keys-table").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "api-keys-issued.png"), full_page=True)

    url = f"{live_server}/api/v1/permits/validate"
    assert (
        requests.get(
            url,
            params={"plate": "ABC123", "lot": "x"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        ).status_code
        == 422
    )

    page.get_by_role("button", name="Done").click()
    expect(key_field).to_be_hidden()
    row.get_by_role("button", name="Revoke").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Cale pay stations")
    dialog.get_by_role("button", name="Revoke").click()
    expect(page.locator("#api-keys-flash")).to_contain_text("is revoked")
    expect(row).to_contain_text("revoked")
    assert (
        requests.get(
            url,
            params={"plate": "ABC123", "lot": "x"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        ).status_code
        == 401
    )

    page.set_viewport_size({"width": 360, "height": 740})
    page.reload()
    expect(page.locator("#api-keys-grid")).to_be_visible()
    scroll = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert scroll <= 0
    page.screenshot(path=str(ARTIFACTS / "api-keys-phone.png"), full_page=True)


def test_admin_binds_a_key_to_its_sources(page: Page, live_server, make_user):
    """A writing key needs its source; the Sources dialog changes a key's sources in place."""
    admin = make_user(Role.ADMIN)
    sign_in(page, live_server, admin.email, "/admin/api-keys")

    page.get_by_label("Name").fill("Cale pay stations")
    page.get_by_label("permits:write", exact=False).check()
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#api-keys-form-error")).to_contain_text("Sources: choose the source(s)")
    page.locator("#api-keys-sources").get_by_label("Pay stations", exact=False).check()
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#api-keys-issued-key")
    expect(key).to_have_value(re.compile(r"^pk_"))
    row = page.locator("#api-keys-grid tr", has_text="Cale pay stations")
    expect(row).to_contain_text("Pay stations (pay-and-display, meters)")

    row.get_by_role("button", name="Sources").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Sources of “Cale pay stations”")
    dialog.get_by_label("HotSpot").check()
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("#api-keys-sources-flash")).to_contain_text("now acts for: Pay stations")
    expect(row).to_contain_text("HotSpot")
    body = {"apiToken": key.input_value(), "source": "hotspot", "zone": "nowhere"}
    pushed = requests.post(f"{live_server}/api/OC-TOMA/v1/permits/push", json=body, timeout=10)
    assert pushed.status_code == 422  # past the source check: only the fields are wrong
