"""Real-Time Map (Admin) over HTTP: the page is for managers and holds no data; its figures come
from the staff body ``/live/lot-status.json`` (``tests/pages/test_officer_page.py`` tests who may
read it), which the page's script draws (``assets/staff_live.js``): one pin per mapped lot group,
whose popup words the physical figure and, below it, the permits sold per lot, each labelled,
with the note that they are meant to differ; a closed group's pin reads Closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.map_routes import GEOJSON_CHUNK, LOT_STATUS_PATH
from dashboard.services import occupancy
from dashboard.services.demo import seed_demo
from dashboard.services.lot_status import DIFFER_NOTE, NO_PHYSICAL
from dashboard.services.occupancy import LiveStore
from models import LotGroup, OccupancySource, Role
from tests.dash_helpers import component, served_layout


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


def body(client) -> dict[str, Any]:
    response = client.get(LOT_STATUS_PATH + "?fresh=1")
    assert response.status_code == 200, response.data[:300]
    return response.get_json()


def group(found: dict[str, Any], group_id: int) -> dict[str, Any]:
    return next(g for g in found["groups"] if g["id"] == group_id)


def test_the_page_is_for_managers(login_as, campus) -> None:
    assert login_as(Role.GUEST).get("/admin/map").status_code == 302
    assert login_as(Role.USER).get("/admin/map").status_code == 403
    assert login_as(Role.OFFICER).get("/admin/map").status_code == 403
    page = login_as(Role.MANAGER).get("/admin/map")
    assert page.status_code == 200
    assert b"Ring Road East" not in page.data  # the layout holds no data
    # The data and dash-leaflet's GeoJSON code load while the page's scripts parse.
    html = page.get_data(as_text=True)
    assert f'<link rel="preload" href="{LOT_STATUS_PATH}" as="fetch" crossorigin>' in html
    assert GEOJSON_CHUNK in html


def test_the_map_opens_on_the_pins(login_as, campus) -> None:
    """The layout (built for the page it is asked from) opens the map on the staff body's bounds,
    so it never shows the world first."""
    manager = login_as(Role.MANAGER)
    shown = component(served_layout(manager, "http://localhost/admin/map"), "adminmap-map")
    assert shown is not None
    assert shown["props"]["bounds"] == body(manager)["bounds"] and "zoom" not in shown["props"]


def test_one_pin_per_mapped_group_in_its_colour(login_as, campus) -> None:
    found = body(login_as(Role.MANAGER))
    pins = {f["id"]: f for f in found["pins"]["features"]}
    hidden = campus["Central Services Yard"]  # show_on_map=False in the demo
    assert set(pins) == {gid for gid in campus.values() if gid != hidden}
    east = campus["Ring Road East"]
    assert pins[east]["geometry"]["coordinates"] == [-80.5404, 43.4714]  # GeoJSON: longitude first
    assert group(found, east)["color"] == "#ff7f0e"
    assert group(found, hidden)["on_map"] is False
    assert found["hidden"] == "Not on the map (hidden or no location): Central Services Yard."
    lats = [f["geometry"]["coordinates"][1] for f in pins.values()]
    assert found["bounds"][0][0] < min(lats) and found["bounds"][1][0] > max(lats)
    assert [g["name"] for g in found["groups"]] == sorted(g["name"] for g in found["groups"])


def test_the_popup_words_both_figures_with_their_labels(login_as, core, session, campus) -> None:
    """Relative times are worded when the body is built ("updated 20s ago", give or take)."""
    east = campus["Ring Road East"]
    record(core, session, east, 123, 400, ts=datetime.now(UTC) - timedelta(seconds=20), flag="odd count")
    with core.db.session() as s:
        state = occupancy.group_states(
            s, LiveStore(core.redis), occupancy.Staleness(), datetime.now(UTC), [east]
        )[0]
    found = body(login_as(Role.MANAGER))
    physical = group(found, east)["physical"]
    assert physical["heading"] == "Physical count (Mistall)"
    assert physical["count"] == "123 / 400"
    assert physical["popup"] == " occupied · 277 available · 31% full"
    assert physical["updated"].startswith("updated 2") and physical["updated"].endswith("s ago")
    assert physical["table"].startswith(" (Mistall, 277 available, 31%, updated 2")
    assert physical["flag"] == "odd count" and physical["stale"] is False
    permits = state.permits
    assert group(found, east)["permits"] == (
        f"{permits.occupied} / {permits.capacity} sold · {permits.available} available"
    )
    lots = group(found, east)["lots"]
    assert [lot["name"] for lot in lots] == [lot.name for lot in state.lots]
    first = state.lots[0]
    assert (
        lots[0]["line"] == f"{first.name}: {first.sold} / {first.allowance} sold, {first.available} available"
    )
    assert found["notes"] == {"differ": DIFFER_NOTE, "no_physical": NO_PHYSICAL}


def test_a_group_without_sensor_data_has_no_physical_figure(login_as, campus) -> None:
    columbia = group(body(login_as(Role.MANAGER)), campus["Columbia Street Lots"])
    assert columbia["physical"] is None and columbia["permits"].endswith("available")


def test_a_stale_figure_is_marked(login_as, core, session, campus) -> None:
    east = campus["Ring Road East"]
    record(core, session, east, 50, 400, ts=datetime.now(UTC) - timedelta(hours=3))
    east_group = group(body(login_as(Role.MANAGER)), east)
    assert east_group["physical"]["stale"] is True and east_group["status"] == "Stale"
    assert east_group["physical"]["updated"] == "updated 3 h ago"


def test_a_closed_group_pin_reads_closed(login_as, session, campus) -> None:
    west = session.get(LotGroup, campus["West Campus Surface"])
    west.is_closed = True
    session.commit()
    found = body(login_as(Role.MANAGER))
    closed = group(found, west.id)
    assert closed["tooltip"] == "West Campus Surface: Closed" and closed["status"] == "Closed"
    pin = next(f for f in found["pins"]["features"] if f["id"] == west.id)
    assert pin["properties"] == {"id": west.id, "closed": True}  # its tooltip stays shown
    assert all(lot["fullness"] is None for lot in closed["lots"])  # officers see it last
