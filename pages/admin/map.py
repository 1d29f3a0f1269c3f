"""Real-Time Map (Admin): one pin per lot group, and in its popup both figures the seed keeps apart.

The seed's admin map popup shows the group's physical figure (Mistall, else Parking Logix, else the
live sensors) and, below it, the lot info: permits sold against each lot's allowance. The two are
meant to differ: one is what is physically parked, the other what has been sold, so a physically
empty lot that is sold out can be given a larger allowance. Each block is labelled so an admin
reads them that way rather than as a bug. A group without sensor data shows the permit count in
place of the physical one, as the seed does, and says so.

The layout is empty scaffolding (a map without pins and an empty table). Pins, popups and the text
table arrive through one ``Role.MANAGER`` callback, which runs on every pushed occupancy change and
on the poll (``dashboard.components.live``). The text table beside the map carries the same figures
for screen-reader and keyboard users, who cannot open a map popup.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
import dash_leaflet as dl
from dash import ALL, Output, State, dcc, html, no_update
from redis.exceptions import RedisError

from dashboard.callbacks import callback, register_page
from dashboard.components.figures import ago, percent, source_label
from dashboard.components.live import live_inputs, live_updates, register_live_updates
from dashboard.components.realtime_map import POPUP_PAD_TOP_LEFT
from dashboard.services import occupancy
from dashboard.services.occupancy import Figure, GroupOccupancy, LiveStore
from dashboard.web import core, session_scope
from models import Role

register_page(__name__, path="/admin/map", title="Real-Time Map (Admin)", min_role=Role.MANAGER)

PREFIX = "adminmap"
register_live_updates(PREFIX)

DIFFER_NOTE = (
    "The physical count and the permits sold are meant to differ: one is the cars present, "
    "the other the permits sold against each lot's allowance."
)
NO_PHYSICAL = "No sensor data for this group: the map uses the permit count below."


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
            dcc.Store(id="adminmap-pins"),
            dbc.Row(
                [
                    dbc.Col(
                        dl.Map(
                            [
                                dl.TileLayer(url=core().settings.tile_url),
                                dl.LayerGroup(id="adminmap-markers"),
                            ],
                            id="adminmap-map",
                            center=[0, 0],
                            zoom=2,
                            style={"height": "70vh", "minHeight": "24rem"},
                        ),
                        lg=7,
                        className="mb-3",
                    ),
                    dbc.Col(
                        html.Section(
                            [
                                html.H2("Lot groups on the map", className="h5"),
                                html.Div(id="adminmap-table", **{"aria-live": "polite"}),
                            ],
                            **{"aria-label": "The map's figures as a table"},
                        ),
                        lg=5,
                    ),
                ]
            ),
        ]
    )


def _warnings(figure: Figure) -> list[Any]:
    parts: list[Any] = []
    if figure.stale:
        parts.append(
            dbc.Badge(
                "stale: no new count lately",
                color="warning",
                text_color="dark",
                className="me-1 adminmap-stale",
            )
        )
    if figure.flag:
        parts.append(dbc.Badge(f"flagged: {figure.flag}", color="danger", className="me-1 adminmap-flag"))
    return parts


def _physical(state: GroupOccupancy, now: datetime) -> html.Div:
    figure = state.physical
    if figure is None:
        return html.Div(
            [html.Div("Physical count", className="fw-semibold"), html.Div(NO_PHYSICAL, className="small")],
            className="mb-2",
        )
    return html.Div(
        [
            html.Div(f"Physical count ({source_label(figure)})", className="fw-semibold"),
            html.Div(
                [
                    html.Span(
                        f"{figure.occupied} / {figure.capacity}", className="adminmap-physical fw-bold"
                    ),
                    f" occupied · {figure.available} available · {percent(figure.percent)} full",
                ]
            ),
            html.Div(f"updated {ago(figure.updated_at, now)}", className="small text-muted"),
            html.Div(_warnings(figure)),
        ],
        className="mb-2",
    )


def _lots(state: GroupOccupancy) -> html.Div:
    if not state.lots:
        return html.Div("No active lots in this group.", className="small text-muted")
    rows = [
        html.Tr([html.Td(lot.name), html.Td(lot.sold), html.Td(lot.allowance), html.Td(lot.available)])
        for lot in state.lots
    ]
    return html.Table(
        [
            html.Thead(
                html.Tr([html.Th("Lot"), html.Th("Sold"), html.Th("Allowance"), html.Th("Available")])
            ),
            html.Tbody(rows),
        ],
        className="table table-sm mb-1 adminmap-lots",
    )


def _popup_content(state: GroupOccupancy, now: datetime) -> list[Any]:
    permits = state.permits
    closed = (
        [
            html.Div(
                "Closed", className="badge bg-dark mb-2 adminmap-closed", title="an admin closed this group"
            )
        ]
        if state.closed
        else []
    )
    return [
        html.Div(state.name, className="fw-bold mb-1"),
        *closed,
        _physical(state, now),
        html.Div("Permits sold (lot info)", className="fw-semibold"),
        html.Div(
            f"{permits.occupied} / {permits.capacity} sold · {permits.available} available",
            className="adminmap-permits",
        ),
        _lots(state),
        html.Div(DIFFER_NOTE, className="small text-muted"),
    ]


def _popup_body(state: GroupOccupancy, now: datetime) -> html.Div:
    """The popup's content sits in its own component, which ``refresh_popups`` updates in place:
    re-creating the pins would close a popup the admin has open."""
    return html.Div(
        _popup_content(state, now),
        id={"type": "adminmap-popup", "group": state.group_id},
        className="adminmap-popup",
    )


def _tooltip(state: GroupOccupancy) -> str:
    return f"{state.name}: Closed" if state.closed else state.name


def _marker(state: GroupOccupancy, now: datetime) -> Any:
    return dl.CircleMarker(
        [
            dl.Tooltip(_tooltip(state), permanent=state.closed),
            dl.Popup(
                _popup_body(state, now), maxWidth=360, minWidth=260, autoPanPaddingTopLeft=POPUP_PAD_TOP_LEFT
            ),
        ],
        id=f"adminmap-pin-{state.group_id}",
        center=[state.latitude, state.longitude],
        radius=12,
        color="#333333" if state.closed else state.map_color,
        fillColor=state.map_color,
        fillOpacity=0.25 if state.closed else 0.7,
        dashArray="4 4" if state.closed else None,
        weight=2,
    )


def _table(states: list[GroupOccupancy], hidden: list[GroupOccupancy], now: datetime) -> Any:
    if not states:
        return html.P("No lot group is on the map yet.", className="text-muted")
    body = []
    for state in states:
        physical = state.physical
        if physical is None:
            physical_cell: Any = html.Span("no sensor data", className="text-muted")
        else:
            physical_cell = html.Div(
                [
                    html.Span(f"{physical.occupied} / {physical.capacity}", className="adminmap-physical"),
                    f" ({source_label(physical)}, {physical.available} available, "
                    f"{percent(physical.percent)}, updated {ago(physical.updated_at, now)})",
                    html.Div(_warnings(physical)),
                ]
            )
        permits = html.Div(
            [
                html.Div(
                    f"{state.permits.occupied} / {state.permits.capacity} sold", className="adminmap-permits"
                ),
                html.Ul(
                    [
                        html.Li(f"{lot.name}: {lot.sold} / {lot.allowance} sold, {lot.available} available")
                        for lot in state.lots
                    ],
                    className="list-unstyled small mb-0",
                ),
            ]
        )
        body.append(
            html.Tr(
                [
                    html.Th(state.name, scope="row"),
                    html.Td("Closed" if state.closed else state.status.title()),
                    html.Td(physical_cell),
                    html.Td(permits),
                ],
                id=f"adminmap-row-{state.group_id}",
            )
        )
    note = (
        [
            html.P(
                "Not on the map (hidden or no location): " + ", ".join(state.name for state in hidden) + ".",
                className="small text-muted",
            )
        ]
        if hidden
        else []
    )
    return html.Div(
        [
            dbc.Table(
                [
                    html.Caption(DIFFER_NOTE),
                    html.Thead(
                        html.Tr(
                            [
                                html.Th("Lot group", scope="col"),
                                html.Th("Status", scope="col"),
                                html.Th("Physical count", scope="col"),
                                html.Th("Permits sold (lot info)", scope="col"),
                            ]
                        )
                    ),
                    html.Tbody(body),
                ],
                size="sm",
                responsive=True,
                className="align-middle",
                id="adminmap-grid",
            ),
            *note,
        ]
    )


def _on_map(state: GroupOccupancy) -> bool:
    return state.show_on_map and state.latitude is not None and state.longitude is not None


def _viewport(states: list[GroupOccupancy]) -> dict[str, Any] | None:
    if not states:
        return None
    lats = [state.latitude for state in states]
    lons = [state.longitude for state in states]
    pad = 0.002
    return {
        "bounds": [[min(lats) - pad, min(lons) - pad], [max(lats) + pad, max(lons) + pad]],
        "transition": "fitBounds",
    }


def _signature(states: list[GroupOccupancy]) -> list[list[Any]]:
    """What the pins themselves show (not the figures): they are re-created only when it changes."""
    return [
        [state.group_id, state.name, state.latitude, state.longitude, state.map_color, state.closed]
        for state in states
    ]


def _read_states(now: datetime) -> list[GroupOccupancy]:
    with session_scope() as session:
        policy = occupancy.load_policy(session, core().secrets)
        return occupancy.group_states(session, LiveStore(core().redis), policy.staleness, now)


@callback(
    Output("adminmap-markers", "children"),
    Output("adminmap-table", "children"),
    Output("adminmap-map", "viewport"),
    Output("adminmap-pins", "data"),
    *live_inputs(PREFIX),
    State("adminmap-pins", "data"),
    min_role=Role.MANAGER,
)
def refresh(_message: str | None, _tick: int | None, pins: list[list[Any]] | None) -> tuple[Any, ...]:
    """Re-read every group on a pushed change or a poll tick. The pushed message is public and
    ignored: what a manager sees comes from this role-checked read. The pins are re-created only
    when a group is added, moved, recoloured, closed or reopened (``refresh_popups`` keeps the
    figures of the existing ones current), and the map is fitted to them on the first call only,
    so a refresh neither closes an open popup nor undoes the admin's panning."""
    now = datetime.now(UTC)
    try:
        states = _read_states(now)
    except RedisError:
        alert = dbc.Alert("Live counts are unavailable: the Redis server is not reachable.", color="danger")
        return no_update, alert, no_update, no_update
    shown = [state for state in states if _on_map(state)]
    hidden = [state for state in states if not _on_map(state)]
    first = not dash.ctx.triggered  # empty (falsy) on the page's initial call
    viewport = _viewport(shown) if first else None
    signature = _signature(shown)
    unchanged = signature == pins and not first
    return (
        no_update if unchanged else [_marker(state, now) for state in shown],
        _table(shown, hidden, now),
        viewport if viewport is not None else no_update,
        no_update if unchanged else signature,
    )


@callback(
    Output({"type": "adminmap-popup", "group": ALL}, "children"),
    *live_inputs(PREFIX),
    min_role=Role.MANAGER,
)
def refresh_popups(_message: str | None, _tick: int | None) -> list[Any]:
    """The current figures of every pin's popup, updated in place (an open popup stays open)."""
    wanted = [output["id"]["group"] for output in dash.ctx.outputs_list]
    if not wanted:
        return []
    now = datetime.now(UTC)
    try:
        states = {state.group_id: state for state in _read_states(now)}
    except RedisError:
        return [no_update] * len(wanted)
    return [
        _popup_content(states[group_id], now)
        if group_id in states
        else html.Div("This lot group no longer exists.", className="text-muted")
        for group_id in wanted
    ]
