"""Lot Status (officers): every lot as a card, with its group's physical count and its own permits.

Made for a phone on patrol: one column of cards rather than a wide table. Each card shows the
group's physical figure (Mistall, Parking Logix or the live sensors; the same figure the maps use)
and the lot's permits sold against its allowance; the two are meant to differ (cars present versus
permits sold). The list sorts fullest first, emptiest first or by name. "Fullness" is the group's
physical percent, else (no sensor data) the lot's permit percent; closed groups come last
(``dashboard.services.lot_status.fullness``).

The layout is empty scaffolding. The browser draws and sorts the cards (``assets/staff_live.js``)
from the staff body ``/live/lot-status.json``, which the admin map shares (``dashboard.map_routes``),
on every pushed occupancy change, on the poll (``dashboard.components.live``) and on a new sort
(which re-sorts the body it holds, without asking the server).
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, html

from dashboard.callbacks import register_page
from dashboard.components.live import live_inputs, live_updates, register_live_updates
from models import Role

register_page(__name__, path="/officer", title="Lot Status", min_role=Role.OFFICER)

PREFIX = "officer"
register_live_updates(PREFIX)

SORTS = [
    {"label": "Fullest first", "value": "fullest"},
    {"label": "Emptiest first", "value": "emptiest"},
    {"label": "Name", "value": "name"},
]


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.Div(
                [html.H1("Lot Status", className="h3 mb-0"), *live_updates(PREFIX)],
                className="d-flex align-items-baseline gap-3 flex-wrap",
            ),
            html.P(
                "Physical: cars counted in the lot's group. Permits: permits sold against the lot's "
                "allowance. The two are meant to differ.",
                className="text-muted small mt-2",
            ),
            dbc.RadioItems(
                id="officer-sort",
                options=SORTS,
                value="fullest",
                inline=True,
                className="mb-3",
                inputClassName="me-1",
            ),
            html.Div(id=f"{PREFIX}-error"),
            html.Div(id="officer-cards", **{"aria-live": "polite"}),
        ],
        className="officer-status",
    )


# The cards, drawn in the browser from the cached staff body on the page's first call, on each
# pushed change, on the poll and on a new sort. The route checks the role; the pushed message is
# only a trigger.
dash.clientside_callback(
    ClientsideFunction(namespace="parkops_staff", function_name="officerCards"),
    Output("officer-cards", "children"),
    Output(f"{PREFIX}-error", "children"),
    *live_inputs(PREFIX),
    Input("officer-sort", "value"),
)
