"""My Violations (/violations) and Pay a Violation (/pay-violation): the callbacks over HTTP (as the
browser calls them) and directly (the functions Dash registered, in a request), Require Overdue
Paid with its "add them", the mandatory e-mail, the boot icon (hidden while Universal Boot is off),
the menu entries, and who may open what."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from flask_login import login_user
from sqlalchemy import func, select

from dashboard.auth import SessionUser
from models import OutboxMessage, Payment, Role, SandboxCharge, Vehicle, Violation
from tests.dash_helpers import callback_entry, dash_post, find_output, outputs_of, press
from tests.enforcement import enable_boots, payable_place, write_ticket

CARD = {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}


@pytest.fixture
def place(core):
    return payable_place(core)


@pytest.fixture
def officer(make_user):
    return make_user(Role.OFFICER)


def card(prefix: str) -> dict[str, str]:
    return {f"{prefix}-card-{k}": v for k, v in CARD.items()}


def guest_find(client, app, ticket: str, plate: str) -> dict:
    return outputs_of(
        press(client, app, "payviol-select.options", "payviol-find",
              {"payviol-ticket": ticket, "payviol-plate": plate})
    )  # fmt: skip


def test_a_guest_finds_a_booted_ticket_and_pays_it_by_card(app, login_as, core, place, officer):
    ticket = write_ticket(core, officer.id, place, boot_id=place.boot_ids[0])
    guest = login_as(Role.GUEST)
    page = guest.get(f"/pay-violation?ticket={ticket.ticket_number}")
    assert page.status_code == 200
    wrong = guest_find(guest, app, ticket.ticket_number, "XYZ 1")
    assert "No ticket matches" in json.dumps(wrong["payviol-found"])
    found = guest_find(guest, app, ticket.ticket_number, "abc-123")
    options = found["payviol-select"]["options"]
    assert [o["value"] for o in options] == [ticket.id] and found["payviol-select"]["value"] == [ticket.id]
    assert "Booted" in json.dumps(options) and "$115.00" in json.dumps(options)  # NVP 40 + boot 75
    scope = found["payviol-scope"]["data"]
    key = found["payviol-key"]["data"]
    total = outputs_of(dash_post(guest, app, find_output(app, "payviol-total-text"), [[ticket.id]], [scope]))
    assert total["payviol-total"]["data"] == 11500
    values = {
        "payviol-scope": scope,
        "payviol-select": [ticket.id],
        "payviol-key": key,
        "payviol-total": 11500,
        **card("payviol"),
    }
    no_mail = outputs_of(press(guest, app, "payviol-result.children", "payviol-pay", values))
    assert "E-mail: enter an e-mail address" in json.dumps(no_mail["payviol-result"])
    with core.db.session() as s:
        assert s.scalar(select(func.count(Payment.id))) == 0
    paid = outputs_of(
        press(
            guest, app, "payviol-result.children", "payviol-pay", {**values, "payviol-email": "g@example.com"}
        )
    )
    assert "Payment received" in json.dumps(paid["payviol-result"]) and ticket.ticket_number in json.dumps(
        paid
    )
    with core.db.session() as s:
        assert s.get(Violation, ticket.id).status == "paid"
        release = s.scalar(select(OutboxMessage).where(OutboxMessage.template_key == "boot-release"))
        assert release.to_addresses == ["g@example.com"] and "4801" in release.body_text
    again = outputs_of(
        press(
            guest, app, "payviol-result.children", "payviol-pay", {**values, "payviol-email": "g@example.com"}
        )
    )  # a retried submission of the same form: the same answer, one charge, one code
    assert "Payment received" in json.dumps(again["payviol-result"])
    with core.db.session() as s:
        assert s.scalar(select(func.count(SandboxCharge.id))) == 1
        assert (
            s.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.template_key == "boot-release"))
            == 1
        )
    with core.db.session() as s:
        token = s.scalar(select(Payment.receipt_token))
    receipt = outputs_of(dash_post(guest, app, find_output(app, "receipt-content.children"), [token]))
    assert "Parking tickets paid" in json.dumps(receipt) and ticket.ticket_number in json.dumps(receipt)
    assert "$115.00" in json.dumps(receipt)
    refound = guest_find(guest, app, ticket.ticket_number, "ABC123")
    assert "nothing to pay" in json.dumps(refound["payviol-found"])


def test_the_boot_icon_is_hidden_while_universal_boot_is_off(app, login_as, core, place, officer):
    ticket = write_ticket(core, officer.id, place, boot_id=place.boot_ids[0])
    enable_boots(core, False)
    found = guest_find(login_as(Role.GUEST), app, ticket.ticket_number, "ABC 123")
    assert "Booted" not in json.dumps(found) and ticket.ticket_number in json.dumps(found)


def test_my_violations_requires_the_overdue_ones_and_offers_to_add_them(app, login_as, core, place, officer):
    enable_boots(core, boot_require_overdue_paid=True)
    user = login_as(Role.USER)
    with core.db.session() as s:
        s.add(Vehicle(user_id=user.user.id, plate="ABC 123", plate_normalized="ABC123"))
    old = write_ticket(
        core, officer.id, place, offences=(place.fl,), now=datetime.now(UTC) - timedelta(days=40)
    )
    new = write_ticket(core, officer.id, place)
    assert user.get("/violations").status_code == 200
    loaded = outputs_of(press(user, app, "myviol-select.options", "myviol-version", {"myviol-version": 0}))
    assert [o["value"] for o in loaded["myviol-select"]["options"]] == [new.id, old.id]
    assert loaded["myviol-email"]["value"] == user.user.email
    assert old.ticket_number in json.dumps(loaded["myviol-overdue-note"])
    values = {
        "myviol-select": [new.id],
        "myviol-email": user.user.email,
        "myviol-key": loaded["myviol-key"]["data"],
        **card("myviol"),
    }
    refused = outputs_of(press(user, app, "myviol-result.children", "myviol-pay", values))
    assert old.ticket_number in json.dumps(refused["myviol-result"]) and "overdue" in json.dumps(refused)
    assert refused["myviol-missing"]["data"] == [old.id] and refused["myviol-add-overdue"]["style"] == {}
    added = outputs_of(
        press(user, app, "myviol-select.value@", "myviol-add-overdue",
              {"myviol-missing": [old.id], "myviol-select": [new.id]})
    )  # fmt: skip
    assert added["myviol-select"]["value"] == [new.id, old.id]
    paid = outputs_of(
        press(
            user, app, "myviol-result.children", "myviol-pay", {**values, "myviol-select": [new.id, old.id]}
        )
    )
    assert "Payment received" in json.dumps(paid["myviol-result"])
    with core.db.session() as s:
        assert {str(s.get(Violation, i).status) for i in (old.id, new.id)} == {"paid"}
        assert s.scalar(select(Payment.amount_cents)) == 10000 + 4000


def test_my_violations_is_for_signed_in_users_and_lists_only_their_own(app, login_as, core, place, officer):
    assert login_as(Role.GUEST).get("/violations").headers["Location"].startswith("/login?next=")
    write_ticket(core, officer.id, place, plate="ZZZ 999")
    user = login_as(Role.USER)
    loaded = outputs_of(press(user, app, "myviol-select.options", "myviol-version", {"myviol-version": 0}))
    assert loaded["myviol-select"]["options"] == [] and "no parking tickets" in json.dumps(
        loaded["myviol-empty"]
    )
    guest = login_as(Role.GUEST)
    response = press(guest, app, "myviol-select.options", "myviol-version", {"myviol-version": 0})
    assert response.status_code == 401


def test_the_menu_offers_both_pages(app, login_as):
    from dashboard.components.shell import MENU

    entries = {(label, href, role) for _, label, href, role in MENU}
    assert ("My Violations", "/violations", Role.USER) in entries
    assert ("Pay a Violation", "/pay-violation", Role.GUEST) in entries


def test_the_callbacks_called_directly(app, core, place, officer):
    """The functions Dash registered, called in a request as the browser's call would run them."""
    ticket = write_ticket(core, officer.id, place)
    find = callback_entry(app, find_output(app, "payviol-select.options"))["callback"].__wrapped__
    with app.test_request_context("/_dash-update-component", method="POST"):
        from dash._callback_context import context_value  # noqa: PLC0415 (Dash's own per-call context)
        from dash._utils import AttributeDict  # noqa: PLC0415

        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": "payviol-find.n_clicks", "value": 1}]))
        out = find(1, 0, ticket.ticket_number, "ABC 123", None)
    assert out[1] == [ticket.id] and out[6] == {"ticket": ticket.ticket_number, "plate": "ABC 123"}
    load = callback_entry(app, find_output(app, "myviol-select.options"))["callback"].__wrapped__
    with core.db.session() as s:
        s.add(Vehicle(user_id=officer.id, plate="ABC 123", plate_normalized="ABC123"))
    with app.test_request_context("/"):
        login_user(SessionUser(officer.id, officer.email, officer.name, Role.OFFICER))
        options, value, *_, address = load(0)
    assert [o["value"] for o in options] == [ticket.id] and value == [] and address == officer.email


def test_a_guest_must_pay_the_plates_overdue_tickets_too_when_required(app, login_as, core, place, officer):
    enable_boots(core, boot_require_overdue_paid=True)
    old = write_ticket(
        core, officer.id, place, offences=(place.fl,), now=datetime.now(UTC) - timedelta(days=40)
    )
    new = write_ticket(core, officer.id, place, boot_id=place.boot_ids[0])
    guest = login_as(Role.GUEST)
    found = guest_find(guest, app, new.ticket_number, "ABC 123")
    assert [o["value"] for o in found["payviol-select"]["options"]] == [new.id, old.id]
    assert found["payviol-select"]["value"] == [new.id]
    assert old.ticket_number in json.dumps(found["payviol-overdue-note"])
    values = {
        "payviol-scope": found["payviol-scope"]["data"],
        "payviol-select": [new.id],
        "payviol-key": found["payviol-key"]["data"],
        "payviol-email": "g@example.com",
        **card("payviol"),
    }
    refused = outputs_of(press(guest, app, "payviol-result.children", "payviol-pay", values))
    assert "Every overdue ticket" in json.dumps(refused["payviol-result"])
    assert refused["payviol-missing"]["data"] == [old.id]
    paid = outputs_of(
        press(
            guest,
            app,
            "payviol-result.children",
            "payviol-pay",
            {**values, "payviol-select": [new.id, old.id]},
        )
    )
    assert "Payment received" in json.dumps(paid["payviol-result"])
    with core.db.session() as s:
        assert {str(s.get(Violation, i).status) for i in (old.id, new.id)} == {"paid"}
        assert (
            s.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.template_key == "boot-release"))
            == 1
        )


def test_with_stripe_chosen_a_guest_pays_a_booted_ticket_on_stripes_page(app, login_as, core, place, officer):
    """No card fields; Pay goes to Stripe's page; back with ``?payment=return`` the page says paid
    only once Stripe holds the charge, and the boot's release code is mailed once, however many
    times the return and the webhook come."""
    from tests.services.test_stripe_payments import configure
    from tests.stripe_fake import SUCCESS_CARD, stripe_server

    ticket = write_ticket(core, officer.id, place, boot_id=place.boot_ids[0])
    guest = login_as(Role.GUEST)
    with stripe_server() as fake:
        configure(core, fake.base, currency="USD")
        mode = outputs_of(dash_post(guest, app, find_output(app, "payviol-card-fields.style"), [0]))
        assert mode["payviol-card-fields"]["style"] == {"display": "none"}
        assert mode["payviol-pay"]["children"] == "Continue to secure payment"
        found = guest_find(guest, app, ticket.ticket_number, "abc-123")
        scope, key = found["payviol-scope"]["data"], found["payviol-key"]["data"]
        values = {
            "payviol-scope": scope,
            "payviol-select": [ticket.id],
            "payviol-key": key,
            "payviol-total": 11500,
            "payviol-email": "g@example.com",
        }
        sent = outputs_of(press(guest, app, "payviol-result.children", "payviol-pay", values))
        session_id = fake.only_session()
        assert sent["payviol-go"]["href"] == f"{fake.base}/pay/{session_id}"
        stripe_session = fake.sessions[session_id]
        assert stripe_session["amount_total"] == 11500 and stripe_session["currency"] == "usd"
        assert stripe_session["success_url"].endswith("/pay-violation?payment=return")

        back = dash_post(guest, app, find_output(app, "payviol-back.children"), ["return"], [key])
        early = json.dumps(outputs_of(back))
        assert "not been completed" in early and "Payment received" not in early
        with core.db.session() as s:
            assert s.get(Violation, ticket.id).status == "unpaid"
            assert (
                s.scalar(
                    select(func.count(OutboxMessage.id)).where(OutboxMessage.template_key == "boot-release")
                )
                == 0
            )

        fake.pay(session_id, SUCCESS_CARD)
        for _ in range(2):  # a reload of the return page changes nothing
            back = outputs_of(
                dash_post(guest, app, find_output(app, "payviol-back.children"), ["return"], [key])
            )
            assert (
                "Payment received" in json.dumps(back["payviol-back"])
                and back["payviol-version"]["data"] == 1
            )
        with core.db.session() as s:
            assert s.get(Violation, ticket.id).status == "paid"
            payment = s.scalar(select(Payment))
            assert (
                payment.provider == "stripe"
                and payment.currency == "USD"
                and payment.provider_ref.startswith("pi_")
            )
            assert (
                s.scalar(
                    select(func.count(OutboxMessage.id)).where(OutboxMessage.template_key == "boot-release")
                )
                == 1
            )
        refound = guest_find(guest, app, ticket.ticket_number, "ABC123")
        assert "nothing to pay" in json.dumps(refound["payviol-found"])


def test_my_violations_leaving_stripes_page_charges_nothing(app, login_as, core, place, officer):
    from tests.services.test_stripe_payments import configure
    from tests.stripe_fake import stripe_server

    user = login_as(Role.USER)
    with core.db.session() as s:
        s.add(Vehicle(user_id=user.user.id, plate="ABC 123", plate_normalized="ABC123"))
    ticket = write_ticket(core, officer.id, place)
    with stripe_server() as fake:
        configure(core, fake.base)
        key = outputs_of(dash_post(user, app, find_output(app, "myviol-select.options"), [0]))["myviol-key"][
            "data"
        ]
        values = {
            "myviol-select": [ticket.id],
            "myviol-key": key,
            "myviol-total": 4000,
            "myviol-email": "u@example.com",
        }
        sent = outputs_of(press(user, app, "myviol-result.children", "myviol-pay", values))
        assert sent["myviol-go"]["href"] == f"{fake.base}/pay/{fake.only_session()}"
        assert fake.sessions[fake.only_session()]["success_url"].endswith("/violations?payment=return")
        left = outputs_of(dash_post(user, app, find_output(app, "myviol-back.children"), ["cancel"], [key]))
        assert "nothing was charged" in json.dumps(left["myviol-back"])
        assert fake.sessions[fake.only_session()]["status"] == "expired"
        with core.db.session() as s:
            assert s.get(Violation, ticket.id).status == "unpaid"
            assert s.scalar(select(Payment.status)) == "failed"
