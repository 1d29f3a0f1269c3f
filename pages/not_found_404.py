"""Shown by Dash's router for any path no page claims."""

from dash import html

from dashboard.callbacks import register_page
from models import Role

register_page(__name__, path="/404", title="Not found", min_role=Role.GUEST)


def layout(**_query: str) -> html.Div:
    return html.Div([html.H1("Page not found"), html.A("Back to the home page", href="/")], className="py-5")
