"""System Task Logs (the seed's Tools > View System Task Logs): turn periodic tasks on and off,
change how often or at what times of day they run, run one now, and read the log of runs.

The layout is empty scaffolding (Dash sends it to every browser); tasks and runs arrive only
through admin-checked callbacks. The table is re-rendered every few seconds, so the interval is
edited in a modal outside it: an input inside the table would lose what the admin is typing.
Every action arrives in one callback, because they all answer with the same flash message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update
from redis.exceptions import RedisError

from dashboard.callbacks import callback, register_page
from dashboard.services import schedules, system_tasks
from dashboard.services.days import moment_words
from dashboard.services.errors import DomainError, ValidationFailed
from dashboard.services.system_tasks import RunGroup, RunView, TaskView
from dashboard.web import core, current_user_id, session_scope
from models import Role
from workers.jobs import enqueue_task
from workers.tasks import REGISTRY, UnknownTask

register_page(__name__, path="/admin/tasks", title="System Task Logs", min_role=Role.ADMIN)

REFRESH_MS = 5_000
LOG_LIMIT = 50  # runs per page of the log
ALL_RUNS = "all"  # not "": dbc.Select shows "" as its blank placeholder, not as "All tasks"
OUTCOME_COLOURS = {
    "success": "success",
    "failed": "danger",
    "partly_failed": "danger",
    "not_configured": "warning",
    "skipped": "secondary",
    "missed": "warning",
    "late": "warning",
    "running": "info",
}


OUTCOME_OPTIONS = (
    [{"label": "All outcomes", "value": ALL_RUNS}]
    + [
        {"label": outcome.replace("_", " ").capitalize(), "value": outcome}
        for outcome in OUTCOME_COLOURS
        if outcome != "running"
    ]
    + [{"label": "Running", "value": "running"}]
)


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("System Task Logs", className="h3"),
            html.P(
                "Periodic jobs that import and export data. A task runs every few minutes or at fixed "
                "times of day in the site's time zone; turning it on runs it at once and then on its "
                "schedule; RUN queues one run now.",
                className="text-muted",
            ),
            dbc.Alert(id="tasks-flash", is_open=False, dismissable=True, duration=8000),
            dcc.Interval(id="tasks-refresh", interval=REFRESH_MS),
            dcc.Store(id="tasks-version", data=0),
            html.Div(id="tasks-table", className="mb-4"),
            dbc.Modal(
                [
                    dbc.ModalHeader(dbc.ModalTitle("Schedule")),
                    dbc.ModalBody(
                        [
                            dcc.Store(id="tasks-edit-name"),
                            html.P(id="tasks-edit-title", className="fw-bold"),
                            dbc.RadioItems(
                                id="tasks-edit-mode",
                                options=[{"label": label, "value": value} for value, label in MODES],
                                value="interval",
                                className="mb-3",
                            ),
                            dbc.Label("Minutes between runs (1 to 10080)", html_for="tasks-edit-minutes"),
                            dbc.Input(id="tasks-edit-minutes", type="number", min=1, max=10080, step=1),
                            dbc.Label(
                                "Time of day (daily, weekly)", html_for="tasks-edit-time", className="mt-2"
                            ),
                            dbc.Input(id="tasks-edit-time", type="time", value="02:00"),
                            dbc.Label(
                                "Day of the week (weekly)", html_for="tasks-edit-weekday", className="mt-2"
                            ),
                            dbc.Select(
                                id="tasks-edit-weekday",
                                options=[
                                    {"label": day, "value": str(i)}
                                    for i, day in enumerate(schedules.WEEKDAYS)
                                ],
                                value="0",
                            ),
                            dbc.Label("Cron expression", html_for="tasks-edit-spec", className="mt-2"),
                            dbc.Input(
                                id="tasks-edit-spec", type="text", placeholder="0 2 * * *", maxLength=64
                            ),
                            dbc.FormText(
                                "Five fields: minute hour day-of-month month day-of-week (0 is Sunday), "
                                "read in the site's time zone. A time the clocks skip in spring runs at "
                                "the first moment after the change; a time repeated in autumn runs once."
                            ),
                        ]
                    ),
                    dbc.ModalFooter(
                        [
                            dbc.Button("Cancel", id="tasks-edit-cancel", color="secondary", n_clicks=0),
                            dbc.Button("Save", id="tasks-edit-save", color="primary", n_clicks=0),
                        ]
                    ),
                ],
                id="tasks-edit-modal",
                is_open=False,
            ),
            dbc.Row(
                [
                    dbc.Col(html.H2("Run log", className="h5"), md=4),
                    dbc.Col(
                        [
                            dbc.Label("Task", html_for="tasks-log-filter", class_name="visually-hidden"),
                            dbc.Select(
                                id="tasks-log-filter",
                                options=[{"label": "All tasks", "value": ALL_RUNS}],
                                value=ALL_RUNS,
                            ),
                        ],
                        md=4,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Outcome", html_for="tasks-log-outcome", class_name="visually-hidden"),
                            dbc.Select(id="tasks-log-outcome", options=OUTCOME_OPTIONS, value=ALL_RUNS),
                        ],
                        md=4,
                    ),
                ],
                className="g-2 mb-2",
            ),
            html.Div(id="tasks-log"),
            dbc.Pagination(id="tasks-log-page", max_value=1, active_page=1, fully_expanded=False, size="sm"),
        ]
    )


MODES = (
    ("interval", "Every few minutes"),
    ("daily", "Daily at a time"),
    ("weekly", "Weekly on a day at a time"),
    ("cron", "Cron expression"),
)


def _local(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment_words(moment, datetime.now(UTC), core().settings.tz, seconds=True)


def _started(group: RunGroup) -> str:
    """When the run started; a folded group says how many and since when."""
    started = _local(group.first.started_at)
    if group.count == 1:
        return started
    return f"{started} (×{group.count}, since {_local(group.oldest_started_at)})"


def _badge(outcome: str | None) -> Any:
    if outcome is None:
        return html.Span("never run", className="text-muted small")
    return dbc.Badge(outcome.replace("_", " "), color=OUTCOME_COLOURS.get(outcome, "secondary"))


TASK_COLUMNS = ["Task", "Enabled", "Runs", "Next run", "Last run", "Last outcome", ""]
LOG_COLUMNS = ["Task", "Trigger", "Started", "Duration", "Outcome", "Rows", "Message"]


def _cells(columns: list[str], contents: list[Any]) -> list[html.Td]:
    """A row's cells, each named after its column (``data-label``): on a phone the table stacks
    (``.table-stack`` in the assets), each value after its column's name, so RUN and the last
    outcome are on screen at 360 px without scrolling sideways."""
    return [
        html.Td(content, **({"data-label": name} if name else {}))
        for name, content in zip(columns, contents, strict=True)
    ]


def _task_row(task: TaskView) -> html.Tr:
    return html.Tr(
        _cells(
            TASK_COLUMNS,
            [
                [html.Div(task.title), html.Small(task.name, className="text-muted")],
                dbc.Switch(
                    id={"type": "tasks-enabled", "name": task.name},
                    value=task.enabled,
                    label=f"{task.title} enabled",
                    label_class_name="visually-hidden",
                ),
                [
                    html.Span(task.schedule_words, className="me-2"),
                    dbc.Button(
                        "Edit",
                        id={"type": "tasks-edit", "name": task.name},
                        size="sm",
                        color="link",
                        n_clicks=0,
                    ),
                ],
                system_tasks.next_run_words(task, core().settings.tz),
                _local(task.last_run_at),
                _badge(task.last_outcome),
                dbc.Button(
                    "RUN", id={"type": "tasks-run", "name": task.name}, size="sm", color="primary", n_clicks=0
                ),
            ],
        )
    )


def _tasks_table(tasks: list[TaskView]) -> Any:
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in TASK_COLUMNS])),
            html.Tbody([_task_row(t) for t in tasks]),
        ],
        hover=True,
        responsive=True,
        size="sm",
        id="tasks-table-grid",
        className="table-stack",
    )


def _duration(ms: int | None) -> str:
    if ms is None:
        return "running"
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def _log_table(runs: list[RunView]) -> Any:
    if not runs:
        return html.P("No runs yet.", className="text-muted")
    rows = [
        html.Tr(
            _cells(
                LOG_COLUMNS,
                [
                    group.first.task_title,
                    group.first.trigger,
                    _started(group),
                    "—" if group.first.outcome in ("missed", "late") else _duration(group.first.duration_ms),
                    _badge(group.first.outcome),
                    group.first.rows_touched,
                    # pre-line: a message may report one line per part (the Parking Logix Sync, per key).
                    html.Div(
                        group.first.message, className="small text-break", style={"whiteSpace": "pre-line"}
                    ),
                ],
            )
        )
        for group in system_tasks.fold_runs(runs)
    ]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h) for h in LOG_COLUMNS])), html.Tbody(rows)],
        striped=True,
        responsive=True,
        size="sm",
        id="tasks-log-grid",
        className="table-stack",
    )


@callback(
    Output("tasks-table", "children"),
    Output("tasks-log", "children"),
    Output("tasks-log-filter", "options"),
    Output("tasks-log-page", "max_value"),
    Input("tasks-refresh", "n_intervals"),
    Input("tasks-version", "data"),
    Input("tasks-log-filter", "value"),
    Input("tasks-log-outcome", "value"),
    Input("tasks-log-page", "active_page"),
    min_role=Role.ADMIN,
)
def refresh(
    _tick: int | None,
    _version: int | None,
    log_filter: str | None,
    outcome: str | None,
    page: int | None,
) -> tuple[Any, Any, list[dict], int]:
    """The tasks and one page of the run log (newest first), filtered by task and outcome."""
    name = log_filter if log_filter and log_filter != ALL_RUNS else None
    wanted = outcome if outcome in OUTCOME_COLOURS else None
    with session_scope() as session:
        tasks = system_tasks.list_tasks(session)
        if not set(REGISTRY.names()) <= {task.name for task in tasks}:
            # No scheduler has run yet (e.g. workers run elsewhere): show every task anyway.
            system_tasks.sync_registry(session, REGISTRY.definitions())
            tasks = system_tasks.list_tasks(session)
        pages = max(1, -(-system_tasks.count_runs(session, name, wanted) // LOG_LIMIT))
        current = min(max(page if isinstance(page, int) else 1, 1), pages)
        runs = system_tasks.recent_runs(
            session, name=name, limit=LOG_LIMIT, outcome=wanted, offset=(current - 1) * LOG_LIMIT
        )
    options = [{"label": "All tasks", "value": ALL_RUNS}] + [
        {"label": t.title, "value": t.name} for t in tasks
    ]
    return _tasks_table(tasks), _log_table(runs), options, pages


Flash = tuple[Any, str, bool]


def _flash(message: str, colour: str = "success") -> Flash:
    return message, colour, True


def _run_now(name: str) -> Flash:
    try:
        job_id = enqueue_task(core(), name, trigger="manual")
    except UnknownTask:
        return _flash(f"There is no task named {name!r}.", "danger")
    except RedisError:
        return _flash("The job queue (Redis) is not reachable; nothing was queued.", "danger")
    title = REGISTRY.get(name).definition.title
    return _flash(f"{title} queued (job {job_id[:8]}); the run log shows the result within seconds.")


def _set_enabled(name: str, enabled: bool) -> Flash | None:
    """``None`` when the switch already showed the stored state (a re-rendered switch, not a click)."""
    with session_scope() as session:
        if system_tasks.get_task(session, name).enabled == enabled:
            return None
        task = system_tasks.set_enabled(session, name, enabled, current_user_id())
    if task.enabled:
        return _flash(f"{task.title} is on: it runs now and then {task.schedule_words}.")
    return _flash(f"{task.title} is off.", "secondary")


def _time_of_day(text: Any) -> tuple[int, int]:
    """ "02:00" (what a time input sends, sometimes with seconds) as (hour, minute)."""
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) not in (2, 3) or not all(p.isdecimal() and len(p) == 2 for p in parts):
        raise ValidationFailed({"time": "enter a time of day such as 02:00"})
    return int(parts[0]), int(parts[1])


def _spec_from(mode: Any, time_text: Any, weekday: Any, spec: Any) -> str:
    if mode == "daily":
        return schedules.daily(*_time_of_day(time_text))
    if mode == "weekly":
        day = int(weekday) if isinstance(weekday, str) and weekday.isdecimal() else -1
        return schedules.weekly(day, *_time_of_day(time_text))
    return spec if isinstance(spec, str) else ""


def _save_schedule(
    name: str | None, mode: Any, minutes: Any, time_text: Any, weekday: Any, spec: Any
) -> Flash:
    """Save what the modal holds; every mode but ``interval`` is a fixed-time schedule."""
    if not name:
        return _flash("Choose a task first.", "warning")
    tz = core().settings.tz
    if mode in (None, "interval"):
        try:
            seconds = round(float(minutes) * 60)
        except (TypeError, ValueError, OverflowError):
            return _flash("Enter the number of minutes between runs.", "warning")
        with session_scope() as session:
            system_tasks.set_schedule(session, name, None, tz, current_user_id())
            task = system_tasks.set_interval(session, name, seconds, current_user_id())
        return _flash(f"{task.title} now runs {task.schedule_words}.")
    with session_scope() as session:
        task = system_tasks.set_schedule(
            session, name, _spec_from(mode, time_text, weekday, spec), tz, current_user_id()
        )
        nxt = system_tasks.next_run_words(task, tz)
    if not task.enabled:
        return _flash(f"{task.title} now runs {task.schedule_words} once it is turned on.")
    return _flash(f"{task.title} now runs {task.schedule_words}; next run: {nxt}.")


def _open_edit(name: str) -> tuple[Any, ...]:
    """The modal's values for ``name``: name, title, minutes, mode, time, weekday, spec."""
    with session_scope() as session:
        task = system_tasks.get_task(session, name)
    minutes = task.interval_seconds // 60
    if not task.schedule:
        return task.name, task.title, minutes, "interval", "02:00", "0", ""
    minute, hour, _dom, _month, dow = task.schedule.split()
    words = task.schedule_words
    at = f"{int(hour):02d}:{int(minute):02d}" if minute.isdecimal() and hour.isdecimal() else "02:00"
    if words.startswith("daily"):
        return task.name, task.title, minutes, "daily", at, "0", task.schedule
    if words.startswith("weekly"):
        return task.name, task.title, minutes, "weekly", at, str(int(dow) % 7), task.schedule
    return task.name, task.title, minutes, "cron", at, "0", task.schedule


EDIT_FIELDS = ("tasks-edit-mode", "tasks-edit-time", "tasks-edit-weekday", "tasks-edit-spec")


@callback(
    Output("tasks-flash", "children"),
    Output("tasks-flash", "color"),
    Output("tasks-flash", "is_open"),
    Output("tasks-version", "data"),
    Output("tasks-edit-modal", "is_open"),
    Output("tasks-edit-name", "data"),
    Output("tasks-edit-title", "children"),
    Output("tasks-edit-minutes", "value"),
    *(Output(field, "value") for field in EDIT_FIELDS),
    Input({"type": "tasks-run", "name": ALL}, "n_clicks"),
    Input({"type": "tasks-enabled", "name": ALL}, "value"),
    Input({"type": "tasks-edit", "name": ALL}, "n_clicks"),
    Input("tasks-edit-save", "n_clicks"),
    Input("tasks-edit-cancel", "n_clicks"),
    State("tasks-edit-name", "data"),
    State("tasks-edit-minutes", "value"),
    State("tasks-version", "data"),
    *(State(field, "value") for field in EDIT_FIELDS),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def act(
    _runs: list[int | None],
    _enabled: list[bool | None],
    _edits: list[int | None],
    _save: int | None,
    _cancel: int | None,
    edit_name: str | None,
    edit_minutes: Any,
    version: int | None,
    edit_mode: Any,
    edit_time: Any,
    edit_weekday: Any,
    edit_spec: Any,
) -> tuple[Any, ...]:
    """Dispatch on what was clicked. Re-rendering the table re-creates its buttons and switches
    with fresh values, which Dash may report as changes: a click needs ``n_clicks`` > 0, and a
    switch showing the stored state changes nothing and says nothing."""
    fields = (no_update,) * len(EDIT_FIELDS)
    unchanged = (no_update,) * 8 + fields
    trigger = dash.ctx.triggered_id
    value = dash.ctx.triggered[0]["value"] if dash.ctx.triggered else None
    bumped = (version or 0) + 1
    try:
        if isinstance(trigger, dict):
            name, kind = str(trigger.get("name")), trigger.get("type")
            if kind == "tasks-run" and value:
                return (*_run_now(name), no_update, no_update, no_update, no_update, no_update, *fields)
            if kind == "tasks-enabled" and isinstance(value, bool):
                flash = _set_enabled(name, value)
                if flash is None:
                    return unchanged
                return (*flash, bumped, no_update, no_update, no_update, no_update, *fields)
            if kind == "tasks-edit" and value:
                task_name, title, minutes, *edit = _open_edit(name)
                return (no_update, no_update, False, no_update, True, task_name, title, minutes, *edit)
            return unchanged
        if trigger == "tasks-edit-save" and value:
            flash = _save_schedule(edit_name, edit_mode, edit_minutes, edit_time, edit_weekday, edit_spec)
            return (*flash, bumped, False, no_update, no_update, no_update, *fields)
        if trigger == "tasks-edit-cancel" and value:
            return (
                no_update,
                no_update,
                no_update,
                no_update,
                False,
                no_update,
                no_update,
                no_update,
                *fields,
            )
    except DomainError as exc:
        return (*_flash(str(exc), "danger"), bumped, no_update, no_update, no_update, no_update, *fields)
    return unchanged
