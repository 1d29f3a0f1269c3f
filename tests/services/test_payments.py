"""Payments: the sandbox processor's test cards, checkout's three steps (nothing half done on a
decline or a processor error), one charge per idempotency key (also under concurrent double
submits), receipts in the outbox, refunds."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import event, func, select

from dashboard.services import email, payment_providers, payments, permits
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
    PaymentAllocation,
    PaymentStatus,
    Permit,
    PermitKind,
    PermitProduct,
    PermitStatus,
    Pricing,
    SandboxCharge,
    WaitlistEntry,
    WaitlistStatus,
)
from tests.faults import DropConnection

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
    card = payment_providers.clean_card(card_number, "12/29", "123", TODAY)
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
        ("4242 4242 4242 424²", "12/29", "12³", {"card_number", "cvc"}),  # digits to str, not to int()
    ],
)
def test_card_details_are_validated(number, expiry, cvc, fields):
    with pytest.raises(ValidationFailed) as caught:
        payment_providers.clean_card(number, expiry, cvc, TODAY)
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


def test_a_purchase_is_three_short_transactions_of_thirteen_statements(core, product):
    """The checkout's throughput (README, Performance) rests on its work per purchase: reserve,
    the sandbox's charge and settle, one transaction each, 13 statements in all; the lot's count
    and the hold are one INSERT ... SELECT, and the key is not looked up before a new sale."""
    statements: list[str] = []
    commits: list[bool] = []

    def executed(_conn, _cursor, statement, *_rest) -> None:
        statements.append(statement)

    def committed(_conn) -> None:
        commits.append(True)

    event.listen(core.db.engine, "before_cursor_execute", executed)
    event.listen(core.db.engine, "commit", committed)
    try:
        result = pay(core, product)
    finally:
        event.remove(core.db.engine, "before_cursor_execute", executed)
        event.remove(core.db.engine, "commit", committed)
    assert result.paid
    assert len(commits) == 3 and len(statements) == 13, statements
    holds = [s for s in statements if s.startswith("INSERT INTO permits ")]
    assert len(holds) == 1 and "SELECT count(permits.id)" in holds[0]
    assert not any(s.startswith("SELECT") and "FROM payments" in s.split("WHERE")[0] for s in statements)
    with core.db.session() as s:
        assert s.scalar(select(func.count(OutboxMessage.id))) == 1


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


def charged(core) -> int:
    with core.db.session() as s:
        return s.scalar(
            select(func.count(SandboxCharge.id)).where(SandboxCharge.status == PaymentStatus.SUCCEEDED)
        )


def test_a_processor_error_charges_nothing_and_a_new_attempt_works(core, product):
    """The processor gave no answer: it is asked again, and the key is cancelled there before the
    buyer is told nothing was charged (a late charge under it would be refused)."""
    result = pay(core, product, NETWORK_ERROR_CARD)
    assert result.status == "failed" and "not charged" in result.message
    assert charged(core) == 0
    with core.db.session() as s:
        assert s.scalar(select(Permit.status)) == PermitStatus.CANCELLED
        assert s.scalar(select(Payment.status)) == PaymentStatus.FAILED
        assert s.scalar(select(SandboxCharge.message)) == payments.CANCELLED
    assert (
        not SandboxProvider(core.db)
        .charge(
            amount_cents=500,
            currency="CAD",
            card=payment_providers.clean_card(SUCCESS_CARD, "12/29", "123", TODAY),
            idempotency_key="form-key-1",
            description="a late charge",
        )
        .succeeded
    )
    assert pay(core, product, NETWORK_ERROR_CARD).status == "failed"  # the same form again: same answer
    assert pay(core, product, key="form-key-2").paid


def test_sold_out_stores_nothing(core, product):
    assert pay(core, product).paid
    result = pay(core, product, key="form-key-2", plate="XYZ 999")
    assert result.status == "sold_out" and "sold out" in result.message
    assert count(core, Payment.id) == 1 and count(core, SandboxCharge.id) == 1


@pytest.mark.parametrize("by_account", [False, True])
def test_a_waitlist_offer_holds_the_space_for_its_buyer_and_their_checkout_fulfils_it(
    core, product, make_user, by_account
):
    """The lot's one space is held by an offer (to a guest's e-mail, or to an account): anyone
    else is sold out; the offered buyer's checkout sells it and fulfils the offer, one statement
    each (``permits._hold``, ``permits.activate_paid``)."""
    holder = make_user(email="Sam@Example.com") if by_account else None
    with core.db.session() as s:
        s.add(
            WaitlistEntry(
                product_id=product.id,
                lot_id=product.lot_id,
                user_id=holder.id if holder else None,
                email="Sam@Example.com",
                status=WaitlistStatus.OFFERED,
                offered_at=NOW,
                offer_expires_at=NOW + timedelta(hours=1),
                offer_token="o" * 32,
            )
        )
    card = payment_providers.clean_card(SUCCESS_CARD, "12/29", "123", TODAY)

    def buy(key: str, address: str, user_id: int | None) -> payments.CheckoutResult:
        request = dataclasses.replace(item(product), email=address, user_id=user_id)
        return payments.checkout(
            core.db,
            SandboxProvider(core.db),
            items=[request],
            card=card,
            idempotency_key=key,
            email_address=address,
            user_id=user_id,
            receipt=RECEIPT,
            backend=email.OutboxBackend(),
            now=NOW,
        )

    assert buy("someone-else", "kim@example.com", None).status == "sold_out"
    paid = buy("the-offered-buyer", "sam@example.com", holder.id if holder else None)
    assert paid.paid and paid.permits[0].status == "active" and paid.permits[0].plates == ("ABC 123",)
    assert paid.permits[0].lot_name == "Visitor Lot" and paid.permits[0].product_name == "Hourly"
    with core.db.session() as s:
        assert s.scalar(select(WaitlistEntry.status)) == WaitlistStatus.FULFILLED
    assert count(core, SandboxCharge.id) == 1


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


# --- pending payments: asking the processor ------------------------------------------------------


def reserve_only(core, product, key: str = "lost", charge: bool = False) -> int:
    """A checkout whose process died after reserving (and, with ``charge``, after charging)."""
    with core.db.session() as s:
        held = permits.reserve(s, item(product), NOW)
        payment = Payment(
            idempotency_key=key,
            provider="sandbox",
            amount_cents=500,
            payer_email="sam@example.com",
            created_at=NOW,
        )
        payment.allocations = [PaymentAllocation(permit_id=held.id, amount_cents=500)]
        s.add(payment)
    if charge:
        card = payment_providers.clean_card(SUCCESS_CARD, "12/29", "123", TODAY)
        assert (
            SandboxProvider(core.db)
            .charge(amount_cents=500, currency="CAD", card=card, idempotency_key=key, description="permit")
            .succeeded
        )
    return held.id


def reconcile(core, at: datetime) -> payments.Reconciled:
    return payments.reconcile_pending(core.db, at, receipt=RECEIPT, backend=email.OutboxBackend())


def test_a_checkout_that_died_before_charging_is_released_once_the_key_is_cancelled(core, product):
    held = reserve_only(core, product)
    assert reconcile(core, NOW + timedelta(minutes=1)) == payments.Reconciled(0, 0, 1)  # may be running
    assert reconcile(core, NOW + payments.ABANDONED_AFTER) == payments.Reconciled(0, 1, 0)
    with core.db.session() as s:
        assert s.scalar(select(Payment.status)) == PaymentStatus.FAILED
        assert s.get(Permit, held).status == PermitStatus.CANCELLED
        assert s.scalar(select(SandboxCharge.message).where(SandboxCharge.idempotency_key == "lost")) == (
            payments.CANCELLED
        )
    late = pay(core, product, key="lost")  # the form comes back after all: told, not charged
    assert late.status == "failed" and "nothing was charged" in late.message and charged(core) == 0


def test_a_checkout_that_died_after_charging_is_settled_not_failed(core, product):
    """The reported fault: charged, never settled; the task used to fail it and cancel the permit."""
    held = reserve_only(core, product, charge=True)
    assert reconcile(core, NOW + permits.HOLD + timedelta(minutes=5)) == payments.Reconciled(1, 0, 0)
    assert reconcile(core, NOW + permits.HOLD + timedelta(minutes=6)) == payments.Reconciled(0, 0, 0)
    with core.db.session() as s:
        payment = s.scalar(select(Payment))
        assert payment.status == PaymentStatus.SUCCEEDED and payment.receipt_token
        assert s.get(Permit, held).status == PermitStatus.ACTIVE
        assert s.scalar(select(func.count(OutboxMessage.id))) == 1
    again = pay(core, product, key="lost")  # the buyer reloads and pays with the same form
    assert again.paid and again.receipt_token == payment.receipt_token and charged(core) == 1


def test_a_charge_nobody_can_confirm_stays_pending_and_keeps_its_permit(core, product, monkeypatch):
    """The processor cannot be asked: the payment stays pending (never "nothing was charged"),
    and its hold is not cancelled when the hold lapses, until the processor answers."""
    monkeypatch.setattr(payments, "RETRY_DELAYS", (0.01, 0.01))
    held = reserve_only(core, product, charge=True)
    later = NOW + permits.HOLD + timedelta(minutes=5)
    with DropConnection(core.db, "sandbox_charges", times=None) as processor_down:
        assert reconcile(core, later) == payments.Reconciled(0, 0, 1)
        told = pay(core, product, key="lost")
    assert processor_down.fired >= 2
    assert told.status == "in_progress" and "nothing" not in told.message.lower()
    with core.db.session() as s:
        assert s.scalar(select(Payment.status)) == PaymentStatus.PENDING
        assert s.get(Permit, held).status == PermitStatus.PENDING
    assert reconcile(core, later) == payments.Reconciled(1, 0, 0)
    with core.db.session() as s:
        assert s.get(Permit, held).status == PermitStatus.ACTIVE


# --- dropped database connections at each step of a checkout -------------------------------------
#
# On PostgreSQL (the service run) each drop terminates the connection's server process for real
# (tests/faults.py); on SQLite the driver's error is raised at the same statement.


def assert_sold_once(core, result) -> None:
    """Paid, one charge, the permit active, one receipt, and the answer is the one recorded."""
    assert result.paid, result
    assert charged(core) == 1
    with core.db.session() as s:
        payment = s.scalar(select(Payment))
        assert payment.status == PaymentStatus.SUCCEEDED and payment.receipt_token == result.receipt_token
        assert s.scalar(select(Permit.status)) == PermitStatus.ACTIVE
        assert s.scalar(select(func.count(OutboxMessage.id))) == 1
    assert [p.status for p in result.permits] == ["active"]


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"statement": "^INSERT INTO payments"}, id="reserving, before the charge"),
        pytest.param({"statement": "^INSERT INTO payments", "commit": True}, id="reserve's COMMIT"),
        pytest.param(
            {"statement": "^INSERT INTO payments", "answer_lost": True},
            id="reserving, the COMMIT's answer lost",
        ),
        pytest.param(
            {"statement": "payments", "after": "^INSERT INTO sandbox_charges"},
            id="after the charge, at the first statement of settling",
        ),
        pytest.param({"statement": "^UPDATE permits"}, id="settling, activating the permit"),
        pytest.param({"statement": "^INSERT INTO outbox_messages"}, id="settling, queueing the receipt"),
        pytest.param({"statement": "^INSERT INTO outbox_messages", "commit": True}, id="settle's COMMIT"),
        pytest.param(
            {"statement": "^INSERT INTO outbox_messages", "answer_lost": True},
            id="after settling, the COMMIT's answer lost",
        ),
        pytest.param(
            {"statement": "^INSERT INTO sandbox_charges", "answer_lost": True},
            id="the processor charged, its answer lost",
        ),
    ],
)
def test_a_dropped_connection_at_any_step_still_sells_once(core, product, fault):
    with DropConnection(core.db, **fault) as drop:
        result = pay(core, product)
    assert drop.fired == 1, drop.statements
    assert_sold_once(core, result)
    again = pay(core, product)  # a resubmission of the same form
    assert again.paid and again.receipt_token == result.receipt_token
    assert charged(core) == 1 and count(core, OutboxMessage.id) == 1


def test_a_drop_before_the_processor_charged_is_not_charged_and_the_key_is_spent(core, product):
    with DropConnection(core.db, "^INSERT INTO sandbox_charges") as drop:
        result = pay(core, product)
    assert drop.fired == 1
    assert result.status == "failed" and "not charged" in result.message and charged(core) == 0
    with core.db.session() as s:
        assert s.scalar(select(Permit.status)) == PermitStatus.CANCELLED
    assert pay(core, product).status == "failed"  # the same key stays spent: never charged later
    assert pay(core, product, key="form-key-2").paid and charged(core) == 1


def test_settling_that_keeps_failing_is_confirmed_later_never_not_charged(core, product, monkeypatch):
    monkeypatch.setattr(payments, "RETRY_DELAYS", (0.01, 0.01))
    with DropConnection(core.db, "payments", after="^INSERT INTO sandbox_charges", times=None) as drop:
        result = pay(core, product)
        resubmitted = pay(core, product)
    assert drop.fired >= 3
    assert result.status == "in_progress" and resubmitted.status == "busy"  # nothing can be read
    for told in (result, resubmitted):
        assert "charged twice" in told.message
        assert "nothing" not in told.message.lower() and "not charged" not in told.message
    with core.db.session() as s:
        assert s.scalar(select(Payment.status)) == PaymentStatus.PENDING
        assert s.scalar(select(Permit.status)) == PermitStatus.PENDING
    later = pay(core, product)  # the database is back; the buyer presses Pay again
    assert_sold_once(core, later)


@pytest.mark.services  # PostgreSQL: its backends are terminated
def test_checkouts_survive_backends_terminated_while_they_run(core, product, monkeypatch):
    """The reported run: guests pay with 4242 while PostgreSQL backends are being terminated. Each
    buyer does what the page lets them: the same form again after "being confirmed" or "briefly
    unavailable", a new form after a final answer. Then the Waitlist Offers task's reconciling.
    Every card charged has its permit; nothing is charged twice; nobody charged is told otherwise."""
    monkeypatch.setattr(payments, "RETRY_DELAYS", (0.02, 0.1, 0.3))
    with core.db.session() as s:
        s.get(Lot, product.lot_id).capacity = 100
    url = core.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    buyers, told, killed = 8, [], []
    stop = threading.Event()

    def kill() -> None:
        with psycopg.connect(url, autocommit=True) as admin:
            while not stop.is_set():
                pids = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                ).fetchall()
                for (pid,) in pids:
                    if admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]:
                        killed.append(pid)
                stop.wait(0.03)

    def buyer(number: int) -> None:
        key, attempts = f"buyer-{number}-1", 1
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                result = pay(core, product, key=key, plate=f"BUY {number:03d}")
            except Exception as exc:  # noqa: BLE001 (a crash is what the test must not see)
                told.append((number, key, f"raised {exc!r}"))
                return
            told.append((number, key, result.status, result.message))
            if result.paid:
                return
            if result.settled:  # a final answer: the page gives a new form
                attempts += 1
                key = f"buyer-{number}-{attempts}"
            else:  # "being confirmed" or "briefly unavailable": Pay again in a moment
                time.sleep(0.05)

    killer = threading.Thread(target=kill)
    threads = [threading.Thread(target=buyer, args=(n,)) for n in range(buyers)]
    killer.start()
    for thread in threads:
        thread.start()
    stop.wait(4)  # backends are terminated during 4 seconds of checkouts
    stop.set()
    killer.join(timeout=10)
    for thread in threads:
        thread.join(timeout=120)
    assert not [t for t in told if t[2].startswith("raised")], told
    assert len(killed) > buyers, "the run must really have lost connections"
    reconcile(core, datetime.now(UTC) + payments.ABANDONED_AFTER)

    with core.db.session() as s:
        charges = s.scalars(
            select(SandboxCharge).where(SandboxCharge.status == PaymentStatus.SUCCEEDED)
        ).all()
        by_key = {p.idempotency_key: p for p in s.scalars(select(Payment))}
        assert not [p for p in by_key.values() if p.status == PaymentStatus.PENDING]
        for charge in charges:
            payment = by_key[charge.idempotency_key]
            assert payment.status == PaymentStatus.SUCCEEDED, payment.idempotency_key
            statuses = {s.get(Permit, a.permit_id).status for a in payment.allocations}
            assert statuses == {PermitStatus.ACTIVE}, payment.idempotency_key
        charged_buyers = [charge.idempotency_key.split("-")[1] for charge in charges]
        assert len(charged_buyers) == len(set(charged_buyers)), "a buyer was charged twice"
        assert s.scalar(select(func.count(OutboxMessage.id))) == len(charges)  # one receipt each
    charged_keys = {charge.idempotency_key for charge in charges}
    lied_to = [t for t in told if t[1] in charged_keys and t[2] in ("failed", "declined")]
    assert not lied_to, lied_to
    assert {number for number, *_ in told} == set(range(buyers))
    assert {t[0] for t in told if t[2] == "paid"} == set(range(buyers))  # everyone got their permit
