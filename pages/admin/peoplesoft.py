"""PeopleSoft Holds: every holds report the nightly task built, with its two files to download
exactly as e-mailed, the owing users it had to skip (no Student/Staff ID), and who PeopleSoft
holds now.

Managers see it, like the other enforcement reports (violations, boot devices): the files carry
what users owe. The layout is empty scaffolding; reports and files arrive only through
manager-checked callbacks. The report is made by the "PeopleSoft Holds Report" system task.
"""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.inputs import as_id
from dashboard.services import peoplesoft, system_settings, system_tasks
from dashboard.services.violations import when_words
from dashboard.web import core, session_scope
from models import Role

register_page(__name__, path="/admin/peoplesoft", title="PeopleSoft Holds", min_role=Role.MANAGER)

REFRESH_MS = 30_000
TASK = "peoplesoft-holds"


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("PeopleSoft Holds", className="h3"),
            html.P(
                "Each night the PeopleSoft Holds Report e-mails a Holds Added file (users whose "
                "violation balance is new or changed; the amount is the total owed) and a Holds "
                "Released file (users held before who now owe 0.00). Both files of every report are "
                "kept here.",
                className="text-muted",
            ),
            dcc.Interval(id="peoplesoft-refresh", interval=REFRESH_MS),
            dcc.Download(id="peoplesoft-download"),
            html.Div(id="peoplesoft-status", className="mb-3"),
            html.H2("Reports", className="h5"),
            html.Div(id="peoplesoft-reports", className="mb-4"),
            html.H2("Held in PeopleSoft now", className="h5"),
            html.Div(id="peoplesoft-holds"),
        ]
    )


def _money(cents: int) -> str:
    """As PeopleSoft holds it (the files carry no currency), with the site's currency beside it."""
    with session_scope() as session:
        return f"${peoplesoft.money(cents)} {system_settings.currency(session)}"


def _status() -> Any:
    """Whether the report runs, where it goes and when it runs next, in words."""
    tz = core().settings.tz
    with session_scope() as session:
        config = system_settings.get_many(
            session, core().secrets, ["peoplesoft_enabled", "peoplesoft_holds_email"]
        )
        task = system_tasks.find_task(session, TASK)
    if not config["peoplesoft_enabled"]:
        return dbc.Alert(
            "PeopleSoft holds are turned off in System Settings (Third Party > PeopleSoft Holds).",
            color="secondary",
            id="peoplesoft-off",
        )
    parts = [
        f"Reports go to {config['peoplesoft_holds_email'] or '(no PeopleSoft Holds Notification Email set)'}."
    ]
    parts.append(system_tasks.schedule_sentence(task, "PeopleSoft Holds Report", tz))
    return dbc.Alert(" ".join(parts), color="info", id="peoplesoft-on")


def _file_button(report_id: int, kind: str, filename: str, count: int) -> Any:
    return html.Div(
        [
            dbc.Button(
                filename,
                id={"type": "peoplesoft-file", "report": report_id, "kind": kind},
                color="link",
                size="sm",
                className="p-0",
                n_clicks=0,
                title=f"Download the Holds {kind.title()} file",
            ),
            html.Small(f" {count} {'user' if count == 1 else 'users'}", className="text-muted"),
        ]
    )


def _skipped(report: peoplesoft.ReportView) -> Any:
    if not report.skipped:
        return html.Span("none", className="text-muted")
    return html.Ul(
        [
            html.Li(f"{s.name} <{s.email}> owes {_money(s.owed_cents)}: no Student/Staff ID")
            for s in report.skipped
        ],
        className="small mb-0 ps-3",
    )


def _reports_table(reports: list[peoplesoft.ReportView]) -> Any:
    if not reports:
        return html.P("No report yet.", className="text-muted")
    tz = core().settings.tz
    header = ["Run", "Holds Added", "Holds Released", "E-mailed", "Skipped"]
    rows = [
        html.Tr(
            [
                html.Td(when_words(r.created_at, tz), className="text-nowrap"),
                html.Td(_file_button(r.id, "added", r.added_filename, r.added_count)),
                html.Td(_file_button(r.id, "released", r.released_filename, r.released_count)),
                html.Td(
                    f"to {r.recipient}" if r.emailed else "not e-mailed: nothing changed",
                    className="small",
                ),
                html.Td(_skipped(r)),
            ]
        )
        for r in reports
    ]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h) for h in header])), html.Tbody(rows)],
        size="sm",
        responsive=True,
        id="peoplesoft-reports-grid",
    )


def _holds_table(holds: list[peoplesoft.HoldView]) -> Any:
    if not holds:
        return html.P("Nobody is held.", className="text-muted")
    tz = core().settings.tz
    rows = [
        html.Tr(
            [
                html.Td(h.student_id),
                html.Td(h.name),
                html.Td(_money(h.amount_cents)),
                html.Td(when_words(h.held_since, tz, with_time=False)),
            ]
        )
        for h in holds
    ]
    header = ["Student/Staff ID", "Name", "Amount held", "Held since"]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h) for h in header])), html.Tbody(rows)],
        size="sm",
        responsive=True,
        id="peoplesoft-holds-grid",
    )


@callback(
    Output("peoplesoft-status", "children"),
    Output("peoplesoft-reports", "children"),
    Output("peoplesoft-holds", "children"),
    Input("peoplesoft-refresh", "n_intervals"),
    min_role=Role.MANAGER,
)
def refresh(_tick: int | None) -> tuple[Any, Any, Any]:
    with session_scope() as session:
        reports = peoplesoft.list_reports(session)
        holds = peoplesoft.current_holds(session)
    return _status(), _reports_table(reports), _holds_table(holds)


@callback(
    Output("peoplesoft-download", "data"),
    Input({"type": "peoplesoft-file", "report": ALL, "kind": ALL}, "n_clicks"),
    min_role=Role.MANAGER,
    prevent_initial_call=True,
)
def download(_clicks: list[int | None]) -> Any:
    """The file as it was e-mailed, byte for byte. A re-rendered button (``n_clicks`` 0) or an id
    that names no report sends nothing."""
    trigger = dash.ctx.triggered_id
    clicked = dash.ctx.triggered[0]["value"] if dash.ctx.triggered else None
    if not isinstance(trigger, dict) or not clicked:
        return no_update
    report_id = as_id(trigger.get("report"))
    with session_scope() as session:
        found = peoplesoft.report_file(session, report_id, trigger.get("kind"))
    if found is None:
        return no_update
    return dcc.send_bytes(found.content, found.filename, type="text/plain")
