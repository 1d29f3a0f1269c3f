"""An admin sets the PeopleSoft report to weekly on Sunday at 03:00 on System Task Logs and reads
it back in words; a manager opens PeopleSoft Holds and downloads the Holds Added file, which is
byte for byte the file that was e-mailed."""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from dashboard.app import prepare_database
from dashboard.services import email, peoplesoft
from models import Role
from tests.browser.signing import sign_in
from tests.enforcement import make_place, write_ticket
from tests.services.test_peoplesoft import HEADER, TORONTO, add_owner, local

pytestmark = pytest.mark.browser


def test_admin_sets_a_weekly_time(page: Page, live_server, make_user, core):
    prepare_database(core)
    sign_in(page, live_server, make_user(Role.ADMIN).email, "/admin/tasks")
    row = page.locator("#tasks-table-grid tr", has_text="PeopleSoft Holds Report")
    expect(row).to_contain_text("daily at 02:00")
    row.get_by_role("button", name="Edit").click()
    expect(page.locator("#tasks-edit-modal")).to_be_visible()
    page.get_by_label("Weekly on a day at a time").check()
    page.fill("#tasks-edit-time", "03:00")
    page.select_option("#tasks-edit-weekday", label="Sunday")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#tasks-flash")).to_contain_text(
        "PeopleSoft Holds Report now runs weekly on Sunday at 03:00 once it is turned on."
    )
    expect(row).to_contain_text("weekly on Sunday at 03:00")


def test_manager_downloads_the_holds_added_file(page: Page, live_server, make_user, core, tmp_path: Path):
    prepare_database(core)
    with core.db.session() as s:
        email.ensure_default_templates(s)
    place = make_place(core)
    add_owner(core, "ana@campus.test", "AAA 111", "none", "S100", "Ana Avery")
    write_ticket(core, make_user(Role.OFFICER).id, place, plate="AAA 111", now=local(2026, 3, 2, 20, 0))
    with core.db.session() as s:
        peoplesoft.run_report(
            s, local(2026, 3, 3, 2, 0), TORONTO, pattern="holds_{type}_{date}.txt",
            recipient="holds@campus.test", backend=email.OutboxBackend(),
        )  # fmt: skip
    sign_in(page, live_server, make_user(Role.MANAGER).email, "/admin/peoplesoft")
    expect(page.locator("#peoplesoft-off")).to_contain_text("PeopleSoft holds are turned off")
    expect(page.locator("#peoplesoft-holds-grid")).to_contain_text("Ana Avery")
    with page.expect_download() as download:
        page.get_by_role("button", name="holds_added_20260303.txt").click()
    saved = tmp_path / "added.txt"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "holds_added_20260303.txt"
    assert saved.read_bytes() == HEADER + b"S100\t50.00\t\tNo valid permit\t2026-03-02\r\n"
