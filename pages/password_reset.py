"""Choose a new password (``/password/reset?token=``, the link in the reset e-mail). A new
password signs the account out everywhere (``accounts.reset_password``); then the person logs in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.accounts import card, field, link_attempt
from dashboard.components.feedback import validation_alert
from dashboard.services import accounts, throttle
from dashboard.services.errors import ValidationFailed
from dashboard.web import session_scope
from models import Role

register_page(__name__, path="/password/reset", title="Choose a new password", min_role=Role.GUEST)

LABELS = {"password": "New password", "confirm": "Repeat password"}


def layout(token: str | None = None, **_query: str) -> html.Div:
    return card(
        "Choose a new password",
        dcc.Store(id="reset-token", data=token if isinstance(token, str) else None),
        html.Div(id="reset-status", role="status"),
        html.Div(
            [
                field(
                    "New password",
                    dbc.Input(
                        id="reset-password", type="password", maxLength=256, autocomplete="new-password"
                    ),
                ),
                html.P(
                    "At least 10 characters; not your name or e-mail, and not a commonly used password.",
                    className="small text-muted",
                ),
                field(
                    "Repeat password",
                    dbc.Input(
                        id="reset-confirm", type="password", maxLength=256, autocomplete="new-password"
                    ),
                ),
                dbc.Button(
                    "Change password", id="reset-submit", color="primary", className="w-100", n_clicks=0
                ),
            ],
            id="reset-form",
        ),
    )


@callback(
    Output("reset-status", "children"),
    Output("reset-form", "hidden"),
    Input("reset-submit", "n_clicks"),
    State("reset-token", "data"),
    State("reset-password", "value"),
    State("reset-confirm", "value"),
    min_role=Role.GUEST,
    prevent_initial_call=True,
    running=[(Output("reset-submit", "disabled"), True, False)],
)
def submit(
    clicks: int | None, token: str | None, password: str | None, confirm: str | None
) -> tuple[Any, Any]:
    if ctx.triggered_id != "reset-submit" or not clicks:
        return no_update, no_update
    if (password or "") != (confirm or ""):
        return validation_alert(ValidationFailed({"confirm": "the two passwords differ"}), LABELS), no_update
    try:
        attempt = link_attempt()
    except throttle.Throttled as exc:
        return dbc.Alert(str(exc), color="warning"), no_update
    try:
        with session_scope() as session:
            accounts.reset_password(session, token, password or "", datetime.now(UTC))
    except ValidationFailed as exc:
        attempt.succeeded()
        return validation_alert(exc, LABELS), no_update
    except accounts.InvalidLink as exc:
        attempt.failed()
        again = dcc.Link("Ask for a new link", href="/password/forgot", className="alert-link")
        return dbc.Alert([f"{exc} ", again], color="warning", id="reset-invalid"), True
    attempt.succeeded()
    done = dbc.Alert(
        [
            "Your password is changed, and every session of your account has been signed out. ",
            dcc.Link("Log in", href="/login", className="alert-link"),
            " with the new password.",
        ],
        color="success",
        id="reset-done",
    )
    return done, True
