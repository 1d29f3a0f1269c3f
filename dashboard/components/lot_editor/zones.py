"""The lot editor's Zones & Location tab: the lot's latitude and longitude, and the enforcement
zone schedules (a zone on some weekdays between two times) saved through
``dashboard.services.lots`` by ``Role.ADMIN`` callbacks."""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback
from dashboard.components.feedback import validation_alert
from dashboard.components.lot_editor.common import LABELS, field, fieldset, lot_key
from dashboard.inputs import require_id
from dashboard.services import lot_zones, lots
from dashboard.services.errors import DomainError, NotFound, ValidationFailed
from dashboard.services.lots import DAY_NAMES, ScheduleView
from dashboard.web import current_user_id, session_scope
from models import Role

ALL_DAYS = list(range(7))


def tab() -> Any:
    return html.Div(
        [
            dbc.Card(
                [
                    dbc.CardHeader("Location"),
                    dbc.CardBody(
                        [
                            dbc.Row(
                                [
                                    field(
                                        "Latitude",
                                        dbc.Input(id="lotedit-latitude", inputMode="decimal"),
                                        "lotedit-latitude",
                                        "Decimal degrees, -90 to 90 (e.g. 43.4723). Optional.",
                                        md=4,
                                    ),
                                    field(
                                        "Longitude",
                                        dbc.Input(id="lotedit-longitude", inputMode="decimal"),
                                        "lotedit-longitude",
                                        "Decimal degrees, -180 to 180 (e.g. -80.5449). Optional.",
                                        md=4,
                                    ),
                                    dbc.Col(
                                        dbc.Button(
                                            "Save location",
                                            id="lotedit-location-save",
                                            color="primary",
                                            n_clicks=0,
                                        ),
                                        xs=12,
                                        md=4,
                                        className="d-flex align-items-center mb-3",
                                    ),
                                ],
                                className="g-2",
                            ),
                            html.Div(id="lotedit-location-status", role="status"),
                        ]
                    ),
                ],
                className="mb-3",
            ),
            dbc.Card(
                [
                    dbc.CardHeader("Zones"),
                    dbc.CardBody(
                        [
                            html.P(
                                "A permit bought for a zone (HotSpot, ParkMobile, pay stations) is valid in "
                                "every lot that has the zone at that day and time.",
                                className="text-muted small",
                            ),
                            dcc.Store(id="lotedit-zone-version", data=0),
                            html.Div(id="lotedit-zone-flash"),
                            html.Div(id="lotedit-schedules", className="mb-3"),
                            html.H2("Add Zone by Days", className="h6"),
                            _zone_form(),
                            html.Div(id="lotedit-zone-status", className="mt-3", role="status"),
                        ]
                    ),
                ]
            ),
        ],
        className="pt-3",
    )


def _zone_form() -> Any:
    day_options = [{"label": name, "value": index} for index, name in enumerate(DAY_NAMES)]
    return dbc.Row(
        [
            field(
                "Zone",
                dbc.Select(id="lotedit-zone", options=[], placeholder="Choose a zone"),
                "lotedit-zone",
                md=3,
            ),
            fieldset(
                "Days",
                dbc.Checklist(id="lotedit-zone-days", options=day_options, value=ALL_DAYS, inline=True),
                md=5,
            ),
            field(
                "Start",
                dbc.Input(id="lotedit-zone-start", type="time", value="00:00"),
                "lotedit-zone-start",
                xs=6,
                md=2,
            ),
            field(
                "End",
                dbc.Input(id="lotedit-zone-end", type="time", value="23:59"),
                "lotedit-zone-end",
                xs=6,
                md=2,
            ),
            dbc.Col(
                [
                    dbc.Button("Save zone", id="lotedit-zone-add", color="primary", n_clicks=0),
                    dbc.FormText(
                        "Local times. The end minute is included: 07:00 to 18:00 runs until 18:00:59, "
                        "and 00:00 to 23:59 (midnight to 11:59 PM) is all day.",
                        className="ms-2",
                    ),
                ],
                xs=12,
            ),
        ],
        className="g-2",
    )


def _schedule_table(schedules: list[ScheduleView]) -> Any:
    if not schedules:
        return html.P("No zones on this lot.", className="text-muted")
    rows = [
        html.Tr(
            [
                html.Td(html.Span(s.zone_name, className="fw-semibold")),
                html.Td(s.days_label),
                html.Td(s.hours_label),
                html.Td(
                    dbc.Button(
                        "Delete",
                        id={"type": "lotedit-schedule-delete", "schedule": s.id},
                        size="sm",
                        color="outline-danger",
                        n_clicks=0,
                        title=f"Remove zone {s.zone_name} ({s.days_label}, {s.hours_label}) from this lot",
                    )
                ),
            ],
            id=f"lotedit-schedule-row-{s.id}",
        )
        for s in schedules
    ]
    header = ["Zone", "Days", "Times", ""]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h, scope="col") for h in header])), html.Tbody(rows)],
        size="sm",
        responsive=True,
        className="align-middle",
        id="lotedit-schedules-grid",
    )


def refresh_zones(lot_id: Any, _version: int | None) -> tuple[Any, Any]:
    key = lot_key(lot_id)
    if key is None:
        return None, []
    try:
        with session_scope() as session:
            schedules = lots.list_schedules(session, key)
            zones = [{"label": name, "value": str(zid)} for zid, name in lot_zones.zone_choices(session)]
    except NotFound:
        return None, []
    if not zones:
        return html.Div(
            [
                _schedule_table(schedules),
                html.P(
                    [
                        "No zones exist yet: add them under ",
                        dcc.Link("Manage Lot Zones", href="/admin/lot-zones"),
                        ".",
                    ],
                    className="small text-warning-emphasis",
                ),
            ]
        ), zones
    return _schedule_table(schedules), zones


def zone_action(
    _add: int | None,
    _deletes: list[int | None],
    lot_id: Any,
    zone_id: Any,
    days: list[Any] | None,
    start: str | None,
    end: str | None,
    version: int | None,
) -> tuple[Any, Any]:
    trigger = dash.ctx.triggered_id
    clicked = dash.ctx.triggered[0]["value"] if dash.ctx.triggered else None
    key = lot_key(lot_id)
    if not clicked or key is None:
        return no_update, no_update
    bumped = (version or 0) + 1
    try:
        with session_scope() as session:
            if isinstance(trigger, dict) and trigger.get("type") == "lotedit-schedule-delete":
                schedule_id = require_id(trigger["schedule"], "schedule")
                removed = lots.delete_schedule(session, key, schedule_id, current_user_id())
                message = f"Removed {removed.summary}."
            elif trigger == "lotedit-zone-add":
                added = lots.add_schedule(session, key, zone_id, days or [], start, end, current_user_id())
                message = f"Added {added.summary}."
            else:
                return no_update, no_update
    except ValidationFailed as exc:
        return validation_alert(exc, LABELS), no_update
    except DomainError as exc:
        return dbc.Alert(str(exc), color="danger"), bumped
    return dbc.Alert(message, color="success", dismissable=True), bumped


def save_location(clicks: int | None, lot_id: Any, latitude: Any, longitude: Any) -> Any:
    key = lot_key(lot_id)
    if not clicks or key is None:
        return no_update
    try:
        with session_scope() as session:
            saved = lots.update_location(session, key, latitude, longitude, current_user_id())
    except ValidationFailed as exc:
        return validation_alert(exc, LABELS)
    except DomainError as exc:
        return dbc.Alert(str(exc), color="danger")
    if not saved.changes:
        return dbc.Alert("Nothing to save: the location is unchanged.", color="secondary")
    if saved.lot.latitude is None:
        return dbc.Alert("Location cleared.", color="success", dismissable=True)
    return dbc.Alert(
        f"Location saved: {saved.lot.latitude}, {saved.lot.longitude}.", color="success", dismissable=True
    )


def register_callbacks() -> None:
    """Register this tab's callbacks (the page calls it once, as Dash imports the page)."""
    callback(
        Output("lotedit-schedules", "children"),
        Output("lotedit-zone", "options"),
        Input("lotedit-id", "data"),
        Input("lotedit-zone-version", "data"),
        min_role=Role.ADMIN,
    )(refresh_zones)
    callback(
        Output("lotedit-zone-status", "children"),
        Output("lotedit-zone-version", "data"),
        Input("lotedit-zone-add", "n_clicks"),
        Input({"type": "lotedit-schedule-delete", "schedule": ALL}, "n_clicks"),
        State("lotedit-id", "data"),
        State("lotedit-zone", "value"),
        State("lotedit-zone-days", "value"),
        State("lotedit-zone-start", "value"),
        State("lotedit-zone-end", "value"),
        State("lotedit-zone-version", "data"),
        min_role=Role.ADMIN,
        prevent_initial_call=True,
    )(zone_action)
    callback(
        Output("lotedit-location-status", "children"),
        Input("lotedit-location-save", "n_clicks"),
        State("lotedit-id", "data"),
        State("lotedit-latitude", "value"),
        State("lotedit-longitude", "value"),
        min_role=Role.ADMIN,
        prevent_initial_call=True,
    )(save_location)
