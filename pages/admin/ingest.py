"""Sensor Feed Health: is the MQTT ingester hearing the devices, and what is it refusing?

The counters are the ingester's own totals in Redis; the dead letters are the messages it could
not use, with the reason, so that an admin can tell a misconfigured device (one reason, one
topic, again and again) from noise. Above them, the ingester's own report: running or stopped,
stuck (live occupancy frozen) and why, and how often the broker forgot its session. The layout
holds no data; an admin-checked callback fills it every ``REFRESH_MS``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html
from redis.exceptions import RedisError

from dashboard.callbacks import callback, register_page
from dashboard.components.feed_status import feed_alerts, status_line
from dashboard.services import devices, feed_health
from dashboard.services.devices import DeadLetterView
from dashboard.web import core, session_scope
from models import Role

register_page(__name__, path="/admin/ingest", title="Sensor Feed Health", min_role=Role.ADMIN)

REFRESH_MS = 10_000
LIMIT = 200
EXCERPT_CHARS = 200
COUNTERS = [
    ("ingest-messages", "Messages"),
    ("ingest-dead-letters", "Dead letters"),
    ("ingest-unknown", "From unknown devices"),
    ("ingest-duplicates", "Duplicates ignored"),
    ("ingest-sessions-lost", "Sessions the broker forgot"),
]


def _counter_card(component_id: str, label: str) -> Any:
    return dbc.Col(
        dbc.Card(
            dbc.CardBody(
                [html.Div(label, className="text-muted small"), html.Div(id=component_id, className="h4 m-0")]
            )
        ),
        md=True,
    )


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Sensor Feed Health", className="h3"),
            html.P(
                "What the MQTT ingester received since its counters were last reset, and the messages "
                "it could not use. Unknown devices are mapped on the Sensing Devices page.",
                className="text-muted",
            ),
            dcc.Interval(id="ingest-refresh", interval=REFRESH_MS),
            html.Div(id="ingest-status", className="mb-3"),
            dbc.Row([_counter_card(cid, label) for cid, label in COUNTERS], className="g-3 mb-2"),
            html.Div(id="ingest-counters-note", className="small text-danger mb-3"),
            dbc.Row(
                [
                    dbc.Col(html.H2("Dead letters", className="h5"), md=8),
                    dbc.Col(
                        [
                            dbc.Label("Reason", html_for="ingest-reason", className="visually-hidden"),
                            dbc.Select(
                                id="ingest-reason", options=[{"label": "All reasons", "value": ""}], value=""
                            ),
                        ],
                        md=4,
                    ),
                ],
                className="g-2 mb-2",
            ),
            html.Div(id="ingest-table"),
        ]
    )


def _excerpt(payload: str) -> str:
    return payload[:EXCERPT_CHARS] + ("…" if len(payload) > EXCERPT_CHARS else "")


def _table(letters: list[DeadLetterView]) -> Any:
    if not letters:
        return html.P("No dead letters.", className="text-muted")
    tz = core().settings.tz
    rows = [
        html.Tr(
            [
                html.Td(letter.received_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")),
                html.Td(letter.topic, className="text-break"),
                html.Td(letter.reason),
                html.Td(html.Code(_excerpt(letter.payload)), className="text-break"),
            ]
        )
        for letter in letters
    ]
    header = ["Received", "Topic", "Reason", "Payload"]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h) for h in header])), html.Tbody(rows)],
        striped=True,
        responsive=True,
        size="sm",
        id="ingest-grid",
    )


def _status(now: datetime) -> tuple[Any, str]:
    """The ingester's report and alerts, and the forgotten-session count."""
    client = core().redis
    status = feed_health.read_status(client)
    lost = feed_health.read_sessions_lost(client)
    alerts = feed_alerts(status.stuck(now) if status else None, lost, now, core().settings.tz)
    return html.Div([*alerts, html.P(status_line(status, now), className="small mb-0")]), f"{lost.count:,}"


@callback(
    Output("ingest-status", "children"),
    Output("ingest-messages", "children"),
    Output("ingest-dead-letters", "children"),
    Output("ingest-unknown", "children"),
    Output("ingest-duplicates", "children"),
    Output("ingest-sessions-lost", "children"),
    Output("ingest-counters-note", "children"),
    Output("ingest-reason", "options"),
    Output("ingest-table", "children"),
    Input("ingest-refresh", "n_intervals"),
    Input("ingest-reason", "value"),
    min_role=Role.ADMIN,
)
def refresh(_tick: int | None, reason: str | None) -> tuple[Any, ...]:
    try:
        counters = devices.ingest_counters(core().redis)
        status, lost = _status(datetime.now(UTC))
        figures: tuple[Any, ...] = (
            status,
            f"{counters.messages:,}",
            f"{counters.dead_letters:,}",
            f"{counters.unknown:,}",
            f"{counters.duplicates:,}",
            lost,
            "",
        )
    except RedisError:
        unavailable = "Redis is unreachable: the counters and the ingester's state are unavailable."
        figures = ("", "—", "—", "—", "—", "—", unavailable)
    with session_scope() as session:
        reasons = devices.dead_letter_reasons(session)
        letters = devices.dead_letters(session, limit=LIMIT, reason=reason or None)
    options = [{"label": "All reasons", "value": ""}] + [
        {"label": f"{text} ({count})", "value": text} for text, count in reasons
    ]
    return (*figures, options, _table(letters))
