"""The Dashboard (admin home): each user's own widgets, in their order, updating live.

Two callbacks, so a live update never moves anything: ``build`` lays out one card per widget once
per visit (from the user's saved layout, read on the server), and ``refresh`` fills the cards'
contents on every pushed occupancy change and on the poll. Chart cards have a fixed height and
start with an empty figure of that height; the other cards have a minimum height, so filling them
moves little.

The card ids carry widget keys, but ``refresh`` fills only the widgets of the user's own layout as
the server reads it: an id for an admin-only widget sent by a manager's browser gets "not
available", never data. Each chart comes with the same figures as a table under a disclosure, and
a short sentence above it, for screen readers and for reading on a phone.

Why this module is long: the two callbacks (build once, refresh live) and the per-widget renderers
must agree on every card's ids; the renderers are small, one per widget kind.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import ALL, Input, Output, dcc, html
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from dashboard.auth import current_role
from dashboard.callbacks import callback, register_page
from dashboard.components.charts import blank_figure
from dashboard.components.feed_status import feed_alerts
from dashboard.components.live import live_inputs, live_updates, register_live_updates
from dashboard.services import dashboard_widgets as widgets
from dashboard.services import occupancy, system_settings
from dashboard.services.dashboard_widgets import (
    BootsInUse,
    DeadLetters,
    MistallStats,
    OccupancySummary,
    OccupancyToday,
    PermitsToday,
    TaskHealth,
    WidgetDef,
)
from dashboard.services.occupancy import LiveStore
from dashboard.services.wording import SOURCE_LABELS, ago, percent
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(__name__, path="/admin", title="Dashboard", min_role=Role.MANAGER)

PREFIX = "dashboard"
register_live_updates(PREFIX)

EDIT_PATH = "/admin/dashboard/edit"
CHART_HEIGHT = 300  # px; the chart box never changes height, whatever arrives
BAR_HEIGHT = 34  # px per Mistall lot; more lots than fit scroll inside the box
BODY_MIN_HEIGHT = "7rem"
LABEL_CHARS = 24  # longer bar labels are shortened on the chart (the table has them in full)
GRAPH_CONFIG = {"displayModeBar": False, "responsive": True, "scrollZoom": False}
OCCUPIED_COLOR = "#0d6efd"
FREE_COLOR = "#dee2e6"
REDIS_DOWN = "Live counts are unavailable: the Redis server is not reachable."
OUTCOME_COLOURS = {
    "success": "success",
    "failed": "danger",
    "partly_failed": "danger",
    "not_configured": "warning",
    "skipped": "secondary",
    "running": "info",
}


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    html.H1("Dashboard", className="h3 mb-0"),
                    *live_updates(PREFIX),
                    dcc.Link(
                        "Edit Dashboard",
                        href=EDIT_PATH,
                        id="dashboard-edit-link",
                        className="btn btn-outline-primary btn-sm ms-auto",
                    ),
                ],
                className="d-flex flex-wrap align-items-baseline gap-3 mb-3",
            ),
            html.Div(id="dashboard-grid"),
        ]
    )


# -- the cards -------------------------------------------------------------------------------------


def _chart(definition: WidgetDef) -> list[Any]:
    key = definition.key
    return [
        html.Div(
            dcc.Graph(
                id={"type": "dashboard-graph", "key": key},
                figure=blank_figure(CHART_HEIGHT),
                config=GRAPH_CONFIG,
            ),
            role="img",
            **{"aria-label": f"Chart: {definition.title}. The table below lists the same figures."},
            className="dashboard-chart",
            style={"height": f"{CHART_HEIGHT}px", "overflowY": "auto", "overflowX": "hidden"},
        ),
        html.Details(
            [
                html.Summary("Show the figures as a table"),
                html.Div(id={"type": "dashboard-table", "key": key}, className="mt-2"),
            ],
            className="mt-2 small",
        ),
    ]


def _card(definition: WidgetDef) -> Any:
    body = [
        html.Div(
            id={"type": "dashboard-body", "key": definition.key},
            style={"minHeight": "2.5rem" if definition.chart else BODY_MIN_HEIGHT},
        )
    ]
    if definition.chart:
        body.extend(_chart(definition))
    return dbc.Card(
        [
            dbc.CardHeader(html.H2(definition.title, className="h6 mb-0")),
            dbc.CardBody(body),
        ],
        id=f"dashboard-widget-{definition.key}",
        className="h-100 dashboard-widget",
    )


@callback(Output("dashboard-grid", "children"), Input("dashboard-grid", "id"), min_role=Role.MANAGER)
def build(_grid: str) -> Any:
    """One card per widget of the user's layout, once per visit."""
    with session_scope() as session:
        chosen = widgets.user_layout(session, core().secrets, _user_id(), current_role())
    if not chosen.widgets:
        return dbc.Alert(
            [
                "Your dashboard has no widgets available to show. ",
                dcc.Link("Edit Dashboard", href=EDIT_PATH),
                " to add some.",
            ],
            color="secondary",
        )
    return dbc.Row(
        [dbc.Col(_card(definition), xs=12, lg=6, xxl=4) for definition in chosen.widgets],
        className="g-3",
    )


def _user_id() -> int:
    user_id = current_user_id()
    if user_id is None:  # the gate lets no anonymous call through; this keeps the type honest
        raise dash.exceptions.PreventUpdate
    return user_id


# -- filling them ----------------------------------------------------------------------------------


class Rendered(NamedTuple):
    """A card's contents (a NamedTuple: Dash imports pages in a way dataclasses cannot see)."""

    body: Any
    figure: go.Figure | None = None
    table: Any = None


@callback(
    Output({"type": "dashboard-body", "key": ALL}, "children"),
    Output({"type": "dashboard-graph", "key": ALL}, "figure"),
    Output({"type": "dashboard-table", "key": ALL}, "children"),
    *live_inputs(PREFIX),
    Input({"type": "dashboard-body", "key": ALL}, "id"),
    min_role=Role.MANAGER,
)
def refresh(_message: str | None, _tick: int | None, _cards: list[dict]) -> tuple[list, list, list]:
    """Read each shown widget's data and fill its card. The pushed message is public and only a
    trigger; which widgets get data is decided here from the user's layout, not from the ids."""
    bodies, graphs, tables = dash.ctx.outputs_list
    wanted = {o["id"]["key"] for group in (bodies, graphs, tables) for o in group}
    now = datetime.now(UTC)
    with session_scope() as session:
        shown = set(widgets.user_layout(session, core().secrets, _user_id(), current_role()).keys)
        rendered = {key: _render(key, session, now) for key in wanted if key in shown}
    missing = Rendered(html.P("This widget is not available.", className="text-muted"))

    def pick(key: str) -> Rendered:
        return rendered.get(key, missing)

    return (
        [pick(o["id"]["key"]).body for o in bodies],
        [pick(o["id"]["key"]).figure or blank_figure(CHART_HEIGHT) for o in graphs],
        [pick(o["id"]["key"]).table for o in tables],
    )


def _render(key: str, session: Session, now: datetime) -> Rendered:
    try:
        return RENDERERS[key](session, now)
    except RedisError:
        return Rendered(dbc.Alert(REDIS_DOWN, color="danger", className="mb-0 small"))


def _local(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return moment.astimezone(core().settings.tz).strftime(fmt) if moment else "never"


def _when(moment: datetime | None, now: datetime) -> html.Span:
    """Relative age, with the site-local time on hover."""
    return html.Span(ago(moment, now), title=_local(moment) if moment else None)


def _money(amounts: tuple[tuple[str, int], ...], currency: str) -> str:
    """Each currency's total; nothing at all in the site's ``currency``."""
    if not amounts:
        return f"{currency} 0.00"
    return " + ".join(f"{currency} {cents / 100:,.2f}" for currency, cents in amounts)


def _big(value: str, caption: str, class_name: str = "") -> html.Div:
    return html.Div(
        [
            html.Div(value, className=f"h3 mb-0 {class_name}".strip()),
            html.Div(caption, className="small text-muted"),
        ],
        className="mb-2",
    )


def _table(header: list[str], rows: list[list[Any]], row_classes: list[str | None] | None = None) -> Any:
    classes = row_classes or [None] * len(rows)
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(h, scope="col") for h in header])),
            html.Tbody(
                [
                    html.Tr([html.Td(cell) for cell in row], className=cls)
                    for row, cls in zip(rows, classes, strict=True)
                ]
            ),
        ],
        size="sm",
        responsive=True,
        className="mb-0 small align-middle",
    )


def _fixed_axes(figure: go.Figure) -> None:
    """No zooming or panning: on a phone a drag must scroll the page, not the chart."""
    figure.update_layout(dragmode=False)
    figure.update_xaxes(fixedrange=True)
    figure.update_yaxes(fixedrange=True)


# mistall-lot-stats


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _mistall(session: Session, now: datetime) -> Rendered:
    stats: MistallStats = widgets.mistall_lot_stats(session)
    if not stats.bars:
        return Rendered(
            html.P(
                "No Mistall data yet: the Update Mistall System Job Task has not imported any lots.",
                className="text-muted small mb-0",
            ),
            blank_figure(CHART_HEIGHT, "No Mistall data yet"),
            html.P("No Mistall lots.", className="text-muted mb-0"),
        )
    body = html.P(
        [
            f"{len(stats.bars)} Mistall lot(s). Reported ",
            _when(stats.reported_at, now),
            ", imported ",
            _when(stats.imported_at, now),
            ".",
        ],
        className="small text-muted mb-1 dashboard-mistall-when",
    )
    return Rendered(body, _mistall_figure(stats), _mistall_table(stats, now))


def _mistall_figure(stats: MistallStats) -> go.Figure:
    """Horizontal bars (occupied, then free up to capacity), each labelled beside the bar with its
    lot groups' names. Bars sit at numbered positions with the labels as tick text, so two lots
    with the same label stay two bars."""
    bars = stats.bars
    positions = list(range(len(bars)))
    occupied = [bar.occupied or 0 for bar in bars]
    free = [max((bar.capacity or 0) - (bar.occupied or 0), 0) for bar in bars]
    hover = [
        f"{bar.label}<br>{bar.occupied if bar.occupied is not None else '—'} / "
        f"{bar.capacity if bar.capacity is not None else '—'} ({percent(bar.percent)})"
        f"<br>Mistall lot: {bar.mistall_name} ({bar.mistall_id})"
        for bar in bars
    ]
    figure = go.Figure(
        [
            go.Bar(
                name="Occupied",
                y=positions,
                x=occupied,
                orientation="h",
                marker_color=OCCUPIED_COLOR,
                text=[
                    f"{o}/{bar.capacity if bar.capacity is not None else '—'}"
                    for o, bar in zip(occupied, bars, strict=True)
                ],
                textposition="auto",
                hovertext=hover,
                hoverinfo="text",
            ),
            go.Bar(
                name="Free",
                y=positions,
                x=free,
                orientation="h",
                marker_color=FREE_COLOR,
                hovertext=hover,
                hoverinfo="text",
            ),
        ]
    )
    figure.update_layout(
        barmode="stack",
        height=max(CHART_HEIGHT, 90 + BAR_HEIGHT * len(bars)),
        margin={"l": 8, "r": 8, "t": 28, "b": 8},
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"size": 12},
        meta={"alt": "; ".join(f"{bar.label}: {bar.occupied}/{bar.capacity}" for bar in bars)},
    )
    figure.update_yaxes(
        tickvals=positions,
        ticktext=[_short(bar.label) for bar in bars],
        autorange="reversed",
        automargin=True,
    )
    figure.update_xaxes(title_text="spaces", automargin=True)
    _fixed_axes(figure)
    return figure


def _mistall_table(stats: MistallStats, now: datetime) -> Any:
    rows = [
        [
            bar.label,
            f"{bar.mistall_name} ({bar.mistall_id})",
            "—" if bar.occupied is None else f"{bar.occupied:,}",
            "—" if bar.capacity is None else f"{bar.capacity:,}",
            percent(bar.percent),
            _when(bar.reported_at, now),
            _when(bar.imported_at, now),
        ]
        for bar in stats.bars
    ]
    header = ["Lot group(s)", "Mistall lot", "Occupied", "Capacity", "Full", "Reported", "Imported"]
    return _table(header, rows)


# occupancy-summary


def _policy_and_store(session: Session) -> tuple[occupancy.Policy, LiveStore]:
    return occupancy.load_policy(session, core().secrets), LiveStore(core().redis)


def _summary(session: Session, now: datetime) -> Rendered:
    policy, store = _policy_and_store(session)
    summary: OccupancySummary = widgets.occupancy_summary(session, store, policy, now)
    if not summary.groups:
        return Rendered(html.P("There are no lot groups yet.", className="text-muted mb-0"))
    badges = []
    if summary.stale:
        badges.append(
            dbc.Badge(f"{summary.stale} stale", color="warning", text_color="dark", className="me-1")
        )
    if summary.closed:
        badges.append(dbc.Badge(f"{summary.closed} closed", color="dark", className="me-1"))
    frozen = (
        [
            dbc.Alert(
                "Live sensor figures are frozen: the sensor feed ingester is stuck (an admin sees why on "
                "Sensor Feed Health).",
                color="danger",
                className="small py-2 mb-2",
            )
        ]
        if summary.feed_frozen
        else []
    )
    value = summary.percent or 0.0
    fullest = [
        html.Li(
            [
                html.Span(line.name, className="fw-semibold"),
                f" {percent(line.percent)} ({line.occupied:,}/{line.capacity:,}, "
                f"{SOURCE_LABELS.get(line.source, line.source)})",
                *(
                    [dbc.Badge("stale", color="warning", text_color="dark", className="ms-1")]
                    if line.stale
                    else []
                ),
            ]
        )
        for line in summary.fullest
    ]
    return Rendered(
        html.Div(
            [
                *frozen,
                _big(
                    f"{summary.occupied:,} / {summary.capacity:,}",
                    f"occupied across {summary.open_groups} open lot group(s), "
                    + (
                        f"{percent(summary.percent)} full"
                        if summary.percent is not None
                        else "no capacity figures yet"
                    ),
                    "dashboard-occupancy-total",
                ),
                html.Div(  # the sentence above says the same; the bar is for the eye only
                    dbc.Progress(value=min(value, 100.0), style={"height": "0.6rem"}),
                    className="mb-2",
                    **{"aria-hidden": "true"},
                ),
                html.Div(badges, className="mb-2") if badges else None,
                html.Div("Fullest", className="small text-muted") if fullest else None,
                html.Ul(fullest, className="list-unstyled small mb-0") if fullest else None,
            ]
        )
    )


# occupancy-today


def _today(session: Session, now: datetime) -> Rendered:
    policy, store = _policy_and_store(session)
    tz = core().settings.tz
    today: OccupancyToday = widgets.occupancy_today(session, store, policy.staleness, now, tz)
    with_points = [series for series in today.series if series.points]
    day = today.start.strftime("%A %Y-%m-%d")
    if not with_points:
        return Rendered(
            html.P(f"No occupancy history yet today ({day}).", className="small text-muted mb-1"),
            blank_figure(CHART_HEIGHT, "No history yet today"),
            html.P("No history today.", className="text-muted mb-0"),
        )
    body = html.P(
        f"Percent full since midnight ({day}) for {len(with_points)} lot group(s).",
        className="small text-muted mb-1",
    )
    return Rendered(body, _today_figure(today, with_points), _today_table(with_points))


def _today_figure(today: OccupancyToday, series: list[widgets.GroupSeries]) -> go.Figure:
    tz = core().settings.tz

    def local(moment: datetime) -> datetime:
        return moment.astimezone(tz).replace(tzinfo=None)

    peak = max((p.percent or 0.0 for s in series for p in s.points), default=0.0)
    figure = go.Figure(
        [
            go.Scatter(
                name=s.name,
                x=[local(p.at) for p in s.points],
                y=[p.percent for p in s.points],
                mode="lines+markers" if len(s.points) < 3 else "lines",
                line={"color": s.color, "width": 2},
                hovertemplate=f"{s.name}<br>%{{x|%H:%M}}: %{{y:.0f}}% full<extra></extra>",
            )
            for s in series
        ]
    )
    figure.update_layout(
        height=CHART_HEIGHT,
        margin={"l": 8, "r": 8, "t": 28, "b": 8},
        showlegend=True,  # even for one group: the legend names it
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"size": 12},
    )
    figure.update_xaxes(range=[local(today.start), local(today.end)], tickformat="%H:%M", automargin=True)
    figure.update_yaxes(range=[0, max(100.0, peak * 1.05)], ticksuffix="%", automargin=True)
    _fixed_axes(figure)
    return figure


def _today_table(series: list[widgets.GroupSeries]) -> Any:
    rows = []
    for s in series:
        latest = s.points[-1]
        top = max(s.points, key=lambda p: p.percent or 0.0)
        rows.append(
            [
                s.name,
                SOURCE_LABELS.get(s.source, s.source),
                f"{percent(latest.percent)} at {_local(latest.at, '%H:%M')}",
                f"{percent(top.percent)} at {_local(top.at, '%H:%M')}",
                str(len(s.points)),
            ]
        )
    return _table(["Lot group", "Source", "Latest", "Peak", "Readings"], rows)


# permits-today


def _permits(session: Session, now: datetime) -> Rendered:
    sold: PermitsToday = widgets.permits_today(session, now, core().settings.tz)
    sources = ", ".join(f"{source} {count}" for source, count in sold.by_source)
    return Rendered(
        html.Div(
            [
                _big(
                    f"{sold.count:,}", f"permit(s) sold on {sold.day:%A %Y-%m-%d}", "dashboard-permits-count"
                ),
                html.Div(["Revenue: ", html.Strong(_money(sold.revenue, sold.currency))], className="small"),
                html.Div(
                    f"Paid online: {_money(sold.paid_online, sold.currency)}", className="small text-muted"
                ),
                html.Div(f"By source: {sources}", className="small text-muted") if sources else None,
            ]
        )
    )


# boots-in-use


def _boots(session: Session, now: datetime) -> Rendered:
    days = int(system_settings.get(session, core().secrets, "boot_non_return_days"))
    boots: BootsInUse = widgets.boots_in_use(session, now=now, non_return_days=days)
    parts: list[Any] = [_big(f"{boots.count:,}", "boot(s) applied now", "dashboard-boots-count")]
    if boots.not_returned:
        parts.append(
            dcc.Link(
                f"{boots.not_returned} released boot(s) not returned after {days} days",
                href="/admin/boot-report",
                className="text-danger fw-semibold d-block mb-2",
                id="dashboard-boots-not-returned",
            )
        )
    if boots.latest:
        rows = [
            [
                line.boot_name,
                line.plate,
                line.ticket_number,
                line.lot_name or "—",
                _when(line.applied_at, now),
            ]
            for line in boots.latest
        ]
        parts.append(_table(["Boot", "Plate", "Ticket", "Lot", "Applied"], rows))
    return Rendered(html.Div(parts))


# task-health


def _tasks(session: Session, now: datetime) -> Rendered:
    health: TaskHealth = widgets.task_health(session, now, core().settings.tz)
    if not health.tasks:
        return Rendered(html.P("No system tasks are registered.", className="text-muted mb-0"))
    summary = [
        dbc.Badge(
            f"{health.failing} failing", color="danger" if health.failing else "success", className="me-1"
        ),
        dbc.Badge(
            f"{health.overdue} overdue",
            color="warning" if health.overdue else "success",
            text_color="dark" if health.overdue else None,
        ),
    ]
    rows, classes = [], []
    for task in health.tasks:
        if not task.enabled:
            status: Any = html.Span("off", className="text-muted")
        else:
            outcome = task.last_outcome or "never run"
            status = dbc.Badge(
                outcome.replace("_", " "), color=OUTCOME_COLOURS.get(task.last_outcome or "", "secondary")
            )
        flags = [label for flag, label in ((task.failing, "failing"), (task.overdue, "overdue")) if flag]
        rows.append([task.title, status, _when(task.last_run_at, now), ", ".join(flags) or "—"])
        classes.append("table-danger" if task.failing else "table-warning" if task.overdue else None)
    return Rendered(
        html.Div(
            [
                html.Div(summary, className="mb-2"),
                _table(["Task", "Last run", "Age", "Attention"], rows, classes),
                dcc.Link("System Task Logs", href="/admin/tasks", className="small"),
            ]
        )
    )


# dead-letters


def _dead_letters(session: Session, now: datetime) -> Rendered:
    letters: DeadLetters = widgets.dead_letters(session, core().redis, now)
    parts: list[Any] = [
        *feed_alerts(letters.stuck, letters.sessions_lost, now, core().settings.tz, recent_only=True),
        _big(
            f"{letters.last_24h:,}",
            f"in the last 24 h · {letters.total:,} kept in total",
            "dashboard-dead-24h",
        ),
    ]
    if letters.counters is not None:
        counters = letters.counters
        parts.append(
            html.Div(
                f"Since the counters' reset: {counters.dead_letters:,} of {counters.messages:,} message(s).",
                className="small text-muted mb-1",
            )
        )
    if letters.latest:
        parts.append(
            html.Ul(
                [
                    html.Li([_when(letter.received_at, now), f": {letter.reason} ", html.Code(letter.topic)])
                    for letter in letters.latest
                ],
                className="small mb-1 ps-3 text-break",
            )
        )
    parts.append(dcc.Link("Sensor Feed Health", href="/admin/ingest", className="small"))
    return Rendered(html.Div(parts))


RENDERERS: dict[str, Callable[[Session, datetime], Rendered]] = {
    "mistall-lot-stats": _mistall,
    "occupancy-summary": _summary,
    "occupancy-today": _today,
    "permits-today": _permits,
    "boots-in-use": _boots,
    "task-health": _tasks,
    "dead-letters": _dead_letters,
}
