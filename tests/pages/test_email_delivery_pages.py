"""The admin screens of email delivery, over HTTP as the browser calls them: resend and bounces on the
Email Outbox, the Send test email button (against a real SMTP server), the Email Domain records
(from the settings, and from a local server speaking Mailgun's domain API), and template resets."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import select

from dashboard.services import email, outbox, system_settings
from dashboard.services.email import EmailMessage
from models import AuditLog, EmailTemplate, OutboxMessage, OutboxStatus, Role, User, utcnow
from tests.dash_helpers import dash_post, find_output, outputs_of, press
from tests.workers.mail_servers import PASSWORD, USER, SmtpServer, free_port, self_signed


def configure(core, **values) -> None:
    with core.db.session() as s:
        system_settings.update(s, core.secrets, values, None)


@pytest.fixture
def stored(core):
    with core.db.session() as s:
        return email.send_email(
            s,
            EmailMessage(to=["alex@campus.test"], subject="Receipt", text="T", template_key="permit-receipt"),
            email.OutboxBackend(),
        )


def resend(client, app, message_id):
    return outputs_of(
        press(client, app, "outbox-resend-result.children", "outbox-resend", {"outbox-current": message_id})
    )


def test_an_admin_resends_a_message_as_a_new_one(app, core, login_as, stored):
    client = login_as(Role.ADMIN)
    answer = json.dumps(resend(client, app, stored))
    with core.db.session() as s:
        copy = s.scalars(select(OutboxMessage).where(OutboxMessage.resent_from_id == stored)).one()
        assert (copy.to_addresses, copy.subject, copy.status) == (
            ["alex@campus.test"],
            "Receipt",
            OutboxStatus.STORED,
        )
        assert s.scalar(select(AuditLog.action).where(AuditLog.entity_id == str(stored))) == "email.resend"
    assert f"message {copy.id}" in answer and "Outbox only" in answer


def test_a_message_on_its_way_cannot_be_resent(app, core, login_as):
    with core.db.session() as s:
        queued = email.send_email(
            s,
            EmailMessage(to=["a@campus.test"], subject="S", text="T"),
            email.QueuedBackend("smtp", lambda _i: None),
        )
    answer = json.dumps(resend(login_as(Role.ADMIN), app, queued))
    assert "still on its way" in answer


def test_non_admins_cannot_resend(app, core, login_as, stored):
    for role in (Role.GUEST, Role.USER, Role.OFFICER):
        response = press(
            login_as(role), app, "outbox-resend-result.children", "outbox-resend", {"outbox-current": stored}
        )
        assert response.status_code in (401, 403)
    with core.db.session() as s:
        assert s.scalar(select(OutboxMessage).where(OutboxMessage.resent_from_id == stored)) is None


def test_hard_bounced_addresses_are_shown_to_admins_and_can_be_cleared(
    app, core, login_as, make_user, stored
):
    user = make_user(email="alex@campus.test")
    with core.db.session() as s:
        outbox.flag_bounced(s, "Alex@Campus.test", "550 5.1.1 mailbox does not exist", utcnow())
    client = login_as(Role.ADMIN)
    listed = json.dumps(
        outputs_of(dash_post(client, app, find_output(app, "outbox-bounced.children"), [1, None]))
    )
    assert "alex@campus.test" in listed and "550 5.1.1 mailbox does not exist" in listed
    table = json.dumps(
        outputs_of(dash_post(client, app, find_output(app, "outbox-table.children"), ["", "", 0]))
    )
    assert '"children": "bounced"' in table

    button = {"type": "outbox-clear-bounce", "index": user.id}
    cleared = press(
        client, app, "outbox-bounce-result.children", button, rows={"outbox-clear-bounce": [button]}
    )
    assert "The bounce flag is cleared" in json.dumps(outputs_of(cleared))
    with core.db.session() as s:
        assert s.get(User, user.id).email_bounced_at is None


def test_the_detail_shows_each_attempt_and_the_provider_id(app, core, login_as):
    with core.db.session() as s:
        message_id = email.send_email(
            s,
            EmailMessage(to=["a@campus.test"], subject="S", text="T"),
            email.QueuedBackend("smtp", lambda _i: None),
        )
    with core.db.session() as s:
        outbox.claim(s, message_id, utcnow())
        outbox.record_attempt(
            s, message_id, utcnow(), error="SMTP server localhost:25: ConnectionRefusedError"
        )
    button = {"type": "outbox-open", "index": message_id}
    shown = press(login_as(Role.ADMIN), app, "outbox-detail.children", button, rows={"outbox-open": [button]})
    text = json.dumps(outputs_of(shown))
    assert "ConnectionRefusedError" in text and "Next attempt" in text and "outbox-attempts" in text


# --- Send test email ---------------------------------------------------------------------------


@pytest.fixture
def smtp(tmp_path, core, monkeypatch):
    cert, key = self_signed(tmp_path)
    monkeypatch.setattr(core, "settings", dataclasses.replace(core.settings, smtp_ca_file=str(cert)))
    server = SmtpServer(cert, key, free_port())
    server.start()
    yield server
    server.stop()


def test_send_test_email_shows_the_server_s_reply(app, core, login_as, smtp):
    configure(
        core,
        mail_backend="smtp",
        mail_from_address="parking@campus.test",
        smtp_host="localhost",
        smtp_port=smtp.port,
        smtp_username=USER,
        smtp_password=PASSWORD,
    )
    client = login_as(Role.ADMIN)
    answer = json.dumps(
        outputs_of(
            press(
                client,
                app,
                "settings-test-result.children",
                "settings-test-send",
                {"settings-test-to": "me@campus.test"},
            )
        )
    )
    assert "Sent. The server answered: " in answer and "250 2.0.0 Ok: queued as TEST123" in answer
    assert smtp.handler.received[0].rcpt_tos == ["me@campus.test"]

    refused = json.dumps(
        outputs_of(
            press(
                client,
                app,
                "settings-test-result.children",
                "settings-test-send",
                {"settings-test-to": "a@b, c@d"},
            )
        )
    )
    assert "Enter one e-mail address" in refused and len(smtp.handler.received) == 1


def test_send_test_email_says_when_nothing_is_sent(app, core, login_as):
    answer = json.dumps(
        outputs_of(
            press(
                login_as(Role.ADMIN),
                app,
                "settings-test-result.children",
                "settings-test-send",
                {"settings-test-to": "me@campus.test"},
            )
        )
    )
    assert "Outbox only" in answer


# --- Email Domain ------------------------------------------------------------------------------


def domain_page(client, app) -> str:
    return json.dumps(outputs_of(dash_post(client, app, "email-domain-records.children", [0])))


def test_email_domain_asks_for_the_domain_first(app, login_as):
    assert "Set the Mailgun Domain" in domain_page(login_as(Role.ADMIN), app)


def test_email_domain_records_from_the_settings(app, core, login_as):
    configure(
        core,
        mailgun_domain="opscom.campus.test",
        mailgun_dkim_value="k=rsa; p=MIGfMA0GCSqGSIb3DQEB",
        mailgun_receiving=True,
        mailgun_base_url="https://api.eu.mailgun.net",
    )
    page = domain_page(login_as(Role.ADMIN), app)
    assert "v=spf1 include:mailgun.org ~all" in page
    assert "smtp._domainkey.opscom.campus.test" in page and "k=rsa; p=MIGfMA0GCSqGSIb3DQEB" in page
    assert "email.opscom.campus.test" in page and "mxa.eu.mailgun.org" in page
    assert page.count('"content": "v=spf1 include:mailgun.org ~all"') == 1  # its copy button


def test_email_domain_records_from_mailgun_s_domain_api(app, core, login_as, httpserver):
    httpserver.expect_request("/v3/domains/opscom.campus.test", method="GET").respond_with_json(
        {
            "domain": {"name": "opscom.campus.test", "state": "unverified"},
            "sending_dns_records": [
                {
                    "record_type": "TXT",
                    "name": "opscom.campus.test",
                    "value": "v=spf1 include:mailgun.org ~all",
                    "valid": "valid",
                },
                {
                    "record_type": "TXT",
                    "name": "k1._domainkey.opscom.campus.test",
                    "value": "k=rsa; p=FROMAPI",
                    "valid": "unverified",
                },
                {
                    "record_type": "CNAME",
                    "name": "email.opscom.campus.test",
                    "value": "mailgun.org",
                    "valid": "valid",
                },
            ],
            "receiving_dns_records": [
                {"record_type": "MX", "priority": "10", "value": "mxa.mailgun.org", "valid": "valid"}
            ],
        }
    )
    configure(
        core,
        mailgun_domain="opscom.campus.test",
        mailgun_api_key="key-private",
        mailgun_base_url=httpserver.url_for("/").rstrip("/"),
    )
    page = domain_page(login_as(Role.ADMIN), app)
    assert "k1._domainkey.opscom.campus.test" in page and "k=rsa; p=FROMAPI" in page
    assert "unverified" in page and "Mailgun's domain API" in page
    assert "mxa.mailgun.org" not in page  # receiving through Mailgun is off


def test_non_admins_get_no_domain_records(app, core, login_as):
    configure(core, mailgun_domain="opscom.campus.test")
    for role in (Role.GUEST, Role.USER, Role.OFFICER):
        response = dash_post(login_as(role), app, "email-domain-records.children", [0])
        assert response.status_code in (401, 403) and b"opscom" not in response.data


# --- templates ---------------------------------------------------------------------------------


def test_every_shipped_template_documents_its_variables():
    for template in email.DEFAULT_TEMPLATES:
        undocumented = [v.name for v in email.documented_variables(template.key) if not v.meaning]
        assert undocumented == [], template.key


def test_reset_puts_back_the_shipped_wording(app, core, login_as):
    with core.db.session() as s:
        email.ensure_default_templates(s)
        email.update_template(s, "boot-release", "Code {{ release_code }}", "Edited", "", None)
    client = login_as(Role.ADMIN)
    out = outputs_of(
        press(client, app, "templates-html.value@", "templates-reset", {"templates-select": "boot-release"})
    )
    shipped = next(t for t in email.DEFAULT_TEMPLATES if t.key == "boot-release")
    assert out["templates-subject"]["value"] == shipped.subject
    with core.db.session() as s:
        row = s.scalar(select(EmailTemplate).where(EmailTemplate.key == "boot-release"))
        assert (row.subject, row.body_text) == (shipped.subject, shipped.body_text)
        assert s.scalar(select(AuditLog.action).where(AuditLog.action == "email_template.reset"))
