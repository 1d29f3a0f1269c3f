"""Paying violations: the account's and a guest's list, Require Overdue Paid both ways, the e-mail,
the early-payment discount (never on Apply Boot items), what cannot be paid, and the boot release:
its code mailed exactly once however often the payment is confirmed, settled or raced."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from dashboard.services import appeals, email, payment_providers, payments, violation_payments, violations
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.payment_providers import ProviderUnavailable
from dashboard.services.payments import DECLINED_CARD, SUCCESS_CARD, ReceiptContext, SandboxProvider
from dashboard.services.violation_payments import Scope
from models import (
    Boot,
    BootAssignment,
    OutboxMessage,
    Payment,
    PaymentStatus,
    Role,
    SandboxCharge,
    Vehicle,
    Violation,
)
from tests.enforcement import make_place, write_ticket
from tests.faults import DropConnection

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
TODAY = date(2026, 11, 30)
OVERDUE_AT = NOW - timedelta(days=40)  # written then, due 30 days later: overdue now


@pytest.fixture
def receipt(core) -> ReceiptContext:
    return ReceiptContext(
        name="Sam",
        site_name="Campus",
        base_url="https://parking.test",
        tz=ZoneInfo("America/Toronto"),
        secrets=core.secrets,
        return_location="Lot A office",
    )


@pytest.fixture
def place(core):
    with core.db.session() as s:
        email.ensure_default_templates(s)
    return make_place(core)


@pytest.fixture
def officer(make_user):
    return make_user(Role.OFFICER)


@pytest.fixture
def owner(core, make_user):
    user = make_user(Role.USER)
    with core.db.session() as s:
        s.add(Vehicle(user_id=user.id, plate="ABC 123", plate_normalized="ABC123"))
    return user


def pay(
    core,
    receipt,
    scope: Scope,
    ids,
    *,
    key: str = "form-1",
    address: object = "owner@example.com",
    card: str = SUCCESS_CARD,
    require_overdue: bool = False,
    total: int | None = None,
    provider=None,
    now: datetime = NOW,
):
    return violation_payments.pay(
        core.db,
        provider or SandboxProvider(core.db),
        scope,
        ids,
        address,
        payment_providers.clean_card(card, "12/29", "123", TODAY),
        key,
        receipt=receipt,
        backend=email.OutboxBackend(),
        now=now,
        require_overdue=require_overdue,
        expected_total_cents=total,
    )


def mails(core, key: str) -> list[OutboxMessage]:
    with core.db.session() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.template_key == key)))


def charges(core) -> int:
    with core.db.session() as s:
        return s.scalar(
            select(func.count(SandboxCharge.id)).where(SandboxCharge.status == PaymentStatus.SUCCEEDED)
        )


def status(core, violation_id: int) -> str:
    with core.db.session() as s:
        return str(s.get(Violation, violation_id).status)


def test_paying_a_booted_violation_marks_it_paid_and_mails_the_code_and_receipt(
    core, place, officer, owner, receipt
):
    ticket = write_ticket(core, officer.id, place, boot_id=place.boot_ids[0], now=NOW)
    with core.db.session() as s:
        [row] = violation_payments.account_violations(s, owner.id, NOW)
    assert row.booted and row.payable and row.amount_due_cents == 4000 + 7500  # NVP 20 % off, boot in full
    result = pay(core, receipt, Scope(user_id=owner.id), [ticket.id], total=11500)
    assert result.paid, result
    assert result.payment.tickets == (ticket.ticket_number,)
    with core.db.session() as s:
        payment = s.scalar(select(Payment))
        assert payment.amount_cents == 11500 and payment.user_id == owner.id
        assert s.get(Violation, ticket.id).status == "paid"
        assignment = s.scalar(select(BootAssignment))
        assert (
            assignment.status == "released"
            and assignment.released_at == NOW.replace(tzinfo=None)
            or (assignment.released_at is not None)
        )
        assert s.get(Boot, place.boot_ids[0]).status == "released"
        view = payments.get_receipt(s, payment.receipt_token)
        assert view.tickets == ((ticket.ticket_number, 11500),)
    [release] = mails(core, "boot-release")
    assert release.to_addresses == ["owner@example.com"]
    assert "4801" in release.body_text and "Lot A office" in release.body_text
    [paid] = mails(core, "payment-receipt")
    assert ticket.ticket_number in paid.body_text and "$115.00" in paid.body_text
    with core.db.session() as s:
        [after] = violation_payments.account_violations(s, owner.id, NOW)
    assert not after.payable and after.reason == "already paid" and not after.booted


def test_a_declined_card_pays_nothing_and_sends_no_code(core, place, officer, owner, receipt):
    ticket = write_ticket(core, officer.id, place, boot_id=place.boot_ids[0], now=NOW)
    result = pay(core, receipt, Scope(user_id=owner.id), [ticket.id], card=DECLINED_CARD)
    assert result.status == "declined"
    assert status(core, ticket.id) == "unpaid" and mails(core, "boot-release") == []
    assert pay(core, receipt, Scope(user_id=owner.id), [ticket.id], key="form-2").paid  # a new attempt


@pytest.mark.parametrize("address", ["", None, "   ", "not-an-address", "a@b"])
def test_an_email_address_is_required(core, place, officer, owner, receipt, address):
    ticket = write_ticket(core, officer.id, place, now=NOW)
    with pytest.raises(ValidationFailed) as refused:
        pay(core, receipt, Scope(user_id=owner.id), [ticket.id], address=address)
    assert "email" in refused.value.errors
    with core.db.session() as s:
        assert s.scalar(select(func.count(Payment.id))) == 0
    assert charges(core) == 0


def test_the_discount_applies_before_its_deadline_only_and_never_on_boot_items(core, place, officer):
    ticket = write_ticket(core, officer.id, place, offences=(place.nvp, place.fl), now=NOW)
    booted = write_ticket(core, officer.id, place, plate="BOOT 1", boot_id=place.boot_ids[0], now=NOW)
    with core.db.session() as s:
        violation, with_boot = s.get(Violation, ticket.id), s.get(Violation, booted.id)
        assert violations.amount_due(violation, NOW) == 4000 + 10000  # FL has no discount
        assert violations.amount_due(violation, NOW + timedelta(days=7)) == 14000  # the last moment
        assert violations.amount_due(violation, NOW + timedelta(days=7, seconds=1)) == 15000
        assert violations.amount_due(with_boot, NOW) == 4000 + 7500  # the boot item is never discounted
        assert violations.amount_due(with_boot, NOW + timedelta(days=8)) == 5000 + 7500


def test_the_server_charges_its_own_amount_and_refuses_a_changed_total(core, place, officer, owner, receipt):
    ticket = write_ticket(core, officer.id, place, now=NOW)
    changed = pay(
        core, receipt, Scope(user_id=owner.id), [ticket.id], total=5000
    )  # shown before the discount
    assert changed.status == "changed" and charges(core) == 0
    late = NOW + timedelta(days=8)
    result = pay(core, receipt, Scope(user_id=owner.id), [ticket.id], total=5000, now=late)
    assert result.paid
    with core.db.session() as s:
        assert s.scalar(select(Payment.amount_cents)) == 5000


def test_void_paid_and_under_appeal_violations_cannot_be_paid(
    core, place, officer, owner, receipt, make_user
):
    void = write_ticket(core, officer.id, place, now=NOW)
    appealed = write_ticket(core, officer.id, place, now=NOW)
    paid = write_ticket(core, officer.id, place, now=NOW)
    with core.db.session() as s:
        violations.void_violation(s, void.id, "wrong plate", None, NOW)
        appeals.submit_appeal(
            s,
            ticket=appealed.ticket_number,
            plate="ABC 123",
            text="The machine was broken.",
            email_address="owner@example.com",
            user_id=None,
            photo=None,
            instance_path=core.settings.instance_path,
            site=appeals.Site("Campus", "https://parking.test", ZoneInfo("UTC")),
            backend=email.OutboxBackend(),
            now=NOW,
        )
    assert pay(core, receipt, Scope(user_id=owner.id), [paid.id]).paid
    for ticket, why in ((void, "void"), (appealed, "under appeal"), (paid, "already paid")):
        refused = pay(core, receipt, Scope(user_id=owner.id), [ticket.id], key=f"again-{ticket.id}")
        assert refused.status == "refused" and why in refused.message, refused
    assert charges(core) == 1


def test_a_violation_of_someone_else_is_not_in_the_account(core, place, officer, owner, receipt):
    theirs = write_ticket(core, officer.id, place, plate="ZZZ 999", now=NOW)
    with pytest.raises(ValidationFailed):
        pay(core, receipt, Scope(user_id=owner.id), [theirs.id])
    assert charges(core) == 0


# --- Require Overdue Paid ------------------------------------------------------------------------


def two_tickets(core, officer, place):
    """An overdue ticket and a fresh booted one, on the owner's plate."""
    old = write_ticket(core, officer.id, place, offences=(place.fl,), now=OVERDUE_AT)
    new = write_ticket(core, officer.id, place, boot_id=place.boot_ids[0], now=NOW)
    return old, new


def test_require_overdue_paid_on_an_account(core, place, officer, owner, receipt):
    old, new = two_tickets(core, officer, place)
    scope = Scope(user_id=owner.id)
    refused = pay(core, receipt, scope, [new.id], require_overdue=True)
    assert refused.status == "overdue_missing"
    assert old.ticket_number in refused.message and [m.violation_id for m in refused.missing] == [old.id]
    assert charges(core) == 0 and status(core, new.id) == "unpaid" and mails(core, "boot-release") == []
    both = pay(core, receipt, scope, [new.id, old.id], require_overdue=True, total=10000 + 11500)
    assert both.paid and status(core, old.id) == "paid" and status(core, new.id) == "paid"
    assert len(mails(core, "boot-release")) == 1


def test_with_require_overdue_paid_off_any_subset_is_paid(core, place, officer, owner, receipt):
    old, new = two_tickets(core, officer, place)
    result = pay(core, receipt, Scope(user_id=owner.id), [new.id], require_overdue=False)
    assert result.paid and status(core, old.id) == "unpaid" and len(mails(core, "boot-release")) == 1


def test_require_overdue_paid_for_a_guest_by_plate(core, place, officer, receipt):
    old, new = two_tickets(core, officer, place)
    other_plate = write_ticket(core, officer.id, place, plate="XYZ 789", offences=(place.fl,), now=OVERDUE_AT)
    scope = Scope(ticket=new.ticket_number.lower().replace("-", " "), plate="abc-123")
    with core.db.session() as s:
        listed = violation_payments.guest_violations(s, scope.ticket, scope.plate, NOW)
    assert [row.violation_id for row in listed] == [new.id, old.id]  # the ticket first; not XYZ 789's
    refused = pay(core, receipt, scope, [new.id], require_overdue=True)
    assert refused.status == "overdue_missing" and [m.ticket_number for m in refused.missing] == [
        old.ticket_number
    ]
    assert other_plate.ticket_number not in refused.message
    assert pay(core, receipt, scope, [new.id], require_overdue=False, key="off").paid
    assert status(core, old.id) == "unpaid"


def test_a_guest_needs_the_right_ticket_and_plate(core, place, officer, receipt):
    ticket = write_ticket(core, officer.id, place, now=NOW)
    theirs = write_ticket(core, officer.id, place, plate="XYZ 789", now=NOW)
    with core.db.session() as s:
        for number, plate in ((ticket.ticket_number, "XYZ 789"), ("T-222-222", "ABC 123"), ("", "")):
            with pytest.raises(NotFound, match="No ticket matches"):
                violation_payments.guest_violations(s, number, plate, NOW)
    with pytest.raises(ValidationFailed):  # another plate's ticket is not in this guest's payment
        pay(core, receipt, Scope(ticket=ticket.ticket_number, plate="ABC 123"), [ticket.id, theirs.id])


# --- the release code goes out exactly once ---------------------------------------------------------


def test_a_retried_confirmation_sends_the_code_once(core, place, officer, owner, receipt):
    ticket = write_ticket(core, officer.id, place, boot_id=place.boot_ids[0], now=NOW)
    first = pay(core, receipt, Scope(user_id=owner.id), [ticket.id])
    again = pay(core, receipt, Scope(user_id=owner.id), [ticket.id])  # the same form sent again
    assert first.paid and again.paid
    assert again.payment.receipt_token == first.payment.receipt_token
    assert charges(core) == 1 and len(mails(core, "boot-release")) == 1
    assert len(mails(core, "payment-receipt")) == 1


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"statement": "^INSERT INTO outbox_messages", "commit": True}, id="settle's COMMIT"),
        pytest.param(
            {"statement": "^INSERT INTO outbox_messages", "answer_lost": True},
            id="settle's COMMIT went through, its answer lost",
        ),
        pytest.param({"statement": "^UPDATE boot_assignments"}, id="settling, releasing the boot"),
    ],
)
def test_a_settle_run_twice_after_a_dropped_connection_sends_the_code_once(
    core, place, officer, owner, receipt, fault
):
    ticket = write_ticket(core, officer.id, place, boot_id=place.boot_ids[0], now=NOW)
    with DropConnection(core.db, **fault) as drop:
        result = pay(core, receipt, Scope(user_id=owner.id), [ticket.id])
    assert drop.fired == 1
    assert result.paid, result
    assert charges(core) == 1 and status(core, ticket.id) == "paid"
    assert len(mails(core, "boot-release")) == 1 and len(mails(core, "payment-receipt")) == 1


class LostAnswers(SandboxProvider):
    """Charges, then the answer never comes back and the processor cannot be asked: the payment
    is left pending, to be settled by a reload (``resume``) or the reconcile task."""

    def charge(self, **kwargs):
        super().charge(**kwargs)
        raise ProviderUnavailable("the answer was lost")

    def find_charge(self, *, idempotency_key):
        raise ProviderUnavailable("the processor cannot be asked")


def test_resume_and_reconcile_after_a_lost_answer_send_the_code_once(
    core, place, officer, owner, receipt, monkeypatch
):
    monkeypatch.setattr(payments, "RETRY_DELAYS", (0.0,))
    ticket = write_ticket(core, officer.id, place, boot_id=place.boot_ids[0], now=NOW)
    told = pay(core, receipt, Scope(user_id=owner.id), [ticket.id], provider=LostAnswers(core.db))
    assert told.status == "in_progress" and status(core, ticket.id) == "unpaid"
    assert mails(core, "boot-release") == []  # charged, but not known to be: no code yet
    with core.db.session() as s:
        [row] = violation_payments.account_violations(s, owner.id, NOW)
    assert row.reason == "a payment of it is being processed"
    other = pay(core, receipt, Scope(user_id=owner.id), [ticket.id], key="another-form")
    assert other.status == "refused" and "being processed" in other.message  # not charged twice

    barrier = threading.Barrier(3)
    outcomes: list[object] = []

    def settle(run) -> None:
        barrier.wait()
        try:
            outcomes.append(run())
        except Exception as exc:  # noqa: BLE001 (kept for the assertion)
            outcomes.append(exc)

    def resume():
        return payments.resume(
            core.db,
            SandboxProvider(core.db),
            "form-1",
            receipt=receipt,
            backend=email.OutboxBackend(),
            now=NOW,
        )

    def reconcile():
        return payments.reconcile_pending(core.db, NOW, receipt=receipt, backend=email.OutboxBackend())

    threads = [threading.Thread(target=settle, args=(run,)) for run in (resume, resume, reconcile)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert reconcile() == payments.Reconciled(0, 0, 0)
    assert status(core, ticket.id) == "paid" and charges(core) == 1
    assert len(mails(core, "boot-release")) == 1 and len(mails(core, "payment-receipt")) == 1


def test_concurrent_payments_of_one_violation_charge_it_once(core, place, officer, owner, receipt):
    """Three forms (two tabs, a guest) pay the same booted violation at once, each under its own
    key: the violation's row lock lets one reserve; the others are refused before any charge. On
    PostgreSQL in the service run (``PARKOPS_TEST_DATABASE_URL``), on SQLite otherwise."""
    ticket = write_ticket(core, officer.id, place, boot_id=place.boot_ids[0], now=NOW)
    scopes = [
        Scope(user_id=owner.id),
        Scope(user_id=owner.id),
        Scope(ticket=ticket.ticket_number, plate="ABC 123"),
    ]
    barrier = threading.Barrier(len(scopes))
    outcomes: list[object] = []

    def race(n: int, scope: Scope) -> None:
        barrier.wait()
        try:
            outcomes.append(pay(core, receipt, scope, [ticket.id], key=f"race-{n}"))
        except Exception as exc:  # noqa: BLE001 (kept for the assertion)
            outcomes.append(exc)

    threads = [threading.Thread(target=race, args=(n, scope)) for n, scope in enumerate(scopes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    paid = [o for o in outcomes if getattr(o, "paid", False)]
    assert len(paid) == 1, outcomes
    assert all(getattr(o, "status", None) == "refused" for o in outcomes if o not in paid), outcomes
    assert charges(core) == 1 and status(core, ticket.id) == "paid"
    assert len(mails(core, "boot-release")) == 1
    with core.db.session() as s:
        assert s.scalar(select(func.count(Payment.id))) == 1
