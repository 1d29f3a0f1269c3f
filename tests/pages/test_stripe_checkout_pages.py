"""The quick checkout and the cart with Stripe as the processor, over HTTP as the browser calls
them, against the local Stripe (``tests/stripe_fake.py``): no card fields, "Continue to secure
payment" sends the browser to Stripe's page, the return shows "paid" only once Stripe holds the
charge, and Stripe's back link closes the page and says nothing was charged."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from dashboard.services import system_settings
from models import Payment, PaymentStatus, Permit, PermitStatus, Role
from tests.dash_helpers import dash_post, find_output, outputs_of
from tests.pages.test_booking_pages import CART, CART_PAY, PAY, SETUP, add, student, world  # noqa: F401
from tests.services.test_stripe_payments import configure
from tests.stripe_fake import DECLINED_CARD, SUCCESS_CARD, FakeStripe, stripe_server


@pytest.fixture
def fake(core) -> Iterator[FakeStripe]:
    with stripe_server() as stripe_fake:
        configure(core, stripe_fake.base)
        yield stripe_fake  # no webhooks: the return must ask Stripe itself


def setup(client, app, lot_id: int, key: str | None, returned: str | None = None) -> dict:
    return outputs_of(dash_post(client, app, find_output(app, SETUP), [str(lot_id)], [key, returned]))


def quick_pay(client, app, world, key: str) -> dict:  # noqa: F811
    state = [str(world["visitor"]), world["hourly"], "now", "today", None, "120", "dfgh-902", "v@example.com"]
    return outputs_of(dash_post(client, app, find_output(app, PAY), [1], [*state, None, None, None, key]))


def payment(session) -> Payment:
    session.expire_all()
    return session.scalar(select(Payment))


def test_the_quick_checkout_goes_to_stripes_page_and_back(app, login_as, world, fake, session) -> None:  # noqa: F811
    guest = login_as(Role.GUEST)
    shown = setup(guest, app, world["visitor"], None)
    assert shown["checkout-card-fields"]["style"] == {"display": "none"}
    assert shown["checkout-hosted-note"]["style"] == {}
    assert shown["checkout-pay"]["children"] == "Continue to secure payment"
    key = shown["checkout-key"]["data"]

    sent = quick_pay(guest, app, world, key)
    session_id = fake.only_session()
    assert sent["checkout-go"]["href"] == f"{fake.base}/pay/{session_id}"
    assert fake.sessions[session_id]["amount_total"] == 600 and fake.sessions[session_id]["currency"] == "cad"
    assert fake.sessions[session_id]["success_url"].endswith(
        f"/checkout/temp/{world['visitor']}?payment=return"
    )

    # Back before paying (the tab kept its key): not paid, and not "nothing charged" either.
    early = setup(guest, app, world["visitor"], key, "return")
    assert "not been completed" in json.dumps(early["checkout-result"])
    assert f'"href": "{fake.base}/pay/{session_id}"' in json.dumps(early["checkout-result"])  # a way back
    assert "Payment received" not in json.dumps(early)

    fake.pay(session_id, SUCCESS_CARD)
    back = setup(guest, app, world["visitor"], key, "return")
    assert "Payment received" in json.dumps(back["checkout-result"])
    assert back["checkout-form"]["style"] == {"display": "none"} and back["checkout-key"]["data"] != key
    assert payment(session).status == PaymentStatus.SUCCEEDED and payment(session).card_last4 is None


def test_leaving_stripes_page_says_nothing_was_charged(app, login_as, world, fake, session) -> None:  # noqa: F811
    guest = login_as(Role.GUEST)
    key = setup(guest, app, world["visitor"], None)["checkout-key"]["data"]
    quick_pay(guest, app, world, key)
    session_id = fake.only_session()
    fake.pay(session_id, DECLINED_CARD)
    back = setup(guest, app, world["visitor"], key, "cancel")
    said = json.dumps(back["checkout-result"])
    assert "Your card was declined." in said and "Payment received" not in said
    assert fake.sessions[session_id]["status"] == "expired"
    assert payment(session).status == PaymentStatus.DECLINED
    assert session.scalar(select(Permit.status)) == PermitStatus.CANCELLED
    assert back["checkout-key"]["data"] != key  # a final answer: a new form


def test_stripe_chosen_without_keys_charges_nothing(app, login_as, world, core, session) -> None:  # noqa: F811
    with core.db.session() as s:
        system_settings.update(s, core.secrets, {"payment_processor": "stripe"}, actor_id=None)
    guest = login_as(Role.GUEST)
    key = setup(guest, app, world["visitor"], None)["checkout-key"]["data"]
    said = json.dumps(quick_pay(guest, app, world, key))
    assert "Card payments are not available right now" in said
    assert session.scalar(select(Payment.id)) is None


def test_the_cart_pays_on_stripes_page(app, student, world, fake, session) -> None:  # noqa: F811
    add(student, app, world, world["fall"])
    shown = outputs_of(dash_post(student, app, find_output(app, CART), [0], [None]))
    assert shown["cart-pay"]["children"] == "Continue to secure payment"
    key, total = shown["cart-key"]["data"], shown["cart-total"]["data"]
    sent = outputs_of(
        dash_post(student, app, find_output(app, CART_PAY), [1], [None, None, None, key, total, 0])
    )
    session_id = fake.only_session()
    assert sent["cart-go"]["href"] == f"{fake.base}/pay/{session_id}"
    assert fake.sessions[session_id]["amount_total"] == 16500
    meanwhile = json.dumps(outputs_of(dash_post(student, app, find_output(app, CART), [0], [None])))
    assert "not been completed" in meanwhile and f"{fake.base}/pay/{session_id}" in meanwhile  # a way back
    fake.pay(session_id, SUCCESS_CARD)
    back = outputs_of(dash_post(student, app, find_output(app, CART), [0], ["return"]))
    assert "Payment received" in json.dumps(back["cart-items"])
    assert payment(session).status == PaymentStatus.SUCCEEDED
