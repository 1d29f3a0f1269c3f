"""Email Outbox: every message ParkOps sent, stored or failed to send, for admins to check: each
attempt with the server's answer, the provider's id, bounces and complaints reported back, the
addresses that hard-bounced, and a Resend that sends a copy as a new message.

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
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.inputs import as_id
from dashboard.services import email as email_service
from dashboard.services import outbox
from dashboard.services.errors import DomainError, ValidationFailed
from dashboard.web import core, current_user_id, session_scope
from models import OutboxStatus, Role
from workers import email_delivery

register_page(__name__, path="/admin/outbox", title="Email Outbox", min_role=Role.ADMIN)

REFRESH_MS = 10_000
BADGE_COLOURS = {
    OutboxStatus.QUEUED: "secondary",
    OutboxStatus.SENDING: "primary",
    OutboxStatus.STORED: "info",
    OutboxStatus.SENT: "success",
    OutboxStatus.FAILED: "danger",
    OutboxStatus.BOUNCED: "danger",
    OutboxStatus.COMPLAINED: "warning",
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
                        [
                            dbc.Label("Status", html_for="outbox-status", className="visually-hidden"),
                            dbc.Select(
                                id="outbox-status",
                                options=[{"label": "All statuses", "value": ""}]
                                + [{"label": s.value.title(), "value": s.value} for s in OutboxStatus],
                                value="",
                            ),
                        ],
                        md=3,
                    ),
                    dbc.Col(html.Small(id="outbox-count", className="text-muted"), md=3, className="pt-2"),
                ],
                className="g-2 mb-3",
            ),
            dcc.Interval(id="outbox-refresh", interval=REFRESH_MS),
            dcc.Store(id="outbox-current"),
            html.Div(id="outbox-bounced"),
            html.Div(id="outbox-bounce-result"),
            html.Div(id="outbox-table", className="table-responsive"),
            html.Div(id="outbox-resend-result", className="mt-3"),
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
            bounced = outbox.bounced_addresses(session, sorted({a for r in rows for a in r.to}))
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
                    html.Td(_recipients(row.to, bounced)),
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


def _recipients(addresses: list[str], bounced: dict[str, str]) -> list[Any]:
    """Recipients, each hard-bounced one marked (with the provider's reason as the tooltip)."""
    parts: list[Any] = []
    for i, address in enumerate(addresses):
        if i:
            parts.append(", ")
        parts.append(address)
        if address.lower() in bounced:
            parts.append(
                dbc.Badge("bounced", color="danger", className="ms-1", title=bounced[address.lower()])
            )
    return parts


@callback(
    Output("outbox-bounced", "children"),
    Input("outbox-refresh", "n_intervals"),
    Input("outbox-bounce-result", "children"),
    min_role=Role.ADMIN,
)
def load_bounced(_tick: int | None, _result: Any) -> Any:
    """Users whose address hard-bounced: mail to them will not arrive until they fix it."""
    with session_scope() as session:
        users = outbox.bounced_users(session)
    if not users:
        return None
    items = [
        html.Li(
            [
                html.Strong(user.email),
                f" ({user.name}), since {_local(user.bounced_at)}: {user.reason} ",
                dbc.Button(
                    "Address works again",
                    id={"type": "outbox-clear-bounce", "index": user.id},
                    size="sm",
                    color="link",
                    className="p-0 align-baseline",
                ),
            ]
        )
        for user in users
    ]
    return dbc.Alert(
        [html.Strong(f"{len(users)} address(es) hard-bounced"), html.Ul(items, className="mb-0")],
        color="warning",
        id="outbox-bounced-list",
    )


@callback(
    Output("outbox-bounce-result", "children"),
    Input({"type": "outbox-clear-bounce", "index": ALL}, "n_clicks"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def clear_bounce(_clicks: list[int | None]) -> Any:
    trigger = ctx.triggered_id
    user_id = as_id(trigger.get("index")) if isinstance(trigger, dict) else None
    if not isinstance(user_id, int) or not ctx.triggered[0].get("value"):
        return no_update
    try:
        with session_scope() as session:
            outbox.clear_bounce(session, user_id, current_user_id())
    except DomainError as exc:
        return dbc.Alert(str(exc), color="warning")
    return dbc.Alert("The bounce flag is cleared.", color="success", id="outbox-clear-done")


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
        *_field("From", message.sender or "—"),
        *_field("Provider id", message.provider_message_id or "—"),
        *_field("Template", message.template_key or "—"),
    ]
    if message.status is OutboxStatus.QUEUED and message.next_attempt_at:
        facts += _field("Next attempt", _local(message.next_attempt_at))
    if message.resent_from_id:
        facts += _field("Resent from", f"message {message.resent_from_id}")
    body: list[Any] = [html.Dl(facts, className="row mb-3")]
    if message.error:
        label = "Delivery failed: " if message.status is not OutboxStatus.QUEUED else "Last attempt failed: "
        body.append(dbc.Alert([label, html.Code(message.error)], color="danger"))
    if message.attempts:
        body += [
            html.H2("Attempts", className="h6"),
            dbc.Table(
                html.Tbody(
                    [
                        html.Tr(
                            [
                                html.Td(_local(_parse(a.get("at"))), className="text-nowrap"),
                                html.Td("ok" if a.get("ok") else "failed"),
                                html.Td(html.Code(str(a.get("result", "")))),
                            ]
                        )
                        for a in message.attempts
                    ]
                ),
                size="sm",
                id="outbox-attempts",
            ),
        ]
    if message.status in outbox.RESENDABLE:
        body.append(dbc.Button("Resend", id="outbox-resend", color="secondary", size="sm", className="mb-3"))
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


def _parse(moment: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(moment))
    except ValueError:
        return None


@callback(
    Output("outbox-detail", "children"),
    Output("outbox-current", "data"),
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
        return no_update, no_update
    with session_scope() as session:
        message = email_service.get_outbox_message(session, message_id)
    if message is None:
        return dbc.Alert("This message no longer exists.", color="warning"), None
    return _detail(message), message_id


@callback(
    Output("outbox-resend-result", "children"),
    Input("outbox-resend", "n_clicks"),
    State("outbox-current", "data"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def resend(n_clicks: int | None, current: Any) -> Any:
    """Send a copy of the open message with today's delivery settings (a new outbox row)."""
    message_id = as_id(current)
    if not n_clicks or not isinstance(message_id, int):
        return no_update
    try:
        with session_scope() as session:
            backend = email_delivery.configured_backend(core(), session)
            new_id = outbox.resend(session, message_id, backend, current_user_id())
    except DomainError as exc:
        return dbc.Alert(str(exc), color="warning", id="outbox-resend-done")
    what = "kept in the outbox (Mail Delivery is Outbox only)" if backend.name == "outbox" else "queued"
    return dbc.Alert(f"A copy was {what}: message {new_id}.", color="success", id="outbox-resend-done")
