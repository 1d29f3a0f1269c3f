"""Edit Dashboard: the user's widgets in order (remove, move up, move down), the widgets they may
still add, and "Reset to default". Every press is saved at once for this user only.

The seed's one rule here: mistall-lot-stats is not offered while the system setting "Enable
Mistall Usage" is off (``dashboard_widgets.available_widgets`` decides). Buttons are plain buttons,
so the keyboard works; after a move the focus follows the moved widget (a small clientside
callback), otherwise a keyboard user would be thrown back to the top of the page on every press.
"""

from __future__ import annotations

import json
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update

from dashboard.auth import current_role
from dashboard.callbacks import callback, register_page
from dashboard.components.feedback import validation_alert
from dashboard.services import dashboard_widgets as widgets
from dashboard.services.dashboard_widgets import Layout, WidgetDef
from dashboard.services.errors import ValidationFailed
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(__name__, path="/admin/dashboard/edit", title="Edit Dashboard", min_role=Role.MANAGER)

ACTION = "dashedit-action"
ACTIONS = ("add", "remove", "up", "down")
LABELS = {"widget_key": "Widget", "direction": "Direction", "order": "Order"}

# Dash writes a dict id into the DOM as JSON with sorted keys and no spaces.
# Runs once the re-rendered list is in the page, so the element it focuses is the new one.
_FOCUS_SCRIPT = """
function(_children, target) {
    const element = target && (document.getElementById(target) || document.getElementById("dashedit-status"));
    if (element) { element.focus(); }
    return window.dash_clientside.no_update;
}
"""


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    html.H1("Edit Dashboard", className="h3 mb-0"),
                    dcc.Link("Back to the Dashboard", href="/admin", className="ms-auto"),
                ],
                className="d-flex flex-wrap align-items-baseline gap-3 mb-2",
            ),
            html.P(
                "Choose the widgets on your dashboard and their order. Changes are saved at once and "
                "apply to your dashboard only.",
                className="text-muted",
            ),
            html.Div(id="dashedit-status", role="status", tabIndex="-1", className="mb-2"),
            dcc.Store(id="dashedit-version", data=0),
            dcc.Store(id="dashedit-focus"),
            dcc.Store(id="dashedit-focused"),
            dbc.Row(
                [
                    dbc.Col(
                        [html.H2("On your dashboard", className="h5"), html.Div(id="dashedit-current")],
                        lg=7,
                        className="mb-3",
                    ),
                    dbc.Col(
                        [html.H2("Available to add", className="h5"), html.Div(id="dashedit-available")],
                        lg=5,
                        className="mb-3",
                    ),
                ]
            ),
            dbc.Button("Reset to default", id="dashedit-reset", color="outline-secondary", n_clicks=0),
        ]
    )


def _button(label: str, action: str, definition: WidgetDef, **kwargs: Any) -> Any:
    return dbc.Button(
        label,
        id={"type": ACTION, "action": action, "key": definition.key},
        size="sm",
        n_clicks=0,
        title=f"{label}: {definition.title}",
        **kwargs,
    )


def _name(definition: WidgetDef) -> Any:
    return html.Div(
        [
            html.Span(definition.title, className="fw-semibold"),
            html.Code(f" {definition.key}", className="small ms-1"),
            html.Div(definition.description, className="small text-muted"),
        ],
        className="me-auto",
    )


def _current(chosen: Layout) -> Any:
    if not chosen.widgets:
        return html.P("No widgets: add one from the list.", className="text-muted")
    last = len(chosen.widgets) - 1
    items = [
        html.Li(
            [
                _name(definition),
                html.Div(
                    [
                        _button("Move up", "up", definition, color="outline-secondary", disabled=index == 0),
                        _button(
                            "Move down", "down", definition, color="outline-secondary", disabled=index == last
                        ),
                        _button("Remove", "remove", definition, color="outline-danger"),
                    ],
                    className="d-flex flex-wrap gap-1",
                ),
            ],
            id=f"dashedit-current-{definition.key}",
            className="list-group-item d-flex flex-wrap align-items-center gap-2",
        )
        for index, definition in enumerate(chosen.widgets)
    ]
    notes = []
    if chosen.is_default:
        notes.append(
            html.P("This is the default set; your first change saves your own.", className="small text-muted")
        )
    if chosen.kept:
        notes.append(
            html.P(
                f"{len(chosen.kept)} saved widget(s) are not available now and are not shown; they "
                "come back when they are available again.",
                className="small text-muted",
            )
        )
    return html.Div(
        [html.Ol(items, className="list-group list-group-numbered mb-2", id="dashedit-current-list"), *notes]
    )


def _addable(chosen: Layout) -> Any:
    if not chosen.addable:
        return html.P("Every widget available to you is on your dashboard.", className="text-muted")
    return html.Ul(
        [
            html.Li(
                [_name(definition), _button("Add", "add", definition, color="primary")],
                id=f"dashedit-available-{definition.key}",
                className="list-group-item d-flex flex-wrap align-items-center gap-2",
            )
            for definition in chosen.addable
        ],
        className="list-group",
        id="dashedit-available-list",
    )


def _user_id() -> int:
    user_id = current_user_id()
    if user_id is None:  # the gate lets no anonymous call through; this keeps the type honest
        raise dash.exceptions.PreventUpdate
    return user_id


@callback(
    Output("dashedit-current", "children"),
    Output("dashedit-available", "children"),
    Input("dashedit-version", "data"),
    min_role=Role.MANAGER,
)
def render(_version: int | None) -> tuple[Any, Any]:
    with session_scope() as session:
        chosen = widgets.user_layout(session, core().secrets, _user_id(), current_role())
    return _current(chosen), _addable(chosen)


def _focus_id(action: str, key: str, chosen: Layout) -> str | None:
    """After a move, the same button on the moved widget (or its other move button at an end)."""
    if action not in ("up", "down") or key not in chosen.keys:
        return None
    index = chosen.keys.index(key)
    at_end = (action == "up" and index == 0) or (action == "down" and index == len(chosen.keys) - 1)
    target = {"down": "up", "up": "down"}[action] if at_end else action
    return json.dumps({"action": target, "key": key, "type": ACTION}, separators=(",", ":"), sort_keys=True)


@callback(
    Output("dashedit-status", "children"),
    Output("dashedit-version", "data"),
    Output("dashedit-focus", "data"),
    Input({"type": ACTION, "action": ALL, "key": ALL}, "n_clicks"),
    Input("dashedit-reset", "n_clicks"),
    State("dashedit-version", "data"),
    min_role=Role.MANAGER,
    prevent_initial_call=True,
)
def act(_clicks: list[int | None], _reset: int | None, version: int | None) -> tuple[Any, Any, Any]:
    """One callback for every button: they all answer with the same status line. A re-rendered
    list reports fresh buttons (``n_clicks`` 0): that is no press, so nothing happens."""
    trigger = dash.ctx.triggered_id
    clicked = dash.ctx.triggered[0]["value"] if dash.ctx.triggered else None
    if not clicked:
        return no_update, no_update, no_update
    if trigger == "dashedit-reset":
        action, key = "reset", ""
    elif isinstance(trigger, dict) and trigger.get("action") in ACTIONS:
        action, key = str(trigger["action"]), str(trigger.get("key"))
    else:
        return no_update, no_update, no_update
    secrets, user_id, role = core().secrets, _user_id(), current_role()
    try:
        with session_scope() as session:
            if action == "reset":
                chosen = widgets.reset_to_default(session, secrets, user_id, role)
            elif action == "add":
                chosen = widgets.add_widget(session, secrets, user_id, role, key)
            elif action == "remove":
                chosen = widgets.remove_widget(session, secrets, user_id, role, key)
            else:
                chosen = widgets.move_widget(session, secrets, user_id, role, key, action)
    except ValidationFailed as exc:
        return validation_alert(exc, LABELS), no_update, None
    title = widgets.widget(key).title if key else ""
    if action == "reset":
        message = "Your dashboard is back to the default set."
    elif action == "add":
        message = f"{title} added to the end of your dashboard."
    elif action == "remove":
        message = f"{title} removed from your dashboard."
    else:  # a moved widget is one the user may have, so it is shown
        message = f"{title} moved to place {chosen.keys.index(key) + 1}."
    status = dbc.Alert(message, color="success", className="py-2 mb-0")
    return status, (version or 0) + 1, _focus_id(action, key, chosen) or "dashedit-status"


dash.clientside_callback(
    _FOCUS_SCRIPT,
    Output("dashedit-focused", "data"),
    Input("dashedit-current", "children"),
    State("dashedit-focus", "data"),
)
