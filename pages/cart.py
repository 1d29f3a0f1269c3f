"""Your cart (``/cart``): the standard permits a user added on the booking pages, and paying them.

Each item shows its term, plates and price as they would be sold now, and why it cannot be sold
if it cannot (sold out: with "Join the waitlist"; no longer sold to your user type; the term has
ended), so the user removes it before paying (``carts.cart_view``). Paying is one card payment for
the whole cart (``carts.checkout_cart``).

The layout is empty scaffolding. The ``Role.USER`` refresh renders the items and, with the card
form, the form's idempotency key and the total it shows (a changed total is refused, not
charged). Pay is disabled while it runs; a double submission that slips through carries the same
key and is charged once. A decline or a processor error keeps the form and issues a new key. A
payment for the cart left pending (its answer was lost, or it is being confirmed) is reconciled
with the card processor when the cart is shown again (``carts.interrupted_payment``): charged,
its confirmation shows and the cart is empty; unknown yet, it says so and offers no Pay button.

With Stripe as the processor, the card fields give way to "Continue to secure payment", which
sends the browser to Stripe's page; it comes back to ``/cart?payment=return`` (the refresh shows
the outcome, from what Stripe holds) or ``/cart?payment=cancel`` (Stripe's page is closed and the
permits' holds released, ``carts.interrupted_payment(leaving=True)``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update
from flask_login import current_user

from dashboard.callbacks import callback, register_page
from dashboard.components import checkout
from dashboard.components.feedback import validation_alert
from dashboard.inputs import require_id
from dashboard.services import carts, payment_providers
from dashboard.services.carts import CartCheckout, CartLine, CartView
from dashboard.services.errors import DomainError, ValidationFailed
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(__name__, path="/cart", title="Cart", min_role=Role.USER)

HIDDEN = {"display": "none"}
LABELS = {"items": "Cart", "form": "Form", **checkout.CARD_LABELS}


def layout(payment: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Your cart", className="h3"),
            dcc.Store(id="cart-return", data=payment if payment in ("return", "cancel") else None),
            dcc.Location(id="cart-go", refresh=True),
            dcc.Store(id="cart-version", data=0),
            dcc.Store(id="cart-key"),
            dcc.Store(id="cart-total"),
            html.Div(id="cart-items"),
            html.Div(id="cart-result", className="mt-3", role="status"),
            html.Div(
                [
                    html.H2("Pay by card", className="h5 mt-3"),
                    checkout.card_form("cart"),
                    dbc.Button(checkout.PAY, id="cart-pay", color="primary", n_clicks=0),
                ],
                id="cart-pay-section",
                style=HIDDEN,
            ),
        ],
        style={"maxWidth": "52rem"},
    )


def _user_id() -> int:
    user_id = current_user_id()
    assert user_id is not None  # Role.USER
    return user_id


def _line(line: CartLine) -> Any:
    problem: list[Any] = []
    if line.problem:
        problem = [
            html.Div(
                [html.Strong("Cannot be sold: "), line.problem, ". "]
                + ([checkout.waitlist_link(line.product_id)] if line.sold_out else []),
                className="text-danger small cart-problem",
            )
        ]
    return dbc.ListGroupItem(
        dbc.Row(
            [
                dbc.Col(
                    [
                        html.Div(html.Strong(line.name)),
                        html.Div(line.lot_name, className="small"),
                        html.Div(
                            f"Term {checkout.term(line.valid_from, line.valid_to, core().settings.tz)}",
                            className="small",
                        ),
                        html.Div(f"Plates: {', '.join(line.plates)}", className="small"),
                        *problem,
                    ],
                    xs=12,
                    sm=7,
                ),
                dbc.Col(
                    checkout.money(line.amount_cents, line.currency), xs=6, sm=3, className="fw-semibold"
                ),
                dbc.Col(
                    dbc.Button(
                        "Remove",
                        id={"type": "cart-remove", "item": line.item_id},
                        color="outline-danger",
                        size="sm",
                        n_clicks=0,
                        title=f"Remove {line.name} from your cart",
                    ),
                    xs=6,
                    sm=2,
                    className="text-end",
                ),
            ],
            className="align-items-center g-2",
        ),
        className="cart-line",
        id=f"cart-line-{line.item_id}",
    )


def _items(view: CartView) -> Any:
    if not view.lines:
        return html.P(
            ["Your cart is empty. Find a permit on the ", dcc.Link("Real-Time Map", href="/real-time"), "."],
            id="cart-empty",
        )
    parts: list[Any] = [
        dbc.ListGroup([_line(line) for line in view.lines]),
        html.P(
            ["Total: ", html.Strong(checkout.money(view.total_cents, view.currency), id="cart-total-text")],
            className="mt-2 fs-5",
        ),
    ]
    if not view.payable:
        parts.append(dbc.Alert("Remove the items that cannot be sold before paying.", color="warning"))
    return html.Div(parts)


@callback(
    Output("cart-items", "children"),
    Output("cart-pay-section", "style"),
    Output("cart-key", "data"),
    Output("cart-total", "data"),
    Output("cart-card-fields", "style"),
    Output("cart-hosted-note", "style"),
    Output("cart-pay", "children"),
    Input("cart-version", "data"),
    State("cart-return", "data"),
    min_role=Role.USER,
)
def refresh(version: Any, returned: Any) -> tuple[Any, ...]:
    now = datetime.now(UTC)
    mode = checkout.card_mode()
    try:
        provider = checkout.provider()
    except DomainError as exc:
        return dbc.Alert(str(exc), color="warning"), HIDDEN, None, None, *mode
    interrupted = carts.interrupted_payment(
        core().db,
        provider,
        _user_id(),
        receipt=checkout.receipt_context(current_user.name),
        backend=checkout.mail_backend(),
        now=now,
        leaving=returned == "cancel" and not version,  # only on arrival from Stripe's back link
        secrets=core().secrets,
    )
    with session_scope() as session:
        view = carts.cart_view(session, _user_id(), core().settings.tz, now)
    if interrupted is not None:  # paid (the cart is closed) or still being confirmed: no Pay
        shown = [checkout.outcome(interrupted, core().settings.tz), _items(view)]
        return shown, HIDDEN, None, None, *mode
    if not view.payable:
        return _items(view), HIDDEN, None, None, *mode
    return _items(view), {}, checkout.new_key(), view.total_cents, *mode


@callback(
    Output("cart-version", "data", allow_duplicate=True),
    Output("cart-result", "children", allow_duplicate=True),
    Input({"type": "cart-remove", "item": ALL}, "n_clicks"),
    State("cart-version", "data"),
    prevent_initial_call=True,
    min_role=Role.USER,
)
def remove(clicks: list[Any], version: Any) -> tuple[Any, Any]:
    trigger = dash.ctx.triggered_id
    if not isinstance(trigger, dict) or not any(clicks or []):
        return no_update, no_update
    try:
        with session_scope() as session:
            carts.remove_item(session, _user_id(), require_id(trigger["item"], "cart item"))
    except DomainError as exc:
        return no_update, dbc.Alert(str(exc), color="warning")
    return (version or 0) + 1, None


def _outcome(outcome: CartCheckout) -> Any:
    tz = core().settings.tz
    if outcome.payment is not None and outcome.status != "sold_out":
        return checkout.outcome(outcome.payment, tz)
    waitlist = [checkout.waitlist_link(line.product_id) for line in outcome.problems if line.sold_out]
    color = "warning" if outcome.status in ("sold_out", "unavailable", "changed") else "danger"
    return dbc.Alert(
        [outcome.message, " ", *waitlist], color=color, id=f"cart-{outcome.status.replace('_', '-')}"
    )


@callback(
    Output("cart-result", "children"),
    Output("cart-key", "data", allow_duplicate=True),
    Output("cart-version", "data", allow_duplicate=True),
    Output("cart-go", "href"),
    Input("cart-pay", "n_clicks"),
    State("cart-card-number", "value"),
    State("cart-card-expiry", "value"),
    State("cart-card-cvc", "value"),
    State("cart-key", "data"),
    State("cart-total", "data"),
    State("cart-version", "data"),
    running=[(Output("cart-pay", "disabled"), True, False)],
    prevent_initial_call=True,
    min_role=Role.USER,
)
def pay(
    clicks: Any, number: Any, expiry: Any, cvc: Any, key: Any, total: Any, version: Any
) -> tuple[Any, ...]:
    if not clicks:
        return no_update, no_update, no_update, no_update
    tz = core().settings.tz
    now = datetime.now(UTC)
    try:
        provider = checkout.provider()
        hosted = payment_providers.is_hosted(provider)
        card = (
            None if hosted else payment_providers.clean_card(number, expiry, cvc, now.astimezone(tz).date())
        )
        outcome = carts.checkout_cart(
            core().db,
            provider,
            _user_id(),
            card,
            key if isinstance(key, str) else "",
            receipt=checkout.receipt_context(current_user.name),
            backend=checkout.mail_backend(),
            now=now,
            expected_total_cents=total if isinstance(total, int) else None,
            return_url=f"{checkout.base_url().rstrip('/')}/cart",
            secrets=core().secrets,
        )
    except ValidationFailed as exc:
        return validation_alert(exc, LABELS, heading="Not paid yet:"), no_update, no_update, no_update
    except DomainError as exc:
        return dbc.Alert(str(exc), color="danger"), no_update, no_update, no_update
    shown = _outcome(outcome)
    if outcome.payment is not None and outcome.payment.status == "redirect":
        return shown, no_update, no_update, outcome.payment.redirect_url
    if outcome.status in ("declined", "failed"):
        return shown, checkout.new_key(), no_update, no_update
    if outcome.status in ("in_progress", "busy"):  # the same form (key) finds the same payment
        return shown, no_update, no_update, no_update
    return shown, no_update, (version or 0) + 1, no_update
