"""Temporary Permits (the seed's Parking Management > Temporary Permits): every temporary sale in
one list: quick-checkout and cart permits, permits pay stations and meters pushed or reported,
HotSpot's and other partners', and ParkMobile's imported sessions.

Filters by source, lot (its own permits and those of zones it schedules), plate and site-local
days (sales in force at some moment of them); a table with times in words in the site's time zone,
totals over every match, pages of 50, and a CSV download of every match. Managers and up; the
layout is empty scaffolding and everything arrives through ``Role.MANAGER`` callbacks.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components import record_list
from dashboard.components.feedback import validation_alert
from dashboard.inputs import as_id
from dashboard.services import pay_stations, temporary_permits
from dashboard.services.errors import ValidationFailed
from dashboard.services.pay_stations import RecordPage, RecordRow, Scope
from dashboard.web import core, session_scope
from models import Role, utcnow

register_page(__name__, path="/admin/temporary-permits", title="Temporary Permits", min_role=Role.MANAGER)

logger = logging.getLogger(__name__)
LABELS = {"from": "From", "to": "To", "plate": "Plate", "source": "Source"}
FILTERS = ("temps-source", "temps-lot", "temps-plate", "temps-from", "temps-to")
SOURCE_MAX = 24  # what a source value can be; anything longer is not one


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Temporary Permits", className="h3"),
            html.P(
                "Every temporary sale: quick checkout, pay stations and meters, HotSpot and partners, "
                "and ParkMobile. Pay Station Status shows the pay-station sessions alone.",
                className="text-muted",
            ),
            dcc.Store(id="temps-init", data=0),
            dcc.Download(id="temps-download"),
            dbc.Card(
                dbc.CardBody(
                    [
                        dbc.Row(
                            [
                                record_list.field(
                                    "Source",
                                    dbc.Select(id="temps-source", value="", placeholder="All sources"),
                                ),
                                record_list.field(
                                    "Lot",
                                    dbc.Select(id="temps-lot", value="", placeholder="All lots"),
                                ),
                                record_list.field(
                                    "Plate",
                                    dbc.Input(
                                        id="temps-plate",
                                        maxLength=16,
                                        debounce=True,
                                        placeholder="e.g. ABC 123",
                                        autoComplete="off",
                                    ),
                                ),
                                record_list.field(
                                    "From", dbc.Input(id="temps-from", type="date", debounce=True)
                                ),
                                record_list.field("To", dbc.Input(id="temps-to", type="date", debounce=True)),
                                dbc.Col(
                                    dbc.Button(
                                        "Download CSV",
                                        id="temps-export",
                                        color="secondary",
                                        outline=True,
                                        className="w-100",
                                    ),
                                    xs=12,
                                    sm=6,
                                    lg=2,
                                    className="d-flex align-items-end",
                                ),
                            ],
                            className="g-2",
                        ),
                        dbc.FormText(id="temps-tz"),
                    ]
                ),
                className="mb-3",
            ),
            *record_list.results("temps", "permits"),
        ]
    )


@callback(
    Output("temps-source", "options"),
    Output("temps-lot", "options"),
    Output("temps-tz", "children"),
    Input("temps-init", "data"),
    min_role=Role.MANAGER,
)
def load_options(_init: int | None) -> tuple[Any, ...]:
    with session_scope() as session:
        options = pay_stations.filter_options(session, Scope.TEMPORARY)
    tz_name = getattr(core().settings.tz, "key", str(core().settings.tz))
    return (
        record_list.options("All sources", [(s, pay_stations.source_label(s)) for s in options.sources]),
        record_list.options("All lots", list(options.lots)),
        f"Times are in the site's time zone ({tz_name}). From/To take the permits in force on "
        "some day between them.",
    )


def _status(row: RecordRow, now: datetime) -> Any:
    words = temporary_permits.status_words(row, now)
    color = {"Active now": "success", "Upcoming": "info"}.get(words, "secondary")
    badge = dbc.Badge(words, color=color)
    if not row.over_capacity:
        return badge
    flag = record_list.over_allowance(
        "Recorded when its lot's allowance or its zone's capacity was already taken"
    )
    return [badge, flag]


def _table(result: RecordPage) -> Any:
    if not result.rows:
        return html.P("No temporary permits match these filters.", className="text-muted")
    tz = core().settings.tz
    header = ["Plate", "Source", "Zone / lot", "Start", "End", "Amount", "Status"]
    body = []
    for row in result.rows:
        start, end = temporary_permits.when_words(row, result.now, tz)
        where = [row.zone or row.zone_name or "", ", ".join(row.lot_names)]
        body.append(
            html.Tr(
                [
                    html.Td(
                        [
                            html.Span(row.plate, className="fw-semibold text-nowrap"),
                            html.Div(row.number or row.external_id or "", className="small text-muted"),
                        ]
                    ),
                    html.Td(pay_stations.source_label(row.source)),
                    html.Td(" · ".join(part for part in where if part) or "—"),
                    html.Td(start),
                    html.Td(end),
                    html.Td(
                        record_list.money(row.amount_cents, row.currency), className="text-end text-nowrap"
                    ),
                    html.Td(_status(row, result.now)),
                ],
                id=f"temps-row-{row.key}",
            )
        )
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h, scope="col") for h in header])), html.Tbody(body)],
        hover=True,
        responsive=True,
        size="sm",
        className="align-middle",
        id="temps-grid",
    )


def _filters(source: Any, lot: Any, plate: Any, first: Any, last: Any) -> dict[str, Any]:
    """The filters as the services take them; ``ValidationFailed`` for what no form sends."""
    errors: dict[str, str] = {}
    if source is not None and (not isinstance(source, str) or len(source) > SOURCE_MAX):
        errors["source"] = "choose a source from the list"
    if plate is not None and (not isinstance(plate, str) or len(plate) > 16):
        errors["plate"] = "at most 16 letters or digits"
    for name, value in (("from", first), ("to", last)):
        if value is not None and not isinstance(value, str):
            errors[name] = "a date as YYYY-MM-DD"
    if errors:
        raise ValidationFailed(errors)
    window = temporary_permits.day_window(first or None, last or None, core().settings.tz)
    return {"source": source or None, "lot_id": as_id(lot), "plate": plate, "window": window}


@callback(
    *record_list.result_outputs("temps"),
    Input("temps-source", "value"),
    Input("temps-lot", "value"),
    Input("temps-plate", "value"),
    Input("temps-from", "value"),
    Input("temps-to", "value"),
    Input("temps-pages", "active_page"),
    min_role=Role.MANAGER,
)
def refresh(source: Any, lot: Any, plate: Any, first: Any, last: Any, page: Any) -> tuple[Any, ...]:
    """A changed filter starts again at page 1; the pager keeps its page."""
    if dash.ctx.triggered_id in FILTERS:
        page = 1
    try:
        filters = _filters(source, lot, plate, first, last)
        with session_scope() as session:
            result = pay_stations.search(
                session, now=utcnow(), page=as_id(page) or 1, scope=Scope.TEMPORARY, **filters
            )
    except ValidationFailed as exc:
        logger.info("Temporary Permits not searched: %s", exc.errors)
        return (validation_alert(exc, LABELS, heading="Not searched:"), *([no_update] * 7))
    return record_list.shown(result, "permits", _table(result))


@callback(
    Output("temps-download", "data"),
    Output("temps-error", "children", allow_duplicate=True),
    Input("temps-export", "n_clicks"),
    *(State(f, "value") for f in FILTERS),
    min_role=Role.MANAGER,
    prevent_initial_call=True,
)
def export(clicks: Any, source: Any, lot: Any, plate: Any, first: Any, last: Any) -> tuple[Any, Any]:
    """Every match (not only the page shown), at most ``pay_stations.EXPORT_LIMIT`` rows."""
    if not clicks:
        return no_update, no_update
    tz = core().settings.tz
    try:
        filters = _filters(source, lot, plate, first, last)
        with session_scope() as session:
            rows = pay_stations.every_row(session, scope=Scope.TEMPORARY, **filters)
    except ValidationFailed as exc:
        logger.info("Temporary Permits not exported: %s", exc.errors)
        return no_update, validation_alert(exc, LABELS, heading="Not exported:")
    stamp = datetime.now(tz).strftime("%Y%m%d-%H%M")
    text = temporary_permits.export_csv(rows, tz)
    return dcc.send_string(text, f"temporary-permits-{stamp}.csv", type="text/csv"), None
