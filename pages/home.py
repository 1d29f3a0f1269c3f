"""Public landing page."""

import dash_bootstrap_components as dbc
from dash import html

from dashboard.callbacks import register_page
from models import Role

register_page(__name__, path="/", title="Home", min_role=Role.GUEST)


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("ParkOps"),
            html.P(
                "Real-time parking operations: live occupancy, permits and enforcement.", className="lead"
            ),
            dbc.Button("See where to park now", href="/real-time", color="primary"),
        ],
        className="py-4",
    )
