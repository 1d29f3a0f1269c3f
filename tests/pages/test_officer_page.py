"""Lot Status (officers) over HTTP: guests and users get no cards; an officer gets one card per lot
with its group's physical figure and the lot's own permit figure, sorted by fullness or name."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.services import occupancy
from dashboard.services.demo import seed_demo
from dashboard.services.occupancy import LiveStore
from models import Lot, LotGroup, OccupancySource, Role
from tests.dash_helpers import dash_post, find_output, outputs_of

CARDS = "officer-cards.children"


@pytest.fixture
def campus(core, session, tmp_path) -> dict[str, int]:
    seed_demo(session, core.secrets, tmp_path)
    session.commit()
    return {group.name: group.id for group in session.scalars(select(LotGroup))}


def record(core, session, group_id: int, source: OccupancySource, occupied: int, capacity: int) -> None:
    occupancy.apply_figure(
        session,
        LiveStore(core.redis),
        group_id,
        source,
        occupied,
        capacity,
        datetime.now(UTC),
        step_percent=5,
    )
    session.commit()


def cards(client, app, order: str | None = "fullest") -> list[dict[str, Any]]:
    response = dash_post(client, app, find_output(app, CARDS), [None, 1, order])
    return outputs_of(response)["officer-cards"]["children"]


def card_ids(found: list[dict[str, Any]]) -> list[int]:
    return [int(card["props"]["id"].removeprefix("officer-lot-")) for card in found]


def test_the_page_is_for_officers(login_as, campus) -> None:
    assert login_as(Role.GUEST).get("/officer").status_code == 302
    assert login_as(Role.USER).get("/officer").status_code == 403
    page = login_as(Role.OFFICER).get("/officer")
    assert page.status_code == 200
    assert b"Lot E1 Engineering" not in page.data  # the layout holds no data


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403)])
def test_lower_roles_get_no_cards(app, login_as, campus, role, status) -> None:
    response = dash_post(login_as(role), app, find_output(app, CARDS), [None, 1, "name"])
    assert response.status_code == status
    assert b"Lot E1 Engineering" not in response.data


def test_an_officer_sees_each_lot_with_both_figures(app, login_as, core, session, campus) -> None:
    record(core, session, campus["Ring Road East"], OccupancySource.MISTALL, 123, 400)
    found = cards(login_as(Role.OFFICER), app)
    lots = {lot.id: lot for lot in session.scalars(select(Lot).where(Lot.is_active))}
    assert sorted(card_ids(found)) == sorted(lot.id for lot in lots.values() if lot.lot_group_id is not None)
    e1 = session.scalar(select(Lot).where(Lot.name == "Lot E1 Engineering"))
    with core.db.session() as s:
        state = occupancy.group_states(
            s, LiveStore(core.redis), occupancy.Staleness(), datetime.now(UTC), [e1.lot_group_id]
        )[0]
    permits = next(lot for lot in state.lots if lot.lot_id == e1.id)
    card = json.dumps(next(c for c in found if c["props"]["id"] == f"officer-lot-{e1.id}"))
    assert "Lot E1 Engineering" in card and "Ring Road East" in card
    assert "Physical: " in card and "123 / 400" in card and "Mistall" in card
    assert "Permits: " in card and f"{permits.sold} / {permits.allowance}" in card


def test_the_sort_orders_by_fullness_or_name(app, login_as, core, session, campus) -> None:
    """Fullness is the group's physical percent, else the lot's permit percent; closed lots last."""
    record(core, session, campus["Ring Road East"], OccupancySource.MISTALL, 400, 400)
    record(core, session, campus["West Campus Surface"], OccupancySource.DEVICES, 8, 800)
    closed = campus["Village Residence Lots"]
    session.get(LotGroup, closed).is_closed = True
    session.commit()
    with core.db.session() as s:
        states = occupancy.group_states(s, LiveStore(core.redis), occupancy.Staleness(), datetime.now(UTC))
    group_of = {lot.lot_id: state.group_id for state in states for lot in state.lots}
    names = {lot.lot_id: lot.name for state in states for lot in state.lots}
    physical = {campus["Ring Road East"]: 100.0, campus["West Campus Surface"]: 1.0}
    percent = {
        lot.lot_id: physical.get(state.group_id, lot.percent or 0.0) for state in states for lot in state.lots
    }
    officer = login_as(Role.OFFICER)

    fullest = card_ids(cards(officer, app, "fullest"))
    emptiest = card_ids(cards(officer, app, "emptiest"))
    for order, descending in ((fullest, True), (emptiest, False)):
        open_ids = [i for i in order if group_of[i] != closed]
        assert {group_of[i] for i in order[len(open_ids) :]} == {closed}  # closed lots come last
        values = [percent[i] for i in open_ids]
        assert values == sorted(values, reverse=descending)
    assert group_of[fullest[0]] == campus["Ring Road East"] or percent[fullest[0]] >= 100.0
    west = [emptiest.index(i) for i in emptiest if group_of[i] == campus["West Campus Surface"]]
    east = [emptiest.index(i) for i in emptiest if group_of[i] == campus["Ring Road East"]]
    assert max(west) < min(east)

    by_name = card_ids(cards(officer, app, "name"))
    assert [names[i] for i in by_name] == sorted((names[i] for i in by_name), key=str.lower)
