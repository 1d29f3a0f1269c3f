"""Real-Time Map (user side): one pin per lot group shown on the map, for everyone, signed in or not.

A pin's popup holds the group's availability donut, its lots as percentages full with green
(standard) / yellow (temporary) badges, and "Book permit", which opens the lot group page. Guests
see only temporary permits; signed-in users both (``dashboard.services.maps``).

The same live map is embedded in content pages by the ``[real-time-map]`` shortcode
(``realtime_map.live_map``; this module's callback serves both). The layout is empty scaffolding
(the tile server URL is configuration, not data): the pins and the table alternative arrive from
the ``Role.GUEST`` refresh, which runs on every pushed occupancy change and on the poll
(``dashboard.components.live``), and fits the map to the pins on its first run only, so a live
update never moves the map under the visitor's finger.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, html, no_update
from redis.exceptions import RedisError

from dashboard.auth import current_role
from dashboard.callbacks import callback, register_page
from dashboard.components.live import live_inputs, register_live_updates
from dashboard.components.realtime_map import PREFIX, Rendered, legend, live_map, render
from dashboard.services import open_data
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
            live_map(core().settings.tile_url),
            legend(),
        ],
        style={"maxWidth": "100%", "overflowX": "hidden"},
    )


def _render() -> Rendered:
    """A pushed message means the list just changed: read it fresh then (``BodyCache.get``)."""
    pushed = dash.ctx.triggered_id == f"{PREFIX}-live"
    body = open_data.cached_list(
        core().db, core().redis, core().secrets, lambda: datetime.now(UTC), fresh=pushed
    )
    return render(body, logged_in=current_role() > Role.GUEST)


@callback(
    Output("realtime-markers", "children"),
    Output("realtime-table", "children"),
    Output("realtime-error", "children"),
    Output("realtime-map", "viewport"),
    Output("realtime-pins", "data"),
    *live_inputs(PREFIX),
    Input(f"{PREFIX}-table-collapse", "is_open"),
    State("realtime-pins", "data"),
    min_role=Role.GUEST,
)
def refresh(
    _message: str | None, _tick: int | None, table_shown: bool | None, pins: list[list[Any]] | None
) -> tuple[Any, ...]:
    """Re-read the pins on a pushed change or a poll tick; the pushed message is only a trigger.
    Pins are re-created only when a group appears, moves, changes colour or status (open, stale,
    closed); ``refresh_popups`` keeps the tooltips and the open popup current, so an open popup
    stays open. The map is fitted to the pins on the first call only. The table alternative is
    sent while it is shown (and when it is opened), not with every change."""
    try:
        rendered = _render()
    except RedisError:
        alert = dbc.Alert("Live counts are unavailable right now.", color="warning")
        return no_update, no_update, alert, no_update, no_update
    first = not dash.ctx.triggered  # empty (falsy) on the page's initial call
    unchanged = rendered.signature == pins and not first
    return (
        no_update if unchanged else rendered.markers,
        rendered.table if table_shown else no_update,
        None,
        rendered.viewport if first and rendered.viewport else no_update,
        no_update if unchanged else rendered.signature,
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


# Which pin was clicked last, in the browser (no server data: no role to declare): the popup
# refresh then sends that popup's content only, not every pin's.
dash.clientside_callback(
    """function(_clicks) {
        const trigger = window.dash_clientside.callback_context.triggered_id;
        return trigger ? trigger.group : window.dash_clientside.no_update;
    }""",
    Output(f"{PREFIX}-open", "data"),
    Input({"type": f"{PREFIX}-pin", "group": ALL}, "n_clicks"),
    prevent_initial_call=True,
)


@callback(
    Output({"type": "realtime-popup", "group": ALL}, "children"),
    Output({"type": "realtime-tip", "group": ALL}, "children"),
    *live_inputs(PREFIX),
    Input(f"{PREFIX}-open", "data"),
    min_role=Role.GUEST,
)
def refresh_popups(_message: str | None, _tick: int | None, open_group: Any) -> tuple[list[Any], list[Any]]:
    """Every tooltip, and the open popup's donut and lots, updated in place, on each change and
    when a pin is clicked (so a popup opens with the current figures). The other popups keep what
    they have until they are opened: with hundreds of pins, sending every popup on every change
    would be most of the map's traffic (``bench/read.py``)."""
    popups = [output["id"]["group"] for output in dash.ctx.outputs_list[0]]
    tips = [output["id"]["group"] for output in dash.ctx.outputs_list[1]]
    if not popups and not tips:
        return [], []
    try:
        rendered = _render()
    except RedisError:
        return [no_update] * len(popups), [no_update] * len(tips)
    gone = html.P("This lot group is no longer on the map.", className="text-muted small")
    return (
        [rendered.popups.get(g, gone) if g == open_group else no_update for g in popups],
        [rendered.tips.get(g, no_update) for g in tips],
    )
