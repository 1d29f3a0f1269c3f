"""A lot's QR code, to print and post at the lot (``/admin/lot-qr/<lot id>``): it opens the lot's
quick checkout (``/checkout/temp/<lot id>``), where a driver buys a temporary permit on the spot.

The page is made to be printed: the lot's name, the code, the URL in text (for anyone whose camera
will not read it) and a Print button (``window.print`` in the browser); the navigation and the
button are left off the paper. The URL is absolute: ``PARKOPS_BASE_URL``, else the host the
manager reached (``qr.checkout_url``).

Not under ``/admin/lots/``: Dash matches path templates with ``fnmatch``, whose ``*`` crosses
slashes, so the lot editor's ``/admin/lots/<lot_id>`` would also claim ``/admin/lots/5/qr``.
"""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html

from dashboard.callbacks import callback, register_page
from dashboard.components.checkout import base_url
from dashboard.inputs import as_id
from dashboard.services import lots, qr
from dashboard.services.errors import NotFound
from dashboard.web import session_scope
from models import Role

register_page(
    __name__,
    path_template="/admin/lot-qr/<lot_id>",
    path="/admin/lot-qr/none",
    title="Lot QR Code",
    min_role=Role.MANAGER,
)


def layout(lot_id: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Store(id="lotqr-lot", data=lot_id),
            html.Div(
                [
                    dcc.Link("← Lot Administration", href="/admin/lots", className="small"),
                    dbc.Button("Print", id="lotqr-print", color="primary", n_clicks=0, className="ms-auto"),
                ],
                className="d-flex align-items-center gap-2 mb-3 d-print-none",
            ),
            html.Div(id="lotqr-content", className="text-center"),
            html.Span(id="lotqr-printed", hidden=True),
        ],
        style={"maxWidth": "40rem", "margin": "0 auto"},
    )


def _lot_id(value: Any) -> int | None:
    return as_id(value)


@callback(Output("lotqr-content", "children"), Input("lotqr-lot", "data"), min_role=Role.MANAGER)
def show(lot_id: Any) -> Any:
    wanted = _lot_id(lot_id)
    try:
        if wanted is None:
            raise NotFound("That lot does not exist.")
        with session_scope() as session:
            lot = lots.get_lot(session, wanted)
    except NotFound:
        return html.Div(
            [html.H1("Lot not found", className="h3"), dcc.Link("Lot Administration", href="/admin/lots")]
        )
    url = qr.checkout_url(base_url(), lot.id)
    image = qr.svg_data_uri(url)
    notes = []
    if not lot.sells_temporary or not lot.is_active:
        notes.append(
            dbc.Alert(
                f"{lot.name} does not sell temporary permits now: the code opens a page that says so.",
                color="warning",
                className="d-print-none",
            )
        )
    return html.Div(
        [
            *notes,
            html.H1(lot.name, className="display-6", id="lotqr-name"),
            html.P("Scan to buy a parking permit", className="lead"),
            html.Img(
                src=image,
                alt=f"QR code: {url}",
                id="lotqr-code",
                style={"width": "min(100%, 22rem)", "height": "auto", "imageRendering": "pixelated"},
            ),
            html.P(html.Code(url, id="lotqr-url", style={"wordBreak": "break-all"}), className="mt-3 fs-5"),
            html.A(
                "Download the code (SVG)",
                href=image,
                download=f"lot-{lot.id}-qr.svg",
                className="small d-print-none",
            ),
        ]
    )


dash.clientside_callback(
    "function (clicks) { if (clicks) { window.print(); } return ''; }",
    Output("lotqr-printed", "children"),
    Input("lotqr-print", "n_clicks"),
    prevent_initial_call=True,
)
