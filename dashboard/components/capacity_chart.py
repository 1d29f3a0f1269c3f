"""The evidence under a capacity suggestion as a small chart (Manage Capacity's edit dialog).

Its own module so the page keeps to its layout and callbacks; the chart is a plain function of the
service's ``LotCapacity`` and the site's time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

import plotly.graph_objects as go
from dash import dcc, html

from dashboard.services.capacity import LotCapacity
from dashboard.services.days import moment_words

CHART_HEIGHT = 220  # px: small enough to leave the sentence and the input in view on a phone


def evidence_chart(row: LotCapacity, tz: tzinfo) -> Any:
    """Each day's busiest hour over the window: the lot's estimated cars and its permits valid
    then, the spaces as a line, and the hour the advice stands on marked."""
    found = row.evidence
    if found is None or not found.days:
        return html.P("No sensor readings in the window: nothing to chart.", className="small text-muted")
    days = [hour.at.astimezone(tz) for hour in found.days]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=days,
            y=[hour.cars for hour in found.days],
            name="Cars (estimated)",
            mode="lines",
            line={"color": "#0d6efd", "width": 2},
        )
    )
    figure.add_trace(
        go.Scatter(
            x=days,
            y=[hour.permits for hour in found.days],
            name="Permits valid",
            mode="lines",
            line={"color": "#6c757d", "width": 2, "dash": "dot"},
        )
    )
    figure.add_trace(
        go.Scatter(
            x=[days[0], days[-1]],
            y=[row.capacity, row.capacity],
            name="Spaces",
            mode="lines",
            line={"color": "#dc3545", "width": 1},
            opacity=0.6,
            hoverinfo="skip",
        )
    )
    if found.peak is not None:
        figure.add_trace(
            go.Scatter(
                x=[found.peak.at.astimezone(tz)],
                y=[found.peak.cars],
                name="Peak",
                mode="markers",
                marker={"color": "#dc3545", "size": 10, "symbol": "diamond"},
            )
        )
    figure.update_layout(
        height=CHART_HEIGHT,
        margin={"l": 36, "r": 8, "t": 8, "b": 8},
        legend={"orientation": "h", "y": -0.2, "x": 0, "font": {"size": 11}},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        yaxis={"rangemode": "tozero", "gridcolor": "#e9ecef"},
        xaxis={"tickformat": "%d %b"},
    )
    peak = found.peak
    words = (
        f" The marked hour is {moment_words(peak.at, datetime.now(UTC), tz)}: about {peak.cars} cars, "
        f"{peak.permits} permits."
        if peak is not None
        else ""
    )
    described: dict[str, Any] = {
        "aria-label": f"Chart: {row.name}'s estimated cars and permits valid at each day's busiest hour "
        f"over the window; the red line is its {row.capacity} spaces.{words}"
    }
    return html.Div(
        dcc.Graph(
            id="capacity-chart",
            figure=figure,
            config={"displayModeBar": False, "responsive": True, "scrollZoom": False},
            style={"height": f"{CHART_HEIGHT}px"},
        ),
        role="img",
        className="capacity-chart mb-2",
        **described,
    )
