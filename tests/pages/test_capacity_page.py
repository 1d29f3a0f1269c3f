"""Manage Capacity over HTTP and called directly: only managers and admins get the page, the cards
and the dialog; a card carries the figures, the advice in a few words and its sentence; filters
narrow them; the dialog shows the chart and the trail, refuses a bad number or one below sold, asks
before a change that leaves few permits to sell, and saves, audits and announces a good one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask_login import login_user
from sqlalchemy import select

from dashboard.auth import SessionUser
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
from tests.dash_helpers import callback_entry, dash_post, find_output, outputs_of, press

TABLE = "capacity-table.children"
EDIT_OUTPUTS = (
    "modal_open",
    "lot",
    "title",
    "summary",
    "value",
    "suggested",
    "suggest_disabled",
    "history",
    "error",
    "flash",
    "flash_color",
    "flash_open",
    "version",
    "confirm_open",
    "confirm_message",
    "pending",
)
MODAL = "capacity-modal.is_open"


@pytest.fixture
def site(session) -> dict[str, int]:
    """North Garage (peak 55% over ten days) with North A: 100 spaces, 100 permits valid all month;
    and a lot in another group without sensor history."""
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
                valid_from=now - timedelta(days=30),
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


def confirm(client, app, values: dict[str, Any]) -> Any:
    """The browser's call after "OK" in the confirm dialog: its ``submit_n_clicks`` changed (``press``
    sends only ``n_clicks``)."""
    entry = callback_entry(app, find_output(app, MODAL))
    inputs: list[Any] = [
        []
        if spec["id"].startswith("{")
        else dict(spec, value=1 if spec["id"] == "capacity-confirm" else None)
        for spec in entry["inputs"]
    ]
    body = {
        "output": find_output(app, MODAL),
        "outputs": [{"id": o.component_id, "property": o.component_property} for o in entry["output"]],
        "inputs": inputs,
        "state": [dict(spec, value=values.get(spec["id"])) for spec in entry["state"]],
        "changedPropIds": ["capacity-confirm.submit_n_clicks"],
    }
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


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
    assert "55% full" in table
    # 55 cars for 100 permits at the busiest hour: 100 × 0.9 / 0.55 = 163
    assert "Sell up to 163 (1.63 per space)" in table
    assert "about 55 cars parked for 100 valid permits, so up to 163 permits" in table
    assert "No advice yet: the lot's group has no sensor readings" in table
    assert '"type": "capacity-edit"' in table
    assert f'"id": "capacity-row-{site["lot"]}"' in table


def test_filters_and_the_margin(app, login_as, site) -> None:
    manager = login_as(Role.MANAGER)
    by_group = json.dumps(outputs_of(refresh(manager, app, group=str(site["south"]))))
    assert "South B" in by_group and "North A" not in by_group
    by_name = json.dumps(outputs_of(refresh(manager, app, search="na")))
    assert "North A" in by_name and "South B" not in by_name
    nothing = json.dumps(outputs_of(refresh(manager, app, search="zzz")))
    assert "No lot matches the filters." in nothing
    wider = json.dumps(outputs_of(refresh(manager, app, margin=30)))
    assert "Sell up to 127" in wider  # floor(100 × 0.7 / 0.55)
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
    summary = json.dumps(opened["capacity-modal-summary"])
    assert '"id": "capacity-chart"' in summary and '"name": "Peak"' in summary
    assert "Sell up to 163 (1.63 per space)" in summary

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


def test_saving_below_sold_is_refused(app, login_as, session, site) -> None:
    refused = outputs_of(
        dialog(
            login_as(Role.ADMIN),
            app,
            "capacity-save",
            values={"capacity-lot": site["lot"], "capacity-allowance": "80"},
        )
    )
    assert "Permits allowed: at least the 100 permits valid now" in json.dumps(
        refused["capacity-modal-error"]
    )
    assert "capacity-modal" not in refused and "capacity-confirm" not in refused  # stays open, no question
    session.expire_all()
    assert session.get(Lot, site["lot"]).permits_allowed is None
    assert session.scalars(select(AuditLog)).all() == []


def test_a_change_leaving_few_to_sell_asks_first(app, login_as, session, site) -> None:
    manager = login_as(Role.MANAGER)
    asked = outputs_of(
        dialog(
            manager, app, "capacity-save", values={"capacity-lot": site["lot"], "capacity-allowance": "102"}
        )
    )
    assert asked["capacity-confirm"]["displayed"] is True
    assert asked["capacity-confirm"]["message"] == (
        "102 allowed with 100 sold leaves only 2 permits to sell in North A. Save 102 anyway?"
    )
    assert asked["capacity-pending"]["data"] == {"lot": site["lot"], "value": 102}
    assert "capacity-modal" not in asked
    session.expire_all()
    assert session.get(Lot, site["lot"]).permits_allowed is None  # nothing saved before the answer

    stale = outputs_of(
        confirm(
            manager,
            app,
            {"capacity-lot": site["other"], "capacity-pending": {"lot": site["lot"], "value": 102}},
        )
    )
    assert "Press Save again" in json.dumps(stale["capacity-modal-error"])

    saved = outputs_of(
        confirm(
            manager, app, {"capacity-lot": site["lot"], "capacity-pending": asked["capacity-pending"]["data"]}
        )
    )
    assert saved["capacity-modal"]["is_open"] is False
    assert saved["capacity-flash"]["color"] == "warning"
    assert saved["capacity-flash"]["children"] == (
        "North A: permits allowed changed from 100 to 102. "
        "102 allowed with 100 sold leaves only 2 permits to sell in North A."
    )
    session.expire_all()
    assert session.get(Lot, site["lot"]).permits_allowed == 102


def test_lower_roles_cannot_confirm(app, login_as, session, site) -> None:
    values = {"capacity-lot": site["lot"], "capacity-pending": {"lot": site["lot"], "value": 102}}
    assert confirm(login_as(Role.USER), app, values).status_code == 403
    assert confirm(login_as(Role.OFFICER), app, values).status_code == 403
    assert confirm(login_as(Role.GUEST), app, values).status_code == 401
    session.expire_all()
    assert session.get(Lot, site["lot"]).permits_allowed is None


def test_the_callbacks_called_directly(app, core, make_user, session, site) -> None:
    """The functions Dash registered, called in a request as the browser's call would run them."""
    manager = make_user(Role.MANAGER)
    cards = callback_entry(app, find_output(app, TABLE))["callback"].__wrapped__
    edit = callback_entry(app, find_output(app, MODAL))["callback"].__wrapped__
    with app.test_request_context("/_dash-update-component", method="POST"):
        from dash._callback_context import context_value  # noqa: PLC0415 (Dash's own per-call context)
        from dash._utils import AttributeDict  # noqa: PLC0415

        login_user(SessionUser(manager.id, manager.email, manager.name, Role.MANAGER))
        listed = json.dumps(cards(None, "all", "28", 10, 0), default=str)
        assert "Sell up to 163 (1.63 per space)" in listed
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": "capacity-save.n_clicks", "value": 1}]))
        out = dict(
            zip(
                EDIT_OUTPUTS,
                edit([0], 1, 0, 0, None, site["lot"], "100", 163, "28", 10, 0, None),
                strict=True,
            )
        )
    assert out["confirm_open"] is True and "leaves no permit to sell in North A" in out["confirm_message"]
    assert out["pending"] == {"lot": site["lot"], "value": 100}
    session.expire_all()
    assert session.get(Lot, site["lot"]).permits_allowed is None


def test_a_lot_without_evidence_offers_no_suggestion(app, login_as, site) -> None:
    opened = outputs_of(open_dialog(login_as(Role.MANAGER), app, site["other"]))
    assert opened["capacity-suggested"]["data"] is None
    assert opened["capacity-use-suggestion"]["disabled"] is True
    summary = json.dumps(opened["capacity-modal-summary"])
    assert "No advice yet: the lot's group has no sensor readings" in summary
    assert "No sensor readings in the window: nothing to chart." in summary
