"""The Unreturned Boots system task, run through ``execute_task``: not configured while boots are
off; then it flags a boot released longer ago than the setting's days, charges the late fee once,
and a second run changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from dashboard.services import boots, email, payment_providers
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


def test_the_reconcile_task_settles_a_charged_violation_payment_and_sends_the_code_once(
    core, make_user, monkeypatch
):
    """A guest's card was charged but the answer never came back (the payment is pending): the
    Waitlist Offers task, which reconciles pending payments, settles it with the processor, with
    the secrets that decrypt the release code and the Boot Return Location; a second run sends
    nothing again."""
    from dashboard.services import payments, violation_payments
    from dashboard.services.payment_providers import ProviderUnavailable
    from dashboard.services.payments import SandboxProvider
    from models import OutboxMessage

    class LostAnswers(SandboxProvider):
        def charge(self, **kwargs):
            super().charge(**kwargs)
            raise ProviderUnavailable("the answer was lost")

        def find_charge(self, *, idempotency_key):
            raise ProviderUnavailable("the processor cannot be asked")

    monkeypatch.setattr(payments, "RETRY_DELAYS", (0.0,))
    enable_boots(core, boot_return_location="Lot A office")
    place = make_place(core)
    ticket = write_ticket(core, make_user(Role.OFFICER).id, place, boot_id=place.boot_ids[0])
    with core.db.session() as s:
        email.ensure_default_templates(s)
    now = datetime.now(UTC)
    told = violation_payments.pay(
        core.db,
        LostAnswers(core.db),
        violation_payments.Scope(ticket=ticket.ticket_number, plate="ABC 123"),
        [ticket.id],
        "guest@example.com",
        payment_providers.clean_card("4242424242424242", "12/39", "123", now.date()),
        "lost-form",
        receipt=payments.ReceiptContext("there", "Campus", "http://x", core.settings.tz, core.secrets),
        backend=email.OutboxBackend(),
        now=now,
        require_overdue=False,
    )
    assert told.status == "in_progress"
    for _ in range(2):
        assert execute_task(core, "waitlist-offers", "test").outcome == "success"
    with core.db.session() as s:
        assert s.get(Violation, ticket.id).status == "paid"
        [release] = s.scalars(select(OutboxMessage).where(OutboxMessage.template_key == "boot-release"))
        assert release.to_addresses == ["guest@example.com"] and "Lot A office" in release.body_text
        assert "4801" in release.body_text
