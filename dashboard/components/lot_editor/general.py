"""The lot editor's General tab: name, code, lot group, address, capacity, permits allowed,
description, what the lot sells and whether it is active; loaded from and saved through
``dashboard.services.lots`` by ``Role.ADMIN`` callbacks. A new lot opens its own editor once saved;
a change the maps read is announced after the commit so open maps refresh."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback
from dashboard.components.feedback import validation_alert
from dashboard.components.lot_editor.common import LABELS, NEW, field, fieldset, lot_key
from dashboard.services import lots
from dashboard.services.errors import DomainError, NotFound, ValidationFailed
from dashboard.services.lots import GeneralFields
from dashboard.web import core, current_user_id, session_scope
from models import PermitKind, Role

NO_GROUP = "none"
SELLS_OPTIONS = [
    {"label": "Standard permits", "value": PermitKind.STANDARD.value},
    {"label": "Temporary permits", "value": PermitKind.TEMPORARY.value},
]


def tab(is_new: bool) -> Any:
    return html.Div(
        [
            dbc.Row(
                [
                    field("Name", dbc.Input(id="lotedit-name", maxLength=120), "lotedit-name", md=6),
                    field(
                        "Code",
                        dbc.Input(id="lotedit-code", maxLength=32),
                        "lotedit-code",
                        "Optional short code, unique (e.g. N1).",
                        md=3,
                    ),
                    field(
                        "Lot Group",
                        dbc.Select(id="lotedit-group", options=[]),
                        "lotedit-group",
                        "The pin this lot counts under on the real-time maps; none keeps it off the maps.",
                        md=3,
                    ),
                    field("Address", dbc.Input(id="lotedit-address", maxLength=200), "lotedit-address", md=6),
                    field(
                        "Capacity (spaces)",
                        dbc.Input(id="lotedit-capacity", inputMode="numeric"),
                        "lotedit-capacity",
                        md=3,
                    ),
                    field(
                        "Permits allowed",
                        dbc.Input(id="lotedit-allowed", inputMode="numeric", placeholder="same as capacity"),
                        "lotedit-allowed",
                        "Blank = same as capacity. May be more than capacity on purpose, to oversell a "
                        "lot that is never physically full.",
                        md=3,
                    ),
                    field(
                        "Description",
                        dbc.Textarea(id="lotedit-description", rows=3, maxLength=5000),
                        "lotedit-description",
                        md=12,
                    ),
                ],
                className="g-2",
            ),
            dbc.Row(
                [
                    fieldset(
                        "This lot sells",
                        dbc.Checklist(id="lotedit-sells", options=SELLS_OPTIONS, value=[]),
                        md=6,
                    ),
                    dbc.Col(
                        [
                            dbc.Checkbox(id="lotedit-active", label="Active", value=True),
                            dbc.FormText("An inactive lot sells nothing and leaves the maps' permit counts."),
                        ],
                        xs=12,
                        md=6,
                        className="mb-3",
                    ),
                ]
            ),
            dbc.Button(
                "Add lot" if is_new else "Update this Lot", id="lotedit-save", color="primary", n_clicks=0
            ),
            html.Div(id="lotedit-general-status", className="mt-3", role="status"),
        ],
        className="pt-3",
    )


GENERAL_FIELDS = ("name", "code", "description", "address", "group", "capacity", "allowed", "active", "sells")


def load_general(lot_id: Any, _version: int | None) -> tuple[Any, ...]:
    """Fill the General form (and the location) from the database; re-run after each save, so the
    form shows what was stored (trimmed names, a blank allowance)."""
    with session_scope() as session:
        groups = lots.group_choices(session)
        options = [{"label": "None (not on the real-time maps)", "value": NO_GROUP}] + [
            {"label": name, "value": str(gid)} for gid, name in groups
        ]
        if lot_id == NEW:
            blank = ("", "", "", "", NO_GROUP, "0", "", True, [PermitKind.STANDARD.value], None, None)
            return ("Add lot", None, options, *blank)
        try:
            lot = lots.get_lot(session, lot_key(lot_id) or 0)
        except NotFound:
            missing = dbc.Alert(
                ["There is no such lot. ", dcc.Link("Back to Lot Administration", href="/admin/lots")],
                color="warning",
            )
            return ("Lot not found", missing, options, *(no_update,) * (len(GENERAL_FIELDS) + 2))
    sells = [
        kind.value
        for kind, on in (
            (PermitKind.STANDARD, lot.sells_standard),
            (PermitKind.TEMPORARY, lot.sells_temporary),
        )
        if on
    ]
    values = (
        lot.name,
        lot.code or "",
        lot.description,
        lot.address or "",
        str(lot.lot_group_id) if lot.lot_group_id else NO_GROUP,
        str(lot.capacity),
        "" if lot.permits_allowed is None else str(lot.permits_allowed),
        lot.is_active,
        sells,
        "" if lot.latitude is None else str(lot.latitude),
        "" if lot.longitude is None else str(lot.longitude),
    )
    return (f"Lot: {lot.name}", None, options, *values)


def save_general(
    clicks: int | None,
    lot_id: Any,
    name: str | None,
    code: str | None,
    description: str | None,
    address: str | None,
    group: str | None,
    capacity: Any,
    allowed: Any,
    active: bool | None,
    sells: list[str] | None,
    version: int | None,
) -> tuple[Any, Any, Any]:
    """Add the lot (then open its editor) or update it. A change the maps read is announced only
    after the commit (``session_scope`` commits on leaving the block)."""
    if not clicks:
        return no_update, no_update, no_update
    chosen = set(sells or [])
    fields = GeneralFields(
        name=name,
        code=code,
        description=description,
        address=address,
        lot_group_id=None if group in (None, "", NO_GROUP) else group,
        capacity=capacity,
        permits_allowed=allowed,
        is_active=bool(active),
        sells_standard=PermitKind.STANDARD.value in chosen,
        sells_temporary=PermitKind.TEMPORARY.value in chosen,
    )
    try:
        with session_scope() as session:
            if lot_id == NEW:
                saved = lots.create_lot(session, fields, current_user_id())
            else:
                saved = lots.update_general(session, lot_key(lot_id) or 0, fields, current_user_id())
    except ValidationFailed as exc:
        return validation_alert(exc, LABELS), no_update, no_update
    except DomainError as exc:
        return dbc.Alert(str(exc), color="danger"), no_update, no_update
    lots.announce(core().redis, saved)
    if saved.created:
        return no_update, no_update, f"/admin/lots/{saved.lot.id}?created=1"
    if not saved.changes:
        return dbc.Alert("Nothing to save: the lot is unchanged.", color="secondary"), no_update, no_update
    refreshed = " The real-time maps were told." if saved.announce_groups else ""
    message = dbc.Alert(f"{saved.lot.name} saved.{refreshed}", color="success", dismissable=True)
    return message, (version or 0) + 1, no_update


def register_callbacks() -> None:
    """Register this tab's callbacks (the page calls it once, as Dash imports the page)."""
    callback(
        Output("lotedit-title", "children"),
        Output("lotedit-missing", "children"),
        Output("lotedit-group", "options"),
        *(Output(f"lotedit-{name}", "value") for name in GENERAL_FIELDS),
        Output("lotedit-latitude", "value"),
        Output("lotedit-longitude", "value"),
        Input("lotedit-id", "data"),
        Input("lotedit-version", "data"),
        min_role=Role.ADMIN,
    )(load_general)
    callback(
        Output("lotedit-general-status", "children"),
        Output("lotedit-version", "data"),
        Output("lotedit-url", "href"),
        Input("lotedit-save", "n_clicks"),
        State("lotedit-id", "data"),
        *(State(f"lotedit-{name}", "value") for name in GENERAL_FIELDS),
        State("lotedit-version", "data"),
        min_role=Role.ADMIN,
        prevent_initial_call=True,
    )(save_general)
