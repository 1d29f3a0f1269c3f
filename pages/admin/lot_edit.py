"""The lot editor (Lot Administration > a lot): General, Permits & Prices, Zones & Location.

``/admin/lots/<lot_id>`` edits a lot; ``/admin/lots/new`` adds one (the other two tabs open once it
is saved, because products and zones belong to a lot that exists). The layout holds only the id
from the URL; every value arrives through ``Role.ADMIN`` callbacks, and every save goes through
``dashboard.services.lots``, which checks each field, audits, and says which lot groups' map
figures changed: those are announced after the commit so open maps refresh.

Money is typed in dollars and stored in cents; a permit kind the lot does not sell (General tab)
is flagged beside its products rather than hidden, so an admin sees why a product is not offered.
"""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.feedback import validation_alert
from dashboard.inputs import as_id, require_id
from dashboard.services import lot_zones, lots
from dashboard.services.errors import DomainError, NotFound, ValidationFailed
from dashboard.services.lots import DAY_NAMES, GeneralFields, ProductFields, ProductView, ScheduleView
from dashboard.web import core, current_user_id, session_scope
from models import PermitKind, Pricing, Role

register_page(
    __name__,
    path_template="/admin/lots/<lot_id>",
    path="/admin/lots/new",
    title="Edit Lot",
    min_role=Role.ADMIN,
)

NEW = "new"
NO_GROUP = "none"
ALL_DAYS = list(range(7))
LABELS = {
    "name": "Name",
    "code": "Code",
    "description": "Description",
    "address": "Address",
    "lot_group_id": "Lot Group",
    "capacity": "Capacity",
    "permits_allowed": "Permits allowed",
    "latitude": "Latitude",
    "longitude": "Longitude",
    "kind": "Kind",
    "pricing": "Pricing",
    "price": "Price",
    "term_start": "Term start",
    "term_end": "Term end",
    "max_duration_minutes": "Maximum duration",
    "user_type_ids": "Eligible user types",
    "zone_id": "Zone",
    "days": "Days",
    "start_time": "Start time",
    "end_time": "End time",
}
PRICING_OPTIONS = [
    {"label": "Hourly (price per hour)", "value": Pricing.HOURLY.value},
    {"label": "Daily (price per day)", "value": Pricing.DAILY.value},
    {"label": "Fixed (one price)", "value": Pricing.FIXED.value},
]
KIND_OPTIONS = [
    {"label": "Standard (term permit)", "value": PermitKind.STANDARD.value},
    {"label": "Temporary (hourly, daily or fixed)", "value": PermitKind.TEMPORARY.value},
]
SELLS_OPTIONS = [
    {"label": "Standard permits", "value": PermitKind.STANDARD.value},
    {"label": "Temporary permits", "value": PermitKind.TEMPORARY.value},
]


def lot_key(value: Any) -> int | None:
    """The lot id in the URL, or None for ``new`` or anything that is not an id."""
    return as_id(value)


def layout(lot_id: str | None = None, created: str | None = None, **_query: str) -> html.Div:
    is_new = lot_id == NEW
    notice = (
        dbc.Alert(
            "Lot added. Now add its permits and prices and its zones.", color="success", dismissable=True
        )
        if created and not is_new
        else None
    )
    return html.Div(
        [
            dcc.Location(id="lotedit-url", refresh="callback-nav"),
            dcc.Store(id="lotedit-id", data=lot_id),
            dcc.Store(id="lotedit-version", data=0),
            dcc.Link("← Lot Administration", href="/admin/lots", className="small"),
            html.H1("Lot", id="lotedit-title", className="h3 mt-1"),
            _qr_link(lot_key(lot_id)),
            notice,
            html.Div(id="lotedit-missing"),
            dbc.Tabs(
                [
                    dbc.Tab(_general_tab(is_new), label="General", tab_id="general"),
                    dbc.Tab(
                        _products_tab(),
                        label="Permits & Prices",
                        tab_id="products",
                        id="lotedit-tab-products",
                        disabled=is_new,
                    ),
                    dbc.Tab(
                        _zones_tab(),
                        label="Zones & Location",
                        tab_id="zones",
                        id="lotedit-tab-zones",
                        disabled=is_new,
                    ),
                ],
                id="lotedit-tabs",
                active_tab="general",
                className="mb-3",
            ),
        ],
        style={"maxWidth": "100%", "overflowX": "hidden"},
    )


def _qr_link(key: int | None) -> Any:
    """The printable QR code of the lot's quick checkout (for the signs at the lot's entrances)."""
    if key is None:
        return None
    return dcc.Link(
        "QR code for the quick checkout", href=f"/admin/lot-qr/{key}", className="small d-block mb-2"
    )


def _field(label: str, control: Any, control_id: str, help_text: str | None = None, **col: Any) -> Any:
    parts = [dbc.Label(label, html_for=control_id), control]
    if help_text:
        parts.append(dbc.FormText(help_text, id=f"{control_id}-help"))
    return dbc.Col(parts, **{"xs": 12, **col}, className="mb-3")


# --- General --------------------------------------------------------------------------------


def _general_tab(is_new: bool) -> Any:
    return html.Div(
        [
            dbc.Row(
                [
                    _field("Name", dbc.Input(id="lotedit-name", maxLength=120), "lotedit-name", md=6),
                    _field(
                        "Code",
                        dbc.Input(id="lotedit-code", maxLength=32),
                        "lotedit-code",
                        "Optional short code, unique (e.g. N1).",
                        md=3,
                    ),
                    _field(
                        "Lot Group",
                        dbc.Select(id="lotedit-group", options=[]),
                        "lotedit-group",
                        "The pin this lot counts under on the real-time maps; none keeps it off the maps.",
                        md=3,
                    ),
                    _field(
                        "Address", dbc.Input(id="lotedit-address", maxLength=200), "lotedit-address", md=6
                    ),
                    _field(
                        "Capacity (spaces)",
                        dbc.Input(id="lotedit-capacity", inputMode="numeric"),
                        "lotedit-capacity",
                        md=3,
                    ),
                    _field(
                        "Permits allowed",
                        dbc.Input(id="lotedit-allowed", inputMode="numeric", placeholder="same as capacity"),
                        "lotedit-allowed",
                        "Blank = same as capacity. May be more than capacity on purpose, to oversell a "
                        "lot that is never physically full.",
                        md=3,
                    ),
                    _field(
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
                    dbc.Col(
                        html.Fieldset(
                            [
                                html.Legend("This lot sells", className="form-label fs-6"),
                                dbc.Checklist(id="lotedit-sells", options=SELLS_OPTIONS, value=[]),
                            ]
                        ),
                        xs=12,
                        md=6,
                        className="mb-3",
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


@callback(
    Output("lotedit-title", "children"),
    Output("lotedit-missing", "children"),
    Output("lotedit-group", "options"),
    *(Output(f"lotedit-{name}", "value") for name in GENERAL_FIELDS),
    Output("lotedit-latitude", "value"),
    Output("lotedit-longitude", "value"),
    Input("lotedit-id", "data"),
    Input("lotedit-version", "data"),
    min_role=Role.ADMIN,
)
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


@callback(
    Output("lotedit-general-status", "children"),
    Output("lotedit-version", "data"),
    Output("lotedit-url", "href"),
    Input("lotedit-save", "n_clicks"),
    State("lotedit-id", "data"),
    *(State(f"lotedit-{name}", "value") for name in GENERAL_FIELDS),
    State("lotedit-version", "data"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
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


# --- Permits & Prices -----------------------------------------------------------------------


def _products_tab() -> Any:
    return html.Div(
        [
            dbc.Alert(id="lotedit-product-flash", is_open=False, dismissable=True, duration=8000),
            dcc.Store(id="lotedit-product-version", data=0),
            dcc.Store(id="lotedit-product-editing"),
            html.Div(id="lotedit-products", className="mb-3"),
            dbc.Card(
                [
                    dbc.CardHeader("Add a permit product", id="lotedit-product-heading"),
                    dbc.CardBody(_product_form()),
                ]
            ),
        ],
        className="pt-3",
    )


def _product_form() -> Any:
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col(
                        html.Fieldset(
                            [
                                html.Legend("Kind", className="form-label fs-6"),
                                dbc.RadioItems(
                                    id="lotedit-product-kind",
                                    options=KIND_OPTIONS,
                                    value=PermitKind.STANDARD.value,
                                ),
                            ]
                        ),
                        xs=12,
                        md=4,
                        className="mb-3",
                    ),
                    _field(
                        "Name",
                        dbc.Input(id="lotedit-product-name", maxLength=120),
                        "lotedit-product-name",
                        "e.g. Fall 2026 Term, Hourly, Event day",
                        md=4,
                    ),
                    _field(
                        "Price",
                        dbc.InputGroup(
                            [
                                dbc.InputGroupText("$"),
                                dbc.Input(
                                    id="lotedit-product-price", inputMode="decimal", placeholder="0.00"
                                ),
                            ]
                        ),
                        "lotedit-product-price",
                        "In dollars, at most two decimals.",
                        md=4,
                    ),
                ],
                className="g-2",
            ),
            dbc.Row(
                [
                    _field(
                        "Term start",
                        dcc.DatePickerSingle(
                            id="lotedit-product-term-start", display_format="YYYY-MM-DD", clearable=True
                        ),
                        "lotedit-product-term-start",
                        md=4,
                    ),
                    _field(
                        "Term end",
                        dcc.DatePickerSingle(
                            id="lotedit-product-term-end", display_format="YYYY-MM-DD", clearable=True
                        ),
                        "lotedit-product-term-end",
                        md=4,
                    ),
                    dbc.Col(
                        html.Fieldset(
                            [
                                html.Legend("Eligible user types", className="form-label fs-6"),
                                dbc.Checklist(id="lotedit-product-types", options=[], value=[], inline=True),
                            ]
                        ),
                        xs=12,
                        md=4,
                        className="mb-3",
                    ),
                ],
                id="lotedit-product-standard",
                className="g-2",
            ),
            dbc.Row(
                [
                    _field(
                        "Pricing",
                        dbc.Select(
                            id="lotedit-product-pricing", options=PRICING_OPTIONS, value=Pricing.HOURLY.value
                        ),
                        "lotedit-product-pricing",
                        md=4,
                    ),
                    _field(
                        "Maximum duration (minutes)",
                        dbc.Input(id="lotedit-product-minutes", inputMode="numeric"),
                        "lotedit-product-minutes",
                        "e.g. 240 for four hours, 1440 for a day.",
                        md=4,
                    ),
                ],
                id="lotedit-product-temporary",
                className="g-2",
                style={"display": "none"},
            ),
            html.Div(
                [
                    dbc.Button("Add product", id="lotedit-product-save", color="primary", n_clicks=0),
                    dbc.Button("Cancel", id="lotedit-product-cancel", color="link", n_clicks=0),
                ],
                className="d-flex gap-1",
            ),
            html.Div(id="lotedit-product-status", className="mt-3", role="status"),
        ]
    )


@callback(
    Output("lotedit-product-standard", "style"),
    Output("lotedit-product-temporary", "style"),
    Input("lotedit-product-kind", "value"),
    min_role=Role.ADMIN,
)
def product_kind_fields(kind: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """Standard permits are priced per term; temporary ones per hour, day or flat with a limit."""
    hidden, shown = {"display": "none"}, {}
    return (shown, hidden) if kind != PermitKind.TEMPORARY.value else (hidden, shown)


def _product_terms(product: ProductView) -> str:
    if product.kind is PermitKind.STANDARD:
        start = product.term_start.isoformat() if product.term_start else "?"
        end = product.term_end.isoformat() if product.term_end else "?"
        return f"{start} to {end}"
    minutes = product.max_duration_minutes
    if minutes is None:
        return "—"
    return f"up to {minutes // 60} h {minutes % 60:02d} min" if minutes % 60 else f"up to {minutes // 60} h"


def _product_row(product: ProductView) -> Any:
    kind_label = "Standard" if product.kind is PermitKind.STANDARD else "Temporary"
    flags: list[Any] = []
    if not product.kind_sold:
        flags.append(
            dbc.Badge(
                f"lot does not sell {kind_label.lower()} permits",
                color="warning",
                text_color="dark",
                className="ms-1",
                title="Tick it under General > This lot sells, or this product is offered nowhere",
            )
        )
    status = (
        dbc.Badge("on sale", color="success")
        if product.is_active
        else dbc.Badge("inactive", color="secondary")
    )
    return html.Tr(
        [
            html.Td(html.Span(product.name, className="fw-semibold")),
            html.Td([kind_label, *flags]),
            html.Td(product.price_label, className="text-nowrap"),
            html.Td(_product_terms(product)),
            html.Td(", ".join(product.user_type_names) or "—"),
            html.Td(status),
            html.Td(
                html.Div(
                    [
                        dbc.Button(
                            "Edit",
                            id={"type": "lotedit-product-edit", "product": product.id},
                            size="sm",
                            color="outline-primary",
                            n_clicks=0,
                        ),
                        dbc.Button(
                            "Deactivate" if product.is_active else "Activate",
                            id={"type": "lotedit-product-toggle", "product": product.id},
                            size="sm",
                            color="outline-danger" if product.is_active else "outline-success",
                            n_clicks=0,
                        ),
                    ],
                    className="d-flex gap-1",
                )
            ),
        ],
        id=f"lotedit-product-row-{product.id}",
        className=None if product.is_active else "text-muted",
    )


def _products_table(products: list[ProductView]) -> Any:
    if not products:
        return html.P("This lot has no permit products yet.", className="text-muted")
    header = ["Product", "Kind", "Price", "Term / duration", "Eligible", "Status", "Actions"]
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(h, scope="col") for h in header])),
            html.Tbody([_product_row(p) for p in products]),
        ],
        hover=True,
        responsive=True,
        size="sm",
        className="align-middle",
        id="lotedit-products-grid",
    )


@callback(
    Output("lotedit-products", "children"),
    Output("lotedit-product-types", "options"),
    Input("lotedit-id", "data"),
    Input("lotedit-product-version", "data"),
    Input("lotedit-version", "data"),
    min_role=Role.ADMIN,
)
def refresh_products(lot_id: Any, _version: int | None, _general: int | None) -> tuple[Any, Any]:
    """Also re-run after a General save: the sells flags decide which kinds are flagged."""
    key = lot_key(lot_id)
    if key is None:
        return None, []
    try:
        with session_scope() as session:
            products = lots.list_products(session, key)
            types = [{"label": name, "value": tid} for tid, name in lots.user_type_choices(session)]
    except NotFound:
        return None, []
    return _products_table(products), types


PRODUCT_FORM = ("kind", "name", "price", "term-start", "term-end", "types", "pricing", "minutes")
BLANK_PRODUCT = (PermitKind.STANDARD.value, "", "", None, None, [], Pricing.HOURLY.value, "")
# Outputs of ``product_action``, in order.
PRODUCT_OUTPUTS = (
    "flash",
    "color",
    "flash_open",
    "version",
    "editing",
    "heading",
    "button",
    "status",
    "form",
)


def _product_result(**changes: Any) -> tuple[Any, ...]:
    form = changes.pop("form", (no_update,) * len(PRODUCT_FORM))
    return (*(changes.get(name, no_update) for name in PRODUCT_OUTPUTS[:-1]), *form)


def _blank_form(**changes: Any) -> tuple[Any, ...]:
    return _product_result(
        editing=None,
        heading="Add a permit product",
        button="Add product",
        status=None,
        form=BLANK_PRODUCT,
        **changes,
    )


def _edit_form(lot_id: int, product_id: int) -> tuple[Any, ...]:
    with session_scope() as session:
        product = lots.get_product(session, lot_id, product_id)
    form = (
        product.kind.value,
        product.name,
        product.price,
        product.term_start.isoformat() if product.term_start else None,
        product.term_end.isoformat() if product.term_end else None,
        list(product.user_type_ids),
        product.pricing.value if product.kind is PermitKind.TEMPORARY else Pricing.HOURLY.value,
        "" if product.max_duration_minutes is None else str(product.max_duration_minutes),
    )
    return _product_result(
        editing=product.id, heading=f"Edit {product.name}", button="Save product", status=None, form=form
    )


@callback(
    Output("lotedit-product-flash", "children"),
    Output("lotedit-product-flash", "color"),
    Output("lotedit-product-flash", "is_open"),
    Output("lotedit-product-version", "data"),
    Output("lotedit-product-editing", "data"),
    Output("lotedit-product-heading", "children"),
    Output("lotedit-product-save", "children"),
    Output("lotedit-product-status", "children"),
    Output("lotedit-product-kind", "value"),
    Output("lotedit-product-name", "value"),
    Output("lotedit-product-price", "value"),
    Output("lotedit-product-term-start", "date"),
    Output("lotedit-product-term-end", "date"),
    Output("lotedit-product-types", "value"),
    Output("lotedit-product-pricing", "value"),
    Output("lotedit-product-minutes", "value"),
    Input({"type": "lotedit-product-edit", "product": ALL}, "n_clicks"),
    Input({"type": "lotedit-product-toggle", "product": ALL}, "n_clicks"),
    Input("lotedit-product-save", "n_clicks"),
    Input("lotedit-product-cancel", "n_clicks"),
    State("lotedit-id", "data"),
    State("lotedit-product-editing", "data"),
    State("lotedit-product-kind", "value"),
    State("lotedit-product-name", "value"),
    State("lotedit-product-price", "value"),
    State("lotedit-product-term-start", "date"),
    State("lotedit-product-term-end", "date"),
    State("lotedit-product-types", "value"),
    State("lotedit-product-pricing", "value"),
    State("lotedit-product-minutes", "value"),
    State("lotedit-product-version", "data"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def product_action(
    _edits: list[int | None],
    _toggles: list[int | None],
    _save: int | None,
    _cancel: int | None,
    lot_id: Any,
    editing: Any,
    kind: str | None,
    name: str | None,
    price: Any,
    term_start: str | None,
    term_end: str | None,
    types: list[Any] | None,
    pricing: str | None,
    minutes: Any,
    version: int | None,
) -> tuple[Any, ...]:
    """Edit fills the form, Save adds or updates, the toggle (de)activates, Cancel clears. A table
    re-rendered after a save reports its buttons with ``n_clicks`` 0, which is no click."""
    trigger = dash.ctx.triggered_id
    clicked = dash.ctx.triggered[0]["value"] if dash.ctx.triggered else None
    key = lot_key(lot_id)
    if not clicked or key is None:
        return _product_result()
    bumped = (version or 0) + 1
    try:
        if isinstance(trigger, dict) and trigger.get("type") == "lotedit-product-edit":
            return _edit_form(key, require_id(trigger["product"], "product"))
        if isinstance(trigger, dict) and trigger.get("type") == "lotedit-product-toggle":
            with session_scope() as session:
                current = lots.get_product(session, key, require_id(trigger["product"], "product"))
                view = lots.set_product_active(
                    session, key, current.id, not current.is_active, current_user_id()
                )
            state = (
                "is on sale again" if view.is_active else "is no longer sold; permits already sold keep it"
            )
            return _product_result(
                flash=f"{view.name} {state}.", color="success", flash_open=True, version=bumped
            )
        if trigger == "lotedit-product-cancel":
            return _blank_form()
        if trigger == "lotedit-product-save":
            fields = ProductFields(
                kind=kind,
                name=name,
                pricing=pricing,
                price=price,
                term_start=term_start,
                term_end=term_end,
                max_duration_minutes=minutes,
                user_type_ids=types or [],
            )
            product_id = editing if isinstance(editing, int) else None
            with session_scope() as session:
                view = lots.save_product(session, key, product_id, fields, current_user_id())
            verb = "saved" if product_id else "added"
            return _blank_form(
                flash=f"{view.name} {verb}: {view.price_label}.",
                color="success",
                flash_open=True,
                version=bumped,
            )
    except ValidationFailed as exc:
        return _product_result(status=validation_alert(exc, LABELS))
    except DomainError as exc:
        return _product_result(flash=str(exc), color="danger", flash_open=True, version=bumped)
    return _product_result()


# --- Zones & Location -----------------------------------------------------------------------


def _zones_tab() -> Any:
    return html.Div(
        [
            dbc.Card(
                [
                    dbc.CardHeader("Location"),
                    dbc.CardBody(
                        [
                            dbc.Row(
                                [
                                    _field(
                                        "Latitude",
                                        dbc.Input(id="lotedit-latitude", inputMode="decimal"),
                                        "lotedit-latitude",
                                        "Decimal degrees, -90 to 90 (e.g. 43.4723). Optional.",
                                        md=4,
                                    ),
                                    _field(
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
            _field(
                "Zone",
                dbc.Select(id="lotedit-zone", options=[], placeholder="Choose a zone"),
                "lotedit-zone",
                md=3,
            ),
            dbc.Col(
                html.Fieldset(
                    [
                        html.Legend("Days", className="form-label fs-6"),
                        dbc.Checklist(
                            id="lotedit-zone-days", options=day_options, value=ALL_DAYS, inline=True
                        ),
                    ]
                ),
                xs=12,
                md=5,
                className="mb-3",
            ),
            _field(
                "Start",
                dbc.Input(id="lotedit-zone-start", type="time", value="00:00"),
                "lotedit-zone-start",
                xs=6,
                md=2,
            ),
            _field(
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


@callback(
    Output("lotedit-schedules", "children"),
    Output("lotedit-zone", "options"),
    Input("lotedit-id", "data"),
    Input("lotedit-zone-version", "data"),
    min_role=Role.ADMIN,
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


@callback(
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
)
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


@callback(
    Output("lotedit-location-status", "children"),
    Input("lotedit-location-save", "n_clicks"),
    State("lotedit-id", "data"),
    State("lotedit-latitude", "value"),
    State("lotedit-longitude", "value"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
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
