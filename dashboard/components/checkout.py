"""What the cart and the quick checkout share: the card form, the payment outcome, money and
times as a buyer reads them, and the provider, mail backend and receipt context of a request.

The card form is static scaffolding (labels, empty inputs, the sandbox's public test cards): no
user data. The Pay button's callback disables it while it runs (``running=``), and the form's
idempotency key makes a second submission that slips through answer with the first one's outcome.

The processor is the one chosen in System Settings (``payment_processor``). With Stripe the card
is entered on Stripe's own page: the page's setup callback hides the card fields, shows a note and
relabels Pay as "Continue to secure payment" (``card_mode``), and Pay sends the buyer to Stripe.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.auth import current_role
from dashboard.services import email, payment_providers, payments, system_settings
from dashboard.services.lots import format_dollars
from dashboard.services.payments import CheckoutResult, ReceiptContext
from dashboard.services.permits import PermitView
from dashboard.web import core, session_scope
from models import Role
from workers import email_delivery

CARD_LABELS = {"card_number": "Card number", "expiry": "Expiry (MM/YY)", "cvc": "CVC"}


def money(cents: int, currency: str | None = None) -> str:
    """An amount with its currency: the one the product or payment carries, else the site's."""
    if currency is None:
        with session_scope() as session:
            currency = system_settings.currency(session)
    return f"${format_dollars(cents)} {currency}"


def local(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%a %Y-%m-%d %H:%M") if moment else ""


def term(valid_from: datetime | None, valid_to: datetime | None, tz: ZoneInfo) -> str:
    """A term's first and last day: a term permit ends at local midnight after its last day."""
    if valid_from is None or valid_to is None:
        return ""
    last = (valid_to.astimezone(tz) - timedelta(days=1)).date()
    return f"{valid_from.astimezone(tz).date().isoformat()} to {last.isoformat()}"


def new_key() -> str:
    """One idempotency key per form shown (see ``payments.checkout``)."""
    return str(uuid.uuid4())


def base_url() -> str:
    """The site's public URL (``PARKOPS_BASE_URL``) for links in e-mails and QR codes; never the
    request's host, which the sender of the request chooses."""
    return core().settings.public_url


HIDDEN = {"display": "none"}
PAY = "Pay"
CONTINUE = "Continue to secure payment"
NOT_SET_UP = "Card payments are not available right now: nothing was charged. Please try again later."


def provider() -> payment_providers.PaymentProvider:
    """The card processor chosen in System Settings; ``DomainError`` (``NotConfigured``) while the
    chosen one lacks its keys."""
    with session_scope() as session:
        name = str(system_settings.get(session, core().secrets, "payment_processor"))
    return payments.provider_for(name, core().db, core().secrets)


def card_mode() -> tuple[dict[str, str], dict[str, str], str]:
    """How the card form shows with the chosen processor: the card fields' style, the hosted
    note's style and the Pay button's label."""
    with session_scope() as session:
        name = str(system_settings.get(session, core().secrets, "payment_processor"))
    if name == "sandbox":
        return {}, HIDDEN, PAY
    return HIDDEN, {}, CONTINUE


def mail_backend() -> email.EmailBackend:
    """The delivery System Settings > Email chooses (the outbox until an admin picks SMTP or
    Mailgun); real delivery is queued and runs in the worker after the caller commits."""
    with session_scope() as session:
        return email_delivery.configured_backend(core(), session)


def receipt_context(name: str | None) -> ReceiptContext:
    with session_scope() as session:
        values = system_settings.get_many(session, core().secrets, ["site_name", "boot_return_location"])
    return ReceiptContext(
        name=name or "there",
        site_name=str(values["site_name"]),
        base_url=base_url(),
        tz=core().settings.tz,
        secrets=core().secrets,
        return_location=str(values["boot_return_location"]),
    )


def ask_again(
    chosen: payments.PaymentProvider, key: str, how: Any, name: str | None
) -> CheckoutResult | None:
    """The payment under the tab's key as the processor holds it now (paid only once it says so):
    closed first when the payer came back through its back link (``how == "cancel"``). None when
    the key has no payment."""
    ask = payments.abandon if how == "cancel" else payments.resume
    return ask(
        core().db,
        chosen,
        key,
        receipt=receipt_context(name),
        backend=mail_backend(),
        now=datetime.now(UTC),
        secrets=core().secrets,
    )


def card_form(prefix: str) -> Any:
    """Card number, expiry and CVC with their labels, and the sandbox's test cards."""

    def field(key: str, label: str, autocomplete: str, placeholder: str, **col: Any) -> Any:
        control_id = f"{prefix}-{key}"
        return dbc.Col(
            [
                dbc.Label(label, html_for=control_id),
                dbc.Input(
                    id=control_id,
                    type="text",
                    inputMode="numeric",
                    autoComplete=autocomplete,
                    placeholder=placeholder,
                    maxLength=23 if key == "card-number" else 7,
                ),
            ],
            xs=12,
            className="mb-3",
            **col,
        )

    cards = [
        html.Li([html.Code(" ".join(number[i : i + 4] for i in range(0, 16, 4))), f" {outcome}"])
        for number, outcome in payments.TEST_CARDS.items()
    ]
    fields = html.Div(
        [
            dbc.Row(
                [
                    field(
                        "card-number", CARD_LABELS["card_number"], "cc-number", "4242 4242 4242 4242", md=6
                    ),
                    field("card-expiry", CARD_LABELS["expiry"], "cc-exp", "MM/YY", sm=6, md=3),
                    field("card-cvc", CARD_LABELS["cvc"], "cc-csc", "123", sm=6, md=3),
                ]
            ),
            html.Details(
                [
                    html.Summary("Test cards (sandbox payments: no real card is charged)"),
                    html.P("Any future expiry date and any 3-digit CVC:", className="mb-1"),
                    html.Ul(cards, className="mb-0"),
                ],
                className="small text-muted mb-3",
                id=f"{prefix}-test-cards",
            ),
        ],
        id=f"{prefix}-card-fields",
    )
    hosted = html.P(
        "You will enter your card on the card processor's secure payment page; ParkOps never sees"
        " your card number.",
        id=f"{prefix}-hosted-note",
        className="text-muted",
        style=HIDDEN,
    )
    return html.Div([fields, hosted])


def permit_list(items: tuple[PermitView, ...], tz: ZoneInfo) -> Any:
    return html.Ul(
        [
            html.Li(
                [
                    html.Strong(permit.number, className="checkout-permit-number"),
                    f" · {permit.product_name or permit.kind} · {permit.lot_name or permit.zone_name or ''}",
                    html.Br(),
                    f"{', '.join(permit.plates)} · valid {local(permit.valid_from, tz)} to "
                    f"{local(permit.valid_to, tz)}",
                ]
            )
            for permit in items
        ],
        className="mb-2",
    )


def waitlist_link(product_id: int | None) -> Any:
    """What a buyer of a sold-out product can do: join its waitlist, or (a guest, who cannot) log
    in to join it or look for another lot with space on the map."""
    if product_id is None:
        return None
    join = f"/waitlist/join/{product_id}"
    if current_role() > Role.GUEST:
        return dcc.Link("Join the waitlist", href=join, className="alert-link")
    return html.Span(
        [
            dcc.Link("Log in", href="/login?" + urlencode({"next": join}), className="alert-link"),
            " to join the waitlist, or find another lot with space on the ",
            dcc.Link("Real-Time Map", href="/real-time", className="alert-link"),
            ".",
        ]
    )


def _paid_for(result: CheckoutResult, tz: ZoneInfo) -> list[Any]:
    parts: list[Any] = []
    if result.permits:
        one = len(result.permits) == 1
        parts += [
            html.P("Your permit is confirmed:" if one else "Your permits are confirmed:"),
            permit_list(result.permits, tz),
        ]
    if result.tickets:
        parts += [
            html.P("Paid:" if parts else "These tickets are paid:"),
            html.Ul([html.Li(number, className="checkout-paid-ticket") for number in result.tickets]),
        ]
    return parts


def outcome(result: CheckoutResult, tz: ZoneInfo, sold_out_product: int | None = None) -> Any:
    """What the buyer reads after pressing Pay."""
    if result.paid:
        receipt = f"/receipts/{result.receipt_token}" if result.receipt_token else None
        return dbc.Alert(
            [
                html.H2("Payment received", className="h5"),
                *_paid_for(result, tz),
                html.P(
                    [
                        "A receipt was sent by e-mail. ",
                        dcc.Link(
                            "View your receipt",
                            href=receipt,
                            className="alert-link",
                            id="checkout-receipt-link",
                        )
                        if receipt
                        else None,
                    ],
                    className="mb-0",
                ),
            ],
            color="success",
            id="checkout-confirmation",
        )
    if result.status == "sold_out":
        link = waitlist_link(sold_out_product)
        return dbc.Alert(
            [result.message, " Nothing was charged. ", link], color="warning", id="checkout-sold-out"
        )
    if result.status == "redirect":
        # Normally the page goes on to the processor at once; the link is there if it does not.
        return dbc.Alert(
            [result.message, " ", html.A(CONTINUE, href=result.redirect_url, className="alert-link")],
            color="info",
            id="checkout-redirecting",
        )
    if result.status in ("in_progress", "busy"):
        # Never "not charged": the card may have been charged; the same form finds the payment.
        color = "info" if result.status == "in_progress" else "warning"
        back = (
            [
                " ",
                html.A("Return to the secure payment page", href=result.redirect_url, className="alert-link"),
            ]
            if result.redirect_url
            else []
        )
        return dbc.Alert([result.message, *back], color=color, id="checkout-confirming")
    return dbc.Alert(
        [
            html.Strong("Not paid: "),
            result.message,
            " " if result.status == "failed" else " Your card was not charged; check it or try another.",
        ],
        color="danger",
        id="checkout-declined",
    )
