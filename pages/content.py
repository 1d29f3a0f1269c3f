"""Public content pages at ``/p/<slug>`` (System Messaging > Editing Pages).

The layout holds only the slug from the URL; the ``Role.GUEST`` callback loads the page, and only
if it is published. Body text is sanitised with nh3 (``content.render_html``), then built into
Dash components (``rich_text.from_html``): no raw HTML reaches the browser. Shortcodes:

- ``[real-time-legend]``: the real-time map's legend;
- ``[real-time-map]``: the live user map itself (``realtime_map.live_map``), served by the
  ``/real-time`` page's ``Role.GUEST`` refresh: guests see temporary permits only, as there;
- ``[parking_logix ...]``: the lot groups that have a Parking Logix API key, filtered.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html
from redis.exceptions import RedisError

from dashboard.callbacks import callback, register_page
from dashboard.components import rich_text
from dashboard.components.realtime_map import legend, live_map
from dashboard.map_routes import opening_bounds
from dashboard.services import content, occupancy
from dashboard.services.occupancy import Figure, LiveStore
from dashboard.services.wording import ago
from dashboard.web import core, session_scope
from models import Role

register_page(
    __name__,
    path_template="/p/<slug>",
    path="/p/none",
    title="Page",
    min_role=Role.GUEST,
)


def layout(slug: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [dcc.Store(id="content-slug", data=slug), html.Div(id="content-body")],
        className="content-page",
    )


def _not_found() -> Any:
    return html.Div(
        [
            html.H1("Page not found", className="h3"),
            html.P(["Go to the ", dcc.Link("home page", href="/"), "."]),
        ],
        id="content-not-found",
    )


def _logix_figure(figure: Figure | None, closed: bool, now: datetime) -> str:
    if closed:
        return " — closed"
    if figure is None:
        return " — no live data"
    stale = ", out of date" if figure.stale else ""
    return f" — {figure.available} of {figure.capacity} spaces free ({ago(figure.updated_at, now)}{stale})"


def _logix_list(session: Any, params: dict[str, object]) -> Any:
    groups = content.parking_logix_groups(session, params)
    heading = [html.H2(str(params["name"]), className="h5")] if params.get("name") else []
    now = datetime.now(UTC)
    policy = occupancy.load_policy(session, core().secrets)
    try:
        figures = content.logix_figures(
            session, LiveStore(core().redis), policy.staleness, now, [g.id for g in groups]
        )
    except RedisError:
        figures = None
    items = [
        html.Li(
            [
                dcc.Link(g.name, href=f"/lot-groups/{g.id}"),
                html.Span(
                    _logix_figure(figures.get(g.id), g.is_closed, now)
                    if figures is not None
                    else " — live figures are unavailable right now",
                    className="text-muted",
                ),
            ],
            id=f"content-logix-{g.id}",
        )
        for g in groups
    ]
    body: Any = html.Ul(items, className="content-logix") if items else html.P("No lot groups to show.")
    return html.Div([*heading, body], className="my-3")


def _segment(session: Any, segment: content.Segment, body_format: str) -> Any:
    if isinstance(segment, content.Html):
        return html.Div(rich_text.from_html(content.render_html(segment.text, body_format)), className="mb-2")
    if isinstance(segment, content.Notice):
        return dbc.Alert(segment.message, color="secondary", className="small py-1 content-notice")
    if segment.name == "real-time-legend":
        return legend()
    if segment.name == "real-time-map":
        return html.Div(live_map(core().settings.tile_url, opening_bounds()), className="my-3")
    return _logix_list(session, segment.params)


@callback(Output("content-body", "children"), Input("content-slug", "data"), min_role=Role.GUEST)
def show_page(slug: Any) -> Any:
    if not isinstance(slug, str):
        return _not_found()
    with session_scope() as session:
        page = content.get_published(session, slug)
        if page is None:
            return _not_found()
        segments = content.parse_shortcodes(page.body)
        children = [_segment(session, s, page.body_format) for s in segments]
    return html.Div([html.H1(page.title, className="h3"), *children])
