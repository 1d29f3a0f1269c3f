"""The PeopleSoft Holds Report task end to end (``execute_task``, as the worker runs it): off, it
says so in one line; without a recipient it says what is missing; on, it e-mails both files as
attachments to the Holds Notification Email, keeps them, and a second run sends nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from dashboard.services import email, system_settings
from models import OutboxAttachment, OutboxMessage, Role, TaskOutcome
from tests.enforcement import make_place, write_ticket
from tests.services.test_peoplesoft import HEADER, add_owner, local
from workers.jobs import execute_task

TASK = "peoplesoft-holds"


def settings(core, **values: object) -> None:
    with core.db.session() as s:
        system_settings.update(s, core.secrets, values, actor_id=None)


def test_off_it_says_so_and_does_nothing(core):
    run = execute_task(core, TASK, "test")
    assert run.outcome == TaskOutcome.NOT_CONFIGURED.value
    assert run.message == (
        "PeopleSoft holds are turned off in System Settings "
        "(Third Party > PeopleSoft Holds > Enable PeopleSoft Holds)"
    )
    settings(core, peoplesoft_enabled=True)
    missing = execute_task(core, TASK, "test")
    assert missing.outcome == "not_configured"
    assert "PeopleSoft Holds Notification Email not set" in missing.message


def test_on_it_emails_both_files_once(core, make_user):
    with core.db.session() as s:
        email.ensure_default_templates(s)
    place = make_place(core)
    officer = make_user(Role.OFFICER).id
    add_owner(core, "ana@campus.test", "AAA 111", "none", "S100", "Ana Avery")
    add_owner(core, "cy@campus.test", "CCC 333", "none", None, "Cy Cole")
    write_ticket(core, officer, place, plate="AAA 111", now=local(2026, 3, 2, 20, 0))
    write_ticket(core, officer, place, plate="CCC 333", offences=(place.fl,), now=local(2026, 3, 2, 21, 0))
    settings(
        core,
        peoplesoft_enabled=True,
        peoplesoft_holds_email="holds@campus.test",
        peoplesoft_file_pattern="ps_{type}.txt",
        system_reply_to_email="parking@campus.test",
    )

    run = execute_task(core, TASK, "test")
    assert run.outcome == "success", run.message
    assert run.rows_touched == 1
    assert run.message.startswith(
        "1 holds added; 0 released; e-mailed to holds@campus.test "
        "(ps_added.txt, ps_released.txt; outbox message"
    )
    assert run.message.endswith(
        "1 owing users skipped (no Student/Staff ID): Cy Cole <cy@campus.test> owes 100.00"
    )
    with core.db.session() as s:
        message = s.scalars(select(OutboxMessage)).one()
        assert message.to_addresses == ["holds@campus.test"]
        assert message.reply_to == "parking@campus.test"
        assert message.template_key == "peoplesoft-holds-report"
        files = {a.filename: bytes(a.content) for a in s.scalars(select(OutboxAttachment))}
    assert files == {
        "ps_added.txt": HEADER + b"S100\t50.00\t\tNo valid permit\t2026-03-02\r\n",
        "ps_released.txt": HEADER,
    }

    again = execute_task(core, TASK, "test")
    assert again.outcome == "success" and again.rows_touched == 0
    assert "nothing changed since the last report, so nothing was e-mailed" in again.message
    with core.db.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1
