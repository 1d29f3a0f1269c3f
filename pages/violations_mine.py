"""My Violations (``/violations``, signed-in users): the account's violations (written to it, or to
a plate registered on it), each with its status, what paying now costs (the early-payment price
while it holds) and a boot icon when a boot is on the car; tick the ones to pay, give the e-mail
for the receipt (and a boot's release code), and pay by card (``violation_payments.pay``).

With Require Overdue Paid on, a payment without every overdue ticket is refused with their
numbers and an "Add the overdue tickets" button. The layout is scaffolding; the violations, the
total and the account's e-mail arrive through ``Role.USER`` callbacks. Pay is disabled while it
runs, and the form's idempotency key makes a second submission answer with the first's outcome.

With Stripe chosen, Pay sends the browser to Stripe's page; the tab keeps the form's key, so the
return (``?payment=return`` or ``?payment=cancel``) shows the outcome from what Stripe holds.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html, no_update
from flask_login import current_user

from dashboard.callbacks import callback, register_page
from dashboard.components import checkout, violation_pay
from dashboard.services.violation_payments import Scope
from dashboard.web import current_user_id
from models import Role

register_page(__name__, path="/violations", title="My Violations", min_role=Role.USER)

PREFIX = "myviol"


def layout(payment: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("My violations", className="h3"),
            html.P(
                [
                    "Parking tickets on your account or your vehicles. Questions about one? ",
                    dcc.Link("Appeal a ticket", href="/appeal"),
                    ".",
                ],
                className="text-muted",
            ),  # fmt: skip
            dcc.Store(id="myviol-version", data=0),
            dcc.Store(id="myviol-key", storage_type="session"),
            dcc.Store(id="myviol-return", data=payment if payment in violation_pay.RETURNS else None),
            dcc.Location(id="myviol-go", refresh=True),
            dcc.Store(id="myviol-total"),
            dcc.Store(id="myviol-missing"),
            html.Div(id="myviol-empty"),
            html.Div(id="myviol-overdue-note"),
            dbc.Checklist(id="myviol-select", options=[], value=[], className="violation-list"),
            violation_pay.pay_form(PREFIX),
            violation_pay.result_area(PREFIX),
        ],
        style={"maxWidth": "44rem"},
    )


def _scope() -> Scope:
    user_id = current_user_id()
    assert user_id is not None  # Role.USER
    return Scope(user_id=user_id)


@callback(
    Output("myviol-select", "options"),
    Output("myviol-select", "value"),
    Output("myviol-empty", "children"),
    Output("myviol-overdue-note", "children"),
    Output("myviol-pay-section", "style"),
    Output("myviol-key", "data"),
    Output("myviol-email", "value"),
    Input("myviol-version", "data"),
    min_role=Role.USER,
)
def load(_version: Any) -> tuple[Any, ...]:
    rows = violation_pay.listed(_scope())
    if not rows:
        empty = html.P("There are no parking tickets on your account.", id="myviol-none")
        return [], [], empty, None, violation_pay.HIDDEN, None, no_update
    payable = any(row.payable for row in rows)
    return (
        violation_pay.choices(rows),
        [],
        None if payable else html.P("Nothing to pay.", id="myviol-nothing"),
        violation_pay.overdue_note(rows),
        {} if payable else violation_pay.HIDDEN,
        checkout.new_key(),
        current_user.email,
    )


@callback(
    Output("myviol-total-text", "children"),
    Output("myviol-total", "data"),
    Input("myviol-select", "value"),
    min_role=Role.USER,
)
def show_total(selected: list[int] | None) -> tuple[Any, Any]:
    return violation_pay.total(_scope(), selected)


@callback(
    Output("myviol-result", "children"),
    Output("myviol-key", "data", allow_duplicate=True),
    Output("myviol-version", "data", allow_duplicate=True),
    Output("myviol-missing", "data"),
    Output("myviol-add-overdue", "style"),
    Output("myviol-go", "href"),
    Input("myviol-pay", "n_clicks"),
    State("myviol-select", "value"),
    State("myviol-email", "value"),
    State("myviol-card-number", "value"),
    State("myviol-card-expiry", "value"),
    State("myviol-card-cvc", "value"),
    State("myviol-key", "data"),
    State("myviol-total", "data"),
    State("myviol-version", "data"),
    running=[(Output("myviol-pay", "disabled"), True, False)],
    prevent_initial_call=True,
    min_role=Role.USER,
)
def pay(
    clicks: int | None,
    selected: list[int] | None,
    address: str | None,
    number: str | None,
    expiry: str | None,
    cvc: str | None,
    key: str | None,
    shown_total: int | None,
    version: int | None,
) -> tuple[Any, ...]:
    if not clicks:
        return no_update, no_update, no_update, no_update, no_update, no_update
    answer = violation_pay.run_payment(
        _scope(), current_user.name, selected, address, number, expiry, cvc, key, shown_total, "/violations"
    )
    return violation_pay.pay_outputs(answer, version)


violation_pay.register_callbacks(PREFIX, Role.USER)
