"""The lot editor (Lot Administration > a lot): General, Permits & Prices, Zones & Location.

``/admin/lots/<lot_id>`` edits a lot; ``/admin/lots/new`` adds one (the other two tabs open once it
is saved, because products and zones belong to a lot that exists). The layout holds only the id
from the URL; every value arrives through ``Role.ADMIN`` callbacks, and every save goes through
``dashboard.services.lots``, which checks each field, audits, and says which lot groups' map
figures changed: those are announced after the commit so open maps refresh.

Money is typed in dollars and stored in cents; a permit kind the lot does not sell (General tab)
is flagged beside its products rather than hidden, so an admin sees why a product is not offered.

This module registers the page, lays out the tabs and wires their callbacks; each tab, with its
callbacks, is a module of ``dashboard.components.lot_editor``.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.callbacks import register_page
from dashboard.components.lot_editor import general, products, zones
from dashboard.components.lot_editor.common import NEW, lot_key
from models import Role

register_page(
    __name__,
    path_template="/admin/lots/<lot_id>",
    path="/admin/lots/new",
    title="Edit Lot",
    min_role=Role.ADMIN,
)


def layout(lot_id: str | None = None, created: str | None = None, **_query: str) -> html.Div:
    is_new = lot_id == NEW
    notice = (
        dbc.Alert(
            "Lot added. Now add its permits and prices and its zones.", color="success", dismissable=True
        )
        if created and not is_new
        else None
    )
    return html.Div(
        [
            dcc.Location(id="lotedit-url", refresh="callback-nav"),
            dcc.Store(id="lotedit-id", data=lot_id),
            dcc.Store(id="lotedit-version", data=0),
            dcc.Link("← Lot Administration", href="/admin/lots", className="small"),
            html.H1("Lot", id="lotedit-title", className="h3 mt-1"),
            _qr_link(lot_key(lot_id)),
            notice,
            html.Div(id="lotedit-missing"),
            dbc.Tabs(
                [
                    dbc.Tab(general.tab(is_new), label="General", tab_id="general"),
                    dbc.Tab(
                        products.tab(),
                        label="Permits & Prices",
                        tab_id="products",
                        id="lotedit-tab-products",
                        disabled=is_new,
                    ),
                    dbc.Tab(
                        zones.tab(),
                        label="Zones & Location",
                        tab_id="zones",
                        id="lotedit-tab-zones",
                        disabled=is_new,
                    ),
                ],
                id="lotedit-tabs",
                active_tab="general",
                className="mb-3",
            ),
        ],
        style={"maxWidth": "100%", "overflowX": "hidden"},
    )


def _qr_link(key: int | None) -> Any:
    """The printable QR code of the lot's quick checkout (for the signs at the lot's entrances)."""
    if key is None:
        return None
    return dcc.Link(
        "QR code for the quick checkout", href=f"/admin/lot-qr/{key}", className="small d-block mb-2"
    )


general.register_callbacks()
products.register_callbacks()
zones.register_callbacks()
