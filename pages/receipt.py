"""A receipt (``/receipts/<token>``): the link in the receipt e-mail and on the confirmation,
how a guest finds a purchase again without an account.

The token in the URL is the secret (``payments.get_receipt``); anyone holding the link sees the
purchase, nobody else, and an unknown token says "not found" and nothing more. The layout holds
only the token from the URL; the purchase is read by the ``Role.GUEST`` callback.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html

from dashboard.callbacks import callback, register_page
from dashboard.components.checkout import local, money
from dashboard.services import payments
from dashboard.services.payments import ReceiptView
from dashboard.web import core, session_scope
from models import PaymentStatus, Role

register_page(
    __name__, path_template="/receipts/<token>", path="/receipts/none", title="Receipt", min_role=Role.GUEST
)

STATUS_TEXT = {
    PaymentStatus.SUCCEEDED.value: "Paid",
    PaymentStatus.PARTIALLY_REFUNDED.value: "Paid, partly refunded",
    PaymentStatus.REFUNDED.value: "Refunded",
}


def layout(token: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [dcc.Store(id="receipt-token", data=token), html.Div(id="receipt-content")],
        style={"maxWidth": "48rem"},
    )


def _not_found() -> Any:
    return html.Div(
        [html.H1("Receipt not found", className="h3"), html.P("There is no receipt at this address.")]
    )


def _permits_table(receipt: ReceiptView) -> Any:
    """The permits bought. On a phone the table stacks (``.table-stack``): one block per permit,
    each cell after its column's name, so nothing scrolls sideways at 360 px."""
    tz = core().settings.tz
    columns = ["Permit", "Lot", "Plates", f"Valid ({core().settings.timezone} time)", "Amount"]

    def cell(column: int, content: Any, **extra: Any) -> html.Td:
        return html.Td(content, **{"data-label": columns[column]}, **extra)

    rows = [
        html.Tr(
            [
                cell(0, html.Strong(permit.number)),
                cell(
                    1,
                    [
                        permit.product_name or permit.kind,
                        html.Br(),
                        permit.lot_name or permit.zone_name or "",
                    ],
                ),
                cell(2, ", ".join(permit.plates)),
                cell(3, [local(permit.valid_from, tz), " to ", local(permit.valid_to, tz)]),
                cell(4, money(permit.amount_cents, permit.currency), className="text-end"),
            ],
            className="receipt-permit",
        )
        for permit in receipt.permits
    ]
    head = html.Thead(
        html.Tr(
            [
                html.Th(name, scope="col", className="text-end" if name == "Amount" else None)
                for name in columns
            ]
        )
    )
    return dbc.Table(
        [head, html.Tbody(rows)], bordered=False, size="sm", className="table-stack receipt-permits"
    )


def _content(receipt: ReceiptView) -> Any:
    tz = core().settings.tz
    status = STATUS_TEXT.get(receipt.status, receipt.status.replace("_", " ").capitalize())
    facts = [
        ("Status", status),
        ("Total", money(receipt.amount_cents, receipt.currency)),
        ("Refunded", money(receipt.refunded_cents, receipt.currency) if receipt.refunded_cents else None),
        ("Paid on", local(receipt.paid_at, tz) if receipt.paid_at else None),
        ("Card", f"ending in {receipt.card_last4}" if receipt.card_last4 else None),
        ("E-mail", receipt.payer_email),
    ]
    return html.Div(
        [
            html.H1("Receipt", className="h3"),
            html.Dl(
                [part for label, value in facts if value for part in (html.Dt(label), html.Dd(value))],
                className="receipt-facts",
            ),
            *([html.H2("Permits", className="h5"), _permits_table(receipt)] if receipt.permits else []),
            *(
                [html.H2("Parking tickets paid", className="h5"), _tickets_list(receipt)]
                if receipt.tickets
                else []
            ),
        ]
    )


def _tickets_list(receipt: ReceiptView) -> Any:
    return html.Ul(
        [
            html.Li([html.Strong(number), " · ", money(cents, receipt.currency)], className="receipt-ticket")
            for number, cents in receipt.tickets
        ]
    )


@callback(Output("receipt-content", "children"), Input("receipt-token", "data"), min_role=Role.GUEST)
def show(token: Any) -> Any:
    with session_scope() as session:
        receipt = payments.get_receipt(session, token) if isinstance(token, str) else None
    return _not_found() if receipt is None else _content(receipt)
