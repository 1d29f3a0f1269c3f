"""Manage Parking Lot Groups over HTTP: guests, users and officers get nothing; a manager sees the
rows but cannot open or close a group; an admin closes one and the change is stored, audited and
announced."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.services.occupancy import CHANNEL, LiveStore
from models import AuditLog, LotGroup, OccupancySource, Role
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
    return dash_post(client, app, find_output(app, TABLE), [None, None, 0])


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
