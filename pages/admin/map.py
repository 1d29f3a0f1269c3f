"""Real-Time Map (Admin): one pin per lot group, and in its popup both figures the seed keeps apart.

The seed's admin map popup shows the group's physical figure (Mistall, else Parking Logix, else the
live sensors) and, below it, the lot info: permits sold against each lot's allowance. The two are
meant to differ: one is what is physically parked, the other what has been sold, so a physically
empty lot that is sold out can be given a larger allowance. Each block is labelled so an admin
reads them that way rather than as a bug. A group without sensor data shows the permit count in
place of the physical one, as the seed does, and says so.

The layout is empty scaffolding (a map without pins, opening where the pins are, and an empty
table). The browser draws the pins, popups and the text table beside the map (for screen-reader and
keyboard users, who cannot open a map popup) from the staff body ``/live/lot-status.json``
(``dashboard.map_routes``, ``dashboard.services.lot_status``, ``assets/staff_live.js``), which the
officers' Lot Status page shares, on every pushed occupancy change and on the poll
(``dashboard.components.live``). Pins are updated in place, so an open popup stays open and the map
stays where the admin moved it.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
import dash_leaflet as dl
from dash import ClientsideFunction, Output, State, html

from dashboard.callbacks import register_page
from dashboard.components.live import live_inputs, live_updates, register_live_updates
from dashboard.components.realtime_map import POPUP_PAD_TOP_LEFT, opening_view
from dashboard.map_routes import staff_opening_bounds
from dashboard.services.lot_status import DIFFER_NOTE
from dashboard.web import core
from models import Role

register_page(__name__, path="/admin/map", title="Real-Time Map (Admin)", min_role=Role.MANAGER)

PREFIX = "adminmap"
register_live_updates(PREFIX)

# What the page's script draws the pins and popups with (dash-leaflet hands ``hideout`` to the
# GeoJSON layer's functions).
PIN_LOOK = {"closed": "#333333", "closed_dash": "4 4", "popup_pad": POPUP_PAD_TOP_LEFT}


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.Div(
                [html.H1("Real-Time Map (Admin)", className="h3 mb-0"), *live_updates(PREFIX)],
                className="d-flex align-items-baseline gap-3",
            ),
            html.P(
                "Click a lot group's pin for its physical count (Mistall, Parking Logix or the live "
                "sensors) and, below it, the permits sold in each of its lots. " + DIFFER_NOTE,
                className="text-muted mt-2",
            ),
            html.Div(id=f"{PREFIX}-error"),
            dbc.Row(
                [
                    dbc.Col(
                        dl.Map(
                            [
                                dl.TileLayer(url=core().settings.tile_url),
                                dl.GeoJSON(
                                    id=f"{PREFIX}-pins",
                                    pointToLayer={"variable": "parkopsStaffMap.pointToLayer"},
                                    onEachFeature={"variable": "parkopsStaffMap.onEachFeature"},
                                    hideout=PIN_LOOK,
                                ),
                            ],
                            id=f"{PREFIX}-map",
                            **opening_view(staff_opening_bounds()),
                            style={"height": "70vh", "minHeight": "24rem"},
                        ),
                        lg=7,
                        className="mb-3",
                    ),
                    dbc.Col(
                        html.Section(
                            [
                                html.H2("Lot groups on the map", className="h5"),
                                html.Div(id=f"{PREFIX}-table", **{"aria-live": "polite"}),
                            ],
                            **{"aria-label": "The map's figures as a table"},
                        ),
                        lg=5,
                    ),
                ]
            ),
        ]
    )


# The pins, the viewport (fitted on the first draw only, when the map did not open on the pins),
# the table and the error slot, drawn in the browser from the cached staff body on the page's first
# call, on each pushed change and on the poll. The route checks the role; the pushed message is
# only a trigger.
dash.clientside_callback(
    ClientsideFunction(namespace="parkops_staff", function_name="adminMap"),
    Output(f"{PREFIX}-pins", "data"),
    Output(f"{PREFIX}-map", "viewport"),
    Output(f"{PREFIX}-table", "children"),
    Output(f"{PREFIX}-error", "children"),
    *live_inputs(PREFIX),
    State(f"{PREFIX}-pins", "data"),
    State(f"{PREFIX}-map", "bounds"),
)
