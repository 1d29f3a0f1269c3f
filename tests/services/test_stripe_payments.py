"""Stripe as the card processor, with the real ``stripe`` library against a local Stripe
(``tests/stripe_fake.py``) and webhooks posted to ``POST /hooks/stripe`` signed as Stripe signs
them: paid, declined (and another card tried), 3-D Secure, the webhook lost (settled by asking
Stripe on return and in the reconcile task), repeated and out of order, the buyer leaving Stripe's
page, the page never finished, refunds; bad and stale signatures refused. The buyer is never
told "paid" before Stripe says so, nor "nothing charged" while a charge may still happen."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from dashboard.services import email, payments, permits, stripe_payments, system_settings
from dashboard.services.payments import ReceiptContext
from dashboard.services.permits import PermitRequest
from dashboard.services.plates import clean_plate
from models import (
    Lot,
    OutboxMessage,
    Payment,
    PaymentStatus,
    Permit,
    PermitKind,
    PermitProduct,
    PermitStatus,
    Pricing,
    ProcessorEvent,
    SystemSetting,
)
from tests.stripe_fake import (
    DECLINED_CARD,
    PUBLISHABLE_KEY,
    SECRET_KEY,
    SUCCESS_CARD,
    THREE_D_SECURE_CARD,
    WEBHOOK_SECRET,
    FakeStripe,
    sign,
    stripe_server,
)

RECEIPT = ReceiptContext(
    name="Sam", site_name="Campus", base_url="https://parking.test", tz=ZoneInfo("America/Toronto")
)
RETURN_URL = "https://parking.test/checkout/temp/1"


def configure(core, api_base: str, **more: str) -> None:
    values = {
        "payment_processor": "stripe",
        "stripe_secret_key": SECRET_KEY,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "stripe_publishable_key": PUBLISHABLE_KEY,
        "stripe_api_base": api_base,
        **more,
    }
    with core.db.session() as s:
        system_settings.update(s, core.secrets, values, actor_id=None)


@pytest.fixture
def fake(core, client) -> Iterator[FakeStripe]:
    with stripe_server() as stripe_fake:
        configure(core, stripe_fake.base)

        def deliver(payload: bytes, header: str):
            return client.post(
                "/hooks/stripe",
                data=payload,
                headers={"Stripe-Signature": header},
                content_type="application/json",
            )

        stripe_fake.deliver = deliver
        yield stripe_fake


@pytest.fixture
def provider(core, fake) -> stripe_payments.StripeProvider:
    return stripe_payments.configured(core.db, core.secrets)


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


def now() -> datetime:
    return datetime.now(UTC)  # webhooks are stamped with the real time


def item(product: PermitProduct, start: datetime, plate: str = "ABC 123") -> PermitRequest:
    return PermitRequest(
        lot_id=product.lot_id,
        product_id=product.id,
        plates=(clean_plate(plate),),
        valid_from=start,
        valid_to=start + timedelta(hours=2),
        amount_cents=500,
        currency="CAD",
        email="sam@example.com",
        user_id=None,
    )


def start(core, provider, product, key: str = "form-key-1", at: datetime | None = None):
    moment = at or now()
    return payments.checkout(
        core.db,
        provider,
        items=[item(product, moment)],
        idempotency_key=key,
        email_address="sam@example.com",
        user_id=None,
        receipt=RECEIPT,
        backend=email.OutboxBackend(),
        now=moment,
        return_url=RETURN_URL,
        secrets=core.secrets,
    )


def resume(core, provider, key: str = "form-key-1", at: datetime | None = None):
    return payments.resume(
        core.db, provider, key, receipt=RECEIPT, backend=email.OutboxBackend(), now=at or now()
    )


def payment(core) -> Payment:
    with core.db.session() as s:
        return s.scalar(select(Payment))


def permit_status(core) -> PermitStatus:
    with core.db.session() as s:
        return s.scalar(select(Permit.status))


def receipts(core) -> int:
    with core.db.session() as s:
        return s.scalar(select(func.count(OutboxMessage.id)))


def test_paying_on_stripes_page_settles_through_the_webhook(core, fake, provider, product):
    result = start(core, provider, product)
    session_id = fake.only_session()
    assert result.status == "redirect" and result.redirect_url == f"{fake.base}/pay/{session_id}"
    method, path, form, key = fake.requests[0]
    assert (method, path, key) == ("POST", "/v1/checkout/sessions", "form-key-1")  # Stripe's idempotency key
    assert form["line_items[0][price_data][unit_amount]"] == "500"  # integer cents
    assert form["line_items[0][price_data][currency]"] == "cad"
    assert form["success_url"] == RETURN_URL + "?payment=return"
    assert form["cancel_url"] == RETURN_URL + "?payment=cancel"
    assert not any("card" in field and "number" in field for field in form)  # no card through ParkOps

    # Before paying: not paid, and the space is held for the buyer.
    assert resume(core, provider).status == "in_progress"
    assert payment(core).status == PaymentStatus.PENDING and payment(core).provider_ref == session_id
    assert permit_status(core) == PermitStatus.PENDING

    assert fake.pay(session_id, SUCCESS_CARD) == "paid"  # the webhooks go to /hooks/stripe
    paid = payment(core)
    assert paid.status == PaymentStatus.SUCCEEDED and paid.card_last4 is None
    assert paid.provider_ref == fake.sessions[session_id]["payment_intent"]  # refunds go to the intent
    assert permit_status(core) == PermitStatus.ACTIVE and receipts(core) == 1
    back = resume(core, provider)
    assert back.paid and back.receipt_token == paid.receipt_token
    assert receipts(core) == 1


def test_a_second_press_goes_back_to_the_same_stripe_page(core, fake, provider, product):
    first = start(core, provider, product)
    again = start(core, provider, product)
    assert again.status == "redirect" and again.redirect_url == first.redirect_url
    assert len(fake.sessions) == 1
    with core.db.session() as s:
        assert s.scalar(select(func.count(Permit.id))) == 1


def test_a_declined_card_may_be_retried_on_stripes_page(core, fake, provider, product):
    start(core, provider, product)
    session_id = fake.only_session()
    assert fake.pay(session_id, DECLINED_CARD) == "declined"
    # Stripe's page says so; the session is still open, so ParkOps says neither paid nor unpaid.
    after_decline = resume(core, provider)
    assert after_decline.status == "in_progress" and "not been completed" in after_decline.message
    assert payment(core).status == PaymentStatus.PENDING
    assert fake.pay(session_id, SUCCESS_CARD) == "paid"
    assert payment(core).status == PaymentStatus.SUCCEEDED and resume(core, provider).paid


def test_declined_then_leaving_stripes_page_releases_the_hold(core, fake, provider, product):
    start(core, provider, product)
    session_id = fake.only_session()
    fake.pay(session_id, DECLINED_CARD)
    left = payments.abandon(
        core.db, provider, "form-key-1", receipt=RECEIPT, backend=email.OutboxBackend(), now=now()
    )
    assert left.status == "declined" and left.message == "Your card was declined."
    assert fake.sessions[session_id]["status"] == "expired"  # no payment can happen on it any more
    assert payment(core).status == PaymentStatus.DECLINED
    assert permit_status(core) == PermitStatus.CANCELLED and receipts(core) == 0


def test_leaving_stripes_page_without_paying_charges_nothing(core, fake, provider, product):
    start(core, provider, product)
    left = payments.abandon(
        core.db, provider, "form-key-1", receipt=RECEIPT, backend=email.OutboxBackend(), now=now()
    )
    assert left.status == "failed" and left.message == payments.LEFT_PAGE
    assert fake.sessions[fake.only_session()]["status"] == "expired"
    assert permit_status(core) == PermitStatus.CANCELLED


def test_paid_just_before_the_back_link_counts_as_paid(core, fake, provider, product):
    fake.deliver = None  # the webhook has not arrived yet
    start(core, provider, product)
    fake.pay(fake.only_session(), SUCCESS_CARD)
    left = payments.abandon(
        core.db, provider, "form-key-1", receipt=RECEIPT, backend=email.OutboxBackend(), now=now()
    )
    assert left.paid and payment(core).status == PaymentStatus.SUCCEEDED


def test_3d_secure_waits_for_the_bank(core, fake, provider, product):
    start(core, provider, product)
    session_id = fake.only_session()
    assert fake.pay(session_id, THREE_D_SECURE_CARD) == "3ds"
    assert resume(core, provider).status == "in_progress"  # never "paid" before the bank says so
    assert payment(core).status == PaymentStatus.PENDING
    assert fake.authenticate(session_id, approve=True) == "paid"
    assert resume(core, provider).paid and receipts(core) == 1


def test_3d_secure_refused_is_declined_once_the_page_closes(core, fake, provider, product):
    start(core, provider, product)
    session_id = fake.only_session()
    fake.pay(session_id, THREE_D_SECURE_CARD)
    assert fake.authenticate(session_id, approve=False) == "declined"
    assert resume(core, provider).status == "in_progress"
    fake.expire(session_id)  # Stripe closes the page after its lifetime; the expiry webhook settles
    assert payment(core).status == PaymentStatus.DECLINED
    assert "unable to authenticate" in payment(core).message
    assert permit_status(core) == PermitStatus.CANCELLED


def test_a_lost_webhook_is_settled_when_the_buyer_returns(core, fake, provider, product):
    fake.deliver = None
    start(core, provider, product)
    fake.pay(fake.only_session(), SUCCESS_CARD)
    assert payment(core).status == PaymentStatus.PENDING
    back = resume(core, provider)  # the success URL: the page asks Stripe
    assert back.paid and permit_status(core) == PermitStatus.ACTIVE and receipts(core) == 1


def test_a_lost_webhook_and_no_return_are_settled_by_the_reconcile_task(core, fake, provider, product):
    fake.deliver = None
    start(core, provider, product)
    fake.pay(fake.only_session(), SUCCESS_CARD)
    done = payments.reconcile_pending(
        core.db, now(), receipt=RECEIPT, backend=email.OutboxBackend(), secrets=core.secrets
    )
    assert (done.settled, done.released, done.waiting) == (1, 0, 0)
    assert payment(core).status == PaymentStatus.SUCCEEDED and receipts(core) == 1


def test_an_unfinished_page_keeps_its_space_then_is_closed_by_the_reconcile_task(
    core, fake, provider, product
):
    began = now()
    start(core, provider, product, at=began)
    later = began + timedelta(minutes=20)  # past the 15-minute hold, still on Stripe's page
    with core.db.session() as s:
        assert (
            permits.lot_availability(s, product.lot_id, later, later + timedelta(hours=1), later).available
            == 0
        )
    waiting = payments.reconcile_pending(
        core.db, later, receipt=RECEIPT, backend=email.OutboxBackend(), secrets=core.secrets
    )
    assert waiting.waiting == 1 and payment(core).status == PaymentStatus.PENDING
    closed = payments.reconcile_pending(
        core.db,
        began + stripe_payments.ABANDONED_AFTER + timedelta(minutes=1),
        receipt=RECEIPT,
        backend=email.OutboxBackend(),
        secrets=core.secrets,
    )
    assert closed.released == 1 and payment(core).status == PaymentStatus.FAILED
    assert fake.sessions[fake.only_session()]["status"] == "expired"
    assert permit_status(core) == PermitStatus.CANCELLED


def test_repeated_and_out_of_order_webhooks_settle_once(core, fake, provider, product):
    deliver, fake.deliver = fake.deliver, None
    start(core, provider, product)
    session_id = fake.only_session()
    fake.pay(session_id, DECLINED_CARD)
    fake.pay(session_id, SUCCESS_CARD)
    kinds = [e["type"] for e in fake.events]
    assert kinds == [
        "payment_intent.payment_failed",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    fake.deliver = deliver
    answers = [fake.post(e) for e in reversed(fake.events)]  # completed first, the failure last
    assert [a.json["action"] for a in answers] == ["paid", "paid", "paid"]
    repeat = fake.post(fake.events_of("checkout.session.completed")[0])
    assert repeat.status_code == 200 and repeat.json["action"] == "duplicate"
    assert payment(core).status == PaymentStatus.SUCCEEDED and receipts(core) == 1
    with core.db.session() as s:
        assert s.scalar(select(func.count(ProcessorEvent.id))) == 3


def test_refunds_go_through_stripe(core, fake, provider, product):
    start(core, provider, product)
    session_id = fake.only_session()
    fake.pay(session_id, SUCCESS_CARD)
    paid = payment(core)
    partial = payments.refund(
        core.db, provider, payment_id=paid.id, amount_cents=200, reason="left early", actor_id=None
    )
    assert partial == PaymentStatus.PARTIALLY_REFUNDED
    rest = payments.refund(
        core.db, provider, payment_id=paid.id, amount_cents=300, reason="closed", actor_id=None
    )
    assert rest == PaymentStatus.REFUNDED and permit_status(core) == PermitStatus.CANCELLED
    intent = fake.intents[fake.sessions[session_id]["payment_intent"]]
    assert intent["amount_refunded"] == 500
    assert sorted(r["amount"] for r in fake.refunds.values()) == [200, 300]
    refund_keys = [key for method, path, _form, key in fake.requests if path == "/v1/refunds"]
    assert len(refund_keys) == 2 and all(k.startswith("refund-") for k in refund_keys)


def test_a_refund_stripe_refuses_is_recorded_as_failed(core, fake, provider, product):
    start(core, provider, product)
    fake.pay(fake.only_session(), SUCCESS_CARD)
    paid = payment(core)
    fake.intents[paid.provider_ref]["amount_refunded"] = 500  # refunded in Stripe's dashboard meanwhile
    answer = payments.refund(
        core.db, provider, payment_id=paid.id, amount_cents=100, reason="x", actor_id=None
    )
    assert answer == PaymentStatus.FAILED and payment(core).status == PaymentStatus.SUCCEEDED


@pytest.mark.parametrize(
    "spoil",
    [
        lambda payload: (payload, sign(payload, "whsec_someone_else")),  # wrong secret
        lambda payload: (payload.replace(b'"paid"', b'"unpaid"'), sign(payload)),  # body changed
        lambda payload: (payload, sign(payload, timestamp=int(datetime.now(UTC).timestamp()) - 600)),  # stale
        lambda payload: (payload, "t=1,v1=nonsense"),
        lambda payload: (payload, None),
    ],
)
def test_the_webhook_refuses_what_stripe_did_not_just_sign(client, core, fake, provider, product, spoil):
    fake.deliver = None
    start(core, provider, product)
    fake.pay(fake.only_session(), SUCCESS_CARD)
    body, header = spoil(json.dumps(fake.events_of("checkout.session.completed")[0]).encode())
    headers = {"Stripe-Signature": header} if header else {}
    answer = client.post("/hooks/stripe", data=body, headers=headers, content_type="application/json")
    assert answer.status_code == 400
    assert payment(core).status == PaymentStatus.PENDING and receipts(core) == 0


def test_a_signed_body_that_is_not_an_event_is_refused(client, fake):
    answer = client.post(
        "/hooks/stripe",
        data=b"not json",
        headers={"Stripe-Signature": sign(b"not json")},
        content_type="text/plain",
    )
    assert answer.status_code == 400


def test_the_webhook_answers_503_while_stripe_is_not_set_up(client, core):
    payload = b'{"id": "evt_1", "type": "checkout.session.completed"}'
    answer = client.post("/hooks/stripe", data=payload, headers={"Stripe-Signature": sign(payload)})
    assert answer.status_code == 503


def test_events_about_other_things_are_acknowledged_and_ignored(core, fake, provider, product):
    event = {
        "id": "evt_other",
        "object": "event",
        "type": "customer.created",
        "data": {"object": {"id": "cus_1"}},
    }
    assert fake.post(event).json["action"] == "ignored"
    foreign = {
        "id": "evt_foreign",
        "object": "event",
        "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_x", "object": "checkout.session", "metadata": {"parkops_key": "nope"}}},
    }
    assert fake.post(foreign).json["action"] == "ignored"


def test_stripe_unreachable_when_opening_the_page_charges_nothing(core, product, monkeypatch):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    configure(core, f"http://127.0.0.1:{port}")
    monkeypatch.setattr(payments, "RETRY_DELAYS", (0.01,))
    provider = stripe_payments.configured(core.db, core.secrets)
    provider.client = type(provider.client)(
        SECRET_KEY, base_addresses={"api": f"http://127.0.0.1:{port}"}, max_network_retries=0
    )
    result = start(core, provider, product)
    assert result.status == "failed" and result.message == payments.PROCESSOR_DOWN
    assert permit_status(core) == PermitStatus.CANCELLED


def test_keys_of_mixed_modes_or_missing_keys_are_refused(core):
    configure(core, "https://api.stripe.com", stripe_publishable_key="pk_live_mixed")
    with pytest.raises(stripe_payments.NotConfigured, match="same mode"):
        stripe_payments.configured(core.db, core.secrets)
    with core.db.session() as s:
        system_settings.update(s, core.secrets, {}, actor_id=None, clear=["stripe_secret_key"])
    with pytest.raises(stripe_payments.NotConfigured, match="secret key"):
        payments.provider_for("stripe", core.db, core.secrets)


def test_the_keys_are_stored_encrypted_and_shown_masked(core, fake):
    with core.db.session() as s:
        shown = system_settings.form_values(s, core.secrets, system_settings.THIRD_PARTY)
        stored = {r.key: r.value for r in s.scalars(select(SystemSetting))}
    for key, secret in (("stripe_secret_key", SECRET_KEY), ("stripe_webhook_secret", WEBHOOK_SECRET)):
        assert secret not in str(shown[key]) and secret not in stored[key]


def test_a_refund_goes_to_the_processor_the_payment_was_made_with(core, fake, provider, product):
    start(core, provider, product)
    fake.pay(fake.only_session(), SUCCESS_CARD)
    paid = payment(core)
    sandbox = payments.SandboxProvider(core.db)  # the processor chosen now
    status = payments.refund(
        core.db,
        sandbox,
        payment_id=paid.id,
        amount_cents=500,
        reason="x",
        actor_id=None,
        secrets=core.secrets,
    )
    assert status == PaymentStatus.REFUNDED and [r["amount"] for r in fake.refunds.values()] == [500]


def test_stripe_unreachable_after_the_payment_never_says_nothing_was_charged(
    core, fake, provider, product, monkeypatch
):
    fake.deliver = None
    start(core, provider, product)
    fake.pay(fake.only_session(), SUCCESS_CARD)  # charged; then Stripe cannot be reached
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setattr(payments, "RETRY_DELAYS", (0.01,))
    provider.client = type(provider.client)(
        SECRET_KEY, base_addresses={"api": f"http://127.0.0.1:{port}"}, max_network_retries=0
    )
    for answer in (
        resume(core, provider),
        payments.abandon(
            core.db, provider, "form-key-1", receipt=RECEIPT, backend=email.OutboxBackend(), now=now()
        ),
    ):
        assert answer.status == "in_progress" and answer.message == payments.CONFIRMING
    assert payment(core).status == PaymentStatus.PENDING and permit_status(core) == PermitStatus.PENDING
