"""The cart for standard permits: what a lot sells a user (by user type), adding with cleaned plates,
one open cart per user, removing only one's own items, and paying: one charge per form key, a
declined card or a processor error leaves nothing active and nothing charged, and an item that sold
out or is no longer sold to the user is named and nothing is charged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard.services import carts, email, permits
from dashboard.services.errors import NotAllowed, NotFound, ValidationFailed
from dashboard.services.payment_providers import Card
from dashboard.services.payments import (
    DECLINED_CARD,
    NETWORK_ERROR_CARD,
    SUCCESS_CARD,
    ReceiptContext,
    SandboxProvider,
)
from dashboard.services.permits import SoldOut
from models import (
    Cart,
    CartStatus,
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
    SandboxCharge,
    UserType,
    Vehicle,
)

TZ = ZoneInfo("America/Toronto")
NOW = datetime.now(UTC).replace(microsecond=0)
TODAY = NOW.astimezone(TZ).date()


def card(number: str = SUCCESS_CARD) -> Card:
    return Card(number, 12, TODAY.year + 2, "123")


def receipt() -> ReceiptContext:
    return ReceiptContext(name="Liam", site_name="Campus", base_url="https://parking.test", tz=TZ)


@pytest.fixture
def world(session: Session, make_user) -> dict[str, int]:
    email.ensure_default_templates(session)  # what prepare_database adds on every start
    student, staff = UserType(code="student", name="Student"), UserType(code="staff", name="Staff")
    lot = Lot(name="Lot E1", code="E1", capacity=2, sells_standard=True)
    other = Lot(name="Lot W", code="W", capacity=5, sells_standard=True)
    session.add_all([student, staff, lot, other])
    session.flush()

    def product(lot_id: int, name: str, types: list[UserType], **fields: object) -> PermitProduct:
        values = {
            "kind": PermitKind.STANDARD,
            "pricing": Pricing.TERM,
            "price_cents": 16500,
            "term_start": TODAY - timedelta(days=10),
            "term_end": TODAY + timedelta(days=100),
            **fields,
        }
        row = PermitProduct(lot_id=lot_id, name=name, **values)
        row.eligible_user_types = types
        session.add(row)
        return row

    fall = product(lot.id, "Fall Term", [student, staff])
    staff_only = product(lot.id, "Staff Term", [staff], price_cents=20000)
    nobody = product(lot.id, "Unassigned Term", [])
    ended = product(
        lot.id,
        "Old Term",
        [student],
        term_start=TODAY - timedelta(days=200),
        term_end=TODAY - timedelta(days=1),
    )
    west = product(other.id, "West Term", [student], price_cents=9000)
    hourly = PermitProduct(
        lot_id=other.id, kind=PermitKind.TEMPORARY, name="Hourly", pricing=Pricing.HOURLY, price_cents=300
    )
    session.add(hourly)
    session.commit()
    liam = make_user(first_name="Liam", user_type="student")
    olivia = make_user(user_type="staff")
    nobody_user = make_user()
    session.add(Vehicle(user_id=liam.id, plate="CAAB 123", plate_normalized="CAAB123"))
    session.commit()
    return {
        "lot": lot.id,
        "other": other.id,
        "fall": fall.id,
        "staff_only": staff_only.id,
        "nobody": nobody.id,
        "ended": ended.id,
        "west": west.id,
        "hourly": hourly.id,
        "liam": liam.id,
        "olivia": olivia.id,
        "typeless": nobody_user.id,
        "staff_type": staff.id,
    }


def add(session: Session, user: int, product: int, plates: list[object] | None = None) -> carts.CartLine:
    line = carts.add_standard_item(session, user, product, plates or ["caab-123"], TZ, NOW)
    session.commit()
    return line


def pay(
    core, user: int, key: str = "key-1", number: str = SUCCESS_CARD, **kwargs: object
) -> carts.CartCheckout:
    return carts.checkout_cart(
        core.db,
        SandboxProvider(core.db),
        user,
        card(number),
        key,
        receipt=receipt(),
        backend=email.OutboxBackend(),
        now=NOW,
        **kwargs,
    )


def count(session: Session, statement) -> int:
    session.expire_all()
    return session.scalar(statement)


def test_the_offer_lists_what_the_user_type_may_buy(session, world) -> None:
    offer = carts.standard_offer(session, world["liam"], world["lot"], TZ, NOW)
    assert [o.name for o in offer.options] == ["Fall Term"]
    fall = offer.options[0]
    assert fall.price_cents == 16500 and fall.available == 2 and fall.allowance == 2
    assert fall.valid_from == permits.local_day_start(TODAY - timedelta(days=10), TZ)
    assert fall.valid_to == permits.local_day_start(TODAY + timedelta(days=101), TZ)
    assert offer.user_type == "Student"
    assert offer.not_eligible == 2  # the staff-only term and the term sold to no type
    assert offer.saved_plates == ("CAAB 123",)

    staff = carts.standard_offer(session, world["olivia"], world["lot"], TZ, NOW)
    assert [o.name for o in staff.options] == ["Fall Term", "Staff Term"]
    typeless = carts.standard_offer(session, world["typeless"], world["lot"], TZ, NOW)
    assert typeless.options == () and typeless.user_type is None


def test_an_unknown_or_closed_lot_is_not_found(session, world) -> None:
    with pytest.raises(NotFound):
        carts.standard_offer(session, world["liam"], 99999, TZ, NOW)
    session.get(Lot, world["lot"]).is_active = False
    session.commit()
    with pytest.raises(NotFound):
        carts.standard_offer(session, world["liam"], world["lot"], TZ, NOW)


def test_adding_cleans_the_plates_and_prices_the_term(session, world) -> None:
    line = add(session, world["liam"], world["fall"], ["caab-123", "", "  bxrt 508 "])
    assert line.plates == ("CAAB-123", "BXRT 508")
    assert line.amount_cents == 16500 and line.problem is None and line.available == 2
    add(session, world["liam"], world["west"])
    view = carts.cart_view(session, world["liam"], TZ, NOW)
    assert [line.name for line in view.lines] == ["Fall Term", "West Term"]
    assert view.total_cents == 25500 and view.payable
    assert count(session, select(func.count(Cart.id))) == 1  # one open cart, reused


def test_the_same_permit_is_not_added_twice(session, world) -> None:
    add(session, world["liam"], world["fall"])
    with pytest.raises(ValidationFailed) as caught:
        add(session, world["liam"], world["fall"], ["OTHER1"])
    assert "already in your cart" in caught.value.errors["product"]


@pytest.mark.parametrize(
    ("plates", "field", "message"),
    [
        ([], "plates", "at least one"),
        (["", "  "], "plates", "at least one"),
        (["A"], "plate_1", "2 to 10"),
        (["ABC123", "abc-123"], "plate_2", "already on the permit"),
        (["AA11", "BB22", "CC33", "DD44"], "plates", "at most 3"),
    ],
)
def test_plates_are_checked(session, world, plates, field, message) -> None:
    with pytest.raises(ValidationFailed) as caught:
        carts.add_standard_item(session, world["liam"], world["fall"], plates, TZ, NOW)
    assert message in caught.value.errors[field]


def test_only_eligible_user_types_may_add(session, world) -> None:
    with pytest.raises(NotAllowed):
        add(session, world["liam"], world["staff_only"])
    with pytest.raises(NotAllowed):  # a product sold to no type is sold to nobody
        add(session, world["olivia"], world["nobody"])
    with pytest.raises(NotAllowed):
        add(session, world["typeless"], world["fall"])
    assert count(session, select(func.count(Cart.id))) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s, w: setattr(s.get(PermitProduct, w["fall"]), "is_active", False), "no longer sold"),
        (lambda s, w: setattr(s.get(Lot, w["lot"]), "sells_standard", False), "does not sell standard"),
    ],
)
def test_a_product_not_on_sale_is_refused(session, world, change, message) -> None:
    change(session, world)
    session.commit()
    with pytest.raises(ValidationFailed) as caught:
        add(session, world["liam"], world["fall"])
    assert message in caught.value.errors["product"]


def test_ended_terms_and_temporary_products_cannot_be_added(session, world) -> None:
    with pytest.raises(ValidationFailed, match="ended"):
        add(session, world["liam"], world["ended"])
    with pytest.raises(ValidationFailed, match="not a standard permit"):
        add(session, world["liam"], world["hourly"])


def sell_out(session: Session, lot_id: int, product_id: int, spaces: int) -> None:
    """Fill the lot with active permits of other drivers for the term."""
    start, end = permits.term_window(session.get(PermitProduct, product_id), TZ)
    for n in range(spaces):
        permit = Permit(
            number=f"X-{lot_id}-{n}",
            kind=PermitKind.STANDARD,
            status=PermitStatus.ACTIVE,
            lot_id=lot_id,
            product_id=product_id,
            valid_from=start,
            valid_to=end,
        )
        permit.vehicles = [PermitVehicle(plate=f"ZZ{n}", plate_normalized=f"ZZ{n}")]
        session.add(permit)
    session.commit()


def test_a_sold_out_term_cannot_be_added(session, world) -> None:
    sell_out(session, world["lot"], world["fall"], 2)
    with pytest.raises(SoldOut):
        add(session, world["liam"], world["fall"])
    offer = carts.standard_offer(session, world["liam"], world["lot"], TZ, NOW)
    assert offer.options[0].sold_out


def test_only_ones_own_items_can_be_removed(session, world) -> None:
    line = add(session, world["liam"], world["fall"])
    with pytest.raises(NotFound):
        carts.remove_item(session, world["olivia"], line.item_id)
    assert [line.item_id for line in carts.cart_view(session, world["olivia"], TZ, NOW).lines] == []
    carts.remove_item(session, world["liam"], line.item_id)
    session.commit()
    assert carts.cart_view(session, world["liam"], TZ, NOW).lines == ()


def test_paying_activates_the_permits_and_closes_the_cart(core, session, world) -> None:
    add(session, world["liam"], world["fall"], ["CAAB 123", "BXRT 508"])
    add(session, world["liam"], world["west"])
    outcome = pay(core, world["liam"], expected_total_cents=25500)
    assert outcome.paid and outcome.payment is not None and outcome.payment.receipt_token
    numbers = {p.number for p in outcome.payment.permits}
    assert len(numbers) == 2 and all(n.startswith("S-") for n in numbers)
    session.expire_all()
    sold = session.scalars(select(Permit).where(Permit.user_id == world["liam"])).all()
    assert {p.status for p in sold} == {PermitStatus.ACTIVE}
    assert session.scalars(select(Cart)).one().status == CartStatus.CHECKED_OUT
    assert count(session, select(func.count(SandboxCharge.id))) == 1
    assert session.scalar(select(SandboxCharge.amount_cents)) == 25500
    receipts = session.scalars(select(OutboxMessage)).all()
    assert len(receipts) == 2 and all(m.to_addresses == [sold[0].email] for m in receipts)
    check = permits.check_plate(session, "bxrt508", world["lot"], NOW, TZ)
    assert check.valid and check.permits[0].number in numbers
    assert carts.cart_view(session, world["liam"], TZ, NOW).lines == ()


def test_the_same_key_is_charged_once_even_after_the_cart_closed(core, session, world) -> None:
    add(session, world["liam"], world["fall"])
    first = pay(core, world["liam"])
    again = pay(core, world["liam"])
    assert first.paid and again.paid
    assert again.payment.receipt_token == first.payment.receipt_token
    assert count(session, select(func.count(SandboxCharge.id))) == 1
    assert count(session, select(func.count(Permit.id))) == 1


def test_another_users_key_is_refused(core, session, world) -> None:
    add(session, world["liam"], world["fall"])
    pay(core, world["liam"], key="liams-key")
    with pytest.raises(ValidationFailed):
        pay(core, world["olivia"], key="liams-key")


@pytest.mark.parametrize("number", [DECLINED_CARD, NETWORK_ERROR_CARD])
def test_a_declined_or_failed_card_leaves_nothing_half_done(core, session, world, number) -> None:
    add(session, world["liam"], world["fall"])
    outcome = pay(core, world["liam"], number=number)
    assert outcome.status == ("declined" if number == DECLINED_CARD else "failed")
    session.expire_all()
    assert count(session, select(func.count(Permit.id)).where(Permit.status != PermitStatus.CANCELLED)) == 0
    charged = select(func.count(SandboxCharge.id)).where(SandboxCharge.status == PaymentStatus.SUCCEEDED)
    assert count(session, charged) == 0
    assert session.scalars(select(Cart)).one().status == CartStatus.OPEN  # the user can try again
    assert count(session, select(func.count(OutboxMessage.id))) == 0
    assert permits.lot_availability(session, world["lot"], NOW, NOW + timedelta(hours=1), NOW).available == 2
    retry = pay(core, world["liam"], key="key-2")
    assert retry.paid


def test_an_item_that_sold_out_is_named_and_nothing_is_charged(core, session, world) -> None:
    add(session, world["liam"], world["fall"])
    add(session, world["liam"], world["west"])
    sell_out(session, world["lot"], world["fall"], 2)
    outcome = pay(core, world["liam"])
    assert outcome.status == "sold_out"
    assert [line.name for line in outcome.problems] == ["Fall Term"]
    assert "Fall Term (Lot E1): sold out" in outcome.message
    assert count(session, select(func.count(Payment.id))) == 0
    assert count(session, select(func.count(SandboxCharge.id))) == 0


def test_an_item_no_longer_sold_to_the_user_is_named(core, session, world) -> None:
    add(session, world["liam"], world["fall"])
    session.get(PermitProduct, world["fall"]).eligible_user_types = [
        session.get(UserType, world["staff_type"])
    ]
    session.commit()
    outcome = pay(core, world["liam"])
    assert outcome.status == "unavailable"
    assert "not sold to your user type" in outcome.message
    assert count(session, select(func.count(SandboxCharge.id))) == 0


def test_a_changed_total_is_refused(core, session, world) -> None:
    add(session, world["liam"], world["fall"])
    session.get(PermitProduct, world["fall"]).price_cents = 17500
    session.commit()
    outcome = pay(core, world["liam"], expected_total_cents=16500)
    assert outcome.status == "changed"
    assert count(session, select(func.count(Payment.id))) == 0
    assert pay(core, world["liam"], key="key-2", expected_total_cents=17500).paid


def test_an_empty_cart_cannot_be_paid(core, world) -> None:
    with pytest.raises(ValidationFailed):
        pay(core, world["liam"])
