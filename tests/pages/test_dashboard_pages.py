"""The Dashboard (/admin) and Edit Dashboard over HTTP, as the browser calls them: who gets what,
per-user layouts, the mistall-lot-stats widget following "Enable Mistall Usage", and its labels."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.services import feed_health, system_settings, system_tasks
from dashboard.services.occupancy import LiveStore, apply_figure
from models import (
    DashboardWidget,
    IngestDeadLetter,
    Lot,
    LotGroup,
    MistallLot,
    OccupancySource,
    Role,
    SystemTask,
)
from tests.dash_helpers import dash_post, find_output, outputs_of
from tests.enforcement import enable_boots
from workers.tasks import REGISTRY

GRID = "dashboard-grid.children"
EDIT_LISTS = "dashedit-available.children"
ACT = "dashedit-status.children"
ACTION = "dashedit-action"
CHARTS = {"mistall-lot-stats", "occupancy-today"}
MANAGER_DEFAULT = ["occupancy-summary", "occupancy-today", "permits-today", "boots-in-use"]


@pytest.fixture(autouse=True)
def _boots_on(core):
    """The default layouts below include Boots In Use, which needs Universal Boot Enabled."""
    enable_boots(core)


def build(client, app) -> Any:
    return dash_post(client, app, find_output(app, GRID), ["dashboard-grid"])


def card_keys(response) -> list[str]:
    """The widget keys of the cards ``build`` laid out, in order."""
    text = json.dumps(outputs_of(response)["dashboard-grid"]["children"])
    found = []
    for part in text.split('"id": "dashboard-widget-')[1:]:
        found.append(part.split('"', 1)[0])
    return found


def _id(kind: str, key: str) -> dict[str, str]:
    return {"type": kind, "key": key}


def _sid(kind: str, key: str) -> str:
    return json.dumps(_id(kind, key), sort_keys=True, separators=(",", ":"))


def refresh(client, app, keys: list[str]) -> Any:
    """The refresh callback with the cards ``keys`` in the page (chart parts for chart widgets)."""
    charts = [key for key in keys if key in CHARTS]
    body = {
        "output": find_output(app, '"dashboard-body"}.children'),
        "outputs": [
            [{"id": _id("dashboard-body", k), "property": "children"} for k in keys],
            [{"id": _id("dashboard-graph", k), "property": "figure"} for k in charts],
            [{"id": _id("dashboard-table", k), "property": "children"} for k in charts],
        ],
        "inputs": [
            {"id": "dashboard-live", "property": "data", "value": None},
            {"id": "dashboard-poll", "property": "n_intervals", "value": 1},
            [
                {"id": _id("dashboard-body", k), "property": "id", "value": _id("dashboard-body", k)}
                for k in keys
            ],
        ],
        "state": [],
        "changedPropIds": ["dashboard-poll.n_intervals"],
    }
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def cards(response) -> dict[str, dict[str, Any]]:
    """``{key: {"body": ..., "figure": ..., "table": ...}}`` from a refresh response."""
    result: dict[str, dict[str, Any]] = {}
    for component_id, props in outputs_of(response).items():
        parsed = json.loads(component_id)
        part = parsed["type"].removeprefix("dashboard-")
        name = {"body": "body", "graph": "figure", "table": "table"}[part]
        result.setdefault(parsed["key"], {})[name] = next(iter(props.values()))
    return result


def edit_lists(client, app) -> Any:
    return dash_post(client, app, find_output(app, EDIT_LISTS), [0])


def press(client, app, action: str, key: str = "", clicks: int = 1) -> Any:
    """One button press on Edit Dashboard (``action`` "reset" presses Reset to default)."""
    buttons = (
        []
        if action == "reset"
        else [{"id": _id_action(action, key), "property": "n_clicks", "value": clicks}]
    )
    changed = "dashedit-reset.n_clicks" if action == "reset" else _sid_action(action, key) + ".n_clicks"
    body = {
        "output": find_output(app, ACT),
        "outputs": [
            {"id": "dashedit-status", "property": "children"},
            {"id": "dashedit-version", "property": "data"},
            {"id": "dashedit-focus", "property": "data"},
        ],
        "inputs": [
            buttons,
            {"id": "dashedit-reset", "property": "n_clicks", "value": clicks if action == "reset" else 0},
        ],
        "state": [{"id": "dashedit-version", "property": "data", "value": 3}],
        "changedPropIds": [changed],
    }
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def _id_action(action: str, key: str) -> dict[str, str]:
    return {"type": ACTION, "action": action, "key": key}


def _sid_action(action: str, key: str) -> str:
    return json.dumps(_id_action(action, key), sort_keys=True, separators=(",", ":"))


def saved(core, user_id: int) -> list[str]:
    with core.db.session() as s:
        rows = s.scalars(
            select(DashboardWidget)
            .where(DashboardWidget.user_id == user_id)
            .order_by(DashboardWidget.position)
        )
        return [row.widget_key for row in rows]


def set_mistall(core, on: bool) -> None:
    with core.db.session() as s:
        system_settings.update(s, core.secrets, {"mistall_enabled": on}, actor_id=None)


# -- access -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin", "/admin/dashboard/edit"])
def test_pages_are_for_managers_and_up(login_as, path):
    assert login_as(Role.GUEST).get(path).status_code == 302
    assert login_as(Role.USER).get(path).status_code == 403
    assert login_as(Role.OFFICER).get(path).status_code == 403
    assert login_as(Role.MANAGER).get(path).status_code == 200
    assert login_as(Role.ADMIN).get(path).status_code == 200


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403)])
def test_lower_roles_get_nothing_and_change_nothing(app, core, login_as, role, status):
    with core.db.session() as s:
        s.add(IngestDeadLetter(topic="t/x", payload="{}", reason="SECRET-REASON"))
    client = login_as(role)
    for response in (
        build(client, app),
        refresh(client, app, ["dead-letters", "occupancy-summary"]),
        edit_lists(client, app),
        press(client, app, "add", "occupancy-summary"),
        press(client, app, "reset"),
    ):
        assert response.status_code == status
        assert b"SECRET-REASON" not in response.data and b"Live Occupancy" not in response.data
    with core.db.session() as s:
        assert s.scalars(select(DashboardWidget)).all() == []


def test_a_manager_gets_the_default_set_without_admin_widgets(app, core, login_as):
    with core.db.session() as s:
        s.add(IngestDeadLetter(topic="t/x", payload="{}", reason="SECRET-REASON"))
    manager = login_as(Role.MANAGER)
    assert card_keys(build(manager, app)) == MANAGER_DEFAULT
    lists = json.dumps(outputs_of(edit_lists(manager, app)))
    assert "task-health" not in lists and "dead-letters" not in lists
    # a forged card id for an admin-only widget gets "not available", never data
    forged = cards(refresh(manager, app, ["dead-letters", "task-health", "permits-today"]))
    assert "not available" in json.dumps(forged["dead-letters"]["body"])
    assert "not available" in json.dumps(forged["task-health"]["body"])
    assert "SECRET-REASON" not in json.dumps(forged)
    permits = json.dumps(forged["permits-today"]["body"])
    assert "permit(s) sold" in permits
    assert (
        "CAD 0.00" in permits and "Paid online: CAD 0.00" in permits
    )  # nothing sold: in the site's currency
    refused = press(manager, app, "add", "task-health")
    assert "not available to your role" in json.dumps(outputs_of(refused))
    assert saved(core, manager.user.id) == []


def test_an_admin_gets_the_admin_widgets_with_data(app, core, login_as):
    with core.db.session() as s:
        s.add(IngestDeadLetter(topic="sensors/x", payload="{}", reason="count is not a number"))
        system_tasks.sync_registry(s, REGISTRY.definitions())
        s.get(SystemTask, "update-mistall").last_outcome = "failed"
    admin = login_as(Role.ADMIN)
    assert card_keys(build(admin, app)) == [*MANAGER_DEFAULT, "task-health", "dead-letters"]
    out = cards(refresh(admin, app, ["dead-letters", "task-health"]))
    dead = json.dumps(out["dead-letters"]["body"])
    assert "count is not a number" in dead and "/admin/ingest" in dead
    assert "in the last 24 h" in dead
    tasks = json.dumps(out["task-health"]["body"])
    assert "1 failing" in tasks and "Update Mistall System Job Task" in tasks and "table-danger" in tasks


def test_a_partly_failed_task_counts_as_failing_in_the_task_health_widget(app, core, login_as):
    with core.db.session() as s:
        system_tasks.sync_registry(s, REGISTRY.definitions())
        task = s.get(SystemTask, "parking-logix-sync")
        task.enabled, task.last_outcome, task.last_run_at = True, "partly_failed", datetime.now(UTC)
    out = cards(refresh(login_as(Role.ADMIN), app, ["task-health"]))
    tasks = json.dumps(out["task-health"]["body"])
    assert "1 failing" in tasks and "partly failed" in tasks and "table-danger" in tasks


def test_occupancy_summary_shows_the_live_totals(app, core, login_as):
    with core.db.session() as s:
        group = LotGroup(name="North Garage", mistall_lot_id="M-1")
        s.add(group)
        s.flush()
        s.add(Lot(name="North L1", capacity=100, lot_group_id=group.id))
        apply_figure(
            s,
            LiveStore(core.redis),
            group.id,
            OccupancySource.MISTALL,
            57,
            200,
            datetime.now(UTC),
            step_percent=5,
        )
    out = cards(refresh(login_as(Role.MANAGER), app, ["occupancy-summary", "occupancy-today"]))
    summary = json.dumps(out["occupancy-summary"]["body"])
    assert "57 / 200" in summary and "North Garage" in summary and "28%" in summary
    today = out["occupancy-today"]
    assert [trace["name"] for trace in today["figure"]["data"]] == ["North Garage"]
    assert "North Garage" in json.dumps(today["table"])


def _ingester_reported(core, *, waiting_for: timedelta | None, error: str = "") -> None:
    """What the running ingester writes to Redis about once a second (``workers.ingest``)."""
    now = datetime.now(UTC).timestamp()
    since = now - waiting_for.total_seconds() if waiting_for else None
    core.redis.hset(
        feed_health.STATUS_KEY,
        mapping={
            "owner": "ingest-1, process 77",
            "beat_at": repr(now),
            "applied_at": repr(since or now),
            "waiting": 40 if since else 0,
            "waiting_since": repr(since) if since else "",
            "last_error": error,
            "connected": "1",
            "stopped_at": "",
        },
    )


def test_a_stuck_ingester_and_a_forgotten_session_show_on_the_dashboard(app, core, login_as):
    """The admin's feed widget says why live occupancy is frozen and that the broker forgot the
    ingester's session; a manager's Live Occupancy says the sensor figures are frozen, without
    the internals."""
    admin, manager = login_as(Role.ADMIN), login_as(Role.MANAGER)
    _ingester_reported(core, waiting_for=timedelta(minutes=3), error="OperationalError: disk full")
    core.redis.hset(
        feed_health.SESSIONS_LOST_KEY, mapping={"count": 2, "last_at": repr(datetime.now(UTC).timestamp())}
    )
    with core.db.session() as s:
        s.add(LotGroup(name="North Garage"))
    dead = json.dumps(cards(refresh(admin, app, ["dead-letters"]))["dead-letters"]["body"])
    assert "The ingester is stuck, live sensor figures are frozen: 40 message(s) waiting" in dead
    assert "disk full" in dead
    assert "forgot the ingester's session 2 time(s)" in dead
    summary = json.dumps(cards(refresh(manager, app, ["occupancy-summary"]))["occupancy-summary"]["body"])
    assert "Live sensor figures are frozen" in summary and "disk full" not in summary

    _ingester_reported(core, waiting_for=None)
    core.redis.hset(
        feed_health.SESSIONS_LOST_KEY, "last_at", repr((datetime.now(UTC) - timedelta(days=2)).timestamp())
    )
    dead = json.dumps(cards(refresh(admin, app, ["dead-letters"]))["dead-letters"]["body"])
    assert (
        "stuck" not in dead and "forgot" not in dead
    )  # an old forgotten session stays on Sensor Feed Health
    summary = json.dumps(cards(refresh(manager, app, ["occupancy-summary"]))["occupancy-summary"]["body"])
    assert "frozen" not in summary


# -- editing ---------------------------------------------------------------------------------------


def test_moves_removes_and_reset_are_saved_for_this_user_only(app, core, login_as):
    one, two = login_as(Role.MANAGER), login_as(Role.MANAGER)
    out = outputs_of(press(one, app, "up", "permits-today"))
    assert "Permits Sold Today moved to place 2" in json.dumps(out["dashedit-status"])
    assert out["dashedit-version"]["data"] == 4
    assert out["dashedit-focus"]["data"] == _sid_action("up", "permits-today")
    outputs_of(press(one, app, "remove", "boots-in-use"))
    assert saved(core, one.user.id) == ["occupancy-summary", "permits-today", "occupancy-today"]
    assert card_keys(build(one, app)) == ["occupancy-summary", "permits-today", "occupancy-today"]
    assert card_keys(build(two, app)) == MANAGER_DEFAULT and saved(core, two.user.id) == []

    # moved to the top: focus goes to its Move down button (Move up is disabled there)
    top = outputs_of(press(one, app, "up", "permits-today"))
    assert top["dashedit-focus"]["data"] == _sid_action("down", "permits-today")

    lists = outputs_of(edit_lists(one, app))
    assert "dashedit-available-boots-in-use" in json.dumps(lists["dashedit-available"])
    assert "dashedit-current-boots-in-use" not in json.dumps(lists["dashedit-current"])

    reset = outputs_of(press(one, app, "reset"))
    assert "default set" in json.dumps(reset["dashedit-status"])
    assert saved(core, one.user.id) == []
    assert card_keys(build(one, app)) == MANAGER_DEFAULT


def test_a_rerendered_button_is_no_press(app, core, login_as):
    manager = login_as(Role.MANAGER)
    assert outputs_of(press(manager, app, "remove", "boots-in-use", clicks=0)) == {}
    assert saved(core, manager.user.id) == []


def test_the_last_widget_cannot_be_removed(app, core, login_as):
    manager = login_as(Role.MANAGER)
    for key in MANAGER_DEFAULT[1:]:
        outputs_of(press(manager, app, "remove", key))
    refused = outputs_of(press(manager, app, "remove", "occupancy-summary"))
    text = json.dumps(refused["dashedit-status"])
    assert "Not saved:" in text and "at least one widget" in text
    assert "dashedit-version" not in refused
    assert saved(core, manager.user.id) == ["occupancy-summary"]


def test_unknown_widget_keys_are_refused_with_a_message(app, core, login_as):
    out = outputs_of(press(login_as(Role.ADMIN), app, "add", "weather"))
    assert "there is no widget" in json.dumps(out["dashedit-status"])


# -- mistall-lot-stats ----------------------------------------------------------------------------------


@pytest.fixture
def mistall_data(core) -> None:
    now = datetime.now(UTC)
    with core.db.session() as s:
        s.add_all(
            [
                MistallLot(
                    mistall_id="M-1",
                    name="Mistall Lot Alpha",
                    capacity=300,
                    occupied=120,
                    reported_at=now - timedelta(minutes=4),
                    imported_at=now - timedelta(minutes=3),
                ),
                MistallLot(
                    mistall_id="M-2", name="Mistall Lot Beta", capacity=90, occupied=30, imported_at=now
                ),
                LotGroup(name="Garage Group", mistall_lot_id="M-1"),
            ]
        )


def test_the_mistall_widget_follows_enable_mistall_usage(app, core, login_as, mistall_data):
    admin = login_as(Role.ADMIN)
    assert "mistall-lot-stats" not in json.dumps(outputs_of(edit_lists(admin, app)))
    refused = json.dumps(outputs_of(press(admin, app, "add", "mistall-lot-stats")))
    assert "Enable Mistall Usage" in refused

    set_mistall(core, True)
    offered = json.dumps(outputs_of(edit_lists(admin, app))["dashedit-available"])
    assert "mistall-lot-stats" in offered and "Mistall Lot Stats" in offered
    added = json.dumps(outputs_of(press(admin, app, "add", "mistall-lot-stats")))
    assert "Mistall Lot Stats added" in added
    assert card_keys(build(admin, app))[-1] == "mistall-lot-stats"

    set_mistall(core, False)
    assert "mistall-lot-stats" not in card_keys(build(admin, app))
    hidden = cards(refresh(admin, app, ["mistall-lot-stats"]))["mistall-lot-stats"]
    assert "not available" in json.dumps(hidden["body"]) and "Garage Group" not in json.dumps(hidden)
    assert "mistall-lot-stats" in saved(core, admin.user.id)  # kept for when it is back
    set_mistall(core, True)
    assert card_keys(build(admin, app))[-1] == "mistall-lot-stats"


def test_mistall_bars_are_labelled_with_group_names_or_mistall_names(app, core, login_as, mistall_data):
    set_mistall(core, True)
    manager = login_as(Role.MANAGER)
    outputs_of(press(manager, app, "add", "mistall-lot-stats"))
    widget = cards(refresh(manager, app, ["mistall-lot-stats"]))["mistall-lot-stats"]
    figure = widget["figure"]
    assert figure["layout"]["yaxis"]["ticktext"] == ["Garage Group", "Mistall Lot Beta"]
    occupied, free = figure["data"]
    assert occupied["x"] == [120, 30] and free["x"] == [180, 60]
    table = json.dumps(widget["table"])
    assert (
        "Garage Group" in table and "Mistall Lot Alpha (M-1)" in table and "Mistall Lot Beta (M-2)" in table
    )
    body = json.dumps(widget["body"])
    assert "Reported" in body and "4 min ago" in body and "imported" in body
