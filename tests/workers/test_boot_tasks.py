"""The Unreturned Boots system task, run through ``execute_task``: not configured while boots are
off; then it flags a boot released longer ago than the setting's days, charges the late fee once,
and a second run changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from dashboard.services import boots, email
from dashboard.services.boots import ReleaseMail
from models import BootAssignment, Role, Violation
from tests.enforcement import enable_boots, make_place, pay_violation, write_ticket
from workers.jobs import execute_task


def test_unreturned_boots_are_flagged_and_charged_once(core, make_user):
    assert execute_task(core, "boot-non-return", "test").outcome == "not_configured"
    enable_boots(core, boot_non_return_days=3, boot_late_fee_dollars=40)
    place = make_place(core)
    ticket = write_ticket(core, make_user(Role.OFFICER).id, place, boot_id=place.boot_ids[0])
    pay_violation(core, ticket.id, ticket.total_cents)
    with core.db.session() as s:
        email.ensure_default_templates(s)
        boots.release_boot_for_paid_violation(
            s, core.secrets, ticket.id, ReleaseMail("o@example.com", "O", "Campus", ""),
            email.OutboxBackend(), datetime.now(UTC) - timedelta(days=4),
        )  # fmt: skip
    run = execute_task(core, "boot-non-return", "test")
    assert run.outcome == "success" and run.rows_touched == 2
    assert "1 boots newly flagged" in run.message and "1 late fees charged" in run.message
    with core.db.session() as s:
        assert s.scalar(select(BootAssignment.not_returned_at)) is not None
        fee = s.scalar(select(Violation).where(Violation.id != ticket.id))
        assert fee.total_cents == 4000 and fee.plate == ticket.plate
    again = execute_task(core, "boot-non-return", "test")
    assert again.outcome == "success" and again.rows_touched == 0
    with core.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Violation)) == 2
