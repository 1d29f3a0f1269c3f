"""API Keys: issue and revoke the keys partners (pay stations, HotSpot, OC-TOMA clients) use.

A new key is shown once, in a read-only field with a copy button, and never again: only its hash
is stored (``dashboard.services.api_keys``). The list shows what identifies a key without
revealing it: its prefix, scopes, sources, who created it, and when it was last used. Revoking asks
first, because every system using the key is refused from the next request on.

A key acts for its sources (pay stations, HotSpot, other partners): it records, sees and changes
only permits of those sources. A key made before sources existed has none and is refused writes:
its Sources button binds it without issuing a new key (the partner's configuration stays as it is).

Admins only; the layout is empty scaffolding; keys and the list arrive through ``Role.ADMIN``
callbacks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.feedback import validation_alert
from dashboard.inputs import require_id
from dashboard.services import api_keys
from dashboard.services.api_keys import ApiKeyView
from dashboard.services.errors import DomainError, ValidationFailed
from dashboard.web import core, current_user_id, session_scope
from models import Role, utcnow

register_page(__name__, path="/admin/api-keys", title="API Keys", min_role=Role.ADMIN)

LABELS = {"name": "Name", "scopes": "Scopes", "sources": "Sources"}
SCOPE_OPTIONS = [{"label": f"{scope}: {text}", "value": scope} for scope, text in api_keys.SCOPES.items()]
SOURCE_OPTIONS = [{"label": text, "value": source} for source, text in api_keys.SOURCES.items()]
SOURCES_HINT = "Whose permits the key records, sees and changes. Required to record permits."
REFRESH_MS = 60_000  # "last used" moves at most once a minute
HIDDEN = {"display": "none"}


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("API Keys", className="h3"),
            html.P(
                [
                    "Keys let other systems record permits and check plates: pay stations and HotSpot "
                    "(OC-TOMA push API, key sent as ",
                    html.Code("apiToken"),
                    ") and partners of the permit API (",
                    html.Code("Authorization: Bearer <key>"),
                    "; see ",
                    html.A("the API description", href="/api/v1/openapi.json"),
                    ").",
                ],
                className="text-muted",
            ),
            dcc.Interval(id="api-keys-refresh", interval=REFRESH_MS),
            dcc.Store(id="api-keys-created", data=0),
            dcc.Store(id="api-keys-revoked", data=0),
            dcc.Store(id="api-keys-pending"),
            dcc.Store(id="api-keys-sources-key"),
            dcc.Store(id="api-keys-sources-saved", data=0),
            dbc.Card([dbc.CardHeader("New key"), dbc.CardBody(_form())], className="mb-3"),
            _issued(),
            html.Div(id="api-keys-flash", role="status"),
            html.Div(id="api-keys-sources-flash", role="status"),
            html.Div(id="api-keys-table"),
            _confirm(),
            _sources_dialog(),
        ]
    )


def _form() -> Any:
    return [
        dbc.Row(
            [
                dbc.Col(
                    [
                        dbc.Label("Name", html_for="api-keys-name"),
                        dbc.Input(
                            id="api-keys-name",
                            maxLength=api_keys.NAME_MAX,
                            placeholder="e.g. Cale pay stations, HotSpot",
                        ),
                        dbc.FormText("Who uses the key, so you know what stops working if you revoke it."),
                    ],
                    xs=12,
                    md=5,
                ),
                dbc.Col(
                    [
                        html.Fieldset(
                            [
                                html.Legend("Scopes", className="form-label fs-6 mb-1"),
                                dbc.Checklist(id="api-keys-scopes", options=SCOPE_OPTIONS, value=[]),
                            ]
                        ),
                        html.Fieldset(
                            [
                                html.Legend("Sources", className="form-label fs-6 mb-1 mt-2"),
                                dbc.Checklist(id="api-keys-sources", options=SOURCE_OPTIONS, value=[]),
                                dbc.FormText(SOURCES_HINT),
                            ]
                        ),
                    ],
                    xs=12,
                    md=7,
                ),
            ],
            className="g-3",
        ),
        dbc.Button("Create key", id="api-keys-create", color="primary", n_clicks=0, className="mt-3"),
        html.Div(id="api-keys-form-error", className="mt-3"),
    ]


def _issued() -> Any:
    """Where a new key appears once; emptied by Done (and gone on leaving the page)."""
    return dbc.Alert(
        [
            html.H2("Copy the new key now", className="h5"),
            html.P(
                [
                    html.Strong("You will not see it again: "),
                    "ParkOps keeps only a fingerprint of it. If it is lost, revoke it and create a new one.",
                ]
            ),
            dbc.Label("New key", html_for="api-keys-issued-key", className="visually-hidden"),
            dbc.InputGroup(
                [
                    dbc.Input(id="api-keys-issued-key", readonly=True, value="", className="font-monospace"),
                    dbc.InputGroupText(
                        dcc.Clipboard(target_id="api-keys-issued-key", title="Copy the key", className="px-1")
                    ),
                ]
            ),
            dbc.Button("Done", id="api-keys-issued-done", color="success", n_clicks=0, className="mt-3"),
        ],
        id="api-keys-issued",
        color="warning",
        style=HIDDEN,
        className="mb-3",
    )


def _confirm() -> Any:
    return dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle("Revoke this API key?")),
            dbc.ModalBody(html.P(id="api-keys-confirm-text")),
            dbc.ModalFooter(
                [
                    dbc.Button("Cancel", id="api-keys-confirm-cancel", color="secondary", n_clicks=0),
                    dbc.Button("Revoke", id="api-keys-confirm-revoke", color="danger", n_clicks=0),
                ]
            ),
        ],
        id="api-keys-confirm",
        is_open=False,
    )


def _sources_dialog() -> Any:
    return dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle(id="api-keys-sources-title")),
            dbc.ModalBody(
                html.Fieldset(
                    [
                        html.Legend("Sources", className="form-label fs-6 mb-1"),
                        dbc.Checklist(id="api-keys-sources-edit", options=SOURCE_OPTIONS, value=[]),
                        dbc.FormText(SOURCES_HINT),
                        html.Div(id="api-keys-sources-error", className="mt-2"),
                    ]
                )
            ),
            dbc.ModalFooter(
                [
                    dbc.Button("Cancel", id="api-keys-sources-cancel", color="secondary", n_clicks=0),
                    dbc.Button("Save", id="api-keys-sources-save", color="primary", n_clicks=0),
                ]
            ),
        ],
        id="api-keys-sources-dialog",
        is_open=False,
    )


def _sources(key: ApiKeyView) -> Any:
    if key.sources:
        return [
            dbc.Badge(api_keys.SOURCES[s], color="light", text_color="dark", className="me-1")
            for s in key.sources
        ]
    if api_keys.WRITE in key.scopes:
        return dbc.Badge("none: records nothing", color="warning", text_color="dark")
    return html.Span("none", className="text-muted")


def _local(moment: datetime | None, empty: str = "never") -> str:
    return moment.astimezone(core().settings.tz).strftime("%Y-%m-%d %H:%M") if moment else empty


def _row(key: ApiKeyView) -> html.Tr:
    status: Any = (
        dbc.Badge("active", color="success")
        if key.active
        else html.Span([dbc.Badge("revoked", color="secondary"), " ", _local(key.revoked_at)])
    )
    action: Any = (
        html.Div(
            [
                dbc.Button(
                    "Sources",
                    id={"type": "api-keys-edit-sources", "key": key.id},
                    size="sm",
                    color="outline-primary",
                    n_clicks=0,
                ),
                dbc.Button(
                    "Revoke",
                    id={"type": "api-keys-revoke", "key": key.id},
                    size="sm",
                    color="outline-danger",
                    n_clicks=0,
                ),
            ],
            className="d-flex gap-1",
        )
        if key.active
        else None
    )
    return html.Tr(
        [
            html.Td(key.name, className="fw-semibold"),
            html.Td(html.Code(key.prefix + "…")),
            html.Td([dbc.Badge(scope, color="info", className="me-1") for scope in key.scopes]),
            html.Td(_sources(key)),
            html.Td(
                [html.Div(_local(key.created_at)), html.Small(key.created_by or "", className="text-muted")]
            ),
            html.Td(_local(key.last_used_at)),
            html.Td(status),
            html.Td(action),
        ],
        id=f"api-keys-row-{key.id}",
        className=None if key.active else "text-muted",
    )


@callback(
    Output("api-keys-table", "children"),
    Input("api-keys-refresh", "n_intervals"),
    Input("api-keys-created", "data"),
    Input("api-keys-revoked", "data"),
    Input("api-keys-sources-saved", "data"),
    min_role=Role.ADMIN,
)
def refresh(_tick: int | None, _created: int | None, _revoked: int | None, _saved: int | None = None) -> Any:
    with session_scope() as session:
        keys = api_keys.list_keys(session)
    if not keys:
        return html.P("No API keys yet.", className="text-muted")
    header = ["Name", "Key", "Scopes", "Sources", "Created", "Last used", "Status", ""]
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(h, scope="col") for h in header])),
            html.Tbody([_row(key) for key in keys]),
        ],
        hover=True,
        responsive=True,
        size="sm",
        className="align-middle",
        id="api-keys-grid",
    )


@callback(
    Output("api-keys-issued-key", "value"),
    Output("api-keys-issued", "style"),
    Output("api-keys-form-error", "children"),
    Output("api-keys-created", "data"),
    Output("api-keys-name", "value"),
    Output("api-keys-scopes", "value"),
    Output("api-keys-sources", "value"),
    Input("api-keys-create", "n_clicks"),
    Input("api-keys-issued-done", "n_clicks"),
    State("api-keys-name", "value"),
    State("api-keys-scopes", "value"),
    State("api-keys-created", "data"),
    State("api-keys-sources", "value"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def create(
    _create: int | None,
    _done: int | None,
    name: str | None,
    scopes: list[str] | None,
    created: int | None,
    sources: list[str] | None = None,
) -> tuple[Any, ...]:
    """Create shows the key in the one-time panel and clears the form; Done empties the panel."""
    if not (dash.ctx.triggered and dash.ctx.triggered[0]["value"]):
        return (no_update,) * 7
    if dash.ctx.triggered_id == "api-keys-issued-done":
        return "", HIDDEN, no_update, no_update, no_update, no_update, no_update
    try:
        with session_scope() as session:
            issued = api_keys.create_key(session, name, scopes or [], current_user_id(), sources or [])
    except ValidationFailed as exc:
        return (no_update, no_update, validation_alert(exc, LABELS)) + (no_update,) * 4
    return issued.key, {}, None, (created or 0) + 1, "", [], []


@callback(
    Output("api-keys-confirm", "is_open"),
    Output("api-keys-confirm-text", "children"),
    Output("api-keys-pending", "data"),
    Output("api-keys-flash", "children"),
    Output("api-keys-revoked", "data"),
    Input({"type": "api-keys-revoke", "key": ALL}, "n_clicks"),
    Input("api-keys-confirm-revoke", "n_clicks"),
    Input("api-keys-confirm-cancel", "n_clicks"),
    State("api-keys-pending", "data"),
    State("api-keys-revoked", "data"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def revoke(
    _rows: list[int | None],
    _confirm: int | None,
    _cancel: int | None,
    pending: int | None,
    revoked: int | None,
) -> tuple[Any, ...]:
    """A row's Revoke asks; the dialog's Revoke does it. A refreshed table reports its buttons
    with ``n_clicks`` 0, which is no click."""
    trigger = dash.ctx.triggered_id
    if not (dash.ctx.triggered and dash.ctx.triggered[0]["value"]):
        return (no_update,) * 5
    if isinstance(trigger, dict) and trigger.get("type") == "api-keys-revoke":
        try:
            with session_scope() as session:
                key = api_keys.get_key(session, require_id(trigger["key"], "API key"))
        except DomainError as exc:
            return no_update, no_update, None, dbc.Alert(str(exc), color="warning"), (revoked or 0) + 1
        text = (
            f"Revoke “{key.name}” ({key.prefix}…)? Every system using it is refused from its next "
            "request on. This cannot be undone: a revoked key stays revoked."
        )
        return True, text, key.id, no_update, no_update
    if trigger == "api-keys-confirm-cancel":
        return False, no_update, None, no_update, no_update
    if trigger == "api-keys-confirm-revoke" and pending is not None:
        try:
            with session_scope() as session:
                key = api_keys.revoke_key(
                    session, require_id(pending, "API key"), current_user_id(), utcnow()
                )
        except DomainError as exc:
            return False, no_update, None, dbc.Alert(str(exc), color="danger"), (revoked or 0) + 1
        flash = dbc.Alert(f"“{key.name}” is revoked.", color="success", dismissable=True)
        return False, no_update, None, flash, (revoked or 0) + 1
    return (no_update,) * 5


@callback(
    Output("api-keys-sources-dialog", "is_open"),
    Output("api-keys-sources-title", "children"),
    Output("api-keys-sources-edit", "value"),
    Output("api-keys-sources-key", "data"),
    Output("api-keys-sources-error", "children"),
    Output("api-keys-sources-flash", "children"),
    Output("api-keys-sources-saved", "data"),
    Input({"type": "api-keys-edit-sources", "key": ALL}, "n_clicks"),
    Input("api-keys-sources-save", "n_clicks"),
    Input("api-keys-sources-cancel", "n_clicks"),
    State("api-keys-sources-key", "data"),
    State("api-keys-sources-edit", "value"),
    State("api-keys-sources-saved", "data"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def edit_sources(
    _rows: list[int | None],
    _save: int | None,
    _cancel: int | None,
    key_id: int | None,
    chosen: list[str] | None,
    saved: int | None,
) -> tuple[Any, ...]:
    """A row's Sources opens the dialog with the key's sources; Save binds the key to the ones
    ticked (the partner keeps its key). A refreshed table's buttons report ``n_clicks`` 0."""
    trigger = dash.ctx.triggered_id
    if not (dash.ctx.triggered and dash.ctx.triggered[0]["value"]):
        return (no_update,) * 7
    if isinstance(trigger, dict) and trigger.get("type") == "api-keys-edit-sources":
        try:
            with session_scope() as session:
                key = api_keys.get_key(session, require_id(trigger["key"], "API key"))
        except DomainError as exc:
            return (no_update,) * 5 + (dbc.Alert(str(exc), color="warning"), (saved or 0) + 1)
        title = f"Sources of “{key.name}” ({key.prefix}…)"
        return True, title, list(key.sources), key.id, None, no_update, no_update
    if trigger == "api-keys-sources-cancel":
        return False, no_update, no_update, None, None, no_update, no_update
    if trigger == "api-keys-sources-save" and key_id is not None:
        try:
            with session_scope() as session:
                key = api_keys.set_sources(
                    session, require_id(key_id, "API key"), chosen or [], current_user_id()
                )
        except ValidationFailed as exc:
            return (no_update,) * 4 + (validation_alert(exc, LABELS), no_update, no_update)
        except DomainError as exc:
            return (
                False,
                no_update,
                no_update,
                None,
                None,
                dbc.Alert(str(exc), color="danger"),
                (saved or 0) + 1,
            )
        names = ", ".join(api_keys.SOURCES[s] for s in key.sources) or "no source"
        flash = dbc.Alert(f"“{key.name}” now acts for: {names}.", color="success", dismissable=True)
        return False, no_update, no_update, None, None, flash, (saved or 0) + 1
    return (no_update,) * 7
