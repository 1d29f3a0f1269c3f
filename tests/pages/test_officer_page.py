"""Lot Status (officers) and the staff body over HTTP.

The page is for officers and holds no data. Its cards, like the admin map, come from
``/live/lot-status.json``: officers and up read it; a guest gets a JSON 401 and a user a JSON 403,
never data. An officer reads every lot with its group's physical figure and the lot's own permit
figure, and the figure the cards sort by (the browser sorts: ``assets/staff_live.js``, tested in
``tests/browser/test_officer_status.py``). The body is cached, gzipped and ETag'd, answered 304 to
a browser that holds it, and read afresh on a pushed change."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.map_routes import GEOJSON_CHUNK, LOT_STATUS_PATH
from dashboard.services import occupancy
from dashboard.services.demo import seed_demo
from dashboard.services.occupancy import LiveStore
from models import Lot, LotGroup, OccupancySource, Role
from tests.dash_helpers import component, served_layout


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


def staff_body(client, **headers: str) -> Any:
    response = client.get(LOT_STATUS_PATH, headers=headers)
    assert response.status_code == 200, response.data[:300]
    return response


def lots_of(body: dict[str, Any]) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
    return {lot["id"]: (group, lot) for group in body["groups"] for lot in group["lots"]}


def test_the_page_is_for_officers(login_as, campus) -> None:
    assert login_as(Role.GUEST).get("/officer").status_code == 302
    assert login_as(Role.USER).get("/officer").status_code == 403
    page = login_as(Role.OFFICER).get("/officer")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Lot E1 Engineering" not in html  # the layout holds no data
    assert f'<link rel="preload" href="{LOT_STATUS_PATH}" as="fetch" crossorigin>' in html
    assert GEOJSON_CHUNK not in html  # no map on this page


def test_a_signed_in_user_below_the_role_gets_the_frame_saying_not_authorised(login_as, campus) -> None:
    """A 403 that is still the app (its menu, a way on), not a bare line of text; the frame holds
    no data and does not preload the staff body, and its layout is the page guard's refusal."""
    user = login_as(Role.USER)
    page = user.get("/officer")
    assert (page.status_code, page.mimetype) == (403, "text/html")
    html = page.get_data(as_text=True)
    assert 'id="_dash-config"' in html and "preload" in html
    assert LOT_STATUS_PATH not in html and "Lot E1 Engineering" not in html
    layout = served_layout(user, "http://localhost/officer")
    shown = json.dumps(component(layout, "_pages_content"))
    assert "Not authorised" in shown and "home page" in shown and "Lot E1 Engineering" not in shown
    assert "Log out" in json.dumps(component(layout, "shell-user"))
    # The tab is titled by what it shows, not by the page refused (the page's title for officers).
    titles = {
        role: json.dumps(component(served_layout(login_as(role), "http://localhost/officer"), "_pages_store"))
        for role in (Role.USER, Role.OFFICER)
    }
    assert '"title": "Not authorised \\u00b7 ParkOps"' in titles[Role.USER]
    assert "Not authorised" not in titles[Role.OFFICER]


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403)])
def test_lower_roles_get_no_figures(login_as, core, session, campus, role, status) -> None:
    record(core, session, campus["Ring Road East"], OccupancySource.MISTALL, 123, 400)
    response = login_as(role).get(LOT_STATUS_PATH)
    assert response.status_code == status
    assert response.is_json and set(response.get_json()) == {"error"}
    assert b"Ring Road East" not in response.data and b"123 / 400" not in response.data
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("role", [Role.OFFICER, Role.MANAGER, Role.ADMIN])
def test_officers_and_up_read_the_staff_body(login_as, campus, role) -> None:
    assert "Ring Road East" in staff_body(login_as(role)).get_data(as_text=True)


def test_an_officer_reads_each_lot_with_both_figures(login_as, core, session, campus) -> None:
    record(core, session, campus["Ring Road East"], OccupancySource.MISTALL, 123, 400)
    found = lots_of(staff_body(login_as(Role.OFFICER)).get_json())
    lots = session.scalars(select(Lot).where(Lot.is_active, Lot.lot_group_id.is_not(None)))
    assert sorted(found) == sorted(lot.id for lot in lots)
    e1 = session.scalar(select(Lot).where(Lot.name == "Lot E1 Engineering"))
    with core.db.session() as s:
        state = occupancy.group_states(
            s, LiveStore(core.redis), occupancy.Staleness(), datetime.now(UTC), [e1.lot_group_id]
        )[0]
    permits = next(lot for lot in state.lots if lot.lot_id == e1.id)
    group, lot = found[e1.id]
    assert group["name"] == "Ring Road East" and lot["name"] == "Lot E1 Engineering"
    assert group["physical"]["count"] == "123 / 400"
    assert group["physical"]["officer"] == " · 31% full · 277 free"
    assert group["physical"]["origin"].startswith("Mistall · updated ")
    assert lot["permits"] == f"{permits.sold} / {permits.allowance}"
    assert lot["left"] == f" sold · {permits.available} left"


def test_each_lot_carries_the_figure_it_sorts_by(login_as, core, session, campus) -> None:
    """The group's physical percent, else the lot's permit percent; none for a closed group."""
    record(core, session, campus["Ring Road East"], OccupancySource.MISTALL, 400, 400)
    record(core, session, campus["West Campus Surface"], OccupancySource.DEVICES, 8, 800)
    closed = campus["Village Residence Lots"]
    session.get(LotGroup, closed).is_closed = True
    session.commit()
    with core.db.session() as s:
        states = occupancy.group_states(s, LiveStore(core.redis), occupancy.Staleness(), datetime.now(UTC))
    permit_percent = {lot.lot_id: lot.percent for state in states for lot in state.lots}
    for group, lot in lots_of(staff_body(login_as(Role.OFFICER)).get_json()).values():
        if group["id"] == closed:
            assert lot["fullness"] is None
        elif group["id"] == campus["Ring Road East"]:
            assert lot["fullness"] == 100.0
        elif group["id"] == campus["West Campus Surface"]:
            assert lot["fullness"] == 1.0
        else:
            assert lot["fullness"] == permit_percent[lot["id"]]


def test_a_browser_holding_the_body_is_answered_not_modified(login_as, core, session, campus) -> None:
    """Every staff page asks again on every push and poll: unchanged, it costs a 304 and no body.
    The body depends on the session (the role), so no shared cache may keep it."""
    # Two hours old: its wording ("updated 2 h ago") holds from one build of the body to the next.
    occupancy.apply_figure(
        session,
        LiveStore(core.redis),
        campus["Ring Road East"],
        OccupancySource.MISTALL,
        123,
        400,
        datetime.now(UTC) - timedelta(hours=2),
        step_percent=5,
    )
    session.commit()
    officer = login_as(Role.OFFICER)
    first = staff_body(officer)
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert "Cookie" in first.headers["Vary"]
    again = officer.get(LOT_STATUS_PATH, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    gzipped = staff_body(officer, **{"Accept-Encoding": "gzip"})
    assert gzipped.headers["Content-Encoding"] == "gzip"
    assert gzipped.headers["ETag"] == first.headers["ETag"][:-1] + '-gzip"'


def test_the_body_follows_a_change_at_once_when_pushed(login_as, core, session, campus) -> None:
    """A page told of a change asks with ``?fresh=1``: the new figure is in its answer, not the
    body cached a moment before (a change drops the cached body)."""
    officer = login_as(Role.OFFICER)
    before = staff_body(officer)
    assert "57 / 200" not in before.get_data(as_text=True)
    record(core, session, campus["Ring Road East"], OccupancySource.MISTALL, 57, 200)
    after = officer.get(LOT_STATUS_PATH + "?fresh=1", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert "57 / 200" in after.get_data(as_text=True)
