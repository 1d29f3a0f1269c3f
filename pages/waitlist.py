"""My Waitlist: the signed-in person's waitlist entries, their place in line, and the offers held
for them (with the link to book and the time the hold ends, in site time). Offers arrive by email
too; this page is where to find one again, or to step out of a line.

Signed-in users only (``Role.USER``), for standard and temporary permits alike: an offer is
matched to its buyer by account, and an account is also what lets a person come back here. The
layout is empty scaffolding; entries arrive through the role-checked refresh, which also runs once
a minute so an offer made meanwhile shows up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.inputs import as_id
from dashboard.services import waitlist
from dashboard.services.errors import DomainError
from dashboard.services.waitlist import EntryView
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(__name__, path="/waitlist", title="My Waitlist", min_role=Role.USER)

REFRESH_MS = 60_000
STATUS_COLOURS = {
    "offered": "success",
    "waiting": "primary",
    "fulfilled": "secondary",
    "expired": "warning",
    "cancelled": "light",
}


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Location(id="waitlist-url"),
            dcc.Interval(id="waitlist-tick", interval=REFRESH_MS),
            html.H1("My Waitlist", className="h3"),
            html.P(
                "Permits you are waiting for. When a space frees up, the first person in line gets an "
                "e-mail and the space is held for them for a while; book it before the hold ends, or it "
                "goes to the next person.",
                className="text-muted",
            ),
            dbc.Alert(id="waitlist-flash", is_open=False, dismissable=True),
            dcc.Store(id="waitlist-version", data=0),
            html.Div(id="waitlist-entries"),
        ],
        style={"maxWidth": "48rem"},
    )


def _local(moment: datetime) -> str:
    return moment.astimezone(core().settings.tz).strftime("%a %b %d, %H:%M %Z")


def _status(entry: EntryView) -> Any:
    color = STATUS_COLOURS.get(entry.status, "secondary")
    return dbc.Badge(
        entry.status,
        color=color,
        text_color="dark" if color in ("warning", "light") else None,
        className="ms-2",
    )


def _detail(entry: EntryView) -> list[Any]:
    if entry.status == "offered" and entry.offer_expires_at is not None:
        return [
            html.P(
                ["A space is held for you until ", html.Strong(_local(entry.offer_expires_at)), "."],
                className="mb-2",
            ),
            dbc.Button(
                "Book now",
                href=entry.book_path,
                color="success",
                className="me-2 mb-1",
                id={"type": "waitlist-book", "entry": entry.id},
            ),
        ]
    if entry.status == "waiting":
        ahead = (entry.position or 1) - 1
        people = "nobody is" if ahead == 0 else f"{ahead} {'person is' if ahead == 1 else 'people are'}"
        return [
            html.P(
                [f"Number {entry.position} in line for {entry.lot_name}: {people} ahead of you."],
                className="mb-2",
            )
        ]
    ended = {
        "fulfilled": "You booked this permit.",
        "expired": "The offer lapsed and the space went to the next person. You can join again.",
        "cancelled": "You left this waitlist.",
    }
    return [html.P(ended.get(entry.status, ""), className="mb-0 small text-muted")]


def _card(entry: EntryView) -> Any:
    leave = (
        [
            dbc.Button(
                "Decline the offer" if entry.status == "offered" else "Leave the waitlist",
                id={"type": "waitlist-leave", "entry": entry.id},
                color="outline-danger",
                size="sm",
                className="mb-1",
                n_clicks=0,
                title=f"Leave the waitlist for {entry.product_name}",
            )
        ]
        if entry.active
        else []
    )
    return dbc.Card(
        dbc.CardBody(
            [
                html.H2(
                    [entry.product_name, _status(entry)],
                    className="h6 mb-1",
                ),
                html.Div(
                    f"{entry.lot_name} · {entry.kind} permit · joined {_local(entry.created_at)}",
                    className="small text-muted mb-2",
                ),
                *_detail(entry),
                *leave,
            ]
        ),
        className="mb-2" + (" border-success" if entry.status == "offered" else ""),
        id=f"waitlist-entry-{entry.id}",
    )


@callback(
    Output("waitlist-entries", "children"),
    Input("waitlist-url", "pathname"),
    Input("waitlist-tick", "n_intervals"),
    Input("waitlist-version", "data"),
    min_role=Role.USER,
)
def refresh(_path: str | None, _tick: int | None, _version: int | None) -> Any:
    user_id = current_user_id()
    if user_id is None:
        return None
    with session_scope() as session:
        entries = waitlist.entries_of(session, user_id, datetime.now(UTC))
    if not entries:
        return html.P(
            "You are not on any waitlist. When a permit you want is sold out, its page offers to put you "
            "in line.",
            className="text-muted",
        )
    active = [entry for entry in entries if entry.active]
    earlier = [entry for entry in entries if not entry.active]
    parts: list[Any] = [_card(entry) for entry in active]
    if not active:
        parts.append(html.P("You are not waiting for anything now.", className="text-muted"))
    if earlier:
        parts += [html.H2("Earlier", className="h6 mt-4"), *[_card(entry) for entry in earlier]]
    return parts


@callback(
    Output("waitlist-flash", "children"),
    Output("waitlist-flash", "color"),
    Output("waitlist-flash", "is_open"),
    Output("waitlist-version", "data"),
    Input({"type": "waitlist-leave", "entry": ALL}, "n_clicks"),
    State("waitlist-version", "data"),
    min_role=Role.USER,
    prevent_initial_call=True,
)
def leave(_clicks: list[int | None], version: int | None) -> tuple[Any, ...]:
    """Only a real click acts (re-rendered buttons come back with n_clicks 0); the entry must be
    the signed-in person's own, which the service checks."""
    trigger = dash.ctx.triggered_id
    clicked = dash.ctx.triggered[0]["value"] if dash.ctx.triggered else None
    entry_id = as_id(trigger.get("entry")) if isinstance(trigger, dict) else None
    user_id = current_user_id()
    if not clicked or not isinstance(entry_id, int) or user_id is None:
        return (no_update,) * 4
    try:
        with session_scope() as session:
            entry = waitlist.leave(session, entry_id, user_id, datetime.now(UTC))
    except DomainError as exc:
        return str(exc), "danger", True, (version or 0) + 1
    return (
        f"You left the waitlist for {entry.product_name} in {entry.lot_name}.",
        "secondary",
        True,
        (version or 0) + 1,
    )
