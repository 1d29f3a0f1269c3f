"""Manage Capacity: every lot's capacity, permits allowed, sold and left, the physical peak the
sensors saw, and a suggested allowance (``dashboard.services.capacity`` explains the rule), with
the allowance edited in a dialog that shows the evidence and the lot's trail of changes.

A dialog rather than an input in the table: the table is re-read after every save and on every
filter change, which would throw away what a manager is typing. Managers (not only admins) change
allowances: deciding how far to oversell is their job, and every change is audited.

The layout is empty scaffolding; rows, the group choices and the dialog's content arrive through
``Role.MANAGER`` callbacks. Filters (name, lot group) only narrow the rows the server already sends
a manager; the window and the safety margin change the advice and are checked by the service.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.feedback import validation_alert
from dashboard.inputs import as_id
from dashboard.services import capacity, lots, waitlist
from dashboard.services.capacity import AllowanceChange, LotCapacity
from dashboard.services.errors import DomainError, ValidationFailed
from dashboard.web import core, current_user_id, session_scope
from models import Role
from workers import email_delivery

register_page(__name__, path="/manage/capacity", title="Manage Capacity", min_role=Role.MANAGER)

WINDOWS = (14, 28, 56, 90)
ALL_GROUPS = "all"  # not "": a Select shows its hidden placeholder for an empty value
LABELS = {"allowance": "Permits allowed", "days": "History window", "margin": "Safety margin"}


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Location(id="capacity-url"),
            html.H1("Manage Capacity", className="h3"),
            html.P(
                [
                    "How many permits each lot may sell. The physical peak is the busiest reading of the "
                    "lot's group in the window: sensors count lot groups, not lots, so a lot's share is "
                    "estimated as the group's peak percent × the lot's capacity. The suggestion assumes "
                    "parked cars grow with permits sold and keeps the busiest time below 100% minus the "
                    "safety margin; it never suggests fewer than are sold now, and needs a week of "
                    "sensor history.",
                ],
                className="text-muted",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            dbc.Label("Search lots", html_for="capacity-search"),
                            dbc.Input(
                                id="capacity-search",
                                type="search",
                                placeholder="Lot name or code",
                                debounce=True,
                            ),
                        ],
                        xs=12,
                        sm=6,
                        lg=3,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Lot group", html_for="capacity-group"),
                            dbc.Select(
                                id="capacity-group",
                                options=[{"label": "All groups", "value": ALL_GROUPS}],
                                value=ALL_GROUPS,
                            ),
                        ],
                        xs=12,
                        sm=6,
                        lg=3,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("History window", html_for="capacity-days"),
                            dbc.Select(
                                id="capacity-days",
                                options=[{"label": f"Last {d} days", "value": str(d)} for d in WINDOWS],
                                value=str(capacity.DEFAULT_DAYS),
                            ),
                        ],
                        xs=6,
                        lg=3,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Safety margin (%)", html_for="capacity-margin"),
                            dbc.Input(
                                id="capacity-margin",
                                type="number",
                                min=0,
                                max=capacity.MAX_MARGIN_PERCENT,
                                step=1,
                                value=capacity.DEFAULT_MARGIN_PERCENT,
                                debounce=True,
                                inputMode="numeric",
                            ),
                        ],
                        xs=6,
                        lg=3,
                    ),
                ],
                className="g-2 mb-3",
            ),
            dbc.Alert(id="capacity-flash", is_open=False, dismissable=True),
            dcc.Store(id="capacity-version", data=0),
            html.Div(id="capacity-table"),
            _dialog(),
        ]
    )


def _dialog() -> Any:
    """Empty scaffolding: the lot's figures, the value and the trail arrive when it opens."""
    return dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle("Permits allowed", id="capacity-modal-title")),
            dbc.ModalBody(
                [
                    dcc.Store(id="capacity-lot"),
                    dcc.Store(id="capacity-suggested"),
                    html.Div(id="capacity-modal-summary"),
                    dbc.Label("Permits allowed", html_for="capacity-allowance", className="mt-2"),
                    dbc.InputGroup(
                        [
                            dbc.Input(
                                id="capacity-allowance", type="text", inputMode="numeric", autoComplete="off"
                            ),
                            dbc.Button(
                                "Use suggestion",
                                id="capacity-use-suggestion",
                                color="outline-primary",
                                n_clicks=0,
                            ),
                        ]
                    ),
                    html.Div(
                        "A whole number. It may exceed the capacity; lowering it below the permits sold "
                        "cancels none of them.",
                        className="form-text",
                    ),
                    html.Div(id="capacity-modal-error", className="mt-3"),
                    html.H2("Changes", className="h6 mt-4"),
                    html.Div(id="capacity-history"),
                ]
            ),
            dbc.ModalFooter(
                [
                    dbc.Button("Cancel", id="capacity-cancel", color="secondary", n_clicks=0),
                    dbc.Button("Save", id="capacity-save", color="primary", n_clicks=0),
                ]
            ),
        ],
        id="capacity-modal",
        is_open=False,
        scrollable=True,
    )


def _local(moment: datetime) -> str:
    return moment.astimezone(core().settings.tz).strftime("%Y-%m-%d %H:%M")


def _whole(value: Any, default: int) -> Any:
    """The form's number as an int when it is one; anything else goes to the service to refuse."""
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() else value


def _allowed(row: LotCapacity) -> Any:
    note = " (= capacity)" if row.permits_allowed is None else ""
    if row.allowance > row.capacity:
        note = f" (+{row.allowance - row.capacity})"
    return html.Span([str(row.allowance), html.Small(note, className="text-muted")])


def _peak(row: LotCapacity) -> Any:
    if row.peak is None:
        return html.Span("—", className="text-muted")
    return html.Div(
        [
            html.Strong(f"{row.peak.percent:.0f}%"),
            html.Div(f"≈ {row.estimated_peak_cars} of {row.capacity} spaces", className="small text-muted"),
        ]
    )


def _suggestion(row: LotCapacity) -> Any:
    sentence = html.Div(row.suggestion.sentence, className="small")
    if row.suggestion.allowance is None:
        return html.Div(sentence, className="text-muted")
    return html.Div([html.Strong(str(row.suggestion.allowance)), sentence])


def _table(rows: list[LotCapacity]) -> Any:
    header = ["Lot", "Capacity", "Allowed", "Sold", "Available", "Suggestion", "Physical peak", "Waiting"]
    body = [
        html.Tr(
            [
                html.Td(
                    [
                        html.Div(row.name, className="fw-semibold"),
                        html.Div(row.group_name or "no lot group", className="small text-muted"),
                        *([dbc.Badge("inactive", color="secondary")] if not row.is_active else []),
                        # In the first column, so a phone reaches it without scrolling the table.
                        dbc.Button(
                            "Edit",
                            id={"type": "capacity-edit", "lot": row.lot_id},
                            size="sm",
                            color="outline-primary",
                            n_clicks=0,
                            title=f"Edit the permits allowed in {row.name}",
                            className="mt-1",
                        ),
                    ]
                ),
                html.Td(row.capacity, className="text-end"),
                html.Td(_allowed(row), className="text-end"),
                html.Td(row.sold, className="text-end"),
                html.Td(row.available, className="text-end"),
                html.Td(_suggestion(row), style={"minWidth": "14rem"}),
                html.Td(_peak(row)),
                html.Td(row.waiting or "—", className="text-end"),
            ],
            id=f"capacity-row-{row.lot_id}",
        )
        for row in rows
    ]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h, scope="col") for h in header])), html.Tbody(body)],
        hover=True,
        responsive=True,
        size="sm",
        className="align-middle",
        id="capacity-grid",
    )


def _matches(row: LotCapacity, query: str | None, group: str | None) -> bool:
    if group and group != ALL_GROUPS and str(row.group_id) != group:
        return False
    haystack = f"{row.name} {row.code or ''}".lower()
    return all(word in haystack for word in (query or "").lower().split())


@callback(
    Output("capacity-group", "options"),
    Input("capacity-url", "pathname"),
    min_role=Role.MANAGER,
)
def groups(_path: str | None) -> list[dict[str, str]]:
    with session_scope() as session:
        choices = lots.group_choices(session)
    return [{"label": "All groups", "value": ALL_GROUPS}] + [
        {"label": name, "value": str(gid)} for gid, name in choices
    ]


@callback(
    Output("capacity-table", "children"),
    Input("capacity-search", "value"),
    Input("capacity-group", "value"),
    Input("capacity-days", "value"),
    Input("capacity-margin", "value"),
    Input("capacity-version", "data"),
    min_role=Role.MANAGER,
)
def refresh(query: str | None, group: str | None, days: Any, margin: Any, _version: int | None) -> Any:
    try:
        with session_scope() as session:
            rows = capacity.overview(
                session,
                datetime.now(UTC),
                days=_whole(days, capacity.DEFAULT_DAYS),
                margin_percent=_whole(margin, capacity.DEFAULT_MARGIN_PERCENT),
            )
    except ValidationFailed as exc:
        return validation_alert(exc, LABELS, heading="Cannot show the advice:")
    if not rows:
        return html.P("There are no lots yet.", className="text-muted")
    shown = [row for row in rows if _matches(row, query, group)]
    if not shown:
        return html.P("No lot matches the filters.", className="text-muted")
    count = html.P(
        f"{len(shown)} of {len(rows)} lot(s)", className="small text-muted mb-1", id="capacity-count"
    )
    return html.Div([count, _table(shown)])


def _summary(row: LotCapacity) -> Any:
    facts = [
        ("Capacity", f"{row.capacity} spaces"),
        ("Sold now", str(row.sold)),
        ("Available now", str(row.available)),
        ("People waiting", str(row.waiting)),
        ("Physical peak", "no sensor data" if row.peak is None else f"{row.peak.percent:.0f}% of the group"),
    ]
    return html.Div(
        [
            html.Dl(
                [
                    part
                    for label, value in facts
                    for part in (html.Dt(label), html.Dd(value, className="mb-1"))
                ],
                className="mb-2",
            ),
            dbc.Alert(
                row.suggestion.sentence,
                color="info" if row.suggestion.allowance is not None else "light",
                className="mb-0 small",
                id="capacity-modal-advice",
            ),
        ]
    )


def _value(raw: int | None) -> str:
    return "capacity" if raw is None else str(raw)


def _history(changes: list[AllowanceChange]) -> Any:
    if not changes:
        return html.P("No changes recorded yet.", className="text-muted small")
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(h, scope="col") for h in ("When", "Who", "From", "To")])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(_local(change.at)),
                            html.Td(change.actor_email or "system"),
                            html.Td(_value(change.old)),
                            html.Td(_value(change.new)),
                        ]
                    )
                    for change in changes
                ]
            ),
        ],
        size="sm",
        responsive=True,
        className="small",
        id="capacity-history-table",
    )


# Outputs of ``edit``, in order.
EDIT_OUTPUTS = (
    "modal_open",
    "lot",
    "title",
    "summary",
    "value",
    "suggested",
    "suggest_disabled",
    "history",
    "error",
    "flash",
    "flash_color",
    "flash_open",
    "version",
)


def _edit(**changes: Any) -> tuple[Any, ...]:
    unknown = set(changes) - set(EDIT_OUTPUTS)
    if unknown:
        raise TypeError(f"not an output of edit: {sorted(unknown)}")
    return tuple(changes.get(name, no_update) for name in EDIT_OUTPUTS)


def _open(lot_id: int, days: Any, margin: Any) -> tuple[Any, ...]:
    with session_scope() as session:
        try:
            row = capacity.lot_capacity(
                session,
                lot_id,
                datetime.now(UTC),
                days=_whole(days, capacity.DEFAULT_DAYS),
                margin_percent=_whole(margin, capacity.DEFAULT_MARGIN_PERCENT),
            )
        except ValidationFailed:  # a bad margin typed in the filters: open with the defaults
            row = capacity.lot_capacity(session, lot_id, datetime.now(UTC))
        changes = capacity.history(session, lot_id)
    return _edit(
        modal_open=True,
        lot=row.lot_id,
        title=f"Permits allowed: {row.name}",
        summary=_summary(row),
        value=str(row.allowance),
        suggested=row.suggestion.allowance,
        suggest_disabled=row.suggestion.allowance is None,
        history=_history(changes),
        error=None,
    )


def _save(lot_id: Any, value: Any, version: int | None) -> tuple[Any, ...]:
    lot_id = as_id(lot_id)
    if lot_id is None:
        return _edit(error=dbc.Alert("Open the dialog from a lot's row first.", color="danger"))
    now = datetime.now(UTC)
    settings = core().settings
    try:
        with session_scope() as session:
            backend = email_delivery.configured_backend(core(), session)
            policy = waitlist.offer_policy(session, core().secrets, settings.public_url, settings.tz, backend)
            saved = capacity.set_allowance(session, lot_id, value, current_user_id(), now, policy)
    except ValidationFailed as exc:
        return _edit(error=validation_alert(exc, LABELS))
    capacity.announce(core().redis, saved)
    if not saved.changed:
        message = f"{saved.name}: the permits allowed are unchanged ({saved.new})."
    else:
        message = f"{saved.name}: permits allowed changed from {saved.old} to {saved.new}."
    if saved.offers:
        who = "1 person waiting was" if saved.offers == 1 else f"{saved.offers} people waiting were"
        message += f" {who} offered a space."
    if saved.warning:
        message += f" {saved.warning}"
    return _edit(
        modal_open=False,
        lot=None,
        error=None,
        flash=message,
        flash_color="warning" if saved.warning else "success",
        flash_open=True,
        version=(version or 0) + 1,
    )


@callback(
    Output("capacity-modal", "is_open"),
    Output("capacity-lot", "data"),
    Output("capacity-modal-title", "children"),
    Output("capacity-modal-summary", "children"),
    Output("capacity-allowance", "value"),
    Output("capacity-suggested", "data"),
    Output("capacity-use-suggestion", "disabled"),
    Output("capacity-history", "children"),
    Output("capacity-modal-error", "children"),
    Output("capacity-flash", "children"),
    Output("capacity-flash", "color"),
    Output("capacity-flash", "is_open"),
    Output("capacity-version", "data"),
    Input({"type": "capacity-edit", "lot": ALL}, "n_clicks"),
    Input("capacity-save", "n_clicks"),
    Input("capacity-cancel", "n_clicks"),
    Input("capacity-use-suggestion", "n_clicks"),
    State("capacity-lot", "data"),
    State("capacity-allowance", "value"),
    State("capacity-suggested", "data"),
    State("capacity-days", "value"),
    State("capacity-margin", "value"),
    State("capacity-version", "data"),
    min_role=Role.MANAGER,
    prevent_initial_call=True,
)
def edit(
    _edits: list[int | None],
    _save_clicks: int | None,
    _cancel_clicks: int | None,
    _suggest_clicks: int | None,
    lot_id: Any,
    value: Any,
    suggested: Any,
    days: Any,
    margin: Any,
    version: int | None,
) -> tuple[Any, ...]:
    """Open, fill with the suggestion, save or cancel. Only a real click acts: re-reading the table
    re-creates the Edit buttons with n_clicks 0, which must not open the dialog."""
    trigger = dash.ctx.triggered_id
    clicked = dash.ctx.triggered[0]["value"] if dash.ctx.triggered else None
    if not clicked:
        return _edit()
    try:
        if isinstance(trigger, dict) and trigger.get("type") == "capacity-edit":
            target = as_id(trigger.get("lot"))
            return _open(target, days, margin) if isinstance(target, int) else _edit()
        if trigger == "capacity-use-suggestion":
            return _edit(value=str(suggested)) if isinstance(suggested, int) else _edit()
        if trigger == "capacity-save":
            return _save(lot_id, value, version)
        if trigger == "capacity-cancel":
            return _edit(modal_open=False, lot=None, error=None)
    except DomainError as exc:
        return _edit(error=dbc.Alert(str(exc), color="danger"))
    return _edit()
