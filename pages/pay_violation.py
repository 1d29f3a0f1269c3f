"""Pay a Violation (``/pay-violation``, anyone, no account): the ticket number and the plate find
the ticket (the printed ticket's QR code opens this page with the number filled in); it and the
plate's other unpaid tickets are listed (a boot icon on a booted one while Universal Boot is on),
and the ticked ones are paid by card with an e-mail for the receipt and a boot's release code
(``violation_payments.pay``). A wrong number or plate gets "no ticket matches", never which one.

With Require Overdue Paid on, every overdue ticket of the plate must be in the payment: the
refusal names them and offers to add them. The layout holds only the number from the address;
the rest arrives through ``Role.GUEST`` callbacks, which check the number and plate again on
every call (the page keeps them in a store: they are what the guest typed).

With Stripe chosen, Pay sends the browser to Stripe's page; the tab keeps the form's key and what
was looked up (session storage), so the return (``?payment=return``, or ``?payment=cancel`` from
Stripe's back link) shows the outcome from what Stripe holds and lists the tickets again.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components import checkout, violation_pay
from dashboard.services.errors import NotFound
from dashboard.services.violation_payments import Scope
from models import Role

register_page(__name__, path="/pay-violation", title="Pay a Violation", min_role=Role.GUEST)

PREFIX = "payviol"
TEXT_MAX = 32


def layout(ticket: str | None = None, payment: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Pay a parking ticket", className="h3"),
            html.P(
                "No account needed: the ticket number and the licence plate find it.", className="text-muted"
            ),
            dcc.Store(id="payviol-version", data=0),
            dcc.Store(id="payviol-scope", storage_type="session"),
            dcc.Store(id="payviol-key", storage_type="session"),
            dcc.Store(id="payviol-return", data=payment if payment in violation_pay.RETURNS else None),
            dcc.Location(id="payviol-go", refresh=True),
            dcc.Store(id="payviol-total"),
            dcc.Store(id="payviol-missing"),
            dbc.Form(
                [
                    dbc.Label("Ticket number", html_for="payviol-ticket"),
                    dbc.Input(
                        id="payviol-ticket",
                        maxLength=TEXT_MAX,
                        value=(ticket or "")[:TEXT_MAX],
                        placeholder="T-7K3-9QX",
                        className="mb-3 text-uppercase",
                    ),
                    dbc.Label("Licence plate", html_for="payviol-plate"),
                    dbc.Input(id="payviol-plate", maxLength=16, className="mb-3 text-uppercase"),
                    dbc.Button("Find the ticket", id="payviol-find", color="secondary", n_clicks=0),
                ],
                id="payviol-lookup",
            ),
            html.Div(id="payviol-found", className="mt-3", role="status"),
            html.Div(id="payviol-overdue-note"),
            dbc.Checklist(id="payviol-select", options=[], value=[], className="violation-list"),
            violation_pay.pay_form(PREFIX),
            violation_pay.result_area(PREFIX),
        ],
        style={"maxWidth": "40rem"},
    )


def _scope(stored: dict[str, Any] | None) -> Scope | None:
    if not isinstance(stored, dict):
        return None
    ticket, plate = stored.get("ticket"), stored.get("plate")
    if not isinstance(ticket, str) or not isinstance(plate, str):
        return None
    return Scope(ticket=ticket[:TEXT_MAX], plate=plate[:TEXT_MAX])


@callback(
    Output("payviol-select", "options"),
    Output("payviol-select", "value"),
    Output("payviol-found", "children"),
    Output("payviol-overdue-note", "children"),
    Output("payviol-pay-section", "style"),
    Output("payviol-key", "data"),
    Output("payviol-scope", "data"),
    Input("payviol-find", "n_clicks"),
    Input("payviol-version", "data"),
    State("payviol-ticket", "value"),
    State("payviol-plate", "value"),
    State("payviol-scope", "data"),
    prevent_initial_call=True,
    min_role=Role.GUEST,
)
def find(
    clicks: int | None,
    _version: Any,
    ticket: str | None,
    plate: str | None,
    stored: dict[str, Any] | None,
) -> tuple[Any, ...]:
    if ctx.triggered_id == "payviol-find":
        if not clicks:
            return (no_update,) * 7
        scope = Scope(ticket=(ticket or "")[:TEXT_MAX], plate=(plate or "")[:TEXT_MAX])
    else:
        found = _scope(stored)
        if found is None:
            return (no_update,) * 7
        scope = found
    try:
        rows = violation_pay.listed(scope)
    except NotFound as exc:
        missing = dbc.Alert(str(exc), color="warning", id="payviol-not-found")
        return [], [], missing, None, violation_pay.HIDDEN, None, None
    first = rows[0]
    payable = any(row.payable for row in rows)
    found_text = (
        html.P(f"Ticket {first.ticket_number} found.", id="payviol-found-text")
        if payable
        else html.P(f"Ticket {first.ticket_number}: nothing to pay.", id="payviol-nothing")
    )
    return (
        violation_pay.choices(rows),
        [first.violation_id] if first.payable else [],
        found_text,
        violation_pay.overdue_note(rows),
        {} if payable else violation_pay.HIDDEN,
        checkout.new_key(),
        {"ticket": scope.ticket, "plate": scope.plate},
    )


@callback(
    Output("payviol-total-text", "children"),
    Output("payviol-total", "data"),
    Input("payviol-select", "value"),
    State("payviol-scope", "data"),
    min_role=Role.GUEST,
)
def show_total(selected: list[int] | None, stored: dict[str, Any] | None) -> tuple[Any, Any]:
    scope = _scope(stored)
    if scope is None:
        return no_update, no_update
    try:
        return violation_pay.total(scope, selected)
    except NotFound:
        return no_update, no_update


@callback(
    Output("payviol-result", "children"),
    Output("payviol-key", "data", allow_duplicate=True),
    Output("payviol-version", "data", allow_duplicate=True),
    Output("payviol-missing", "data"),
    Output("payviol-add-overdue", "style"),
    Output("payviol-go", "href"),
    Input("payviol-pay", "n_clicks"),
    State("payviol-scope", "data"),
    State("payviol-select", "value"),
    State("payviol-email", "value"),
    State("payviol-card-number", "value"),
    State("payviol-card-expiry", "value"),
    State("payviol-card-cvc", "value"),
    State("payviol-key", "data"),
    State("payviol-total", "data"),
    State("payviol-version", "data"),
    running=[(Output("payviol-pay", "disabled"), True, False)],
    prevent_initial_call=True,
    min_role=Role.GUEST,
)
def pay(
    clicks: int | None,
    stored: dict[str, Any] | None,
    selected: list[int] | None,
    address: str | None,
    number: str | None,
    expiry: str | None,
    cvc: str | None,
    key: str | None,
    shown_total: int | None,
    version: int | None,
) -> tuple[Any, ...]:
    scope = _scope(stored)
    if not clicks or scope is None:
        return no_update, no_update, no_update, no_update, no_update, no_update
    answer = violation_pay.run_payment(
        scope,
        violation_pay.signed_in_name(),
        selected,
        address,
        number,
        expiry,
        cvc,
        key,
        shown_total,
        "/pay-violation",
    )
    return violation_pay.pay_outputs(answer, version)


violation_pay.register_callbacks(PREFIX, Role.GUEST)
