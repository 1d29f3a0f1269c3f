"""The user-side map's data: guests see only temporary permits, signed-in users both; the donut
shows percent *available* of the group's primary figure; closed and stale groups say so; hidden
groups (and groups without a location, on the map) are absent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.core import Core
from dashboard.services import demo, maps, occupancy
from dashboard.services.errors import NotFound
from dashboard.services.occupancy import LiveStore
from models import Lot, LotGroup, OccupancySource


@pytest.fixture
def seeded(core: Core, session: Session, tmp_path) -> dict[str, int]:
    demo.seed_demo(session, core.secrets, tmp_path)
    session.commit()
    return {group.name: group.id for group in session.scalars(select(LotGroup))}


def _now() -> datetime:
    return datetime.now(UTC)


def _groups(core: Core, session: Session, *, logged_in: bool) -> dict[str, maps.UserMapGroup]:
    policy = occupancy.load_policy(session, core.secrets)
    found = maps.user_map_groups(session, LiveStore(core.redis), policy, _now(), logged_in=logged_in)
    return {group.name: group for group in found}


def _apply(core: Core, session: Session, group_id: int, occupied: int, capacity: int, ts: datetime) -> None:
    occupancy.apply_figure(
        session,
        LiveStore(core.redis),
        group_id,
        OccupancySource.DEVICES,
        occupied,
        capacity,
        ts,
        step_percent=5,
    )
    session.commit()


def test_guests_see_only_temporary_permits(core, session, seeded) -> None:
    groups = _groups(core, session, logged_in=False)
    lots = [lot for group in groups.values() for lot in group.lots]
    assert lots
    assert not any(lot.offers_standard for lot in lots)
    assert any(lot.offers_temporary for lot in lots)
    columbia = {lot.name: lot for lot in groups["Columbia Street Lots"].lots}
    assert (columbia["Lot CX Overflow"].offers_standard, columbia["Lot CX Overflow"].offers_temporary) == (
        False,
        True,
    )
    assert not columbia["Lot C Faculty"].offers_any


def test_signed_in_users_see_standard_and_temporary_permits(core, session, seeded) -> None:
    columbia = {lot.name: lot for lot in _groups(core, session, logged_in=True)["Columbia Street Lots"].lots}
    assert (columbia["Lot CX Overflow"].offers_standard, columbia["Lot CX Overflow"].offers_temporary) == (
        True,
        True,
    )
    assert (columbia["Lot C Faculty"].offers_standard, columbia["Lot C Faculty"].offers_temporary) == (
        True,
        False,
    )
    assert (columbia["Columbia Pay Lot"].offers_standard, columbia["Columbia Pay Lot"].offers_temporary) == (
        False,
        True,
    )


def test_the_donut_shows_percent_available_of_the_primary_figure(core, session, seeded) -> None:
    group_id = seeded["Columbia Street Lots"]
    _apply(core, session, group_id, 30, 120, _now())
    group = _groups(core, session, logged_in=False)["Columbia Street Lots"]
    assert group.percent_available == 75.0  # 30 of 120 taken
    assert group.status == "open"
    assert (group.color, group.lat, group.lon) == ("#2ca02c", 43.4786, -80.5532)


def test_without_sensor_data_the_permit_figure_stands_in(core, session, seeded) -> None:
    policy = occupancy.load_policy(session, core.secrets)
    state = occupancy.group_states(
        session, LiveStore(core.redis), policy.staleness, _now(), [seeded["West Campus Surface"]]
    )[0]
    assert state.physical is None
    group = _groups(core, session, logged_in=False)["West Campus Surface"]
    assert group.percent_available == pytest.approx(100.0 - state.permits.percent, abs=0.1)
    lots = {lot.lot_id: lot for lot in group.lots}
    for lot in state.lots:
        assert lots[lot.lot_id].percent_full == lot.percent


def test_closed_and_stale_groups(core, session, seeded) -> None:
    _apply(core, session, seeded["Village Residence Lots"], 10, 100, _now() - timedelta(hours=5))
    _apply(core, session, seeded["Health Sciences Deck"], 10, 100, _now())
    session.get(LotGroup, seeded["Health Sciences Deck"]).is_closed = True
    session.commit()
    groups = _groups(core, session, logged_in=True)
    stale = groups["Village Residence Lots"]
    assert stale.status == "stale" and stale.percent_available == 90.0
    closed = groups["Health Sciences Deck"]
    assert closed.status == "closed" and closed.percent_available is None


def test_hidden_and_unlocated_groups_are_not_on_the_map(core, session, seeded) -> None:
    session.add(LotGroup(name="Nowhere Lot Group", show_on_map=True))
    session.commit()
    groups = _groups(core, session, logged_in=True)
    assert "Central Services Yard" not in groups
    assert "Nowhere Lot Group" not in groups
    assert len(groups) == 7


def test_a_group_whose_lots_sell_nothing_waits_off_the_map(core, session, seeded) -> None:
    """A new group (no lots yet) would show a pin with "No data" and nothing to book."""
    empty = LotGroup(name="New Deck", latitude=43.47, longitude=-80.54, show_on_map=True)
    session.add(empty)
    session.flush()
    session.add(Lot(name="New Deck Level 1", capacity=50, lot_group_id=empty.id, sells_standard=False))
    session.commit()
    assert "New Deck" not in _groups(core, session, logged_in=True)  # its lot sells no permit yet
    session.scalars(select(Lot).where(Lot.name == "New Deck Level 1")).one().sells_temporary = True
    session.commit()
    assert "New Deck" in _groups(core, session, logged_in=False)


def test_lot_group_page(core, session, seeded) -> None:
    policy = occupancy.load_policy(session, core.secrets)
    store = LiveStore(core.redis)
    guest = maps.lot_group_page(session, store, policy, _now(), seeded["Ring Road East"], logged_in=False)
    user = maps.lot_group_page(session, store, policy, _now(), seeded["Ring Road East"], logged_in=True)
    assert guest.name == "Ring Road East"
    assert [lot.offers_standard for lot in guest.lots] == [False, False, False]
    assert [lot.offers_standard for lot in user.lots] == [True, True, False]
    with pytest.raises(NotFound):
        maps.lot_group_page(session, store, policy, _now(), seeded["Central Services Yard"], logged_in=True)
    with pytest.raises(NotFound):
        maps.lot_group_page(session, store, policy, _now(), 999_999, logged_in=True)
