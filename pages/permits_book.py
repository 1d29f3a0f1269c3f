"""Book a standard permit (``/permits/book/<lot id>``): the lot group page's standard permit button.

The lot's standard (term) permits that the user's type may buy, each with its price, term dates and
what is left; the vehicles (the user's saved plates filled in, up to ``permits.MAX_PLATES``); and
"Add to cart" per permit. A sold-out term offers "Join the waitlist" instead. Paying happens in the
cart (``/cart``). Guests are sent to log in by the gate (``Role.USER``).

The layout holds only the lot id from the URL and empty plate boxes; the permits and the saved
plates arrive from ``Role.USER`` callbacks (``carts.standard_offer``, ``carts.add_standard_item``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components import checkout
from dashboard.components.feedback import validation_alert
from dashboard.inputs import as_id, require_id
from dashboard.services import carts
from dashboard.services.carts import StandardOffer, StandardOption
from dashboard.services.errors import DomainError, NotFound, ValidationFailed
from dashboard.services.permits import MAX_PLATES, SoldOut
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(
    __name__,
    path_template="/permits/book/<lot_id>",
    path="/permits/book/none",
    title="Book a Permit",
    min_role=Role.USER,
)

HIDDEN = {"display": "none"}
PLATE_IDS = [f"book-plate-{n}" for n in range(1, MAX_PLATES + 1)]
LABELS = {
    "product": "Permit",
    "plates": "Licence plates",
    **{f"plate_{n}": f"Licence plate {n}" for n in range(1, MAX_PLATES + 1)},
}


def layout(lot_id: str | None = None, **_query: str) -> html.Div:
    plates = [
        dbc.Col(
            [
                dbc.Label(f"Licence plate {n}" + (" (optional)" if n > 1 else ""), html_for=plate_id),
                dbc.Input(id=plate_id, type="text", maxLength=16, autoComplete="off"),
            ],
            xs=12,
            sm=4,
            className="mb-2",
        )
        for n, plate_id in enumerate(PLATE_IDS, start=1)
    ]
    return html.Div(
        [
            dcc.Store(id="book-lot", data=lot_id),
            dcc.Link("← Real-Time Map", href="/real-time", className="small"),
            html.H1("Book a standard permit", id="book-title", className="h3 mt-1"),
            html.Div(id="book-missing"),
            html.Div(
                [
                    html.Fieldset(
                        [
                            html.Legend("Vehicles on the permit", className="fs-6 fw-semibold"),
                            dbc.Row(plates),
                            dbc.FormText(id="book-plates-help"),
                        ],
                        className="mb-3",
                    ),
                    html.Div(id="book-feedback", role="status"),
                    html.H2("Permits", className="h5"),
                    html.Div(id="book-options"),
                ],
                id="book-form",
                style=HIDDEN,
            ),
        ],
        style={"maxWidth": "52rem"},
    )


def _lot_id(value: Any) -> int | None:
    return as_id(value)


def _option(option: StandardOption) -> Any:
    term = checkout.term(option.valid_from, option.valid_to, core().settings.tz)
    if option.sold_out:
        action: Any = html.Div(
            [html.Strong("Sold out. "), checkout.waitlist_link(option.product_id)],
            className="text-danger book-sold-out",
        )
    else:
        action = html.Button(  # html.Button: dbc's has no aria attributes
            "Add to cart",
            id={"type": "book-add", "product": option.product_id},
            className="btn btn-success btn-sm",
            n_clicks=0,
            **{"aria-describedby": f"book-name-{option.product_id}"},
        )
    return dbc.Card(
        dbc.CardBody(
            [
                html.H3(option.name, className="h6 mb-1", id=f"book-name-{option.product_id}"),
                html.Div([html.Strong(checkout.money(option.price_cents, option.currency)), f" · {term}"]),
                html.Div(
                    f"{option.available} of {option.allowance} permits left",
                    className="small text-muted mb-2",
                ),
                action,
            ]
        ),
        className="mb-2",
        id=f"book-product-{option.product_id}",
    )


def _empty(offer: StandardOffer) -> Any:
    if not offer.sells_standard:
        text = f"{offer.lot_name} does not sell standard permits online."
    elif offer.not_eligible and offer.user_type is None:
        text = "Your account has no user type yet, so no standard permit is sold to it: ask the office."
    elif offer.not_eligible:
        text = f"None of this lot's standard permits is sold to {offer.user_type} accounts."
    else:
        text = "No standard permits of this lot are on sale now."
    return dbc.Alert(text, color="secondary", id="book-none")


@callback(
    Output("book-title", "children"),
    Output("book-missing", "children"),
    Output("book-form", "style"),
    Output("book-options", "children"),
    Output("book-plates-help", "children"),
    *[Output(plate_id, "value") for plate_id in PLATE_IDS],
    Input("book-lot", "data"),
    min_role=Role.USER,
)
def load(lot_id: Any) -> tuple[Any, ...]:
    wanted, user_id = _lot_id(lot_id), current_user_id()
    blank_plates = [None] * MAX_PLATES
    try:
        if wanted is None or user_id is None:
            raise NotFound("That lot does not exist.")
        with session_scope() as session:
            offer = carts.standard_offer(session, user_id, wanted, core().settings.tz, datetime.now(UTC))
    except NotFound:
        missing = html.P(
            ["This lot does not exist. See the ", dcc.Link("Real-Time Map", href="/real-time"), "."]
        )
        return ("Lot not found", missing, HIDDEN, None, None, *blank_plates)
    options = [_option(option) for option in offer.options] or _empty(offer)
    saved = list(offer.saved_plates[:MAX_PLATES])
    help_text = (
        f"Filled in from your saved vehicles. Up to {MAX_PLATES} plates; one of them parks at a time."
        if saved
        else f"Up to {MAX_PLATES} plates; one of them parks at a time."
    )
    plates = saved + [None] * (MAX_PLATES - len(saved))
    return (f"Book a standard permit: {offer.lot_name}", None, {}, options, help_text, *plates)


@callback(
    Output("book-feedback", "children"),
    Input({"type": "book-add", "product": ALL}, "n_clicks"),
    State("book-lot", "data"),
    *[State(plate_id, "value") for plate_id in PLATE_IDS],
    prevent_initial_call=True,
    min_role=Role.USER,
)
def add(clicks: list[Any], lot_id: Any, *plates: Any) -> Any:
    trigger = dash.ctx.triggered_id
    if not isinstance(trigger, dict) or not any(clicks or []):
        return no_update
    user_id = current_user_id()
    assert user_id is not None  # Role.USER
    product_id = require_id(trigger["product"], "permit")
    try:
        with session_scope() as session:
            line = carts.add_standard_item(
                session, user_id, product_id, list(plates), core().settings.tz, datetime.now(UTC)
            )
    except ValidationFailed as exc:
        return validation_alert(exc, LABELS, heading="Not added to your cart:")
    except SoldOut as exc:
        return dbc.Alert([str(exc), " ", checkout.waitlist_link(product_id)], color="warning")
    except DomainError as exc:
        return dbc.Alert(str(exc), color="danger")
    return dbc.Alert(
        [
            f"{line.name} ({line.lot_name}) for {', '.join(line.plates)} is in your cart. ",
            dcc.Link("Go to your cart to pay", href="/cart", className="alert-link"),
        ],
        color="success",
        id="book-added",
    )
