"""Reports (managers): permit sales and revenue, occupancy history per lot group, violations.

The report, its days and its filters live in the URL's query string (``?report=sales&from=...``):
the layout reads them into the controls, and every change writes them back (without reloading),
so a bookmark or a shared link reopens the same report. Each report is a chart and a table, and
the table is downloadable as CSV or XLSX through ``/admin/reports/export.<csv|xlsx>`` with the same
query (``dashboard.report_routes``): the files hold the table's very cells. The layout is empty
scaffolding; choices and figures arrive through ``Role.MANAGER`` callbacks.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.charts import blank_figure
from dashboard.components.feedback import validation_alert
from dashboard.services import reports
from dashboard.services.errors import ValidationFailed
from dashboard.services.reports import (
    Cell,
    Column,
    OccupancyReport,
    ReportKind,
    SalesReport,
    Table,
    ViolationsReport,
)
from dashboard.services.wording import SOURCE_LABELS
from dashboard.web import core, session_scope
from models import Role

PATH = "/admin/reports"
EXPORT_PATH = "/admin/reports/export"
register_page(__name__, path=PATH, title="Reports", min_role=Role.MANAGER)

logger = logging.getLogger(__name__)
LABELS = {
    "report": "Report",
    "from": "From",
    "to": "To",
    "group_by": "Group by",
    "lot": "Lot",
    "source": "Source",
    "group": "Lot group",
}
GRAPH_CONFIG = {"displayModeBar": False, "responsive": True, "scrollZoom": False}
CHART_HEIGHT = 320
HIDDEN = {"display": "none"}
SHOWN: dict[str, str] = {}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
PHYSICAL_COLOR = "#0d6efd"
PERMITS_COLOR = "#fd7e14"
MARKED_HOURS = 240  # up to ten days of hours, each hour's reading is also a dot (a lone hour shows)


def _field(label: str, control: Any, box_id: str | None = None) -> Any:
    extra = {"id": box_id} if box_id else {}
    return dbc.Col(
        [dbc.Label(label, html_for=control.id, className="small mb-1"), control],
        xs=12,
        sm=6,
        lg=2,
        **extra,
    )


def _graph(graph_id: str, title: str, box_id: str | None = None) -> Any:
    extra = {"id": box_id} if box_id else {}
    return html.Div(
        [
            html.H3(title, id=f"{graph_id}-title", className="h6 mb-1"),
            html.Div(
                dcc.Graph(
                    id=graph_id,
                    figure=blank_figure(CHART_HEIGHT),
                    config=GRAPH_CONFIG,
                    style={"height": f"{CHART_HEIGHT}px"},
                ),
                role="img",
                **{"aria-label": f"Chart: {title}. The table below lists the figures."},
            ),
        ],
        className="mb-3",
        **extra,
    )


def _initial(query: dict[str, str], name: str, default: str = "") -> str:
    """A control's first value, from the URL (bounded: the callback validates it)."""
    value = query.get(name)
    return value[: reports.TEXT_MAX] if isinstance(value, str) else default


def layout(**query: str) -> html.Div:
    kind = _initial(query, "report", ReportKind.SALES.value)
    return html.Div(
        [
            dcc.Location(id="reports-url", refresh=False),
            dcc.Store(id="reports-init", data=0),
            html.H1("Reports", className="h3"),
            html.P(
                "Sales and revenue, occupancy history and violations over site-local days. The address "
                "bar keeps the report and its filters: bookmark or share it to open the same report.",
                className="text-muted",
            ),
            dbc.Card(
                dbc.CardBody(
                    [
                        dbc.Row(
                            [
                                _field(
                                    "Report",
                                    dbc.Select(
                                        id="reports-kind",
                                        value=kind,
                                        options=[
                                            {"label": "Sales and revenue", "value": ReportKind.SALES.value},
                                            {"label": "Occupancy", "value": ReportKind.OCCUPANCY.value},
                                            {"label": "Violations", "value": ReportKind.VIOLATIONS.value},
                                        ],
                                    ),
                                ),
                                _field(
                                    "From",
                                    dbc.Input(
                                        id="reports-from",
                                        type="date",
                                        debounce=True,
                                        value=_initial(query, "from"),
                                    ),
                                ),
                                _field(
                                    "To",
                                    dbc.Input(
                                        id="reports-to",
                                        type="date",
                                        debounce=True,
                                        value=_initial(query, "to"),
                                    ),
                                ),
                                _field(
                                    "Group by",
                                    dbc.Select(
                                        id="reports-group-by", value=_initial(query, "group_by", "day")
                                    ),
                                    "reports-group-by-box",
                                ),
                                _field(
                                    "Lot",
                                    dbc.Select(
                                        id="reports-lot", value=_initial(query, "lot"), placeholder="All lots"
                                    ),
                                    "reports-lot-box",
                                ),
                                _field(
                                    "Source",
                                    dbc.Select(
                                        id="reports-source",
                                        value=_initial(query, "source"),
                                        placeholder="All sources",
                                    ),
                                    "reports-source-box",
                                ),
                                _field(
                                    "Lot group",
                                    dbc.Select(id="reports-group", value=_initial(query, "group")),
                                    "reports-group-box",
                                ),
                            ],
                            className="g-2",
                        ),
                        dbc.FormText(id="reports-tz"),
                    ]
                ),
                className="mb-3",
            ),
            html.Div(id="reports-error", role="alert"),
            html.H2(id="reports-title", className="h5"),
            html.P(id="reports-summary", className="text-muted small", role="status"),
            _graph("reports-chart", "The report"),
            _graph("reports-heat", "Average % full by weekday and hour", "reports-heat-box"),
            _graph("reports-peaks", "Peak per day", "reports-peaks-box"),
            html.Div(
                [
                    html.A(
                        "Download CSV",
                        id="reports-csv",
                        href=EXPORT_PATH + ".csv",
                        className="btn btn-outline-secondary btn-sm",
                    ),
                    html.A(
                        "Download XLSX",
                        id="reports-xlsx",
                        href=EXPORT_PATH + ".xlsx",
                        className="btn btn-outline-secondary btn-sm",
                    ),
                ],
                className="d-flex flex-wrap gap-2 mb-2",
            ),
            html.Div(id="reports-table"),
        ]
    )


def _options(everything: str, choices: list[tuple[Any, str]]) -> list[dict[str, str]]:
    return [{"label": everything, "value": ""}] + [{"label": label, "value": str(v)} for v, label in choices]


@callback(
    Output("reports-lot", "options"),
    Output("reports-source", "options"),
    Output("reports-group", "options"),
    Output("reports-tz", "children"),
    Input("reports-init", "data"),
    min_role=Role.MANAGER,
)
def load_options(_init: int | None) -> tuple[Any, ...]:
    with session_scope() as session:
        lots = reports.lot_options(session)
        channels = reports.sales_channels(session)
        groups = reports.group_options(session)
    tz_name = getattr(core().settings.tz, "key", str(core().settings.tz))
    group_options = [{"label": name, "value": str(gid)} for gid, name in groups]
    if not group_options:
        group_options = [{"label": "No lot groups yet", "value": ""}]
    return (
        _options("All lots", lots),
        _options("All sources", channels),
        group_options,
        f"Days are the site's ({tz_name}), from midnight to midnight, both included; at most "
        f"{reports.MAX_DAYS} days. Amounts are in currency units with two decimals.",
    )


def _finish(figure: go.Figure) -> go.Figure:
    """One look for every chart: the legend above the plot (below, it collides with slanted day
    labels on a phone); no zoom or pan, so a drag on a phone scrolls the page."""
    figure.update_layout(
        height=CHART_HEIGHT,
        margin={"l": 48, "r": 8, "t": 32, "b": 40},
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        paper_bgcolor="rgba(0,0,0,0)",
        dragmode=False,
    )
    figure.update_xaxes(fixedrange=True, automargin=True)
    figure.update_yaxes(fixedrange=True, automargin=True)
    return figure


def _units(cents: int) -> float:
    return cents / 100


def _sales_figure(report: SalesReport) -> go.Figure:
    if not report.rows:
        return blank_figure(CHART_HEIGHT, "No sales on these days")
    figure = go.Figure()
    for currency in sorted({row.currency for row in report.rows}):
        rows = [row for row in report.rows if row.currency == currency]
        if report.group_by == "day":
            figure.add_bar(
                name=currency, x=[row.key for row in rows], y=[_units(row.amount_cents) for row in rows]
            )
        else:
            rows = rows[::-1]  # the biggest at the top
            figure.add_bar(
                name=currency,
                y=[row.label for row in rows],
                x=[_units(row.amount_cents) for row in rows],
                orientation="h",
            )
    return _finish(figure)


def _occupancy_figures(report: OccupancyReport) -> tuple[go.Figure, go.Figure, go.Figure]:
    if not report.hours:
        empty = "No history on these days"
        if report.group_id is None:
            empty = "No lot groups yet"
        return (
            blank_figure(CHART_HEIGHT, empty),
            blank_figure(CHART_HEIGHT, empty),
            blank_figure(CHART_HEIGHT, empty),
        )
    hours: list[Any] = []
    physical: list[float | None] = []
    permits: list[float | None] = []
    for point in report.hours:
        if hours and point.hour.replace(tzinfo=None) - hours[-1] > timedelta(hours=1):
            hours.append(hours[-1] + timedelta(hours=1))  # an hour without readings breaks the line
            physical.append(None)
            permits.append(None)
        hours.append(point.hour.replace(tzinfo=None))
        physical.append(point.physical)
        permits.append(point.permits)
    lines = go.Figure()
    mode = "lines+markers" if len(hours) <= MARKED_HOURS else "lines"  # a dot per hour of a year is a smear
    for name, values, color in (
        ("Physical (cars counted)", physical, PHYSICAL_COLOR),
        ("Permits valid", permits, PERMITS_COLOR),
    ):
        lines.add_scatter(name=name, x=hours, y=values, mode=mode, line={"color": color}, connectgaps=False)
    heat = go.Figure(
        go.Heatmap(
            z=[list(row) for row in report.heat],
            x=[f"{h:02d}" for h in range(24)],
            y=list(WEEKDAYS),
            colorscale="Blues",
            zmin=0,
            zmax=100,
            hovertemplate="%{y} %{x}:00: %{z}%<extra></extra>",
            colorbar={"title": {"text": "%"}, "thickness": 10},
        )
    )
    heat.update_yaxes(autorange="reversed")
    peaks = go.Figure()
    peaks.add_bar(
        name="Physical peak",
        x=[p.day.isoformat() for p in report.peaks],
        y=[p.physical_peak for p in report.peaks],
        marker_color=PHYSICAL_COLOR,
    )
    peaks.add_bar(
        name="Permits peak",
        x=[p.day.isoformat() for p in report.peaks],
        y=[p.permits_peak for p in report.peaks],
        marker_color=PERMITS_COLOR,
    )
    return _finish(lines), _finish(heat), _finish(peaks)


def _violations_figure(report: ViolationsReport) -> go.Figure:
    if not report.total.issued:
        return blank_figure(CHART_HEIGHT, "No violations issued on these days")
    rows = report.rows if report.group_by == "day" else report.rows[::-1]
    x = [row.key if report.group_by == "day" else row.label for row in rows]
    figure = go.Figure()
    for name, field, color in (
        ("Paid", "paid", "#198754"),
        ("Outstanding", "outstanding", "#dc3545"),
        ("Void", "void", "#adb5bd"),
    ):
        values = [getattr(row, field) for row in rows]
        if report.group_by == "day":
            figure.add_bar(name=name, x=x, y=values, marker_color=color)
        else:
            figure.add_bar(name=name, y=x, x=values, orientation="h", marker_color=color)
    figure.update_layout(barmode="stack")
    return _finish(figure)


def render_table(table: Table) -> Any:
    """The report's table, cell for cell what the downloads hold (``reports.cell_text``). Each cell
    carries its column's title (``data-label``): on a phone ``assets/reports.css`` shows every row
    as a card of "title: value" lines instead of a table wider than the screen."""
    if not table.rows:
        return html.P("Nothing to list for these days and filters.", className="text-muted")

    def cell(value: object, column: Column, tag: Any) -> Any:
        numeric = column.kind is not Cell.TEXT
        return tag(
            reports.cell_text(value, column.kind) or "—",
            className="text-end text-nowrap" if numeric else None,
            **{"data-label": column.title},
        )

    def line(row: tuple[object, ...], tag: Any) -> Any:
        return html.Tr([cell(value, column, tag) for value, column in zip(row, table.columns, strict=True)])

    head = html.Thead(
        html.Tr(
            [
                html.Th(c.title, scope="col", className="text-end" if c.kind is not Cell.TEXT else None)
                for c in table.columns
            ]
        )
    )
    body = html.Tbody([line(row, html.Td) for row in table.rows])
    foot = html.Tfoot([line(row, html.Th) for row in table.totals])
    return dbc.Table(
        [head, body, foot],
        hover=True,
        size="sm",
        className="align-middle small reports-table",
        id="reports-grid",
    )


def _summary(report: reports.Report) -> str:
    span = f"{reports.day_label(report.days.first)} to {reports.day_label(report.days.last)}"
    if isinstance(report, SalesReport):
        money = ", ".join(
            f"{t.currency} {reports.cell_text(t.amount_cents, Cell.MONEY)} from {t.count:,} sales"
            for t in report.totals
        )
        return f"{span}: {money or 'no sales'}."
    if isinstance(report, OccupancyReport):
        if report.group_id is None:
            return "No lot groups yet: occupancy is recorded per lot group."
        source = SOURCE_LABELS.get(report.physical_source or "", "no physical count")
        hours = len(report.hours)
        return f"{report.group_name}, {span}: physical count from {source}, {hours:,} hours recorded."
    total = report.total
    return (
        f"{span}: {total.issued:,} issued, {total.paid:,} paid, {total.void:,} void, "
        f"{total.outstanding:,} outstanding."
    )


def _chart_title(query: reports.ReportQuery) -> str:
    if query.kind is ReportKind.OCCUPANCY:
        return "Hourly average: physical count vs permits valid"
    by = reports.GROUP_TITLES[query.group_by].lower()
    if query.kind is ReportKind.SALES:
        return f"Amount sold by {by}"
    return f"Violations issued by {by}, by where they stand now"


@callback(
    Output("reports-url", "search"),
    Output("reports-error", "children"),
    Output("reports-title", "children"),
    Output("reports-summary", "children"),
    Output("reports-chart", "figure"),
    Output("reports-chart-title", "children"),
    Output("reports-heat", "figure"),
    Output("reports-peaks", "figure"),
    Output("reports-heat-box", "style"),
    Output("reports-peaks-box", "style"),
    Output("reports-table", "children"),
    Output("reports-csv", "href"),
    Output("reports-xlsx", "href"),
    Output("reports-group-by", "options"),
    Output("reports-group-by", "value"),
    Output("reports-from", "value"),
    Output("reports-to", "value"),
    Output("reports-group", "value"),
    Output("reports-group-by-box", "style"),
    Output("reports-lot-box", "style"),
    Output("reports-source-box", "style"),
    Output("reports-group-box", "style"),
    Input("reports-kind", "value"),
    Input("reports-from", "value"),
    Input("reports-to", "value"),
    Input("reports-group-by", "value"),
    Input("reports-lot", "value"),
    Input("reports-source", "value"),
    Input("reports-group", "value"),
    min_role=Role.MANAGER,
)
def show(
    kind: str | None,
    first: str | None,
    last: str | None,
    group_by: str | None,
    lot: str | None,
    source: str | None,
    group: str | None,
) -> tuple[Any, ...]:
    """Validate the controls, write them to the URL, and draw the report. A grouping the chosen
    report does not have (violations by product) falls back to by day."""
    groups = reports.VIOLATION_GROUPS if kind == ReportKind.VIOLATIONS.value else reports.SALES_GROUPS
    if group_by not in groups:
        group_by = "day"
    tz = core().settings.tz
    texts = {
        "report": kind,
        "from": first,
        "to": last,
        "group_by": group_by,
        "lot": lot,
        "source": source,
        "group": group,
    }
    try:
        query = reports.parse_query(texts, tz, reports.site_today(tz))
        with session_scope() as session:
            report = reports.build(session, query, tz)
    except ValidationFailed as exc:
        logger.info("report not shown: %s", exc.errors)
        return (no_update, validation_alert(exc, LABELS, heading="Not shown:"), *([no_update] * 20))
    if isinstance(report, OccupancyReport) and report.group_id is not None:
        query = replace(query, group=report.group_id)  # the default group, named so a bookmark keeps it
    params = urlencode(query.params())
    heat_style = peaks_style = HIDDEN
    if isinstance(report, OccupancyReport):
        chart, heat, peaks = _occupancy_figures(report)
        heat_style = peaks_style = SHOWN
    else:
        chart = _sales_figure(report) if isinstance(report, SalesReport) else _violations_figure(report)
        heat = peaks = no_update
    is_sales = query.kind is ReportKind.SALES
    is_occupancy = query.kind is ReportKind.OCCUPANCY
    group_options = [
        {"label": reports.GROUP_TITLES[g], "value": g}
        for g in (reports.SALES_GROUPS if is_sales else reports.VIOLATION_GROUPS)
    ]
    return (
        "?" + params,
        None,
        reports.KIND_TITLES[query.kind],
        _summary(report),
        chart,
        _chart_title(query),
        heat,
        peaks,
        heat_style,
        peaks_style,
        render_table(report.table()),
        f"{EXPORT_PATH}.csv?{params}",
        f"{EXPORT_PATH}.xlsx?{params}",
        group_options,
        query.group_by,
        query.days.first.isoformat(),
        query.days.last.isoformat(),
        str(query.group) if query.group is not None else "",
        HIDDEN if is_occupancy else SHOWN,
        HIDDEN if is_occupancy else SHOWN,
        SHOWN if is_sales else HIDDEN,
        SHOWN if is_occupancy else HIDDEN,
    )
