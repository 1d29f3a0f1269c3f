"""The user-side Real-Time Map and Lot Group pages over HTTP: both open to guests; guests get no
standard-permit options, signed-in users do; the layouts hold no data (the map only where its
pins are, to open there)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.auth import PAGES_ROUTER_OUTPUT
from dashboard.components.realtime_map import AVAILABLE_COLOR, PIN_LOOK, TAKEN_COLOR, donut
from dashboard.map_routes import GEOJSON_CHUNK
from dashboard.services import demo, occupancy, open_data
from models import Lot, LotGroup, Permit, PermitKind, PermitProduct, PermitVehicle, Role
from tests.dash_helpers import component, dash_app, dash_post, find_output, outputs_of, served_layout

LOT_GROUP = "lotgroup-content.children"


@pytest.fixture
def seeded(core, session, tmp_path) -> dict[str, int]:
    demo.seed_demo(session, core.secrets, tmp_path)
    session.commit()
    return {group.name: group.id for group in session.scalars(select(LotGroup))}


def group_refresh(client, app, group_id: Any) -> Any:
    return dash_post(client, app, find_output(app, LOT_GROUP), [group_id, None, 0])


def router(client, app, path: str) -> str:
    dash_app(app)._setup_server()  # noqa: SLF001
    key = next(k for k in dash_app(app).callback_map if PAGES_ROUTER_OUTPUT in k)
    response = dash_post(client, app, key, [path, ""])
    assert response.status_code == 200
    return json.dumps(response.get_json())


def test_guests_open_both_pages(app, login_as, seeded) -> None:
    guest = login_as(Role.GUEST)
    for path in ("/real-time", f"/lot-groups/{seeded['Columbia Street Lots']}"):
        response = guest.get(path)
        assert response.status_code == 200, path
    realtime = router(guest, app, "/real-time")
    assert "realtime-map" in realtime and "Legend" in realtime
    assert "Columbia Street Lots" not in realtime  # the layout holds no data
    lot_group = router(guest, app, f"/lot-groups/{seeded['Columbia Street Lots']}")
    assert "lotgroup-content" in lot_group and "/login?next=" not in lot_group
    assert "Columbia Pay Lot" not in lot_group


def _map_component(client) -> dict[str, Any]:
    shown = component(served_layout(client, "http://localhost/real-time"), "realtime-map")
    assert shown is not None
    return shown["props"]


def test_the_map_opens_on_the_pins(login_as, seeded) -> None:
    """The layout gives the map its pins' bounds (the same as the data's), so it opens on the
    campus; the pins themselves still come from the cached data, not the layout."""
    guest = login_as(Role.GUEST)
    shown = _map_component(guest)
    body = user_map(guest).get_json()
    assert shown["bounds"] == body["bounds"] and shown["boundsOptions"] == {
        "padding": [30, 30],
        "maxZoom": 16,
    }
    assert "center" not in shown and "zoom" not in shown
    (south, west), (north, east) = body["bounds"]
    points = [f["geometry"]["coordinates"] for f in body["pins"]["features"]]
    assert all(south <= lat <= north and west <= lon <= east for lon, lat in points)


def test_a_map_with_no_pin_opens_on_the_world(login_as) -> None:
    guest = login_as(Role.GUEST)
    shown = _map_component(guest)
    assert "bounds" not in shown and shown["zoom"] == 2
    # ... and the page's script fits it on the pins once it has drawn them.
    assert _map_settings(guest)["data-fit"] == "true"


def _map_settings(client) -> dict[str, Any]:
    """The props of the element the page's script reads as Leaflet makes the map."""
    layout = served_layout(client, "http://localhost/real-time")
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "data-look" in node.get("props", {}):
                found.append(node["props"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(layout)
    assert len(found) == 1
    return found[0]


def test_the_page_preloads_its_data_and_gives_the_script_the_pins_look(login_as, seeded) -> None:
    """The pins are drawn by the page's script with Leaflet's own layer as soon as the map is made
    (``assets/realtime_map.js``): the page preloads the body it reads, and not dash-leaflet's
    GeoJSON code, which it does not use. The look comes with the map, so the legend and the pins
    share one set of colours; a map opened on its pins is not fitted again."""
    guest = login_as(Role.GUEST)
    html = guest.get("/real-time").get_data(as_text=True)
    assert f'<link rel="preload" href="{USER_MAP}" as="fetch" crossorigin>' in html
    assert GEOJSON_CHUNK not in html
    settings = _map_settings(guest)
    assert json.loads(settings["data-look"]) == PIN_LOOK
    assert PIN_LOOK["colors"] == {"available": AVAILABLE_COLOR, "taken": TAKEN_COLOR}
    assert settings["data-fit"] == "false"
    assert "Columbia Street Lots" not in json.dumps(served_layout(guest, "http://localhost/real-time"))


USER_MAP = "/live/user-map.json"


def user_map(client, **headers: str) -> Any:
    response = client.get(USER_MAP, headers=headers)
    assert response.status_code == 200, response.data[:300]
    return response


def test_a_guest_map_offers_only_temporary_permits(app, login_as, seeded) -> None:
    """The page's script draws what this body says (``assets/realtime_map.js``): every pin with
    its wording, and for a guest no standard permit anywhere."""
    body = user_map(login_as(Role.GUEST)).get_json()
    features = body["pins"]["features"]
    names = {feature["properties"]["name"] for feature in features}
    assert "Columbia Street Lots" in names and "Central Services Yard" not in names
    assert len(features) == 7 and body["logged_in"] is False
    columbia = next(f["properties"] for f in features if f["properties"]["name"] == "Columbia Street Lots")
    assert columbia["href"] == f"/lot-groups/{seeded['Columbia Street Lots']}"
    assert columbia["login"] == f"/login?next=%2Flot-groups%2F{seeded['Columbia Street Lots']}"
    lots = [lot for f in features for lot in f["properties"]["lots"]]
    assert any(lot["temporary"] for lot in lots) and not any(lot["standard"] for lot in lots)
    # One meaning of "full": lots say how many of their permits are taken, never "% full", and the
    # legend says which figure is the donut's (spaces) and which the lots' (permits).
    assert all(lot["figure"].endswith("% of permits taken") for lot in lots if lot["figure"] != "—")
    assert "% full" not in json.dumps(body)
    # The figure each pin shows is named, so the page can apply a pushed change of that figure.
    listed = {
        g["id"]: g["source"] for g in login_as(Role.GUEST).get("/api/v1/lot-groups").get_json()["lot_groups"]
    }
    assert {f["id"]: f["properties"]["source"] for f in features} == {
        f["id"]: listed[f["id"]] for f in features
    }
    lats = [f["geometry"]["coordinates"][1] for f in features]
    assert body["bounds"][0][0] == min(lats) and body["bounds"][1][0] == max(lats)
    legend = router(login_as(Role.GUEST), app, "/real-time")
    assert "spaces free now" in legend and "permits sold for that lot" in legend


def test_a_browser_holding_the_body_is_answered_not_modified(app, login_as, seeded) -> None:
    """Each open map asks again on every push and poll: unchanged, it costs a 304 and no body.
    The body depends on the session (the audience), so no shared cache may keep it."""
    guest = login_as(Role.GUEST)
    first = user_map(guest)
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert "Cookie" in first.headers["Vary"]
    again = guest.get(USER_MAP, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    gzipped = user_map(guest, **{"Accept-Encoding": "gzip"})
    assert gzipped.headers["Content-Encoding"] == "gzip"
    assert gzipped.headers["ETag"] != first.headers["ETag"]  # each encoding its own representation
    signed_in = user_map(login_as(Role.USER))
    assert signed_in.headers["ETag"] != first.headers["ETag"]  # each audience its own body


def test_the_body_follows_a_change_at_once_when_pushed(app, login_as, core, session, seeded) -> None:
    """A page told of a change asks with ``?fresh=1``: the new figure is in its answer, not one
    cached a moment before."""
    guest = login_as(Role.GUEST)
    before = user_map(guest)
    group = session.get(LotGroup, seeded["Columbia Street Lots"])
    group.name = "Columbia Street Lots (renamed)"
    session.commit()
    open_data.list_cache(core.redis).invalidate()
    after = guest.get(USER_MAP + "?fresh=1", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert "Columbia Street Lots (renamed)" in after.get_data(as_text=True)


def test_a_signed_in_map_offers_standard_permits(app, login_as, seeded) -> None:
    body = user_map(login_as(Role.USER)).get_json()
    lots = [lot for f in body["pins"]["features"] for lot in f["properties"]["lots"]]
    assert body["logged_in"] is True
    assert any(lot["standard"] for lot in lots) and any(lot["temporary"] for lot in lots)


def test_the_lot_group_page_for_a_guest(app, login_as, session, seeded) -> None:
    text = json.dumps(
        outputs_of(group_refresh(login_as(Role.GUEST), app, str(seeded["Columbia Street Lots"])))
    )
    lots = {lot.name: lot.id for lot in session.scalars(select(Lot))}
    assert "Columbia Street Lots" in text
    assert f"/checkout/temp/{lots['Lot CX Overflow']}" in text
    assert f"/checkout/temp/{lots['Columbia Pay Lot']}" in text
    assert "/permits/book/" not in text
    assert "realtime-donut" in text


def test_a_sold_out_lot_says_so_instead_of_offering_a_checkout(app, login_as, session, seeded) -> None:
    lot = session.scalars(select(Lot).where(Lot.name == "Columbia Pay Lot")).one()
    now = datetime.now(UTC)
    page = str(seeded["Columbia Street Lots"])
    assert f"/checkout/temp/{lot.id}" in json.dumps(
        outputs_of(group_refresh(login_as(Role.GUEST), app, page))
    )
    permit = Permit(
        number="SOLD-OUT-1",
        kind=PermitKind.TEMPORARY,
        lot_id=lot.id,
        valid_from=now - timedelta(hours=1),
        valid_to=now + timedelta(hours=2),
    )
    permit.vehicles = [PermitVehicle(plate="ZZ1", plate_normalized="ZZ1")]
    session.add(permit)
    session.flush()
    lot.permits_allowed = occupancy.permit_counts(session, now, [lot.id])[lot.id]  # this sale fills it
    session.commit()
    text = json.dumps(outputs_of(group_refresh(login_as(Role.GUEST), app, page)))
    assert "Temporary permits sold out" in text and "Find another lot with space" in text
    assert f"/checkout/temp/{lot.id}" not in text
    # The way on: the lot's waitlist (a guest logs in first and lands on it), not a dead end.
    hourly = session.scalars(
        select(PermitProduct).where(PermitProduct.lot_id == lot.id).order_by(PermitProduct.price_cents)
    ).first()
    assert f"/login?next=%2Fwaitlist%2Fjoin%2F{hourly.id}" in text and "Log in to join the waitlist" in text
    signed_in = json.dumps(outputs_of(group_refresh(login_as(Role.USER), app, page)))
    assert f'"/waitlist/join/{hourly.id}"' in signed_in and "Join the waitlist" in signed_in


def test_the_lot_group_page_for_a_user(app, login_as, session, seeded) -> None:
    text = json.dumps(
        outputs_of(group_refresh(login_as(Role.USER), app, str(seeded["Columbia Street Lots"])))
    )
    lots = {lot.name: lot.id for lot in session.scalars(select(Lot))}
    assert f"/permits/book/{lots['Lot C Faculty']}" in text
    assert f"/permits/book/{lots['Lot CX Overflow']}" in text
    assert f"/checkout/temp/{lots['Lot CX Overflow']}" in text
    assert f"/permits/book/{lots['Columbia Pay Lot']}" not in text


@pytest.mark.parametrize("group_id", ["hidden", "999999", "abc", None])
def test_unknown_or_hidden_groups_are_not_found(app, login_as, seeded, group_id) -> None:
    wanted = str(seeded["Central Services Yard"]) if group_id == "hidden" else group_id
    text = json.dumps(outputs_of(group_refresh(login_as(Role.USER), app, wanted)))
    assert "Lot group not found" in text
    assert "Central Services" not in text


@pytest.mark.parametrize(
    ("percent", "status", "center", "free", "words"),
    [
        (37.4, "open", "37%", "37.4", "37% available"),
        (100, "open", "100%", "100", "100% available"),
        (None, "open", "—", "0", "No data"),
        (80, "closed", "Closed", "0", "Closed"),
    ],
)
def test_the_donut_is_a_labelled_css_ring(percent, status, center, free, words) -> None:
    """No plotly: a conic-gradient ring whose green share is the free share (a grey ring when
    closed or unknown), the figure in its hole, and one label in words for screen readers."""
    ring = donut(percent, "North Garage", status).to_plotly_json()["props"]
    assert ring["role"] == "img" and ring["aria-label"] == f"North Garage: {words}"
    assert ring["data-free"] == free
    caption, body = ring["children"]
    assert caption.children == f"North Garage: {words}"
    assert caption.to_plotly_json()["props"]["aria-hidden"] == "true"
    assert body.children.children == center
    assert body.style["background"] == (
        f"conic-gradient({AVAILABLE_COLOR} 0 {free}%, {TAKEN_COLOR} {free}% 100%)"
    )
    assert "Graph" not in json.dumps(donut(percent, "North Garage", status).to_plotly_json(), default=str)
