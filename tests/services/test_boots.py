"""Boots: the inventory keeps codes encrypted, the Apply Boot dropdown's order, a boot never goes on
two cars (also when two officers race for it), the release email goes out once and only after
payment, the deposit refund is the Apply Boot items' fines and happens once, and unreturned boots
are flagged (with a late fee) once."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from dashboard.services import boot_deposits, boots, email, violations
from dashboard.services.boot_deposits import NothingToRefund
from dashboard.services.boots import BootInUse, ReleaseMail, ReportFilters
from dashboard.services.errors import NotAllowed, ValidationFailed
from dashboard.services.payments import SandboxProvider
from models import (
    AuditLog,
    Boot,
    BootAssignment,
    OutboxMessage,
    Refund,
    Role,
    SandboxCharge,
    Violation,
    ViolationStatus,
)
from tests.enforcement import make_place, pay_violation, write_ticket

TZ = ZoneInfo("America/Toronto")
MAIL = ReleaseMail(to="owner@example.com", name="Alex", site_name="Campus", return_location="Lot A office")


@pytest.fixture
def place(core):
    with core.db.session() as s:
        email.ensure_default_templates(s)
    return make_place(core, ("Red Boot 01", "Red Boot 02", "Red Boot 03"))


@pytest.fixture
def officer(make_user):
    return make_user(Role.OFFICER)


def release(core, violation_id: int) -> list[str]:
    with core.db.session() as s:
        return boots.release_boot_for_paid_violation(
            s, core.secrets, violation_id, MAIL, email.OutboxBackend(), datetime.now(UTC)
        )


def booted_and_paid(core, officer, place, boot_index: int = 0) -> violations.TicketView:
    ticket = write_ticket(core, officer.id, place, boot_id=place.boot_ids[boot_index])
    pay_violation(core, ticket.id, ticket.total_cents)  # 50.00 + 75.00
    release(core, ticket.id)
    return ticket


def test_release_codes_are_encrypted_at_rest_and_masked_in_lists(core, session):
    saved = boots.save_boot(
        session,
        core.secrets,
        None,
        name="Yellow Boot 01",
        release_code="739164",
        is_active=True,
        actor_id=None,
    )
    stored = session.scalar(select(Boot.release_code).where(Boot.id == saved.id))
    assert stored.startswith("enc:v1:") and "739164" not in stored
    assert "739164" not in saved.code_mask
    boots.save_boot(
        session, core.secrets, saved.id, name="Yellow Boot 1", release_code="", is_active=True, actor_id=None
    )
    assert (
        core.secrets.decrypt(session.scalar(select(Boot.release_code).where(Boot.id == saved.id))) == "739164"
    )
    changes = [row.changes for row in session.scalars(select(AuditLog).where(AuditLog.entity_type == "boot"))]
    assert "739164" not in str(changes)
    with pytest.raises(ValidationFailed):
        boots.save_boot(
            session, core.secrets, None, name="yellow boot 1", release_code="1", is_active=True, actor_id=None
        )


def test_the_dropdown_lists_available_boots_first_then_released_then_issued(core, place, officer):
    write_ticket(core, officer.id, place, boot_id=place.boot_ids[2])  # Red Boot 03 in use
    with core.db.session() as s:
        assert [(c.label, c.selectable) for c in boots.boot_choices(s)] == [
            ("Red Boot 01", True),
            ("Red Boot 02", True),
            ("Issued", False),
            ("Red Boot 03", False),
        ]
    booted_and_paid(core, officer, place, 0)  # Red Boot 01 released
    write_ticket(core, officer.id, place, plate="QQQ 111", boot_id=place.boot_ids[1])
    with core.db.session() as s:
        labels = [(c.label, c.selectable) for c in boots.boot_choices(s)]
    # None available: the list starts with a title.
    assert labels == [
        ("Released", False),
        ("Red Boot 01", False),
        ("Issued", False),
        ("Red Boot 02", False),
        ("Red Boot 03", False),
    ]


def test_a_boot_in_use_is_refused_and_nothing_is_written(core, place, officer):
    write_ticket(core, officer.id, place, boot_id=place.boot_ids[0])
    with pytest.raises(BootInUse):
        write_ticket(core, officer.id, place, plate="XYZ 789", boot_id=place.boot_ids[0])
    with core.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Violation)) == 1


def test_two_officers_racing_for_one_boot_get_it_once(core, place, make_user):
    officers = [make_user(Role.OFFICER) for _ in range(4)]
    barrier = threading.Barrier(len(officers))
    outcomes: list[object] = []

    def race(officer_id: int, n: int) -> None:
        barrier.wait()
        try:
            outcomes.append(
                write_ticket(core, officer_id, place, plate=f"RACE {n}", boot_id=place.boot_ids[0])
            )
        except Exception as exc:  # noqa: BLE001 (kept for the assertion)
            outcomes.append(exc)

    threads = [threading.Thread(target=race, args=(o.id, n)) for n, o in enumerate(officers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [o for o in outcomes if isinstance(o, violations.TicketView)]
    assert len(won) == 1, outcomes
    assert all(isinstance(o, BootInUse) for o in outcomes if o not in won), outcomes
    with core.db.session() as s:
        assert s.scalar(select(func.count()).select_from(BootAssignment)) == 1
        assert s.scalar(select(func.count()).select_from(Violation)) == 1


def test_an_apply_boot_item_needs_a_boot_and_a_boot_needs_the_item(core, place, officer):
    with pytest.raises(ValidationFailed) as missing:
        write_ticket(core, officer.id, place, offences=(place.boot,), boot_id=None)
    assert "boot" in str(missing.value.errors) or "offences" in missing.value.errors
    with pytest.raises(ValidationFailed) as stray:
        write_ticket(core, officer.id, place, offences=(place.nvp,), boot_id=place.boot_ids[0])
    assert "Apply Boot" in stray.value.errors["boot"]


def test_the_release_code_is_never_sent_before_payment_and_sent_once_after(core, place, officer):
    ticket = write_ticket(core, officer.id, place, boot_id=place.boot_ids[0])
    with pytest.raises(NotAllowed):
        release(core, ticket.id)
    pay_violation(core, ticket.id, ticket.total_cents)
    assert release(core, ticket.id) == ["Red Boot 01"]
    assert release(core, ticket.id) == []  # the payment confirmation arrived twice
    with core.db.session() as s:
        sent = list(s.scalars(select(OutboxMessage).where(OutboxMessage.template_key == "boot-release")))
        assert len(sent) == 1
        assert "4801" in sent[0].body_text and "Lot A office" in sent[0].body_text
        assert sent[0].to_addresses == ["owner@example.com"]
        assignment = s.scalar(select(BootAssignment))
        assert assignment.status == "released" and assignment.released_at is not None
        assert s.get(Boot, place.boot_ids[0]).status == "released"


def test_concurrent_confirmations_send_one_release_email(core, place, officer):
    ticket = write_ticket(core, officer.id, place, boot_id=place.boot_ids[0])
    pay_violation(core, ticket.id, ticket.total_cents)
    barrier = threading.Barrier(3)
    results: list[object] = []

    def confirm() -> None:
        barrier.wait()
        try:
            results.append(release(core, ticket.id))
        except Exception as exc:  # noqa: BLE001
            results.append(exc)

    threads = [threading.Thread(target=confirm) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(str, results)) == ["['Red Boot 01']", "[]", "[]"], results
    with core.db.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_a_broken_release_template_still_sends_the_code(core, place, officer):
    from models import EmailTemplate

    with core.db.session() as s:
        s.scalar(select(EmailTemplate).where(EmailTemplate.key == "boot-release")).subject = "{{ nope }}"
    ticket = write_ticket(core, officer.id, place, boot_id=place.boot_ids[0])
    pay_violation(core, ticket.id, ticket.total_cents)
    release(core, ticket.id)
    with core.db.session() as s:
        sent = s.scalar(select(OutboxMessage))
        assert "4801" in sent.body_text and sent.subject.startswith("Your boot release code")


def test_the_deposit_refund_is_the_boot_items_fines_and_happens_once(core, place, officer):
    ticket = booted_and_paid(core, officer, place)
    assignment_id = ticket_assignment(core, ticket.id)
    provider = SandboxProvider(core.db)
    with core.db.session() as s:
        boots.mark_returned(s, assignment_id, None, datetime.now(UTC))
        assert (
            boot_deposits.refund_plan(s, assignment_id).amount_cents == 7500
        )  # the BOOT item, not the NVP one
        assert s.get(Boot, place.boot_ids[0]).status == "available"
    outcome = boot_deposits.refund_deposit(core.db, provider, assignment_id, None)
    assert outcome.succeeded and outcome.amount_cents == 7500
    with pytest.raises(NothingToRefund):
        boot_deposits.refund_deposit(core.db, provider, assignment_id, None)
    with core.db.session() as s:
        assert s.scalar(select(SandboxCharge.refunded_cents)) == 7500
        assert s.scalar(select(func.count()).select_from(Refund)) == 1
        row = boots.report_row(s, assignment_id, datetime.now(UTC), 3)
        assert row.refund == "refunded $75.00 CAD" and row.returned_at is not None


def test_concurrent_refunds_of_one_deposit_refund_it_once(core, place, officer):
    ticket = booted_and_paid(core, officer, place)
    assignment_id = ticket_assignment(core, ticket.id)
    with core.db.session() as s:
        boots.mark_returned(s, assignment_id, None, datetime.now(UTC))
    barrier = threading.Barrier(3)
    results: list[object] = []

    def refund() -> None:
        barrier.wait()
        try:
            results.append(
                boot_deposits.refund_deposit(core.db, SandboxProvider(core.db), assignment_id, None)
            )
        except Exception as exc:  # noqa: BLE001
            results.append(exc)

    threads = [threading.Thread(target=refund) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(r, boot_deposits.RefundOutcome) and r.succeeded for r in results) == 1, results
    with core.db.session() as s:
        assert s.scalar(select(SandboxCharge.refunded_cents)) == 7500


def test_a_never_paid_violation_has_nothing_to_refund(core, place, officer):
    ticket = write_ticket(core, officer.id, place, boot_id=place.boot_ids[0])
    assignment_id = ticket_assignment(core, ticket.id)
    with core.db.session() as s:
        boots.mark_returned(s, assignment_id, None, datetime.now(UTC), skip_reason="")
        assert boot_deposits.refund_plan(s, assignment_id).possible is False
    with pytest.raises(NothingToRefund, match="never paid"):
        boot_deposits.refund_deposit(core.db, SandboxProvider(core.db), assignment_id, None)
    with core.db.session() as s, pytest.raises(NotAllowed):
        boots.mark_returned(s, assignment_id, None, datetime.now(UTC))


def ticket_assignment(core, violation_id: int) -> int:
    with core.db.session() as s:
        return s.scalar(select(BootAssignment.id).where(BootAssignment.violation_id == violation_id))


def test_unreturned_boots_are_flagged_once_with_one_late_fee(core, place, officer):
    ticket = booted_and_paid(core, officer, place)
    assignment_id = ticket_assignment(core, ticket.id)
    now = datetime.now(UTC)
    with core.db.session() as s:
        assert boots.flag_non_returned(s, now, days=3, fee_cents=2500, due_days=30).flagged == ()
        s.get(BootAssignment, assignment_id).released_at = now - timedelta(days=4)
    with core.db.session() as s:
        result = boots.flag_non_returned(s, now, days=3, fee_cents=2500, due_days=30)
    assert result.flagged == (f"Red Boot 01 ({ticket.ticket_number})",) and len(result.fees) == 1
    with core.db.session() as s:
        assert boots.flag_non_returned(s, now, days=3, fee_cents=2500, due_days=30).flagged == ()
        fee = s.scalar(select(Violation).where(Violation.ticket_number == result.fees[0]))
        assert (fee.plate, fee.total_cents, fee.status) == (ticket.plate, 2500, ViolationStatus.UNPAID)
        assert fee.items[0].kind == "late_fee"
        row = boots.report_row(s, assignment_id, now, 3)
        assert row.not_returned and row.late_fee_ticket == fee.ticket_number
        assert boots.summary(s, now, 3).not_returned == 1
        flagged = boots.report(s, ReportFilters(status="not_returned"), now, TZ, non_return_days=3)
        assert [r.assignment_id for r in flagged.rows] == [assignment_id]
        assert (
            s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "boot.not_returned"))
            == 1
        )


def test_the_report_shows_every_date_and_exports_what_matches(core, place, officer):
    done = booted_and_paid(core, officer, place)
    write_ticket(core, officer.id, place, plate="OUT 1", boot_id=place.boot_ids[1])
    assignment_id = ticket_assignment(core, done.id)
    with core.db.session() as s:
        boots.mark_returned(s, assignment_id, None, datetime.now(UTC), skip_reason="damaged boot")
    now = datetime.now(UTC)
    with core.db.session() as s:
        everything = boots.report(s, ReportFilters(), now, TZ, non_return_days=3)
        assert everything.total == 2
        returned = boots.report(s, ReportFilters(status="returned"), now, TZ, non_return_days=3).rows
        assert len(returned) == 1 and returned[0].refund == "kept: damaged boot"
        assert returned[0].applied_at and returned[0].released_at and returned[0].returned_at
        text = boots.report_csv(s, ReportFilters(status="in_use"), now, TZ, non_return_days=3)
    assert "OUT 1" in text and done.plate not in text.split("\n", 1)[1]


@pytest.mark.parametrize(
    ("filters", "field", "message"),
    [
        (ReportFilters(ticket="T-7K3-9QX" * 4), "ticket", "at most 32 characters"),
        (ReportFilters(applied_to=date(9999, 12, 31)), "to", "a date from 1900 to 2999"),
        (
            ReportFilters(applied_from=date(2026, 12, 2), applied_to=date(2026, 12, 1)),
            "to",
            "before the start",
        ),
    ],
)
def test_a_report_search_no_boot_could_match_is_refused_with_the_reason(core, filters, field, message):
    now = datetime.now(UTC)
    with core.db.session() as s:
        for run in (
            lambda: boots.report(s, filters, now, TZ, non_return_days=3),
            lambda: boots.report_csv(s, filters, now, TZ, non_return_days=3),
        ):
            with pytest.raises(ValidationFailed) as refused:
                run()
            assert message in refused.value.errors[field]
