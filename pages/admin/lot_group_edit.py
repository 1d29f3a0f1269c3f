"""Add or edit a lot group (admins): ``/admin/lot-groups/new`` and ``/admin/lot-groups/<id>/edit``.

The seed places a group "by putting a point on the map": a click on the map fills latitude and
longitude and puts the pin there; a second click moves it. The two fields stay editable (keyboard
and screen-reader users place the pin by typing, and a typed point moves the pin too), and
"Remove location" takes the group off the map without hiding it elsewhere. The other groups show
as small grey dots, so a new pin lands beside its neighbours rather than on top of one.

One template, ``/admin/lot-groups/<target>``, serves both addresses (``target`` is ``new`` or
``<id>/edit``): Dash gives a page one template, and the gate in ``dashboard.auth`` protects only
the addresses a template matches. The layout keeps just that URL part; the group, the Mistall
choices and the other pins arrive through ``Role.ADMIN`` callbacks. The Parking Logix key input
never receives the key: it stays empty, the stored key shows masked beside it, typing replaces
it and "Clear key" removes it.

A successful save goes back to the list with a one-time message (Flask's ``flash``, shown there
by ``pages.admin.lot_groups``), and is announced on the occupancy channel so open maps redraw.
"""

from __future__ import annotations

import re
from typing import Any

import dash
import dash_bootstrap_components as dbc
import dash_leaflet as dl
from dash import Input, Output, State, dcc, html, no_update
from flask import flash

from dashboard.callbacks import callback, register_page
from dashboard.components.feedback import validation_alert
from dashboard.components.hints import mistall_hint
from dashboard.inputs import as_id
from dashboard.services import lot_groups
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.lot_groups import GroupForm, GroupInput, MapPoint
from dashboard.services.system_settings import UNREADABLE
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(
    __name__,
    path_template="/admin/lot-groups/<target>",
    path="/admin/lot-groups/new",
    title="Lot Group Editor",
    min_role=Role.ADMIN,
    slash_in_variables=True,  # "/admin/lot-groups/7/edit": ``target`` is "7/edit"
)

LIST_PATH = "/admin/lot-groups"
FLASH_CATEGORY = "lotgroups"  # what ``pages.admin.lot_groups`` shows after the redirect
NEW = "new"
_EDIT_RE = re.compile(r"^(\d{1,18})/edit/?$")
DEFAULT_VIEW = {"center": [20.0, 0.0], "zoom": 2}  # the world, for a first group
POINT_ZOOM = 17
DECIMALS = 6  # about 10 cm: more than a click can mean
FIELD_LABELS = {
    "name": "Name",
    "map_color": "Map colour",
    "latitude": "Latitude",
    "longitude": "Longitude",
    "show_on_map": "Show on Real-Time map",
    "mistall_lot_id": "Mistall Lot ID",
    "parking_logix_name": "Parking Logix name",
    "parking_logix_api_key": "Parking Logix API key",
}
# The inputs that can show a field error, by field (``invalid`` plus a feedback line each).
INPUTS = {
    "name": "lotgroupedit-name",
    "map_color": "lotgroupedit-color",
    "latitude": "lotgroupedit-lat",
    "longitude": "lotgroupedit-lon",
    "parking_logix_name": "lotgroupedit-plx-name",
    "parking_logix_api_key": "lotgroupedit-plx-key",
}


def parse_target(target: str | None) -> int | str | None:
    """``new``, a group id, or None for an address this page does not serve."""
    if target == NEW:
        return NEW
    match = _EDIT_RE.match(target or "")
    return as_id(match.group(1)) if match else None


def _editing(target: Any) -> tuple[bool, int | None]:
    """(whether the address is this editor's, the group id or None for a new group)."""
    if target == NEW:
        return True, None
    if as_id(target) is not None and isinstance(target, int):
        return True, target
    return False, None


def layout(target: str | None = None, **_query: str) -> html.Div:
    parsed = parse_target(target)
    heading = "Add lot group" if parsed == NEW else "Edit lot group"
    return html.Div(
        [
            dcc.Location(id="lotgroupedit-url", refresh="callback-nav"),
            dcc.Store(id="lotgroupedit-target", data=parsed),
            dcc.Link("← Manage Parking Lot Groups", href=LIST_PATH, className="small"),
            html.H1(heading, className="h3 mt-2"),
            html.P(id="lotgroupedit-subtitle", className="text-muted"),
            html.Div(id="lotgroupedit-status", **{"aria-live": "polite"}),
            dbc.Row([dbc.Col(_form(), lg=5, className="mb-3"), dbc.Col(_map(), lg=7)]),
        ],
        style={"maxWidth": "100%", "overflowX": "hidden"},
    )


def _feedback(field: str) -> dbc.FormFeedback:
    return dbc.FormFeedback(id=f"{INPUTS[field]}-feedback", type="invalid")


def _form() -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    dbc.Label("Name", html_for="lotgroupedit-name"),
                    dbc.Input(id="lotgroupedit-name", maxLength=lot_groups.NAME_MAX, required=True),
                    _feedback("name"),
                ],
                className="mb-3",
            ),
            html.Div(
                [
                    dbc.Label("Map colour", html_for="lotgroupedit-color"),
                    dbc.Input(
                        id="lotgroupedit-color",
                        type="color",
                        value=lot_groups.DEFAULT_COLOR,
                        className="form-control-color",
                    ),
                    _feedback("map_color"),
                    dbc.FormText("The colour of the group's pin on the real-time maps."),
                ],
                className="mb-3",
            ),
            html.Fieldset(
                [
                    html.Legend("Location", className="form-label fs-6 mb-1"),
                    dbc.Row(
                        [
                            dbc.Col(
                                [
                                    dbc.Label("Latitude", html_for="lotgroupedit-lat", className="small"),
                                    dbc.Input(
                                        id="lotgroupedit-lat",
                                        type="number",
                                        min=-90,
                                        max=90,
                                        step="any",
                                        debounce=True,
                                    ),
                                    _feedback("latitude"),
                                ],
                                xs=6,
                            ),
                            dbc.Col(
                                [
                                    dbc.Label("Longitude", html_for="lotgroupedit-lon", className="small"),
                                    dbc.Input(
                                        id="lotgroupedit-lon",
                                        type="number",
                                        min=-180,
                                        max=180,
                                        step="any",
                                        debounce=True,
                                    ),
                                    _feedback("longitude"),
                                ],
                                xs=6,
                            ),
                        ],
                        className="g-2",
                    ),
                    dbc.FormText(
                        "Click the map to place the pin, click again to move it, or type the "
                        "coordinates in decimal degrees (both or neither)."
                    ),
                    html.Div(
                        dbc.Button(
                            "Remove location",
                            id="lotgroupedit-unplace",
                            color="link",
                            size="sm",
                            className="px-0",
                            n_clicks=0,
                        )
                    ),
                ],
                className="mb-3",
            ),
            dbc.Checkbox(id="lotgroupedit-show", label="Show on Real-Time map", value=True, className="mb-3"),
            html.Div(
                [
                    dbc.Label("Mistall Lot ID", html_for="lotgroupedit-mistall"),
                    dcc.Dropdown(
                        id="lotgroupedit-mistall",
                        options=[],
                        placeholder="No Mistall lot",
                        clearable=True,
                        searchable=True,
                    ),
                    html.Div(id="lotgroupedit-mistall-hint", className="form-text"),
                    html.Div(id="lotgroupedit-mistall-feedback", className="invalid-feedback d-block"),
                ],
                className="mb-3",
            ),
            html.Div(
                [
                    dbc.Label("Parking Logix name", html_for="lotgroupedit-plx-name"),
                    dbc.Input(id="lotgroupedit-plx-name", maxLength=lot_groups.PARKING_LOGIX_NAME_MAX),
                    _feedback("parking_logix_name"),
                    dbc.FormText(
                        "The lot's name in Parking Logix, exactly as Parking Logix writes it: case and "
                        "spaces count, a space at either end too (System Task Logs shows it as ␠)."
                    ),
                ],
                className="mb-3",
            ),
            html.Div(
                [
                    dbc.Label("Parking Logix API key", html_for="lotgroupedit-plx-key"),
                    dbc.Input(
                        id="lotgroupedit-plx-key",
                        type="password",
                        autocomplete="new-password",
                        placeholder="not set",
                    ),
                    _feedback("parking_logix_api_key"),
                    dbc.FormText(id="lotgroupedit-key-status"),
                    dbc.Checkbox(
                        id="lotgroupedit-clear-key",
                        label="Clear key (remove the stored key)",
                        value=False,
                        className="mt-1",
                    ),
                ],
                className="mb-3",
            ),
            html.Div(
                [
                    dbc.Button("Save", id="lotgroupedit-save", color="primary", n_clicks=0),
                    dbc.Button("Cancel", href=LIST_PATH, color="secondary", outline=True),
                ],
                className="d-flex gap-2",
            ),
        ]
    )


def _map() -> html.Div:
    return html.Div(
        [
            dl.Map(
                [
                    dl.TileLayer(url=core().settings.tile_url),
                    dl.LayerGroup(id="lotgroupedit-others"),
                    dl.LayerGroup(id="lotgroupedit-pin"),
                ],
                id="lotgroupedit-map",
                center=DEFAULT_VIEW["center"],
                zoom=DEFAULT_VIEW["zoom"],
                style={"height": "60vh", "minHeight": "20rem", "width": "100%", "cursor": "crosshair"},
                className="border rounded",
            ),
            html.P(
                "The filled pin is this group; grey dots are the other lot groups.",
                className="small text-muted mt-1",
            ),
        ],
        role="region",
        **{"aria-label": "Map: click to place the lot group"},
    )


def _key_status(status: str) -> str:
    if not status:
        return "Stored key: not set."
    if status == UNREADABLE:
        return f"Stored key: {UNREADABLE}."
    return f"Stored key: {status} (set). Leave the field empty to keep it."


def _other_pin(point: MapPoint) -> Any:
    return dl.CircleMarker(
        dl.Tooltip(point.name),
        center=[point.latitude, point.longitude],
        radius=6,
        color="#6c757d",
        fillColor="#adb5bd",
        fillOpacity=0.6,
        weight=1,
    )


def _view(form: GroupForm) -> dict[str, Any]:
    """The group's point, else the other groups, else the world."""
    if form.latitude is not None and form.longitude is not None:
        return {"center": [form.latitude, form.longitude], "zoom": POINT_ZOOM}
    if not form.others:
        return DEFAULT_VIEW
    lats = [point.latitude for point in form.others]
    lons = [point.longitude for point in form.others]
    return {
        "bounds": [[min(lats), min(lons)], [max(lats), max(lons)]],
        "options": {"padding": [30, 30], "maxZoom": 16},
    }


# Outputs of ``load``, in order.
LOAD_OUTPUTS = (
    "subtitle",
    "name",
    "color",
    "lat",
    "lon",
    "show",
    "plx_name",
    "mistall_options",
    "mistall_value",
    "mistall_disabled",
    "mistall_hint",
    "key_status",
    "key_placeholder",
    "clear_key",
    "clear_key_disabled",
    "others",
    "viewport",
    "status",
    "save_disabled",
)


def _loaded(**values: Any) -> tuple[Any, ...]:
    return tuple(values.get(name, no_update) for name in LOAD_OUTPUTS)


@callback(
    Output("lotgroupedit-subtitle", "children"),
    Output("lotgroupedit-name", "value"),
    Output("lotgroupedit-color", "value"),
    Output("lotgroupedit-lat", "value"),
    Output("lotgroupedit-lon", "value"),
    Output("lotgroupedit-show", "value"),
    Output("lotgroupedit-plx-name", "value"),
    Output("lotgroupedit-mistall", "options"),
    Output("lotgroupedit-mistall", "value"),
    Output("lotgroupedit-mistall", "disabled"),
    Output("lotgroupedit-mistall-hint", "children"),
    Output("lotgroupedit-key-status", "children"),
    Output("lotgroupedit-plx-key", "placeholder"),
    Output("lotgroupedit-clear-key", "value"),
    Output("lotgroupedit-clear-key", "disabled"),
    Output("lotgroupedit-others", "children"),
    Output("lotgroupedit-map", "viewport"),
    Output("lotgroupedit-status", "children"),
    Output("lotgroupedit-save", "disabled"),
    Input("lotgroupedit-target", "data"),
    min_role=Role.ADMIN,
)
def load(target: Any) -> tuple[Any, ...]:
    """Fill the form from the group (or a new group's defaults) and centre the map on it."""
    valid, group_id = _editing(target)
    if not valid:
        return _missing("This address is not a lot group's editor.")
    try:
        with session_scope() as session:
            form = lot_groups.group_form(session, core().secrets, group_id)
    except NotFound as exc:
        return _missing(str(exc))
    return _loaded(
        subtitle=(
            f"Editing “{form.name}”." if form.group_id is not None else "A new pin on the real-time maps."
        ),
        name=form.name,
        color=form.map_color,
        lat=form.latitude,
        lon=form.longitude,
        show=form.show_on_map,
        plx_name=form.parking_logix_name,
        mistall_options=[{"label": label, "value": value} for value, label in form.mistall_choices],
        mistall_value=form.mistall_lot_id,
        mistall_disabled=not form.mistall_choices,
        mistall_hint=mistall_hint(form.mistall_imported, "{imported} Mistall lot(s) imported."),
        key_status=_key_status(form.key_status),
        key_placeholder="not set" if not form.key_status else "set: leave empty to keep it",
        clear_key=False,
        clear_key_disabled=not form.key_status,
        others=[_other_pin(point) for point in form.others],
        viewport=_view(form),
        status=None,
        save_disabled=False,
    )


def _missing(message: str) -> tuple[Any, ...]:
    alert = dbc.Alert(
        [message, " ", dcc.Link("Back to the lot groups", href=LIST_PATH, className="alert-link")],
        color="warning",
    )
    return _loaded(status=alert, save_disabled=True)


def click_point(click: Any) -> tuple[float, float] | None:
    """The point of a map click. dash-leaflet sends Leaflet's ``latlng`` (``{"lat", "lng"}``); its
    typings say a ``[lat, lng]`` list, so both are read. Leaflet may report a longitude beyond
    ±180 after panning across the date line: it is wrapped back."""
    latlng = click.get("latlng") if isinstance(click, dict) else None
    if isinstance(latlng, dict):
        lat, lng = latlng.get("lat"), latlng.get("lng")
    elif isinstance(latlng, list | tuple) and len(latlng) == 2:
        lat, lng = latlng
    else:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lng)):
        return None
    wrapped = (float(lng) + 180.0) % 360.0 - 180.0
    return round(max(-90.0, min(90.0, float(lat))), DECIMALS), round(wrapped, DECIMALS)


@callback(
    Output("lotgroupedit-lat", "value", allow_duplicate=True),
    Output("lotgroupedit-lon", "value", allow_duplicate=True),
    Input("lotgroupedit-map", "clickData"),
    Input("lotgroupedit-unplace", "n_clicks"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def place(click: Any, _unplace: int | None) -> tuple[Any, Any]:
    """A click on the map fills both fields; "Remove location" empties them. The pin follows the
    fields (``pin``), so a clicked and a typed point behave alike."""
    if dash.ctx.triggered_id == "lotgroupedit-unplace":
        return (None, None) if _unplace else (no_update, no_update)
    point = click_point(click)
    return point if point is not None else (no_update, no_update)


def _number(value: Any, limit: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if -limit <= number <= limit else None


def _inside(bounds: Any, lat: float, lon: float) -> bool:
    try:
        (south, west), (north, east) = bounds
        return south <= lat <= north and west <= lon <= east
    except (TypeError, ValueError):
        return False


@callback(
    Output("lotgroupedit-pin", "children"),
    Output("lotgroupedit-map", "viewport", allow_duplicate=True),
    Input("lotgroupedit-lat", "value"),
    Input("lotgroupedit-lon", "value"),
    Input("lotgroupedit-color", "value"),
    State("lotgroupedit-map", "bounds"),
    State("lotgroupedit-map", "zoom"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def pin(lat: Any, lon: Any, color: Any, bounds: Any, zoom: Any) -> tuple[Any, Any]:
    """Put the pin where the fields say. A typed point off screen pans the map to it; a clicked
    point is on screen already, so the map stays where the admin put it."""
    point_lat, point_lon = _number(lat, 90), _number(lon, 180)
    if point_lat is None or point_lon is None:
        return [], no_update
    fill = color if isinstance(color, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", color) else "#1f77b4"
    marker = dl.CircleMarker(
        dl.Tooltip("This lot group"),
        id="lotgroupedit-marker",
        center=[point_lat, point_lon],
        radius=11,
        color="#212529",
        weight=3,
        fillColor=fill,
        fillOpacity=0.9,
    )
    if bounds is None or _inside(bounds, point_lat, point_lon):
        return [marker], no_update
    keep_zoom = zoom if isinstance(zoom, int | float) and zoom >= 10 else POINT_ZOOM
    return [marker], {"center": [point_lat, point_lon], "zoom": keep_zoom}


# Outputs of ``save``: the status, the redirect, then ``invalid`` and feedback of each input.
@callback(
    Output("lotgroupedit-status", "children", allow_duplicate=True),
    Output("lotgroupedit-url", "href"),
    *[Output(component, "invalid") for component in INPUTS.values()],
    *[Output(f"{component}-feedback", "children") for component in INPUTS.values()],
    Output("lotgroupedit-mistall-feedback", "children"),
    Input("lotgroupedit-save", "n_clicks"),
    State("lotgroupedit-target", "data"),
    State("lotgroupedit-name", "value"),
    State("lotgroupedit-color", "value"),
    State("lotgroupedit-lat", "value"),
    State("lotgroupedit-lon", "value"),
    State("lotgroupedit-show", "value"),
    State("lotgroupedit-mistall", "value"),
    State("lotgroupedit-plx-name", "value"),
    State("lotgroupedit-plx-key", "value"),
    State("lotgroupedit-clear-key", "value"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def save(
    clicks: int | None,
    target: Any,
    name: Any,
    color: Any,
    lat: Any,
    lon: Any,
    show: Any,
    mistall: Any,
    plx_name: Any,
    plx_key: Any,
    clear_key: Any,
) -> tuple[Any, ...]:
    """Validate and store; back to the list with a message, or every field's problem in place."""
    if not clicks:
        return (no_update,) * (3 + 2 * len(INPUTS))
    valid, group_id = _editing(target)
    if not valid:
        return _failed(dbc.Alert("This address is not a lot group's editor.", color="warning"), {})
    data = GroupInput(
        name=name,
        map_color=color,
        latitude=lat,
        longitude=lon,
        show_on_map=bool(show),
        mistall_lot_id=mistall,
        parking_logix_name=plx_name,
        parking_logix_api_key=plx_key,
        clear_api_key=bool(clear_key),
    )
    try:
        with session_scope() as session:
            saved = lot_groups.save_group(session, core().secrets, data, current_user_id(), group_id)
    except ValidationFailed as exc:
        return _failed(validation_alert(exc, FIELD_LABELS, "Not saved. Fix these fields:"), exc.errors)
    except NotFound as exc:
        return _failed(dbc.Alert(str(exc), color="warning"), {})
    if saved.changed:
        lot_groups.announce_saved(core().redis, saved.group_id)
    flash(_saved_message(saved), FLASH_CATEGORY)
    return (None, LIST_PATH, *([False] * len(INPUTS)), *([""] * len(INPUTS)), "")


def _failed(alert: Any, errors: dict[str, str]) -> tuple[Any, ...]:
    return (
        alert,
        no_update,
        *[field in errors for field in INPUTS],
        *[errors.get(field, "") for field in INPUTS],
        errors.get("mistall_lot_id", ""),
    )


def _saved_message(saved: lot_groups.SavedGroup) -> str:
    if saved.created:
        return f"Lot group “{saved.name}” created."
    if not saved.changed:
        return f"Lot group “{saved.name}”: nothing changed."
    changed = ", ".join(FIELD_LABELS[field] for field in saved.changed)
    return f"Lot group “{saved.name}” saved (changed: {changed})."
