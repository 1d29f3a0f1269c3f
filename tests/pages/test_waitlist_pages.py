"""The waitlist pages over HTTP: signed-in users only; the join page says why a permit is sold out,
puts the person in line once and tells their place; My Waitlist lists their own entries only, shows
an offer's booking link and local expiry, and lets them leave."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from models import (
    Lot,
    Permit,
    PermitKind,
    PermitProduct,
    PermitStatus,
    Pricing,
    Role,
    WaitlistEntry,
    WaitlistStatus,
)
from tests.dash_helpers import dash_post, find_output, outputs_of, press

SHOW = "waitlistjoin-content.children"
JOIN = "waitlistjoin-result.children"
ENTRIES = "waitlist-entries.children"
LEAVE = "waitlist-flash.children"


@pytest.fixture
def product(session) -> dict[str, int]:
    """A one-space lot whose space is taken for the next three hours: its hourly permit is sold out."""
    now = datetime.now(UTC)
    lot = Lot(name="Visitor Lot", capacity=1, sells_temporary=True)
    session.add(lot)
    session.flush()
    hourly = PermitProduct(
        lot_id=lot.id,
        kind=PermitKind.TEMPORARY,
        name="Hourly",
        pricing=Pricing.HOURLY,
        price_cents=250,
        max_duration_minutes=480,
    )
    session.add(hourly)
    session.add(
        Permit(
            number="T-TAKEN",
            kind=PermitKind.TEMPORARY,
            status=PermitStatus.ACTIVE,
            lot_id=lot.id,
            valid_from=now - timedelta(hours=1),
            valid_to=now + timedelta(hours=3),
        )
    )
    session.commit()
    return {"lot": lot.id, "product": hourly.id}


def show(client, app, product_id) -> Any:
    return dash_post(client, app, find_output(app, SHOW), [str(product_id), 0])


def join(client, app, product_id) -> Any:
    return press(client, app, JOIN, "waitlistjoin-join", values={"waitlistjoin-product": str(product_id)})


def entries(client, app) -> Any:
    return dash_post(client, app, find_output(app, ENTRIES), ["/waitlist", 0, 0])


def leave(client, app, entry_id) -> Any:
    button = {"type": "waitlist-leave", "entry": entry_id}
    return press(client, app, LEAVE, button, rows={"waitlist-leave": [button]})


def test_the_pages_are_for_signed_in_users(login_as, product) -> None:
    guest = login_as(Role.GUEST)
    assert guest.get("/waitlist").status_code == 302
    assert guest.get(f"/waitlist/join/{product['product']}").status_code == 302
    user = login_as(Role.USER)
    assert user.get("/waitlist").status_code == 200
    page = user.get(f"/waitlist/join/{product['product']}")
    assert page.status_code == 200 and b"Visitor Lot" not in page.data


def test_guests_get_nothing_from_the_callbacks(app, login_as, session, product) -> None:
    guest = login_as(Role.GUEST)
    assert show(guest, app, product["product"]).status_code == 401
    assert join(guest, app, product["product"]).status_code == 401
    assert entries(guest, app).status_code == 401
    assert leave(guest, app, 1).status_code == 401
    assert session.scalars(select(WaitlistEntry)).all() == []


def test_a_user_joins_a_sold_out_permit_once(app, login_as, session, product) -> None:
    first, second = login_as(Role.USER), login_as(Role.USER)
    shown = outputs_of(show(first, app, product["product"]))
    content = json.dumps(shown["waitlistjoin-content"])
    assert "Hourly" in content and "Visitor Lot" in content
    assert "All 1 permits allowed in Visitor Lot are taken" in content
    assert "hold it for you for 24 hours" in content
    assert shown["waitlistjoin-join"]["disabled"] is False

    joined = outputs_of(join(first, app, product["product"]))
    assert "You joined the waitlist for Hourly in Visitor Lot" in json.dumps(joined)
    assert first.user.email in json.dumps(joined) and joined["waitlistjoin-version"]["data"] == 1
    outputs_of(join(second, app, product["product"]))
    mine = json.dumps(outputs_of(show(first, app, product["product"]))["waitlistjoin-content"])
    assert "You are on the waitlist: number 1 in line." in mine
    again = json.dumps(outputs_of(join(first, app, product["product"])))
    assert "You were already on this waitlist." in again
    assert len(session.scalars(select(WaitlistEntry)).all()) == 2

    after = outputs_of(show(second, app, product["product"]))
    assert "You are on the waitlist: number 2 in line." in json.dumps(after["waitlistjoin-content"])
    assert after["waitlistjoin-join"]["disabled"] is True


def test_a_permit_with_free_spaces_links_to_booking(app, login_as, session, product) -> None:
    session.get(Lot, product["lot"]).permits_allowed = 2
    session.commit()
    user = login_as(Role.USER)
    shown = outputs_of(show(user, app, product["product"]))
    assert f"/checkout/temp/{product['lot']}" in json.dumps(shown["waitlistjoin-content"])
    assert shown["waitlistjoin-join"]["disabled"] is True
    refused = json.dumps(outputs_of(join(user, app, product["product"])))
    assert "You could not join:" in refused and "book it now instead" in refused
    assert session.scalars(select(WaitlistEntry)).all() == []


def test_an_unknown_permit_says_so(app, login_as) -> None:
    user = login_as(Role.USER)
    for raw in ("999999", "none", "1; DROP"):
        shown = outputs_of(dash_post(user, app, find_output(app, SHOW), [raw, 0]))
        assert "There is no such permit." in json.dumps(shown)


def test_my_waitlist_shows_my_entries_offers_and_leaving(app, core, login_as, session, product) -> None:
    me, someone = login_as(Role.USER), login_as(Role.USER)
    assert "You are not on any waitlist" in json.dumps(outputs_of(entries(me, app)))
    outputs_of(join(someone, app, product["product"]))
    outputs_of(join(me, app, product["product"]))
    listed = json.dumps(outputs_of(entries(me, app)))
    assert "Number 2 in line for Visitor Lot: 1 person is ahead of you." in listed
    assert someone.user.email not in listed

    offer = session.scalars(select(WaitlistEntry).where(WaitlistEntry.user_id == someone.user.id)).one()
    expires = datetime(2030, 1, 15, 17, 30, tzinfo=UTC)
    offer.status, offer.offered_at, offer.offer_expires_at = (
        WaitlistStatus.OFFERED,
        datetime.now(UTC),
        expires,
    )
    session.commit()
    theirs = json.dumps(outputs_of(entries(someone, app)))
    assert "A space is held for you until " in theirs
    assert "Tue Jan 15, 12:30 EST" in theirs  # site time, America/Toronto
    assert f"/checkout/temp/{product['lot']}" in theirs and "Decline the offer" in theirs

    mine = session.scalars(select(WaitlistEntry).where(WaitlistEntry.user_id == me.user.id)).one()
    # Nobody leaves another person's entry.
    refused = outputs_of(leave(someone, app, mine.id))
    assert refused["waitlist-flash"]["color"] == "danger"
    session.expire_all()
    assert session.get(WaitlistEntry, mine.id).status == WaitlistStatus.WAITING

    left = outputs_of(leave(me, app, mine.id))
    assert left["waitlist-flash"]["children"] == "You left the waitlist for Hourly in Visitor Lot."
    session.expire_all()
    assert session.get(WaitlistEntry, mine.id).status == WaitlistStatus.CANCELLED
    after = json.dumps(outputs_of(entries(me, app)))
    assert "You are not waiting for anything now." in after and "You left this waitlist." in after
