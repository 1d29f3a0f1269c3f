"""Parking tickets (with a boot's release fee) paid on Stripe's hosted page, with the real ``stripe``
library against the local Stripe (``tests/stripe_fake.py``) and its webhooks posted to
``POST /hooks/stripe``: paid, declined, 3-D Secure, the webhook lost (settled by polling), repeated
and out of order; the boot's release code is mailed once, only after Stripe holds the charge; the
deposit refunded through Stripe's refund API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dashboard.services import boot_deposits, boots, email, payments, reconciliation, violation_payments
from dashboard.services.payments import ReceiptContext, SandboxProvider
from dashboard.services.violation_payments import Scope
from models import (
    Boot,
    BootAssignment,
    OutboxMessage,
    Payment,
    PaymentStatus,
    ProcessorEvent,
    Refund,
    Role,
    Violation,
)
from tests.enforcement import payable_place, write_ticket
from tests.services.test_stripe_payments import fake, provider  # noqa: F401
from tests.stripe_fake import DECLINED_CARD, SUCCESS_CARD, THREE_D_SECURE_CARD

RETURN_URL = "https://parking.test/pay-violation"


@pytest.fixture
def place(core):
    return payable_place(core)


@pytest.fixture
def booted(core, make_user, place):
    officer = make_user(Role.OFFICER)
    return write_ticket(core, officer.id, place, boot_id=place.boot_ids[0])  # 40.00 early + 75.00 boot


def receipt(core) -> ReceiptContext:
    from zoneinfo import ZoneInfo

    return ReceiptContext(
        "Sam", "Campus", "https://parking.test", ZoneInfo("America/Toronto"), core.secrets, "the office"
    )


def start(core, provider, ticket, key: str = "viol-key-1"):  # noqa: F811
    return violation_payments.pay(
        core.db,
        provider,
        Scope(ticket=ticket.ticket_number, plate="ABC 123"),
        [ticket.id],
        "owner@example.com",
        None,
        key,
        receipt=receipt(core),
        backend=email.OutboxBackend(),
        now=datetime.now(UTC),
        require_overdue=False,
        return_url=RETURN_URL,
    )


def resume(core, provider, key: str = "viol-key-1", at: datetime | None = None):  # noqa: F811
    return payments.resume(
        core.db,
        provider,
        key,
        receipt=receipt(core),
        backend=email.OutboxBackend(),
        now=at or datetime.now(UTC),
    )


def release_mails(core) -> int:
    with core.db.session() as s:
        return s.scalar(
            select(func.count(OutboxMessage.id)).where(OutboxMessage.template_key == "boot-release")
        )


def violation_status(core, violation_id: int) -> str:
    with core.db.session() as s:
        return str(s.get(Violation, violation_id).status)


def boot_status(core, boot_id: int) -> str:
    with core.db.session() as s:
        return str(s.get(Boot, boot_id).status)


def test_paid_on_stripes_page_releases_the_boot_once_through_the_webhook(core, fake, provider, booted, place):  # noqa: F811
    sent = start(core, provider, booted)
    assert sent.status == "redirect" and sent.payment.redirect_url == f"{fake.base}/pay/{fake.only_session()}"
    session_id = fake.only_session()
    assert (
        fake.sessions[session_id]["amount_total"] == 11500 and fake.sessions[session_id]["currency"] == "cad"
    )
    assert fake.sessions[session_id]["success_url"] == f"{RETURN_URL}?payment=return"
    assert violation_status(core, booted.id) == "unpaid" and release_mails(core) == 0
    with core.db.session() as s:
        held = violation_payments.guest_violations(s, booted.ticket_number, "ABC 123", datetime.now(UTC))
    assert held[0].reason == "a payment of it is being processed"  # no second payment meanwhile

    posted = []  # the webhooks Stripe sends as the page is paid, answered by /hooks/stripe
    original = fake.deliver

    def deliver(payload: bytes, header: str):
        posted.append(original(payload, header))
        return posted[-1]

    fake.deliver = deliver
    fake.pay(session_id, SUCCESS_CARD)
    assert [r.status_code for r in posted] == [200, 200]
    assert violation_status(core, booted.id) == "paid" and boot_status(core, place.boot_ids[0]) == "released"
    assert release_mails(core) == 1
    with core.db.session() as s:
        mail = s.scalar(select(OutboxMessage).where(OutboxMessage.template_key == "boot-release"))
        assert mail.to_addresses == ["owner@example.com"] and "4801" in mail.body_text

    # Repeated and out of order: the session's completion again, the intent's success after it.
    for event in reversed(fake.events):
        assert fake.post(event).status_code == 200
    assert resume(core, provider).paid
    assert release_mails(core) == 1
    with core.db.session() as s:
        assert s.scalar(select(func.count(ProcessorEvent.id))) == 2


def test_declined_then_the_page_closes_leaves_the_ticket_unpaid_and_says_nothing_charged(
    core,
    fake,  # noqa: F811
    provider,  # noqa: F811
    booted,
    place,
):
    start(core, provider, booted)
    session_id = fake.only_session()
    assert fake.pay(session_id, DECLINED_CARD) == "declined"
    waiting = resume(core, provider)
    assert waiting.status == "in_progress" and "not been completed" in waiting.message  # may try another card
    assert violation_status(core, booted.id) == "unpaid"
    left = payments.abandon(
        core.db,
        provider,
        "viol-key-1",
        receipt=receipt(core),
        backend=email.OutboxBackend(),
        now=datetime.now(UTC),
    )
    assert left.status == "declined" and left.message == "Your card was declined."
    assert violation_status(core, booted.id) == "unpaid" and boot_status(core, place.boot_ids[0]) == "in_use"
    assert release_mails(core) == 0
    again = start(core, provider, booted, key="viol-key-2")  # payable again, a new page
    assert again.status == "redirect" and len(fake.sessions) == 2


def test_3d_secure_waits_for_the_bank_then_pays(core, fake, provider, booted):  # noqa: F811
    start(core, provider, booted)
    session_id = fake.only_session()
    assert fake.pay(session_id, THREE_D_SECURE_CARD) == "3ds"
    assert resume(core, provider).status == "in_progress" and violation_status(core, booted.id) == "unpaid"
    assert fake.authenticate(session_id, approve=True) == "paid"
    assert resume(core, provider).paid and violation_status(core, booted.id) == "paid"
    assert release_mails(core) == 1


def test_a_lost_webhook_is_settled_by_the_reconcile_task(core, fake, provider, booted):  # noqa: F811
    fake.deliver = None  # no webhook arrives
    start(core, provider, booted)
    fake.pay(fake.only_session(), SUCCESS_CARD)
    assert violation_status(core, booted.id) == "unpaid"
    later = datetime.now(UTC) + timedelta(minutes=1)
    for _ in range(2):
        done = payments.reconcile_pending(
            core.db, later, receipt=receipt(core), backend=email.OutboxBackend(), secrets=core.secrets
        )
    assert violation_status(core, booted.id) == "paid" and release_mails(core) == 1
    assert done.settled == 0  # the second run found nothing pending


def test_a_boot_deposit_paid_on_stripe_is_refunded_through_stripes_refund_api(
    core,
    fake,  # noqa: F811
    provider,  # noqa: F811
    booted,
    place,
):
    start(core, provider, booted)
    fake.pay(fake.only_session(), SUCCESS_CARD)
    assert resume(core, provider).paid
    with core.db.session() as s:
        assignment_id = s.scalar(select(BootAssignment.id).where(BootAssignment.violation_id == booted.id))
        boots.mark_returned(s, assignment_id, None, datetime.now(UTC))
    # The processor chosen now is the sandbox: the refund still goes to Stripe, where the money is.
    outcome = boot_deposits.refund_deposit(
        core.db, SandboxProvider(core.db), assignment_id, None, core.secrets
    )
    assert outcome.succeeded and outcome.amount_cents == 7500
    (refund,) = fake.refunds.values()
    intent = next(iter(fake.intents.values()))
    assert refund["payment_intent"] == intent["id"] and refund["amount"] == 7500
    assert intent["amount_refunded"] == 7500
    with core.db.session() as s:
        row = s.scalar(select(Refund))
        assert row.status == PaymentStatus.SUCCEEDED and row.provider_ref == refund["id"]
        assert s.scalar(select(Payment.status)) == PaymentStatus.PARTIALLY_REFUNDED
    with pytest.raises(boot_deposits.NothingToRefund):
        boot_deposits.refund_deposit(core.db, SandboxProvider(core.db), assignment_id, None, core.secrets)
    assert len(fake.refunds) == 1
    # The ledger and Stripe agree on the charge and its refund: reconciliation finds nothing.
    report = reconciliation.run(core.db, core.secrets, datetime.now(UTC) + timedelta(seconds=5))
    assert report.checks[1] == reconciliation.ProviderCheck("stripe", 1, 0, 0)


def test_paid_just_before_the_back_link_is_paid_never_nothing_charged(core, fake, provider, booted):  # noqa: F811
    fake.deliver = None  # the webhook has not arrived yet
    start(core, provider, booted)
    fake.pay(fake.only_session(), SUCCESS_CARD)
    left = payments.abandon(
        core.db,
        provider,
        "viol-key-1",
        receipt=receipt(core),
        backend=email.OutboxBackend(),
        now=datetime.now(UTC),
    )
    assert left.paid and "nothing was charged" not in left.message
    assert violation_status(core, booted.id) == "paid" and release_mails(core) == 1
