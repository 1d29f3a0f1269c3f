"""Email Outbox: every message ParkOps sent, stored or failed to send, for admins to check.

The layout is empty scaffolding (Dash sends it to every browser); messages arrive only through
admin-checked callbacks. A message's HTML body is untrusted (it holds user-supplied values and an
admin's template), so it is sanitised with nh3 *and* shown in a sandboxed iframe: no script runs
and nothing in it can reach this page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dash_bootstrap_components as dbc
import nh3
from dash import ALL, Input, Output, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.inputs import as_id
from dashboard.services import email as email_service
from dashboard.services.errors import ValidationFailed
from dashboard.web import core, session_scope
from models import OutboxStatus, Role

register_page(__name__, path="/admin/outbox", title="Email Outbox", min_role=Role.ADMIN)

REFRESH_MS = 10_000
BADGE_COLOURS = {
    OutboxStatus.QUEUED: "secondary",
    OutboxStatus.STORED: "info",
    OutboxStatus.SENT: "success",
    OutboxStatus.FAILED: "danger",
}


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Email Outbox", className="h3"),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Input(
                            id="outbox-search",
                            type="search",
                            placeholder="Search recipient, subject or template",
                            debounce=0.4,
                        ),
                        md=6,
                    ),
                    dbc.Col(
                        dbc.Select(
                            id="outbox-status",
                            options=[{"label": "All statuses", "value": ""}]
                            + [{"label": s.value.title(), "value": s.value} for s in OutboxStatus],
                            value="",
                        ),
                        md=3,
                    ),
                    dbc.Col(html.Small(id="outbox-count", className="text-muted"), md=3, className="pt-2"),
                ],
                className="g-2 mb-3",
            ),
            dcc.Interval(id="outbox-refresh", interval=REFRESH_MS),
            html.Div(id="outbox-table", className="table-responsive"),
            html.Div(id="outbox-detail", className="mt-4"),
        ]
    )


def _local(moment: datetime | None) -> str:
    return moment.astimezone(core().settings.tz).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


@callback(
    Output("outbox-table", "children"),
    Output("outbox-count", "children"),
    Input("outbox-search", "value"),
    Input("outbox-status", "value"),
    Input("outbox-refresh", "n_intervals"),
    min_role=Role.ADMIN,
)
def load_messages(search: str | None, status: str | None, _tick: int | None) -> tuple[Any, str]:
    try:
        with session_scope() as session:
            rows = email_service.list_outbox(session, search=search, status=status or None)
    except ValidationFailed as exc:
        return None, str(exc)
    if not rows:
        return html.P("No messages.", className="text-muted"), "0 messages"
    header = html.Thead(html.Tr([html.Th(h) for h in ("Created", "To", "Subject", "Status", "Template")]))
    body = html.Tbody(
        [
            html.Tr(
                [
                    html.Td(_local(row.created_at), className="text-nowrap"),
                    html.Td(", ".join(row.to)),
                    html.Td(
                        html.Button(
                            row.subject,
                            id={"type": "outbox-open", "index": row.id},
                            className="btn btn-link p-0 text-start",
                            title="Show this message",
                        )
                    ),
                    html.Td(dbc.Badge(row.status.value, color=BADGE_COLOURS[row.status])),
                    html.Td(row.template_key or "—"),
                ]
            )
            for row in rows
        ]
    )
    table = dbc.Table([header, body], hover=True, size="sm", className="align-middle")
    return table, f"{len(rows)} most recent message(s)"


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _field(label: str, value: Any) -> list[Any]:
    return [html.Dt(label, className="col-sm-2"), html.Dd(value, className="col-sm-10")]


def _detail(message: email_service.OutboxDetail) -> Any:
    facts = [
        *_field("To", ", ".join(message.to)),
        *_field("Reply-to", message.reply_to or "—"),
        *_field("Created", _local(message.created_at)),
        *_field("Sent", _local(message.sent_at)),
        *_field("Backend", message.backend),
        *_field("Template", message.template_key or "—"),
    ]
    body: list[Any] = [html.Dl(facts, className="row mb-3")]
    if message.error:
        body.append(dbc.Alert(["Delivery failed: ", html.Code(message.error)], color="danger"))
    body += [html.H2("Text", className="h6"), html.Pre(message.body_text, className="border p-2 bg-light")]
    if message.body_html:
        body += [
            html.H2("HTML", className="h6"),
            html.Iframe(
                srcDoc=nh3.clean(message.body_html),
                sandbox="",
                id="outbox-detail-html",
                style={"width": "100%", "height": "24rem", "border": "1px solid #dee2e6"},
            ),
        ]
    if message.attachments:
        body += [
            html.H2("Attachments", className="h6 mt-3"),
            html.Ul(
                [html.Li(f"{a.filename} ({a.content_type}, {_size(a.size)})") for a in message.attachments]
            ),
        ]
    header = [
        html.Span(message.subject, className="me-2"),
        dbc.Badge(message.status.value, color=BADGE_COLOURS[message.status]),
    ]
    return dbc.Card([dbc.CardHeader(header), dbc.CardBody(body)])


@callback(
    Output("outbox-detail", "children"),
    Input({"type": "outbox-open", "index": ALL}, "n_clicks"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def show_message(_clicks: list[int | None]) -> Any:
    """Fires for a click, and also when a refresh redraws the rows (n_clicks None): the latter
    leaves the open message in place."""
    trigger = ctx.triggered_id
    message_id = as_id(trigger.get("index")) if isinstance(trigger, dict) else None
    if not isinstance(message_id, int) or not ctx.triggered[0].get("value"):
        return no_update
    with session_scope() as session:
        message = email_service.get_outbox_message(session, message_id)
    if message is None:
        return dbc.Alert("This message no longer exists.", color="warning")
    return _detail(message)
