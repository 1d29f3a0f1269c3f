"""The email service: the outbox keeps every message whatever the backend does, and admin-edited
templates render in a sandbox that refuses Python internals, escapes HTML and names missing values."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dashboard.services import email
from dashboard.services.errors import NotFound, ValidationFailed
from models import AuditLog, EmailTemplate, OutboxMessage, OutboxStatus, Role


class FailingBackend:
    name = "failing"

    def deliver(self, message: email.EmailMessage) -> None:
        raise email.DeliveryError("550 mailbox unavailable")


class CrashingBackend:
    name = "crashing"

    def deliver(self, message: email.EmailMessage) -> None:
        raise RuntimeError("bug in backend")


class RecordingBackend:
    name = "recording"

    def __init__(self) -> None:
        self.delivered: list[email.EmailMessage] = []

    def deliver(self, message: email.EmailMessage) -> None:
        self.delivered.append(message)


def _message(**overrides: object) -> email.EmailMessage:
    fields: dict[str, object] = {
        "to": ["driver@campus.test"],
        "subject": "Holds report",
        "text": "See attached.",
        "html": "<p>See attached.</p>",
        "reply_to": "parking@campus.test",
        "attachments": [
            email.Attachment("holds_added.txt", "text/plain", b"123\t50.00\n"),
            email.Attachment("holds_released.txt", "text/plain", b""),
        ],
        "template_key": "peoplesoft-holds-report",
    }
    fields.update(overrides)
    return email.EmailMessage(**fields)  # type: ignore[arg-type]


def test_outbox_backend_stores_message_with_attachments(session):
    message_id = email.send_email(session, _message(), email.backend_for("outbox"))
    session.commit()

    detail = email.get_outbox_message(session, message_id)
    assert detail is not None
    assert detail.status is OutboxStatus.STORED
    assert detail.backend == "outbox"
    assert detail.to == ["driver@campus.test"]
    assert detail.reply_to == "parking@campus.test"
    assert detail.body_html == "<p>See attached.</p>"
    assert detail.template_key == "peoplesoft-holds-report"
    assert detail.sent_at is not None and detail.error is None
    assert [(a.filename, a.content_type, a.size) for a in detail.attachments] == [
        ("holds_added.txt", "text/plain", 10),
        ("holds_released.txt", "text/plain", 0),
    ]
    stored = session.get(OutboxMessage, message_id)
    assert stored is not None and stored.attachments[0].content == b"123\t50.00\n"


def test_delivering_backend_marks_message_sent(session):
    backend = RecordingBackend()
    message_id = email.send_email(session, _message(), backend)
    assert len(backend.delivered) == 1
    detail = email.get_outbox_message(session, message_id)
    assert detail is not None and detail.status is OutboxStatus.SENT and detail.backend == "recording"


def test_failed_delivery_keeps_the_message_with_the_error(session, caplog):
    message_id = email.send_email(session, _message(), FailingBackend())
    session.commit()

    detail = email.get_outbox_message(session, message_id)
    assert detail is not None
    assert detail.status is OutboxStatus.FAILED
    assert detail.error == "550 mailbox unavailable"
    assert detail.sent_at is None
    assert len(detail.attachments) == 2
    assert "550 mailbox unavailable" in caplog.text


def test_a_crashing_backend_does_not_lose_the_message_either(session):
    message_id = email.send_email(session, _message(), CrashingBackend())
    detail = email.get_outbox_message(session, message_id)
    assert detail is not None
    assert detail.status is OutboxStatus.FAILED
    assert detail.error == "RuntimeError: bug in backend"


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"to": []}, "to", "at least one recipient"),
        ({"to": ["not-an-address"]}, "to", "'not-an-address'"),
        ({"to": ["a@campus.test, b@evil.test"]}, "to", "not a valid e-mail address"),
        ({"to": ["Bob <bob@campus.test>"]}, "to", "not a valid e-mail address"),
        ({"reply_to": "nobody"}, "reply_to", "'nobody'"),
        ({"subject": "Hi\r\nBcc: victim@campus.test"}, "subject", "single line"),
    ],
)
def test_bad_messages_are_refused_with_a_clear_error_and_not_stored(session, overrides, field, fragment):
    with pytest.raises(ValidationFailed) as caught:
        email.send_email(session, _message(**overrides), email.OutboxBackend())
    assert fragment in caught.value.errors[field]
    assert session.scalar(select(OutboxMessage.id)) is None


def test_unknown_backend_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown email backend 'carrier-pigeon'"):
        email.backend_for("carrier-pigeon")


def test_list_outbox_filters_by_search_and_status(session):
    stored = email.send_email(session, _message(subject="Permit 100% confirmed"), email.OutboxBackend())
    failed = email.send_email(session, _message(to=["other@campus.test"]), FailingBackend())

    assert [r.id for r in email.list_outbox(session)] == [failed, stored]
    assert [r.id for r in email.list_outbox(session, status="failed")] == [failed]
    assert [r.id for r in email.list_outbox(session, search="OTHER@campus")] == [failed]
    assert [r.id for r in email.list_outbox(session, search="100%")] == [stored]
    assert email.list_outbox(session, search="_") == []
    assert [r.id for r in email.list_outbox(session, limit=1)] == [failed]
    with pytest.raises(ValidationFailed):
        email.list_outbox(session, status="delivered-to-mars")
    assert email.get_outbox_message(session, 999_999) is None


def test_default_templates_are_inserted_once_and_admin_edits_survive(session, make_user):
    admin = make_user(Role.ADMIN)
    added = email.ensure_default_templates(session)
    assert {
        "boot-release",
        "permit-receipt",
        "payment-receipt",
        "csv-import-failures",
        "peoplesoft-holds-report",
    } <= set(added)
    names = {t.key: t.name for t in email.list_templates(session)}
    assert names["boot-release"] == "Boot Release Email"
    assert names["peoplesoft-holds-report"] == "PeopleSoft Holds Report"

    email.update_template(
        session, "boot-release", "Code for {{ plate }}", "Code: {{ release_code }}", "", actor_id=admin.id
    )
    assert email.ensure_default_templates(session) == []
    assert session.scalar(select(func.count(EmailTemplate.id))) == len(email.DEFAULT_TEMPLATES)
    row = session.scalar(select(EmailTemplate).where(EmailTemplate.key == "boot-release"))
    assert row is not None and row.subject == "Code for {{ plate }}" and row.body_html == ""
    audit = session.scalar(select(AuditLog).where(AuditLog.entity_id == "boot-release"))
    assert audit is not None and audit.actor_id == admin.id
    assert audit.changes == {"fields": ["subject", "body_text", "body_html"]}


def test_every_default_template_renders_with_its_sample(session):
    email.ensure_default_templates(session)
    for default in email.DEFAULT_TEMPLATES:
        subject, text, html = email.render_template(session, default.key, default.sample)
        assert subject and "\n" not in subject
        assert text.strip() and html


def test_boot_release_email_carries_the_code_and_return_instructions(session):
    email.ensure_default_templates(session)
    context = {**email.sample_context("boot-release"), "release_code": "9917"}
    subject, text, html = email.render_template(session, "boot-release", context)
    assert "ABCD 123" in subject
    assert "9917" in text and "9917" in html
    assert "Return the boot" in text and context["return_location"] in text


def test_compose_tags_the_message_with_its_template(session):
    email.ensure_default_templates(session)
    message = email.compose(
        session, "permit-receipt", email.sample_context("permit-receipt"), ["driver@campus.test"]
    )
    assert message.template_key == "permit-receipt"
    assert "$185.00 CAD" in message.text  # the site's currency
    usd = {**email.sample_context("permit-receipt"), "currency": "USD"}  # the permit's own
    assert "$185.00 USD" in email.compose(session, "permit-receipt", usd, ["d@campus.test"]).text
    message_id = email.send_email(session, message, email.OutboxBackend())
    assert email.list_outbox(session)[0].template_key == "permit-receipt"
    assert email.get_outbox_message(session, message_id) is not None


def test_html_autoescapes_values_but_text_does_not(session):
    email.ensure_default_templates(session)
    context = {**email.sample_context("boot-release"), "name": "<script>alert(1)</script>"}
    _subject, text, html = email.render_template(session, "boot-release", context)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Hello <script>alert(1)</script>," in text


def test_subject_is_forced_onto_one_line(session):
    email.ensure_default_templates(session)
    context = {**email.sample_context("boot-release"), "plate": "AB\r\nBcc: victim@evil.test"}
    subject, _text, _html = email.render_template(session, "boot-release", context)
    assert "\n" not in subject and "\r" not in subject


def test_missing_variable_names_the_variable(session):
    email.ensure_default_templates(session)
    context = email.sample_context("boot-release")
    del context["release_code"]
    with pytest.raises(
        email.TemplateError, match="body_text: undefined variable: 'release_code' is undefined"
    ):
        email.render_template(session, "boot-release", context)


def test_unknown_template_is_not_found(session):
    with pytest.raises(NotFound):
        email.render_template(session, "no-such-template", {})


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ plate.__class__.__base__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ plate.format.__globals__ }}",
    ],
)
def test_sandbox_refuses_python_internals_at_update_time(session, source):
    email.ensure_default_templates(session)
    with pytest.raises(ValidationFailed) as caught:
        email.update_template(session, "boot-release", "Release", source, "", actor_id=None)
    assert "body_text" in caught.value.errors
    row = session.scalar(select(EmailTemplate).where(EmailTemplate.key == "boot-release"))
    assert row is not None and row.body_text == email.DEFAULT_TEMPLATES[0].body_text


def test_sandbox_raises_a_security_error_at_render_time(session):
    session.add(EmailTemplate(key="evil", name="Evil", subject="x", body_text="{{ ''.__class__.__mro__ }}"))
    session.flush()
    with pytest.raises(
        email.TemplateError, match="not allowed in a template: access to attribute '__class__'"
    ):
        email.render_template(session, "evil", {})


def test_sandbox_refuses_mutating_the_context(session):
    email.ensure_default_templates(session)
    with pytest.raises(ValidationFailed, match="not allowed"):
        email.update_template(
            session, "permit-receipt", "Receipt", "{{ plates.append('X') }}", "", actor_id=None
        )


def test_update_refuses_syntax_errors_unknown_variables_and_blank_parts(session):
    email.ensure_default_templates(session)
    with pytest.raises(ValidationFailed) as caught:
        email.update_template(
            session, "boot-release", "", "Code {{ release_code ", "<p>{{ realease_code }}</p>", actor_id=None
        )
    errors = caught.value.errors
    assert errors["subject"] == "a subject is required"
    assert "syntax error on line 1" in errors["body_text"]
    assert "'realease_code' is undefined" in errors["body_html"]


def test_update_of_unknown_template_is_not_found(session):
    with pytest.raises(NotFound):
        email.update_template(session, "nope", "s", "t", "", actor_id=None)


def test_preview_renders_a_draft_with_sample_values():
    rendered = email.preview_template(
        "boot-release", "Code {{ release_code }}", "Plate {{ plate }}", "<b>{{ name }}</b>"
    )
    assert rendered == ("Code 4821", "Plate ABCD 123", "<b>Alex Morgan</b>")
    assert email.preview_template("boot-release", "s", "t", "  ").html is None
