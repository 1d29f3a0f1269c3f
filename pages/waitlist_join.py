"""Join the Waitlist (``/waitlist/join/<product id>``): where a sold-out permit sends people. It
shows the permit, why it is sold out (or that it is not: then it links to booking), how many people
wait, and the person's place once in line.

Signed-in users only (``Role.USER``) for both kinds of permit, the simplest rule that works: an
offer is matched to its buyer by account, and My Waitlist needs one to find the entry again. A
guest is sent to sign in by the gate and comes back here.

A separate page module from My Waitlist because Dash registers one page per module. The layout
holds only the product id from the URL; everything else arrives through role-checked callbacks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.feedback import validation_alert
from dashboard.inputs import as_id
from dashboard.services import waitlist
from dashboard.services.errors import DomainError, NotFound, ValidationFailed
from dashboard.services.waitlist import ProductWaitlist
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(
    __name__,
    path_template="/waitlist/join/<product_id>",
    path="/waitlist/join/none",
    title="Join the Waitlist",
    min_role=Role.USER,
)

LABELS = {"product": "Permit", "email": "E-mail"}


def layout(product_id: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Link("← My Waitlist", href="/waitlist", className="small"),
            html.H1("Join the Waitlist", className="h3 mt-2"),
            dcc.Store(id="waitlistjoin-product", data=product_id),
            dcc.Store(id="waitlistjoin-version", data=0),
            html.Div(id="waitlistjoin-content"),
            html.Div(id="waitlistjoin-result", className="mt-3"),
            dbc.Button(
                "Join the waitlist",
                id="waitlistjoin-join",
                color="primary",
                n_clicks=0,
                disabled=True,
                className="mt-2",
            ),
        ],
        style={"maxWidth": "40rem"},
    )


def _product_id(raw: Any) -> int | None:
    return as_id(raw)


def _hold_text(hold: timedelta) -> str:
    minutes = int(hold.total_seconds() // 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minutes"


def _period(state: ProductWaitlist) -> str:
    if state.period_start is None or state.period_end is None:
        return ""
    tz = core().settings.tz
    if state.kind == "temporary":
        return "for the next hour"
    last_day = (state.period_end.astimezone(tz) - timedelta(seconds=1)).date()
    return f"for {state.period_start.astimezone(tz):%b %d, %Y} to {last_day:%b %d, %Y}"


def _content(state: ProductWaitlist, hold: timedelta) -> Any:
    facts = [
        html.H2(state.product_name, className="h5 mb-1"),
        html.Div(f"{state.lot_name} · {state.kind} permit {_period(state)}", className="text-muted mb-3"),
        dbc.Alert(
            state.reason,
            color="warning" if state.sold_out else "info",
            className="mb-2",
            id="waitlistjoin-reason",
        ),
        html.P(
            f"{state.waiting} {'person is' if state.waiting == 1 else 'people are'} waiting for a space in "
            f"{state.lot_name}.",
            className="mb-2",
        ),
    ]
    mine = state.mine
    if mine is not None and mine.status == "offered" and mine.offer_expires_at is not None:
        until = mine.offer_expires_at.astimezone(core().settings.tz).strftime("%a %b %d, %H:%M %Z")
        facts += [
            dbc.Alert(["A space is held for you until ", html.Strong(until), "."], color="success"),
            dbc.Button("Book now", href=mine.book_path, color="success"),
        ]
    elif mine is not None:
        facts.append(
            dbc.Alert(
                f"You are on the waitlist: number {mine.position} in line.", color="primary", className="mb-0"
            )
        )
    elif not state.sold_out and state.waiting == 0 and state.period_end is not None:
        facts.append(
            dbc.Button("Book now", href=waitlist.book_path(state.kind, state.lot_id), color="success")
        )
    else:
        facts.append(
            html.P(
                f"Join, and when a space frees up we e-mail you and hold it for you for {_hold_text(hold)}.",
                className="mb-0",
            )
        )
    return html.Div(facts)


@callback(
    Output("waitlistjoin-content", "children"),
    Output("waitlistjoin-join", "disabled"),
    Output("waitlistjoin-join", "style"),
    Input("waitlistjoin-product", "data"),
    Input("waitlistjoin-version", "data"),
    min_role=Role.USER,
)
def show(raw_product: Any, _version: int | None) -> tuple[Any, bool, dict[str, str]]:
    hidden = {"display": "none"}
    product_id = _product_id(raw_product)
    if product_id is None:
        return dbc.Alert("There is no such permit.", color="warning"), True, hidden
    settings = core().settings
    try:
        with session_scope() as session:
            state = waitlist.product_waitlist(
                session, product_id, current_user_id(), datetime.now(UTC), settings.tz
            )
            hold = waitlist.hold(session, core().secrets)
    except NotFound:
        return dbc.Alert("There is no such permit.", color="warning"), True, hidden
    return _content(state, hold), not state.can_join, ({} if state.can_join else hidden)


@callback(
    Output("waitlistjoin-result", "children"),
    Output("waitlistjoin-version", "data"),
    Input("waitlistjoin-join", "n_clicks"),
    State("waitlistjoin-product", "data"),
    State("waitlistjoin-version", "data"),
    min_role=Role.USER,
    prevent_initial_call=True,
)
def join(clicks: int | None, raw_product: Any, version: int | None) -> tuple[Any, Any]:
    product_id = _product_id(raw_product)
    user_id = current_user_id()
    if not clicks or product_id is None or user_id is None:
        return no_update, no_update
    try:
        with session_scope() as session:
            joined = waitlist.join(session, product_id, user_id, None, datetime.now(UTC), core().settings.tz)
    except ValidationFailed as exc:
        return validation_alert(exc, LABELS, heading="You could not join:"), (version or 0) + 1
    except DomainError as exc:
        return dbc.Alert(str(exc), color="danger"), (version or 0) + 1
    entry = joined.entry  # the place in line shows in the content above, re-read by the version bump
    if not joined.created:
        text = "You were already on this waitlist."
    else:
        text = (
            f"You joined the waitlist for {entry.product_name} in {entry.lot_name}. We will e-mail "
            f"{entry.email} when a space is held for you."
        )
    return dbc.Alert([text, " ", dcc.Link("My Waitlist", href="/waitlist")], color="success"), (
        version or 0
    ) + 1
