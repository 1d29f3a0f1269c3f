"""Manage Lot Zones over HTTP: only admins list, add, rename or delete zones; a zone still on a lot
is not deleted and the dialog names the lots instead of offering the Delete button."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from models import AuditLog, Lot, LotZone, LotZoneSchedule, Role
from tests.dash_helpers import dash_post, find_output, outputs_of, press

TABLE = "lotzones-table.children"
ACT = "lotzones-flash.children"
REFUSED = [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403), (Role.MANAGER, 403)]


@pytest.fixture
def zones(session) -> dict[str, int]:
    used, free = LotZone(name="1001"), LotZone(name="Visitor")
    lot = Lot(name="Green Staff Lot East", capacity=50)
    session.add_all([used, free, lot])
    session.flush()
    session.add(LotZoneSchedule(lot_id=lot.id, zone_id=used.id))
    session.commit()
    return {"used": used.id, "free": free.id}


def refresh(client, app) -> Any:
    return dash_post(client, app, find_output(app, TABLE), [0])


def act(
    client, app, trigger: str | dict[str, Any], zones: dict[str, int], clicks: int = 1, **values: Any
) -> Any:
    rows = {
        kind: [{"type": kind, "zone": zone_id} for zone_id in zones.values()]
        for kind in ("lotzones-rename", "lotzones-delete")
    }
    state = {f"lotzones-{key.replace('_', '-')}": value for key, value in values.items()}
    return press(client, app, ACT, trigger, {"lotzones-version": 0, **state}, rows, clicks)


def _text(response: Any) -> str:
    return json.dumps(outputs_of(response), ensure_ascii=False)


def _audits(session) -> list[AuditLog]:
    session.expire_all()
    return list(
        session.scalars(select(AuditLog).where(AuditLog.entity_type == "lot_zone").order_by(AuditLog.id))
    )


def test_the_page_is_for_admins(login_as, zones) -> None:
    assert login_as(Role.GUEST).get("/admin/lot-zones").status_code == 302
    assert login_as(Role.MANAGER).get("/admin/lot-zones").status_code == 403
    page = login_as(Role.ADMIN).get("/admin/lot-zones")
    assert page.status_code == 200 and b"Green Staff Lot East" not in page.data


@pytest.mark.parametrize(("role", "status"), REFUSED)
def test_lower_roles_get_and_change_nothing(app, login_as, session, zones, role, status) -> None:
    client = login_as(role)
    listed = refresh(client, app)
    assert listed.status_code == status and b"1001" not in listed.data
    assert act(client, app, "lotzones-add", zones, new_name="1002").status_code == status
    editing = {"zone": zones["free"], "action": "delete"}
    assert act(client, app, "lotzones-modal-delete", zones, editing=editing).status_code == status
    renaming = {"zone": zones["free"], "action": "rename"}
    assert (
        act(client, app, "lotzones-modal-save", zones, editing=renaming, modal_name="X").status_code == status
    )
    session.expire_all()
    assert sorted(session.scalars(select(LotZone.name))) == ["1001", "Visitor"]
    assert _audits(session) == []


def test_an_admin_sees_zones_and_where_they_are_used(app, login_as, zones) -> None:
    table = _text(refresh(login_as(Role.ADMIN), app))
    assert "1001" in table and "Green Staff Lot East" in table and "no lots" in table
    assert '"lotzones-rename"' in table and '"lotzones-delete"' in table


def test_an_admin_adds_a_zone(app, login_as, session, zones) -> None:
    added = outputs_of(act(login_as(Role.ADMIN), app, "lotzones-add", zones, new_name=" 1002 "))
    assert "Zone 1002 added" in json.dumps(added["lotzones-flash"])
    assert added["lotzones-new-name"]["value"] == "" and added["lotzones-version"]["data"] == 1
    assert session.scalar(select(func.count(LotZone.id)).where(LotZone.name == "1002")) == 1
    assert _audits(session)[0].action == "lot_zone.add"


def test_a_duplicate_name_is_refused_with_its_label(app, login_as, session, zones) -> None:
    refused = outputs_of(act(login_as(Role.ADMIN), app, "lotzones-add", zones, new_name="visitor"))
    assert "Name: zone Visitor already exists" in json.dumps(refused["lotzones-flash"])
    assert "lotzones-version" not in refused
    assert session.scalar(select(func.count(LotZone.id))) == 2


def test_rename_through_the_dialog(app, login_as, session, zones) -> None:
    admin = login_as(Role.ADMIN)
    button = {"type": "lotzones-rename", "zone": zones["used"]}
    opened = outputs_of(act(admin, app, button, zones))
    assert opened["lotzones-modal"]["is_open"] is True
    assert opened["lotzones-modal-name"]["value"] == "1001"
    assert opened["lotzones-modal-delete"]["style"] == {"display": "none"}
    editing = opened["lotzones-editing"]["data"]

    refused = outputs_of(act(admin, app, "lotzones-modal-save", zones, editing=editing, modal_name=""))
    assert "Name: enter the zone's name" in json.dumps(refused["lotzones-modal-error"])
    assert "lotzones-modal" not in refused  # the dialog stays open

    saved = outputs_of(act(admin, app, "lotzones-modal-save", zones, editing=editing, modal_name="1001 East"))
    assert saved["lotzones-modal"]["is_open"] is False
    assert "Zone renamed to 1001 East." in json.dumps(saved["lotzones-flash"])
    session.expire_all()
    assert session.get(LotZone, zones["used"]).name == "1001 East"
    assert session.scalars(select(LotZoneSchedule)).one().zone_id == zones["used"]


def test_a_zone_on_a_lot_is_not_deleted_and_the_lots_are_named(app, login_as, session, zones) -> None:
    admin = login_as(Role.ADMIN)
    opened = outputs_of(act(admin, app, {"type": "lotzones-delete", "zone": zones["used"]}, zones))
    assert "Green Staff Lot East" in opened["lotzones-modal-text"]["children"]
    assert opened["lotzones-modal-delete"]["style"] == {"display": "none"}

    # Even if the browser sends the confirmation anyway, the service refuses it.
    editing = {"zone": zones["used"], "action": "delete"}
    refused = _text(act(admin, app, "lotzones-modal-delete", zones, editing=editing))
    assert "Zone 1001 cannot be deleted" in refused and "Green Staff Lot East" in refused
    session.expire_all()
    assert session.get(LotZone, zones["used"]) is not None


def test_an_unused_zone_is_deleted(app, login_as, session, zones) -> None:
    admin = login_as(Role.ADMIN)
    opened = outputs_of(act(admin, app, {"type": "lotzones-delete", "zone": zones["free"]}, zones))
    assert opened["lotzones-modal-delete"]["style"] == {}
    assert "not used by any lot or permit" in opened["lotzones-modal-text"]["children"]
    editing = opened["lotzones-editing"]["data"]
    deleted = outputs_of(act(admin, app, "lotzones-modal-delete", zones, editing=editing))
    assert "Zone Visitor deleted." in json.dumps(deleted["lotzones-flash"])
    assert deleted["lotzones-modal"]["is_open"] is False
    session.expire_all()
    assert session.get(LotZone, zones["free"]) is None
    assert _audits(session)[0].action == "lot_zone.delete"


def test_a_rerendered_row_button_is_no_click(app, login_as, zones) -> None:
    response = act(
        login_as(Role.ADMIN), app, {"type": "lotzones-delete", "zone": zones["free"]}, zones, clicks=0
    )
    assert "lotzones-modal" not in outputs_of(response)


def test_an_admin_sets_a_zone_capacity_when_adding_and_editing(app, login_as, session, zones) -> None:
    admin = login_as(Role.ADMIN)
    added = outputs_of(act(admin, app, "lotzones-add", zones, new_name="1002", new_capacity=5))
    assert "Zone 1002 added" in json.dumps(added["lotzones-flash"])
    assert added["lotzones-new-capacity"]["value"] is None
    assert session.scalar(select(LotZone.capacity).where(LotZone.name == "1002")) == 5
    listed = _text(refresh(admin, app))
    assert "0 of 5 taken now" in listed and "no limit (0 now)" in listed

    opened = outputs_of(act(admin, app, {"type": "lotzones-rename", "zone": zones["used"]}, zones))
    assert opened["lotzones-modal-capacity"]["value"] is None
    editing = opened["lotzones-editing"]["data"]
    refused = outputs_of(
        act(admin, app, "lotzones-modal-save", zones, editing=editing, modal_name="1001", modal_capacity=-3)
    )
    assert "Capacity: a whole number from 0" in json.dumps(refused["lotzones-modal-error"])
    saved = outputs_of(
        act(admin, app, "lotzones-modal-save", zones, editing=editing, modal_name="1001", modal_capacity=20)
    )
    assert "Zone 1001: capacity 20 at a time." in json.dumps(saved["lotzones-flash"])
    session.expire_all()
    assert session.get(LotZone, zones["used"]).capacity == 20
    assert [entry.action for entry in _audits(session)][-1] == "lot_zone.capacity"
