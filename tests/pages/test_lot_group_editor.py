"""The lot group editor and the list's Add / Edit / Delete over HTTP, as the browser calls them.

Only admins open the editor or run its callbacks (managers see the list but not these); the form
arrives through the load callback, never in the layout, and never with the Parking Logix key; a
map click fills latitude and longitude and the pin follows the fields; a save stores, audits and
announces the group and goes back to the list, which shows the message once; Delete asks in a
dialog naming the group and its lots, and keeps the lots.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.auth import PAGES_ROUTER_OUTPUT
from dashboard.services.occupancy import CHANNEL, GROUP_KEY, LiveStore
from models import AuditLog, Lot, LotGroup, MistallLot, OccupancySource, Role
from tests.dash_helpers import callback_entry, dash_app, dash_post, find_output, outputs_of

KEY = "plx-secret-key-123456"
LOAD = "lotgroupedit-subtitle.children"
PLACE = "lotgroupedit-lat.value@"
PIN = "lotgroupedit-pin.children"
SAVE = "lotgroupedit-url.href"
TOOLBAR = "lotgroups-toolbar.children"
DELETE = "lotgroups-delete-modal.is_open"
TABLE = "lotgroups-table.children"


@pytest.fixture
def group_id(core, session) -> int:
    group = LotGroup(
        name="North Garage",
        map_color="#123456",
        latitude=43.4762,
        longitude=-80.5478,
        parking_logix_name="Mountaineer Garage",
        parking_logix_api_key=core.secrets.encrypt(KEY),
    )
    session.add(group)
    session.flush()
    session.add_all(
        [
            Lot(name="North A", capacity=50, lot_group_id=group.id),
            Lot(name="North B", capacity=20, lot_group_id=group.id),
        ]
    )
    session.commit()
    return group.id


def load(client, app, target: Any) -> Any:
    return dash_post(client, app, find_output(app, LOAD), [target])


def save(client, app, target: Any, **fields: Any) -> Any:
    values = {
        "name": "South Lot",
        "color": "#ff8800",
        "lat": 43.47,
        "lon": -80.55,
        "show": True,
        "mistall": None,
        "plx_name": None,
        "plx_key": None,
        "clear_key": False,
        **fields,
    }
    state = [target, *values.values()]
    return dash_post(client, app, find_output(app, SAVE), [1], state)


def toolbar(client, app) -> Any:
    return dash_post(client, app, find_output(app, TOOLBAR), ["/admin/lot-groups"])


def delete(client, app, trigger: str, group: int | None = None, dialog_group: int | None = None) -> Any:
    """POST the delete dialog callback after one click: ``trigger`` is "row" (the row button of
    ``group``), "confirm" or "cancel"."""
    output = find_output(app, DELETE)
    entry = callback_entry(app, output)
    buttons = [] if group is None else [{"group": group, "type": "lotgroups-delete"}]
    changed = (
        json.dumps(buttons[0], sort_keys=True, separators=(",", ":")) + ".n_clicks"
        if trigger == "row"
        else f"lotgroups-delete-{trigger}.n_clicks"
    )
    body = {
        "output": output,
        "outputs": [{"id": o.component_id, "property": o.component_property} for o in entry["output"]],
        "inputs": [
            [{"id": b, "property": "n_clicks", "value": 1} for b in buttons],
            {"id": "lotgroups-delete-confirm", "property": "n_clicks", "value": int(trigger == "confirm")},
            {"id": "lotgroups-delete-cancel", "property": "n_clicks", "value": int(trigger == "cancel")},
        ],
        "state": [dict(spec, value=v) for spec, v in zip(entry["state"], [dialog_group, 3], strict=True)],
        "changedPropIds": [changed],
    }
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def _next_message(pubsub) -> dict | None:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message is not None:
            return message
    return None


def _audits(session) -> list[AuditLog]:
    return list(
        session.scalars(select(AuditLog).where(AuditLog.entity_type == "lot_group").order_by(AuditLog.id))
    )


# --- who may open the editor ---


@pytest.mark.parametrize("path", ["/admin/lot-groups/new", "/admin/lot-groups/7/edit"])
def test_only_admins_open_the_editor(login_as, path) -> None:
    guest = login_as(Role.GUEST).get(path)
    assert guest.status_code == 302 and guest.headers["Location"].startswith("/login?next=")
    assert login_as(Role.USER).get(path).status_code == 403
    assert login_as(Role.MANAGER).get(path).status_code == 403
    assert login_as(Role.ADMIN).get(path).status_code == 200


def test_the_router_renders_the_editor_to_admins_only(app, login_as, group_id) -> None:
    router = next(key for key in dash_app(app).callback_map if PAGES_ROUTER_OUTPUT in key)
    path = f"/admin/lot-groups/{group_id}/edit"
    admin = json.dumps(dash_post(login_as(Role.ADMIN), app, router, [path, ""]).get_json())
    assert "Edit lot group" in admin and "lotgroupedit-map" in admin
    assert "North Garage" not in admin and "Mountaineer" not in admin  # the layout holds no data
    new = json.dumps(dash_post(login_as(Role.ADMIN), app, router, ["/admin/lot-groups/new", ""]).get_json())
    assert "Add lot group" in new
    manager = json.dumps(dash_post(login_as(Role.MANAGER), app, router, [path, ""]).get_json())
    assert "Not authorised" in manager and "lotgroupedit-map" not in manager


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403), (Role.MANAGER, 403)])
def test_lower_roles_get_nothing_from_the_editor(app, login_as, session, group_id, role, status) -> None:
    client = login_as(role)
    loaded = load(client, app, group_id)
    assert loaded.status_code == status and b"North Garage" not in loaded.data
    assert (
        dash_post(client, app, find_output(app, PLACE), [{"latlng": {"lat": 1, "lng": 2}}, 0]).status_code
        == status
    )
    assert (
        dash_post(client, app, find_output(app, PIN), [1, 2, "#000000"], [None, None]).status_code == status
    )
    saved = save(client, app, group_id, name="Taken over")
    assert saved.status_code == status
    created = save(client, app, "new")
    assert created.status_code == status
    session.expire_all()
    assert [g.name for g in session.scalars(select(LotGroup))] == ["North Garage"]


# --- the form ---


def test_the_form_of_an_existing_group_shows_the_key_masked(app, login_as, group_id) -> None:
    response = load(login_as(Role.ADMIN), app, group_id)
    out = outputs_of(response)
    assert out["lotgroupedit-name"]["value"] == "North Garage"
    assert out["lotgroupedit-color"]["value"] == "#123456"
    assert (out["lotgroupedit-lat"]["value"], out["lotgroupedit-lon"]["value"]) == (43.4762, -80.5478)
    assert out["lotgroupedit-plx-name"]["value"] == "Mountaineer Garage"
    assert "••••••••3456" in out["lotgroupedit-key-status"]["children"]
    assert KEY not in response.get_data(as_text=True)
    assert out["lotgroupedit-map"]["viewport"]["center"] == [43.4762, -80.5478]
    assert out["lotgroupedit-save"]["disabled"] is False


def test_a_new_group_centres_on_the_others_and_lists_mistall_lots(app, login_as, session, group_id) -> None:
    out = outputs_of(load(login_as(Role.ADMIN), app, "new"))
    assert out["lotgroupedit-name"]["value"] == ""
    assert out["lotgroupedit-lat"]["value"] is None
    assert out["lotgroupedit-color"]["value"] == "#1f77b4"  # the first palette colour nobody uses
    session.add(LotGroup(name="Blue Lot", map_color="#1F77B4"))
    session.commit()
    assert outputs_of(load(login_as(Role.ADMIN), app, "new"))["lotgroupedit-color"]["value"] == "#ff7f0e"
    assert out["lotgroupedit-map"]["viewport"]["bounds"] == [[43.4762, -80.5478], [43.4762, -80.5478]]
    assert "North Garage" in json.dumps(out["lotgroupedit-others"]["children"])
    assert out["lotgroupedit-mistall"]["disabled"] is True
    hint = json.dumps(out["lotgroupedit-mistall-hint"]["children"])
    assert "RUN the Update Mistall System Job Task once" in hint and "/admin/tasks" in hint
    assert "Enable Mistall Usage" in hint and "System > System Settings" in hint

    session.add(MistallLot(mistall_id="M-17", name="North deck"))
    session.commit()
    out = outputs_of(load(login_as(Role.ADMIN), app, "new"))
    assert out["lotgroupedit-mistall"]["options"] == [{"label": "North deck (M-17)", "value": "M-17"}]
    assert out["lotgroupedit-mistall"]["disabled"] is False


@pytest.mark.parametrize("target", [999, None, "999/edit", True])
def test_an_unknown_group_disables_save(app, login_as, target) -> None:
    out = outputs_of(load(login_as(Role.ADMIN), app, target))
    assert out["lotgroupedit-save"]["disabled"] is True
    assert "lotgroupedit-name" not in out


def test_a_map_click_fills_the_fields_and_the_pin_follows(app, login_as) -> None:
    admin = login_as(Role.ADMIN)
    clicked = dash_post(
        admin,
        app,
        find_output(app, PLACE),
        [{"latlng": {"lat": 43.123456789, "lng": -80.5}, "layerPoint": [1, 2], "containerPoint": [1, 2]}, 0],
    )
    out = outputs_of(clicked)
    assert (out["lotgroupedit-lat"]["value"], out["lotgroupedit-lon"]["value"]) == (43.123457, -80.5)
    # Leaflet reports a longitude beyond ±180 after panning across the date line.
    wrapped = outputs_of(dash_post(admin, app, find_output(app, PLACE), [{"latlng": [10, 190]}, 0]))
    assert wrapped["lotgroupedit-lon"]["value"] == -170
    removed = dash_post(
        admin, app, find_output(app, PLACE), [None, 1], triggered="lotgroupedit-unplace.n_clicks"
    )
    assert outputs_of(removed)["lotgroupedit-lat"]["value"] is None

    on_screen = outputs_of(
        dash_post(admin, app, find_output(app, PIN), [43.12, -80.5, "#ff8800"], [[[43, -81], [44, -80]], 9])
    )
    assert on_screen["lotgroupedit-pin"]["children"][0]["props"]["center"] == [43.12, -80.5]
    assert on_screen["lotgroupedit-pin"]["children"][0]["props"]["fillColor"] == "#ff8800"
    assert "lotgroupedit-map" not in on_screen  # a clicked point is on screen: the map stays
    typed = outputs_of(
        dash_post(
            admin, app, find_output(app, PIN), ["45.5", "-73.6", "#ff8800"], [[[43, -81], [44, -80]], 12]
        )
    )
    assert typed["lotgroupedit-map"]["viewport"] == {"center": [45.5, -73.6], "zoom": 12}
    half = outputs_of(dash_post(admin, app, find_output(app, PIN), [45.5, None, "#ff8800"], [None, None]))
    assert half["lotgroupedit-pin"]["children"] == []


# --- saving ---


def test_an_admin_creates_a_group_and_the_list_shows_the_message_once(app, login_as, core, session) -> None:
    admin = login_as(Role.ADMIN)
    pubsub = core.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    try:
        response = save(admin, app, "new", plx_name="South PL", plx_key=KEY)
        message = _next_message(pubsub)
    finally:
        pubsub.close()
    out = outputs_of(response)
    assert out["lotgroupedit-url"]["href"] == "/admin/lot-groups"
    group = session.scalar(select(LotGroup).where(LotGroup.name == "South Lot"))
    assert (group.map_color, group.latitude, group.longitude) == ("#ff8800", 43.47, -80.55)
    assert core.secrets.decrypt(group.parking_logix_api_key) == KEY
    [entry] = _audits(session)
    assert (entry.action, entry.actor_id) == ("lot_group.create", admin.user.id)
    assert entry.changes["parking_logix_api_key"] == "changed"
    assert json.loads(message["data"])["group_id"] == group.id

    shown = outputs_of(toolbar(admin, app))
    assert shown["lotgroups-notice"]["children"] == "Lot group “South Lot” created."
    assert shown["lotgroups-notice"]["is_open"] is True
    assert "lotgroups-notice" not in outputs_of(toolbar(admin, app))  # once only


def test_validation_marks_each_field(app, login_as, session, group_id) -> None:
    out = outputs_of(
        save(login_as(Role.ADMIN), app, "new", name=" north garage ", color="red", lat=95, lon=None)
    )
    assert out["lotgroupedit-name"]["invalid"] is True
    assert "already called" in out["lotgroupedit-name-feedback"]["children"]
    assert (
        out["lotgroupedit-color"]["invalid"] is True
        and "#rrggbb" in out["lotgroupedit-color-feedback"]["children"]
    )
    assert "between -90 and 90" in out["lotgroupedit-lat-feedback"]["children"]
    assert out["lotgroupedit-plx-name"]["invalid"] is False
    status = json.dumps(out["lotgroupedit-status"]["children"])
    assert "Not saved" in status and "Map colour" in status
    assert "lotgroupedit-url" not in out
    assert _audits(session) == []


def test_an_admin_edits_keeps_and_clears_the_key(app, login_as, core, session, group_id) -> None:
    admin = login_as(Role.ADMIN)
    kept = outputs_of(
        save(
            admin,
            app,
            group_id,
            name="North Garage",
            color="#123456",
            lat=43.4762,
            lon=-80.5478,
            plx_name="Mountaineer Garage",
        )
    )
    assert kept["lotgroupedit-url"]["href"] == "/admin/lot-groups"
    assert (
        json.dumps(outputs_of(toolbar(admin, app))["lotgroups-notice"]["children"]).count("nothing changed")
        == 1
    )
    session.expire_all()
    assert core.secrets.decrypt(session.get(LotGroup, group_id).parking_logix_api_key) == KEY

    outputs_of(
        save(
            admin,
            app,
            group_id,
            name="North Garage",
            color="#123456",
            lat=43.4762,
            lon=-80.5478,
            plx_name="Mountaineer Garage",
            clear_key=True,
        )
    )
    session.expire_all()
    assert session.get(LotGroup, group_id).parking_logix_api_key is None
    assert _audits(session)[-1].changes == {"parking_logix_api_key": "cleared"}


def test_the_parking_logix_name_is_saved_and_shown_exactly_as_typed(app, login_as, session, group_id) -> None:
    """Parking Logix names match exactly: a trailing space typed in the form is kept, and the
    form shows it back; a name of spaces only is no name."""
    admin = login_as(Role.ADMIN)
    fields = {"name": "North Garage", "color": "#123456", "lat": 43.4762, "lon": -80.5478}
    saved = outputs_of(save(admin, app, group_id, plx_name="Mountaineer Garage ", **fields))
    assert saved["lotgroupedit-url"]["href"] == "/admin/lot-groups"
    session.expire_all()
    assert session.get(LotGroup, group_id).parking_logix_name == "Mountaineer Garage "
    assert _audits(session)[-1].changes == {
        "parking_logix_name": ["Mountaineer Garage", "Mountaineer Garage "]
    }
    assert outputs_of(load(admin, app, group_id))["lotgroupedit-plx-name"]["value"] == "Mountaineer Garage "

    outputs_of(save(admin, app, group_id, plx_name="   ", **fields))
    session.expire_all()
    assert session.get(LotGroup, group_id).parking_logix_name is None


def test_the_mistall_lot_must_be_imported(app, login_as, session, group_id) -> None:
    out = outputs_of(save(login_as(Role.ADMIN), app, "new", mistall="M-404"))
    assert "not an imported Mistall lot" in out["lotgroupedit-mistall-feedback"]["children"]


# --- the list: toolbar, row buttons, delete ---


def test_only_admins_get_the_toolbar_and_row_buttons(app, login_as, group_id) -> None:
    admin = login_as(Role.ADMIN)
    assert "/admin/lot-groups/new" in json.dumps(outputs_of(toolbar(admin, app)))
    manager = login_as(Role.MANAGER)
    assert outputs_of(toolbar(manager, app))["lotgroups-toolbar"]["children"] is None
    admin_rows = json.dumps(outputs_of(dash_post(admin, app, find_output(app, TABLE), [None, None, 0, 0])))
    assert f"/admin/lot-groups/{group_id}/edit" in admin_rows and "lotgroups-delete" in admin_rows
    manager_rows = json.dumps(
        outputs_of(dash_post(manager, app, find_output(app, TABLE), [None, None, 0, 0]))
    )
    assert "/edit" not in manager_rows and "lotgroups-delete" not in manager_rows


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403), (Role.MANAGER, 403)])
def test_only_admins_may_delete(app, login_as, session, group_id, role, status) -> None:
    client = login_as(role)
    assert delete(client, app, "row", group=group_id).status_code == status
    assert delete(client, app, "confirm", dialog_group=group_id).status_code == status
    session.expire_all()
    assert session.get(LotGroup, group_id) is not None


def test_an_admin_deletes_a_group_and_its_lots_stay(app, login_as, core, session, group_id) -> None:
    LiveStore(core.redis).record(group_id, OccupancySource.DEVICES, 3, 70, datetime.now(UTC))
    admin = login_as(Role.ADMIN)
    asked = outputs_of(delete(admin, app, "row", group=group_id))
    assert asked["lotgroups-delete-modal"]["is_open"] is True
    assert asked["lotgroups-delete-group"]["data"] == group_id
    assert asked["lotgroups-delete-title"]["children"] == "Delete North Garage?"
    body = json.dumps(asked["lotgroups-delete-body"]["children"])
    assert "2 lot(s)" in body and "North A, North B" in body and "kept" in body
    session.expire_all()
    assert session.get(LotGroup, group_id) is not None  # asking deletes nothing

    cancelled = outputs_of(delete(admin, app, "cancel", dialog_group=group_id))
    assert cancelled["lotgroups-delete-modal"]["is_open"] is False
    assert session.get(LotGroup, group_id) is not None

    done = outputs_of(delete(admin, app, "confirm", dialog_group=group_id))
    assert done["lotgroups-delete-modal"]["is_open"] is False
    assert "North Garage deleted" in done["lotgroups-delete-flash"]["children"]
    assert "2 lot(s) are kept" in done["lotgroups-delete-flash"]["children"]
    assert done["lotgroups-version"]["data"] == 4
    session.expire_all()
    assert session.get(LotGroup, group_id) is None
    assert {lot.name: lot.lot_group_id for lot in session.scalars(select(Lot))} == {
        "North A": None,
        "North B": None,
    }
    assert _audits(session)[-1].action == "lot_group.delete"
    assert not core.redis.exists(GROUP_KEY.format(group_id))
    table = json.dumps(outputs_of(dash_post(admin, app, find_output(app, TABLE), [None, None, 0, 0])))
    assert "North Garage" not in table

    again = outputs_of(delete(admin, app, "confirm", dialog_group=group_id))
    assert again["lotgroups-delete-error"]["is_open"] is True
    assert "no lot group" in again["lotgroups-delete-error"]["children"]


def test_a_refresh_that_recreates_the_row_buttons_opens_no_dialog(app, login_as, group_id) -> None:
    output = find_output(app, DELETE)
    entry = callback_entry(app, output)
    button = {"group": group_id, "type": "lotgroups-delete"}
    body = {
        "output": output,
        "outputs": [{"id": o.component_id, "property": o.component_property} for o in entry["output"]],
        "inputs": [
            [{"id": button, "property": "n_clicks", "value": 0}],
            {"id": "lotgroups-delete-confirm", "property": "n_clicks", "value": 0},
            {"id": "lotgroups-delete-cancel", "property": "n_clicks", "value": 0},
        ],
        "state": [dict(spec, value=None) for spec in entry["state"]],
        "changedPropIds": [json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"],
    }
    response = login_as(Role.ADMIN).post(
        "/_dash-update-component", data=json.dumps(body), content_type="application/json"
    )
    assert "lotgroups-delete-modal" not in outputs_of(response)
