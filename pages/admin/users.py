"""Users (admins): find accounts by name, e-mail or id number, filter by user type, role and
status, and open one (``/admin/users/<id>``). The layout is empty scaffolding; choices and rows
arrive through ``Role.ADMIN`` callbacks."""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components import paged_search
from dashboard.components.feedback import validation_alert
from dashboard.inputs import require_id
from dashboard.services import user_admin
from dashboard.services.errors import ValidationFailed
from dashboard.web import session_scope
from models import Role

register_page(__name__, path="/admin/users", title="Users", min_role=Role.ADMIN)

FILTERS = ("users-text", "users-type", "users-role", "users-status")
LABELS = {"text": "Search", "role": "Role", "status": "Status", "user_type": "User type"}
ROLES = [r for r in Role if r is not Role.GUEST]
ALL = "all"  # a select whose value is "" shows blank, so "no filter" has a value of its own
STATUS_LABELS = {"active": "Active", "inactive": "Deactivated", "unverified": "E-mail not confirmed"}


def _field(label: str, control: Any, **cols: int) -> Any:
    return dbc.Col([dbc.Label(label, html_for=control.id, className="small mb-1"), control], xs=12, **cols)


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    html.H1("Users", className="h3 me-auto"),
                    dcc.Link(
                        "User types", href="/admin/user-types", className="btn btn-outline-secondary btn-sm"
                    ),
                ],
                className="d-flex align-items-center gap-2 mb-2",
            ),
            dcc.Store(id="users-init", data=0),
            dbc.Card(
                dbc.CardBody(
                    dbc.Row(
                        [
                            _field(
                                "Name, e-mail or id number",
                                dbc.Input(id="users-text", debounce=True, maxLength=user_admin.MAX_SEARCH),
                                sm=12,
                                lg=6,
                            ),
                            _field("User type", dbc.Select(id="users-type", value=ALL), sm=4, lg=2),
                            _field(
                                "Role",
                                dbc.Select(
                                    id="users-role",
                                    value=ALL,
                                    options=[{"label": "All roles", "value": ALL}]
                                    + [{"label": r.label, "value": str(int(r))} for r in ROLES],
                                ),
                                sm=4,
                                lg=2,
                            ),
                            _field(
                                "Status",
                                dbc.Select(
                                    id="users-status",
                                    value=ALL,
                                    options=[{"label": "All", "value": ALL}]
                                    + [{"label": v, "value": k} for k, v in STATUS_LABELS.items()],
                                ),
                                sm=4,
                                lg=2,
                            ),
                        ],
                        className="g-2",
                    )
                ),
                className="mb-3",
            ),
            *paged_search.results("users"),
        ]
    )


@callback(Output("users-type", "options"), Input("users-init", "data"), min_role=Role.ADMIN)
def load_types(_init: int | None) -> Any:
    with session_scope() as session:
        choices = user_admin.type_choices(session)
    return [{"label": "All types", "value": ALL}] + [{"label": name, "value": str(i)} for i, name in choices]


def status_badge(row: user_admin.UserRow) -> Any:
    if not row.is_active:
        return dbc.Badge("Deactivated", color="secondary")
    if not row.email_verified:
        return dbc.Badge("Not confirmed", color="warning", text_color="dark")
    return dbc.Badge("Active", color="success")


def _table(page: user_admin.UserPage) -> Any:
    """On a phone the e-mail goes under the name and the id number and type columns step aside,
    so the table fits 390 px without breaking addresses letter by letter."""
    if not page.rows:
        return html.P("No users match these filters.", className="text-muted")
    wide, wider = "d-none d-sm-table-cell", "d-none d-md-table-cell"
    header = [("Name", ""), ("Id number", wide), ("User type", wider), ("Role", ""), ("Status", "")]
    rows = [
        html.Tr(
            [
                html.Td(
                    [
                        dcc.Link(r.name or r.email, href=f"/admin/users/{r.id}", className="fw-semibold"),
                        *([dbc.Badge("special", color="info", className="ms-1")] if r.is_special else []),
                        *([html.Div(r.email, className="small text-muted text-break")] if r.name else []),
                    ]
                ),
                html.Td(r.external_id or "—", className=wide),
                html.Td(r.user_type or "—", className=wider),
                html.Td(r.role.label),
                html.Td(status_badge(r)),
            ],
            id=f"users-row-{r.id}",
        )
        for r in page.rows
    ]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h, scope="col", className=c) for h, c in header])), html.Tbody(rows)],
        size="sm",
        hover=True,
        responsive=True,
        id="users-grid",
    )


@callback(
    *paged_search.result_outputs("users"),
    *(Input(f, "value") for f in FILTERS),
    Input("users-pages", "active_page"),
    min_role=Role.ADMIN,
)
def refresh(
    text: str | None, user_type: str | None, role: str | None, status: str | None, page: int | None
) -> tuple[Any, ...]:
    if dash.ctx.triggered_id in FILTERS:
        page = 1
    user_type, role, status = (None if v in (None, "", ALL) else v for v in (user_type, role, status))
    try:
        filters = user_admin.UserFilters(
            text=text or None,
            user_type_id=require_id(user_type, "user type") if user_type else None,
            role=int(role) if role and role.isdecimal() and len(role) < 3 else (None if not role else -1),
            status=status or None,
        )
        with session_scope() as session:
            result = user_admin.search(session, filters, page=page or 1)
    except ValidationFailed as exc:
        return validation_alert(exc, LABELS, "Not searched:"), *([no_update] * 4)
    return paged_search.shown(result, user_admin.PAGE_SIZE, _table(result))
