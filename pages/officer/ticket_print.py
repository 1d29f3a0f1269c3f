"""A ticket made to be printed on 3-inch thermal paper from the phone's browser
(``/officer/tickets/<number>``), with the PDF beside it (``/tickets/<number>.pdf``).

The paper (``.ticket-paper``) is 72 mm wide; ``assets/ticket-print.css`` gives it a named page of
that width and hides the navigation and buttons when printing. The QR code opens the ticket's
payment page (``/pay-violation?ticket=...``, absolute, from ``PARKOPS_BASE_URL``).
The words are the PDF's (``ticket_pdf.ticket_lines``), so both say the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, dcc, html

from dashboard.callbacks import callback, register_page
from dashboard.components.checkout import base_url
from dashboard.components.enforcement import boots_on, setting
from dashboard.services import qr, ticket_pdf, violations
from dashboard.services.errors import NotFound
from dashboard.web import core, session_scope
from models import Role

register_page(
    __name__,
    path_template="/officer/tickets/<number>",
    path="/officer/tickets/none",
    title="Print Ticket",
    min_role=Role.OFFICER,
)


def layout(number: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Store(id="ticketprint-number", data=number),
            html.Div(
                [
                    dcc.Link("← Write a Ticket", href="/officer/ticket", className="small"),
                    html.A("PDF", id="ticketprint-pdf", className="btn btn-outline-primary btn-sm ms-auto"),
                    dbc.Button("Print", id="ticketprint-print", color="primary", size="sm", n_clicks=0),
                ],
                className="d-flex align-items-center gap-2 mb-3 d-print-none",
                style={"maxWidth": "72mm", "margin": "0 auto"},
            ),
            html.Div(id="ticketprint-content"),
            html.Span(id="ticketprint-printed", hidden=True),
        ]
    )


def _line(line: ticket_pdf.Line) -> Any:
    style = {"fontWeight": 700} if line.bold else {}
    if line.size >= 14:
        return html.Div(line.text, className="ticket-big", id="ticketprint-ticket-number")
    if line.right is not None:
        return html.Div([html.Span(line.text), html.Span(line.right)], className="ticket-row", style=style)
    return html.Div(line.text, style={**style, "marginBottom": f"{line.gap}mm"})


@callback(
    Output("ticketprint-content", "children"),
    Output("ticketprint-pdf", "href"),
    Input("ticketprint-number", "data"),
    min_role=Role.OFFICER,
)
def show(number: str | None) -> tuple[Any, Any]:
    try:
        with session_scope() as session:
            ticket = violations.get_ticket(session, number or "", datetime.now(UTC))
    except NotFound:
        return html.Div([html.H1("Ticket not found", className="h4")]), None
    url = violations.pay_url(base_url(), ticket.ticket_number)
    lines = ticket_pdf.ticket_lines(
        ticket, str(setting("site_name")), core().settings.tz, boots_on(), str(setting("currency"))
    )
    paper = html.Div(
        [
            *map(_line, lines),
            html.Img(
                src=qr.svg_data_uri(url, scale=4),
                alt=f"QR code: {url}",
                className="ticket-qr",
                id="ticketprint-qr",
            ),
            html.Div("Scan to pay online:", className="text-center"),
            html.Div(url, className="ticket-url", id="ticketprint-url"),
        ],
        className="ticket-paper",
        id="ticket-paper",
    )
    return paper, f"/tickets/{ticket.ticket_number}.pdf"


dash.clientside_callback(
    ClientsideFunction(namespace="enforcement", function_name="print"),
    Output("ticketprint-printed", "children"),
    Input("ticketprint-print", "n_clicks"),
    prevent_initial_call=True,
)
