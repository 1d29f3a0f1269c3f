"""An admin checks mail delivery the way they would after setting it up: on System Settings >
Email they send a test message and read the SMTP server's reply, then find it in the Email Outbox
with its attempt; a user's message queued meanwhile is delivered by the in-process worker."""

import dataclasses
import threading

import pytest
from playwright.sync_api import Page, expect

from dashboard.services import email, system_settings
from dashboard.services.email import EmailMessage
from models import Role
from tests.browser.signing import sign_in
from tests.workers.mail_servers import PASSWORD as SMTP_PASSWORD
from tests.workers.mail_servers import USER, SmtpServer, free_port, self_signed
from workers import email_delivery
from workers.worker import start_inprocess_worker

pytestmark = pytest.mark.browser


@pytest.fixture
def smtp(tmp_path, core, monkeypatch):
    cert, key = self_signed(tmp_path)
    monkeypatch.setattr(core, "settings", dataclasses.replace(core.settings, smtp_ca_file=str(cert)))
    server = SmtpServer(cert, key, free_port())
    server.start()
    with core.db.session() as s:
        system_settings.update(
            s,
            core.secrets,
            {
                "mail_backend": "smtp",
                "mail_from_address": "parking@campus.test",
                "smtp_host": "localhost",
                "smtp_port": server.port,
                "smtp_username": USER,
                "smtp_password": SMTP_PASSWORD,
            },
            None,
        )
    yield server
    server.stop()


@pytest.fixture
def running_worker(core):
    stop = threading.Event()
    thread = start_inprocess_worker(core, stop)
    yield
    stop.set()
    thread.join(timeout=10)


def test_admin_sends_a_test_email_and_finds_it_in_the_outbox(
    page: Page, live_server, make_user, core, smtp, running_worker
):
    admin = make_user(Role.ADMIN)
    sign_in(page, live_server, admin.email, "/admin/settings")
    page.get_by_role("tab", name="Email").click()
    page.fill("#settings-test-to", "me@campus.test")
    page.get_by_role("button", name="Send test email").click()
    expect(page.locator("#settings-test-answer")).to_contain_text("250 2.0.0 Ok: queued as TEST123")

    with core.db.session() as s:  # a user's receipt, sent while the admin looks
        email.send_email(
            s,
            EmailMessage(to=["alex@campus.test"], subject="Your permit receipt", text="Hello"),
            email_delivery.configured_backend(core, s),
        )

    page.goto(f"{live_server}/admin/outbox")
    row = page.locator("#outbox-table tr", has_text="Your permit receipt")
    expect(row).to_contain_text("sent", timeout=20_000)  # the worker delivered it; the table refreshes
    page.locator("#outbox-table tr", has_text="ParkOps: test message").get_by_role("button").click()
    expect(page.locator("#outbox-attempts")).to_contain_text("250 2.0.0 Ok: queued as TEST123")
    assert sorted(r.rcpt_tos[0] for r in smtp.handler.received) == ["alex@campus.test", "me@campus.test"]
