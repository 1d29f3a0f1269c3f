"""Lot Status (officers): every lot as a card, with its group's physical count and its own permits.

Made for a phone on patrol: one column of cards rather than a wide table. Each card shows the
group's physical figure (Mistall, Parking Logix or the live sensors; the same figure the maps use)
and the lot's permits sold against its allowance; the two are meant to differ (cars present versus
permits sold). The list sorts fullest first, emptiest first or by name. "Fullness" is the group's
physical percent, else (no sensor data) the lot's permit percent; closed groups come last.

The layout is empty scaffolding; the cards arrive through one ``Role.OFFICER`` callback, which runs
on every pushed occupancy change, on the poll (``dashboard.components.live``) and on a new sort.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, html
from redis.exceptions import RedisError

from dashboard.callbacks import callback, register_page
from dashboard.components.figures import ago, percent, source_label
from dashboard.components.live import live_inputs, live_updates, register_live_updates
from dashboard.services import occupancy
from dashboard.services.occupancy import Figure, GroupOccupancy, LiveStore, LotPermits
from dashboard.web import core, session_scope
from models import Role

register_page(__name__, path="/officer", title="Lot Status", min_role=Role.OFFICER)

PREFIX = "officer"
register_live_updates(PREFIX)

SORTS = [
    {"label": "Fullest first", "value": "fullest"},
    {"label": "Emptiest first", "value": "emptiest"},
    {"label": "Name", "value": "name"},
]


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.Div(
                [html.H1("Lot Status", className="h3 mb-0"), *live_updates(PREFIX)],
                className="d-flex align-items-baseline gap-3 flex-wrap",
            ),
            html.P(
                "Physical: cars counted in the lot's group. Permits: permits sold against the lot's "
                "allowance. The two are meant to differ.",
                className="text-muted small mt-2",
            ),
            dbc.RadioItems(
                id="officer-sort",
                options=SORTS,
                value="fullest",
                inline=True,
                className="mb-3",
                inputClassName="me-1",
            ),
            html.Div(id="officer-cards", **{"aria-live": "polite"}),
        ],
        className="officer-status",
    )


def fullness(state: GroupOccupancy, lot: LotPermits) -> float | None:
    """What the sort orders by: the physical percent, else the lot's permit percent; None if closed."""
    if state.closed:
        return None
    if state.physical is not None and state.physical.percent is not None:
        return state.physical.percent
    return lot.percent


def sort_lots(
    pairs: list[tuple[GroupOccupancy, LotPermits]], order: str | None
) -> list[tuple[GroupOccupancy, LotPermits]]:
    by_name = sorted(pairs, key=lambda pair: (pair[1].name.lower(), pair[1].lot_id))
    if order == "name":
        return by_name
    known = [pair for pair in by_name if fullness(*pair) is not None]
    unknown = [pair for pair in by_name if fullness(*pair) is None]
    known.sort(key=lambda pair: fullness(*pair) or 0.0, reverse=order != "emptiest")
    return known + unknown


def _physical(figure: Figure | None, now: datetime) -> Any:
    if figure is None:
        return html.Div("Physical: no sensor data", className="text-muted")
    badges: list[Any] = []
    if figure.stale:
        badges.append(dbc.Badge("stale", color="warning", text_color="dark", className="ms-1"))
    if figure.flag:
        badges.append(dbc.Badge("flagged", color="danger", className="ms-1", title=figure.flag))
    return html.Div(
        [
            "Physical: ",
            html.Strong(f"{figure.occupied} / {figure.capacity}", className="officer-physical"),
            f" · {percent(figure.percent)} full · {figure.available} free",
            *badges,
            html.Div(
                f"{source_label(figure)} · updated {ago(figure.updated_at, now)}",
                className="small text-muted",
            ),
        ]
    )


def _card(state: GroupOccupancy, lot: LotPermits, now: datetime) -> Any:
    title = [html.Span(lot.name, className="fw-semibold")]
    if state.closed:
        title.append(dbc.Badge("Closed", color="dark", className="ms-2"))
    return dbc.Card(
        dbc.CardBody(
            [
                html.H2(title, className="h6 mb-1"),
                html.Div(
                    [
                        html.Span(
                            className="d-inline-block rounded-circle me-1 align-middle",
                            style={"width": "0.7rem", "height": "0.7rem", "backgroundColor": state.map_color},
                        ),
                        state.name,
                    ],
                    className="small text-muted mb-2",
                ),
                _physical(state.physical, now),
                html.Div(
                    [
                        "Permits: ",
                        html.Strong(f"{lot.sold} / {lot.allowance}", className="officer-permits"),
                        f" sold · {lot.available} left",
                    ]
                ),
            ],
            className="py-2",
        ),
        id=f"officer-lot-{lot.lot_id}",
        className="mb-2 officer-card",
        style={"borderLeft": f"0.4rem solid {state.map_color}"},
    )


@callback(
    Output("officer-cards", "children"),
    *live_inputs(PREFIX),
    Input("officer-sort", "value"),
    min_role=Role.OFFICER,
)
def refresh(_message: str | None, _tick: int | None, order: str | None) -> Any:
    """Re-read every lot on a pushed change, a poll tick or a new sort (the pushed message is
    public and ignored: the cards come from this role-checked read)."""
    now = datetime.now(UTC)
    try:
        with session_scope() as session:
            policy = occupancy.load_policy(session, core().secrets)
            states = occupancy.group_states(session, LiveStore(core().redis), policy.staleness, now)
    except RedisError:
        return dbc.Alert("Live counts are unavailable: the Redis server is not reachable.", color="danger")
    pairs = [(state, lot) for state in states for lot in state.lots]
    if not pairs:
        return html.P("There are no lots yet.", className="text-muted")
    return [_card(state, lot, now) for state, lot in sort_lots(pairs, order)]
