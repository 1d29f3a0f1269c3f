"""Email Templates: admins edit the subject, text and HTML of each email ParkOps sends.

Each template lists its variables (what they hold, an example) and can be reset to the shipped
wording. Preview and save both render the draft with the template's sample context in Jinja's sandbox
(``dashboard.services.email``), so a broken or unsafe template is refused here rather than when a
boot release code has to go out. The preview's HTML is sanitised with nh3 and shown in a sandboxed
iframe: an admin's markup cannot run script in another admin's session.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
import nh3
from dash import Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.feedback import validation_alert
from dashboard.services import email as email_service
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.web import current_user_id, session_scope
from models import Role

register_page(__name__, path="/admin/email-templates", title="Email Templates", min_role=Role.ADMIN)

FIELD_LABELS = {"subject": "Subject", "body_text": "Text body", "body_html": "HTML body"}


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Location(id="templates-url"),
            html.H1("Email Templates", className="h3"),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            dbc.Label("Template", html_for="templates-select"),
                            dcc.Dropdown(id="templates-select", clearable=False, className="mb-3"),
                            dbc.Label("Subject", html_for="templates-subject"),
                            dbc.Input(id="templates-subject", className="mb-3"),
                            dbc.Label("Text body", html_for="templates-text"),
                            dbc.Textarea(id="templates-text", rows=12, className="font-monospace mb-3"),
                            dbc.Label("HTML body (optional)", html_for="templates-html"),
                            dbc.Textarea(id="templates-html", rows=12, className="font-monospace mb-3"),
                            html.Div(id="templates-variables", className="small mb-3"),
                            dbc.Button(
                                "Preview", id="templates-preview-btn", color="secondary", className="me-2"
                            ),
                            dbc.Button("Save", id="templates-save-btn", color="primary", className="me-2"),
                            dcc.ConfirmDialogProvider(
                                dbc.Button("Reset to default", color="outline-danger"),
                                id="templates-reset",
                                message="Put back the wording ParkOps ships? Edits are lost.",
                            ),
                            html.Div(id="templates-status", className="mt-3"),
                        ],
                        lg=6,
                    ),
                    dbc.Col(html.Div(id="templates-preview"), lg=6),
                ]
            ),
        ]
    )


@callback(
    Output("templates-select", "options"),
    Output("templates-select", "value"),
    Input("templates-url", "pathname"),
    min_role=Role.ADMIN,
)
def load_options(_path: str | None) -> tuple[list[dict[str, str]], str | None]:
    with session_scope() as session:
        templates = email_service.list_templates(session)
    options = [{"label": t.name, "value": t.key} for t in templates]
    return options, options[0]["value"] if options else None


@callback(
    Output("templates-subject", "value"),
    Output("templates-text", "value"),
    Output("templates-html", "value"),
    Output("templates-variables", "children"),
    Output("templates-status", "children", allow_duplicate=True),
    Input("templates-select", "value"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def load_template(key: str | None) -> tuple[Any, ...]:
    with session_scope() as session:
        template = email_service.get_template(session, key) if isinstance(key, str) else None
    if template is None:
        return "", "", "", "", dbc.Alert("Choose a template.", color="secondary")
    return template.subject, template.body_text, template.body_html, _variables(template.key), None


def _variables(key: str) -> Any:
    rows = email_service.documented_variables(key)
    if not rows:
        return html.P("This template has no variables.", className="text-muted")
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th("Variable"), html.Th("Holds"), html.Th("Example")])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(html.Code("{{ " + v.name + " }}"), **{"data-label": "Variable"}),
                            html.Td(v.meaning, **{"data-label": "Holds"}),
                            html.Td(v.example, className="text-break", **{"data-label": "Example"}),
                        ]
                    )
                    for v in rows
                ]
            ),
        ],
        size="sm",
        id="templates-variables-table",
        className="table-stack",  # one block per variable on a phone: no sideways scroll
    )


@callback(
    Output("templates-subject", "value", allow_duplicate=True),
    Output("templates-text", "value", allow_duplicate=True),
    Output("templates-html", "value", allow_duplicate=True),
    Output("templates-status", "children", allow_duplicate=True),
    Input("templates-reset", "submit_n_clicks"),
    State("templates-select", "value"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def reset(submitted: int | None, key: str | None) -> tuple[Any, ...]:
    """Confirmed reset: the shipped wording is saved and shown."""
    if not submitted or not isinstance(key, str):
        return no_update, no_update, no_update, dbc.Alert("Choose a template.", color="secondary")
    try:
        with session_scope() as session:
            template = email_service.reset_template(session, key, current_user_id())
    except NotFound as exc:
        return no_update, no_update, no_update, dbc.Alert(str(exc), color="warning")
    done = dbc.Alert(
        f"“{template.name}” is back to the shipped wording.", color="success", id="templates-reset-done"
    )
    return template.subject, template.body_text, template.body_html, done


def _errors(exc: ValidationFailed) -> Any:
    return validation_alert(exc, FIELD_LABELS, "Not saved: the template has errors.")


@callback(
    Output("templates-preview", "children"),
    Input("templates-preview-btn", "n_clicks"),
    State("templates-select", "value"),
    State("templates-subject", "value"),
    State("templates-text", "value"),
    State("templates-html", "value"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def preview(
    _clicks: int | None, key: str | None, subject: str | None, text: str | None, body_html: str | None
) -> Any:
    if not key:
        return None
    try:
        rendered = email_service.preview_template(key, subject or "", text or "", body_html or "")
    except ValidationFailed as exc:
        return _errors(exc)
    html_part: list[Any] = []
    if rendered.html is not None:
        html_part = [
            html.H2("HTML", className="h6"),
            html.Iframe(
                srcDoc=nh3.clean(rendered.html),
                sandbox="",
                id="templates-preview-html",
                style={"width": "100%", "height": "24rem", "border": "1px solid #dee2e6"},
            ),
        ]
    return dbc.Card(
        [
            dbc.CardHeader(["Preview with sample values: ", html.Strong(rendered.subject)]),
            dbc.CardBody(
                [
                    html.H2("Text", className="h6"),
                    html.Pre(rendered.text, className="border p-2 bg-light"),
                    *html_part,
                ]
            ),
        ]
    )


@callback(
    Output("templates-status", "children"),
    Input("templates-save-btn", "n_clicks"),
    State("templates-select", "value"),
    State("templates-subject", "value"),
    State("templates-text", "value"),
    State("templates-html", "value"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def save(
    _clicks: int | None, key: str | None, subject: str | None, text: str | None, body_html: str | None
) -> Any:
    if not key:
        return dbc.Alert("Choose a template.", color="secondary")
    try:
        with session_scope() as session:
            saved = email_service.update_template(
                session, key, subject or "", text or "", body_html or "", actor_id=current_user_id()
            )
    except ValidationFailed as exc:
        return _errors(exc)
    except NotFound as exc:
        return dbc.Alert(str(exc), color="warning")
    return dbc.Alert(f"Saved “{saved.name}”.", color="success", duration=4000)
