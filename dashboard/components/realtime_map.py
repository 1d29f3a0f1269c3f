"""Pieces of the user-side real-time map, shared by its pages and (later) content-page shortcodes
(``[real-time-map]``, ``[real-time-legend]``).

- ``donut``: the availability donut of a lot group (percent *available*), a plotly pie with a hole;
  ``donut_graph`` wraps it in a ``dcc.Graph`` inside a ``role="img"`` element whose label says
  the same in words, so a screen reader does not have to read the SVG.
- ``legend``: what the colours and icons mean (green = standard permits, yellow = temporary; pins
  in each group's map colour; stale and closed markers).
- ``permit_badges``: the green/yellow badges of one lot.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

AVAILABLE_COLOR = "#198754"  # Bootstrap success
TAKEN_COLOR = "#dee2e6"
STANDARD_COLOR = "success"  # green = standard permits
TEMPORARY_COLOR = "warning"  # yellow = temporary permits
STALE_DASH = "4 4"
CLOSED_COLOR = "#6c757d"


def availability_text(percent_available: float | None, status: str = "open") -> str:
    if status == "closed":
        return "Closed"
    if percent_available is None:
        return "No data"
    return f"{percent_available:.0f}% available"


def donut(percent_available: float | None, label: str, status: str = "open") -> go.Figure:
    """A donut of availability: the green share is free. Closed or unknown: a grey ring."""
    text = availability_text(percent_available, status)
    if percent_available is None or status == "closed":
        values, colors = [1], [TAKEN_COLOR]
        center = "Closed" if status == "closed" else "—"
    else:
        free = max(0.0, min(100.0, float(percent_available)))
        values, colors = [free, 100.0 - free], [AVAILABLE_COLOR, TAKEN_COLOR]
        center = f"{free:.0f}%"
    figure = go.Figure(
        go.Pie(
            values=values,
            labels=["available", "taken"][: len(values)],
            hole=0.65,
            sort=False,
            direction="clockwise",
            marker={"colors": colors},
            textinfo="none",
            hoverinfo="skip",
            showlegend=False,
        )
    )
    figure.update_layout(
        title={"text": f"{label}: {text}", "font": {"size": 12}, "x": 0.5, "xanchor": "center"},
        annotations=[{"text": center, "showarrow": False, "font": {"size": 20}, "x": 0.5, "y": 0.5}],
        margin={"l": 4, "r": 4, "t": 30, "b": 4},
        height=170,
        paper_bgcolor="rgba(0,0,0,0)",
        meta={"alt": f"{label}: {text}"},
    )
    return figure


def donut_graph(
    percent_available: float | None, label: str, status: str = "open", *, class_name: str = ""
) -> html.Div:
    """The donut as a static graph, labelled for screen readers."""
    return html.Div(
        dcc.Graph(
            figure=donut(percent_available, label, status),
            config={"displayModeBar": False, "staticPlot": True, "responsive": True},
            style={"height": "170px", "width": "100%"},
        ),
        role="img",
        **{"aria-label": f"{label}: {availability_text(percent_available, status)}"},
        className=f"realtime-donut {class_name}".strip(),
        style={"maxWidth": "240px", "margin": "0 auto"},
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
        **{"aria-hidden": "true"},
    )


def legend() -> html.Div:
    """The map's legend (the ``[real-time-legend]`` shortcode)."""
    items = [
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
