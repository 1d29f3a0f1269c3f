"""Real-Time Map (user side): one pin per lot group shown on the map, for everyone, signed in or not.

A pin's popup holds the group's availability donut, its lots as percentages full with green
(standard) / yellow (temporary) badges, and "Book permit", which opens the lot group page. Guests
see only temporary permits; signed-in users both (``dashboard.services.maps``).

The layout is empty scaffolding (the tile server URL is configuration, not data): the pins and the
table alternative arrive from the ``Role.GUEST`` refresh, which runs on every pushed occupancy
change and on the poll (``dashboard.components.live``), and fits the map to the pins on its first
run only, so a live update never moves the map under the visitor's finger.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
import dash_leaflet as dl
from dash import Output, dcc, html, no_update
from redis.exceptions import RedisError

from dashboard.auth import current_role
from dashboard.callbacks import callback, register_page
from dashboard.components.live import live_inputs, live_updates, register_live_updates
from dashboard.components.realtime_map import (
    CLOSED_COLOR,
    STALE_DASH,
    availability_text,
    donut_graph,
    legend,
    permit_badges,
)
from dashboard.services import maps, occupancy
from dashboard.services.maps import UserMapGroup
from dashboard.services.occupancy import LiveStore
from dashboard.web import core, session_scope
from models import Role

register_page(__name__, path="/real-time", title="Real-Time Map", min_role=Role.GUEST)

PREFIX = "realtime"
register_live_updates(PREFIX)

DEFAULT_CENTER = [20.0, 0.0]  # the world, until the first refresh fits the map to the pins


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.Div(
                [html.H1("Real-Time Map", className="h3 mb-0"), *live_updates(PREFIX)],
                className="d-flex flex-wrap align-items-baseline gap-3",
            ),
            html.P(
                "Tap a pin to see how much room a lot group has and which permits its lots sell.",
                className="text-muted mt-2",
            ),
            html.Div(id="realtime-error"),
            dl.Map(
                [
                    dl.TileLayer(url=core().settings.tile_url),
                    dl.LayerGroup(id="realtime-markers"),
                ],
                id="realtime-map",
                center=DEFAULT_CENTER,
                zoom=2,
                style={"height": "60vh", "width": "100%", "maxWidth": "100%"},
                className="realtime-map border rounded",
            ),
            legend(),
            html.Details(
                [
                    html.Summary("The map as a table"),
                    html.Div(id="realtime-table", className="mt-2"),
                ],
                className="mt-3",
                id="realtime-table-details",
            ),
        ],
        style={"maxWidth": "100%", "overflowX": "hidden"},
    )


def _lot_items(group: UserMapGroup) -> Any:
    if not group.lots:
        return html.P("No lots.", className="text-muted small mb-1")
    return html.Ul(
        [
            html.Li(
                [
                    html.Span(lot.name),
                    html.Span(
                        f" {lot.percent_full:.0f}% full" if lot.percent_full is not None else " —",
                        className="text-muted",
                    ),
                    *permit_badges(lot.offers_standard, lot.offers_temporary),
                ],
                className="realtime-lot",
            )
            for lot in group.lots
        ],
        className="list-unstyled small mb-2",
    )


def _book_link(group: UserMapGroup) -> Any:
    return dcc.Link(
        "Book permit",
        href=f"/lot-groups/{group.group_id}",
        className="btn btn-sm btn-primary text-white realtime-book",
    )


def _popup(group: UserMapGroup) -> dl.Popup:
    note = []
    if group.status == "stale":
        note = [html.P("The count is out of date.", className="small text-warning-emphasis mb-1")]
    return dl.Popup(
        html.Div(
            [
                html.H2(group.name, className="h6 mb-1"),
                donut_graph(group.percent_available, group.name, group.status),
                *note,
                _lot_items(group),
                _book_link(group),
            ],
            className="realtime-popup",
        ),
        minWidth=220,
        maxWidth=260,
    )


def _marker(group: UserMapGroup) -> dl.CircleMarker:
    closed = group.status == "closed"
    color = CLOSED_COLOR if closed else group.color
    return dl.CircleMarker(
        [
            dl.Tooltip(f"{group.name}: {availability_text(group.percent_available, group.status)}"),
            _popup(group),
        ],
        id=f"realtime-pin-{group.group_id}",
        center=[group.lat, group.lon],
        radius=12,
        color=color,
        weight=3,
        fillColor=color,
        fillOpacity=0.35 if group.status == "stale" else 0.8,
        dashArray=STALE_DASH if group.status == "stale" else None,
        className="realtime-pin",
    )


def _table(groups: list[UserMapGroup]) -> Any:
    if not groups:
        return html.P("No lot groups are on the map yet.", className="text-muted")
    rows = []
    for group in groups:
        lots = [
            html.Div(
                [
                    f"{lot.name}: "
                    + (f"{lot.percent_full:.0f}% full" if lot.percent_full is not None else "no figure"),
                    *permit_badges(lot.offers_standard, lot.offers_temporary),
                ]
            )
            for lot in group.lots
        ]
        rows.append(
            html.Tr(
                [
                    html.Th(group.name, scope="row"),
                    html.Td(availability_text(group.percent_available, group.status)),
                    html.Td(lots),
                    html.Td(_book_link(group)),
                ]
            )
        )
    return dbc.Table(
        [
            html.Thead(
                html.Tr([html.Th("Lot group"), html.Th("Availability"), html.Th("Lots"), html.Th("")])
            ),
            html.Tbody(rows),
        ],
        size="sm",
        responsive=True,
        className="small align-middle",
    )


def _viewport(groups: list[UserMapGroup]) -> dict[str, Any] | None:
    if not groups:
        return None
    lats = [group.lat for group in groups if group.lat is not None]
    lons = [group.lon for group in groups if group.lon is not None]
    return {
        "bounds": [[min(lats), min(lons)], [max(lats), max(lons)]],
        "options": {"padding": [30, 30], "maxZoom": 16},
    }


@callback(
    Output("realtime-markers", "children"),
    Output("realtime-table", "children"),
    Output("realtime-error", "children"),
    Output("realtime-map", "viewport"),
    *live_inputs(PREFIX),
    min_role=Role.GUEST,
)
def refresh(_message: str | None, _tick: int | None) -> tuple[Any, ...]:
    """Re-read the pins on a pushed change or a poll tick; the pushed message is only a trigger."""
    now = datetime.now(UTC)
    logged_in = current_role() > Role.GUEST
    try:
        with session_scope() as session:
            policy = occupancy.load_policy(session, core().secrets)
            groups = maps.user_map_groups(session, LiveStore(core().redis), policy, now, logged_in=logged_in)
    except RedisError:
        alert = dbc.Alert("Live counts are unavailable right now.", color="warning")
        return no_update, no_update, alert, no_update
    first_run = dash.ctx.triggered_id is None
    viewport = _viewport(groups) if first_run else no_update
    return [_marker(group) for group in groups], _table(groups), None, viewport or no_update
