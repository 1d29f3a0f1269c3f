"""User types (admins, ``/admin/user-types``): add or edit a type, the permit products people of
that type may buy, and whether people may register as that type themselves (``/register``).
Audited by ``user_admin.save_user_type``."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.feedback import validation_alert
from dashboard.inputs import InvalidInput, as_id, require_id
from dashboard.services import user_admin
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.web import current_user_id, session_scope
from models import Role

register_page(__name__, path="/admin/user-types", title="User Types", min_role=Role.ADMIN)

LABELS = {"code": "Code", "name": "Name", "products": "Permit products"}
MAX_PRODUCTS = 500


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Link("← Users", href="/admin/users", className="small"),
            html.H1("User Types", className="h3 mt-2"),
            dcc.Store(id="utypes-init", data=0),
            dbc.Row(
                [
                    dbc.Col(html.Div(id="utypes-table"), xs=12, lg=7),
                    dbc.Col(
                        dbc.Card(
                            dbc.CardBody(
                                [
                                    dbc.Label("Edit", html_for="utypes-which"),
                                    dbc.Select(id="utypes-which", value="new", options=[]),
                                    dbc.Label("Code", html_for="utypes-code", className="mt-2"),
                                    dbc.Input(id="utypes-code", maxLength=user_admin.MAX_TYPE_CODE),
                                    dbc.Label("Name", html_for="utypes-name", className="mt-2"),
                                    dbc.Input(id="utypes-name", maxLength=user_admin.MAX_TYPE_NAME),
                                    dbc.Label(
                                        "Permit products they may buy",
                                        html_for="utypes-products",
                                        className="mt-2",
                                    ),
                                    dbc.Checklist(id="utypes-products", options=[], value=[]),
                                    dbc.Switch(
                                        id="utypes-self-register",
                                        label="People may register as this type themselves",
                                        value=False,
                                        className="mt-2",
                                    ),
                                    dbc.Button(
                                        "Save",
                                        id="utypes-save",
                                        color="primary",
                                        n_clicks=0,
                                        className="mt-2",
                                    ),
                                    html.Div(id="utypes-status", role="status", className="mt-2"),
                                ]
                            )
                        ),
                        xs=12,
                        lg=5,
                    ),
                ],
                className="g-3",
            ),
        ]
    )


def _table(rows: list[user_admin.UserTypeRow]) -> Any:
    if not rows:
        return html.P("No user types yet.", className="text-muted")
    header = ["Type", "Code", "Self-registration", "Permit products", "Users"]
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(h, scope="col") for h in header])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(r.name, className="fw-semibold"),
                            html.Td(r.code),
                            html.Td("Yes" if r.self_registration else "No"),
                            html.Td(", ".join(r.product_names) or "—"),
                            html.Td(str(r.users), className="text-end"),
                        ],
                        id=f"utypes-row-{r.id}",
                    )
                    for r in rows
                ]
            ),
        ],
        size="sm",
        responsive=True,
        id="utypes-grid",
    )


@callback(
    Output("utypes-table", "children"),
    Output("utypes-which", "options"),
    Output("utypes-products", "options"),
    Input("utypes-init", "data"),
    min_role=Role.ADMIN,
)
def load(_init: int | None) -> tuple[Any, Any, Any]:
    with session_scope() as session:
        rows = user_admin.user_types(session)
        products = user_admin.product_choices(session)
    which = [{"label": "New user type", "value": "new"}] + [
        {"label": r.name, "value": str(r.id)} for r in rows
    ]
    return _table(rows), which, [{"label": name, "value": i} for i, name in products]


@callback(
    Output("utypes-code", "value"),
    Output("utypes-name", "value"),
    Output("utypes-products", "value"),
    Output("utypes-self-register", "value"),
    Input("utypes-which", "value"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def pick(which: str | None) -> tuple[Any, ...]:
    type_id = as_id(which)
    if type_id is None:
        return "", "", [], False
    with session_scope() as session:
        found = next((r for r in user_admin.user_types(session) if r.id == type_id), None)
    if found is None:
        return "", "", [], False
    return found.code, found.name, list(found.product_ids), found.self_registration


@callback(
    Output("utypes-status", "children"),
    Output("utypes-table", "children", allow_duplicate=True),
    Output("utypes-which", "options", allow_duplicate=True),
    Output("utypes-which", "value"),
    Input("utypes-save", "n_clicks"),
    State("utypes-which", "value"),
    State("utypes-code", "value"),
    State("utypes-name", "value"),
    State("utypes-products", "value"),
    State("utypes-self-register", "value"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def save(
    clicks: int | None,
    which: str | None,
    code: str | None,
    name: str | None,
    products: list[Any] | None,
    self_register: bool | None,
) -> tuple[Any, ...]:
    if ctx.triggered_id != "utypes-save" or not clicks:
        return no_update, no_update, no_update, no_update
    type_id = None if which in (None, "", "new") else require_id(which, "user type")
    if len(products or []) > MAX_PRODUCTS:
        raise InvalidInput("permit products", "too many")
    product_ids = tuple(require_id(p, "permit product") for p in products or [])
    actor = current_user_id()
    assert actor is not None  # the gate let only an admin in
    data = user_admin.UserTypeInput(
        code=code or "", name=name or "", self_registration=bool(self_register), product_ids=product_ids
    )
    try:
        with session_scope() as session:
            saved = user_admin.save_user_type(session, actor_id=actor, type_id=type_id, data=data)
            rows = user_admin.user_types(session)
    except ValidationFailed as exc:
        return validation_alert(exc, LABELS), no_update, no_update, no_update
    except NotFound as exc:
        return dbc.Alert(str(exc), color="danger"), no_update, no_update, no_update
    which_options = [{"label": "New user type", "value": "new"}] + [
        {"label": r.name, "value": str(r.id)} for r in rows
    ]
    return dbc.Alert("Saved.", color="success", id="utypes-saved"), _table(rows), which_options, str(saved)
