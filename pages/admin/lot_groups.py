"""Manage Parking Lot Groups: every lot group with its live counts, and closing or reopening one.

The seed's check after setting up Mistall or Parking Logix is "you should see updated lot counts
under Manage Parking Lot Groups": so each row shows the physical figure the maps use, where it
came from and how old it is, each source's own figure beside it (so a source that went quiet or
disagrees is visible), and the permit figure the seed keeps next to it on purpose.

Managers may look; only admins open or close a group, and the toggle callback itself declares
``Role.ADMIN``, so the gate refuses it to a manager whatever the browser sends. The layout is empty
scaffolding; rows arrive through the role-checked refresh, which runs on every pushed change and
on the poll (``dashboard.components.live``).

Admins also get "Add lot group" above the table and, per row, "Edit" (both open the editor,
``pages.admin.lot_group_edit``, which comes back here with a one-time message through Flask's
``flash``) and "Delete". Delete asks first, in a dialog that names the group and says how many
lots it holds and that they stay, without a group.

"Edit Mistall lot" (admins) opens a dialog outside the table, so the live refresh, which replaces
the table, neither closes it nor loses its selection. Its choices are the Mistall lots the Update
Mistall System Job Task imported, read by the ``Role.ADMIN`` callback that opens the dialog; until
the task has run the list is empty and the dialog says where to run it.

Why this module is long: the table of live counts per source and the close/reopen dialog act on the
same rows and refresh each other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update
from flask import get_flashed_messages
from redis.exceptions import RedisError

from dashboard.auth import has_role
from dashboard.callbacks import callback, register_page
from dashboard.components.hints import mistall_hint
from dashboard.components.live import live_inputs, live_updates, register_live_updates
from dashboard.inputs import as_id
from dashboard.services import lot_groups, occupancy
from dashboard.services.errors import DomainError
from dashboard.services.lot_groups import LotGroupRow
from dashboard.services.occupancy import Figure, LiveStore
from dashboard.services.wording import ago, percent, source_label
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(__name__, path="/admin/lot-groups", title="Manage Parking Lot Groups", min_role=Role.MANAGER)

PREFIX = "lotgroups"
register_live_updates(PREFIX)


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.Div(
                [html.H1("Manage Parking Lot Groups", className="h3 mb-0"), *live_updates(PREFIX)],
                className="d-flex align-items-baseline gap-3",
            ),
            dcc.Location(id="lotgroups-url"),
            html.Div(id="lotgroups-toolbar", className="d-flex flex-wrap gap-2 my-2"),
            dbc.Alert(id="lotgroups-notice", is_open=False, dismissable=True, duration=8000),
            html.P(
                "Each lot group is one pin on the real-time maps. The physical count comes from Mistall, "
                "else Parking Logix, else the live sensors; the permit count beside it is what has been "
                "sold against the lots' allowances. Counts update here as they arrive.",
                className="text-muted mt-2",
            ),
            dbc.Alert(id="lotgroups-flash", is_open=False, dismissable=True, duration=8000),
            dcc.Store(id="lotgroups-version", data=0),
            dbc.Alert(id="lotgroups-mistall-flash", is_open=False, dismissable=True, duration=8000),
            dcc.Store(id="lotgroups-mistall-version", data=0),
            dbc.Alert(id="lotgroups-delete-flash", is_open=False, dismissable=True, duration=12000),
            html.Div(id="lotgroups-table"),
            _mistall_modal(),
            _delete_modal(),
        ]
    )


def _mistall_modal() -> Any:
    """Empty scaffolding: the title, choices and current value arrive when the dialog opens."""
    return dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle("Mistall lot", id="lotgroups-mistall-title")),
            dbc.ModalBody(
                [
                    dcc.Store(id="lotgroups-mistall-group"),
                    dbc.Label("Mistall Lot ID", html_for="lotgroups-mistall-lot"),
                    dcc.Dropdown(
                        id="lotgroups-mistall-lot",
                        options=[],
                        placeholder="Choose a Mistall lot",
                        clearable=True,
                        searchable=True,
                    ),
                    html.Div(id="lotgroups-mistall-hint", className="form-text"),
                    dbc.Alert(
                        id="lotgroups-mistall-error", color="danger", is_open=False, className="mt-3 mb-0"
                    ),
                ]
            ),
            dbc.ModalFooter(
                [
                    dbc.Button("Cancel", id="lotgroups-mistall-cancel", color="secondary", n_clicks=0),
                    dbc.Button("Clear", id="lotgroups-mistall-clear", color="outline-danger", n_clicks=0),
                    dbc.Button("Save", id="lotgroups-mistall-save", color="primary", n_clicks=0),
                ]
            ),
        ],
        id="lotgroups-mistall-modal",
        is_open=False,
    )


def _delete_modal() -> Any:
    """Empty scaffolding: the group's name and its lots arrive when the dialog opens."""
    return dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle("Delete lot group", id="lotgroups-delete-title")),
            dbc.ModalBody(
                [
                    dcc.Store(id="lotgroups-delete-group"),
                    html.Div(id="lotgroups-delete-body"),
                    dbc.Alert(
                        id="lotgroups-delete-error", color="danger", is_open=False, className="mt-3 mb-0"
                    ),
                ]
            ),
            dbc.ModalFooter(
                [
                    dbc.Button("Cancel", id="lotgroups-delete-cancel", color="secondary", n_clicks=0),
                    dbc.Button("Delete", id="lotgroups-delete-confirm", color="danger", n_clicks=0),
                ]
            ),
        ],
        id="lotgroups-delete-modal",
        is_open=False,
    )


def _local(moment: datetime) -> str:
    return moment.astimezone(core().settings.tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def _updated(figure: Figure, now: datetime) -> html.Span:
    """Relative age, with the site-local time on hover: "3 min ago" is what an operator scans for."""
    title = _local(figure.updated_at) if figure.updated_at else None
    return html.Span(f"updated {ago(figure.updated_at, now)}", title=title)


def _badges(figure: Figure) -> list[Any]:
    badges: list[Any] = []
    if figure.stale:
        badges.append(dbc.Badge("stale", color="warning", text_color="dark", className="ms-1"))
    if figure.flag:
        badges.append(dbc.Badge("flagged", color="danger", className="ms-1", title=figure.flag))
    return badges


def _physical_cell(row: LotGroupRow, now: datetime) -> Any:
    figure = row.state.physical
    if figure is None:
        return html.Span("no sensor data: the maps show the permit count", className="text-muted small")
    return html.Div(
        [
            html.Div(
                [
                    html.Strong(f"{figure.occupied} / {figure.capacity}", className="lotgroups-physical"),
                    html.Span(f" {percent(figure.percent)}", className="text-muted"),
                    *_badges(figure),
                ]
            ),
            html.Small(
                [source_label(figure), " · ", _updated(figure, now)],
                className="text-muted",
            ),
        ]
    )


def _sources_cell(row: LotGroupRow, now: datetime) -> Any:
    """Every physical source the group has data from, the one in use in bold."""
    if not row.state.sources:
        return html.Span("—", className="text-muted")
    in_use = row.state.physical.source if row.state.physical else None
    return html.Ul(
        [
            html.Li(
                [
                    f"{source_label(figure)} "
                    f"{figure.occupied}/{figure.capacity} · {ago(figure.updated_at, now)}",
                    *_badges(figure),
                ],
                className="fw-bold" if figure.source == in_use else None,
                title=_local(figure.updated_at) if figure.updated_at else None,
            )
            for figure in row.state.sources
        ],
        className="list-unstyled small mb-0",
    )


def _name_cell(row: LotGroupRow) -> Any:
    state = row.state
    swatch = html.Span(
        className="d-inline-block rounded-circle me-2 align-middle border",
        style={"width": "0.9rem", "height": "0.9rem", "backgroundColor": state.map_color},
        title=f"map colour {state.map_color}",
    )
    closed = [dbc.Badge("closed", color="dark", className="ms-2")] if state.closed else []
    return html.Div(
        [
            swatch,
            html.Span(state.name, className="fw-semibold"),
            *closed,
            html.Div(f"{len(state.lots)} lot(s)", className="small text-muted"),
        ]
    )


def _map_cell(row: LotGroupRow) -> Any:
    if not row.state.show_on_map:
        return html.Span("hidden", className="text-muted")
    if row.state.latitude is None or row.state.longitude is None:
        return html.Span(
            ["shown", dbc.Badge("no location", color="warning", text_color="dark", className="ms-1")]
        )
    return "shown"


def _parking_logix_cell(row: LotGroupRow) -> Any:
    if not row.parking_logix_name:
        return html.Span("—", className="text-muted")
    if row.parking_logix_key_set:
        return row.parking_logix_name
    return html.Span(
        [
            row.parking_logix_name,
            dbc.Badge("no API key", color="warning", text_color="dark", className="ms-1"),
        ]
    )


def _permits_cell(row: LotGroupRow) -> Any:
    permits = row.state.permits
    return html.Span(
        [
            f"{permits.occupied} / {permits.capacity}",
            html.Span(f" {percent(permits.percent)}", className="text-muted"),
        ]
    )


def _toggle(row: LotGroupRow) -> Any:
    action = "open" if row.state.closed else "close"
    return dbc.Button(
        action.title(),
        id={"type": "lotgroups-toggle", "group": row.state.group_id, "action": action},
        size="sm",
        color="success" if row.state.closed else "outline-danger",
        n_clicks=0,
    )


def _edit_mistall(row: LotGroupRow) -> Any:
    return dbc.Button(
        "Edit Mistall lot",
        id={"type": "lotgroups-mistall-edit", "group": row.state.group_id},
        size="sm",
        color="outline-primary",
        n_clicks=0,
    )


def _edit(row: LotGroupRow) -> Any:
    return dbc.Button(
        "Edit",
        href=edit_href(row.state.group_id),
        size="sm",
        color="outline-secondary",
        id=f"lotgroups-edit-{row.state.group_id}",
    )


def _delete(row: LotGroupRow) -> Any:
    return dbc.Button(
        "Delete",
        id={"type": "lotgroups-delete", "group": row.state.group_id},
        size="sm",
        color="outline-danger",
        n_clicks=0,
    )


def edit_href(group_id: int) -> str:
    return f"/admin/lot-groups/{group_id}/edit"


def _table(rows: list[LotGroupRow], now: datetime, can_toggle: bool) -> Any:
    if not rows:
        return html.P("There are no lot groups yet.", className="text-muted")
    header = [
        "Lot group",
        "On map",
        "Mistall lot",
        "Parking Logix name",
        "Physical count",
        "Permits",
        "Sources",
    ]
    if can_toggle:
        header.append("Actions")
    body = []
    for row in rows:
        cells = [
            html.Td(_name_cell(row)),
            html.Td(_map_cell(row)),
            html.Td(row.mistall_lot_id or html.Span("—", className="text-muted")),
            html.Td(_parking_logix_cell(row)),
            html.Td(_physical_cell(row, now)),
            html.Td(_permits_cell(row)),
            html.Td(_sources_cell(row, now)),
        ]
        if can_toggle:
            actions = [_toggle(row), _edit(row), _edit_mistall(row), _delete(row)]
            cells.append(html.Td(html.Div(actions, className="d-flex flex-wrap gap-1")))
        body.append(html.Tr(cells, id=f"lotgroups-row-{row.state.group_id}"))
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h) for h in header])), html.Tbody(body)],
        hover=True,
        responsive=True,
        size="sm",
        className="align-middle",
        id="lotgroups-grid",
    )


@callback(
    Output("lotgroups-table", "children"),
    *live_inputs(PREFIX),
    Input("lotgroups-version", "data"),
    Input("lotgroups-mistall-version", "data"),
    min_role=Role.MANAGER,
)
def refresh(_message: str | None, _tick: int | None, _version: int | None, _mistall: int | None) -> Any:
    """Re-read every row on a pushed change, a poll tick or an action here. The pushed message is
    public and ignored: what a manager sees always comes from this role-checked read."""
    now = datetime.now(UTC)
    try:
        with session_scope() as session:
            policy = occupancy.load_policy(session, core().secrets)
            rows = lot_groups.list_rows(session, LiveStore(core().redis), policy.staleness, now)
    except RedisError:
        return dbc.Alert("Live counts are unavailable: the Redis server is not reachable.", color="danger")
    return _table(rows, now, can_toggle=has_role(Role.ADMIN))


@callback(
    Output("lotgroups-flash", "children"),
    Output("lotgroups-flash", "color"),
    Output("lotgroups-flash", "is_open"),
    Output("lotgroups-version", "data"),
    Input({"type": "lotgroups-toggle", "group": ALL, "action": ALL}, "n_clicks"),
    State("lotgroups-version", "data"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def toggle(_clicks: list[int | None], version: int | None) -> tuple[Any, ...]:
    """The button's id carries the action it showed, so a click on a stale row (another admin
    already closed the group) asks for the state the admin meant, and changes nothing twice."""
    trigger = dash.ctx.triggered_id
    clicked = dash.ctx.triggered[0]["value"] if dash.ctx.triggered else None
    group_id = as_id(trigger.get("group")) if isinstance(trigger, dict) else None
    action = trigger.get("action") if isinstance(trigger, dict) else None
    if not isinstance(group_id, int) or action not in ("close", "open") or not clicked:
        return (no_update,) * 4
    closed = action == "close"
    try:
        with session_scope() as session:
            change = lot_groups.set_closed(session, group_id, closed, current_user_id())
    except DomainError as exc:
        return str(exc), "danger", True, no_update
    if change.changed:
        lot_groups.announce(core().redis, change)
    verb = "closed: the maps show it as closed" if closed else "open again"
    already = "" if change.changed else " (it already was)"
    return (
        f"{change.name} is {verb}{already}.",
        "secondary" if closed else "success",
        True,
        (version or 0) + 1,
    )


# Outputs of ``edit_mistall``, in order.
MODAL_OUTPUTS = (
    "modal_open",
    "group",
    "title",
    "options",
    "value",
    "disabled",
    "hint",
    "error",
    "error_open",
    "flash",
    "flash_open",
    "version",
)


def _modal(**changes: Any) -> tuple[Any, ...]:
    unknown = set(changes) - set(MODAL_OUTPUTS)
    if unknown:
        raise TypeError(f"not an output of edit_mistall: {sorted(unknown)}")
    return tuple(changes.get(name, no_update) for name in MODAL_OUTPUTS)


def _open(group_id: int) -> tuple[Any, ...]:
    with session_scope() as session:
        editor = lot_groups.mistall_editor(session, group_id)
    options = [{"label": label, "value": mistall_id} for mistall_id, label in editor.choices]
    return _modal(
        modal_open=True,
        group=editor.group_id,
        title=f"Mistall lot for {editor.name}",
        options=options,
        value=editor.mistall_lot_id,
        disabled=not editor.imported,
        hint=mistall_hint(
            editor.imported, "{imported} Mistall lot(s) imported. Clear removes the association."
        ),
        error=None,
        error_open=False,
    )


def _save(group_id: Any, mistall_id: str | None, version: int | None) -> tuple[Any, ...]:
    group_id = as_id(group_id)
    if group_id is None:
        return _modal(error="Open the dialog from a lot group's row first.", error_open=True)
    with session_scope() as session:
        changed = lot_groups.set_mistall_lot(session, group_id, mistall_id, current_user_id())
        name = lot_groups.mistall_editor(session, group_id).name
    if changed:
        lot_groups.announce_mistall_lot(core().redis, group_id)
    if not changed:
        message = f"{name}: the Mistall lot is unchanged."
    elif mistall_id:
        message = f"{name} now takes its physical count from Mistall lot {mistall_id}."
    else:
        message = f"{name} no longer has a Mistall lot."
    return _modal(
        modal_open=False,
        group=None,
        error=None,
        error_open=False,
        flash=message,
        flash_open=True,
        version=(version or 0) + 1,
    )


@callback(
    Output("lotgroups-mistall-modal", "is_open"),
    Output("lotgroups-mistall-group", "data"),
    Output("lotgroups-mistall-title", "children"),
    Output("lotgroups-mistall-lot", "options"),
    Output("lotgroups-mistall-lot", "value"),
    Output("lotgroups-mistall-lot", "disabled"),
    Output("lotgroups-mistall-hint", "children"),
    Output("lotgroups-mistall-error", "children"),
    Output("lotgroups-mistall-error", "is_open"),
    Output("lotgroups-mistall-flash", "children"),
    Output("lotgroups-mistall-flash", "is_open"),
    Output("lotgroups-mistall-version", "data"),
    Input({"type": "lotgroups-mistall-edit", "group": ALL}, "n_clicks"),
    Input("lotgroups-mistall-save", "n_clicks"),
    Input("lotgroups-mistall-clear", "n_clicks"),
    Input("lotgroups-mistall-cancel", "n_clicks"),
    State("lotgroups-mistall-group", "data"),
    State("lotgroups-mistall-lot", "value"),
    State("lotgroups-mistall-version", "data"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def edit_mistall(
    _edits: list[int | None],
    _save_clicks: int | None,
    _clear_clicks: int | None,
    _cancel_clicks: int | None,
    group_id: Any,
    mistall_id: str | None,
    version: int | None,
) -> tuple[Any, ...]:
    """Open, save, clear or cancel the Mistall lot dialog. Only a real click acts: the live refresh
    re-creates the Edit buttons (n_clicks 0), which must leave an open dialog and its choice alone."""
    trigger = dash.ctx.triggered_id
    clicked = dash.ctx.triggered[0]["value"] if dash.ctx.triggered else None
    if not clicked:
        return _modal()
    try:
        if isinstance(trigger, dict) and trigger.get("type") == "lotgroups-mistall-edit":
            edit_group = as_id(trigger.get("group"))
            return _open(edit_group) if isinstance(edit_group, int) else _modal()
        if trigger == "lotgroups-mistall-save":
            return _save(group_id, mistall_id, version)
        if trigger == "lotgroups-mistall-clear":
            return _save(group_id, None, version)
        if trigger == "lotgroups-mistall-cancel":
            return _modal(modal_open=False, group=None, error=None, error_open=False)
    except DomainError as exc:
        return _modal(error=str(exc), error_open=True)
    return _modal()


# The message ``pages.admin.lot_group_edit`` leaves with Flask's ``flash`` after a save.
EDITOR_FLASH = "lotgroups"


@callback(
    Output("lotgroups-toolbar", "children"),
    Output("lotgroups-notice", "children"),
    Output("lotgroups-notice", "color"),
    Output("lotgroups-notice", "is_open"),
    Input("lotgroups-url", "pathname"),
    min_role=Role.MANAGER,
)
def toolbar(_path: str | None) -> tuple[Any, ...]:
    """The admin's toolbar, and the editor's one-time message (taken, so a reload shows it no more)."""
    if not has_role(Role.ADMIN):
        return None, no_update, no_update, no_update
    add = dbc.Button("Add lot group", href="/admin/lot-groups/new", color="primary", id="lotgroups-add")
    messages = get_flashed_messages(category_filter=[EDITOR_FLASH])
    if not messages:
        return add, no_update, no_update, no_update
    return add, " ".join(messages), "success", True


def _lots_sentence(deletion: lot_groups.Deletion) -> str:
    if not deletion.lot_count:
        return "It has no lots."
    names = ", ".join(deletion.lot_names[:5]) + (", …" if deletion.lot_count > 5 else "")
    return (
        f"It has {deletion.lot_count} lot(s) ({names}). They are kept, without a lot group, until you "
        "assign them to another one."
    )


# Outputs of ``delete``, in order.
DELETE_OUTPUTS = (
    "modal_open",
    "group",
    "title",
    "body",
    "error",
    "error_open",
    "flash",
    "flash_open",
    "version",
)


def _deleting(**changes: Any) -> tuple[Any, ...]:
    unknown = set(changes) - set(DELETE_OUTPUTS)
    if unknown:
        raise TypeError(f"not an output of delete: {sorted(unknown)}")
    return tuple(changes.get(name, no_update) for name in DELETE_OUTPUTS)


def _ask(group_id: int) -> tuple[Any, ...]:
    with session_scope() as session:
        found = lot_groups.deletion(session, group_id)
    body = [
        html.P(["Delete the lot group ", html.Strong(found.name), "? Its pin leaves the maps."]),
        html.P(_lots_sentence(found)),
        html.P("Its occupancy history is deleted with it. This cannot be undone.", className="mb-0"),
    ]
    return _deleting(
        modal_open=True,
        group=found.group_id,
        title=f"Delete {found.name}?",
        body=body,
        error=None,
        error_open=False,
    )


def _confirm(group_id: Any, version: int | None) -> tuple[Any, ...]:
    group_id = as_id(group_id)
    if group_id is None:
        return _deleting(error="Open the dialog from a lot group's row first.", error_open=True)
    with session_scope() as session:
        deleted = lot_groups.delete_group(session, group_id, current_user_id())
    lot_groups.announce_deleted(core().redis, deleted.group_id)
    kept = f" Its {deleted.lot_count} lot(s) are kept, without a lot group." if deleted.lot_count else ""
    return _deleting(
        modal_open=False,
        group=None,
        error=None,
        error_open=False,
        flash=f"Lot group {deleted.name} deleted.{kept}",
        flash_open=True,
        version=(version or 0) + 1,
    )


@callback(
    Output("lotgroups-delete-modal", "is_open"),
    Output("lotgroups-delete-group", "data"),
    Output("lotgroups-delete-title", "children"),
    Output("lotgroups-delete-body", "children"),
    Output("lotgroups-delete-error", "children"),
    Output("lotgroups-delete-error", "is_open"),
    Output("lotgroups-delete-flash", "children"),
    Output("lotgroups-delete-flash", "is_open"),
    Output("lotgroups-version", "data", allow_duplicate=True),
    Input({"type": "lotgroups-delete", "group": ALL}, "n_clicks"),
    Input("lotgroups-delete-confirm", "n_clicks"),
    Input("lotgroups-delete-cancel", "n_clicks"),
    State("lotgroups-delete-group", "data"),
    State("lotgroups-version", "data"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def delete(
    _deletes: list[int | None],
    _confirm_clicks: int | None,
    _cancel_clicks: int | None,
    group_id: Any,
    version: int | None,
) -> tuple[Any, ...]:
    """Ask, delete or cancel. Only a real click acts (the live refresh re-creates the row buttons
    with n_clicks 0), and the dialog names the group it was opened for, whatever the table shows
    by the time the admin confirms. Bumping ``lotgroups-version`` re-reads the table at once."""
    trigger = dash.ctx.triggered_id
    clicked = dash.ctx.triggered[0]["value"] if dash.ctx.triggered else None
    if not clicked:
        return _deleting()
    try:
        if isinstance(trigger, dict) and trigger.get("type") == "lotgroups-delete":
            target = as_id(trigger.get("group"))
            return _ask(target) if isinstance(target, int) else _deleting()
        if trigger == "lotgroups-delete-confirm":
            return _confirm(group_id, version)
        if trigger == "lotgroups-delete-cancel":
            return _deleting(modal_open=False, group=None, error=None, error_open=False)
    except DomainError as exc:
        return _deleting(error=str(exc), error_open=True)
    return _deleting()
