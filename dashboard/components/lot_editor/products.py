"""The lot editor's Permits & Prices tab: the lot's permit products (standard term permits and
temporary ones priced hourly, daily or fixed), added, edited and (de)activated through
``dashboard.services.lots`` by ``Role.ADMIN`` callbacks. Money is typed in dollars and stored in
cents; a kind the lot does not sell (General tab) is flagged beside its products, not hidden."""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback
from dashboard.components.feedback import validation_alert
from dashboard.components.lot_editor.common import LABELS, field, fieldset, lot_key
from dashboard.inputs import require_id
from dashboard.services import lots
from dashboard.services.errors import DomainError, NotFound, ValidationFailed
from dashboard.services.lots import ProductFields, ProductView
from dashboard.web import current_user_id, session_scope
from models import PermitKind, Pricing, Role

PRICING_OPTIONS = [
    {"label": "Hourly (price per hour)", "value": Pricing.HOURLY.value},
    {"label": "Daily (price per day)", "value": Pricing.DAILY.value},
    {"label": "Fixed (one price)", "value": Pricing.FIXED.value},
]
KIND_OPTIONS = [
    {"label": "Standard (term permit)", "value": PermitKind.STANDARD.value},
    {"label": "Temporary (hourly, daily or fixed)", "value": PermitKind.TEMPORARY.value},
]


def tab() -> Any:
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
                    fieldset(
                        "Kind",
                        dbc.RadioItems(
                            id="lotedit-product-kind",
                            options=KIND_OPTIONS,
                            value=PermitKind.STANDARD.value,
                        ),
                        md=4,
                    ),
                    field(
                        "Name",
                        dbc.Input(id="lotedit-product-name", maxLength=120),
                        "lotedit-product-name",
                        "e.g. Fall 2026 Term, Hourly, Event day",
                        md=4,
                    ),
                    field(
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
                    field(
                        "Term start",
                        dcc.DatePickerSingle(
                            id="lotedit-product-term-start", display_format="YYYY-MM-DD", clearable=True
                        ),
                        "lotedit-product-term-start",
                        md=4,
                    ),
                    field(
                        "Term end",
                        dcc.DatePickerSingle(
                            id="lotedit-product-term-end", display_format="YYYY-MM-DD", clearable=True
                        ),
                        "lotedit-product-term-end",
                        md=4,
                    ),
                    fieldset(
                        "Eligible user types",
                        dbc.Checklist(id="lotedit-product-types", options=[], value=[], inline=True),
                        md=4,
                    ),
                ],
                id="lotedit-product-standard",
                className="g-2",
            ),
            dbc.Row(
                [
                    field(
                        "Pricing",
                        dbc.Select(
                            id="lotedit-product-pricing", options=PRICING_OPTIONS, value=Pricing.HOURLY.value
                        ),
                        "lotedit-product-pricing",
                        md=4,
                    ),
                    field(
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


def product_kind_fields(kind: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """Standard permits are priced per term; temporary ones per hour, day or flat with a limit."""
    hidden: dict[str, str] = {"display": "none"}
    shown: dict[str, str] = {}
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


BLANK_PRODUCT: tuple[Any, ...] = (PermitKind.STANDARD.value, "", "", None, None, [], Pricing.HOURLY.value, "")


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


def register_callbacks() -> None:
    """Register this tab's callbacks (the page calls it once, as Dash imports the page)."""
    callback(
        Output("lotedit-product-standard", "style"),
        Output("lotedit-product-temporary", "style"),
        Input("lotedit-product-kind", "value"),
        min_role=Role.ADMIN,
    )(product_kind_fields)
    callback(
        Output("lotedit-products", "children"),
        Output("lotedit-product-types", "options"),
        Input("lotedit-id", "data"),
        Input("lotedit-product-version", "data"),
        Input("lotedit-version", "data"),
        min_role=Role.ADMIN,
    )(refresh_products)
    callback(
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
    )(product_action)
