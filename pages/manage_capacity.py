"""Manage Capacity: every lot as a card (capacity, permits allowed, sold, left, people waiting) with
the advice in a few words and one sentence (``dashboard.services.capacity`` explains the rules),
and the allowance edited in a dialog that shows the evidence as a small chart (the lot's estimated
cars and its permits valid, each day's busiest hour over the window, the peak marked), the sentence
and the lot's trail of changes.

Cards rather than a table: eight columns never fit a 390 px phone, and the advice is a sentence.
A dialog rather than an input on the card: the list is re-read after every save and on every
filter change, which would throw away what a manager is typing. Managers (not only admins) change
allowances: deciding how far to oversell is their job, and every change is audited.

Saving asks first (a confirm dialog) when the change leaves fewer than a few permits to sell, the
point where people are told "sold out"; a value below the permits sold is refused with the reason.

The layout is empty scaffolding; cards, the group choices and the dialog's content arrive through
``Role.MANAGER`` callbacks. Filters (name, lot group) only narrow the lots the server already sends
a manager; the window and the safety margin change the advice and are checked by the service.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.capacity_chart import evidence_chart
from dashboard.components.feedback import validation_alert
from dashboard.inputs import as_id
from dashboard.services import capacity, lots, waitlist
from dashboard.services.capacity import AllowanceChange, LotCapacity
from dashboard.services.days import moment_words
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
                "How many permits each lot may sell. For term permits, the advice is the oversell "
                "ratio the lot's history supports: its busiest hour's cars against the permits valid "
                "then, kept below 100% minus the safety margin. For visitor lots, it is the spaces to "
                "keep for visitors. It is never below the permits sold, and needs a week of sensor "
                "history. Sensors count lot groups, so a lot's cars are the group's percent full × "
                "its spaces.",
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
            dcc.Store(id="capacity-pending"),
            dcc.ConfirmDialog(id="capacity-confirm"),
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
                        "A whole number, at least the permits sold now. It may exceed the capacity.",
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
    return moment_words(moment, datetime.now(UTC), core().settings.tz)


def _whole(value: Any, default: int) -> Any:
    """The form's number as an int when it is one; anything else goes to the service to refuse."""
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() else value


def _allowed(row: LotCapacity) -> str:
    if row.permits_allowed is None:
        return f"{row.allowance} (= capacity)"
    if row.allowance > row.capacity:
        return f"{row.allowance} (+{row.allowance - row.capacity})"
    return str(row.allowance)


def _facts(row: LotCapacity) -> Any:
    """The figures as a small grid of label/value pairs: two or three to a line on any screen."""
    facts = [
        ("Spaces", str(row.capacity)),
        ("Allowed", _allowed(row)),
        ("Sold now", str(row.sold)),
        ("Left to sell", str(row.available)),
        ("Waiting", str(row.waiting)),
        ("Busiest", "no data" if row.peak_percent is None else f"{row.peak_percent:.0f}% full"),
    ]
    return html.Dl(
        [
            html.Div(
                [html.Dt(label, className="small text-muted fw-normal"), html.Dd(value, className="mb-0")]
            )
            for label, value in facts
        ],
        className="capacity-facts mb-2",
        # Three to a line on any screen: a phone needs no sideways scroll, a desktop no long column.
        style={
            "display": "grid",
            "gridTemplateColumns": "repeat(3, minmax(0, 1fr))",
            "gap": "0.25rem 0.75rem",
        },
    )


def _advice(row: LotCapacity, element_id: str | None = None) -> Any:
    suggestion = row.suggestion
    parts: list[Any] = []
    if suggestion.headline:
        parts.append(html.Div(suggestion.headline, className="fw-semibold"))
    parts.append(html.Div(suggestion.sentence, className="small"))
    color = "info" if suggestion.allowance is not None else "light"
    extra = {"id": element_id} if element_id else {}
    return dbc.Alert(parts, color=color, className="mb-0 py-2 capacity-advice", **extra)


def _card(row: LotCapacity) -> Any:
    kinds = " and ".join(
        kind for kind, sells in (("term", row.sells_standard), ("visitor", row.sells_temporary)) if sells
    )
    where = f"{row.group_name or 'no lot group'} · {f'{kinds} permits' if kinds else 'sells no permits'}"
    return dbc.Col(
        dbc.Card(
            dbc.CardBody(
                [
                    html.Div(
                        [
                            html.Div(
                                [
                                    html.H2(row.name, className="h6 mb-0"),
                                    html.Div(where, className="small text-muted"),
                                    *(
                                        [dbc.Badge("inactive", color="secondary")]
                                        if not row.is_active
                                        else []
                                    ),
                                ],
                                className="me-2",
                            ),
                            dbc.Button(
                                "Edit",
                                id={"type": "capacity-edit", "lot": row.lot_id},
                                size="sm",
                                color="outline-primary",
                                n_clicks=0,
                                title=f"Edit the permits allowed in {row.name}",
                            ),
                        ],
                        className="d-flex justify-content-between align-items-start mb-2",
                    ),
                    _facts(row),
                    _advice(row),
                ]
            ),
            className="h-100",
            id=f"capacity-row-{row.lot_id}",
        ),
        xs=12,
        md=6,
        xxl=4,
    )


def _cards(rows: list[LotCapacity]) -> Any:
    return dbc.Row([_card(row) for row in rows], className="g-2", id="capacity-grid")


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
                tz=core().settings.tz,
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
    return html.Div([count, _cards(shown)])


def _summary(row: LotCapacity) -> Any:
    return html.Div(
        [_facts(row), evidence_chart(row, core().settings.tz), _advice(row, "capacity-modal-advice")]
    )


def _value(raw: int | None) -> str:
    return "capacity" if raw is None else str(raw)


def _history(changes: list[AllowanceChange]) -> Any:
    if not changes:
        return html.P("No changes recorded yet.", className="text-muted small")
    return html.Ul(
        [
            html.Li(
                [
                    html.Span(f"{_value(change.old)} → {_value(change.new)}", className="fw-semibold"),
                    html.Span(
                        f" · {_local(change.at)} · {change.actor_email or 'system'}", className="text-muted"
                    ),
                ],
                className="text-break",
            )
            for change in changes
        ],
        className="list-unstyled small mb-0",
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
    "confirm_open",
    "confirm_message",
    "pending",
)


def _edit(**changes: Any) -> tuple[Any, ...]:
    unknown = set(changes) - set(EDIT_OUTPUTS)
    if unknown:
        raise TypeError(f"not an output of edit: {sorted(unknown)}")
    return tuple(changes.get(name, no_update) for name in EDIT_OUTPUTS)


def _open(lot_id: int, days: Any, margin: Any) -> tuple[Any, ...]:
    tz = core().settings.tz
    with session_scope() as session:
        try:
            row = capacity.lot_capacity(
                session,
                lot_id,
                datetime.now(UTC),
                days=_whole(days, capacity.DEFAULT_DAYS),
                margin_percent=_whole(margin, capacity.DEFAULT_MARGIN_PERCENT),
                tz=tz,
            )
        except ValidationFailed:  # a bad margin typed in the filters: open with the defaults
            row = capacity.lot_capacity(session, lot_id, datetime.now(UTC), tz=tz)
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
        pending=None,
    )


def _ask(lot_id: Any, value: Any) -> tuple[Any, ...]:
    """Save at once, or first ask when the change leaves few permits to sell (the service refuses a
    value below sold, which shows as the dialog's error)."""
    lot_id = as_id(lot_id)
    if lot_id is None:
        return _edit(error=dbc.Alert("Open the dialog from a lot's card first.", color="danger"))
    try:
        with session_scope() as session:
            preview = capacity.preview_allowance(session, lot_id, value, datetime.now(UTC))
    except ValidationFailed as exc:
        return _edit(error=validation_alert(exc, LABELS))
    if preview.warning is None:
        return None
    return _edit(
        confirm_open=True,
        confirm_message=f"{preview.warning} Save {preview.new} anyway?",
        pending={"lot": preview.lot_id, "value": preview.new},
        error=None,
    )


def _save(lot_id: Any, value: Any, version: int | None) -> tuple[Any, ...]:
    lot_id = as_id(lot_id)
    if lot_id is None:
        return _edit(error=dbc.Alert("Open the dialog from a lot's card first.", color="danger"))
    now = datetime.now(UTC)
    settings = core().settings
    try:
        with session_scope() as session:
            backend = email_delivery.configured_backend(core(), session)
            policy = waitlist.offer_policy(session, core().secrets, settings.public_url, settings.tz, backend)
            saved = capacity.set_allowance(session, lot_id, value, current_user_id(), now, policy)
    except ValidationFailed as exc:
        return _edit(error=validation_alert(exc, LABELS), pending=None)
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
        pending=None,
    )


def _confirmed(lot_id: Any, pending: Any, version: int | None) -> tuple[Any, ...]:
    """The manager said yes: save the value that was asked about, for the lot still open."""
    if not isinstance(pending, dict) or as_id(pending.get("lot")) is None or pending.get("lot") != lot_id:
        return _edit(error=dbc.Alert("Press Save again: the dialog changed.", color="warning"))
    return _save(lot_id, pending.get("value"), version)


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
    Output("capacity-confirm", "displayed"),
    Output("capacity-confirm", "message"),
    Output("capacity-pending", "data"),
    Input({"type": "capacity-edit", "lot": ALL}, "n_clicks"),
    Input("capacity-save", "n_clicks"),
    Input("capacity-cancel", "n_clicks"),
    Input("capacity-use-suggestion", "n_clicks"),
    Input("capacity-confirm", "submit_n_clicks"),
    State("capacity-lot", "data"),
    State("capacity-allowance", "value"),
    State("capacity-suggested", "data"),
    State("capacity-days", "value"),
    State("capacity-margin", "value"),
    State("capacity-version", "data"),
    State("capacity-pending", "data"),
    min_role=Role.MANAGER,
    prevent_initial_call=True,
)
def edit(
    _edits: list[int | None],
    _save_clicks: int | None,
    _cancel_clicks: int | None,
    _suggest_clicks: int | None,
    _confirm_clicks: int | None,
    lot_id: Any,
    value: Any,
    suggested: Any,
    days: Any,
    margin: Any,
    version: int | None,
    pending: Any,
) -> tuple[Any, ...]:
    """Open, fill with the suggestion, save (asking first when few permits would be left to sell)
    or cancel. Only a real click acts: re-reading the list re-creates the Edit buttons with
    n_clicks 0, which must not open the dialog."""
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
            return _ask(lot_id, value) or _save(lot_id, value, version)
        if trigger == "capacity-confirm":
            return _confirmed(lot_id, pending, version)
        if trigger == "capacity-cancel":
            return _edit(modal_open=False, lot=None, error=None, pending=None)
    except DomainError as exc:
        return _edit(error=dbc.Alert(str(exc), color="danger"))
    return _edit()
