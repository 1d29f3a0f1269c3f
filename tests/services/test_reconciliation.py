"""Payment reconciliation on both processors: the sandbox's own ledger, and Stripe's balance
transactions read with the real ``stripe`` library from the local Stripe (``tests/stripe_fake.py``).
Each disagreement (charged without a settled payment, settled without a charge, amounts differing,
refunded elsewhere) is found, listed once however often the task runs, and changes only when a
person acts: mark reviewed with a note, settle or refund, each audited. Old webhook events are
forgotten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Delete, delete, func, select, update

from dashboard.services import email, payment_providers, payments, reconciliation, system_settings
from dashboard.services.errors import NotAllowed, ValidationFailed
from dashboard.services.payment_providers import Card
from dashboard.services.payments import SandboxProvider
from models import (
    AuditLog,
    Lot,
    MismatchKind,
    Payment,
    PaymentMismatch,
    PaymentStatus,
    Permit,
    PermitStatus,
    ProcessorEvent,
    Role,
    SandboxCharge,
)
from tests.services.test_stripe_payments import RECEIPT, fake, item, product, provider, start  # noqa: F401
from tests.stripe_fake import SUCCESS_CARD

CARD = Card(SUCCESS_CARD, 12, 2099, "123")
LATER = timedelta(hours=2)  # the run comes after the checkouts' grace


def buy(core, product, key: str, at: datetime | None = None) -> Payment:  # noqa: F811
    moment = at or datetime.now(UTC)
    result = payments.checkout(
        core.db,
        SandboxProvider(core.db),
        items=[item(product, moment, plate=key[-6:])],
        card=CARD,
        idempotency_key=key,
        email_address="sam@example.com",
        user_id=None,
        receipt=RECEIPT,
        backend=email.OutboxBackend(),
        now=moment,
    )
    assert result.paid, result
    with core.db.session() as s:
        return s.get(Payment, result.payment_id)


def run(core, at: datetime | None = None) -> reconciliation.RunReport:
    return reconciliation.run(core.db, core.secrets, at or datetime.now(UTC) + LATER)


def open_kinds(core) -> list[tuple[str, str]]:
    with core.db.session() as s:
        return sorted((m.provider, m.kind) for m in reconciliation.list_mismatches(s))


@pytest.fixture
def roomy(core, product):  # noqa: F811
    """The Stripe tests' product, in a lot with room for several permits."""
    with core.db.session() as s:
        s.execute(update(Lot).where(Lot.id == product.lot_id).values(capacity=20))
    return product


def test_a_ledger_that_agrees_with_the_sandbox_lists_nothing(core, roomy):
    buy(core, roomy, "agree-000001")
    report = run(core)
    assert report.checks == (reconciliation.ProviderCheck("sandbox", 1, 0, 0),)
    assert open_kinds(core) == [] and not report.failed


def test_every_kind_of_sandbox_disagreement_is_found_once(core, roomy):
    fine = buy(core, roomy, "fine-0000001")
    short = buy(core, roomy, "short-000001")
    refunded = buy(core, roomy, "refund-00001")
    lost = buy(core, roomy, "lost-0000001")
    stray = SandboxProvider(core.db).charge(
        amount_cents=1200, currency="CAD", card=CARD, idempotency_key="outside-1", description="outside"
    )
    with core.db.session() as s:
        s.get(Payment, short.id).amount_cents = 400  # the ledger says less than was charged
        s.scalar(
            select(SandboxCharge).where(SandboxCharge.reference == refunded.provider_ref)
        ).refunded_cents = 200
        s.execute(delete_charge(lost.provider_ref))  # settled, but the processor has no charge
    report = run(core)
    assert report.checks[0].found == 4 and report.checks[0].new == 4
    with core.db.session() as s:
        found = {(m.kind, m.reference): m for m in reconciliation.list_mismatches(s)}
    assert set(found) == {
        (MismatchKind.AMOUNT_DIFFERS, short.provider_ref),
        (MismatchKind.REFUNDED_ELSEWHERE, refunded.provider_ref),
        (MismatchKind.SETTLED_UNCHARGED, lost.provider_ref),
        (MismatchKind.CHARGED_UNSETTLED, stray.reference),
    }
    differs = found[(MismatchKind.AMOUNT_DIFFERS, short.provider_ref)]
    assert (differs.ledger_cents, differs.processor_cents, differs.payment_id) == (400, 500, short.id)
    elsewhere = found[(MismatchKind.REFUNDED_ELSEWHERE, refunded.provider_ref)]
    assert (elsewhere.ledger_cents, elsewhere.processor_cents) == (0, 200)
    stray_row = found[(MismatchKind.CHARGED_UNSETTLED, stray.reference)]
    assert stray_row.payment_id is None and stray_row.processor_cents == 1200
    assert stray_row.can_refund and not stray_row.can_settle
    assert not differs.can_refund and not differs.can_settle
    assert fine.provider_ref not in {ref for _kind, ref in found}

    again = run(core)
    assert again.checks[0].found == 4 and again.checks[0].new == 0
    with core.db.session() as s:
        assert s.scalar(select(func.count(PaymentMismatch.id))) == 4
        assert s.get(Payment, short.id).amount_cents == 400  # nothing in the ledger was changed


def delete_charge(reference: str) -> Delete:
    return delete(SandboxCharge).where(SandboxCharge.reference == reference)


def test_mark_reviewed_needs_a_note_is_audited_and_stays_reviewed(core, roomy, make_user):
    short = buy(core, roomy, "short-000002")
    with core.db.session() as s:
        s.get(Payment, short.id).amount_cents = 450
    run(core)
    manager = make_user(Role.MANAGER)
    with core.db.session() as s:
        (row,) = reconciliation.list_mismatches(s)
        with pytest.raises(ValidationFailed):
            reconciliation.mark_reviewed(s, row.id, "  ", manager.id, datetime.now(UTC))
    with core.db.session() as s:
        reconciliation.mark_reviewed(
            s, row.id, "Price corrected by hand in October", manager.id, datetime.now(UTC)
        )
    with core.db.session() as s, pytest.raises(NotAllowed):
        reconciliation.mark_reviewed(s, row.id, "again", manager.id, datetime.now(UTC))
    run(core)
    with core.db.session() as s:
        assert reconciliation.list_mismatches(s) == []
        (done,) = reconciliation.list_mismatches(s, "done")
        assert done.status == "reviewed" and done.note == "Price corrected by hand in October"
        assert done.resolved_by == manager.name
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "payment_mismatch.reviewed"))
        assert entry.actor_id == manager.id and entry.entity_id == str(row.id)
        assert entry.changes["note"] == "Price corrected by hand in October"


def test_a_charge_no_payment_counts_is_refunded_once_after_a_click(core, roomy, make_user):
    stray = SandboxProvider(core.db).charge(
        amount_cents=900, currency="CAD", card=CARD, idempotency_key="outside-2", description="outside"
    )
    run(core)
    manager = make_user(Role.MANAGER)
    with core.db.session() as s:
        (row,) = reconciliation.list_mismatches(s)
        assert s.scalar(select(SandboxCharge.refunded_cents)) == 0  # finding it changed nothing
    said = reconciliation.refund(core.db, core.secrets, row.id, "not ours", manager.id, datetime.now(UTC))
    assert said.startswith("$9.00 CAD refunded")
    with pytest.raises(NotAllowed):
        reconciliation.refund(core.db, core.secrets, row.id, "", manager.id, datetime.now(UTC))
    with core.db.session() as s:
        assert (
            s.scalar(select(SandboxCharge.refunded_cents).where(SandboxCharge.reference == stray.reference))
            == 900
        )
        done = reconciliation.get_mismatch(s, row.id)
        assert done.status == "refunded" and done.refund_reference and not done.can_refund
        assert s.scalar(select(AuditLog.action).where(AuditLog.entity_type == "payment_mismatch")) == (
            "payment_mismatch.refunded"
        )


def test_a_refund_made_while_another_manager_marks_it_reviewed_is_still_recorded(
    core, roomy, make_user, monkeypatch
):
    """The money went back to the card: the row must say so, with the refund's reference, even
    when someone else closed it while the processor was being asked (not "already reviewed")."""
    stray = SandboxProvider(core.db).charge(
        amount_cents=700, currency="CAD", card=CARD, idempotency_key="outside-3", description="outside"
    )
    run(core)
    refunder, reviewer = make_user(Role.MANAGER), make_user(Role.MANAGER)
    with core.db.session() as s:
        (row,) = reconciliation.list_mismatches(s)
    real_refund = SandboxProvider.refund

    def reviewed_meanwhile(self, **kwargs):
        with core.db.session() as s:
            reconciliation.mark_reviewed(s, row.id, "looked at it", reviewer.id, datetime.now(UTC))
        return real_refund(self, **kwargs)

    monkeypatch.setattr(SandboxProvider, "refund", reviewed_meanwhile)
    said = reconciliation.refund(core.db, core.secrets, row.id, "not ours", refunder.id, datetime.now(UTC))
    assert said.startswith("$7.00 CAD refunded")
    with core.db.session() as s:
        assert (
            s.scalar(select(SandboxCharge.refunded_cents).where(SandboxCharge.reference == stray.reference))
            == 700
        )
        done = reconciliation.get_mismatch(s, row.id)
        assert done.status == "refunded" and done.refund_reference and done.note == "not ours"
        actions = s.scalars(
            select(AuditLog.action).where(AuditLog.entity_type == "payment_mismatch").order_by(AuditLog.id)
        ).all()
        assert actions == ["payment_mismatch.reviewed", "payment_mismatch.refunded"]


def test_a_pending_payment_is_waited_for_then_settled_on_a_click(core, roomy, make_user):
    began = datetime.now(UTC)
    key = "pending-0001"
    # The card was charged, and the request died before the payment was settled.
    reserved = payments.checkout(
        core.db,
        BrokenSettle(core.db),
        items=[item(roomy, began)],
        card=CARD,
        idempotency_key=key,
        email_address="sam@example.com",
        user_id=None,
        receipt=RECEIPT,
        backend=email.OutboxBackend(),
        now=began,
    )
    assert reserved.status == "in_progress"
    assert run(core, began + timedelta(minutes=10)).checks[0].found == 0  # within the grace
    run(core, began + LATER)
    with core.db.session() as s:
        (row,) = reconciliation.list_mismatches(s)
    assert row.kind == MismatchKind.CHARGED_UNSETTLED and row.can_settle and not row.can_refund
    manager = make_user(Role.MANAGER)
    said = reconciliation.settle(
        core.db,
        core.secrets,
        row.id,
        "buyer phoned",
        manager.id,
        receipt=RECEIPT,
        backend=email.OutboxBackend(),
        now=began + LATER,
    )
    assert "settled" in said
    with core.db.session() as s:
        assert s.scalar(select(Payment.status)) == PaymentStatus.SUCCEEDED
        assert s.scalar(select(Permit.status)) == PermitStatus.ACTIVE
        assert reconciliation.get_mismatch(s, row.id).status == "settled"


class BrokenSettle(SandboxProvider):
    """The sandbox, charging, with an answer that never reaches the checkout (a dropped request)."""

    def charge(self, **kwargs):  # type: ignore[no-untyped-def]
        super().charge(**kwargs)
        raise payment_providers.ProviderUnavailable("the answer was lost")

    def find_charge(self, *, idempotency_key: str):  # type: ignore[no-untyped-def]
        raise payment_providers.ProviderUnavailable("still unreachable")


def test_old_webhook_events_are_forgotten(core):
    now = datetime.now(UTC)
    with core.db.session() as s:
        s.add(
            ProcessorEvent(
                provider="stripe", event_id="evt_old", event_type="x", received_at=now - timedelta(days=31)
            )
        )
        s.add(
            ProcessorEvent(
                provider="stripe", event_id="evt_new", event_type="x", received_at=now - timedelta(days=29)
            )
        )
    assert run(core, now).pruned_events == 1
    with core.db.session() as s:
        assert list(s.scalars(select(ProcessorEvent.event_id))) == ["evt_new"]


# --- Stripe ----------------------------------------------------------------------------------------


def test_stripe_charges_are_compared_through_balance_transactions(core, fake, provider, product, make_user):  # noqa: F811
    start(core, provider, product, key="paid-key")
    fake.pay(fake.only_session(), SUCCESS_CARD)  # webhooks settle it
    assert run(core).checks[1] == reconciliation.ProviderCheck("stripe", 1, 0, 0)
    paid_intent = next(iter(fake.intents))

    fake.refund_outside(paid_intent, 200)  # in Stripe's dashboard
    stray = fake.charge_outside(1500)  # a charge ParkOps never asked for
    with core.db.session() as s:  # a payment ParkOps counts that Stripe never charged
        s.add(
            Payment(
                idempotency_key="ghost",
                provider="stripe",
                provider_ref="pi_ghost",
                status=PaymentStatus.SUCCEEDED,
                amount_cents=700,
                created_at=datetime.now(UTC),
            )
        )
    report = run(core)
    assert report.checks[1].charges == 2 and report.checks[1].found == 3
    assert any(path == "/v1/balance_transactions" for _m, path, _f, _k in fake.requests)
    with core.db.session() as s:
        found = {(m.kind, m.reference): m for m in reconciliation.list_mismatches(s)}
    assert set(found) == {
        (MismatchKind.REFUNDED_ELSEWHERE, paid_intent),
        (MismatchKind.CHARGED_UNSETTLED, stray),
        (MismatchKind.SETTLED_UNCHARGED, "pi_ghost"),
    }
    assert found[(MismatchKind.REFUNDED_ELSEWHERE, paid_intent)].processor_cents == 200

    manager = make_user(Role.MANAGER)
    row = found[(MismatchKind.CHARGED_UNSETTLED, stray)]
    said = reconciliation.refund(core.db, core.secrets, row.id, "", manager.id, datetime.now(UTC))
    assert "$15.00 CAD refunded" in said
    (made,) = [r for r in fake.refunds.values() if r["payment_intent"] == stray]
    assert made["amount"] == 1500 and fake.intents[stray]["amount_refunded"] == 1500


def test_a_stripe_charge_whose_webhook_was_lost_is_settled_on_a_click(
    core,
    fake,  # noqa: F811
    provider,  # noqa: F811
    product,  # noqa: F811
    make_user,
):
    fake.deliver = None
    began = datetime.now(UTC) - LATER
    start(core, provider, product, key="lost-key", at=began)
    fake.pay(fake.only_session(), SUCCESS_CARD)
    run(core, datetime.now(UTC) + timedelta(seconds=5))
    with core.db.session() as s:
        (row,) = reconciliation.list_mismatches(s)
    assert (row.provider, row.kind, row.can_settle) == ("stripe", MismatchKind.CHARGED_UNSETTLED, True)
    assert row.reference == next(iter(fake.intents))
    reconciliation.settle(
        core.db,
        core.secrets,
        row.id,
        "",
        make_user(Role.MANAGER).id,
        receipt=RECEIPT,
        backend=email.OutboxBackend(),
        now=datetime.now(UTC),
    )
    with core.db.session() as s:
        assert s.scalar(select(Payment.status)) == PaymentStatus.SUCCEEDED


def test_stripe_chosen_without_keys_is_reported_not_checked(core):
    with core.db.session() as s:
        system_settings.update(s, core.secrets, {"payment_processor": "stripe"}, actor_id=None)
    report = run(core)
    assert report.failed and report.checks[1].provider == "stripe"
    assert "secret key" in (report.checks[1].error or "")
