"""System Settings (System Configuration > System Settings): General, Third Party and Email tabs.

The form is built from ``system_settings.DEFINITIONS``, so a new setting appears here without
touching this page. Dash sends every layout to every browser, so the layout holds labels and help
only; ``settings-fill`` puts the values in through an admin-only callback, and secret inputs never
receive a secret: they stay empty, with the mask as placeholder. Typing into one replaces the secret;
leaving it empty keeps it; its "Clear" box removes it.

Component ids by kind (pattern-matching, ``key`` = setting key): ``settings-field`` (text, e-mail,
URL, number, choice inputs), ``settings-flag`` (on/off switches, which have no ``invalid`` prop),
``settings-secret`` (password inputs), ``settings-clear`` and ``settings-feedback``.

The Email tab ends with "Send test email": it sends now, with the *saved* settings, and shows the
server's own answer (the SMTP reply or Mailgun's HTTP status and message), or what is missing.
"""

from __future__ import annotations

import json
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.inputs import InvalidInput
from dashboard.services import email as email_service
from dashboard.services import system_settings
from dashboard.services.errors import ValidationFailed
from dashboard.services.system_settings import Kind, SettingDef
from dashboard.web import core, current_user_id, session_scope
from models import Role
from workers import email_delivery

register_page(__name__, path="/admin/settings", title="System Settings", min_role=Role.ADMIN)

FIELD = "settings-field"
FLAG = "settings-flag"
SECRET = "settings-secret"  # noqa: S105 (a component id type, not a password)
CLEAR = "settings-clear"
FEEDBACK = "settings-feedback"
NOT_SET = "not set"


def _id(kind: str, key: str) -> dict[str, str]:
    return {"type": kind, "key": key}


def _dom_id(component_id: dict[str, str]) -> str:
    """The DOM id Dash gives a pattern-matching id (sorted compact JSON), for ``<label for=...>``."""
    return json.dumps(component_id, sort_keys=True, separators=(",", ":"))


def _input_type(d: SettingDef) -> str:
    return {Kind.EMAIL: "email", Kind.URL: "url", Kind.INT: "number"}.get(d.kind, "text")


def _control(d: SettingDef) -> list[Any]:
    if d.kind is Kind.BOOL:
        return [dbc.Switch(id=_id(FLAG, d.key), label=d.label)]
    if d.secret:
        return [
            dbc.Label(d.label, html_for=_dom_id(_id(SECRET, d.key))),
            dbc.Input(
                id=_id(SECRET, d.key), type="password", autocomplete="new-password", placeholder=NOT_SET
            ),
            dbc.Checkbox(id=_id(CLEAR, d.key), label="Clear (remove the stored value)", class_name="mt-1"),
        ]
    label = dbc.Label(d.label, html_for=_dom_id(_id(FIELD, d.key)))
    if d.kind is Kind.CHOICE:
        options = [{"label": text, "value": value} for value, text in d.choices]
        return [label, dbc.Select(id=_id(FIELD, d.key), options=options)]
    bounds = {"min": d.min_value, "max": d.max_value, "step": 1} if d.kind is Kind.INT else {}
    return [label, dbc.Input(id=_id(FIELD, d.key), type=_input_type(d), **bounds)]


def _field(d: SettingDef) -> html.Div:
    help_text = [dbc.FormText(d.help)] if d.help else []
    # d-block: the feedback shows whenever it has text, whatever the control (switches have no
    # ``invalid`` state to reveal it).
    feedback = dbc.FormFeedback(id=_id(FEEDBACK, d.key), type="invalid", class_name="d-block")
    return html.Div([*_control(d), feedback, *help_text], className="mb-3")


def _tab_body(tab: str) -> list[Any]:
    sections: dict[str, list[SettingDef]] = {}
    for d in system_settings.definitions(tab):
        sections.setdefault(d.section, []).append(d)
    cards = [
        dbc.Card([dbc.CardHeader(section), dbc.CardBody([_field(d) for d in defs])], class_name="mb-3")
        for section, defs in sections.items()
    ]
    if tab == system_settings.EMAIL:
        cards.append(_test_send_card())
    return cards


def _test_send_card() -> dbc.Card:
    return dbc.Card(
        [
            dbc.CardHeader("Send Test Email"),
            dbc.CardBody(
                [
                    dbc.Label("Send a test message to", html_for="settings-test-to"),
                    dbc.InputGroup(
                        [
                            dbc.Input(id="settings-test-to", type="email", placeholder="you@yourdomain.edu"),
                            dbc.Button(
                                "Send test email", id="settings-test-send", color="secondary", n_clicks=0
                            ),
                        ]
                    ),
                    dbc.FormText(
                        "Uses the saved settings: save first. Shows exactly what the server answered."
                    ),
                    html.Div(id="settings-test-result", className="mt-2"),
                ]
            ),
        ],
        class_name="mb-3",
    )


@callback(
    Output("settings-test-result", "children"),
    Input("settings-test-send", "n_clicks"),
    State("settings-test-to", "value"),
    prevent_initial_call=True,
    min_role=Role.ADMIN,
)
def send_test(n_clicks: int | None, to: Any) -> Any:
    """Send a test message now and report the server's answer word for word."""
    if not n_clicks:
        return no_update
    address = to.strip() if isinstance(to, str) else ""
    if not email_service.ADDRESS_RE.match(address):
        return dbc.Alert(
            "Enter one e-mail address to send the test to.", color="warning", id="settings-test-answer"
        )
    result = email_delivery.send_test(core(), address, current_user_id())
    heading = "Sent. The server answered: " if result.ok else "Not sent: "
    return dbc.Alert(
        [html.Strong(heading), html.Code(result.answer)],
        color="success" if result.ok else "danger",
        id="settings-test-answer",
    )


def layout(**_query: str) -> html.Div:
    tabs = system_settings.tabs()
    return html.Div(
        [
            dcc.Store(id="settings-saved", data=0),
            html.H1("System Settings", className="h3 mb-3"),
            dbc.Tabs(
                [
                    dbc.Tab(_tab_body(tab), label=tab, tab_id=f"settings-tab-{i}")
                    for i, tab in enumerate(tabs)
                ],
                id="settings-tabs",
                active_tab="settings-tab-0",
                class_name="mb-3",
            ),
            html.Div(id="settings-status"),
            dbc.Button("Save Settings", id="settings-save", color="primary", n_clicks=0),
        ],
        className="py-2",
    )


def _secret_placeholder(masked: object) -> str:
    if not masked:
        return NOT_SET
    if masked == system_settings.UNREADABLE:
        return str(masked)
    return f"{masked} set"


def _keys(specs: list[dict[str, Any]]) -> list[str]:
    """The setting keys of a pattern's rows, each one a setting this form shows."""
    keys = [spec["id"]["key"] for spec in specs]
    for key in keys:
        try:
            system_settings.definition(key)
        except (KeyError, TypeError):
            raise InvalidInput("setting", "not a setting of this form") from None
    return keys


@callback(
    Output({"type": FIELD, "key": ALL}, "value"),
    Output({"type": FLAG, "key": ALL}, "value"),
    Output({"type": SECRET, "key": ALL}, "placeholder"),
    Output({"type": SECRET, "key": ALL}, "value"),
    Output({"type": CLEAR, "key": ALL}, "value"),
    Input("settings-saved", "data"),
    min_role=Role.ADMIN,
)
def fill(_saved: int | None) -> tuple[list[Any], ...]:
    """Load the form, and reload it after a save (so secret placeholders show the new mask)."""
    with session_scope() as session:
        values = system_settings.form_values(session, core().secrets)
    fields, flags, placeholders, secrets, clears = ctx.outputs_list
    return (
        [values[key] for key in _keys(fields)],
        [values[key] for key in _keys(flags)],
        [_secret_placeholder(values[key]) for key in _keys(placeholders)],
        ["" for _ in secrets],
        [False for _ in clears],
    )


@callback(
    Output("settings-status", "children"),
    Output({"type": FIELD, "key": ALL}, "invalid"),
    Output({"type": SECRET, "key": ALL}, "invalid"),
    Output({"type": FEEDBACK, "key": ALL}, "children"),
    Output("settings-saved", "data"),
    Input("settings-save", "n_clicks"),
    State({"type": FIELD, "key": ALL}, "value"),
    State({"type": FLAG, "key": ALL}, "value"),
    State({"type": SECRET, "key": ALL}, "value"),
    State({"type": CLEAR, "key": ALL}, "value"),
    prevent_initial_call=True,
    min_role=Role.ADMIN,
)
def save(n_clicks: int | None, *_states: list[Any]) -> tuple[Any, ...]:
    """Hand the whole form to ``system_settings.update``; show what changed or every field error."""
    fields, flags, secrets, clears = ctx.states_list
    values = {spec["id"]["key"]: spec.get("value") for spec in [*fields, *flags, *secrets]}
    clear = [spec["id"]["key"] for spec in clears if spec.get("value")]
    errors: dict[str, str] = {}
    try:
        with session_scope() as session:
            changed = system_settings.update(session, core().secrets, values, current_user_id(), clear=clear)
    except ValidationFailed as exc:
        errors = exc.errors
    field_out, secret_out, feedback_out, _saved = ctx.outputs_list[1:]
    return (
        _error_alert(errors) if errors else _saved_alert(changed),
        [key in errors for key in _keys(field_out)],
        [key in errors for key in _keys(secret_out)],
        [errors.get(key, "") for key in _keys(feedback_out)],
        no_update if errors else n_clicks,
    )


def _label(key: str) -> str:
    try:
        d = system_settings.definition(key)
    except KeyError:
        return key
    return f"{d.label} ({d.tab})"


def _saved_alert(changed: list[str]) -> dbc.Alert:
    if not changed:
        return dbc.Alert("Nothing changed.", color="secondary", id="settings-result")
    return dbc.Alert(
        [html.Strong("Settings saved. "), "Changed: ", ", ".join(_label(key) for key in changed), "."],
        color="success",
        id="settings-result",
    )


def _error_alert(errors: dict[str, str]) -> dbc.Alert:
    return dbc.Alert(
        [
            html.Strong("Nothing was saved. Fix these fields:"),
            html.Ul(
                [html.Li(f"{_label(key)}: {message}") for key, message in errors.items()], className="mb-0"
            ),
        ],
        color="danger",
        id="settings-result",
    )
