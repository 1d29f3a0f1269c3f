"""Violations (managers): search tickets by number, plate, lot, officer, status and issue date, open
one, and export the filtered list as CSV.

"Overdue" is a status to search by, though it is not stored: an unpaid violation past its due date.
Dates are site-local days. The CSV holds every match, not only the page shown. The layout is empty
scaffolding; choices and rows arrive through ``Role.MANAGER`` callbacks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components import paged_search
from dashboard.components.enforcement import boots_on, money, short_when, violation_badge
from dashboard.components.feedback import validation_alert
from dashboard.inputs import require_id
from dashboard.services import lots, violations
from dashboard.services.days import parse_day
from dashboard.services.errors import ValidationFailed
from dashboard.services.violations import Filters
from dashboard.web import core, session_scope
from models import Role

register_page(__name__, path="/admin/violations", title="Violations", min_role=Role.MANAGER)

FILTERS = (
    "violations-ticket",
    "violations-plate",
    "violations-lot",
    "violations-officer",
    "violations-status",
    "violations-from",
    "violations-to",
)
STATUSES = ["unpaid", "overdue", "under_appeal", "paid", "void"]
LABELS = {"ticket": "Ticket", "plate": "Plate", "status": "Status", "from": "Issued from", "to": "Issued to"}


def _field(label: str, control: Any) -> Any:
    return dbc.Col(
        [dbc.Label(label, html_for=control.id, className="small mb-1"), control], xs=12, sm=6, lg=3
    )


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Violations", className="h3"),
            dcc.Store(id="violations-init", data=0),
            dcc.Download(id="violations-download"),
            dbc.Card(
                dbc.CardBody(
                    dbc.Row(
                        [
                            _field("Ticket", dbc.Input(id="violations-ticket", debounce=True, maxLength=32)),
                            _field("Plate", dbc.Input(id="violations-plate", debounce=True, maxLength=16)),
                            _field("Lot", dbc.Select(id="violations-lot", value="", placeholder="All lots")),
                            _field(
                                "Officer",
                                dbc.Select(id="violations-officer", value="", placeholder="All officers"),
                            ),
                            _field(
                                "Status",
                                dbc.Select(
                                    id="violations-status",
                                    value="",
                                    placeholder="All statuses",
                                    options=[{"label": "All statuses", "value": ""}]
                                    + [{"label": violations.status_label(s), "value": s} for s in STATUSES],
                                ),
                            ),
                            _field(
                                "Issued from", dbc.Input(id="violations-from", type="date", debounce=True)
                            ),
                            _field("Issued to", dbc.Input(id="violations-to", type="date", debounce=True)),
                            dbc.Col(
                                dbc.Button(
                                    "Export CSV", id="violations-export", color="secondary", n_clicks=0
                                ),
                                xs=12,
                                sm=6,
                                lg=3,
                                className="d-flex align-items-end",
                            ),
                        ],
                        className="g-2",
                    )
                ),
                className="mb-3",
            ),
            *paged_search.results("violations"),
        ]
    )


@callback(
    Output("violations-lot", "options"),
    Output("violations-officer", "options"),
    Input("violations-init", "data"),
    min_role=Role.MANAGER,
)
def load_options(_init: int | None) -> tuple[Any, Any]:
    with session_scope() as session:
        lot_choices = lots.lot_choices(session)
        officers = violations.officer_choices(session)
    return (
        [{"label": "All lots", "value": ""}]
        + [{"label": label, "value": str(i)} for i, label in lot_choices],
        [{"label": "All officers", "value": ""}]
        + [{"label": label, "value": str(i)} for i, label in officers],
    )


def filters_from(
    ticket: str | None,
    plate: str | None,
    lot: str | None,
    officer: str | None,
    status: str | None,
    start: str | None,
    end: str | None,
) -> Filters:
    """The Lot and Officer choices hold ids the page gave out ("" for all)."""
    return Filters(
        ticket=ticket or None,
        plate=plate or None,
        lot_id=require_id(lot, "lot") if lot else None,
        officer_id=require_id(officer, "officer") if officer else None,
        status=status or None,
        issued_from=parse_day(start, "from"),
        issued_to=parse_day(end, "to"),
    )


def _table(page: violations.SearchPage, show_boot: bool) -> Any:
    if not page.rows:
        return html.P("No violations match these filters.", className="text-muted")
    header = ["Ticket", "Status", "Plate", "Lot", "Officer", "Issued", "Due", "Total"]
    rows = [
        html.Tr(
            [
                html.Td(
                    [
                        dcc.Link(r.ticket_number, href=f"/admin/violations/{r.id}", className="fw-semibold"),
                        *(
                            [dbc.Badge("boot", color="dark", className="ms-1")]
                            if show_boot and r.booted
                            else []
                        ),
                    ],
                    className="text-nowrap",
                ),
                html.Td(violation_badge(r.shown_status)),
                html.Td(r.plate, className="text-nowrap"),
                html.Td(r.lot_name or "—"),
                html.Td(r.officer_name or "—"),
                html.Td(short_when(r.issued_at), className="text-nowrap"),
                html.Td(short_when(r.due_at), className="text-nowrap"),
                html.Td(money(r.total_cents), className="text-end"),
            ],
            id=f"violations-row-{r.id}",
        )
        for r in page.rows
    ]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h, scope="col") for h in header])), html.Tbody(rows)],
        size="sm",
        hover=True,
        responsive=True,
        id="violations-grid",
    )


@callback(
    *paged_search.result_outputs("violations"),
    *(Input(f, "value") for f in FILTERS),
    Input("violations-pages", "active_page"),
    min_role=Role.MANAGER,
)
def refresh(
    ticket: str | None,
    plate: str | None,
    lot: str | None,
    officer: str | None,
    status: str | None,
    start: str | None,
    end: str | None,
    page: int | None,
) -> tuple[Any, ...]:
    values = (ticket, plate, lot, officer, status, start, end)
    if dash.ctx.triggered_id in FILTERS:
        page = 1
    try:
        filters = filters_from(*values)
        with session_scope() as session:
            result = violations.search(
                session, filters, datetime.now(UTC), core().settings.tz, page=page or 1
            )
    except ValidationFailed as exc:
        return validation_alert(exc, LABELS, "Not searched:"), *([no_update] * 4)
    return paged_search.shown(result, violations.PAGE_SIZE, _table(result, boots_on()))


@callback(
    Output("violations-download", "data"),
    Output("violations-error", "children", allow_duplicate=True),
    Input("violations-export", "n_clicks"),
    *(State(f, "value") for f in FILTERS),
    min_role=Role.MANAGER,
    prevent_initial_call=True,
)
def export(
    clicks: int | None,
    ticket: str | None,
    plate: str | None,
    lot: str | None,
    officer: str | None,
    status: str | None,
    start: str | None,
    end: str | None,
) -> tuple[Any, Any]:
    values = (ticket, plate, lot, officer, status, start, end)
    if not clicks:
        return no_update, no_update
    try:
        filters = filters_from(*values)
        with session_scope() as session:
            text = violations.export_csv(session, filters, datetime.now(UTC), core().settings.tz)
    except ValidationFailed as exc:
        return no_update, validation_alert(exc, LABELS, "Not exported:")
    stamp = datetime.now(core().settings.tz).strftime("%Y%m%d-%H%M")
    return dcc.send_string(text, f"violations-{stamp}.csv", type="text/csv"), None
