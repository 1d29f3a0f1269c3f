"""Manage Capacity over HTTP: only managers and admins get the page, the rows and the dialog; the
rows carry the sold count, the group's physical peak and the suggestion; filters narrow them; the
dialog shows the evidence and the trail, refuses a bad number and saves, audits and announces a
good one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.services.occupancy import CHANNEL
from models import (
    AuditLog,
    Lot,
    LotGroup,
    OccupancySnapshot,
    OccupancySource,
    Permit,
    PermitKind,
    PermitStatus,
    Role,
)
from tests.dash_helpers import dash_post, find_output, outputs_of, press

TABLE = "capacity-table.children"
MODAL = "capacity-modal.is_open"


@pytest.fixture
def site(session) -> dict[str, int]:
    """North Garage (peak 55% over ten days) with North A: 100 spaces, 100 permits valid now; and
    a lot in another group without sensor history."""
    now = datetime.now(UTC)
    north, south = LotGroup(name="North Garage"), LotGroup(name="South Garage")
    session.add_all([north, south])
    session.flush()
    lot = Lot(name="North A", code="NA", capacity=100, lot_group_id=north.id)
    other = Lot(name="South B", capacity=40, lot_group_id=south.id)
    session.add_all([lot, other])
    session.flush()
    for step in range(40):
        occupied = 55 if step == 7 else 30
        session.add(
            OccupancySnapshot(
                lot_group_id=north.id,
                source=OccupancySource.DEVICES,
                occupied=occupied,
                capacity=100,
                recorded_at=now - timedelta(hours=6 * step),
            )
        )
    for n in range(100):
        session.add(
            Permit(
                number=f"S-PAGE-{n}",
                kind=PermitKind.STANDARD,
                status=PermitStatus.ACTIVE,
                lot_id=lot.id,
                valid_from=now - timedelta(days=1),
                valid_to=now + timedelta(days=30),
            )
        )
    session.commit()
    return {"lot": lot.id, "other": other.id, "north": north.id, "south": south.id}


def refresh(client, app, search=None, group="all", days="28", margin=10) -> Any:
    return dash_post(client, app, find_output(app, TABLE), [search, group, days, margin, 0])


def dialog(client, app, trigger, values=None, lots=()) -> Any:
    rows = {"capacity-edit": [{"type": "capacity-edit", "lot": lot} for lot in lots]}
    return press(client, app, MODAL, trigger, values=values, rows=rows)


def open_dialog(client, app, lot_id: int) -> Any:
    return dialog(client, app, {"type": "capacity-edit", "lot": lot_id}, lots=[lot_id])


def test_the_page_is_for_managers(login_as) -> None:
    assert login_as(Role.GUEST).get("/manage/capacity").status_code == 302
    assert login_as(Role.USER).get("/manage/capacity").status_code == 403
    assert login_as(Role.OFFICER).get("/manage/capacity").status_code == 403
    page = login_as(Role.MANAGER).get("/manage/capacity")
    assert page.status_code == 200
    assert b"North A" not in page.data  # the layout holds no data


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403)])
def test_lower_roles_get_no_rows_and_no_dialog(app, login_as, site, role, status) -> None:
    client = login_as(role)
    response = refresh(client, app)
    assert response.status_code == status and b"North A" not in response.data
    opened = open_dialog(client, app, site["lot"])
    assert opened.status_code == status and b"North A" not in opened.data
    saved = dialog(
        client, app, "capacity-save", values={"capacity-lot": site["lot"], "capacity-allowance": "500"}
    )
    assert saved.status_code == status


def test_a_manager_sees_figures_peak_and_advice(app, login_as, site) -> None:
    table = json.dumps(outputs_of(refresh(login_as(Role.MANAGER), app)), ensure_ascii=False)
    assert "North A" in table and "South B" in table
    assert "55%" in table and "≈ 55 of 100 spaces" in table
    # floor(100 × 0.9 / 0.55) = 163
    assert (
        "Peak physical use 55% with 100 sold" in table and "you can sell about 63 more, 163 in all" in table
    )
    assert "no sensor readings" in table
    assert '"type": "capacity-edit"' in table


def test_filters_and_the_margin(app, login_as, site) -> None:
    manager = login_as(Role.MANAGER)
    by_group = json.dumps(outputs_of(refresh(manager, app, group=str(site["south"]))))
    assert "South B" in by_group and "North A" not in by_group
    by_name = json.dumps(outputs_of(refresh(manager, app, search="na")))
    assert "North A" in by_name and "South B" not in by_name
    nothing = json.dumps(outputs_of(refresh(manager, app, search="zzz")))
    assert "No lot matches the filters." in nothing
    wider = json.dumps(outputs_of(refresh(manager, app, margin=30)))
    assert "127 in all" in wider  # floor(100 × 0.7 / 0.55)
    refused = json.dumps(outputs_of(refresh(manager, app, margin=80)))
    assert "Safety margin: a whole percentage from 0 to 50" in refused
    options = outputs_of(
        dash_post(manager, app, find_output(app, "capacity-group.options"), ["/manage/capacity"])
    )
    labels = [o["label"] for o in options["capacity-group"]["options"]]
    assert labels == ["All groups", "North Garage", "South Garage"]


def test_the_dialog_shows_the_evidence_and_saves(app, login_as, core, session, site) -> None:
    manager = login_as(Role.MANAGER)
    opened = outputs_of(open_dialog(manager, app, site["lot"]))
    assert opened["capacity-modal"]["is_open"] is True
    assert opened["capacity-lot"]["data"] == site["lot"]
    assert opened["capacity-allowance"]["value"] == "100"
    assert opened["capacity-suggested"]["data"] == 163
    assert opened["capacity-use-suggestion"]["disabled"] is False
    assert "No changes recorded yet." in json.dumps(opened["capacity-history"])

    filled = outputs_of(dialog(manager, app, "capacity-use-suggestion", values={"capacity-suggested": 163}))
    assert filled["capacity-allowance"]["value"] == "163"

    bad = outputs_of(
        dialog(
            manager, app, "capacity-save", values={"capacity-lot": site["lot"], "capacity-allowance": "1O0"}
        )
    )
    assert "Permits allowed: enter a whole number" in json.dumps(bad["capacity-modal-error"])
    assert "capacity-modal" not in bad  # stays open

    pubsub = core.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    try:
        saved = outputs_of(
            dialog(
                manager,
                app,
                "capacity-save",
                values={"capacity-lot": site["lot"], "capacity-allowance": "150"},
            )
        )
        message = pubsub.get_message(timeout=1) or pubsub.get_message(timeout=1)
    finally:
        pubsub.close()
    assert saved["capacity-modal"]["is_open"] is False
    assert saved["capacity-flash"]["children"] == "North A: permits allowed changed from 100 to 150."
    assert saved["capacity-version"]["data"] == 1
    assert message is not None and json.loads(message["data"])["group_id"] == site["north"]
    session.expire_all()
    assert session.get(Lot, site["lot"]).permits_allowed == 150
    entry = session.scalars(select(AuditLog)).one()
    assert (entry.action, entry.actor_id, entry.changes) == (
        "lot.allowance",
        manager.user.id,
        {"permits_allowed": [None, 150]},
    )

    trail = json.dumps(outputs_of(open_dialog(manager, app, site["lot"]))["capacity-history"])
    assert manager.user.email in trail and "capacity" in trail and "150" in trail


def test_lowering_below_sold_is_saved_with_a_warning(app, login_as, session, site) -> None:
    saved = outputs_of(
        dialog(
            login_as(Role.ADMIN),
            app,
            "capacity-save",
            values={"capacity-lot": site["lot"], "capacity-allowance": "80"},
        )
    )
    assert saved["capacity-flash"]["color"] == "warning"
    assert (
        "100 permits are valid now, more than the 80 allowed: none is cancelled"
        in saved["capacity-flash"]["children"]
    )
    session.expire_all()
    assert session.get(Lot, site["lot"]).permits_allowed == 80
    assert set(session.scalars(select(Permit.status))) == {PermitStatus.ACTIVE}


def test_a_lot_without_evidence_offers_no_suggestion(app, login_as, site) -> None:
    opened = outputs_of(open_dialog(login_as(Role.MANAGER), app, site["other"]))
    assert opened["capacity-suggested"]["data"] is None
    assert opened["capacity-use-suggestion"]["disabled"] is True
    assert "Not enough sensor history yet" in json.dumps(opened["capacity-modal-summary"])
