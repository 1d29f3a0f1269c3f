"""My Permits (``/permits``): the signed-in user's permits, current, upcoming and past, each with
the receipt of the payment that bought it (``purchases.user_permits``).

The layout is empty scaffolding; the list arrives from the ``Role.USER`` callback, which reads
only the caller's own permits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html

from dashboard.callbacks import callback, register_page
from dashboard.components.checkout import local, money
from dashboard.services import purchases
from dashboard.services.purchases import OwnedPermit
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(__name__, path="/permits", title="My Permits", min_role=Role.USER)


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("My Permits", className="h3"),
            dcc.Store(id="mypermits-load", data=0),
            html.Div(id="mypermits-content"),
        ],
        style={"maxWidth": "60rem"},
    )


def _card(item: OwnedPermit) -> Any:
    tz = core().settings.tz
    permit = item.permit
    badges = [
        dbc.Badge(permit.kind, color="success" if permit.kind == "standard" else "warning", className="ms-2")
    ]
    if permit.status != "active":
        badges.append(dbc.Badge(permit.status, color="secondary", className="ms-1"))
    receipt = (
        dcc.Link("Receipt", href=f"/receipts/{item.receipt_token}", className="small")
        if item.receipt_token
        else html.Span("No online receipt", className="small text-muted")
    )
    return dbc.Card(
        dbc.CardBody(
            [
                html.H3([permit.number, *badges], className="h6 mb-1"),
                html.Div(
                    f"{permit.product_name or permit.kind} · {permit.lot_name or permit.zone_name or ''}"
                ),
                html.Div(f"Plates: {', '.join(permit.plates)}", className="small"),
                html.Div(
                    f"Valid {local(permit.valid_from, tz)} to {local(permit.valid_to, tz)}", className="small"
                ),
                html.Div([money(permit.amount_cents, permit.currency), " · ", receipt], className="small"),
            ]
        ),
        className="mb-2 mypermits-permit",
        id=f"mypermits-permit-{permit.id}",
    )


def _section(title: str, items: tuple[OwnedPermit, ...], empty: str) -> Any:
    body = [_card(item) for item in items] or [html.P(empty, className="text-muted")]
    return html.Section([html.H2(title, className="h5 mt-3"), *body])


@callback(Output("mypermits-content", "children"), Input("mypermits-load", "data"), min_role=Role.USER)
def show(_load: Any) -> Any:
    user_id = current_user_id()
    assert user_id is not None  # Role.USER
    with session_scope() as session:
        mine = purchases.user_permits(session, user_id, datetime.now(UTC))
    return html.Div(
        [
            html.P(
                [
                    f"Times are {core().settings.timezone} time. Buy a permit from the ",
                    dcc.Link("Real-Time Map", href="/real-time"),
                    ".",
                ],
                className="text-muted",
            ),
            _section("Current", mine.current, "No permit is valid right now."),
            _section("Upcoming", mine.upcoming, "No upcoming permits."),
            _section("Past", mine.past, "No past permits."),
        ]
    )
