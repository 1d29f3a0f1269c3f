"""Waitlists: joining only when sold out, one entry per person, first come first served, offers that
hold a space (others are sold out, the offered buyer books it), expiry passing the space on, a
raised allowance offering at once, the offer email, and the every-minute system task."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard.services import capacity, email, permits, waitlist
from dashboard.services.errors import NotAllowed, NotFound, ValidationFailed
from dashboard.services.permits import PermitRequest, SoldOut
from dashboard.services.plates import clean_plate
from models import (
    Lot,
    OutboxMessage,
    Permit,
    PermitKind,
    PermitProduct,
    PermitStatus,
    Pricing,
    Role,
    UserType,
    WaitlistEntry,
    WaitlistStatus,
)
from workers.tasks import REGISTRY, TaskContext

TZ = ZoneInfo("America/Toronto")
NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # Monday 10:00 in Toronto
HOLD = timedelta(hours=24)


@pytest.fixture
def lot(session) -> dict[str, int]:
    """Two spaces; an hourly temporary product and a winter-term standard one."""
    row = Lot(name="Visitor Lot", code="V1", capacity=2, sells_temporary=True)
    session.add(row)
    session.flush()
    hourly = PermitProduct(
        lot_id=row.id,
        kind=PermitKind.TEMPORARY,
        name="Hourly",
        pricing=Pricing.HOURLY,
        price_cents=250,
        max_duration_minutes=8 * 60,
    )
    term = PermitProduct(
        lot_id=row.id,
        kind=PermitKind.STANDARD,
        name="Winter Term",
        pricing=Pricing.TERM,
        price_cents=26500,
        term_start=date(2027, 1, 4),
        term_end=date(2027, 4, 30),
    )
    session.add_all([hourly, term])
    email.ensure_default_templates(session)
    session.commit()
    return {"lot": row.id, "hourly": hourly.id, "term": term.id}


@pytest.fixture
def policy() -> waitlist.OfferPolicy:
    return waitlist.OfferPolicy(
        hold=HOLD, site_name="Campus", base_url="https://parking.test", tz=TZ, backend=email.OutboxBackend()
    )


def request(lot, user=None, plate="ABC 123", **changes) -> PermitRequest:
    values = {
        "lot_id": lot["lot"],
        "product_id": lot["hourly"],
        "plates": (clean_plate(plate),),
        "valid_from": NOW,
        "valid_to": NOW + timedelta(hours=2),
        "amount_cents": 500,
        "currency": "CAD",
        "email": user.email if user else "walk-in@example.com",
        "user_id": user.id if user else None,
    }
    return PermitRequest(**{**values, **changes})


def sell(session, lot, user=None, plate="ABC 123", now=NOW, **changes) -> permits.PermitView:
    held = permits.reserve(session, request(lot, user, plate, **changes), now)
    active = permits.activate(session, held.id, now)
    session.commit()
    return active


def sell_out(session, lot, now=NOW) -> list[permits.PermitView]:
    """Both spaces, for three days from ``now``."""
    until = now + timedelta(days=3)
    return [
        sell(session, lot, plate=plate, now=now, valid_from=now, valid_to=until)
        for plate in ("AAA111", "BBB222")
    ]


def sell_out_term(session, lot) -> None:
    start, end = permits.term_window(session.get(PermitProduct, lot["term"]), TZ)
    for plate in ("TTT111", "TTT222"):
        sell(session, lot, product_id=lot["term"], plate=plate, valid_from=start, valid_to=end)


def join(session, lot, user, product="hourly", now=NOW) -> waitlist.Joined:
    joined = waitlist.join(session, lot[product], user.id, None, now, TZ)
    session.commit()
    return joined


def statuses(session) -> dict[str, str]:
    session.expire_all()
    return {entry.email: str(entry.status) for entry in session.scalars(select(WaitlistEntry))}


# --- joining -------------------------------------------------------------------------------------


def test_joining_is_refused_while_spaces_are_free(session, lot, make_user):
    user = make_user(Role.USER)
    sell(session, lot, plate="AAA111")
    with pytest.raises(ValidationFailed) as caught:
        join(session, lot, user)
    assert "1 space(s) are free" in caught.value.errors["product"]
    state = waitlist.product_waitlist(session, lot["hourly"], user.id, NOW, TZ)
    assert (state.sold_out, state.available, state.can_join) == (False, 1, False)


def test_people_join_in_order_once_each(session, lot, make_user):
    sell_out(session, lot)
    first, second, third = (make_user(Role.USER) for _ in range(3))
    a = join(session, lot, first)
    b = join(session, lot, second, now=NOW + timedelta(minutes=1))
    c = join(session, lot, third, product="term", now=NOW + timedelta(minutes=2))
    assert (a.created, a.entry.position, b.entry.position, c.entry.position) == (True, 1, 2, 3)
    again = join(session, lot, first, now=NOW + timedelta(minutes=3))
    assert (again.created, again.entry.id, again.entry.position) == (False, a.entry.id, 1)
    assert session.query(WaitlistEntry).count() == 3
    state = waitlist.product_waitlist(session, lot["hourly"], second.id, NOW, TZ)
    assert state.sold_out and state.waiting == 3 and state.mine.position == 2
    assert "All 2 permits allowed in Visitor Lot are taken" in state.reason

    waitlist.leave(session, a.entry.id, first.id, NOW)
    session.commit()
    assert waitlist.position(session, b.entry.id) == 1
    assert waitlist.position(session, a.entry.id) is None
    rejoined = join(session, lot, first, now=NOW + timedelta(minutes=4))
    assert rejoined.created and rejoined.entry.position == 3  # the back of the line


def test_joining_checks_the_person_and_the_product(session, lot, make_user):
    sell_out(session, lot)
    sell_out_term(session, lot)
    session.add(UserType(code="staff", name="Staff"))
    session.commit()
    staff_only = session.get(PermitProduct, lot["term"])
    staff_only.eligible_user_types = list(session.scalars(select(UserType)))
    session.commit()
    student = make_user(Role.USER)
    staff = make_user(Role.USER, user_type="staff")
    with pytest.raises(NotAllowed):
        join(session, lot, student, product="term")
    assert join(session, lot, staff, product="term").entry.position == 1
    with pytest.raises(ValidationFailed) as caught:
        waitlist.join(session, lot["hourly"], None, "not an address", NOW, TZ)
    assert "email" in caught.value.errors
    guest = waitlist.join(session, lot["hourly"], None, "Guest@Example.com", NOW, TZ)
    assert guest.entry.email == "Guest@Example.com" and guest.entry.position == 2
    with pytest.raises(NotFound):
        waitlist.join(session, 999_999, student.id, None, NOW, TZ)
    session.get(PermitProduct, lot["hourly"]).is_active = False
    session.commit()
    with pytest.raises(ValidationFailed) as closed:
        join(session, lot, student)
    assert "not sold in Visitor Lot" in closed.value.errors["product"]


def test_someone_holding_the_permit_cannot_also_wait_for_it(session, lot, make_user):
    holder = make_user(Role.USER)
    sell(session, lot, holder, plate="AAA111")
    sell(session, lot, plate="BBB222")
    with pytest.raises(ValidationFailed) as caught:
        join(session, lot, holder)
    assert "already have" in caught.value.errors["product"]


def test_a_term_product_is_sold_out_for_its_term_not_for_now(session, lot, make_user):
    term = session.get(PermitProduct, lot["term"])
    start, end = permits.term_window(term, TZ)
    for plate in ("AAA111", "BBB222"):
        sell(session, lot, product_id=lot["term"], plate=plate, valid_from=start, valid_to=end)
    hourly_user, term_user = make_user(Role.USER), make_user(Role.USER)
    with pytest.raises(ValidationFailed):  # right now the lot is empty: book an hour instead
        join(session, lot, hourly_user)
    session.rollback()
    assert join(session, lot, term_user, product="term").entry.position == 1


def test_leaving_is_only_for_the_owner(session, lot, make_user):
    sell_out(session, lot)
    owner, other = make_user(Role.USER), make_user(Role.USER)
    entry = join(session, lot, owner).entry
    with pytest.raises(NotFound):
        waitlist.leave(session, entry.id, other.id, NOW)
    left = waitlist.leave(session, entry.id, owner.id, NOW)
    assert left.status == "cancelled" and not left.active
    assert waitlist.leave(session, entry.id, owner.id, NOW).status == "cancelled"
    assert [e.status for e in waitlist.entries_of(session, owner.id, NOW)] == ["cancelled"]


# --- offers --------------------------------------------------------------------------------------


def free_one(session, sold: list[permits.PermitView]) -> None:
    session.get(Permit, sold[0].id).status = PermitStatus.CANCELLED
    session.commit()


def test_a_freed_space_goes_to_the_first_in_line_and_is_held_for_them(session, lot, make_user, policy):
    sold = sell_out(session, lot)
    first, second = make_user(Role.USER), make_user(Role.USER)
    join(session, lot, first)
    join(session, lot, second, now=NOW + timedelta(minutes=1))
    assert waitlist.offer_next(session, lot["lot"], NOW, policy) == []  # nothing free yet
    free_one(session, sold)

    later = NOW + timedelta(minutes=5)
    made = waitlist.offer_next(session, lot["lot"], later, policy)
    session.commit()
    assert [(o.email, o.status, o.offer_expires_at) for o in made] == [(first.email, "offered", later + HOLD)]
    assert waitlist.offer_next(session, lot["lot"], later, policy) == []  # the space is held, not free
    assert waitlist.position(session, made[0].id) is None
    assert [e.position for e in waitlist.entries_of(session, second.id, later)] == [1]

    # Someone else trying to buy is sold out while the offer is open ...
    with pytest.raises(SoldOut):
        permits.reserve(session, request(lot, second, "CCC333", valid_from=later), later)
    session.rollback()
    walk_in = request(lot, None, "DDD444", valid_from=later)
    with pytest.raises(SoldOut):
        permits.reserve(session, walk_in, later)
    session.rollback()
    # ... and the offered buyer books it the normal way, which fulfils the offer.
    bought = sell(
        session, lot, first, "EEE555", now=later, valid_from=later, valid_to=later + timedelta(hours=1)
    )
    assert bought.status == "active"
    assert statuses(session) == {first.email: "fulfilled", second.email: "waiting"}
    mine = waitlist.entries_of(session, first.id, later)
    assert [(e.status, e.position) for e in mine] == [("fulfilled", None)]


def test_the_offer_email_has_the_booking_link_and_the_local_expiry(session, lot, make_user, policy):
    sold = sell_out(session, lot)
    sell_out_term(session, lot)
    user = make_user(Role.USER, first_name="Sam", last_name="Lee")
    term_user = make_user(Role.USER)
    join(session, lot, user)
    free_one(session, sold)
    waitlist.offer_next(session, lot["lot"], NOW, policy)
    session.commit()
    message = session.scalars(select(OutboxMessage)).one()
    assert message.to_addresses == [user.email]
    assert message.template_key == "waitlist-offer"
    assert "Hourly at Visitor Lot" in message.subject
    assert f"https://parking.test/checkout/temp/{lot['lot']}" in message.body_text
    assert "Hello Sam Lee" in message.body_text
    assert "2026-12-01 10:00 EST" in message.body_text  # NOW + 24 h, in Toronto

    # A standard product's offer links to the booking page instead.
    join(session, lot, term_user, product="term")
    session.get(Lot, lot["lot"]).permits_allowed = 4
    session.commit()
    waitlist.offer_next(session, lot["lot"], NOW, policy)
    session.commit()
    bodies = [m.body_text for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
    assert f"https://parking.test/permits/book/{lot['lot']}" in bodies[-1]


def test_an_offer_nobody_takes_passes_to_the_next_person(session, lot, make_user, policy):
    sold = sell_out(session, lot)
    first, second = make_user(Role.USER), make_user(Role.USER)
    join(session, lot, first)
    join(session, lot, second, now=NOW + timedelta(minutes=1))
    free_one(session, sold)
    waitlist.offer_next(session, lot["lot"], NOW, policy)
    session.commit()

    just_before = waitlist.expire_offers(session, NOW + HOLD - timedelta(seconds=1), policy)
    assert (just_before.expired, just_before.offered) == (0, ())
    lapsed = NOW + HOLD
    # At the expiry the offer stops holding its space, even before the task records it.
    assert [e.status for e in waitlist.entries_of(session, first.id, lapsed)] == ["expired"]
    result = waitlist.expire_offers(session, lapsed, policy)
    session.commit()
    assert result.expired == 1 and [o.email for o in result.offered] == [second.email]
    assert statuses(session) == {first.email: "expired", second.email: "offered"}
    with pytest.raises(SoldOut):  # too late: the space is the next person's now
        permits.reserve(session, request(lot, first, "HHH888", valid_from=lapsed), lapsed)
    session.rollback()
    recipients = [m.to_addresses for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
    assert recipients == [[first.email], [second.email]]


def test_a_person_whose_period_is_still_full_is_passed_over_not_blocking(session, lot, make_user, policy):
    term = session.get(PermitProduct, lot["term"])
    start, end = permits.term_window(term, TZ)
    session.get(Lot, lot["lot"]).permits_allowed = 1
    session.commit()
    sell(session, lot, product_id=lot["term"], plate="AAA111", valid_from=start, valid_to=end)
    term_waiter, hourly_waiter = make_user(Role.USER), make_user(Role.USER)
    join(session, lot, term_waiter, product="term")
    # The next hour has room, but someone is waiting: the newcomer may still queue.
    join(session, lot, hourly_waiter, now=NOW + timedelta(minutes=1))
    made = waitlist.offer_next(session, lot["lot"], NOW + timedelta(minutes=2), policy)
    session.commit()
    assert [o.email for o in made] == [hourly_waiter.email]
    assert statuses(session) == {term_waiter.email: "waiting", hourly_waiter.email: "offered"}


def test_raising_the_allowance_offers_the_new_spaces(session, lot, make_user, policy):
    sell_out(session, lot)
    waiting = [make_user(Role.USER) for _ in range(3)]
    for minute, user in enumerate(waiting):
        join(session, lot, user, now=NOW + timedelta(minutes=minute))
    manager = make_user(Role.MANAGER)
    saved = capacity.set_allowance(session, lot["lot"], 4, manager.id, NOW, policy)
    session.commit()
    assert (saved.old, saved.new, saved.offers) == (2, 4, 2)
    assert statuses(session) == {
        waiting[0].email: "offered",
        waiting[1].email: "offered",
        waiting[2].email: "waiting",
    }
    lowered = capacity.set_allowance(session, lot["lot"], 3, manager.id, NOW, policy)
    assert lowered.offers == 0  # lowering frees nothing, and takes no offer back
    assert statuses(session)[waiting[0].email] == "offered"


def test_the_system_task_expires_and_offers(core, session, lot, make_user):
    """The task runs at the real time, so this test's moments are relative to it."""
    now = datetime.now(UTC)
    sold = sell_out(session, lot, now=now - timedelta(hours=1))
    first, second = make_user(Role.USER), make_user(Role.USER)
    join(session, lot, first, now=now - timedelta(minutes=2))
    join(session, lot, second, now=now - timedelta(minutes=1))
    session.add(
        WaitlistEntry(
            product_id=lot["hourly"],
            lot_id=lot["lot"],
            email="lapsed@example.com",
            status=WaitlistStatus.OFFERED,
            offered_at=now - timedelta(days=2),
            offer_expires_at=now - timedelta(days=1),
            offer_token="x" * 32,
            created_at=now - timedelta(days=3),
        )
    )
    free_one(session, sold)
    task = REGISTRY.get("waitlist-offers")
    assert (task.definition.default_interval_seconds, task.definition.default_enabled) == (60, True)
    context = TaskContext(core=core, logger=logging.getLogger("test"))
    result = task.body(context)
    assert result.rows_touched == 2
    assert result.message.startswith(
        "0 abandoned checkouts closed; 0 charged checkouts settled; 0 payments awaiting the processor; "
        "1 lapsed offers expired; 1 offers made"
    )
    assert statuses(session) == {
        "lapsed@example.com": "expired",
        first.email: "offered",
        second.email: "waiting",
    }
    again = task.body(context)
    assert again.rows_touched == 0  # nothing is offered twice
    assert [m.to_addresses for m in session.scalars(select(OutboxMessage))] == [[first.email]]
    offer = session.scalars(select(WaitlistEntry).where(WaitlistEntry.email == first.email)).one()
    hold = timedelta(minutes=1440)  # the setting's default
    assert now <= offer.offer_expires_at - hold <= datetime.now(UTC)
