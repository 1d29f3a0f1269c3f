"""Pay Station Status (the seed's Parking Management > Temporary Permits > Pay Station Status): the
paid sessions that pay stations and apps reported: the permits pay stations pushed (partner API,
OC-TOMA), ParkMobile's imported permits, and older pay-station records.

Who parked where and when: filters by source, zone, lot, plate and a time window (records active
at some moment in it, read in the site's time zone), a table with an "active now" badge, and totals
over every match (not just the page shown), with the amount per currency because sources may bill
in different currencies.

Managers and up. The layout is empty scaffolding (Dash sends it to every browser); the filter
choices and the records arrive through ``Role.MANAGER`` callbacks. The table refreshes every
minute, so "active now" stays true without a reload; the ParkMobile import runs every 3 minutes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components import record_list
from dashboard.components.feedback import validation_alert
from dashboard.inputs import as_id
from dashboard.services import pay_stations
from dashboard.services.errors import ValidationFailed
from dashboard.services.pay_stations import RecordPage, RecordRow
from dashboard.web import core, session_scope
from models import Role, utcnow

register_page(__name__, path="/admin/pay-stations", title="Pay Station Status", min_role=Role.MANAGER)

REFRESH_MS = 60_000
LABELS = {"from": "From", "to": "To", "plate": "Plate"}
FILTERS = (
    "paystations-source",
    "paystations-zone",
    "paystations-lot",
    "paystations-plate",
    "paystations-from",
    "paystations-to",
)


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Pay Station Status", className="h3"),
            html.P(
                "Paid sessions reported by pay stations and parking apps. Pay stations push their permits "
                "as they sell them; ParkMobile permits are imported every few minutes (System Task Logs > "
                "Fetch ParkMobile Stats) when their zone matches a lot zone of the same name.",
                className="text-muted",
            ),
            dcc.Interval(id="paystations-refresh", interval=REFRESH_MS),
            dcc.Store(id="paystations-init", data=0),
            dbc.Card(
                dbc.CardBody(
                    [
                        dbc.Row(
                            [
                                record_list.field(
                                    "Source",
                                    dbc.Select(id="paystations-source", value="", placeholder="All sources"),
                                ),
                                record_list.field(
                                    "Zone",
                                    dbc.Select(id="paystations-zone", value="", placeholder="All zones"),
                                ),
                                record_list.field(
                                    "Lot",
                                    dbc.Select(id="paystations-lot", value="", placeholder="All lots"),
                                ),
                                record_list.field(
                                    "Plate",
                                    dbc.Input(
                                        id="paystations-plate",
                                        maxLength=16,
                                        debounce=True,
                                        placeholder="e.g. ABC 123",
                                        autoComplete="off",
                                    ),
                                ),
                                record_list.field(
                                    "From",
                                    dbc.Input(id="paystations-from", type="datetime-local", debounce=True),
                                ),
                                record_list.field(
                                    "To",
                                    dbc.Input(id="paystations-to", type="datetime-local", debounce=True),
                                ),
                            ],
                            className="g-2",
                        ),
                        dbc.FormText(id="paystations-tz"),
                    ]
                ),
                className="mb-3",
            ),
            *record_list.results("paystations", "records"),
        ]
    )


@callback(
    Output("paystations-source", "options"),
    Output("paystations-zone", "options"),
    Output("paystations-lot", "options"),
    Output("paystations-tz", "children"),
    Input("paystations-init", "data"),
    min_role=Role.MANAGER,
)
def load_options(_init: int | None) -> tuple[Any, ...]:
    with session_scope() as session:
        options = pay_stations.filter_options(session)
    tz_name = getattr(core().settings.tz, "key", str(core().settings.tz))
    return (
        record_list.options("All sources", [(s, pay_stations.source_label(s)) for s in options.sources]),
        record_list.options("All zones", list(options.zones)),
        record_list.options("All lots", list(options.lots)),
        f"Times are in the site's time zone ({tz_name}). From/To show records active at some moment "
        "between them.",
    )


def _when(moment: datetime) -> str:
    return moment.astimezone(core().settings.tz).strftime("%Y-%m-%d %H:%M")


def _status(row: RecordRow, now: datetime) -> Any:
    if row.status != "active":
        badge = dbc.Badge(str(row.status).capitalize(), color="dark")
    elif row.active_at(now):
        badge = dbc.Badge("Active now", color="success")
    elif row.start_at > now:
        badge = dbc.Badge("Upcoming", color="info")
    else:
        badge = dbc.Badge("Ended", color="secondary")
    if not row.over_capacity:
        return badge
    flag = record_list.over_allowance(
        "Recorded when its lot's allowance or its zone's capacity (Manage Lot Zones) was already taken"
    )
    return [badge, flag]


def _zone(row: RecordRow) -> Any:
    if row.zone is None:
        return html.Span(row.zone_name or "—", className="text-muted", title="No local lot zone")
    return row.zone


def _table(result: RecordPage) -> Any:
    if not result.rows:
        return html.P("No records match these filters.", className="text-muted")
    header = ["Plate", "Source", "Zone", "Lot", "Start", "End", "Amount", "Status"]
    rows = [
        html.Tr(
            [
                html.Td(html.Span(row.plate, className="fw-semibold text-nowrap")),
                html.Td(pay_stations.source_label(row.source)),
                html.Td(_zone(row)),
                html.Td(", ".join(row.lot_names) or "—"),
                html.Td(_when(row.start_at), className="text-nowrap"),
                html.Td(_when(row.end_at), className="text-nowrap"),
                html.Td(record_list.money(row.amount_cents, row.currency), className="text-end text-nowrap"),
                html.Td(_status(row, result.now)),
            ],
            id=f"paystations-row-{row.key}",
        )
        for row in result.rows
    ]
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(h, scope="col") for h in header])),
            html.Tbody(rows),
        ],
        hover=True,
        responsive=True,
        size="sm",
        className="align-middle",
        id="paystations-grid",
    )


def _int(value: Any) -> int | None:
    return as_id(value)


@callback(
    *record_list.result_outputs("paystations"),
    Input("paystations-source", "value"),
    Input("paystations-zone", "value"),
    Input("paystations-lot", "value"),
    Input("paystations-plate", "value"),
    Input("paystations-from", "value"),
    Input("paystations-to", "value"),
    Input("paystations-pages", "active_page"),
    Input("paystations-refresh", "n_intervals"),
    min_role=Role.MANAGER,
)
def refresh(
    source: str | None,
    zone: str | None,
    lot: str | None,
    plate: str | None,
    start: str | None,
    end: str | None,
    page: int | None,
    _tick: int | None,
) -> tuple[Any, ...]:
    """A changed filter starts again at page 1; the minute tick and the pager keep the page."""
    if dash.ctx.triggered_id in FILTERS:
        page = 1
    try:
        window = pay_stations.parse_window(start, end, core().settings.tz)
        with session_scope() as session:
            result = pay_stations.search(
                session,
                now=utcnow(),
                source=source or None,
                zone_id=_int(zone),
                lot_id=_int(lot),
                plate=plate,
                window=window,
                page=_int(page) or 1,
            )
    except ValidationFailed as exc:
        alert = validation_alert(exc, LABELS, heading="Not searched:")
        return (alert, *([no_update] * 7))
    return record_list.shown(result, "records", _table(result))
