"""System Task Logs page over HTTP: only admins get task data; RUN, the switch and the interval
editor change real state; a queued run shows up in the log after a worker runs it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from rq import Queue
from sqlalchemy import select

from dashboard.core import set_core
from dashboard.services import system_settings, system_tasks
from models import AuditLog, LotGroup, Role, SystemTask, TaskRun, utcnow
from tests.dash_helpers import callback_entry, dash_post, find_output, outputs_of
from tests.workers.payloads import load
from workers import jobs
from workers.parking_logix import MULTI_LOT_INFO
from workers.tasks import REGISTRY
from workers.worker import InlineWorker

TABLE = "tasks-table.children"
ACTIONS = "tasks-flash.children"


def refresh(client, app, log_filter: str = "all", outcome: str = "all", page: int = 1) -> Any:
    return dash_post(client, app, find_output(app, TABLE), [None, 0, log_filter, outcome, page])


def act(
    client,
    app,
    kind: str,
    name: str | None = None,
    value: Any = 1,
    state: list[Any] | None = None,
    names: list[str] | None = None,
) -> Any:
    """POST the actions callback as the browser does after one control changed: wildcard inputs
    carry every task's control (``names``, default: the registry's), and ``changedPropIds`` names
    the one that changed."""
    output = find_output(app, ACTIONS)
    entry = callback_entry(app, output)
    defaults = {"tasks-run": 0, "tasks-enabled": False, "tasks-edit": 0}
    inputs: list[Any] = []
    changed = ""
    for spec in entry["inputs"]:
        prop = spec["property"]
        if spec["id"].startswith("{"):
            spec_type = json.loads(spec["id"])["type"]
            controls = []
            for task in names or REGISTRY.names():
                control_id = {"name": task, "type": spec_type}
                is_trigger = spec_type == kind and task == name
                controls.append(
                    {
                        "id": control_id,
                        "property": prop,
                        "value": value if is_trigger else defaults[spec_type],
                    }
                )
                if is_trigger:
                    changed = json.dumps(control_id, sort_keys=True, separators=(",", ":")) + "." + prop
            inputs.append(controls)
        else:
            inputs.append(dict(spec, value=value if spec["id"] == kind else 0))
            if spec["id"] == kind:
                changed = f"{kind}.{prop}"
    values = list(state or [None, None, 0])
    values += [None] * (len(entry["state"]) - len(values))  # the schedule fields, unless given
    body_state = [dict(spec, value=v) for spec, v in zip(entry["state"], values, strict=True)]
    body = {
        "output": output,
        "outputs": [{"id": o.component_id, "property": o.component_property} for o in entry["output"]],
        "inputs": inputs,
        "state": body_state,
        "changedPropIds": [changed],
    }
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def queue(core) -> Queue:
    return Queue(core.settings.queue_name, connection=core.redis)


@pytest.fixture
def job_core(core):
    set_core(core)
    yield core
    set_core(None)


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403)])
def test_non_admins_get_no_task_data_and_cannot_run_tasks(app, core, login_as, role, status):
    client = login_as(role)
    table = refresh(client, app)
    assert table.status_code == status
    assert b"update-mistall" not in table.data and b"Mistall" not in table.data
    pressed = act(client, app, "tasks-run", "update-mistall")
    assert pressed.status_code == status
    switched = act(client, app, "tasks-enabled", "update-mistall", True)
    assert switched.status_code == status
    assert queue(core).count == 0
    with core.db.session() as s:
        assert not any(task.enabled for task in s.scalars(select(SystemTask)))


def test_the_page_itself_is_admin_only(app, login_as):
    assert login_as(Role.GUEST).get("/admin/tasks").status_code == 302
    assert login_as(Role.USER).get("/admin/tasks").status_code == 403
    assert login_as(Role.ADMIN).get("/admin/tasks").status_code == 200


def test_admin_sees_every_task(app, login_as):
    out = outputs_of(refresh(login_as(Role.ADMIN), app))
    table = json.dumps(out["tasks-table"]["children"])
    for definition in REGISTRY.definitions():
        assert definition.title in table
        assert json.dumps({"type": "tasks-run", "name": definition.name}) in table
    assert "every 10 min" in table and "daily at 02:00" in table and "never run" in table
    assert "No runs yet." in json.dumps(out["tasks-log"]["children"])
    # "all", not "": dbc.Select shows an empty value as its blank placeholder.
    assert out["tasks-log-filter"]["options"][0] == {"label": "All tasks", "value": "all"}


def test_run_button_queues_the_task_and_the_run_appears_in_the_log(app, core, login_as, job_core):
    client = login_as(Role.ADMIN)
    refresh(client, app)
    out = outputs_of(act(client, app, "tasks-run", "update-mistall"))
    assert "Update Mistall System Job Task queued" in out["tasks-flash"]["children"]
    assert out["tasks-flash"]["color"] == "success"
    assert queue(core).count == 1

    InlineWorker([core.settings.queue_name], connection=redis.Redis.from_url(core.redis_url)).work(burst=True)

    with core.db.session() as s:
        run = s.scalars(select(TaskRun)).one()
    assert (run.task_name, run.trigger, run.outcome.value) == ("update-mistall", "manual", "not_configured")
    log = json.dumps(outputs_of(refresh(client, app, log_filter="update-mistall"))["tasks-log"]["children"])
    assert "Enable Mistall Usage is off" in log and "not configured" in log
    other = json.dumps(
        outputs_of(refresh(client, app, log_filter="fetch-parkmobile"))["tasks-log"]["children"]
    )
    assert "No runs yet." in other


def test_a_rerendered_run_button_does_not_run_the_task(app, core, login_as):
    """A re-rendered table reports fresh controls (``n_clicks`` 0, the stored switch state): no action."""
    client = login_as(Role.ADMIN)
    refresh(client, app)
    assert outputs_of(act(client, app, "tasks-run", "update-mistall", value=0)) == {}
    assert outputs_of(act(client, app, "tasks-enabled", "update-mistall", False)) == {}
    assert queue(core).count == 0
    with core.db.session() as s:
        assert s.scalars(select(AuditLog)).all() == []


def test_switching_a_task_on_schedules_it_now_and_is_audited(app, core, login_as):
    client = login_as(Role.ADMIN)
    refresh(client, app)
    before = utcnow()
    out = outputs_of(act(client, app, "tasks-enabled", "peoplesoft-holds", True, state=[None, None, 3]))
    assert "PeopleSoft Holds Report is on" in out["tasks-flash"]["children"]
    assert out["tasks-version"]["data"] == 4
    with core.db.session() as s:
        task = s.get(SystemTask, "peoplesoft-holds")
        audit = s.scalars(select(AuditLog)).one()
    assert task.enabled and before <= task.next_run_at <= utcnow()
    assert (audit.actor_id, audit.action) == (client.user.id, "system_task.enable")

    out = outputs_of(act(client, app, "tasks-enabled", "peoplesoft-holds", False))
    assert "is off" in out["tasks-flash"]["children"]
    with core.db.session() as s:
        assert not s.get(SystemTask, "peoplesoft-holds").enabled


def test_editing_the_interval(app, core, login_as):
    client = login_as(Role.ADMIN)
    refresh(client, app)
    opened = outputs_of(act(client, app, "tasks-edit", "fetch-parkmobile"))
    assert opened["tasks-edit-modal"]["is_open"] is True
    assert opened["tasks-edit-name"]["data"] == "fetch-parkmobile"
    assert opened["tasks-edit-minutes"]["value"] == 3

    refused = outputs_of(act(client, app, "tasks-edit-save", state=["fetch-parkmobile", 0, 0]))
    assert refused["tasks-flash"]["color"] == "danger"
    assert "between 1 minute and 7 days" in refused["tasks-flash"]["children"]
    assert "tasks-edit-modal" not in refused  # stays open for a correction

    saved = outputs_of(act(client, app, "tasks-edit-save", state=["fetch-parkmobile", 15, 0]))
    assert saved["tasks-flash"]["children"] == "Fetch ParkMobile Stats now runs every 15 min."
    assert saved["tasks-edit-modal"]["is_open"] is False
    with core.db.session() as s:
        assert s.get(SystemTask, "fetch-parkmobile").interval_seconds == 900


def test_a_forged_task_name_is_refused(app, core, login_as):
    """Pattern-matching ids come from the browser: a name that is no task changes nothing."""
    client = login_as(Role.ADMIN)
    refresh(client, app)
    names = [*REGISTRY.names(), "not-a-task"]
    for kind, value in [("tasks-run", 1), ("tasks-enabled", True), ("tasks-edit", 1)]:
        out = outputs_of(act(client, app, kind, "not-a-task", value, names=names))
        assert out["tasks-flash"]["color"] == "danger"
        assert "not-a-task" in out["tasks-flash"]["children"]
    assert queue(core).count == 0
    with core.db.session() as s:
        assert s.get(SystemTask, "not-a-task") is None


def test_a_partly_failed_run_shows_in_words_with_one_line_per_key(app, core, login_as, httpserver):
    """A Parking Logix run where one key of two was refused (HTTP 200 with "status": "ERROR"): the
    log says "partly failed" in red, and the message keeps its per-key lines."""
    with core.db.session() as s:
        system_settings.update(
            s,
            core.secrets,
            {"parking_logix_enabled": True, "parking_logix_base_url": httpserver.url_for("")},
            actor_id=None,
        )
        for name, logix, key in [("Mountaineer", "Mountaineer Garage", "key-a"), ("Broken", "X", "key-x")]:
            encrypted = core.secrets.encrypt(key)
            s.add(LotGroup(name=name, parking_logix_name=logix, parking_logix_api_key=encrypted))
    httpserver.expect_request(MULTI_LOT_INFO, headers={"x-api-key": "key-a"}).respond_with_json(
        load("parking_logix_multi_lot_info")
    )
    httpserver.expect_request(MULTI_LOT_INFO, headers={"x-api-key": "key-x"}).respond_with_json(
        load("parking_logix_error")
    )
    assert jobs.execute_task(core, "parking-logix-sync", trigger="manual").outcome == "partly_failed"

    out = outputs_of(refresh(login_as(Role.ADMIN), app, log_filter="parking-logix-sync"))
    rows = out["tasks-log"]["children"]["props"]["children"][1]["props"]["children"]
    cells = [cell["props"]["children"] for cell in rows[0]["props"]["children"]]
    outcome = cells[4]["props"]
    assert (outcome["children"], outcome["color"]) == ("partly failed", "danger")
    message = rows[0]["props"]["children"][6]["props"]["children"]["props"]  # the cell's text block
    assert message["style"] == {"whiteSpace": "pre-line"}
    assert message["children"].splitlines()[1] == (
        f"key of Broken: FAILED: Parking Logix refused {MULTI_LOT_INFO}: INVALID_API_KEY"
    )
    task_row = json.dumps(out["tasks-table"]["children"])
    assert '"children": "partly failed", "color": "danger"' in task_row


def test_a_lost_run_and_missed_slots_read_in_words_in_the_site_time_zone(app, core, login_as):
    """What the scheduler records about a worker that died and slots nobody could queue shows on
    the run log as sentences, with times in the site's time zone (America/Toronto in tests)."""
    with core.db.session() as s:
        system_tasks.sync_registry(s, REGISTRY.definitions())
        run = s.get(TaskRun, system_tasks.start_run(s, "update-mistall", "schedule"))
        run.started_at = datetime(2026, 1, 5, 18, 50, tzinfo=UTC)
        run.heartbeat_at = datetime(2026, 1, 5, 19, 3, 22, tzinfo=UTC)
    [lost] = jobs.recover_lost_runs(core)
    slot = system_tasks.Slot("fetch-parkmobile", datetime(2026, 7, 4, 6, 0, tzinfo=UTC), 180)
    with core.db.session() as s:
        system_tasks.record_missed(s, slot, slot.due_at + timedelta(seconds=3 * 180 + 20), core.settings.tz)

    log = json.dumps(outputs_of(refresh(login_as(Role.ADMIN), app))["tasks-log"]["children"])
    assert (
        "The worker running it stopped (killed?) at 14:03:22 EST on Mon 5 Jan 2026, its last sign of life; "
        "its lock on the task has expired, and it is queued again, once (see the next run, trigger retry)."
    ) in log
    assert "Monday 5 January 2026 at 13:50:00" in log  # started, local time, in words
    assert (
        "3 scheduled runs were missed (due from 02:00:00 EDT on Sat 4 Jul 2026 to 02:06:00 EDT on Sat 4 Jul "
        "2026): no scheduler could queue the task in time"
    ) in log
    assert '"children": "missed"' in log and '"color": "warning"' in log
    assert lost.task_title == "Update Mistall System Job Task"
    with core.db.session() as s:
        tasks = {task.name: task for task in system_tasks.list_tasks(s)}
    assert tasks["update-mistall"].last_outcome == "failed"
    assert tasks["fetch-parkmobile"].last_outcome is None


def test_editing_the_time_of_day(app, core, login_as):
    """The nightly report opens as "daily at 02:00"; weekly on Sunday at 03:00 is saved, shown in
    words with its next run in the site's time zone, and audited; a bad cron spec is refused in
    words; back to every few minutes works."""
    client = login_as(Role.ADMIN)
    refresh(client, app)
    opened = outputs_of(act(client, app, "tasks-edit", "peoplesoft-holds"))
    assert opened["tasks-edit-mode"]["value"] == "daily"
    assert opened["tasks-edit-time"]["value"] == "02:00"
    assert opened["tasks-edit-spec"]["value"] == "0 2 * * *"

    weekly = ["peoplesoft-holds", 1440, 0, "weekly", "03:00", "0", ""]
    off = outputs_of(act(client, app, "tasks-edit-save", state=[*weekly[:4], "04:00", "1", ""]))
    assert off["tasks-flash"]["children"] == (
        "PeopleSoft Holds Report now runs weekly on Monday at 04:00 once it is turned on."
    )
    with core.db.session() as s:
        system_tasks.set_enabled(s, "peoplesoft-holds", True, None)
    saved = outputs_of(act(client, app, "tasks-edit-save", state=weekly))
    flash = saved["tasks-flash"]["children"]
    assert flash.startswith("PeopleSoft Holds Report now runs weekly on Sunday at 03:00; next run: Sunday ")
    assert "at 03:00 E" in flash and saved["tasks-edit-modal"]["is_open"] is False
    with core.db.session() as s:
        task = s.get(SystemTask, "peoplesoft-holds")
        assert task.schedule == "0 3 * * 0"
        local = task.next_run_at.astimezone(core.settings.tz)
        assert (local.weekday(), local.hour, local.minute) == (6, 3, 0)
        assert local - datetime.now(core.settings.tz) <= timedelta(days=7)
        audits = s.scalars(select(AuditLog).where(AuditLog.action == "system_task.schedule")).all()
        assert [a.changes for a in audits] == [
            {"schedule": ["0 2 * * *", "0 4 * * 1"]},
            {"schedule": ["0 4 * * 1", "0 3 * * 0"]},
        ]
    table = json.dumps(outputs_of(refresh(client, app))["tasks-table"]["children"])
    assert "weekly on Sunday at 03:00" in table

    bad = outputs_of(
        act(client, app, "tasks-edit-save", state=["peoplesoft-holds", 1, 0, "cron", "", "", "0 25 * * *"])
    )
    assert bad["tasks-flash"]["color"] == "danger"
    assert "not a valid schedule" in bad["tasks-flash"]["children"]
    bad_time = outputs_of(
        act(client, app, "tasks-edit-save", state=["peoplesoft-holds", 1, 0, "daily", "2am", "", ""])
    )
    assert "enter a time of day such as 02:00" in bad_time["tasks-flash"]["children"]

    cron = ["peoplesoft-holds", 1, 0, "cron", "", "", "15 */6 * * 1-5"]
    assert (
        "now runs at times matching 15 */6 * * 1-5"
        in outputs_of(act(client, app, "tasks-edit-save", state=cron))["tasks-flash"]["children"]
    )

    back = outputs_of(
        act(client, app, "tasks-edit-save", state=["peoplesoft-holds", 60, 0, "interval", "", "", ""])
    )
    assert back["tasks-flash"]["children"] == "PeopleSoft Holds Report now runs every 1 h."
    with core.db.session() as s:
        task = s.get(SystemTask, "peoplesoft-holds")
        assert (task.schedule, task.interval_seconds) == (None, 3600)


def _log_run(s, name: str, started: datetime, outcome: str, message: str, rows: int = 0) -> None:
    run = s.get(TaskRun, system_tasks.start_run(s, name, "schedule"))
    system_tasks.finish_run(s, run.id, outcome, message, rows)
    run.started_at = started


def _log_rows(out: dict) -> list[list[str]]:
    grid = out["tasks-log"]["children"]["props"]["children"][1]["props"]["children"]
    return [[json.dumps(cell["props"]["children"]) for cell in row["props"]["children"]] for row in grid]


def test_the_run_log_folds_idle_runs_pages_and_filters_by_task_and_outcome(app, core, login_as):
    """An hour of a task that ran every minute and found nothing reads as one line; the failure
    among them stays its own line; 120 distinct runs make three pages of 50."""
    start = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)  # 09:00 in Toronto
    with core.db.session() as s:
        system_tasks.sync_registry(s, REGISTRY.definitions())
        for minute in range(60):
            _log_run(s, "waitlist-offers", start + timedelta(minutes=minute), "success", "0 offers made")
        _log_run(s, "update-mistall", start + timedelta(minutes=30, seconds=5), "failed", "Mistall refused")
    admin = login_as(Role.ADMIN)
    rows = _log_rows(outputs_of(refresh(admin, app)))
    assert len(rows) == 3  # 29 idle runs, the failure, 20 idle runs (a page is 50 runs)
    assert "\\u00d729, since Monday 5 January 2026 at 09:31:00" in rows[0][2]
    assert "Mistall refused" in rows[1][6]
    assert "\\u00d720, since Monday 5 January 2026 at 09:11:00" in rows[2][2]

    failed = outputs_of(refresh(admin, app, outcome="failed"))
    assert [r[0] for r in _log_rows(failed)] == ['"Update Mistall System Job Task"']
    only_waitlist = _log_rows(outputs_of(refresh(admin, app, log_filter="waitlist-offers")))
    assert len(only_waitlist) == 1 and "\\u00d750" in only_waitlist[0][2]

    with core.db.session() as s:
        for n in range(60):
            _log_run(
                s, "occupancy-snapshots", start + timedelta(hours=2, minutes=n), "success", f"{n} rows", n + 1
            )
    first = outputs_of(refresh(admin, app))
    assert first["tasks-log-page"]["max_value"] == 3  # 121 runs
    last = outputs_of(refresh(admin, app, page=3))
    assert "Monday 5 January 2026 at 09:00:00" in json.dumps(last["tasks-log"]["children"])
    beyond = outputs_of(refresh(admin, app, page=99))  # a stale page number shows the last page
    assert beyond["tasks-log"] == last["tasks-log"]
