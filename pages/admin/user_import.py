"""User Import: the CSV header names the managed import accepts for each attribute, where files are
dropped or fetched from (the SFTP pull), the last run's problem if it had one, the history of
imports with their counts, and each import's failures file to download.

Admins only, like the users it creates. The accepted names are the same for every site, so they
sit in the layout; the history and the files arrive only through admin-checked callbacks. The
imports themselves are made by the "Managed User Import" system task.
"""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.inputs import as_id
from dashboard.services import ssh_keys, system_settings, system_tasks, user_import
from dashboard.services.violations import when_words
from dashboard.web import core, session_scope
from models import Role, TaskOutcome

register_page(__name__, path="/admin/user-import", title="User Import", min_role=Role.ADMIN)

REFRESH_MS = 30_000
WRAP = {"overflowWrap": "anywhere"}
TASK = "managed-user-import"


def _accepted_table() -> Any:
    rows = [
        html.Tr(
            [
                html.Td([a.label, html.Span(" (required)", className="text-danger") if a.required else None]),
                html.Td(html.Code(", ".join(a.names))),
            ]
        )
        for a in user_import.accepted_headers()
    ]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th("Attribute"), html.Th("Accepted header names")])), html.Tbody(rows)],
        size="sm",
        responsive=True,
        id="user-import-headers",
    )


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("User Import", className="h3"),
            html.P(
                "Drop CSV files (UTF-8, one header line) in the Import Drop Folder, or let the Managed "
                "User Import task fetch them from the SFTP Host (System Settings); it imports each one, "
                "creating or updating users by their unique ID, then moves it into the .bak folder. "
                "Rows that fail are e-mailed with their reason to the "
                "Failed Import Email and kept here. Header names are matched without regard to case; "
                "where several columns carry one attribute, the first non-empty one counts.",
                className="text-muted",
            ),
            dcc.Interval(id="user-import-refresh", interval=REFRESH_MS),
            dcc.Download(id="user-import-download"),
            html.Div(id="user-import-status", className="mb-3"),
            html.H2("Accepted column headers", className="h5"),
            _accepted_table(),
            html.H2("Imports", className="h5 mt-4"),
            html.Div(id="user-import-history"),
        ]
    )


_SFTP_KEYS = (
    "csv_import_sftp_host",
    "csv_import_sftp_port",
    "csv_import_sftp_username",
    "csv_import_sftp_folder",
    "csv_import_sftp_host_key",
)
_TROUBLE = {
    TaskOutcome.FAILED.value: "failed",
    TaskOutcome.PARTLY_FAILED.value: "partly failed",
    TaskOutcome.NOT_CONFIGURED.value: "could not run",
}


def _sftp_words(config: dict[str, Any]) -> str:
    if not config["csv_import_sftp_host"]:
        return "SFTP pull: off (no SFTP Host set)."
    login = config["csv_import_sftp_username"]
    where = f"{login}@{config['csv_import_sftp_host']}:{config['csv_import_sftp_port']}"
    folder = config["csv_import_sftp_folder"] or "the login's folder"
    try:
        pinned = f"host key {ssh_keys.describe(ssh_keys.host_key(str(config['csv_import_sftp_host_key'])))}"
    except ValueError:
        pinned = "no SFTP Host Key pinned: it will not connect"
    return f"SFTP pull: {where}, {folder}, {pinned}."


def _last_trouble(run: system_tasks.RunView | None, tz: Any) -> Any:
    """The newest run's problem in its own words (a refused host key, a failed login...), where the
    admin who reads this page looks; nothing when it went well."""
    if run is None or run.outcome not in _TROUBLE:
        return None
    lines = run.message.split("\n")
    if run.outcome == TaskOutcome.PARTLY_FAILED.value:
        lines = [line for line in lines if "FAILED" in line or ": refused," in line] or lines
    return dbc.Alert(
        [
            html.Strong(f"The last run ({when_words(run.started_at, tz)}) {_TROUBLE[run.outcome]}: "),
            html.Span("\n".join(lines), style={"whiteSpace": "pre-line", **WRAP}),
        ],
        color="danger",
        id="user-import-trouble",
    )


def _status() -> Any:
    tz = core().settings.tz
    with session_scope() as session:
        config = system_settings.get_many(
            session, core().secrets, ["csv_import_folder", "csv_import_failed_email", *_SFTP_KEYS]
        )
        task = system_tasks.find_task(session, TASK)
        last = next(iter(system_tasks.recent_runs(session, TASK, limit=1)), None)
    parts = [
        f"Drop folder: {config['csv_import_folder'] or '(not set: System Settings > Third Party)'}.",
        _sftp_words(config),
        f"Failures go to {config['csv_import_failed_email'] or '(no Failed Import Email set)'}.",
    ]
    parts.append(system_tasks.schedule_sentence(task, "Managed User Import", tz))
    # A key fingerprint or a folder path is one long word: let it wrap on a phone.
    state = dbc.Alert(" ".join(parts), color="info", id="user-import-state", style=WRAP)
    return [state, _last_trouble(last, tz)]


def _history_table(imports: list[user_import.ImportView]) -> Any:
    if not imports:
        return html.P("No import yet.", className="text-muted")
    tz = core().settings.tz
    rows = []
    for item in imports:
        if item.failures_filename:
            failures: Any = dbc.Button(
                item.failures_filename,
                id={"type": "user-import-file", "import": item.id},
                color="link",
                size="sm",
                className="p-0",
                n_clicks=0,
                title="Download the failed rows with their reasons",
            )
        else:
            failures = html.Span(
                item.error or "none", className="text-danger" if item.error else "text-muted"
            )
        rows.append(
            html.Tr(
                [
                    html.Td(item.filename),
                    html.Td(when_words(item.started_at, tz), className="text-nowrap"),
                    html.Td(
                        when_words(item.finished_at, tz) if item.finished_at else "running or stopped",
                        className="text-nowrap",
                    ),
                    html.Td(str(item.rows_read)),
                    html.Td(str(item.created)),
                    html.Td(str(item.updated)),
                    html.Td(str(item.failed)),
                    html.Td(failures),
                ]
            )
        )
    header = ["File", "Started", "Finished", "Rows", "Created", "Updated", "Failed", "Failures"]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h) for h in header])), html.Tbody(rows)],
        size="sm",
        responsive=True,
        id="user-import-grid",
    )


@callback(
    Output("user-import-status", "children"),
    Output("user-import-history", "children"),
    Input("user-import-refresh", "n_intervals"),
    min_role=Role.ADMIN,
)
def refresh(_tick: int | None) -> tuple[Any, Any]:
    with session_scope() as session:
        imports = user_import.history(session)
    return _status(), _history_table(imports)


@callback(
    Output("user-import-download", "data"),
    Input({"type": "user-import-file", "import": ALL}, "n_clicks"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def download(_clicks: list[int | None]) -> Any:
    """The failures CSV as it was e-mailed. A re-rendered button (``n_clicks`` 0) or an id that
    names no import sends nothing."""
    trigger = dash.ctx.triggered_id
    clicked = dash.ctx.triggered[0]["value"] if dash.ctx.triggered else None
    if not isinstance(trigger, dict) or not clicked:
        return no_update
    with session_scope() as session:
        found = user_import.failures_file(session, as_id(trigger.get("import")))
    if found is None:
        return no_update
    filename, content = found
    return dcc.send_bytes(content, filename, type="text/csv")
