"""Manage Lot Zones: the zone names HotSpot, ParkMobile and pay stations use.

The seed's two set-ups meet here: a HotSpot zone is added here and then put on lots in the lot
editor ("Add Zone by Days"); a ParkMobile permit is imported only when its zone name matches one
here exactly. So the list shows where each zone is used, a rename warns that vendors match on the
name, and a zone still in use is not deleted: the refusal names the lots to change first. A zone's
optional capacity caps the zone permits and pay-station records valid at once (partners past it are
refused, ParkMobile records flagged); the list shows what is taken now.

Admins only; the layout is empty scaffolding and the rows arrive through ``Role.ADMIN`` callbacks.
"""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.feedback import validation_alert
from dashboard.inputs import require_id
from dashboard.services import lot_zones
from dashboard.services.errors import DomainError, ValidationFailed
from dashboard.services.lot_zones import ZoneView
from dashboard.web import current_user_id, session_scope
from models import Role, utcnow

register_page(__name__, path="/admin/lot-zones", title="Manage Lot Zones", min_role=Role.ADMIN)

LABELS = {"name": "Name", "capacity": "Capacity"}
CAPACITY_HINT = "Zone permits and pay-station records valid at the same time; empty: no limit."


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Link("← Lot Administration", href="/admin/lots", className="small"),
            html.H1("Manage Lot Zones", className="h3 mt-1"),
            html.P(
                "A zone is valid in every lot that has it scheduled (Lot Administration > a lot > Zones & "
                "Location). HotSpot and ParkMobile permits are matched to a zone by its exact name. A zone "
                "permit takes no space of any one lot: give the zone a capacity, and leave room for it in "
                "the lots' allowances.",
                className="text-muted",
            ),
            dcc.Store(id="lotzones-version", data=0),
            dcc.Store(id="lotzones-editing"),
            dbc.Card(
                dbc.CardBody(
                    dbc.Row(
                        [
                            dbc.Col(
                                [
                                    dbc.Label("New zone name", html_for="lotzones-new-name"),
                                    dbc.Input(id="lotzones-new-name", maxLength=80, placeholder="e.g. 1001"),
                                ],
                                xs=12,
                                sm=8,
                                md=5,
                            ),
                            dbc.Col(
                                [
                                    dbc.Label("Capacity (optional)", html_for="lotzones-new-capacity"),
                                    dbc.Input(
                                        id="lotzones-new-capacity",
                                        type="number",
                                        min=0,
                                        step=1,
                                        placeholder="no limit",
                                    ),
                                ],
                                xs=12,
                                sm=4,
                                md=3,
                            ),
                            dbc.Col(
                                dbc.Button("Add Zone", id="lotzones-add", color="primary", n_clicks=0),
                                xs=12,
                                sm=4,
                                md="auto",
                                className="d-flex align-items-end",
                            ),
                        ],
                        className="g-2",
                    )
                ),
                className="mb-3",
            ),
            html.Div(id="lotzones-flash", role="status"),
            html.Div(id="lotzones-table"),
            _modal(),
        ]
    )


def _modal() -> Any:
    """One dialog for rename and delete: the title, text and which buttons show arrive on open."""
    return dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle(id="lotzones-modal-title")),
            dbc.ModalBody(
                [
                    html.Div(
                        [
                            dbc.Label("Name", html_for="lotzones-modal-name"),
                            dbc.Input(id="lotzones-modal-name", maxLength=80),
                            dbc.FormText(
                                "ParkMobile permits match zones by name: rename here only when the vendor's "
                                "name changed too."
                            ),
                            dbc.Label("Capacity", html_for="lotzones-modal-capacity", className="mt-3"),
                            dbc.Input(
                                id="lotzones-modal-capacity",
                                type="number",
                                min=0,
                                step=1,
                                placeholder="no limit",
                            ),
                            dbc.FormText(CAPACITY_HINT),
                        ],
                        id="lotzones-modal-rename",
                    ),
                    html.P(id="lotzones-modal-text"),
                    html.Div(id="lotzones-modal-error"),
                ]
            ),
            dbc.ModalFooter(
                [
                    dbc.Button("Cancel", id="lotzones-modal-cancel", color="secondary", n_clicks=0),
                    dbc.Button("Save", id="lotzones-modal-save", color="primary", n_clicks=0),
                    dbc.Button("Delete", id="lotzones-modal-delete", color="danger", n_clicks=0),
                ]
            ),
        ],
        id="lotzones-modal",
        is_open=False,
    )


def _capacity(zone: ZoneView) -> Any:
    if zone.capacity is None:
        return html.Span(f"no limit ({zone.taken_now} now)", className="text-muted")
    full = zone.taken_now >= zone.capacity
    return html.Span(
        f"{zone.taken_now} of {zone.capacity} taken now",
        className="text-danger fw-semibold" if full else None,
    )


def _row(zone: ZoneView) -> Any:
    used = ", ".join(zone.lot_names) if zone.lot_names else html.Span("no lots", className="text-muted")
    return html.Tr(
        [
            html.Td(html.Span(zone.name, className="fw-semibold")),
            html.Td(used),
            html.Td(zone.permit_count, className="text-end"),
            html.Td(_capacity(zone)),
            html.Td(
                html.Div(
                    [
                        dbc.Button(
                            "Edit",
                            id={"type": "lotzones-rename", "zone": zone.id},
                            size="sm",
                            color="outline-primary",
                            n_clicks=0,
                        ),
                        dbc.Button(
                            "Delete",
                            id={"type": "lotzones-delete", "zone": zone.id},
                            size="sm",
                            color="outline-danger",
                            n_clicks=0,
                        ),
                    ],
                    className="d-flex gap-1",
                )
            ),
        ],
        id=f"lotzones-row-{zone.id}",
    )


@callback(
    Output("lotzones-table", "children"),
    Input("lotzones-version", "data"),
    min_role=Role.ADMIN,
)
def refresh(_version: int | None) -> Any:
    with session_scope() as session:
        zones = lot_zones.list_zones(session, utcnow())
    if not zones:
        return html.P("There are no lot zones yet.", className="text-muted")
    header = ["Zone", "Scheduled on lots", "Permits", "Capacity", "Actions"]
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(h, scope="col") for h in header])),
            html.Tbody([_row(z) for z in zones]),
        ],
        hover=True,
        responsive=True,
        size="sm",
        className="align-middle",
        id="lotzones-grid",
    )


# Outputs of ``act``, in order.
OUTPUTS = (
    "flash",
    "version",
    "new_name",
    "new_capacity",
    "modal_open",
    "editing",
    "title",
    "name",
    "capacity",
    "rename_style",
    "text",
    "error",
    "save_style",
    "delete_style",
)
HIDDEN = {"display": "none"}
SHOWN: dict[str, str] = {}


def _out(**changes: Any) -> tuple[Any, ...]:
    unknown = set(changes) - set(OUTPUTS)
    if unknown:
        raise TypeError(f"not an output of act: {sorted(unknown)}")
    return tuple(changes.get(name, no_update) for name in OUTPUTS)


def _success(message: str, version: int | None, **changes: Any) -> tuple[Any, ...]:
    flash = dbc.Alert(message, color="success", dismissable=True)
    return _out(flash=flash, version=(version or 0) + 1, **changes)


def _open(action: str, zone_id: int) -> tuple[Any, ...]:
    with session_scope() as session:
        zone = lot_zones.get_zone(session, zone_id)
    editing = {"zone": zone.id, "action": action}
    if action == "rename":
        return _out(
            modal_open=True,
            editing=editing,
            title=f"Edit zone {zone.name}",
            name=zone.name,
            capacity=zone.capacity,
            rename_style=SHOWN,
            text=None,
            error=None,
            save_style=SHOWN,
            delete_style=HIDDEN,
        )
    if zone.in_use:
        # Say so before asking: the delete would be refused anyway.
        text: Any = str(lot_zones.ZoneInUse(zone.name, zone.lot_names, zone.permit_count))
        delete_style = HIDDEN
    else:
        text = f"Delete zone {zone.name}? It is not used by any lot or permit."
        delete_style = SHOWN
    return _out(
        modal_open=True,
        editing=editing,
        title=f"Delete zone {zone.name}",
        rename_style=HIDDEN,
        text=text,
        error=None,
        save_style=HIDDEN,
        delete_style=delete_style,
    )


@callback(
    Output("lotzones-flash", "children"),
    Output("lotzones-version", "data"),
    Output("lotzones-new-name", "value"),
    Output("lotzones-new-capacity", "value"),
    Output("lotzones-modal", "is_open"),
    Output("lotzones-editing", "data"),
    Output("lotzones-modal-title", "children"),
    Output("lotzones-modal-name", "value"),
    Output("lotzones-modal-capacity", "value"),
    Output("lotzones-modal-rename", "style"),
    Output("lotzones-modal-text", "children"),
    Output("lotzones-modal-error", "children"),
    Output("lotzones-modal-save", "style"),
    Output("lotzones-modal-delete", "style"),
    Input("lotzones-add", "n_clicks"),
    Input({"type": "lotzones-rename", "zone": ALL}, "n_clicks"),
    Input({"type": "lotzones-delete", "zone": ALL}, "n_clicks"),
    Input("lotzones-modal-save", "n_clicks"),
    Input("lotzones-modal-delete", "n_clicks"),
    Input("lotzones-modal-cancel", "n_clicks"),
    State("lotzones-new-name", "value"),
    State("lotzones-new-capacity", "value"),
    State("lotzones-editing", "data"),
    State("lotzones-modal-name", "value"),
    State("lotzones-modal-capacity", "value"),
    State("lotzones-version", "data"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def act(
    _add: int | None,
    _renames: list[int | None],
    _deletes: list[int | None],
    _save: int | None,
    _delete: int | None,
    _cancel: int | None,
    new_name: str | None,
    new_capacity: Any,
    editing: Any,
    name: str | None,
    capacity: Any,
    version: int | None,
) -> tuple[Any, ...]:
    """Add a zone; open the edit (name, capacity) or delete dialog from a row; save or confirm in
    the dialog. A refreshed table reports its buttons with ``n_clicks`` 0, which is no click."""
    trigger = dash.ctx.triggered_id
    clicked = dash.ctx.triggered[0]["value"] if dash.ctx.triggered else None
    if not clicked:
        return _out()
    zone_id = editing.get("zone") if isinstance(editing, dict) else None
    try:
        if trigger == "lotzones-add":
            with session_scope() as session:
                added = lot_zones.add_zone(session, new_name, current_user_id(), new_capacity)
            return _success(
                f"Zone {added.name} added. Put it on lots in the lot editor.",
                version,
                new_name="",
                new_capacity=None,
            )
        if isinstance(trigger, dict) and trigger.get("type") in ("lotzones-rename", "lotzones-delete"):
            action = "rename" if trigger["type"] == "lotzones-rename" else "delete"
            return _open(action, require_id(trigger["zone"], "zone"))
        if trigger == "lotzones-modal-cancel":
            return _out(modal_open=False, editing=None)
        if not isinstance(zone_id, int):
            return _out(error=dbc.Alert("Open the dialog from a zone's row first.", color="warning"))
        if trigger == "lotzones-modal-save":
            with session_scope() as session:
                before = lot_zones.get_zone(session, zone_id)
                lot_zones.set_capacity(session, zone_id, capacity, current_user_id())
                saved = lot_zones.rename_zone(session, zone_id, name, current_user_id())
            said = [f"Zone renamed to {saved.name}."] if saved.name != before.name else []
            if saved.capacity != before.capacity:
                limit = "no limit" if saved.capacity is None else f"{saved.capacity} at a time"
                said.append(f"Zone {saved.name}: capacity {limit}.")
            message = " ".join(said) or f"Zone {saved.name}: nothing changed."
            return _success(message, version, modal_open=False, editing=None)
        if trigger == "lotzones-modal-delete":
            with session_scope() as session:
                deleted = lot_zones.delete_zone(session, zone_id, current_user_id())
            return _success(f"Zone {deleted} deleted.", version, modal_open=False, editing=None)
    except ValidationFailed as exc:
        alert = validation_alert(exc, LABELS)
        in_dialog = trigger in ("lotzones-modal-save", "lotzones-modal-delete")
        return _out(error=alert) if in_dialog else _out(flash=alert)
    except DomainError as exc:
        alert = dbc.Alert(str(exc), color="danger")
        if trigger in ("lotzones-modal-save", "lotzones-modal-delete"):
            return _out(error=alert, version=(version or 0) + 1)
        return _out(flash=alert, version=(version or 0) + 1)
    return _out()
