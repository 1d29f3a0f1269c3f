"""Check a Plate (/officer/check) over HTTP: officers get the answer and its reason; users and
guests get nothing, not even the list of lots; the holds of unpaid checkouts are not permits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dashboard.services import email, payment_providers, payments, permits
from dashboard.services.payments import (
    DECLINED_CARD,
    NETWORK_ERROR_CARD,
    SUCCESS_CARD,
    ReceiptContext,
    SandboxProvider,
)
from dashboard.services.permits import ExternalPermit, Partner, PermitRequest
from dashboard.services.plates import clean_plate
from models import (
    Lot,
    Payment,
    PaymentAllocation,
    Permit,
    PermitKind,
    PermitProduct,
    PermitVehicle,
    Pricing,
    Role,
)
from tests.dash_helpers import dash_post, find_output, outputs_of

RESULT = "check-result.children"


@pytest.fixture
def lot(session) -> int:
    row = Lot(name="Visitor Lot", code="V1", capacity=10)
    session.add_all([row, Lot(name="Old Lot", capacity=1, is_active=False)])
    session.flush()
    now = datetime.now(UTC)
    permits.record_external_permit(
        session,
        ExternalPermit(
            source="paystation",
            external_id="PD-1",
            plate="abc 123",
            lot="V1",
            start=now - timedelta(minutes=5),
            end=now + timedelta(hours=1),
            amount_cents=300,
        ),
        partner=Partner(frozenset({"paystation"})),
        now=now,
    )
    session.commit()
    return row.id


def ask(client, app, plate, lot_id):
    return dash_post(
        client, app, find_output(app, RESULT), [1, None], [plate, lot_id], triggered="check-submit.n_clicks"
    )


def test_an_officer_gets_a_valid_answer_with_its_reason(app, login_as, lot):
    officer = login_as(Role.OFFICER)
    assert officer.get("/officer/check").status_code == 200
    out = outputs_of(ask(officer, app, "ABC-123", lot))
    text = json.dumps(out["check-result"]["children"])
    assert "VALID" in text and "NOT VALID" not in text and "for this lot" in text
    assert out["check-lot-memory"]["data"] == lot


def test_an_unknown_plate_is_not_valid_and_bad_input_is_explained(app, login_as, lot):
    officer = login_as(Role.OFFICER)
    text = json.dumps(outputs_of(ask(officer, app, "ZZZ 999", lot)))
    assert "NOT VALID" in text and "no permit or paid session" in text
    assert "Choose the lot first" in json.dumps(outputs_of(ask(officer, app, "ABC123", None)))
    assert "Enter the licence plate" in json.dumps(outputs_of(ask(officer, app, " ", lot)))


def test_the_lot_list_holds_active_lots_only(app, login_as, lot):
    out = outputs_of(
        dash_post(login_as(Role.OFFICER), app, find_output(app, "check-lot.options"), [None], [lot])
    )
    assert [o["label"] for o in out["check-lot"]["options"]] == ["Visitor Lot (V1)"]
    assert out["check-lot"]["value"] == lot


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403)])
def test_lower_roles_get_nothing(app, login_as, lot, role, status):
    client = login_as(role)
    assert client.get("/officer/check").status_code == (302 if role is Role.GUEST else 403)
    assert ask(client, app, "ABC123", lot).status_code == status
    assert dash_post(client, app, find_output(app, "check-lot.options"), [None], [None]).status_code == status


def sell(core, lot_id: int, plate: str, card: str, key: str) -> payments.CheckoutResult:
    """A guest's quick checkout of a temporary permit in the lot, as the page runs it."""
    now = datetime.now(UTC)
    with core.db.session() as s:
        email.ensure_default_templates(s)
        s.get(Lot, lot_id).sells_temporary = True
        product = s.scalar(select(PermitProduct).where(PermitProduct.lot_id == lot_id))
        if product is None:
            product = PermitProduct(
                lot_id=lot_id,
                kind=PermitKind.TEMPORARY,
                name="Hourly",
                pricing=Pricing.HOURLY,
                price_cents=300,
            )
            s.add(product)
            s.flush()
        product_id = product.id
    request = PermitRequest(
        lot_id=lot_id,
        product_id=product_id,
        plates=(clean_plate(plate),),
        valid_from=now - timedelta(minutes=1),
        valid_to=now + timedelta(hours=1),
        amount_cents=300,
        currency="CAD",
        email="driver@example.com",
        user_id=None,
    )
    return payments.checkout(
        core.db,
        SandboxProvider(core.db),
        items=[request],
        card=payment_providers.clean_card(card, f"12/{(now.year + 2) % 100}", "123", now.date()),
        idempotency_key=key,
        email_address="driver@example.com",
        user_id=None,
        receipt=ReceiptContext("Driver", "Campus", "http://localhost", core.settings.tz),
        backend=email.OutboxBackend(),
        now=now,
    )


def test_holds_of_unpaid_checkouts_are_not_permits_an_officer_sees(app, core, login_as, lot):
    """A declined card, a processor error and a checkout still at the card step leave holds (a
    cancelled or a pending permit): the plate simply has no permit. A refunded permit was one, and
    still reads as cancelled."""
    declined = sell(core, lot, "DEC 404", DECLINED_CARD, "declined")
    failed = sell(core, lot, "ERR 303", NETWORK_ERROR_CARD, "failed")
    with core.db.session() as s:  # a checkout at the card step: its hold and pending payment
        now = datetime.now(UTC)
        product_id = s.scalar(select(PermitProduct.id).where(PermitProduct.lot_id == lot))
        plates = (clean_plate("PEN 505"),)
        request = PermitRequest(
            lot, product_id, plates, now, now + timedelta(hours=1), 300, "CAD", None, None
        )
        held = permits.reserve(s, request, now)
        s.add(
            Payment(
                idempotency_key="at-the-card-step",
                provider="sandbox",
                amount_cents=300,
                allocations=[PaymentAllocation(permit_id=held.id, amount_cents=300)],
            )
        )
    paid = sell(core, lot, "REF 606", SUCCESS_CARD, "refunded")
    payments.refund(
        core.db,
        SandboxProvider(core.db),
        payment_id=paid.payment_id,
        amount_cents=300,
        reason="",
        actor_id=None,
    )
    officer = login_as(Role.OFFICER)
    with core.db.session() as s:
        holds = {
            plate: s.scalar(
                select(Permit.number).join(PermitVehicle).where(PermitVehicle.plate_normalized == plate)
            )
            for plate in ("DEC404", "ERR303", "PEN505")
        }
    assert declined.status == "declined" and failed.status == "failed" and held.status == "pending"
    for plate, number in holds.items():
        text = json.dumps(outputs_of(ask(officer, app, plate, lot)))
        assert "NOT VALID" in text and "no permit or paid session here now" in text, text
        assert number not in text and "cancelled" not in text and "pending" not in text
    refunded = json.dumps(outputs_of(ask(officer, app, "REF 606", lot)))
    assert f"permit {paid.permits[0].number} is cancelled" in refunded
