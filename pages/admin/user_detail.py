"""One user (admins, ``/admin/users/<id>``): change role, user type, the special flag and whether
the account is active (deactivating signs it out everywhere at once), and see its vehicles,
permits, violations and payments. Changes are audited by ``user_admin.update_user``.

The form is static scaffolding; the account arrives through ``Role.ADMIN`` callbacks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.enforcement import money, short_when, violation_badge, when
from dashboard.components.feedback import validation_alert
from dashboard.inputs import as_id, require_id
from dashboard.services import user_admin
from dashboard.services.errors import NotAllowed, NotFound, ValidationFailed
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(
    __name__,
    path_template="/admin/users/<user_id>",
    path="/admin/users/none",
    title="User",
    min_role=Role.ADMIN,
)

LABELS = {"role": "Role", "user_type": "User type"}
ROLES = [r for r in Role if r is not Role.GUEST]
NO_TYPE = "none"  # a select whose value is "" shows blank


def layout(user_id: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Store(id="user-id", data=user_id),
            dcc.Link("← Users", href="/admin/users", className="small"),
            html.Div(id="user-heading", className="mt-2"),
            # In a Div: the form is hidden for a user that does not exist, and a Card has no ``hidden``.
            html.Div(
                dbc.Card(
                    dbc.CardBody(
                        [
                            html.H2("Account", className="h5"),
                            dbc.Row(
                                [
                                    dbc.Col(
                                        [
                                            dbc.Label("Role", html_for="user-role"),
                                            dbc.Select(
                                                id="user-role",
                                                options=[
                                                    {"label": r.label, "value": str(int(r))} for r in ROLES
                                                ],
                                            ),
                                        ],
                                        xs=12,
                                        sm=6,
                                    ),
                                    dbc.Col(
                                        [
                                            dbc.Label("User type", html_for="user-type"),
                                            dbc.Select(id="user-type", options=[]),
                                        ],
                                        xs=12,
                                        sm=6,
                                    ),
                                ],
                                className="g-2 mb-2",
                            ),
                            dbc.Switch(id="user-special", label="Special user", value=False),
                            dbc.Switch(id="user-active", label="Active (may sign in)", value=True),
                            dbc.Button("Save", id="user-save", color="primary", n_clicks=0, className="mt-2"),
                            html.Div(id="user-status", role="status", className="mt-2"),
                        ]
                    ),
                    className="mb-3",
                ),
                id="user-form",
            ),
            html.Div(id="user-owned"),
        ]
    )


def _table(header: list[str], rows: list[list[Any]], empty: str, table_id: str) -> Any:
    if not rows:
        return html.P(empty, className="text-muted small")
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(h, scope="col") for h in header])),
            html.Tbody([html.Tr([html.Td(c) for c in row]) for row in rows]),
        ],
        size="sm",
        responsive=True,
        id=table_id,
    )


def _owned(found: user_admin.UserDetail) -> Any:
    permits = [*found.permits.current, *found.permits.upcoming, *found.permits.past]
    sections = [
        (
            "Vehicles",
            _table(
                ["Plate", "Province", "Vehicle"],
                [[v.plate, v.province or "—", v.description or "—"] for v in found.vehicles],
                "No vehicles.",
                "user-vehicles",
            ),
        ),
        (
            "Permits",
            _table(
                ["Permit", "Product", "Lot", "Valid", "Status"],
                [
                    [
                        p.permit.number,
                        p.permit.product_name or p.permit.kind,
                        p.permit.lot_name or "—",
                        f"{short_when(p.permit.valid_from)} – {short_when(p.permit.valid_to)}",
                        p.permit.status.replace("_", " ").capitalize(),
                    ]
                    for p in permits
                ],
                "No permits.",
                "user-permits",
            ),
        ),
        (
            "Violations",
            _table(
                ["Ticket", "Status", "Plate", "Issued", "Total"],
                [
                    [
                        dcc.Link(v.ticket_number, href=f"/admin/violations/{v.id}"),
                        violation_badge(v.shown_status),
                        v.plate,
                        short_when(v.issued_at),
                        money(v.total_cents),
                    ]
                    for v in found.violations.rows
                ],
                "No violations.",
                "user-violations",
            ),
        ),
        (
            "Payments",
            _table(
                ["When", "Amount", "Status", "Card"],
                [
                    [
                        short_when(p.created_at),
                        money(p.amount_cents),
                        p.status.replace("_", " ").capitalize(),
                        f"•••• {p.card_last4}" if p.card_last4 else "—",
                    ]
                    for p in found.payments
                ],
                "No payments.",
                "user-payments",
            ),
        ),
    ]
    return dbc.Row(
        [
            dbc.Col(dbc.Card(dbc.CardBody([html.H2(t, className="h5"), body])), xs=12, lg=6, className="mb-3")
            for t, body in sections
        ]
    )


def _heading(found: user_admin.UserDetail) -> Any:
    u = found.user
    facts = [
        f"{u.email}",
        f"id number {u.external_id}" if u.external_id else None,
        f"signs in with {'SSO' if found.auth_source == 'saml' else 'a password'}",
        "e-mail not confirmed" if not u.email_verified else None,
        f"mail to this address bounced ({u.email_bounce_reason}): see Email Outbox"
        if u.email_bounce_reason
        else None,
        f"created {when(found.created_at, with_time=False)}",
        f"last login {when(found.last_login_at)}" if found.last_login_at else "never logged in",
    ]
    return html.Div(
        [
            html.H1(u.name or u.email, className="h3 text-break"),
            html.P(" · ".join(f for f in facts if f), className="small text-muted text-break"),
        ]
    )


@callback(
    Output("user-heading", "children"),
    Output("user-type", "options"),
    Output("user-role", "value"),
    Output("user-type", "value"),
    Output("user-special", "value"),
    Output("user-active", "value"),
    Output("user-owned", "children"),
    Output("user-form", "hidden"),
    Input("user-id", "data"),
    min_role=Role.ADMIN,
)
def load(user_id: str | None) -> tuple[Any, ...]:
    found_id = as_id(user_id)
    try:
        if found_id is None:
            raise NotFound("That user does not exist.")
        with session_scope() as session:
            found = user_admin.detail(session, found_id, datetime.now(UTC), core().settings.tz)
            choices = user_admin.type_choices(session)
    except NotFound as exc:
        return (
            dbc.Alert(str(exc), color="warning"),
            [],
            no_update,
            no_update,
            no_update,
            no_update,
            None,
            True,
        )
    options = [{"label": "None", "value": NO_TYPE}] + [
        {"label": name, "value": str(i)} for i, name in choices
    ]
    return (
        _heading(found),
        options,
        str(int(found.user.role)),
        str(found.user_type_id) if found.user_type_id else NO_TYPE,
        found.user.is_special,
        found.user.is_active,
        _owned(found),
        False,
    )


@callback(
    Output("user-status", "children"),
    Output("user-heading", "children", allow_duplicate=True),
    Input("user-save", "n_clicks"),
    State("user-id", "data"),
    State("user-role", "value"),
    State("user-type", "value"),
    State("user-special", "value"),
    State("user-active", "value"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
    running=[(Output("user-save", "disabled"), True, False)],
)
def save(
    clicks: int | None,
    user_id: str | None,
    role: str | None,
    user_type: str | None,
    special: bool | None,
    active: bool | None,
) -> tuple[Any, Any]:
    if ctx.triggered_id != "user-save" or not clicks:
        return no_update, no_update
    target = require_id(user_id, "user")
    role_value = int(role) if role and role.isdecimal() and len(role) < 3 else -1
    change = user_admin.UserChange(
        role=role_value,
        user_type_id=require_id(user_type, "user type") if user_type not in (None, "", NO_TYPE) else None,
        is_special=bool(special),
        is_active=bool(active),
    )
    actor = current_user_id()
    assert actor is not None  # the gate let only an admin in
    try:
        with session_scope() as session:
            changed = user_admin.update_user(session, actor_id=actor, user_id=target, change=change)
            found = user_admin.detail(session, target, datetime.now(UTC), core().settings.tz)
    except ValidationFailed as exc:
        return validation_alert(exc, LABELS), no_update
    except (NotAllowed, NotFound) as exc:
        return dbc.Alert(str(exc), color="danger", id="user-refused"), no_update
    if not changed:
        return dbc.Alert("Nothing to save: no change.", color="secondary"), no_update
    said = "Saved" + (
        " — the account is deactivated and signed out everywhere."
        if "is_active" in changed and not change.is_active
        else "."
    )
    return dbc.Alert(said, color="success", id="user-saved"), _heading(found)
