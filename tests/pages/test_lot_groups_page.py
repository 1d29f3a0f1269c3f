"""Manage Parking Lot Groups over HTTP: guests, users and officers get nothing; a manager sees the
rows but cannot open or close a group; an admin closes one and the change is stored, audited and
announced. Only an admin associates a group with an imported Mistall lot, through a dialog whose
choices arrive when it opens."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.services.occupancy import CHANNEL, LiveStore
from models import AuditLog, LotGroup, MistallLot, OccupancySource, Role
from tests.dash_helpers import callback_entry, dash_post, find_output, outputs_of

TABLE = "lotgroups-table.children"
FLASH = "lotgroups-flash.children"


@pytest.fixture
def group_id(core, session) -> int:
    group = LotGroup(name="North Garage", map_color="#123456", mistall_lot_id="M-17")
    session.add(group)
    session.commit()
    LiveStore(core.redis).record(
        group.id, OccupancySource.MISTALL, 37, 90, datetime.now(UTC) - timedelta(seconds=30), flag="odd"
    )
    return group.id


def refresh(client, app) -> Any:
    return dash_post(client, app, find_output(app, TABLE), [None, None, 0, 0])


def toggle(client, app, group: int, action: str) -> Any:
    """POST the toggle callback as the browser does after one button was clicked."""
    output = find_output(app, FLASH)
    entry = callback_entry(app, output)
    button = {"action": action, "group": group, "type": "lotgroups-toggle"}
    body = {
        "output": output,
        "outputs": [{"id": o.component_id, "property": o.component_property} for o in entry["output"]],
        "inputs": [[{"id": button, "property": "n_clicks", "value": 1}]],
        "state": [dict(entry["state"][0], value=0)],
        "changedPropIds": [json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"],
    }
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def test_the_page_is_for_managers(login_as) -> None:
    assert login_as(Role.GUEST).get("/admin/lot-groups").status_code == 302
    assert login_as(Role.OFFICER).get("/admin/lot-groups").status_code == 403
    page = login_as(Role.MANAGER).get("/admin/lot-groups")
    assert page.status_code == 200
    assert b"North Garage" not in page.data  # the layout holds no data


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403)])
def test_lower_roles_get_no_rows(app, login_as, group_id, role, status) -> None:
    response = refresh(login_as(role), app)
    assert response.status_code == status
    assert b"North Garage" not in response.data


@pytest.mark.parametrize("role", [Role.GUEST, Role.USER, Role.OFFICER, Role.MANAGER])
def test_only_admins_may_close_a_group(app, login_as, session, group_id, role) -> None:
    response = toggle(login_as(role), app, group_id, "close")
    assert response.status_code == (401 if role is Role.GUEST else 403)
    session.expire_all()
    assert not session.get(LotGroup, group_id).is_closed


def test_a_manager_sees_the_figures_without_toggles(app, login_as, group_id) -> None:
    table = json.dumps(outputs_of(refresh(login_as(Role.MANAGER), app)))
    assert "North Garage" in table and "M-17" in table
    assert "37 / 90" in table
    assert "updated 3" in table  # "updated 30s ago", give or take a second
    assert "flagged" in table
    assert "lotgroups-toggle" not in table


def test_an_admin_closes_a_group(app, login_as, core, session, group_id) -> None:
    admin = login_as(Role.ADMIN)
    assert "lotgroups-toggle" in json.dumps(outputs_of(refresh(admin, app)))
    pubsub = core.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    try:
        flash = outputs_of(toggle(admin, app, group_id, "close"))
        # The first read may only consume the subscribe confirmation.
        message = pubsub.get_message(timeout=1) or pubsub.get_message(timeout=1)
    finally:
        pubsub.close()
    assert "North Garage is closed" in flash["lotgroups-flash"]["children"]
    assert flash["lotgroups-version"]["data"] == 1
    session.expire_all()
    assert session.get(LotGroup, group_id).is_closed
    entry = session.scalars(select(AuditLog).where(AuditLog.entity_type == "lot_group")).one()
    assert (entry.action, entry.actor_id) == ("lot_group.close", admin.user.id)
    assert message is not None and json.loads(message["data"])["group_id"] == group_id

    table = json.dumps(outputs_of(refresh(admin, app)))
    assert '"closed"' in table
    assert '"action": "open"' in table

    again = outputs_of(toggle(admin, app, group_id, "close"))
    assert "already" in again["lotgroups-flash"]["children"]


MODAL = "lotgroups-mistall-modal.is_open"
NO_LOTS = "No Mistall lots yet: turn on Enable Mistall Usage"


def mistall(
    client,
    app,
    trigger: str,
    group: int | None = None,
    value: str | None = None,
    editing: int | None = None,
    edit_clicks: int = 1,
) -> Any:
    """POST the Mistall dialog callback as the browser does after one click: ``trigger`` is
    "edit" (the row button of ``group``), "save", "clear" or "cancel"."""
    output = find_output(app, MODAL)
    entry = callback_entry(app, output)
    buttons = [] if group is None else [{"group": group, "type": "lotgroups-mistall-edit"}]
    clicks = {name: int(trigger == name) for name in ("save", "clear", "cancel")}
    changed = (
        json.dumps(buttons[0], sort_keys=True, separators=(",", ":")) + ".n_clicks"
        if trigger == "edit"
        else f"lotgroups-mistall-{trigger}.n_clicks"
    )
    body = {
        "output": output,
        "outputs": [{"id": o.component_id, "property": o.component_property} for o in entry["output"]],
        "inputs": [
            [{"id": b, "property": "n_clicks", "value": edit_clicks} for b in buttons],
            *(
                {"id": f"lotgroups-mistall-{name}", "property": "n_clicks", "value": clicks[name]}
                for name in ("save", "clear", "cancel")
            ),
        ],
        "state": [dict(spec, value=v) for spec, v in zip(entry["state"], [editing, value, 0], strict=True)],
        "changedPropIds": [changed],
    }
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


@pytest.fixture
def imported(session) -> None:
    session.add_all(
        [MistallLot(mistall_id="M-17", name="North deck"), MistallLot(mistall_id="M-20", name="East")]
    )
    session.commit()


def _mistall_audits(session) -> list[AuditLog]:
    return list(session.scalars(select(AuditLog).where(AuditLog.action == "lot_group.mistall_lot")))


def test_the_layout_holds_the_dialog_but_no_choices(login_as, group_id, imported) -> None:
    page = login_as(Role.ADMIN).get("/admin/lot-groups")
    assert page.status_code == 200
    assert b"North deck" not in page.data and b"M-20" not in page.data


def test_an_admin_sees_edit_buttons_and_a_manager_does_not(app, login_as, group_id) -> None:
    assert "lotgroups-mistall-edit" in json.dumps(outputs_of(refresh(login_as(Role.ADMIN), app)))
    assert "lotgroups-mistall-edit" not in json.dumps(outputs_of(refresh(login_as(Role.MANAGER), app)))


def test_the_dialog_opens_with_the_imported_mistall_lots(app, login_as, group_id, imported) -> None:
    opened = outputs_of(mistall(login_as(Role.ADMIN), app, "edit", group=group_id))
    assert opened["lotgroups-mistall-modal"]["is_open"] is True
    assert opened["lotgroups-mistall-group"]["data"] == group_id
    assert opened["lotgroups-mistall-title"]["children"] == "Mistall lot for North Garage"
    dropdown = opened["lotgroups-mistall-lot"]
    assert dropdown["options"] == [
        {"label": "East (M-20)", "value": "M-20"},
        {"label": "North deck (M-17)", "value": "M-17"},
    ]
    assert dropdown["value"] == "M-17"
    assert dropdown["disabled"] is False
    assert NO_LOTS not in json.dumps(opened)


def test_before_the_import_the_dropdown_is_disabled_with_a_hint(app, login_as, session, group_id) -> None:
    empty = LotGroup(name="South Lot", map_color="#654321")
    session.add(empty)
    session.commit()
    opened = outputs_of(mistall(login_as(Role.ADMIN), app, "edit", group=empty.id))
    assert opened["lotgroups-mistall-lot"]["options"] == []
    assert opened["lotgroups-mistall-lot"]["disabled"] is True
    hint = json.dumps(opened["lotgroups-mistall-hint"]["children"])
    assert NO_LOTS in hint and '"/admin/settings"' in hint  # the setting first, then the task
    assert "System > System Task Logs" in hint and '"/admin/tasks"' in hint and "Tools" not in hint


@pytest.mark.parametrize(
    ("role", "status"), [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403), (Role.MANAGER, 403)]
)
def test_only_admins_may_open_or_save_the_dialog(
    app, login_as, session, group_id, imported, role, status
) -> None:
    client = login_as(role)
    opened = mistall(client, app, "edit", group=group_id)
    assert opened.status_code == status
    assert b"North deck" not in opened.data
    for trigger in ("save", "clear"):
        response = mistall(client, app, trigger, value="M-20", editing=group_id)
        assert response.status_code == status
        assert "response" not in (response.get_json() or {})
    session.expire_all()
    assert session.get(LotGroup, group_id).mistall_lot_id == "M-17"
    assert _mistall_audits(session) == []


def test_an_admin_saves_a_mistall_lot(app, login_as, core, session, group_id, imported) -> None:
    admin = login_as(Role.ADMIN)
    pubsub = core.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    try:
        saved = outputs_of(mistall(admin, app, "save", value="M-20", editing=group_id))
        message = pubsub.get_message(timeout=1) or pubsub.get_message(timeout=1)
    finally:
        pubsub.close()
    assert saved["lotgroups-mistall-modal"]["is_open"] is False
    assert "Mistall lot M-20" in saved["lotgroups-mistall-flash"]["children"]
    assert saved["lotgroups-mistall-version"]["data"] == 1  # refreshes the table
    session.expire_all()
    assert session.get(LotGroup, group_id).mistall_lot_id == "M-20"
    entry = _mistall_audits(session)[0]
    assert (entry.actor_id, entry.entity_id, entry.changes) == (
        admin.user.id,
        str(group_id),
        {"mistall_lot_id": ["M-17", "M-20"]},
    )
    assert message is not None and json.loads(message["data"])["group_id"] == group_id
    assert "M-20" in json.dumps(outputs_of(refresh(admin, app)))

    cleared = outputs_of(mistall(admin, app, "clear", value="M-20", editing=group_id))
    assert "no longer has a Mistall lot" in cleared["lotgroups-mistall-flash"]["children"]
    session.expire_all()
    assert session.get(LotGroup, group_id).mistall_lot_id is None
    assert len(_mistall_audits(session)) == 2


def test_an_id_that_was_not_imported_is_refused_in_the_dialog(
    app, login_as, session, group_id, imported
) -> None:
    refused = outputs_of(mistall(login_as(Role.ADMIN), app, "save", value="M-99", editing=group_id))
    assert refused["lotgroups-mistall-error"]["is_open"] is True
    assert "not an imported Mistall lot" in refused["lotgroups-mistall-error"]["children"]
    assert "lotgroups-mistall-modal" not in refused  # the dialog stays open with the choice
    assert "lotgroups-mistall-lot" not in refused
    session.expire_all()
    assert session.get(LotGroup, group_id).mistall_lot_id == "M-17"
    assert _mistall_audits(session) == []


def test_a_refresh_that_recreates_the_buttons_leaves_the_dialog_alone(app, login_as, group_id) -> None:
    """The table refresh re-renders the Edit buttons with n_clicks 0: nothing must change."""
    admin = login_as(Role.ADMIN)
    response = mistall(admin, app, "edit", group=group_id, value="M-20", editing=group_id, edit_clicks=0)
    assert response.status_code in (200, 204)
    assert "lotgroups-mistall-modal" not in outputs_of(response)
    assert "lotgroups-mistall-lot" not in outputs_of(response)
