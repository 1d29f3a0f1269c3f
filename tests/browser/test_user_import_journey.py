"""A dropped file is imported by the Managed User Import task; the admin opens User Import, reads
the accepted header names and the import's counts, and downloads the failures file, which is byte
for byte the CSV that was e-mailed."""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from dashboard.app import prepare_database
from dashboard.services import system_settings
from models import OutboxAttachment, Role
from tests.browser.signing import sign_in
from workers import tasks
from workers.jobs import execute_task

pytestmark = pytest.mark.browser


def test_admin_reads_the_history_and_downloads_the_failures(
    page: Page, live_server, make_user, core, tmp_path: Path, monkeypatch
):
    prepare_database(core)
    monkeypatch.setattr(tasks, "IMPORT_SETTLE_SECONDS", 0.0)
    drop = tmp_path / "drop"
    with core.db.session() as s:
        system_settings.update(
            s,
            core.secrets,
            {"csv_import_folder": str(drop), "csv_import_failed_email": "hr@campus.test"},
            None,
        )
    drop.mkdir()
    (drop / "staff.csv").write_text("employ_no,email,last_name\nE1,ann@campus.test,Ames\nE2,@bad,=SUM(A1)\n")
    assert execute_task(core, "managed-user-import", "test").outcome == "success"
    with core.db.session() as s:
        emailed = bytes(s.scalars(select(OutboxAttachment)).one().content)

    sign_in(page, live_server, make_user(Role.ADMIN).email, "/admin/user-import")
    expect(page.locator("#user-import-headers")).to_contain_text("student_no, employ_no")
    expect(page.locator("#user-import-state")).to_contain_text(f"Drop folder: {drop}.")
    row = page.locator("#user-import-grid tbody tr").first
    expect(row).to_contain_text("staff.csv")
    with page.expect_download() as download:
        page.get_by_role("button", name="staff-failures.csv").click()
    saved = tmp_path / "got.csv"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "staff-failures.csv"
    assert saved.read_bytes() == emailed
    assert b"'=SUM(A1)" in emailed
