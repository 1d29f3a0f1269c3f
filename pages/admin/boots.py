"""Setup Boot Devices (admins): the inventory of physical boots, each with its name and release code.

Add a boot or pick one in "Edit" to rename it, change its code or retire it. The release code is
stored encrypted and never shown again: the list shows a mask, the form's code field stays empty
(leave it empty to keep the code; type one to replace it). Each boot has a printable QR label.
With Universal Boot off, the page says so and shows nothing else.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.enforcement import boot_badge, boots_off_notice, boots_on, field_errors
from dashboard.inputs import as_id, require_id
from dashboard.services import boots
from dashboard.services.errors import DomainError, ValidationFailed
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(__name__, path="/admin/boots", title="Setup Boot Devices", min_role=Role.ADMIN)

NEW = "new"
CODE_HELP = (
    "From the boot's own instructions. Stored encrypted and never shown again; when editing, leave empty "
    "to keep the current code. Changing it here only changes what ParkOps sends."
)
LABELS = {"name": "Name", "release_code": "Boot Release Code", "is_active": "In service"}


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Store(id="boots-init", data=0),
            html.Div(id="boots-off-wrap"),
            html.Div(
                [
                    html.H1("Setup Boot Devices", className="h3"),
                    dbc.Card(
                        dbc.CardBody(
                            [
                                dbc.Label("Edit", html_for="boots-which"),
                                dbc.Select(
                                    id="boots-which",
                                    value=NEW,
                                    options=[{"label": "Add a boot", "value": NEW}],
                                    className="mb-2",
                                ),  # fmt: skip
                                dbc.Label("Name", html_for="boots-name"),
                                dbc.Input(
                                    id="boots-name", maxLength=80, placeholder="Red Boot 01", className="mb-2"
                                ),
                                dbc.Label("Boot Release Code", html_for="boots-code"),
                                dbc.Input(
                                    id="boots-code",
                                    type="password",
                                    autocomplete="new-password",
                                    maxLength=64,
                                    className="mb-1",
                                ),  # fmt: skip
                                dbc.FormText(CODE_HELP),
                                dbc.Switch(
                                    id="boots-active", label="In service", value=True, className="mt-2"
                                ),
                                dbc.Button(
                                    "Save", id="boots-save", color="primary", n_clicks=0, className="mt-2"
                                ),
                                html.Div(id="boots-status", className="mt-2", role="status"),
                            ]
                        ),
                        className="mb-3",
                        style={"maxWidth": "32rem"},
                    ),
                    html.Div(id="boots-table"),
                ],
                id="boots-main",
                hidden=True,
            ),
        ]
    )


def _table(rows: list[boots.BootView]) -> Any:
    if not rows:
        return html.P("No boots yet: add the first one above.", className="text-muted")
    header = ["Name", "Release code", "Status", "On ticket", "In service", "Label"]
    body = [
        html.Tr(
            [
                html.Td(b.name, className="fw-semibold"),
                html.Td(b.code_mask, className="font-monospace"),
                html.Td(boot_badge(b.status)),
                html.Td(
                    dcc.Link(b.ticket_number, href=f"/admin/violations/{b.violation_id}")
                    if b.ticket_number
                    else "—"
                ),
                html.Td("Yes" if b.is_active else "Retired"),
                html.Td(dcc.Link("QR label", href=f"/admin/boot-label/{b.id}")),
            ],
            id=f"boots-row-{b.id}",
        )
        for b in rows
    ]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h, scope="col") for h in header])), html.Tbody(body)],
        size="sm",
        responsive=True,
        id="boots-grid",
    )


def _options(rows: list[boots.BootView]) -> list[dict[str, str]]:
    return [{"label": "Add a boot", "value": NEW}] + [{"label": b.name, "value": str(b.id)} for b in rows]


@callback(
    Output("boots-off-wrap", "children"),
    Output("boots-main", "hidden"),
    Output("boots-table", "children"),
    Output("boots-which", "options"),
    Input("boots-init", "data"),
    min_role=Role.ADMIN,
)
def load(_init: int | None) -> tuple[Any, ...]:
    if not boots_on():
        return boots_off_notice(), True, None, no_update
    with session_scope() as session:
        rows = boots.list_boots(session, core().secrets)
    return None, False, _table(rows), _options(rows)


@callback(
    Output("boots-name", "value"),
    Output("boots-code", "value"),
    Output("boots-active", "value"),
    Input("boots-which", "value"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def fill(which: str | None) -> tuple[Any, Any, Any]:
    boot_id = as_id(which)
    if boot_id is None:
        return "", "", True
    try:
        with session_scope() as session:
            boot = boots.get_boot(session, core().secrets, boot_id)
    except DomainError:
        return no_update, no_update, no_update
    return boot.name, "", boot.is_active


@callback(
    Output("boots-status", "children"),
    Output("boots-table", "children", allow_duplicate=True),
    Output("boots-which", "options", allow_duplicate=True),
    Output("boots-code", "value", allow_duplicate=True),
    Input("boots-save", "n_clicks"),
    State("boots-which", "value"),
    State("boots-name", "value"),
    State("boots-code", "value"),
    State("boots-active", "value"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def save(
    _clicks: int | None, which: str | None, name: str | None, code: str | None, active: bool | None
) -> tuple[Any, ...]:
    if ctx.triggered_id != "boots-save" or not boots_on():
        return (no_update,) * 4
    target = None if which in (None, "", NEW) else require_id(which, "boot")
    try:
        with session_scope() as session:
            saved = boots.save_boot(
                session, core().secrets, target, name=name or "", release_code=code or "",
                is_active=bool(active), actor_id=current_user_id(),
            )  # fmt: skip
            rows = boots.list_boots(session, core().secrets)
    except ValidationFailed as exc:
        return field_errors(exc.errors, LABELS), no_update, no_update, no_update
    except DomainError as exc:
        return dbc.Alert(str(exc), color="danger"), no_update, no_update, no_update
    return dbc.Alert(f"Saved {saved.name}.", color="success", duration=4000), _table(rows), _options(rows), ""
