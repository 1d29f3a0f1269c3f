"""Payments: the sandbox processor's test cards, checkout's three steps (nothing half done on a
decline or a processor error), one charge per idempotency key (also under concurrent double
submits), receipts in the outbox, refunds."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from dashboard.services import email, payments, permits
from dashboard.services.errors import ValidationFailed
from dashboard.services.payments import (
    DECLINED_CARD,
    INSUFFICIENT_FUNDS_CARD,
    NETWORK_ERROR_CARD,
    SUCCESS_CARD,
    ReceiptContext,
    SandboxProvider,
)
from dashboard.services.permits import PermitRequest
from dashboard.services.plates import clean_plate
from models import (
    AuditLog,
    Lot,
    OutboxMessage,
    Payment,
    PaymentStatus,
    Permit,
    PermitKind,
    PermitProduct,
    PermitStatus,
    Pricing,
    SandboxCharge,
)

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
TODAY = date(2026, 11, 30)
RECEIPT = ReceiptContext(
    name="Sam", site_name="Campus", base_url="https://parking.test", tz=ZoneInfo("America/Toronto")
)


@pytest.fixture
def product(core) -> PermitProduct:
    with core.db.session() as s:
        email.ensure_default_templates(s)
        lot = Lot(name="Visitor Lot", capacity=1, sells_temporary=True)
        s.add(lot)
        s.flush()
        row = PermitProduct(
            lot_id=lot.id, kind=PermitKind.TEMPORARY, name="Hourly", pricing=Pricing.HOURLY, price_cents=250
        )
        s.add(row)
    return row


def item(product: PermitProduct, plate: str = "ABC 123") -> PermitRequest:
    return PermitRequest(
        lot_id=product.lot_id,
        product_id=product.id,
        plates=(clean_plate(plate),),
        valid_from=NOW,
        valid_to=NOW + timedelta(hours=2),
        amount_cents=500,
        currency="CAD",
        email="sam@example.com",
        user_id=None,
    )


def pay(core, product, card_number: str = SUCCESS_CARD, key: str = "form-key-1", plate: str = "ABC 123"):
    card = payments.clean_card(card_number, "12/29", "123", TODAY)
    return payments.checkout(
        core.db,
        SandboxProvider(core.db),
        items=[item(product, plate)],
        card=card,
        idempotency_key=key,
        email_address="sam@example.com",
        user_id=None,
        receipt=RECEIPT,
        backend=email.OutboxBackend(),
        now=NOW,
    )


def count(core, column) -> int:
    with core.db.session() as s:
        return s.scalar(select(func.count(column)))


@pytest.mark.parametrize(
    ("number", "expiry", "cvc", "fields"),
    [
        ("4242 4242 4242 4241", "12/29", "123", {"card_number"}),  # fails the Luhn check
        ("4242-4242-4242-4242", "13/29", "12", {"expiry", "cvc"}),
        ("4242424242424242", "10/26", "1234", {"expiry"}),  # expired last month
        ("", "", "", {"card_number", "expiry", "cvc"}),
    ],
)
def test_card_details_are_validated(number, expiry, cvc, fields):
    with pytest.raises(ValidationFailed) as caught:
        payments.clean_card(number, expiry, cvc, TODAY)
    assert set(caught.value.errors) == fields


def test_a_paid_checkout_activates_the_permit_and_queues_the_receipt(core, product):
    result = pay(core, product)
    assert result.paid and len(result.permits) == 1 and result.permits[0].status == "active"
    with core.db.session() as s:
        payment = s.scalar(select(Payment))
        assert payment.status == PaymentStatus.SUCCEEDED and payment.card_last4 == "4242"
        assert payment.receipt_token == result.receipt_token and payment.provider_ref.startswith("sbx_")
        mail = s.scalar(select(OutboxMessage))
        assert mail.to_addresses == ["sam@example.com"] and mail.template_key == "permit-receipt"
        assert f"https://parking.test/receipts/{result.receipt_token}" in mail.body_text
        assert result.permits[0].number in mail.subject
        receipt = payments.get_receipt(s, result.receipt_token)
        assert receipt.amount_cents == 500 and receipt.permits[0].plates == ("ABC 123",)
        assert payments.get_receipt(s, "x" * 32) is None
    assert count(core, SandboxCharge.id) == 1


def test_a_second_submit_of_the_same_form_charges_once(core, product):
    first = pay(core, product)
    second = pay(core, product)
    assert (
        second.paid and second.payment_id == first.payment_id and second.receipt_token == first.receipt_token
    )
    assert count(core, SandboxCharge.id) == 1 and count(core, Permit.id) == 1 and count(core, Payment.id) == 1


def test_concurrent_double_submits_charge_once(core, product):
    with core.db.session() as s:
        s.get(Lot, product.lot_id).capacity = 5
    start = threading.Barrier(5)
    results = []

    def submit() -> None:
        start.wait()
        results.append(pay(core, product, key="double-click"))

    threads = [threading.Thread(target=submit) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert {r.status for r in results} <= {"paid", "in_progress"} and any(r.paid for r in results)
    assert count(core, SandboxCharge.id) == 1 and count(core, Payment.id) == 1
    with core.db.session() as s:
        assert s.scalar(select(func.count(Permit.id)).where(Permit.status != PermitStatus.CANCELLED)) == 1


@pytest.mark.parametrize(
    ("card", "message"), [(DECLINED_CARD, "declined"), (INSUFFICIENT_FUNDS_CARD, "insufficient")]
)
def test_a_decline_leaves_no_permit_and_frees_the_space(core, product, card, message):
    result = pay(core, product, card)
    assert result.status == "declined" and message in result.message
    with core.db.session() as s:
        assert s.scalar(select(Permit.status)) == PermitStatus.CANCELLED
        assert s.scalar(select(Payment.status)) == PaymentStatus.DECLINED
        assert s.scalar(select(func.count(OutboxMessage.id))) == 0
    assert pay(core, product, key="form-key-2", plate="XYZ 999").paid  # the only space is free again


def test_a_processor_error_charges_nothing_and_a_new_attempt_works(core, product):
    result = pay(core, product, NETWORK_ERROR_CARD)
    assert result.status == "failed" and "not charged" in result.message
    assert count(core, SandboxCharge.id) == 0
    with core.db.session() as s:
        assert s.scalar(select(Permit.status)) == PermitStatus.CANCELLED
        assert s.scalar(select(Payment.status)) == PaymentStatus.FAILED
    assert pay(core, product, NETWORK_ERROR_CARD).status == "failed"  # the same form again: same answer
    assert pay(core, product, key="form-key-2").paid


def test_sold_out_stores_nothing(core, product):
    assert pay(core, product).paid
    result = pay(core, product, key="form-key-2", plate="XYZ 999")
    assert result.status == "sold_out" and "sold out" in result.message
    assert count(core, Payment.id) == 1 and count(core, SandboxCharge.id) == 1


def test_refunds_partial_then_full_cancel_the_permit(core, product, make_user):
    admin = make_user()
    paid = pay(core, product)
    provider = SandboxProvider(core.db)
    assert (
        payments.refund(
            core.db,
            provider,
            payment_id=paid.payment_id,
            amount_cents=200,
            reason="left early",
            actor_id=admin.id,
        )
        == PaymentStatus.PARTIALLY_REFUNDED
    )
    with pytest.raises(ValidationFailed):
        payments.refund(
            core.db, provider, payment_id=paid.payment_id, amount_cents=301, reason="", actor_id=admin.id
        )
    assert (
        payments.refund(
            core.db, provider, payment_id=paid.payment_id, amount_cents=300, reason="", actor_id=admin.id
        )
        == PaymentStatus.REFUNDED
    )
    with core.db.session() as s:
        assert s.scalar(select(Permit.status)) == PermitStatus.CANCELLED
        assert s.scalar(select(SandboxCharge.refunded_cents)) == 500
        assert s.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "payment.refund")) == 2
        assert permits.lot_availability(s, product.lot_id, NOW, NOW + timedelta(hours=1), NOW).available == 1


def test_abandoned_checkouts_are_closed_after_the_hold(core, product):
    """A checkout that never came back from the card step (the process died after reserving)."""
    with core.db.session() as s:
        held = permits.reserve(s, item(product), NOW)
        s.add(Payment(idempotency_key="lost", provider="sandbox", amount_cents=500, created_at=NOW))
    with core.db.session() as s:
        assert payments.expire_abandoned(s, NOW + timedelta(minutes=5)) == 0
        assert payments.expire_abandoned(s, NOW + permits.HOLD) == 1
    with core.db.session() as s:
        assert s.scalar(select(Payment.status)) == PaymentStatus.FAILED
        assert s.get(Permit, held.id).status == PermitStatus.CANCELLED
