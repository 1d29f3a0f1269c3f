"""The user-side Real-Time Map and Lot Group pages over HTTP: both open to guests; guests get no
standard-permit options, signed-in users do; the layouts hold no data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.auth import PAGES_ROUTER_OUTPUT
from dashboard.components.realtime_map import AVAILABLE_COLOR, TAKEN_COLOR, donut
from dashboard.services import demo, occupancy
from models import Lot, LotGroup, Permit, PermitKind, PermitProduct, PermitVehicle, Role
from tests.dash_helpers import dash_app, dash_post, find_output, outputs_of

MARKERS = "realtime-markers.children"
LOT_GROUP = "lotgroup-content.children"


@pytest.fixture
def seeded(core, session, tmp_path) -> dict[str, int]:
    demo.seed_demo(session, core.secrets, tmp_path)
    session.commit()
    return {group.name: group.id for group in session.scalars(select(LotGroup))}


def map_refresh(client, app, pins: Any = None, triggered: str | None = None, table: bool = True) -> Any:
    return dash_post(client, app, find_output(app, MARKERS), [None, 0, table], [pins], triggered=triggered)


def popups_refresh(client, app, group_ids: list[int], open_group: int | None) -> Any:
    """The in-place popup refresh, with the pins the browser has (pattern-matching outputs)."""
    outputs = [
        [{"id": {"type": kind, "group": g}, "property": "children"} for g in group_ids]
        for kind in ("realtime-popup", "realtime-tip")
    ]
    body = {
        "output": find_output(app, "realtime-popup"),
        "outputs": outputs,
        "inputs": [
            {"id": "realtime-live", "property": "data", "value": "{}"},
            {"id": "realtime-poll", "property": "n_intervals", "value": 3},
            {"id": "realtime-open", "property": "data", "value": open_group},
        ],
        "changedPropIds": ["realtime-live.data"],
    }
    return client.post("/_dash-update-component", json=body)


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
    assert "realtime-markers" in realtime and "Legend" in realtime
    assert "Columbia Street Lots" not in realtime  # the layout holds no data
    lot_group = router(guest, app, f"/lot-groups/{seeded['Columbia Street Lots']}")
    assert "lotgroup-content" in lot_group and "/login?next=" not in lot_group
    assert "Columbia Pay Lot" not in lot_group


def test_a_guest_map_offers_only_temporary_permits(app, login_as, seeded) -> None:
    out = outputs_of(map_refresh(login_as(Role.GUEST), app))
    text = json.dumps(out)
    assert "Columbia Street Lots" in text and "Central Services Yard" not in text
    assert "Temporary" in text and "permit-standard" not in text
    assert f"/lot-groups/{seeded['Columbia Street Lots']}" in text
    markers = out["realtime-markers"]["children"]
    assert len(markers) == 7
    assert all(marker["type"] == "CircleMarker" for marker in markers)
    # Popups are filled when opened (refresh_popups); their height is reserved from the start.
    assert "realtime-donut" not in json.dumps(markers) and '"minHeight"' in json.dumps(markers)
    assert "realtime-table" in out
    # One meaning of "full": lots say how many of their permits are taken, never "% full", and the
    # legend says which figure is the donut's (spaces) and which the lots' (permits).
    table = json.dumps(out["realtime-table"])
    assert "% of permits taken" in table and "% full" not in table
    legend = router(login_as(Role.GUEST), app, "/real-time")
    assert "spaces free now" in legend and "permits sold for that lot" in legend


def test_pins_are_kept_while_only_figures_change(app, login_as, seeded) -> None:
    """A poll that finds the same pins leaves them (and any open popup) alone; the popups and
    tooltips are refreshed in place, with the visitor's own permit visibility."""
    guest = login_as(Role.GUEST)
    first = outputs_of(map_refresh(guest, app))
    pins = first["realtime-pins"]["data"]
    assert len(pins) == 7
    again = outputs_of(map_refresh(guest, app, pins, triggered="realtime-poll.n_intervals"))
    assert "realtime-markers" not in again and "realtime-map" not in again
    assert "realtime-table" in again
    hidden = outputs_of(map_refresh(guest, app, pins, triggered="realtime-poll.n_intervals", table=False))
    assert "realtime-table" not in hidden  # the table is sent only while it is shown

    columbia = seeded["Columbia Street Lots"]
    response = popups_refresh(guest, app, [columbia, 999999], open_group=999999)
    assert response.status_code == 200, response.data[:300]
    body = response.get_json()["response"]
    popups = json.dumps(body['{"group":999999,"type":"realtime-popup"}'])
    assert "no longer on the map" in popups
    assert f'{{"group":{columbia},"type":"realtime-popup"}}' not in body  # closed: left as it is
    tip = body[f'{{"group":{columbia},"type":"realtime-tip"}}']["children"]
    assert tip.startswith("Columbia Street Lots: ") and "available" in tip

    opened = popups_refresh(guest, app, [columbia, 999999], open_group=columbia).get_json()["response"]
    columbia_popup = json.dumps(opened[f'{{"group":{columbia},"type":"realtime-popup"}}'])
    assert "realtime-donut" in columbia_popup and "Book permit" in columbia_popup
    assert "permit-temporary" in columbia_popup and "permit-standard" not in columbia_popup
    assert '{"group":999999,"type":"realtime-popup"}' not in opened
    signed_in = json.dumps(
        popups_refresh(login_as(Role.USER), app, [columbia], open_group=columbia).get_json()
    )
    assert "permit-standard" in signed_in


def test_a_signed_in_map_offers_standard_permits(app, login_as, seeded) -> None:
    text = json.dumps(outputs_of(map_refresh(login_as(Role.USER), app)))
    assert "permit-standard" in text and "permit-temporary" in text


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
