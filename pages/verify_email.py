"""Confirm an e-mail address (``/verify?token=``, the link in the registration e-mail), or ask
for a new link (``/verify`` without one, where the login page sends an unconfirmed account).

The token is spent by the page's callback, not by loading the page: a mail scanner that fetches
links without running scripts does not use it up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.accounts import card, field, link_attempt, mail_refusal, mailer
from dashboard.services import accounts, throttle
from dashboard.web import session_scope
from models import Role

register_page(__name__, path="/verify", title="Confirm your e-mail", min_role=Role.GUEST)


def layout(token: str | None = None, **_query: str) -> html.Div:
    return card(
        "Confirm your e-mail",
        dcc.Store(id="verify-token", data=token if isinstance(token, str) else None),
        html.Div(id="verify-status", role="status"),
        html.Div(
            [
                html.P("Enter your e-mail address and we will send you a new confirmation link."),
                field(
                    "E-mail", dbc.Input(id="verify-email", type="email", maxLength=254, autocomplete="email")
                ),
                dbc.Button(
                    "Send a new link", id="verify-resend", color="primary", className="w-100", n_clicks=0
                ),
                html.Div(id="verify-resent", role="status", className="mt-3"),
            ],
            id="verify-resend-form",
        ),
    )


@callback(
    Output("verify-status", "children"),
    Output("verify-resend-form", "hidden"),
    Input("verify-token", "data"),
    min_role=Role.GUEST,
)
def verify(token: str | None) -> tuple[Any, bool]:
    if not token:
        return None, False
    try:
        attempt = link_attempt()
    except throttle.Throttled as exc:
        return dbc.Alert(str(exc), color="warning"), True
    try:
        with session_scope() as session:
            address = accounts.verify_email(session, token, datetime.now(UTC))
    except accounts.InvalidLink as exc:
        attempt.failed()
        return dbc.Alert(
            f"{exc} You can ask for a new link below.", color="warning", id="verify-invalid"
        ), False
    attempt.succeeded()
    done = dbc.Alert(
        [f"Thank you: {address} is confirmed. ", dcc.Link("Log in", href="/login", className="alert-link")],
        color="success",
        id="verify-done",
    )
    return done, True


@callback(
    Output("verify-resent", "children"),
    Input("verify-resend", "n_clicks"),
    State("verify-email", "value"),
    min_role=Role.GUEST,
    prevent_initial_call=True,
)
def resend(clicks: int | None, address: str | None) -> Any:
    if ctx.triggered_id != "verify-resend" or not clicks:
        return no_update
    address = (address or "").strip()
    if not address:
        return dbc.Alert("Enter your e-mail address.", color="danger")
    refusal = mail_refusal(address)
    if refusal:
        return dbc.Alert(refusal, color="warning")
    with session_scope() as session:
        accounts.resend_verification(session, address[:254], mailer(), datetime.now(UTC))
    return dbc.Alert(
        "If an account with this address is waiting for confirmation, a new link is on its way.",
        color="info",
        id="verify-resent-done",
    )
