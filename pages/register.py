"""Create an account (``/register``): for the user types an admin opened to self-registration
(``/admin/user-types``). The account cannot sign in until its e-mail link is followed.

The page answers "check your inbox" whether or not the address already had an account (see
``accounts.register``); what is wrong with a field is said next to the form, keeping what was typed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.accounts import card, field, mail_refusal, mailer
from dashboard.components.feedback import validation_alert
from dashboard.inputs import as_id
from dashboard.services import accounts
from dashboard.services.errors import ValidationFailed
from dashboard.web import session_scope
from models import Role

register_page(__name__, path="/register", title="Create an account", min_role=Role.GUEST)

LABELS = {
    "first_name": "First name",
    "last_name": "Last name",
    "email": "E-mail",
    "user_type": "I am",
    "password": "Password",
    "confirm": "Repeat password",
}


def layout(**_query: str) -> html.Div:
    return card(
        "Create an account",
        dcc.Store(id="register-init", data=0),
        html.Div(id="register-status", role="status"),
        html.Div(
            [
                dbc.Row(
                    [
                        dbc.Col(
                            field(
                                "First name",
                                dbc.Input(id="register-first", maxLength=80, autocomplete="given-name"),
                            ),
                            xs=12,
                            sm=6,
                        ),
                        dbc.Col(
                            field(
                                "Last name",
                                dbc.Input(id="register-last", maxLength=80, autocomplete="family-name"),
                            ),
                            xs=12,
                            sm=6,
                        ),
                    ]
                ),
                field(
                    "E-mail",
                    dbc.Input(id="register-email", type="email", maxLength=254, autocomplete="email"),
                ),
                field("I am", dbc.Select(id="register-type", options=[], placeholder="Choose…")),
                field(
                    "Password",
                    dbc.Input(
                        id="register-password", type="password", maxLength=256, autocomplete="new-password"
                    ),
                ),
                html.P(
                    "At least 10 characters; not your name or e-mail, and not a commonly used password.",
                    className="small text-muted",
                ),
                field(
                    "Repeat password",
                    dbc.Input(
                        id="register-confirm", type="password", maxLength=256, autocomplete="new-password"
                    ),
                ),
                dbc.Button(
                    "Create account", id="register-submit", color="primary", className="w-100", n_clicks=0
                ),
                html.P(
                    [dcc.Link("Already have an account? Log in", href="/login")], className="small mt-3 mb-0"
                ),
            ],
            id="register-form",
        ),
    )


@callback(
    Output("register-type", "options"),
    Output("register-form", "hidden"),
    Output("register-status", "children"),
    Input("register-init", "data"),
    min_role=Role.GUEST,
)
def load_types(_init: int | None) -> tuple[Any, bool, Any]:
    with session_scope() as session:
        choices = accounts.registration_types(session)
    if not choices:
        closed = dbc.Alert(
            "Accounts cannot be created here at the moment. Ask the parking office for an account.",
            color="info",
        )
        return [], True, closed
    options = [{"label": c.name, "value": str(c.id)} for c in choices]
    return options, False, None


@callback(
    Output("register-status", "children", allow_duplicate=True),
    Output("register-form", "hidden", allow_duplicate=True),
    Input("register-submit", "n_clicks"),
    State("register-first", "value"),
    State("register-last", "value"),
    State("register-email", "value"),
    State("register-type", "value"),
    State("register-password", "value"),
    State("register-confirm", "value"),
    min_role=Role.GUEST,
    prevent_initial_call=True,
    running=[(Output("register-submit", "disabled"), True, False)],
)
def submit(
    clicks: int | None,
    first: str | None,
    last: str | None,
    address: str | None,
    user_type: str | None,
    password: str | None,
    confirm: str | None,
) -> tuple[Any, Any]:
    if ctx.triggered_id != "register-submit" or not clicks:
        return no_update, no_update
    address = (address or "").strip()
    if (password or "") != (confirm or ""):
        return validation_alert(
            ValidationFailed({"confirm": "the two passwords differ"}), LABELS, "Not created:"
        ), no_update
    refusal = mail_refusal(address)
    if refusal:
        return dbc.Alert(refusal, color="warning"), no_update
    try:
        with session_scope() as session:
            accounts.register(
                session,
                email_address=address,
                password=password or "",
                first_name=first or "",
                last_name=last or "",
                user_type_id=as_id(user_type),
                mailer=mailer(),
                now=datetime.now(UTC),
            )
    except ValidationFailed as exc:
        return validation_alert(exc, LABELS, "Not created:"), no_update
    done = dbc.Alert(
        [
            html.Strong("Check your inbox. "),
            f"We sent a link to {address}: open it to confirm your address, then log in. "
            "The link works for 48 hours.",
        ],
        color="success",
        id="register-done",
    )
    return done, True
