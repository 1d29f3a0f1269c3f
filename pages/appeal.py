"""Appeal a Ticket (anyone): the ticket number and the plate, why, an e-mail address for the
decision, and optionally a photo. A signed-in owner whose account the ticket is on needs only the
number (``appeals.submit_appeal``); the e-mail field is filled from the account.

While the appeal is open the ticket is "under appeal" and does not become overdue; the receipt and
the decision arrive by e-mail. ``?ticket=`` fills the number (a link from the ticket's e-mails).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.checkout import mail_backend
from dashboard.components.enforcement import field_errors, site
from dashboard.services import appeals, photos
from dashboard.services.errors import DomainError, ValidationFailed
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(__name__, path="/appeal", title="Appeal a Ticket", min_role=Role.GUEST)

LABELS = {"text": "Why", "email": "E-mail", "photo": "Photo", "ticket": "Ticket"}


def layout(ticket: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Appeal a Ticket", className="h3"),
            html.P(
                "Tell us why the ticket is wrong. While your appeal is reviewed the ticket is on hold and "
                "does not become overdue; the decision is sent to you by e-mail.",
                className="text-muted",
            ),
            dcc.Store(id="appeal-init", data=0),
            dbc.Form(
                [
                    dbc.Label("Ticket number", html_for="appeal-ticket"),
                    dbc.Input(
                        id="appeal-ticket",
                        maxLength=32,
                        value=ticket or "",
                        placeholder="T-7K3-9QX",
                        className="mb-3 text-uppercase",
                    ),  # fmt: skip
                    dbc.Label("Licence plate", html_for="appeal-plate"),
                    dbc.Input(id="appeal-plate", maxLength=16, className="mb-3 text-uppercase"),
                    dbc.Label("Your e-mail address", html_for="appeal-email"),
                    dbc.Input(id="appeal-email", type="email", maxLength=254, className="mb-3"),
                    dbc.Label("Why the ticket is wrong", html_for="appeal-text"),
                    dbc.Textarea(id="appeal-text", rows=5, maxLength=appeals.TEXT_MAX, className="mb-3"),
                    dbc.Label("A photo (optional)", html_for="appeal-photo"),
                    dcc.Upload(
                        id="appeal-photo",
                        children=html.Div("Choose a photo", className="py-2"),
                        accept="image/jpeg,image/png,image/webp",
                        max_size=photos.MAX_BYTES,
                        className="text-center border rounded mb-1",
                    ),
                    html.Div(id="appeal-photo-name", className="small mb-3"),
                    dbc.Button(
                        "Send the appeal", id="appeal-submit", color="primary", className="w-100", n_clicks=0
                    ),
                ],
                id="appeal-form",
            ),
            html.Div(id="appeal-result", className="mt-3", **{"aria-live": "polite"}),
        ],
        style={"maxWidth": "32rem"},
    )


@callback(Output("appeal-email", "value"), Input("appeal-init", "data"), min_role=Role.GUEST)
def fill_email(_init: int | None) -> Any:
    user_id = current_user_id()
    if user_id is None:
        return no_update
    with session_scope() as session:
        return appeals.account_email(session, user_id)


@callback(
    Output("appeal-photo-name", "children"),
    Input("appeal-photo", "filename"),
    min_role=Role.GUEST,
    prevent_initial_call=True,
)
def photo_name(name: str | None) -> str | None:
    return f"Attached: {name[:80]}" if name else None


@callback(
    Output("appeal-result", "children"),
    Output("appeal-form", "style"),
    Input("appeal-submit", "n_clicks"),
    State("appeal-ticket", "value"),
    State("appeal-plate", "value"),
    State("appeal-email", "value"),
    State("appeal-text", "value"),
    State("appeal-photo", "contents"),
    min_role=Role.GUEST,
    prevent_initial_call=True,
    running=[(Output("appeal-submit", "disabled"), True, False)],
)
def submit(
    _clicks: int | None,
    ticket: str | None,
    plate: str | None,
    address: str | None,
    text: str | None,
    photo: str | None,
) -> tuple[Any, Any]:
    if ctx.triggered_id != "appeal-submit":
        return no_update, no_update
    the_site = site()
    try:
        data = photos.decode_data_url(photo) if photo else None
        with session_scope() as session:
            done = appeals.submit_appeal(
                session,
                ticket=ticket or "",
                plate=plate or "",
                text=text or "",
                email_address=address or "",
                user_id=current_user_id(),
                photo=data,
                instance_path=core().settings.instance_path,
                site=the_site,
                backend=mail_backend(),
                now=datetime.now(UTC),
            )
    except ValidationFailed as exc:
        return field_errors(exc.errors, LABELS), no_update
    except DomainError as exc:
        return dbc.Alert(str(exc), color="warning"), no_update
    return (
        dbc.Alert(
            [
                html.Strong(f"Your appeal of ticket {done.ticket_number} was received."),
                html.Div(f"The ticket is on hold; the decision will be e-mailed to {done.email}."),
            ],
            color="success",
            id="appeal-done",
        ),
        {"display": "none"},
    )
