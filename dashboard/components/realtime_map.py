"""Pieces of the user-side real-time map, shared by ``/real-time`` and the content-page shortcodes
(``[real-time-map]``, ``[real-time-legend]``).

- ``live_map``: the map itself, its live-update status, its error slot and its table alternative:
  empty scaffolding whose pins arrive from ``pages.realtime.refresh`` (``Role.GUEST``). The ids are
  fixed, so one page shows it once (the content parser turns a second ``[real-time-map]`` into a
  notice).

- ``donut``: the availability donut of a lot group (percent *available*), a CSS conic-gradient
  ring in a ``role="img"`` element whose label says the same in words (no plotly: a page that
  shows a donut loads no chart library).
- ``legend``: what the colours and icons mean (green = standard permits, yellow = temporary; pins
  in each group's map colour; stale and closed markers).
- ``permit_badges``: the green/yellow badges of one lot.
- ``render``: the pins, popups, tooltips and table alternative for guests or for signed-in users,
  as plain JSON data, rebuilt only when the open API's cached list changes version; the
  ``/real-time`` page's callbacks serve them (it is also what the embedded map uses).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
import dash_leaflet as dl
from dash import dcc, html
from plotly.io.json import to_json_plotly

from dashboard.components.live import live_updates
from dashboard.services import maps
from dashboard.services.maps import UserMapGroup, UserMapLot
from dashboard.services.open_data import CachedBody

AVAILABLE_COLOR = "#198754"  # Bootstrap success
TAKEN_COLOR = "#dee2e6"
STANDARD_COLOR = "success"  # green = standard permits
TEMPORARY_COLOR = "warning"  # yellow = temporary permits
STALE_DASH = "4 4"
CLOSED_COLOR = "#6c757d"
PREFIX = "realtime"  # ids and live-update channel of the map (``dashboard.components.live``)
# Leaflet pans an opening popup to 5 px of the map's edge by default, which on a phone put the
# popup's title under the zoom buttons (top left, about 80 px tall): keep the popup below them.
POPUP_PAD_TOP_LEFT = [10, 88]
DEFAULT_CENTER = [20.0, 0.0]  # the world, until the first refresh fits the map to the pins


def live_map(tile_url: str) -> html.Div:
    """The user map, for a layout. ``tile_url`` is configuration (``PARKOPS_TILE_URL``), not data."""
    return html.Div(
        [
            html.Div(live_updates(PREFIX), className="mb-1"),
            dcc.Store(id=f"{PREFIX}-pins"),
            dcc.Store(id=f"{PREFIX}-open"),  # the group whose pin was clicked last (its popup is open)
            html.Div(id=f"{PREFIX}-error"),
            dl.Map(
                [dl.TileLayer(url=tile_url), dl.LayerGroup(id=f"{PREFIX}-markers")],
                id=f"{PREFIX}-map",
                center=DEFAULT_CENTER,
                zoom=2,
                style={"height": "60vh", "minHeight": "320px", "width": "100%", "maxWidth": "100%"},
                className="realtime-map border rounded",
            ),
            html.Button(
                "Show the map as a table",
                id=f"{PREFIX}-table-toggle",
                type="button",
                n_clicks=0,
                className="btn btn-link px-0 mt-2",
                **_attributes({"aria-controls": f"{PREFIX}-table-collapse", "aria-expanded": "false"}),
            ),
            # Filled only while shown: with hundreds of groups the table is most of a refresh.
            dbc.Collapse(html.Div(id=f"{PREFIX}-table"), id=f"{PREFIX}-table-collapse", is_open=False),
        ],
        className="realtime-live-map",
    )


def _attributes(values: dict[str, str]) -> dict[str, Any]:
    """Attributes Dash takes only as keywords whose names are not Python names (``aria-*``)."""
    return dict(values)


def availability_text(percent_available: float | None, status: str = "open") -> str:
    if status == "closed":
        return "Closed"
    if percent_available is None:
        return "No data"
    return f"{percent_available:.0f}% available"


def donut(
    percent_available: float | None, label: str, status: str = "open", *, class_name: str = ""
) -> html.Div:
    """The availability donut: the green share of the ring is free; closed or unknown, a grey ring.

    A CSS ``conic-gradient`` ring with the figure in its hole, built here as plain elements: a
    plotly pie here made opening a popup download 1.26 MiB of plotly.js before the donut could
    show. The box is 170 px tall from the start (``_popup_height`` reserves it): Leaflet pans a
    popup into view when it opens, so a popup that grew afterwards could open with its top cut off.
    The whole is one ``role="img"`` whose label says the same in words (a screen reader does not
    read the ring); the caption and the figure are hidden from it as they repeat the label."""
    text = availability_text(percent_available, status)
    if percent_available is None or status == "closed":
        free = 0.0
        center = "Closed" if status == "closed" else "—"
    else:
        free = max(0.0, min(100.0, float(percent_available)))
        center = f"{free:.0f}%"
    ring = f"conic-gradient({AVAILABLE_COLOR} 0 {free:g}%, {TAKEN_COLOR} {free:g}% 100%)"
    hidden = _attributes({"aria-hidden": "true"})
    return html.Div(
        [
            html.Div(f"{label}: {text}", className="realtime-donut-caption", **hidden),
            html.Div(
                html.Span(center, className="realtime-donut-value"),
                className="realtime-donut-ring",
                style={"background": ring},
                **hidden,
            ),
        ],
        role="img",
        **_attributes({"aria-label": f"{label}: {text}", "data-free": f"{free:g}"}),
        className=f"realtime-donut {class_name}".strip(),
    )


def permit_badges(offers_standard: bool, offers_temporary: bool) -> list[Any]:
    badges: list[Any] = []
    if offers_standard:
        badges.append(dbc.Badge("Standard", color=STANDARD_COLOR, className="ms-1 permit-standard"))
    if offers_temporary:
        badges.append(
            dbc.Badge(
                "Temporary", color=TEMPORARY_COLOR, text_color="dark", className="ms-1 permit-temporary"
            )
        )
    return badges


def _swatch(style: dict[str, str]) -> html.Span:
    return html.Span(
        className="d-inline-block rounded-circle me-2 align-middle",
        style={"width": "0.9rem", "height": "0.9rem", **style},
        **_attributes({"aria-hidden": "true"}),
    )


def legend() -> html.Div:
    """The map's legend (the ``[real-time-legend]`` shortcode)."""
    items = [
        (
            _swatch({"border": f"4px solid {AVAILABLE_COLOR}", "backgroundColor": "#fff"}),
            "the donut: the share of the group's spaces free now, as sensors and cameras count them",
        ),
        (
            html.Span("x% of permits taken", className="fw-semibold"),
            "under each lot: permits sold for that lot against the number it may sell (not cars parked)",
        ),
        (dbc.Badge("Standard", color=STANDARD_COLOR), "standard (term) permits are sold in this lot"),
        (
            dbc.Badge("Temporary", color=TEMPORARY_COLOR, text_color="dark"),
            "temporary (hourly or daily) permits are sold in this lot",
        ),
        (
            _swatch({"backgroundColor": "#1f77b4", "border": "2px solid #1f77b4"}),
            "a pin is a lot group, in the group's own map colour",
        ),
        (
            _swatch({"border": f"2px dashed {CLOSED_COLOR}", "backgroundColor": "#fff"}),
            "dashed outline: the count is out of date (stale)",
        ),
        (
            _swatch({"backgroundColor": CLOSED_COLOR, "border": f"2px solid {CLOSED_COLOR}"}),
            "grey pin: the lot group is closed",
        ),
    ]
    return html.Div(
        [
            html.H2("Legend", className="h6"),
            html.Ul(
                [html.Li([icon, " ", text], className="mb-1") for icon, text in items],
                className="list-unstyled small mb-0",
            ),
        ],
        className="realtime-legend mt-3",
    )


# --- the live map's pins, popups and table, rendered once per version of the public list ---


def sold_out(lot: UserMapLot) -> bool:
    """Every permit the lot may sell is taken now (a lot that sells nothing is not "sold out")."""
    return lot.offers_any and lot.percent_full is not None and lot.percent_full >= 100


def _group_sold_out(group: UserMapGroup) -> bool:
    selling = [lot for lot in group.lots if lot.offers_any]
    return bool(selling) and all(sold_out(lot) for lot in selling)


def _has_space(group: UserMapGroup) -> bool:
    return group.status != "closed" and any(lot.offers_any and not sold_out(lot) for lot in group.lots)


def nearest_with_space(group: UserMapGroup, groups: list[UserMapGroup]) -> UserMapGroup | None:
    """The closest other group on the map that still sells a permit, for a sold-out popup. Lots
    are a few hundred metres apart: a flat-earth distance (longitude scaled by the latitude) is
    plenty to rank them."""
    if not group.located:
        return None
    scale = math.cos(math.radians(group.lat or 0.0)) ** 2

    def distance(other: UserMapGroup) -> float:
        return ((other.lat or 0.0) - (group.lat or 0.0)) ** 2 + scale * (
            (other.lon or 0.0) - (group.lon or 0.0)
        ) ** 2

    others = [o for o in groups if o.group_id != group.group_id and o.located and _has_space(o)]
    return min(others, key=distance, default=None)


def _lot_figure(lot: UserMapLot) -> str:
    if sold_out(lot):
        return " sold out"
    return f" {lot.percent_full:.0f}% of permits taken" if lot.percent_full is not None else " —"


def _lot_items(group: UserMapGroup) -> Any:
    if not group.lots:
        return html.P("No lots.", className="text-muted small mb-1")
    return html.Ul(
        [
            html.Li(
                [
                    html.Span(lot.name),
                    html.Span(
                        _lot_figure(lot),
                        className="fw-semibold realtime-sold-out" if sold_out(lot) else "text-muted",
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


def _sold_out_offer(group: UserMapGroup, elsewhere: UserMapGroup | None, logged_in: bool) -> Any:
    """Instead of a Book button into a checkout that can only refuse: say so, point to the nearest
    group with space, and to the waitlist (a guest has to log in to join one)."""
    lots_page = f"/lot-groups/{group.group_id}"
    ways: list[Any] = []
    if elsewhere is not None:
        ways.append(
            html.Li(
                [
                    "Nearest with space: ",
                    dcc.Link(
                        elsewhere.name, href=f"/lot-groups/{elsewhere.group_id}", className="fw-semibold"
                    ),
                ]
            )
        )
    waitlist: Any
    if logged_in:
        waitlist = dcc.Link("Join a waitlist", href=lots_page)
    else:
        waitlist = html.Span(
            [dcc.Link("Log in", href="/login?" + urlencode({"next": lots_page})), " to join the waitlist"]
        )
    ways.append(html.Li(waitlist))
    return html.Div(
        [
            html.P("Sold out: every permit is taken.", className="fw-semibold mb-1"),
            html.Ul(ways, className="small mb-0 ps-3"),
        ],
        className="realtime-sold-out-offer",
    )


def _popup_content(group: UserMapGroup, elsewhere: UserMapGroup | None, logged_in: bool) -> list[Any]:
    note = []
    if group.status == "stale":
        note = [html.P("The count is out of date.", className="small text-warning-emphasis mb-1")]
    action = _sold_out_offer(group, elsewhere, logged_in) if _group_sold_out(group) else _book_link(group)
    return [
        html.H2(group.name, className="h6 mb-1"),
        donut(group.percent_available, group.name, group.status),
        *note,
        _lot_items(group),
        action,
    ]


def _tip_text(group: UserMapGroup) -> str:
    return f"{group.name}: {availability_text(group.percent_available, group.status)}"


def _lot_lines(lot: UserMapLot) -> int:
    """How many lines a lot's entry wraps to in the popup (about 28 characters a line at the
    popup's 14 px, the name, "100% of permits taken" and each permit badge): an over-estimate
    only leaves some space."""
    figure = len(" 100% of permits taken") if lot.percent_full is not None else 2
    badges = 11 * (int(lot.offers_standard) + int(lot.offers_temporary))
    return -(-(len(lot.name) + figure + badges) // 28)


def _popup_height(group: UserMapGroup) -> int:
    """The popup's height in pixels, reserved before its content arrives: Leaflet pans a popup
    into view when it opens, so one that grew afterwards could open with its top cut off."""
    lines = sum(_lot_lines(lot) for lot in group.lots) or 1
    action = 24 + 22 * 4 if _group_sold_out(group) else 34  # the sold-out offer wraps to ~4 lines
    return 30 + 170 + (24 if group.status == "stale" else 0) + 22 * lines + 8 + action


def _marker(group: UserMapGroup) -> dl.CircleMarker:
    """A pin. Its tooltip text and popup body sit in their own components, which
    ``refresh_popups`` updates in place: re-creating the pin would close an open popup. The popup
    starts empty (its height reserved) and is filled when the pin is clicked: a first load carries
    no popup content, a tenth of its size with hundreds of pins (``bench/read.py``)."""
    closed = group.status == "closed"
    color = CLOSED_COLOR if closed else group.color
    return dl.CircleMarker(
        [
            dl.Tooltip(html.Span(_tip_text(group), id={"type": "realtime-tip", "group": group.group_id})),
            dl.Popup(
                html.Div(
                    html.Div("Loading…", className="text-muted small"),
                    id={"type": "realtime-popup", "group": group.group_id},
                    className="realtime-popup",
                    style={"minHeight": f"{_popup_height(group)}px"},
                ),
                minWidth=220,
                maxWidth=260,
                autoPanPaddingTopLeft=POPUP_PAD_TOP_LEFT,
            ),
        ],
        id={"type": f"{PREFIX}-pin", "group": group.group_id},
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
                    + (
                        f"{lot.percent_full:.0f}% of permits taken"
                        if lot.percent_full is not None
                        else "no permit figure"
                    ),
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


def _signature(groups: list[UserMapGroup]) -> list[list[Any]]:
    """What the pins themselves show (not the figures): they are re-created only when it changes."""
    return [[g.group_id, g.name, g.lat, g.lon, g.color, g.status] for g in groups]


@dataclass(frozen=True)
class Rendered:
    """The map for one audience (guests, or signed-in users), rendered once per version of the
    public list and kept as plain JSON data: every open map refreshes on every pushed change, and
    building Dash components is most of a refresh's cost (``bench/read.py``)."""

    etag: str
    signature: list[list[Any]]
    viewport: dict[str, Any] | None
    markers: list[Any]
    table: Any
    popups: dict[int, Any]
    tips: dict[int, str]


_RENDERED: dict[bool, Rendered] = {}  # per process, by audience: the latest rendering only


def _plain(component: Any) -> Any:
    return json.loads(to_json_plotly(component))


def render(body: CachedBody, *, logged_in: bool) -> Rendered:
    """The map for this audience from the open API's cached list (``open_data.cached_list``: one
    source of figures for the API and the maps, and no database read per refresh), re-rendered
    only when the list's version changes."""
    known = _RENDERED.get(logged_in)
    if known is not None and known.etag == body.etag:
        return known
    groups = maps.from_public_list(json.loads(body.body)["lot_groups"], logged_in=logged_in)
    rendered = Rendered(
        etag=body.etag,
        signature=_signature(groups),
        viewport=_viewport(groups),
        markers=_plain([_marker(group) for group in groups]),
        table=_plain(_table(groups)),
        popups={
            group.group_id: _plain(_popup_content(group, nearest_with_space(group, groups), logged_in))
            for group in groups
        },
        tips={group.group_id: _tip_text(group) for group in groups},
    )
    _RENDERED[logged_in] = rendered
    return rendered
