"""Lot Group (user side): the page "Book permit" opens from a pin of the real-time map.

The availability donut at the top, then the group's lots with their permit options: a temporary
permit goes to the quick checkout (``/checkout/temp/<lot id>``), a standard one (signed-in users
only) to the regular booking page (``/permits/book/<lot id>``). Guests see only temporary permits.

The layout holds only the group id from the URL (a path variable, not data); the group itself is
read by the ``Role.GUEST`` refresh, which also follows live occupancy changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html
from redis.exceptions import RedisError

from dashboard.auth import current_role
from dashboard.callbacks import callback, register_page
from dashboard.components.live import live_inputs, live_updates, register_live_updates
from dashboard.components.realtime_map import donut, legend, permit_badges
from dashboard.inputs import as_id
from dashboard.services import maps, occupancy, quick_checkout
from dashboard.services.errors import NotFound
from dashboard.services.maps import UserMapGroup, UserMapLot, sold_out
from dashboard.services.occupancy import LiveStore
from dashboard.web import core, session_scope
from models import Role

register_page(
    __name__,
    path_template="/lot-groups/<group_id>",
    path="/lot-groups/none",
    title="Lot Group",
    min_role=Role.GUEST,
)

PREFIX = "lotgroup"
register_live_updates(PREFIX)


def layout(group_id: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [
            html.Div(
                [dcc.Link("← Real-Time Map", href="/real-time", className="small"), *live_updates(PREFIX)],
                className="d-flex flex-wrap align-items-baseline gap-3",
            ),
            dcc.Store(id="lotgroup-id", data=group_id),
            html.Div(id="lotgroup-content", className="mt-2"),
        ],
        style={"maxWidth": "100%", "overflowX": "hidden"},
    )


def standard_href(lot_id: int) -> str:
    return f"/permits/book/{lot_id}"


def temporary_href(lot_id: int) -> str:
    return f"/checkout/temp/{lot_id}"


def _waitlist_links(product_ids: tuple[int, ...], logged_in: bool) -> list[Any]:
    """The way on from a sold-out lot: its temporary permits' waitlist (a guest logs in first and
    lands on it)."""
    if not product_ids:
        return []
    join = f"/waitlist/join/{product_ids[0]}"
    if logged_in:
        return [dcc.Link("Join the waitlist", href=join, className="small lotgroup-waitlist")]
    return [
        dcc.Link(
            "Log in to join the waitlist",
            href="/login?" + urlencode({"next": join}),
            className="small lotgroup-waitlist",
        )
    ]


def _buttons(lot: UserMapLot, waitlist: tuple[int, ...], logged_in: bool) -> list[Any]:
    buttons: list[Any] = []
    if lot.offers_standard:
        buttons.append(
            dbc.Button(
                "Book a standard permit",
                href=standard_href(lot.lot_id),
                color="success",
                size="sm",
                className="lotgroup-standard",
            )
        )
    if lot.offers_temporary and sold_out(lot):
        # Every permit it may sell is taken now: no button into a checkout that can only refuse.
        buttons.append(
            html.Span(
                [
                    dbc.Badge("Temporary permits sold out", color="secondary", className="me-2"),
                    dcc.Link("Find another lot with space", href="/real-time", className="small me-2"),
                    *_waitlist_links(waitlist, logged_in),
                ],
                className="lotgroup-sold-out",
            )
        )
    elif lot.offers_temporary:
        buttons.append(
            dbc.Button(
                "Buy a temporary permit",
                href=temporary_href(lot.lot_id),
                color="warning",
                size="sm",
                className="lotgroup-temporary",
            )
        )
    return buttons


def _lot_card(lot: UserMapLot, logged_in: bool, waitlist: tuple[int, ...]) -> Any:
    full = f"{lot.percent_full:.0f}% of permits taken" if lot.percent_full is not None else "no permit figure"
    if lot.offers_any:
        actions: Any = html.Div(_buttons(lot, waitlist, logged_in), className="d-flex flex-wrap gap-2 mt-2")
    elif not logged_in:
        actions = html.P(
            [dcc.Link("Log in", href="/login"), " to see the standard permits of this lot."],
            className="small text-muted mb-0 mt-2",
        )
    else:
        actions = html.P("No permits are sold online for this lot.", className="small text-muted mb-0 mt-2")
    return dbc.Card(
        dbc.CardBody(
            [
                html.H2(
                    [lot.name, *permit_badges(lot.offers_standard, lot.offers_temporary)],
                    className="h6 mb-1",
                ),
                html.Div(full, className="small text-muted"),
                actions,
            ]
        ),
        className="mb-2",
        id=f"lotgroup-lot-{lot.lot_id}",
    )


def _content(group: UserMapGroup, logged_in: bool, waitlists: dict[int, tuple[int, ...]]) -> Any:
    note = []
    if group.status == "closed":
        note = [dbc.Alert("This lot group is closed.", color="secondary")]
    elif group.status == "stale":
        note = [dbc.Alert("The count is out of date.", color="warning")]
    return html.Div(
        [
            html.H1(group.name, className="h3"),
            donut(group.percent_available, group.name, group.status),
            *note,
            html.Div(
                [_lot_card(lot, logged_in, waitlists.get(lot.lot_id, ())) for lot in group.lots]
                or html.P("No lots.")
            ),
            legend(),
        ]
    )


@callback(
    Output("lotgroup-content", "children"),
    Input("lotgroup-id", "data"),
    *live_inputs(PREFIX),
    min_role=Role.GUEST,
)
def refresh(group_id: Any, _message: str | None, _tick: int | None) -> Any:
    wanted = as_id(group_id)
    if wanted is None:
        return _not_found()
    logged_in = current_role() > Role.GUEST
    now = datetime.now(UTC)
    try:
        with session_scope() as session:
            policy = occupancy.load_policy(session, core().secrets)
            group = maps.lot_group_page(
                session, LiveStore(core().redis), policy, now, wanted, logged_in=logged_in
            )
            waitlists = {
                lot.lot_id: tuple(
                    option.product_id
                    for option in quick_checkout.temporary_offer(session, lot.lot_id).options
                )
                for lot in group.lots
                if lot.offers_temporary and sold_out(lot)
            }
    except NotFound:
        return _not_found()
    except RedisError:
        return dbc.Alert("Live counts are unavailable right now.", color="warning")
    return _content(group, logged_in, waitlists)


def _not_found() -> Any:
    return html.Div(
        [
            html.H1("Lot group not found", className="h3"),
            html.P(["See the ", dcc.Link("Real-Time Map", href="/real-time"), " for the lot groups."]),
        ]
    )
