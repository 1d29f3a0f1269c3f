"""Booking, the cart, the quick checkout, receipts, My Permits and the lot QR code over HTTP, as the
browser calls them: guests may use the quick checkout and receipts but not the cart or the booking
page; a user sees only their own cart and permits; a double submission is charged once; a declined
card or a processor error leaves no permit and no charge; sold out and ineligible are said clearly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from dashboard.services import email, payments, permits
from dashboard.services.payments import DECLINED_CARD, NETWORK_ERROR_CARD
from models import (
    CartItem,
    Lot,
    OutboxMessage,
    Payment,
    PaymentStatus,
    Permit,
    PermitKind,
    PermitProduct,
    PermitStatus,
    PermitVehicle,
    Pricing,
    Role,
    SandboxCharge,
    UserType,
    Vehicle,
)
from tests.conftest import PASSWORD
from tests.dash_helpers import callback_entry, dash_post, find_output, outputs_of, press
from tests.faults import DropConnection

TZ = ZoneInfo("America/Toronto")  # the test settings' default site time zone
CARD = "4242 4242 4242 4242"
EXPIRY = f"12/{(datetime.now(UTC).year + 2) % 100:02d}"


@pytest.fixture
def world(session) -> dict[str, int]:
    email.ensure_default_templates(session)
    student, staff = UserType(code="student", name="Student"), UserType(code="staff", name="Staff")
    visitor = Lot(name="Visitor Lot", code="VL", capacity=3, sells_standard=False, sells_temporary=True)
    garage = Lot(name="Garage Level 1", code="G1", capacity=2, sells_standard=True)
    session.add_all([student, staff, visitor, garage])
    session.flush()
    today = datetime.now(UTC).astimezone(TZ).date()
    hourly = PermitProduct(
        lot_id=visitor.id,
        kind=PermitKind.TEMPORARY,
        name="Hourly",
        pricing=Pricing.HOURLY,
        price_cents=300,
        max_duration_minutes=240,
    )
    daily = PermitProduct(
        lot_id=visitor.id, kind=PermitKind.TEMPORARY, name="Daily", pricing=Pricing.DAILY, price_cents=1500
    )
    term = {"pricing": Pricing.TERM, "term_start": today, "term_end": today + timedelta(days=90)}
    fall = PermitProduct(
        lot_id=garage.id, kind=PermitKind.STANDARD, name="Fall Term", price_cents=16500, **term
    )
    fall.eligible_user_types = [student]
    staff_term = PermitProduct(
        lot_id=garage.id, kind=PermitKind.STANDARD, name="Staff Term", price_cents=20000, **term
    )
    staff_term.eligible_user_types = [staff]
    session.add_all([hourly, daily, fall, staff_term])
    session.commit()
    return {
        "visitor": visitor.id,
        "garage": garage.id,
        "hourly": hourly.id,
        "daily": daily.id,
        "fall": fall.id,
        "staff_term": staff_term.id,
    }


@pytest.fixture
def student(app, make_user, session, world):
    """A signed-in student with a saved vehicle."""
    user = make_user(Role.USER, first_name="Liam", user_type="student")
    session.add(Vehicle(user_id=user.id, plate="CAAB 123", plate_normalized="CAAB123"))
    session.commit()
    client = app.test_client()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "next": "/"})
    assert response.status_code == 302
    client.user = user
    return client


def text(response: Any) -> str:
    return json.dumps(outputs_of(response))


def count(session, statement) -> int:
    session.expire_all()
    return session.scalar(statement)


# --- who may open what ------------------------------------------------------------------------


def test_guests_may_use_the_quick_checkout_and_receipts_only(login_as, world) -> None:
    guest = login_as(Role.GUEST)
    assert guest.get(f"/checkout/temp/{world['visitor']}").status_code == 200
    assert guest.get("/receipts/some-token-that-is-long").status_code == 200
    for path in ("/cart", f"/permits/book/{world['garage']}", "/permits"):
        response = guest.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next="), path
    user = login_as(Role.USER)
    for path in ("/cart", f"/permits/book/{world['garage']}", "/permits"):
        assert user.get(path).status_code == 200, path
    assert user.get(f"/admin/lot-qr/{world['visitor']}").status_code == 403
    assert login_as(Role.MANAGER).get(f"/admin/lot-qr/{world['visitor']}").status_code == 200


@pytest.mark.parametrize(
    "fragment",
    [
        "..cart-items.children",
        "..book-title.children",
        "mypermits-content.children",
        "..cart-result.children...cart-key",
    ],
)
def test_guests_get_nothing_from_the_user_callbacks(app, login_as, world, fragment) -> None:
    key = find_output(app, fragment)
    entry = callback_entry(app, key)
    inputs, state = [None] * len(entry["inputs"]), [None] * len(entry["state"])
    response = dash_post(login_as(Role.GUEST), app, key, inputs, state)
    assert response.status_code == 401 and b"response" not in response.data


# --- quick checkout ----------------------------------------------------------------------------

SETUP = "..checkout-title.children"
PRICE = "checkout-quote.children"
PAY = "..checkout-result.children@"  # the Pay callback (the setup callback fills it first)


def setup(client, app, lot_id: int, key: str | None = None) -> dict[str, dict[str, Any]]:
    """The page's setup, as on opening it (``key``: the form key the tab kept, on a reload)."""
    return outputs_of(dash_post(client, app, find_output(app, SETUP), [str(lot_id)], [key, None]))


def quote(client, app, lot_id: int, product: int, duration: str = "120", **start: Any) -> str:
    inputs = [product, start.get("start", "now"), start.get("day", "today"), start.get("at"), duration]
    return text(dash_post(client, app, find_output(app, PRICE), inputs, [str(lot_id)]))


def quick_pay(client, app, world, key: str, card: str = CARD, **fields: Any) -> dict[str, dict[str, Any]]:
    values = {
        "lot": str(world["visitor"]),
        "product": world["hourly"],
        "start": "now",
        "day": "today",
        "at": None,
        "duration": "120",
        "plate": "dfgh-902",
        "email": "visitor@example.com",
        **fields,
    }
    state = [*values.values(), card, EXPIRY, "123", key]
    return outputs_of(dash_post(client, app, find_output(app, PAY), [1], state))


def test_the_quick_checkout_form_is_filled_by_the_guest_callback(app, login_as, world) -> None:
    shown = setup(login_as(Role.GUEST), app, world["visitor"])
    assert shown["checkout-title"]["children"] == "Temporary permit: Visitor Lot"
    labels = [o["label"] for o in shown["checkout-product"]["options"]]
    assert labels == ["Hourly: $3.00 CAD per hour", "Daily: $15.00 CAD per day"]
    assert shown["checkout-email"]["value"] is None
    assert len(shown["checkout-key"]["data"]) == 36  # a uuid4, one per form shown
    again = setup(login_as(Role.GUEST), app, world["visitor"])
    assert again["checkout-key"]["data"] != shown["checkout-key"]["data"]
    user = login_as(Role.USER)
    assert setup(user, app, world["visitor"])["checkout-email"]["value"] == user.user.email


def test_a_lot_without_temporary_permits_says_so(app, login_as, world) -> None:
    shown = setup(login_as(Role.GUEST), app, world["garage"])
    assert "sells no temporary permits" in json.dumps(shown["checkout-missing"])
    assert '"href": "/real-time"' in json.dumps(shown["checkout-missing"])  # not a dead end
    assert shown["checkout-form"]["style"] == {"display": "none"}
    assert "Lot not found" in json.dumps(setup(login_as(Role.GUEST), app, 99999))


def test_durations_follow_the_product(app, login_as, world) -> None:
    key = find_output(app, "..checkout-duration.options")
    hourly = outputs_of(dash_post(login_as(Role.GUEST), app, key, [world["hourly"]], [str(world["visitor"])]))
    assert [o["value"] for o in hourly["checkout-duration"]["options"]] == ["60", "120", "180", "240"]
    daily = outputs_of(dash_post(login_as(Role.GUEST), app, key, [world["daily"]], [str(world["visitor"])]))
    assert [o["label"] for o in daily["checkout-duration"]["options"]][:2] == ["1 day", "2 days"]


def test_the_price_is_live(app, login_as, world) -> None:
    guest = login_as(Role.GUEST)
    shown = quote(guest, app, world["visitor"], world["hourly"], "180")
    assert "$9.00 CAD" in shown and "3 spaces left" in shown
    later = quote(
        guest, app, world["visitor"], world["hourly"], "60", start="later", day="tomorrow", at="09:30"
    )
    assert "$3.00 CAD" in later and "09:30" in later


def test_a_guest_buys_a_temporary_permit(app, login_as, world, session) -> None:
    guest = login_as(Role.GUEST)
    key = setup(guest, app, world["visitor"])["checkout-key"]["data"]
    result = quick_pay(guest, app, world, key)
    shown = json.dumps(result)
    assert "Payment received" in shown and "/receipts/" in shown
    assert result["checkout-form"]["style"] == {"display": "none"}
    permit = session.scalars(select(Permit)).one()
    assert permit.status == PermitStatus.ACTIVE and permit.user_id is None
    assert permit.number in shown and permit.amount_cents == 600
    assert [v.plate for v in permit.vehicles] == ["DFGH-902"]
    assert permits.check_plate(session, "DFGH902", world["visitor"], datetime.now(UTC), TZ).valid
    receipt = session.scalars(select(OutboxMessage)).one()
    assert receipt.to_addresses == ["visitor@example.com"] and permit.number in receipt.subject

    again = quick_pay(guest, app, world, key)  # a double submission of the same form
    assert permit.number in json.dumps(again)
    assert count(session, select(func.count(SandboxCharge.id))) == 1
    assert count(session, select(func.count(Permit.id))) == 1


@pytest.mark.parametrize(("card", "status"), [(DECLINED_CARD, "declined"), (NETWORK_ERROR_CARD, "failed")])
def test_a_card_that_fails_leaves_nothing_and_gets_a_new_key(
    app, login_as, world, session, card, status
) -> None:
    guest = login_as(Role.GUEST)
    result = quick_pay(guest, app, world, "form-key-1", card=card)
    assert "Not paid" in json.dumps(result["checkout-result"])
    assert result["checkout-key"]["data"] not in (None, "form-key-1")
    assert count(session, select(func.count(Permit.id)).where(Permit.status != PermitStatus.CANCELLED)) == 0
    paid = select(func.count(SandboxCharge.id)).where(SandboxCharge.status == PaymentStatus.SUCCEEDED)
    assert count(session, paid) == 0
    assert session.scalars(select(Payment.status)).one() == status
    assert count(session, select(func.count(OutboxMessage.id))) == 0


def test_a_charge_that_could_not_be_settled_is_confirmed_on_reload_and_never_charged_twice(
    app, login_as, world, session, core, monkeypatch
) -> None:
    """The database drops every connection that settles the charged card: the buyer is told the
    payment is being confirmed and keeps the form's key; a reload (the tab's stored key) during
    the outage still says so; once the database is back, a reload shows the permit, and the old
    form sent again answers with it. One charge, one receipt."""
    monkeypatch.setattr(payments, "RETRY_DELAYS", (0.01, 0.01))
    guest = login_as(Role.GUEST)
    key = setup(guest, app, world["visitor"])["checkout-key"]["data"]
    with DropConnection(core.db, "payments", after="^INSERT INTO sandbox_charges", times=None):
        told = quick_pay(guest, app, world, key)
        during = setup(guest, app, world["visitor"], key)
    for shown in (json.dumps(told["checkout-result"]), json.dumps(during["checkout-result"])):
        assert "charged twice" in shown and "not charged" not in shown and "nothing" not in shown.lower()
    assert "being confirmed" in json.dumps(told["checkout-result"])
    assert "checkout-key" not in told and during["checkout-key"]["data"] == key

    reloaded = setup(guest, app, world["visitor"], key)
    confirmation = json.dumps(reloaded["checkout-result"])
    permit = session.scalars(select(Permit)).one()
    assert "Payment received" in confirmation and permit.number in confirmation
    assert permit.status == PermitStatus.ACTIVE
    assert reloaded["checkout-key"]["data"] not in (None, key)  # told: the next form is a new one
    assert reloaded["checkout-form"]["style"] == {"display": "none"}
    assert permit.number in json.dumps(quick_pay(guest, app, world, key))
    paid = select(func.count(SandboxCharge.id)).where(SandboxCharge.status == PaymentStatus.SUCCEEDED)
    assert count(session, paid) == 1 and count(session, select(func.count(OutboxMessage.id))) == 1
    assert setup(guest, app, world["visitor"], reloaded["checkout-key"]["data"])["checkout-result"] == {
        "children": None
    }


def test_the_form_is_checked_before_anything_is_sold(app, login_as, world, session) -> None:
    result = quick_pay(login_as(Role.GUEST), app, world, "form-key-1", plate="", email="not-an-address")
    shown = json.dumps(result["checkout-result"])
    assert "Licence plate: enter the licence plate" in shown
    assert "E-mail: not a valid e-mail address" in shown
    assert count(session, select(func.count(Payment.id))) == 0


def fill(session, lot_id: int, spaces: int, start: datetime, end: datetime) -> None:
    for n in range(spaces):
        permit = Permit(
            number=f"FULL-{lot_id}-{n}",
            kind=PermitKind.TEMPORARY,
            lot_id=lot_id,
            valid_from=start,
            valid_to=end,
        )
        permit.vehicles = [PermitVehicle(plate=f"ZZ{n}", plate_normalized=f"ZZ{n}")]
        session.add(permit)
    session.commit()


def test_sold_out_offers_the_waitlist(app, login_as, world, session) -> None:
    now = datetime.now(UTC)
    fill(session, world["visitor"], 3, now - timedelta(hours=1), now + timedelta(days=2))
    guest = login_as(Role.GUEST)
    shown = quote(guest, app, world["visitor"], world["hourly"], "60")
    # A guest cannot join a waitlist: the way on is to log in (and land on it) or another lot.
    login_then_join = f"/login?next=%2Fwaitlist%2Fjoin%2F{world['hourly']}"
    assert "sold out" in shown and login_then_join in shown and "/real-time" in shown
    assert "Join the waitlist" not in shown
    result = json.dumps(quick_pay(guest, app, world, "form-key-1"))
    assert "sold out" in result and login_then_join in result
    signed_in = quote(login_as(Role.USER), app, world["visitor"], world["hourly"], "60")
    assert "Join the waitlist" in signed_in and f'"/waitlist/join/{world["hourly"]}"' in signed_in
    assert count(session, select(func.count(SandboxCharge.id))) == 0


# --- receipts -----------------------------------------------------------------------------------


def test_a_receipt_shows_the_purchase_and_an_unknown_token_nothing(app, login_as, world, session) -> None:
    guest = login_as(Role.GUEST)
    quick_pay(guest, app, world, "form-key-1")
    token = session.scalars(select(Payment.receipt_token)).one()
    permit = session.scalars(select(Permit)).one()
    key = find_output(app, "receipt-content.children")
    shown = text(dash_post(login_as(Role.GUEST), app, key, [token]))
    for expected in (permit.number, "Visitor Lot", "DFGH-902", "$6.00 CAD", "Paid", "ending in 4242"):
        assert expected in shown
    missing = text(dash_post(guest, app, key, ["x" * 32]))
    assert "Receipt not found" in missing and "Visitor Lot" not in missing


# --- booking a standard permit and the cart -------------------------------------------------------

LOAD = "..book-title.children"
ADD = "book-feedback.children"
CART = "..cart-items.children"
CART_PAY = "..cart-result.children...cart-key"
REMOVE = "cart-result.children@"


def book(client, app, lot_id: int) -> dict[str, dict[str, Any]]:
    return outputs_of(dash_post(client, app, find_output(app, LOAD), [str(lot_id)]))


def add(client, app, world, product: int, plates: list[Any] | None = None) -> str:
    plates = plates if plates is not None else ["CAAB 123", None, None]
    values = {"book-lot": str(world["garage"]), **{f"book-plate-{n}": p for n, p in enumerate(plates, 1)}}
    button = {"product": product, "type": "book-add"}
    return text(press(client, app, ADD, button, values, rows={"book-add": [button]}))


def cart(client, app) -> dict[str, dict[str, Any]]:
    return outputs_of(dash_post(client, app, find_output(app, CART), [0], [None]))


def cart_pay(client, app, key: str, total: int | None, card: str = CARD) -> dict[str, dict[str, Any]]:
    return outputs_of(
        dash_post(client, app, find_output(app, CART_PAY), [1], [card, EXPIRY, "123", key, total, 0])
    )


def test_the_booking_page_lists_what_the_student_may_buy(app, student, world) -> None:
    shown = book(student, app, world["garage"])
    options = json.dumps(shown["book-options"])
    assert "Fall Term" in options and "$165.00 CAD" in options and "2 of 2 permits left" in options
    assert "Staff Term" not in options
    assert shown["book-plate-1"]["value"] == "CAAB 123"  # the saved vehicle
    assert shown["book-plate-2"]["value"] is None


def test_ineligible_and_sold_out_are_said_clearly(app, student, world, session) -> None:
    assert "not sold to your user type" in add(student, app, world, world["staff_term"])
    start, end = permits.term_window(session.get(PermitProduct, world["fall"]), TZ)
    fill(session, world["garage"], 2, start, end)
    options = json.dumps(book(student, app, world["garage"])["book-options"])
    assert "Sold out" in options and f"/waitlist/join/{world['fall']}" in options
    added = add(student, app, world, world["fall"])
    assert "sold out" in added and f"/waitlist/join/{world['fall']}" in added


def test_a_user_type_with_no_permits_here_is_told(app, login_as, world) -> None:
    options = json.dumps(book(login_as(Role.USER), app, world["garage"])["book-options"])
    assert "no user type" in options


def test_adding_checks_the_plates(app, student, world) -> None:
    shown = add(student, app, world, world["fall"], ["X", None, None])
    assert "Licence plate 1: 2 to 10 letters and digits" in shown


def test_a_student_books_and_pays_through_the_cart(app, student, world, session, login_as) -> None:
    assert "is in your cart" in add(student, app, world, world["fall"], ["CAAB 123", "bxrt-508", None])
    other = login_as(Role.USER)
    assert "Fall Term" not in json.dumps(cart(other, app))  # another user's cart stays theirs

    shown = cart(student, app)
    assert "Fall Term" in json.dumps(shown["cart-items"]) and "CAAB 123, BXRT-508" in json.dumps(shown)
    key, total = shown["cart-key"]["data"], shown["cart-total"]["data"]
    assert total == 16500 and shown["cart-pay-section"]["style"] == {}

    first = cart_pay(student, app, key, total)
    second = cart_pay(student, app, key, total)  # a double submission of the same form
    assert "Payment received" in json.dumps(first) and "Payment received" in json.dumps(second)
    assert count(session, select(func.count(SandboxCharge.id))) == 1
    permit = session.scalars(select(Permit)).one()
    assert permit.status == PermitStatus.ACTIVE and permit.user_id == student.user.id
    assert permit.number in json.dumps(first)
    assert permits.check_plate(session, "BXRT508", world["garage"], datetime.now(UTC), TZ).valid
    assert "cart-empty" in json.dumps(cart(student, app))

    mine = text(dash_post(student, app, find_output(app, "mypermits-content.children"), [0]))
    assert permit.number in mine and "/receipts/" in mine
    assert permit.number not in text(
        dash_post(other, app, find_output(app, "mypermits-content.children"), [0])
    )


def test_a_declined_cart_payment_keeps_the_cart_and_issues_a_new_key(app, student, world, session) -> None:
    add(student, app, world, world["fall"])
    shown = cart(student, app)
    result = cart_pay(student, app, shown["cart-key"]["data"], 16500, card=DECLINED_CARD)
    assert "declined" in json.dumps(result["cart-result"])
    assert result["cart-key"]["data"] != shown["cart-key"]["data"]
    assert count(session, select(func.count(Permit.id)).where(Permit.status == PermitStatus.ACTIVE)) == 0
    assert "Fall Term" in json.dumps(cart(student, app)["cart-items"])


def test_a_cart_charge_that_could_not_be_settled_is_shown_on_reload_and_not_charged_again(
    app, student, world, session, core, monkeypatch
) -> None:
    monkeypatch.setattr(payments, "RETRY_DELAYS", (0.01, 0.01))
    add(student, app, world, world["fall"])
    shown = cart(student, app)
    with DropConnection(core.db, "payments", after="^INSERT INTO sandbox_charges", times=None):
        told = cart_pay(student, app, shown["cart-key"]["data"], 16500)
    assert "being confirmed" in json.dumps(told["cart-result"]) and "cart-key" not in told
    assert "not charged" not in json.dumps(told["cart-result"])

    reloaded = cart(student, app)  # the database is back: the cart page reconciles the payment
    assert "Payment received" in json.dumps(reloaded["cart-items"]) and "cart-empty" in json.dumps(reloaded)
    assert reloaded["cart-pay-section"]["style"] == {"display": "none"}
    permit = session.scalars(select(Permit)).one()
    assert permit.status == PermitStatus.ACTIVE and permit.number in json.dumps(reloaded)
    paid = select(func.count(SandboxCharge.id)).where(SandboxCharge.status == PaymentStatus.SUCCEEDED)
    assert count(session, paid) == 1 and count(session, select(func.count(OutboxMessage.id))) == 1


def test_a_cart_paid_again_with_a_new_form_while_its_payment_is_pending_is_not_charged_twice(
    app, student, world, session, core, monkeypatch
) -> None:
    monkeypatch.setattr(payments, "RETRY_DELAYS", (0.01, 0.01))
    add(student, app, world, world["fall"])
    shown = cart(student, app)
    with DropConnection(core.db, "payments", after="^INSERT INTO sandbox_charges", times=None):
        cart_pay(student, app, shown["cart-key"]["data"], 16500)
    again = cart_pay(student, app, "another-form", 16500)  # e.g. a second tab's form
    assert "Payment received" in json.dumps(again["cart-result"])
    paid = select(func.count(SandboxCharge.id)).where(SandboxCharge.status == PaymentStatus.SUCCEEDED)
    assert count(session, paid) == 1 and count(session, select(func.count(Payment.id))) == 1


def test_an_item_that_sold_out_before_paying_is_named(app, student, world, session) -> None:
    add(student, app, world, world["fall"])
    key = cart(student, app)["cart-key"]["data"]
    start, end = permits.term_window(session.get(PermitProduct, world["fall"]), TZ)
    fill(session, world["garage"], 2, start, end)
    result = json.dumps(cart_pay(student, app, key, 16500))
    assert "Fall Term (Garage Level 1): sold out" in result and f"/waitlist/join/{world['fall']}" in result
    assert count(session, select(func.count(SandboxCharge.id))) == 0
    assert "Cannot be sold" in json.dumps(cart(student, app)["cart-items"])


def test_only_the_owner_removes_an_item(app, student, world, login_as, session) -> None:
    add(student, app, world, world["fall"])
    item_id = session.scalars(select(CartItem.id)).one()
    assert f'"item": {item_id}' in json.dumps(cart(student, app)["cart-items"])
    button = {"item": item_id, "type": "cart-remove"}
    other = press(
        login_as(Role.USER), app, REMOVE, button, {"cart-version": 0}, rows={"cart-remove": [button]}
    )
    assert "not in your cart" in text(other)
    assert "Fall Term" in json.dumps(cart(student, app)["cart-items"])
    mine = outputs_of(
        press(student, app, REMOVE, button, {"cart-version": 0}, rows={"cart-remove": [button]})
    )
    assert mine["cart-version"]["data"] == 1
    assert "cart-empty" in json.dumps(cart(student, app))


# --- the lot's QR code ----------------------------------------------------------------------------


def test_a_manager_gets_the_lots_qr_code(app, login_as, world, settings) -> None:
    key = find_output(app, "lotqr-content.children")
    shown = text(dash_post(login_as(Role.MANAGER), app, key, [str(world["visitor"])]))
    assert f"{settings.public_url}/checkout/temp/{world['visitor']}" in shown
    assert "data:image/svg+xml" in shown and "Visitor Lot" in shown
    assert dash_post(login_as(Role.USER), app, key, [str(world["visitor"])]).status_code == 403
