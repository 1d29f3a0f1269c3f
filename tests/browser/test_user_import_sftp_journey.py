"""An admin sets up the SFTP pull on a phone: System Settings > Third Party, a pasted private key
(the browser drops its line breaks, ParkOps puts them back), a host key that is not a key is
refused on the field, then the right one; the Managed User Import task fetches the file from a
real SFTP server, and User Import shows the pull with the pinned key's fingerprint and the
import."""

from pathlib import Path

import asyncssh
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from dashboard.app import prepare_database
from dashboard.services import ssh_keys
from models import Role, User
from tests.browser.signing import sign_in
from tests.sftp_server import USERNAME, running
from workers import tasks
from workers.jobs import execute_task

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path: Path):
    root = tmp_path / "sftp-root"
    (root / "outgoing").mkdir(parents=True)
    yield from running(root)


def fits(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_admin_sets_up_the_sftp_pull_on_a_phone_and_sees_it_work(
    page: Page, live_server, make_user, core, server, tmp_path: Path, monkeypatch
):
    prepare_database(core)
    monkeypatch.setattr(tasks, "IMPORT_SETTLE_SECONDS", 0.0)
    monkeypatch.setattr(tasks, "SFTP_MIN_AGE_SECONDS", 0.0)
    key = asyncssh.generate_private_key("ssh-ed25519")
    server.client_key = key
    (server.root / "outgoing" / "users.csv").write_text("unique_id,email\nS1,ana@campus.test\n")
    page.set_viewport_size({"width": 390, "height": 844})

    sign_in(page, live_server, make_user(Role.ADMIN).email, "/admin/settings")
    page.get_by_role("tab", name="Third Party").click()
    page.get_by_label("Import Drop Folder", exact=True).fill(str(tmp_path / "drop"))
    page.get_by_label("SFTP Host", exact=True).fill("127.0.0.1")
    page.get_by_label("SFTP Port", exact=True).fill(str(server.port))
    page.get_by_label("SFTP Username", exact=True).fill(USERNAME)
    page.get_by_label("SFTP Private Key", exact=True).fill(key.export_private_key("openssh").decode("ascii"))
    page.get_by_label("SFTP Host Key", exact=True).fill("ssh-ed25519 not-a-key")
    page.get_by_label("SFTP Remote Folder", exact=True).fill("outgoing")
    page.click("#settings-save")
    status = page.locator("#settings-status")
    expect(status).to_contain_text("SFTP Host Key (Third Party): not an SSH public key")
    feedback = page.locator('[id=\'{"key":"csv_import_sftp_host_key","type":"settings-feedback"}\']')
    expect(feedback).to_contain_text("not an SSH public key")
    fits(page)

    page.get_by_label("SFTP Private Key", exact=True).fill(key.export_private_key("openssh").decode("ascii"))
    page.get_by_label("SFTP Host Key", exact=True).fill(server.public_host_key)
    page.click("#settings-save")
    expect(page.locator("#settings-status")).to_contain_text("Settings saved.")
    expect(page.get_by_label("SFTP Private Key", exact=True)).to_have_value("")  # never sent back
    fits(page)

    run = execute_task(core, "managed-user-import", "test")
    assert run.outcome == "success", run.message
    with core.db.session() as s:
        assert s.scalars(select(User.external_id).where(User.external_id.is_not(None))).all() == ["S1"]
    assert (server.root / "outgoing" / ".bak" / "users.csv").is_file()

    page.goto(f"{live_server}/admin/user-import")
    fingerprint = ssh_keys.describe(server.host_key)
    expect(page.locator("#user-import-state")).to_contain_text(
        f"SFTP pull: {USERNAME}@127.0.0.1:{server.port}, outgoing, host key {fingerprint}."
    )
    expect(page.locator("#user-import-grid tbody tr").first).to_contain_text("users.csv")
    fits(page)
