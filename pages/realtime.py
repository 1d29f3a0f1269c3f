"""Real-Time Map (user side): one pin per lot group shown on the map, for everyone, signed in or not.

A pin's popup holds the group's availability donut, its lots as percentages full with green
(standard) / yellow (temporary) badges, and "Book permit", which opens the lot group page. Guests
see only temporary permits; signed-in users both (``dashboard.services.maps``).

The same live map is embedded in content pages by the ``[real-time-map]`` shortcode
(``realtime_map.live_map``; this module's callback serves both). The layout is empty scaffolding
(the tile server URL is configuration, not data). The browser draws the pins, popups and table
alternative from ``/live/user-map.json`` (``dashboard.map_routes``, ``assets/realtime_map.js``) as
soon as the map is made, then on every pushed occupancy change and on the poll
(``dashboard.components.live``). The map opens on the pins (their bounds come with the layout,
``map_routes.opening_bounds``; without them the script fits the map on its first draw), and a live
update never moves it under the visitor's finger.
No server callback: a visitor costs the server one cached, ETag'd body per change.
"""

from __future__ import annotations

import dash
from dash import ClientsideFunction, Input, Output, State, html

from dashboard.callbacks import register_page
from dashboard.components.live import live_inputs, register_live_updates
from dashboard.components.realtime_map import PREFIX, legend, live_map
from dashboard.map_routes import opening_bounds
from dashboard.web import core
from models import Role

register_page(__name__, path="/real-time", title="Real-Time Map", min_role=Role.GUEST)

register_live_updates(PREFIX)


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Real-Time Map", className="h3 mb-1"),
            html.P(
                "Tap a pin to see how much room a lot group has and which permits its lots sell.",
                className="text-muted",
            ),
            live_map(core().settings.tile_url, opening_bounds()),
            legend(),
        ],
        style={"maxWidth": "100%", "overflowX": "hidden"},
    )


# The pins (on the map itself), the table and the error slot, drawn in the browser from the cached
# ``/live/user-map.json`` (``assets/realtime_map.js``) on the page's first call, on each pushed
# change, on the poll and when the table is opened. The body's audience is decided on the server
# from the session; the pushed message is only a trigger.
dash.clientside_callback(
    ClientsideFunction(namespace="parkops_map", function_name="refresh"),
    Output(f"{PREFIX}-table", "children"),
    Output(f"{PREFIX}-error", "children"),
    *live_inputs(PREFIX),
    Input(f"{PREFIX}-table-collapse", "is_open"),
)


# The table alternative opens and closes in the browser; opening it asks ``refresh`` for the table.
dash.clientside_callback(
    """function(clicks, shown) {
        const open = !shown;
        return [open, open ? "Hide the table" : "Show the map as a table", String(open)];
    }""",
    Output(f"{PREFIX}-table-collapse", "is_open"),
    Output(f"{PREFIX}-table-toggle", "children"),
    Output(f"{PREFIX}-table-toggle", "aria-expanded"),
    Input(f"{PREFIX}-table-toggle", "n_clicks"),
    State(f"{PREFIX}-table-collapse", "is_open"),
    prevent_initial_call=True,
)
