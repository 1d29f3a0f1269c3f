"""Forgot password (``/password/forgot``): a reset link by e-mail. The answer is the same whether
or not the address has an account, so the page cannot be used to find out who has one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.accounts import card, field, mail_refusal, mailer
from dashboard.services import accounts
from dashboard.web import session_scope
from models import Role

register_page(__name__, path="/password/forgot", title="Forgot password", min_role=Role.GUEST)


def layout(**_query: str) -> html.Div:
    return card(
        "Forgot your password?",
        html.P(
            "Enter the e-mail address of your account and we will send you a link to choose a new password."
        ),
        field("E-mail", dbc.Input(id="forgot-email", type="email", maxLength=254, autocomplete="email")),
        dbc.Button("Send the link", id="forgot-submit", color="primary", className="w-100", n_clicks=0),
        html.Div(id="forgot-status", role="status", className="mt-3"),
        html.P(dcc.Link("Back to log in", href="/login"), className="small mt-3 mb-0"),
    )


@callback(
    Output("forgot-status", "children"),
    Input("forgot-submit", "n_clicks"),
    State("forgot-email", "value"),
    min_role=Role.GUEST,
    prevent_initial_call=True,
    running=[(Output("forgot-submit", "disabled"), True, False)],
)
def submit(clicks: int | None, address: str | None) -> Any:
    if ctx.triggered_id != "forgot-submit" or not clicks:
        return no_update
    address = (address or "").strip()
    if not address:
        return dbc.Alert("Enter your e-mail address.", color="danger")
    refusal = mail_refusal(address)
    if refusal:
        return dbc.Alert(refusal, color="warning")
    with session_scope() as session:
        accounts.request_reset(session, address[:254], mailer(), datetime.now(UTC))
    return dbc.Alert(
        "If an account uses this address, a link to reset its password is on its way. "
        "It works once, for one hour.",
        color="info",
        id="forgot-done",
    )
