"""Sensing Devices: register counters and space sensors to lots, and map the device ids the
ingester heard but nobody registered.

The layout is empty scaffolding (Dash sends it to every browser); devices, lots and kept messages
arrive only through admin-checked callbacks. Every change is announced on the devices channel
after its commit, so the running ingester reloads its device map. Mapping an unknown device also
queues a replay of its kept messages (``workers.replay``), which is how they get counted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update
from redis.exceptions import RedisError

from dashboard.callbacks import callback, register_page
from dashboard.inputs import as_id
from dashboard.services import devices
from dashboard.services.devices import DeviceView, UnknownDeviceView
from dashboard.services.errors import DomainError, NotFound
from dashboard.web import core, current_user_id, session_scope
from models import DeviceKind, Role, utcnow
from workers.replay import enqueue_replay

register_page(__name__, path="/admin/devices", title="Sensing Devices", min_role=Role.ADMIN)

REFRESH_MS = 30_000
SILENT_AFTER_SECONDS = 3600
SAMPLE_CHARS = 160
KIND_LABELS = {DeviceKind.COUNTER: "Counter", DeviceKind.SPACE_SENSOR: "Space sensor"}
KIND_OPTIONS = [{"label": label, "value": kind.value} for kind, label in KIND_LABELS.items()]


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Sensing Devices", className="h3"),
            html.P(
                "Counting cameras, gates and in-ground sensors publish on MQTT under their device id. "
                "The ingester counts only registered, active devices; it keeps what unknown ids send "
                "until they are mapped here.",
                className="text-muted",
            ),
            dcc.Interval(id="devices-refresh", interval=REFRESH_MS),
            dcc.Store(id="devices-version", data=0),
            dcc.Store(id="devices-unknown-version", data=0),
            dcc.Store(id="devices-editing"),
            dbc.Card(
                [
                    dbc.CardHeader("Devices"),
                    dbc.CardBody(
                        [
                            dbc.Alert(id="devices-flash", is_open=False, dismissable=True, duration=8000),
                            html.Div(id="devices-table", className="mb-3"),
                            _form(),
                        ]
                    ),
                ],
                className="mb-4",
            ),
            dbc.Card(
                [
                    dbc.CardHeader("Unknown devices"),
                    dbc.CardBody(
                        [
                            dbc.Alert(
                                id="devices-unknown-flash", is_open=False, dismissable=True, duration=12000
                            ),
                            html.Div(id="devices-unknown-table"),
                        ]
                    ),
                ]
            ),
            _map_modal(),
        ]
    )


def _form() -> Any:
    return dbc.Row(
        [
            dbc.Col(
                [
                    dbc.Label("Device id", html_for="devices-form-id"),
                    dbc.Input(id="devices-form-id", maxLength=80, placeholder="cnt-north-gate"),
                ],
                md=3,
            ),
            dbc.Col(
                [
                    dbc.Label("Kind", html_for="devices-form-kind"),
                    dbc.Select(id="devices-form-kind", options=KIND_OPTIONS, value=DeviceKind.COUNTER.value),
                ],
                md=2,
            ),
            dbc.Col(
                [
                    dbc.Label("Lot", html_for="devices-form-lot"),
                    dbc.Select(id="devices-form-lot", options=[]),
                ],
                md=3,
            ),
            dbc.Col(
                [
                    dbc.Label("Name", html_for="devices-form-name"),
                    dbc.Input(id="devices-form-name", maxLength=120, placeholder="optional"),
                ],
                md=2,
            ),
            dbc.Col(
                [
                    dbc.Button("Add device", id="devices-form-save", color="primary", n_clicks=0),
                    dbc.Button("Cancel", id="devices-form-cancel", color="link", n_clicks=0),
                ],
                md=2,
                className="d-flex align-items-end gap-1",
            ),
        ],
        className="g-2",
    )


def _map_modal() -> Any:
    return dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle(id="devices-map-title")),
            dbc.ModalBody(
                [
                    dcc.Store(id="devices-map-id"),
                    dbc.Label("Kind", html_for="devices-map-kind"),
                    dbc.Select(id="devices-map-kind", options=KIND_OPTIONS),
                    dbc.Label("Lot", html_for="devices-map-lot", className="mt-2"),
                    dbc.Select(id="devices-map-lot", options=[]),
                ]
            ),
            dbc.ModalFooter(
                [
                    dbc.Button("Cancel", id="devices-map-cancel", color="secondary", n_clicks=0),
                    dbc.Button("Register and count", id="devices-map-confirm", color="primary", n_clicks=0),
                ]
            ),
        ],
        id="devices-map-modal",
        is_open=False,
    )


def _local(moment: datetime | None) -> str:
    return moment.astimezone(core().settings.tz).strftime("%Y-%m-%d %H:%M") if moment else "never"


def _silence(moment: datetime | None) -> str | None:
    """A hint once a device has been quiet longer than the devices' usual staleness limit."""
    if moment is None:
        return None
    seconds = (utcnow() - moment).total_seconds()
    if seconds < SILENT_AFTER_SECONDS:
        return None
    hours = int(seconds // 3600)
    return f"silent for {hours} h" if hours < 48 else f"silent for {hours // 24} d"


def _last_seen(device: DeviceView) -> Any:
    hint = _silence(device.last_seen_at) if device.active else None
    cell: list[Any] = [html.Span(_local(device.last_seen_at))]
    if hint:
        cell.append(dbc.Badge(hint, color="warning", className="ms-2"))
    return cell


def _device_row(device: DeviceView) -> html.Tr:
    return html.Tr(
        [
            html.Td([html.Div(device.device_id), html.Small(device.name, className="text-muted")]),
            html.Td(KIND_LABELS[device.kind]),
            html.Td(device.lot_name),
            html.Td(device.group_name or "—"),
            html.Td(_last_seen(device)),
            html.Td(
                dbc.Badge("active", color="success")
                if device.active
                else dbc.Badge("inactive", color="secondary")
            ),
            html.Td(
                [
                    dbc.Button(
                        "Edit",
                        id={"type": "devices-edit", "id": device.device_id},
                        size="sm",
                        color="link",
                        n_clicks=0,
                    ),
                    dbc.Button(
                        "Deactivate" if device.active else "Activate",
                        id={"type": "devices-toggle", "id": device.device_id},
                        size="sm",
                        color="outline-danger" if device.active else "outline-success",
                        n_clicks=0,
                    ),
                ]
            ),
        ]
    )


def _devices_table(rows: list[DeviceView]) -> Any:
    if not rows:
        return html.P("No devices registered yet.", className="text-muted")
    header = ["Device", "Kind", "Lot", "Group", "Last seen", "Status", ""]
    return _table("devices-grid", header, [_device_row(d) for d in rows])


def _unknown_row(row: UnknownDeviceView) -> html.Tr:
    sample = row.sample_payload[:SAMPLE_CHARS] + ("…" if len(row.sample_payload) > SAMPLE_CHARS else "")
    return html.Tr(
        [
            html.Td(row.device_id),
            html.Td(KIND_LABELS[row.guessed_kind] if row.guessed_kind else "?"),
            html.Td(row.message_count),
            html.Td(_local(row.first_seen_at)),
            html.Td(_local(row.last_seen_at)),
            html.Td([html.Small(row.sample_topic, className="d-block text-muted"), html.Code(sample)]),
            html.Td(
                dbc.Button(
                    "Count them" if row.registered else "Map",
                    id={"type": "devices-map", "id": row.device_id},
                    size="sm",
                    color="primary",
                    n_clicks=0,
                )
            ),
        ]
    )


def _unknown_table(rows: list[UnknownDeviceView]) -> Any:
    if not rows:
        return html.P("Every device the ingester heard is registered.", className="text-muted")
    header = ["Device id", "Kind (from topic)", "Messages", "First seen", "Last seen", "Latest message", ""]
    return _table("devices-unknown-grid", header, [_unknown_row(r) for r in rows])


def _table(table_id: str, header: list[str], rows: list[html.Tr]) -> Any:
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h) for h in header])), html.Tbody(rows)],
        hover=True,
        responsive=True,
        size="sm",
        id=table_id,
    )


@callback(
    Output("devices-table", "children"),
    Output("devices-unknown-table", "children"),
    Output("devices-form-lot", "options"),
    Output("devices-map-lot", "options"),
    Input("devices-refresh", "n_intervals"),
    Input("devices-version", "data"),
    Input("devices-unknown-version", "data"),
    min_role=Role.ADMIN,
)
def refresh(_tick: int | None, _version: int | None, _unknown_version: int | None) -> tuple[Any, ...]:
    with session_scope() as session:
        rows = devices.list_devices(session)
        unknown = devices.unknown_devices(session)
        lots = [{"label": lot.label, "value": str(lot.id)} for lot in devices.lot_options(session)]
    return _devices_table(rows), _unknown_table(unknown), lots, lots


def _announce() -> str:
    """Tell the ingester; a change is committed even when Redis is down, so say so instead of failing."""
    try:
        devices.notify_devices_changed(core().redis)
    except RedisError:
        return " The ingester could not be told (Redis is unreachable); it picks the change up on restart."
    return ""


def _lot_id(value: Any) -> int | None:
    return as_id(value)


Flash = tuple[Any, str, bool]
BLANK_FORM = (None, "", False, DeviceKind.COUNTER.value, None, "", "Add device")


def _save(editing: str | None, device_id: str | None, kind: str | None, lot: Any, name: str | None) -> Flash:
    with session_scope() as session:
        if editing:
            view = devices.update_device(
                session, editing, kind=kind, lot_id=_lot_id(lot), name=name or "", actor_id=current_user_id()
            )
            message = f"{view.device_id} saved."
        else:
            if _lot_id(lot) is None:
                return "Choose the device's lot.", "warning", True
            view = devices.add_device(
                session,
                device_id=device_id or "",
                kind=kind or "",
                lot_id=_lot_id(lot),
                name=name or "",
                actor_id=current_user_id(),
            )
            message = f"{view.device_id} registered in {view.lot_name}."
    return message + _announce(), "success", True


def _toggle(device_id: str) -> Flash:
    with session_scope() as session:
        current = devices.get_device(session, device_id)
        view = devices.update_device(
            session, device_id, active=not current.active, actor_id=current_user_id()
        )
    if view.active:
        return f"{device_id} is active again." + _announce(), "success", True
    return (
        f"{device_id} is inactive: the ingester stops counting it; its history stays." + _announce(),
        "secondary",
        True,
    )


@callback(
    Output("devices-flash", "children"),
    Output("devices-flash", "color"),
    Output("devices-flash", "is_open"),
    Output("devices-version", "data"),
    Output("devices-editing", "data"),
    Output("devices-form-id", "value"),
    Output("devices-form-id", "disabled"),
    Output("devices-form-kind", "value"),
    Output("devices-form-lot", "value"),
    Output("devices-form-name", "value"),
    Output("devices-form-save", "children"),
    Input({"type": "devices-edit", "id": ALL}, "n_clicks"),
    Input({"type": "devices-toggle", "id": ALL}, "n_clicks"),
    Input("devices-form-save", "n_clicks"),
    Input("devices-form-cancel", "n_clicks"),
    State("devices-editing", "data"),
    State("devices-form-id", "value"),
    State("devices-form-kind", "value"),
    State("devices-form-lot", "value"),
    State("devices-form-name", "value"),
    State("devices-version", "data"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def act(
    _edits: list[int | None],
    _toggles: list[int | None],
    _save_clicks: int | None,
    _cancel: int | None,
    editing: str | None,
    device_id: str | None,
    kind: str | None,
    lot: Any,
    name: str | None,
    version: int | None,
) -> tuple[Any, ...]:
    """Edit fills the form (the id stays fixed: it is what the device puts in its topics); Save
    adds or updates; the toggle (de)activates. A re-rendered table reports buttons with
    ``n_clicks`` 0, which is no click."""
    trigger = dash.ctx.triggered_id
    value = dash.ctx.triggered[0]["value"] if dash.ctx.triggered else None
    bumped = (version or 0) + 1
    keep_form = (no_update,) * 7
    if not value:
        return (no_update,) * 11
    try:
        if isinstance(trigger, dict) and trigger.get("type") == "devices-edit":
            with session_scope() as session:
                view = devices.get_device(session, str(trigger.get("id")))
            form = (view.device_id, view.device_id, True, view.kind.value, str(view.lot_id), view.name)
            return (no_update, no_update, False, no_update, *form, "Save changes")
        if isinstance(trigger, dict) and trigger.get("type") == "devices-toggle":
            return (*_toggle(str(trigger.get("id"))), bumped, *keep_form)
        if trigger == "devices-form-save":
            flash = _save(editing, device_id, kind, lot, name)
            if flash[1] != "success":
                return (*flash, no_update, *keep_form)
            return (*flash, bumped, *BLANK_FORM)
        if trigger == "devices-form-cancel":
            return (no_update, no_update, False, no_update, *BLANK_FORM)
    except DomainError as exc:
        return (str(exc), "danger", True, bumped, *keep_form)
    return (no_update,) * 11


def _count_kept(device_id: str) -> Flash:
    """For an id that is registered already: queue the replay of what it sent meanwhile."""
    with session_scope() as session:
        view = devices.get_device(session, device_id)
        kept = devices.kept_message_count(session, device_id)
    if not view.active:
        return f"{device_id} is inactive: activate it first, then count its messages.", "warning", True
    return _replay_flash(device_id, kept, f"{device_id} is registered.")


def _replay_flash(device_id: str, kept: int, done: str) -> Flash:
    if kept == 0:
        return f"{done} It has no kept messages.", "success", True
    try:
        enqueue_replay(core(), device_id)
    except RedisError:
        return (
            f"{done} The job queue (Redis) is not reachable: its {kept} kept messages stay kept; "
            "press Count them later.",
            "warning",
            True,
        )
    return f"{done} {kept} kept messages will be counted.", "success", True


def _map(device_id: str | None, kind: str | None, lot: Any) -> tuple[Flash, bool]:
    """The flash, and whether the device was registered (the modal closes only then)."""
    lot_id = _lot_id(lot)
    if not device_id or lot_id is None:
        return ("Choose the device's lot.", "warning", True), False
    with session_scope() as session:
        kept = devices.map_unknown_device(session, device_id, kind or "", lot_id, current_user_id())
    # Announced before the replay is queued, so the ingester knows the device when they arrive.
    announced = _announce()
    message, colour, is_open = _replay_flash(device_id, kept, f"{device_id} registered.")
    return (message + announced, colour, is_open), True


@callback(
    Output("devices-unknown-flash", "children"),
    Output("devices-unknown-flash", "color"),
    Output("devices-unknown-flash", "is_open"),
    Output("devices-unknown-version", "data"),
    Output("devices-map-modal", "is_open"),
    Output("devices-map-id", "data"),
    Output("devices-map-title", "children"),
    Output("devices-map-kind", "value"),
    Input({"type": "devices-map", "id": ALL}, "n_clicks"),
    Input("devices-map-confirm", "n_clicks"),
    Input("devices-map-cancel", "n_clicks"),
    State("devices-map-id", "data"),
    State("devices-map-kind", "value"),
    State("devices-map-lot", "value"),
    State("devices-unknown-version", "data"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def map_unknown(
    _maps: list[int | None],
    _confirm: int | None,
    _cancel: int | None,
    map_id: str | None,
    kind: str | None,
    lot: Any,
    version: int | None,
) -> tuple[Any, ...]:
    """Map opens the modal with the kind guessed from the topics; for an id registered meanwhile
    (messages kept before the ingester reloaded) the button queues the replay directly."""
    trigger = dash.ctx.triggered_id
    value = dash.ctx.triggered[0]["value"] if dash.ctx.triggered else None
    bumped = (version or 0) + 1
    if not value:
        return (no_update,) * 8
    try:
        if isinstance(trigger, dict) and trigger.get("type") == "devices-map":
            device_id = str(trigger.get("id"))
            try:
                return (*_count_kept(device_id), bumped, no_update, no_update, no_update, no_update)
            except NotFound:
                guess = _guessed_kind(device_id)
                return (no_update, no_update, False, no_update, True, device_id, f"Map {device_id}", guess)
        if trigger == "devices-map-confirm":
            flash, registered = _map(map_id, kind, lot)
            if not registered:
                return (*flash, no_update, no_update, no_update, no_update, no_update)
            return (*flash, bumped, False, None, no_update, no_update)
        if trigger == "devices-map-cancel":
            return (no_update, no_update, no_update, no_update, False, None, no_update, no_update)
    except DomainError as exc:
        return (str(exc), "danger", True, bumped, no_update, no_update, no_update, no_update)
    return (no_update,) * 8


def _guessed_kind(device_id: str) -> str | None:
    with session_scope() as session:
        found = [row for row in devices.unknown_devices(session) if row.device_id == device_id]
    return found[0].guessed_kind.value if found and found[0].guessed_kind else None
