"""Editing Pages (admin): the public pages at ``/p/<slug>``, with their shortcodes.

Pick a page (or "New page"), edit slug, title, format, published flag and body, then save or
delete. The layout holds no data: the list and the form are filled by ``Role.ADMIN`` callbacks.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.feedback import validation_alert
from dashboard.inputs import as_id, require_id
from dashboard.services import content
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.web import current_user_id, session_scope
from models import Role

register_page(__name__, path="/admin/pages", title="Editing Pages", min_role=Role.ADMIN)

NEW = "new"
FIELD_LABELS = {"slug": "Address", "title": "Title", "body_format": "Format"}
SHORTCODE_HELP = (
    'Shortcodes: [real-time-map], [real-time-legend], [parking_logix only="North Garage, South" '
    'show="all|open|closed" filter="garage" name="Heading"].'
)


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Location(id="pages-url"),
            dcc.Store(id="pages-changed"),
            html.H1("Editing Pages", className="h3"),
            dbc.Row(
                [
                    dbc.Col(html.Div(id="pages-list"), lg=4),
                    dbc.Col(
                        [
                            dbc.Label("Page", html_for="pages-select"),
                            dcc.Dropdown(id="pages-select", clearable=False, className="mb-3"),
                            dbc.Label("Address (/p/…)", html_for="pages-slug"),
                            dbc.Input(id="pages-slug", className="mb-3"),
                            dbc.Label("Title", html_for="pages-title"),
                            dbc.Input(id="pages-title", className="mb-3"),
                            dbc.Label("Format", html_for="pages-format"),
                            dbc.Select(
                                id="pages-format",
                                options=[
                                    {"label": "Markdown", "value": "markdown"},
                                    {"label": "HTML", "value": "html"},
                                ],
                                className="mb-3",
                            ),
                            dbc.Checkbox(id="pages-published", label="Published", className="mb-3"),
                            dbc.Label("Body", html_for="pages-body"),
                            dbc.Textarea(id="pages-body", rows=14, className="font-monospace mb-2"),
                            html.Small(SHORTCODE_HELP, className="text-muted d-block mb-3"),
                            dbc.Button("Save", id="pages-save-btn", color="primary", className="me-2"),
                            dbc.Button("Delete", id="pages-delete-btn", color="danger", outline=True),
                            html.Div(id="pages-status", className="mt-3"),
                        ],
                        lg=8,
                    ),
                ]
            ),
        ]
    )


@callback(
    Output("pages-select", "options"),
    Output("pages-list", "children"),
    Output("pages-select", "value"),
    Input("pages-url", "pathname"),
    Input("pages-changed", "data"),
    min_role=Role.ADMIN,
)
def load_list(_path: str | None, changed: Any) -> tuple[list[dict[str, Any]], Any, Any]:
    """The pages and the one to show. The choice travels with the new options, so a page saved
    for the first time stays in the form (a value its dropdown's options lack yet is dropped)."""
    with session_scope() as session:
        pages = content.list_pages(session)
    options = [{"label": "New page", "value": NEW}] + [
        {"label": f"{p.title} (/p/{p.slug})", "value": p.id} for p in pages
    ]
    known = {p.id for p in pages}
    chosen = changed.get("select") if isinstance(changed, dict) else None
    rows = [
        html.Li(
            [
                dcc.Link(p.title, href=f"/p/{p.slug}"),
                html.Span(f" /p/{p.slug} ", className="text-muted small"),
                dbc.Badge(
                    "published" if p.is_published else "draft",
                    color="success" if p.is_published else "secondary",
                ),
            ],
            id=f"pages-row-{p.id}",
            className="mb-1",
        )
        for p in pages
    ]
    listing = (
        html.Ul(rows, className="list-unstyled") if rows else html.P("No pages yet.", className="text-muted")
    )
    return options, listing, chosen if chosen in known else NEW


@callback(
    Output("pages-slug", "value"),
    Output("pages-title", "value"),
    Output("pages-format", "value"),
    Output("pages-published", "value"),
    Output("pages-body", "value"),
    Input("pages-select", "value"),
    min_role=Role.ADMIN,
)
def load_page(page_id: int | str | None) -> tuple[str, str, str, bool, str]:
    wanted = as_id(page_id)
    if wanted is None:
        return "", "", "markdown", False, ""
    try:
        with session_scope() as session:
            page = content.get_page(session, wanted)
    except NotFound:
        return "", "", "markdown", False, ""
    return page.slug, page.title, page.body_format, page.is_published, page.body


def _errors(exc: ValidationFailed) -> Any:
    return validation_alert(exc, FIELD_LABELS, "Not saved:")


@callback(
    Output("pages-status", "children"),
    Output("pages-changed", "data"),
    Input("pages-save-btn", "n_clicks"),
    Input("pages-delete-btn", "n_clicks"),
    State("pages-select", "value"),
    State("pages-slug", "value"),
    State("pages-title", "value"),
    State("pages-format", "value"),
    State("pages-published", "value"),
    State("pages-body", "value"),
    min_role=Role.ADMIN,
    prevent_initial_call=True,
)
def save_or_delete(
    _save: int | None,
    _delete: int | None,
    page_id: int | str | None,
    slug: str | None,
    title: str | None,
    body_format: str | None,
    published: bool | None,
    body: str | None,
) -> tuple[Any, Any]:
    existing = None if page_id in (None, NEW) else require_id(page_id, "page")
    try:
        with session_scope() as session:
            if ctx.triggered_id == "pages-delete-btn":
                if existing is None:
                    return dbc.Alert("Choose a page to delete.", color="secondary"), no_update
                content.delete_page(session, existing, actor_id=current_user_id())
                deleted = {"token": f"deleted-{existing}", "select": NEW}
                return dbc.Alert("Page deleted.", color="success", duration=4000), deleted
            saved = content.save_page(
                session,
                slug=slug or "",
                title=title or "",
                body=body or "",
                body_format=body_format or "markdown",
                is_published=bool(published),
                actor_id=current_user_id(),
                page_id=existing,
            )
    except ValidationFailed as exc:
        return _errors(exc), no_update
    except NotFound as exc:
        return dbc.Alert(str(exc), color="warning"), {"token": "gone", "select": NEW}
    state = "published" if saved.is_published else "saved as a draft"
    message = dbc.Alert(
        [f"“{saved.title}” {state} at ", dcc.Link(f"/p/{saved.slug}", href=f"/p/{saved.slug}"), "."],
        color="success",
    )
    return message, {"token": f"saved-{saved.id}-{saved.updated_at}", "select": saved.id}
