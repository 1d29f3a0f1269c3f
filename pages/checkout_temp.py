"""Quick checkout for a temporary permit (``/checkout/temp/<lot id>``): everything on one page, no
cart, no account: what the lot's QR code and the lot group page's temporary permit button open.

Pick a temporary permit (hourly, daily or fixed), when it starts (now, or a time today or tomorrow
in the site's time zone), how long, the plate and an e-mail for the receipt; the price and what is
left update as the choices change (``quick_checkout.quote_order``); then the card and Pay. Signed-in
users find their e-mail filled in.

The layout holds only the lot id from the URL and empty controls. The ``Role.GUEST`` setup callback
reads the lot and issues the form's idempotency key; Pay runs ``quick_checkout.buy`` and is disabled
while it runs. The key lives in the tab's session storage until the buyer has been told a final
outcome (paid, declined, not charged), then a new one is issued. So a buyer told "being confirmed",
or whose answer never arrived (a dropped connection, a closed laptop), who reloads the page or
presses Pay again, reaches the same payment: setup shows its outcome, reconciled with the card
processor (``payments.resume``), and nothing is charged twice.

With Stripe chosen as the processor (System Settings), the card fields give way to "Continue to
secure payment": Pay reserves the permit and sends the browser to Stripe's payment page, which
sends it back here with ``?payment=return`` (setup shows the outcome from what Stripe holds: paid
only once Stripe says so) or ``?payment=cancel`` (the Stripe page is closed and the hold released,
``payments.abandon``). The key stays in the tab meanwhile, so the return finds the payment.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html, no_update
from flask_login import current_user

from dashboard.callbacks import callback, register_page
from dashboard.components import checkout
from dashboard.components.feedback import validation_alert
from dashboard.inputs import as_id
from dashboard.services import payments, permits, quick_checkout
from dashboard.services.errors import DomainError, NotFound, ValidationFailed
from dashboard.services.quick_checkout import LATER, NOW, TODAY, TOMORROW, TemporaryOffer, TemporaryOrder
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(
    __name__,
    path_template="/checkout/temp/<lot_id>",
    path="/checkout/temp/none",
    title="Temporary Permit",
    min_role=Role.GUEST,
)

LABELS = {
    "product": "Permit",
    "start": "Start",
    "day": "Day",
    "at": "Start time",
    "duration": "How long",
    "plate": "Licence plate",
    "email": "E-mail",
    "form": "Form",
    **checkout.CARD_LABELS,
}
HIDDEN = {"display": "none"}
UNTIL_MIDNIGHT = "day"
RETURNS = ("return", "cancel")  # how Stripe's page sends the buyer back (``payments.checkout``)


def layout(lot_id: str | None = None, payment: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Store(id="checkout-lot", data=lot_id),
            dcc.Store(id="checkout-return", data=payment if payment in RETURNS else None),
            dcc.Store(id="checkout-key", storage_type="session"),
            dcc.Location(id="checkout-go", refresh=True),
            html.H1("Temporary permit", id="checkout-title", className="h3"),
            html.Div(id="checkout-missing"),
            html.Div(_form(), id="checkout-form", style=HIDDEN),
            html.Div(id="checkout-result", className="mt-3", role="status"),
        ],
        style={"maxWidth": "44rem"},
    )


def _form() -> Any:
    return html.Div(
        [
            html.Fieldset(
                [
                    html.Legend("Permit", className="form-label fs-6 fw-semibold"),
                    dbc.RadioItems(id="checkout-product", options=[]),
                ],
                className="mb-3",
            ),
            html.Fieldset(
                [
                    html.Legend("Start", className="form-label fs-6 fw-semibold"),
                    dbc.RadioItems(
                        id="checkout-start",
                        options=[
                            {"label": "Now", "value": NOW},
                            {"label": "Later today or tomorrow", "value": LATER},
                        ],
                        value=NOW,
                        inline=True,
                    ),
                    dbc.Collapse(
                        dbc.Row(
                            [
                                dbc.Col(
                                    [
                                        dbc.Label("Day", html_for="checkout-day"),
                                        dbc.Select(
                                            id="checkout-day",
                                            options=[
                                                {"label": "Today", "value": TODAY},
                                                {"label": "Tomorrow", "value": TOMORROW},
                                            ],
                                            value=TODAY,
                                        ),
                                    ],
                                    xs=6,
                                ),
                                dbc.Col(
                                    [
                                        dbc.Label("Start time", html_for="checkout-at"),
                                        dbc.Input(id="checkout-at", type="time"),
                                    ],
                                    xs=6,
                                ),
                            ],
                            className="mt-2",
                        ),
                        id="checkout-later",
                        is_open=False,
                    ),
                    dbc.FormText(id="checkout-tz"),
                ],
                className="mb-3",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            dbc.Label("How long", html_for="checkout-duration"),
                            dbc.Select(id="checkout-duration", options=[]),
                        ],
                        xs=12,
                        md=4,
                        className="mb-3",
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Licence plate", html_for="checkout-plate"),
                            dbc.Input(id="checkout-plate", type="text", maxLength=16, autoComplete="off"),
                        ],
                        xs=12,
                        md=4,
                        className="mb-3",
                    ),
                    dbc.Col(
                        [
                            dbc.Label("E-mail (for the receipt)", html_for="checkout-email"),
                            dbc.Input(id="checkout-email", type="email", maxLength=254, autoComplete="email"),
                        ],
                        xs=12,
                        md=4,
                        className="mb-3",
                    ),
                ]
            ),
            html.Div(id="checkout-quote", className="mb-3", **{"aria-live": "polite"}),
            checkout.card_form("checkout"),
            dbc.Button(checkout.PAY, id="checkout-pay", color="primary", n_clicks=0),
        ]
    )


def _lot_id(value: Any) -> int | None:
    return as_id(value)


def _offer(lot_id: Any) -> TemporaryOffer | None:
    wanted = _lot_id(lot_id)
    if wanted is None:
        return None
    try:
        with session_scope() as session:
            return quick_checkout.temporary_offer(session, wanted)
    except NotFound:
        return None


def _option_label(option: quick_checkout.TemporaryOption) -> str:
    return f"{option.name}: {checkout.money(option.price_cents, option.currency)} {option.unit}"


@callback(
    Output("checkout-title", "children"),
    Output("checkout-missing", "children"),
    Output("checkout-form", "style"),
    Output("checkout-product", "options"),
    Output("checkout-product", "value"),
    Output("checkout-email", "value"),
    Output("checkout-key", "data"),
    Output("checkout-tz", "children"),
    Output("checkout-result", "children"),
    Output("checkout-card-fields", "style"),
    Output("checkout-hosted-note", "style"),
    Output("checkout-pay", "children"),
    Input("checkout-lot", "data"),
    State("checkout-key", "data"),
    State("checkout-return", "data"),
    min_role=Role.GUEST,
)
def setup(lot_id: Any, stored_key: Any, returned: Any) -> tuple[Any, ...]:
    earlier, key, paid = _earlier(stored_key, returned)
    mode = checkout.card_mode()
    offer = _offer(lot_id)
    if offer is None:
        missing = html.P(
            ["This lot does not exist. See the ", dcc.Link("Real-Time Map", href="/real-time"), "."]
        )
        return "Lot not found", missing, HIDDEN, [], None, None, key, "", earlier, *mode
    title = f"Temporary permit: {offer.lot_name}"
    if not offer.options:
        missing = dbc.Alert(
            [
                f"{offer.lot_name} sells no temporary permits online now. The ",
                dcc.Link("Real-Time Map", href="/real-time"),
                " shows the lots that do.",
            ],
            color="secondary",
        )
        return title, missing, HIDDEN, [], None, None, key, "", earlier, *mode
    options = [{"label": _option_label(o), "value": o.product_id} for o in offer.options]
    address = current_user.email if current_user.is_authenticated else None
    tz_note = f"Times are {core().settings.timezone} time."
    form = HIDDEN if paid else {}  # the confirmation, with "buy another"
    return title, None, form, options, offer.options[0].product_id, address, key, tz_note, earlier, *mode


def _earlier(stored_key: Any, returned: Any = None) -> tuple[Any, str, bool]:
    """What became of the payment under the key this tab kept (shown again: the buyer may never
    have seen it), and the key for the form: the same while that payment is unresolved or the
    key unused, a new one once it has a final outcome. Back from Stripe's page through its back
    link (``returned == "cancel"``), the payment there is closed first."""
    if not isinstance(stored_key, str) or not stored_key:
        return None, checkout.new_key(), False
    name = current_user.name if current_user.is_authenticated else None
    try:
        provider = checkout.provider()
    except DomainError as exc:
        return dbc.Alert(str(exc), color="warning"), stored_key, False
    result = checkout.ask_again(provider, stored_key, returned, name)
    if result is None:
        return None, stored_key, False
    shown = checkout.outcome(result, core().settings.tz)
    if result.paid:
        return [shown, _buy_another(result)], checkout.new_key(), True
    return shown, checkout.new_key() if result.settled else stored_key, False


def _buy_another(result: payments.CheckoutResult) -> Any:
    lot_id = result.permits[0].lot_id if result.permits else None
    if lot_id is None:
        return None
    # A full load: a link to the page already shown would not run the setup again.
    return html.P(dcc.Link("Buy another permit for this lot", href=f"/checkout/temp/{lot_id}", refresh=True))


@callback(
    Output("checkout-duration", "options"),
    Output("checkout-duration", "value"),
    Input("checkout-product", "value"),
    State("checkout-lot", "data"),
    min_role=Role.GUEST,
)
def durations(product_id: Any, lot_id: Any) -> tuple[list[dict[str, str]], str | None]:
    offer = _offer(lot_id)
    option = next((o for o in offer.options if o.product_id == product_id), None) if offer else None
    if option is None:
        return [], None
    if not option.durations:
        return [{"label": "Until the end of the day", "value": UNTIL_MIDNIGHT}], UNTIL_MIDNIGHT
    choices = [{"label": permits.duration_text(m), "value": str(m)} for m in option.durations]
    return choices, choices[0]["value"]


@callback(
    Output("checkout-later", "is_open"),
    Input("checkout-start", "value"),
    min_role=Role.GUEST,
)
def later(start: Any) -> bool:
    return start == LATER


def _order(
    lot_id: Any, product: Any, start: Any, day: Any, at: Any, duration: Any, **more: Any
) -> TemporaryOrder:
    return TemporaryOrder(
        lot_id=_lot_id(lot_id), product_id=product, start=start, day=day, at=at, duration=duration, **more
    )


@callback(
    Output("checkout-quote", "children"),
    Input("checkout-product", "value"),
    Input("checkout-start", "value"),
    Input("checkout-day", "value"),
    Input("checkout-at", "value"),
    Input("checkout-duration", "value"),
    State("checkout-lot", "data"),
    min_role=Role.GUEST,
)
def price(product: Any, start: Any, day: Any, at: Any, duration: Any, lot_id: Any) -> Any:
    if product is None or _lot_id(lot_id) is None:
        return None
    tz = core().settings.tz
    try:
        with session_scope() as session:
            quote = quick_checkout.quote_order(
                session, _order(lot_id, product, start, day, at, duration), tz, datetime.now(UTC)
            )
    except ValidationFailed as exc:
        return html.P(
            "; ".join(f"{LABELS.get(k, k)}: {v}" for k, v in exc.errors.items()), className="text-muted small"
        )
    except NotFound:
        return None
    valid = f"Valid {checkout.local(quote.valid_from, tz)} to {checkout.local(quote.valid_to, tz)}"
    if quote.sold_out:
        return dbc.Alert(
            [
                f"{quote.product_name} at {quote.lot_name} is sold out for that time. ",
                checkout.waitlist_link(quote.product_id),
            ],
            color="warning",
            id="checkout-quote-sold-out",
        )
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(
                    [html.Span("Price: "), html.Strong(checkout.money(quote.amount_cents, quote.currency))],
                    id="checkout-price",
                ),
                html.Div(valid, className="small"),
                html.Div(f"{quote.available} spaces left for that time", className="small text-muted"),
            ]
        )
    )


@callback(
    Output("checkout-result", "children", allow_duplicate=True),
    Output("checkout-key", "data", allow_duplicate=True),
    Output("checkout-form", "style", allow_duplicate=True),
    Output("checkout-go", "href"),
    Input("checkout-pay", "n_clicks"),
    State("checkout-lot", "data"),
    State("checkout-product", "value"),
    State("checkout-start", "value"),
    State("checkout-day", "value"),
    State("checkout-at", "value"),
    State("checkout-duration", "value"),
    State("checkout-plate", "value"),
    State("checkout-email", "value"),
    State("checkout-card-number", "value"),
    State("checkout-card-expiry", "value"),
    State("checkout-card-cvc", "value"),
    State("checkout-key", "data"),
    running=[(Output("checkout-pay", "disabled"), True, False)],
    prevent_initial_call=True,
    min_role=Role.GUEST,
)
def pay(
    clicks: Any,
    lot_id: Any,
    product: Any,
    start: Any,
    day: Any,
    at: Any,
    duration: Any,
    plate: Any,
    address: Any,
    number: Any,
    expiry: Any,
    cvc: Any,
    key: Any,
) -> tuple[Any, Any, Any, Any]:
    if not clicks or _lot_id(lot_id) is None:
        return no_update, no_update, no_update, no_update
    order = _order(lot_id, product, start, day, at, duration, plate=plate, email=address)
    name = current_user.name if current_user.is_authenticated else None
    try:
        provider = checkout.provider()
    except DomainError:
        return dbc.Alert(checkout.NOT_SET_UP, color="warning"), no_update, no_update, no_update
    try:
        result = quick_checkout.buy(
            core().db,
            provider,
            order,
            number,
            expiry,
            cvc,
            idempotency_key=key if isinstance(key, str) else "",
            user_id=current_user_id(),
            receipt=checkout.receipt_context(name),
            backend=checkout.mail_backend(),
            now=datetime.now(UTC),
            return_url=f"{checkout.base_url().rstrip('/')}/checkout/temp/{_lot_id(lot_id)}",
            secrets=core().secrets,
        )
    except ValidationFailed as exc:
        return validation_alert(exc, LABELS, heading="Not paid yet:"), no_update, no_update, no_update
    except NotFound:
        gone = dbc.Alert("This lot does not sell permits any more.", color="warning")
        return gone, no_update, no_update, no_update
    chosen = product if isinstance(product, int) else None
    shown = checkout.outcome(result, core().settings.tz, sold_out_product=chosen)
    if result.status == "redirect":  # on to the processor's page; the key finds it on return
        return shown, no_update, no_update, result.redirect_url
    # A final answer ends this form's key; "being confirmed" keeps it, so Pay or a reload finds
    # the same payment.
    key = checkout.new_key() if result.settled else no_update
    if result.paid:
        return [shown, _buy_another(result)], key, HIDDEN, no_update
    return shown, key, no_update, no_update
