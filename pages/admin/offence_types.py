"""Offence Types (System Configuration > Violations): the fine items officers put on tickets.

One form adds or edits a type (pick it in "Edit"); the table lists them all. Apply Discount is
greyed out and forced off while Apply Boot is on, as the seed says (the boot deposit refund does
not consider discounts); the service refuses the pair too. With Universal Boot off, the Apply
Boot switch and column are hidden. Admins only; the layout is empty scaffolding, the data comes
through ``Role.ADMIN`` callbacks.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.enforcement import boots_on, field_errors, money
from dashboard.inputs import as_id, require_id
from dashboard.services import offences
from dashboard.services.errors import DomainError, ValidationFailed
from dashboard.web import current_user_id, session_scope
from models import Role

register_page(__name__, path="/admin/offence-types", title="Offence Types", min_role=Role.ADMIN)

NEW = "new"
BOOT_NOTE = (
    'Apply Boot belongs on one dedicated offence item (e.g. "Boot applied"), never on a regular one: '
    "its fine is the boot deposit refunded when the boot comes back. Choosing it on a ticket shows the "
    "Apply Boot dropdown."
)
LABELS = {
    "code": "Code",
    "name": "Name",
    "fine": "Fine",
    "apply_discount": "Apply Discount",
    "discount_percent": "Discount (percent)",
    "discount_days": "Discount (days)",
}


def _input(label: str, component: Any, **width: Any) -> Any:
    return dbc.Col([dbc.Label(label, html_for=component.id, className="small mb-1"), component], **width)


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Offence Types", className="h3"),
            dcc.Store(id="offence-init", data=0),
            dbc.Card(
                dbc.CardBody(
                    [
                        dbc.Row(
                            _input(
                                "Edit",
                                dbc.Select(
                                    id="offence-which", value=NEW, options=[{"label": "New", "value": NEW}]
                                ),
                                xs=12,
                                md=6,
                            ),
                            className="mb-2",
                        ),
                        dbc.Row(
                            [
                                _input("Code", dbc.Input(id="offence-code", maxLength=20), xs=6, md=2),
                                _input("Name", dbc.Input(id="offence-name", maxLength=120), xs=12, md=6),
                                _input(
                                    "Fine ($)", dbc.Input(id="offence-fine", inputMode="decimal"), xs=6, md=2
                                ),
                            ],
                            className="g-2",
                        ),
                        html.Div(
                            [
                                dbc.Switch(id="offence-apply-boot", label="Apply Boot", value=False),
                                dbc.FormText(BOOT_NOTE),
                            ],
                            id="offence-boot-row",
                            className="mt-2",
                            hidden=True,
                        ),
                        dbc.Switch(
                            id="offence-apply-discount",
                            label="Apply Discount (early payment)",
                            value=False,
                            className="mt-2",
                        ),
                        dbc.Row(
                            [
                                _input(
                                    "Discount (percent)",
                                    dbc.Input(id="offence-discount-percent", type="number", min=0, max=100),
                                    xs=6,
                                    md=2,
                                ),
                                _input(
                                    "If paid within (days)",
                                    dbc.Input(id="offence-discount-days", type="number", min=0, max=365),
                                    xs=6,
                                    md=2,
                                ),
                            ],
                            className="g-2",
                        ),
                        dbc.Switch(id="offence-active", label="Active", value=True, className="mt-2"),
                        dbc.Button("Save", id="offence-save", color="primary", className="mt-2", n_clicks=0),
                        html.Div(id="offence-status", className="mt-2", role="status"),
                    ]
                ),
                className="mb-3",
                style={"maxWidth": "48rem"},
            ),
            html.Div(id="offence-table"),
        ]
    )


def _table(types: list[offences.OffenceTypeView], show_boot: bool) -> Any:
    if not types:
        return html.P("No offence types yet.", className="text-muted")
    header = ["Code", "Name", "Fine", *(["Apply Boot"] if show_boot else []), "Discount", "Active"]
    rows = [
        html.Tr(
            [
                html.Td(t.code, className="fw-semibold"),
                html.Td(t.name),
                html.Td(money(t.fine_cents), className="text-end"),
                *([html.Td("Yes" if t.apply_boot else "")] if show_boot else []),
                html.Td(f"{t.discount_percent}% within {t.discount_days} days" if t.apply_discount else ""),
                html.Td("Yes" if t.is_active else "No"),
            ],
            id=f"offence-row-{t.id}",
        )
        for t in types
    ]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h, scope="col") for h in header])), html.Tbody(rows)],
        size="sm",
        responsive=True,
        hover=True,
        id="offence-grid",
    )


def _options(types: list[offences.OffenceTypeView]) -> list[dict[str, str]]:
    return [{"label": "New", "value": NEW}] + [{"label": t.label, "value": str(t.id)} for t in types]


@callback(
    Output("offence-table", "children"),
    Output("offence-which", "options"),
    Output("offence-boot-row", "hidden"),
    Input("offence-init", "data"),
    min_role=Role.ADMIN,
)
def load(_init: int | None) -> tuple[Any, Any, bool]:
    show_boot = boots_on()
    with session_scope() as session:
        types = offences.list_offence_types(session)
    return _table(types, show_boot), _options(types), not show_boot


@callback(
    Output("offence-code", "value"),
    Output("offence-name", "value"),
    Output("offence-fine", "value"),
    Output("offence-apply-boot", "value"),
    Output("offence-apply-discount", "value", allow_duplicate=True),
    Output("offence-discount-percent", "value"),
    Output("offence-discount-days", "value"),
    Output("offence-active", "value"),
    Input("offence-which", "value"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def fill(which: str | None) -> tuple[Any, ...]:
    offence_type_id = as_id(which)
    if offence_type_id is None:
        return "", "", "", False, False, None, None, True
    try:
        with session_scope() as session:
            t = offences.get_offence_type(session, offence_type_id)
    except DomainError:
        return (no_update,) * 8
    return (
        t.code,
        t.name,
        f"{t.fine_cents / 100:.2f}",
        t.apply_boot,
        t.apply_discount,
        t.discount_percent or None,
        t.discount_days or None,
        t.is_active,
    )


@callback(
    Output("offence-apply-discount", "disabled"),
    Output("offence-apply-discount", "value"),
    Input("offence-apply-boot", "value"),
    State("offence-apply-discount", "value"),
    min_role=Role.ADMIN,
)
def boot_greys_out_discount(apply_boot: bool | None, discount: bool | None) -> tuple[bool, bool]:
    """The seed: Apply Discount is greyed out (and off) while Apply Boot is on."""
    if apply_boot:
        return True, False
    return False, bool(discount)


@callback(
    Output("offence-status", "children"),
    Output("offence-table", "children", allow_duplicate=True),
    Output("offence-which", "options", allow_duplicate=True),
    Output("offence-which", "value"),
    Input("offence-save", "n_clicks"),
    State("offence-which", "value"),
    State("offence-code", "value"),
    State("offence-name", "value"),
    State("offence-fine", "value"),
    State("offence-apply-boot", "value"),
    State("offence-apply-discount", "value"),
    State("offence-discount-percent", "value"),
    State("offence-discount-days", "value"),
    State("offence-active", "value"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def save(
    _clicks: int | None,
    which: str | None,
    code: str | None,
    name: str | None,
    fine: str | None,
    apply_boot: bool | None,
    apply_discount: bool | None,
    percent: int | float | None,
    days: int | float | None,
    active: bool | None,
) -> tuple[Any, ...]:
    if ctx.triggered_id != "offence-save":
        return (no_update,) * 4
    values = {
        "code": code,
        "name": name,
        "fine": fine,
        "apply_boot": bool(apply_boot),
        "apply_discount": bool(apply_discount),
        "discount_percent": percent,
        "discount_days": days,
        "is_active": bool(active),
    }
    target = None if which in (None, "", NEW) else require_id(which, "offence type")
    try:
        with session_scope() as session:
            saved = offences.save_offence_type(session, target, values, current_user_id())
            types = offences.list_offence_types(session)
    except ValidationFailed as exc:
        return field_errors(exc.errors, LABELS), no_update, no_update, no_update
    except DomainError as exc:
        return dbc.Alert(str(exc), color="danger"), no_update, no_update, no_update
    return (
        dbc.Alert(f"Saved {saved.code}.", color="success", duration=4000),
        _table(types, boots_on()),
        _options(types),
        str(saved.id),
    )
