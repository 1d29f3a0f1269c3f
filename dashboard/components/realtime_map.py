"""Pieces of the user-side real-time map, shared by ``/real-time`` and the content-page shortcodes
(``[real-time-map]``, ``[real-time-legend]``).

- ``live_map``: the map itself, its live-update status, its error slot and its table alternative:
  empty scaffolding whose pins the page's script adds to the map as Leaflet makes it
  (``assets/realtime_map.js``, ``pages.realtime``). The ids are fixed, so one page shows it once
  (the content parser turns a second ``[real-time-map]`` into a notice).

- ``donut``: the availability donut of a lot group (percent *available*), a CSS conic-gradient
  ring in a ``role="img"`` element whose label says the same in words (no plotly: a page that
  shows a donut loads no chart library).
- ``legend``: what the colours and icons mean (green = standard permits, yellow = temporary; pins
  in each group's map colour; stale and closed markers).
- ``permit_badges``: the green/yellow badges of one lot.

The pins, tooltips, popups and table are drawn in the browser (``assets/realtime_map.js``) from
``/live/user-map.json`` (``dashboard.map_routes``); the donut and badges there are the same
elements as here, which the lot group page renders on the server.
"""

from __future__ import annotations

import json
from typing import Any

import dash_bootstrap_components as dbc
import dash_leaflet as dl
from dash import html

from dashboard.components.live import live_updates
from dashboard.services.maps import Bounds, availability_text

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
DEFAULT_CENTER = [20.0, 0.0]  # the world, when the page could not say where the pins are
# How the map fits its pins: as it opens (``bounds``), or on the script's first draw when the page
# came without them (``assets/realtime_map.js``, given ``PIN_LOOK``).
FIT_OPTIONS = {"padding": [30, 30], "maxZoom": 16}
# What the page's script draws the pins and donuts with (given with the map, ``data-look``), so
# the legend and the map share one set of colours.
PIN_LOOK = {
    "closed": CLOSED_COLOR,
    "stale_dash": STALE_DASH,
    "popup_pad": POPUP_PAD_TOP_LEFT,
    "colors": {"available": AVAILABLE_COLOR, "taken": TAKEN_COLOR},
    "fit": FIT_OPTIONS,
}


def live_map(tile_url: str, bounds: Bounds | None = None) -> html.Div:
    """The user map, for a layout (its pins: ``assets/realtime_map.js``). ``tile_url`` is
    configuration (``PARKOPS_TILE_URL``), not data; ``bounds`` where the pins are
    (``map_routes.opening_bounds``): the map opens there, not on the world view it would leave as
    soon as the pins arrive (fetching the world's tiles for nothing)."""
    return html.Div(
        [
            html.Div(live_updates(PREFIX), className="mb-1"),
            html.Div(id=f"{PREFIX}-error"),
            dl.Map(
                dl.TileLayer(url=tile_url),
                id=f"{PREFIX}-map",
                **opening_view(bounds),
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
        # Read by the page's script as Leaflet makes the map: how to draw the pins, and whether
        # to fit the map on them (it opened on the world, not on their bounds).
        **_attributes({"data-look": json.dumps(PIN_LOOK), "data-fit": "false" if bounds else "true"}),
    )


def opening_view(bounds: Bounds | None) -> dict[str, Any]:
    """A ``dl.Map``'s opening view: on ``bounds`` (the pins, ``map_routes.opening_bounds``), else
    the world, which the page's script leaves for the pins on its first draw.

    The map does not report where it is moved to (``trackViewport``): nothing here reads that, and
    dash-leaflet's report assumes a ``center``, which a map opened on ``bounds`` has not (it threw
    on every move). Without it a pan or zoom costs no update of the page's state either."""
    if bounds:
        return {"bounds": bounds, "boundsOptions": FIT_OPTIONS, "trackViewport": False}
    return {"center": DEFAULT_CENTER, "zoom": 2, "trackViewport": False}


def _attributes(values: dict[str, str]) -> dict[str, Any]:
    """Attributes Dash takes only as keywords whose names are not Python names (``aria-*``)."""
    return dict(values)


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
