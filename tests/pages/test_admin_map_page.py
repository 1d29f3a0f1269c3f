"""Real-Time Map (Admin) over HTTP: guests, users and officers get no pins; a manager gets one pin
per mapped lot group, whose popup holds the physical figure and, below it, the permits sold per lot,
each labelled, with the note that they are meant to differ; a closed group's pin reads Closed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.services import occupancy
from dashboard.services.demo import seed_demo
from dashboard.services.occupancy import LiveStore
from models import LotGroup, OccupancySource, Role
from tests.dash_helpers import callback_entry, dash_post, find_output, outputs_of

MARKERS = "adminmap-markers.children"


@pytest.fixture
def campus(core, session, tmp_path) -> dict[str, int]:
    seed_demo(session, core.secrets, tmp_path)
    session.commit()
    return {group.name: group.id for group in session.scalars(select(LotGroup))}


def record(core, session, group_id: int, occupied: int, capacity: int, **kwargs: Any) -> None:
    occupancy.apply_figure(
        session,
        LiveStore(core.redis),
        group_id,
        kwargs.pop("source", OccupancySource.MISTALL),
        occupied,
        capacity,
        kwargs.pop("ts", datetime.now(UTC)),
        step_percent=5,
        **kwargs,
    )
    session.commit()


def refresh(client, app, triggered: str | None = None) -> Any:
    return dash_post(client, app, find_output(app, MARKERS), [None, 1], [None], triggered=triggered)


def markers(response) -> list[dict[str, Any]]:
    return outputs_of(response)["adminmap-markers"]["children"]


def pin(response, group_id: int) -> dict[str, Any]:
    found = [m for m in markers(response) if m["props"]["id"] == f"adminmap-pin-{group_id}"]
    assert len(found) == 1
    return found[0]


def test_the_page_is_for_managers(login_as, campus) -> None:
    assert login_as(Role.GUEST).get("/admin/map").status_code == 302
    assert login_as(Role.USER).get("/admin/map").status_code == 403
    assert login_as(Role.OFFICER).get("/admin/map").status_code == 403
    page = login_as(Role.MANAGER).get("/admin/map")
    assert page.status_code == 200
    assert b"Ring Road East" not in page.data  # the layout holds no data


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403)])
def test_lower_roles_get_no_pins(app, login_as, core, session, campus, role, status) -> None:
    record(core, session, campus["Ring Road East"], 123, 400)
    response = refresh(login_as(role), app)
    assert response.status_code == status
    assert b"Ring Road East" not in response.data and b"123 / 400" not in response.data


def test_one_pin_per_mapped_group_in_its_colour(app, login_as, campus) -> None:
    response = refresh(login_as(Role.MANAGER), app)
    ids = {m["props"]["id"] for m in markers(response)}
    hidden = campus["Central Services Yard"]  # show_on_map=False in the demo
    assert ids == {f"adminmap-pin-{gid}" for name, gid in campus.items() if gid != hidden}
    east = pin(response, campus["Ring Road East"])["props"]
    assert east["fillColor"] == "#ff7f0e"
    assert east["center"] == [43.4714, -80.5404]
    table = json.dumps(outputs_of(response)["adminmap-table"])
    assert "Central Services Yard" in table and "Not on the map" in table


def test_the_popup_holds_both_figures_with_their_labels(app, login_as, core, session, campus) -> None:
    east = campus["Ring Road East"]
    record(core, session, east, 123, 400, ts=datetime.now(UTC) - timedelta(seconds=20), flag="odd count")
    with core.db.session() as s:
        state = occupancy.group_states(
            s, LiveStore(core.redis), occupancy.Staleness(), datetime.now(UTC), [east]
        )[0]
    response = refresh(login_as(Role.MANAGER), app)
    popup = json.dumps(pin(response, east))
    assert "Physical count (Mistall)" in popup
    assert "123 / 400" in popup and "277 available" in popup and "31% full" in popup
    assert "updated 2" in popup  # "updated 20s ago", give or take a second
    assert "flagged: odd count" in popup
    assert "Permits sold (lot info)" in popup
    assert f"{state.permits.occupied} / {state.permits.capacity} sold" in popup
    for lot in state.lots:
        assert lot.name in popup
    assert "meant to differ" in popup
    table = json.dumps(outputs_of(response)["adminmap-table"])
    assert "123 / 400" in table and "Mistall" in table and "Permits sold (lot info)" in table


def test_a_group_without_sensor_data_says_the_permit_count_stands_in(app, login_as, campus) -> None:
    popup = json.dumps(pin(refresh(login_as(Role.MANAGER), app), campus["Columbia Street Lots"]))
    assert "No sensor data for this group" in popup
    assert "Permits sold (lot info)" in popup


def test_a_stale_figure_is_marked(app, login_as, core, session, campus) -> None:
    east = campus["Ring Road East"]
    record(core, session, east, 50, 400, ts=datetime.now(UTC) - timedelta(hours=3))
    popup = json.dumps(pin(refresh(login_as(Role.MANAGER), app), east))
    assert "stale" in popup and "3 h ago" in popup


def test_a_closed_group_pin_reads_closed(app, login_as, session, campus) -> None:
    group = session.get(LotGroup, campus["West Campus Surface"])
    group.is_closed = True
    session.commit()
    marker = pin(refresh(login_as(Role.MANAGER), app), group.id)
    tooltip = marker["props"]["children"][0]["props"]
    assert tooltip["children"] == "West Campus Surface: Closed" and tooltip["permanent"] is True
    assert "Closed" in json.dumps(marker["props"]["children"][1])


def test_the_map_is_fitted_only_on_the_first_call(app, login_as, campus) -> None:
    manager = login_as(Role.MANAGER)
    output = find_output(app, MARKERS)
    entry = callback_entry(app, output)
    body = {
        "output": output,
        "outputs": [{"id": o.component_id, "property": o.component_property} for o in entry["output"]],
        "inputs": [dict(spec, value=None) for spec in entry["inputs"]],
        "state": [dict(spec, value=None) for spec in entry["state"]],
        "changedPropIds": [],  # the page's initial call
    }
    initial = manager.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
    first = outputs_of(initial)
    assert first["adminmap-map"]["viewport"]["transition"] == "fitBounds"
    assert "adminmap-pins" in first
    pins = first["adminmap-pins"]["data"]
    later = outputs_of(
        dash_post(manager, app, output, [None, 2], [pins], triggered="adminmap-poll.n_intervals")
    )
    assert "adminmap-map" not in later
    # The pins are unchanged, so they are not re-created (that would close an open popup).
    assert "adminmap-markers" not in later and "adminmap-table" in later


def test_popups_update_in_place(app, login_as, core, session, campus) -> None:
    east = campus["Ring Road East"]
    record(core, session, east, 200, 400)
    output = find_output(app, "adminmap-popup")
    entry = callback_entry(app, output)
    popup_id = {"group": east, "type": "adminmap-popup"}
    body = {
        "output": output,
        "outputs": [{"id": popup_id, "property": "children"}],  # one matched component
        "inputs": [dict(spec, value=None) for spec in entry["inputs"]],
        "state": [],
        "changedPropIds": ["adminmap-live.data"],
    }

    def post(client) -> Any:
        return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")

    assert post(login_as(Role.OFFICER)).status_code == 403
    text = json.dumps(outputs_of(post(login_as(Role.MANAGER))))
    assert "200 / 400" in text and "Permits sold (lot info)" in text
