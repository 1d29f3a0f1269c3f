"""A boot's printable label (admins, ``/admin/boot-label/<boot id>``): its name and a QR code that
opens the Boot Device Report filtered to that boot, for staff checking a boot in or out. Printed
on the same 72 mm paper as tickets (``assets/ticket-print.css``). It never shows the release code.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, dcc, html

from dashboard.callbacks import callback, register_page
from dashboard.components.checkout import base_url
from dashboard.components.enforcement import boots_off_notice, boots_on
from dashboard.inputs import as_id
from dashboard.services import boots, qr
from dashboard.services.errors import NotFound
from dashboard.web import core, session_scope
from models import Role

register_page(
    __name__,
    path_template="/admin/boot-label/<boot_id>",
    path="/admin/boot-label/none",
    title="Boot Label",
    min_role=Role.ADMIN,
)


def layout(boot_id: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Store(id="bootlabel-id", data=boot_id),
            html.Div(
                [
                    dcc.Link("← Setup Boot Devices", href="/admin/boots", className="small"),
                    dbc.Button(
                        "Print",
                        id="bootlabel-print",
                        color="primary",
                        size="sm",
                        n_clicks=0,
                        className="ms-auto",
                    ),
                ],
                className="d-flex align-items-center gap-2 mb-3 d-print-none",
                style={"maxWidth": "72mm", "margin": "0 auto"},
            ),
            html.Div(id="bootlabel-content"),
            html.Span(id="bootlabel-printed", hidden=True),
        ]
    )


def label_url(base: str, boot_id: int) -> str:
    return f"{base.rstrip('/')}/admin/boot-report?{urlencode({'boot': boot_id})}"


@callback(Output("bootlabel-content", "children"), Input("bootlabel-id", "data"), min_role=Role.ADMIN)
def show(raw: str | None) -> Any:
    """``raw`` is the address's id, as text: anything but an id ParkOps can hold is "not found"."""
    if not boots_on():
        return boots_off_notice()
    boot_id = as_id(raw)
    try:
        if boot_id is None:
            raise NotFound("That boot does not exist.")
        with session_scope() as session:
            boot = boots.get_boot(session, core().secrets, boot_id)
    except NotFound as exc:
        return html.H1(str(exc), className="h4")
    url = label_url(base_url(), boot.id)
    return html.Div(
        [
            html.Div(boot.name, className="fs-4 fw-bold", id="bootlabel-name"),
            html.Img(src=qr.svg_data_uri(url, scale=4), alt=f"QR code: {url}", id="bootlabel-qr"),
            html.Div("Property of Parking Services. Return to the parking office.", className="small"),
        ],
        className="boot-label",
    )


dash.clientside_callback(
    ClientsideFunction(namespace="enforcement", function_name="print"),
    Output("bootlabel-printed", "children"),
    Input("bootlabel-print", "n_clicks"),
    prevent_initial_call=True,
)
