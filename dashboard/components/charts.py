"""What the chart pages (Reports, the admin Dashboard) share about Plotly figures."""

from __future__ import annotations

import plotly.graph_objects as go


def blank_figure(height: int, message: str = "") -> go.Figure:
    """An empty chart of the given height (what a chart box starts with, or shows when there is
    nothing to plot), optionally saying why; no axes, a transparent background, so the box keeps
    its size and the page does not jump when data arrives."""
    figure = go.Figure()
    figure.update_layout(
        annotations=[{"text": message, "showarrow": False, "font": {"size": 14, "color": "#6c757d"}}]
        if message
        else [],
        height=height,
        margin={"l": 8, "r": 8, "t": 8, "b": 8},
        xaxis={"visible": False},
        yaxis={"visible": False},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
    )
    return figure
