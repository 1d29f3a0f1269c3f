"""Lot Administration: every lot with its group, spaces, permits allowed and sold, what it sells
and its zones; each lot's name opens the lot editor (``pages/admin/lot_edit.py``).

Managers may look (they decide when a lot's allowance should grow, the seed's reason for showing
permits sold next to the physical count); only admins edit, so only admins get the links, the "Add
lot" button and the way to Manage Lot Zones, and the editor itself declares ``Role.ADMIN``.

The layout is empty scaffolding; the rows arrive through the role-checked refresh. The search box
filters on the server, so a campus with hundreds of lots sends only the matching rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html

from dashboard.auth import has_role
from dashboard.callbacks import callback, register_page
from dashboard.services import lots
from dashboard.services.lots import LotRow
from dashboard.web import session_scope
from models import Role

register_page(__name__, path="/admin/lots", title="Lot Administration", min_role=Role.MANAGER)


def editor_href(lot_id: int | str) -> str:
    return f"/admin/lots/{lot_id}"


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.Div(
                [html.H1("Lot Administration", className="h3 mb-0"), html.Div(id="lots-toolbar")],
                className="d-flex flex-wrap align-items-center justify-content-between gap-2",
            ),
            html.P(
                "Every lot that sells permits. Sold is the number of permits valid right now; it is what "
                "the real-time maps compare with the permits allowed.",
                className="text-muted mt-2",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            dbc.Label("Search", html_for="lots-search", className="visually-hidden"),
                            dbc.Input(
                                id="lots-search",
                                type="search",
                                placeholder="Search by lot, code or lot group",
                                debounce=True,
                            ),
                        ],
                        xs=12,
                        md=6,
                        lg=4,
                    ),
                    dbc.Col(
                        dbc.Checkbox(id="lots-show-inactive", label="Show inactive lots", value=True),
                        xs=12,
                        md="auto",
                        className="d-flex align-items-center",
                    ),
                ],
                className="g-2 mb-3",
            ),
            html.Div(id="lots-table"),
        ]
    )


def _toolbar(can_edit: bool) -> Any:
    if not can_edit:
        return None
    return html.Div(
        [
            dbc.Button("Manage Lot Zones", href="/admin/lot-zones", color="outline-secondary", size="sm"),
            dbc.Button("Add lot", href=editor_href("new"), color="primary", size="sm", id="lots-add"),
        ],
        className="d-flex gap-2",
    )


def _sells(row: LotRow) -> list[Any]:
    badges = []
    if row.sells_standard:
        badges.append(dbc.Badge("Standard", color="success", className="me-1"))
    if row.sells_temporary:
        badges.append(dbc.Badge("Temporary", color="warning", text_color="dark", className="me-1"))
    return badges or [html.Span("nothing", className="text-muted")]


def _name(row: LotRow, can_edit: bool) -> Any:
    name: Any = dcc.Link(row.name, href=editor_href(row.id)) if can_edit else row.name
    inactive = [dbc.Badge("inactive", color="secondary", className="ms-2")] if not row.is_active else []
    return html.Div([html.Span(name, className="fw-semibold"), *inactive])


def _allowed(row: LotRow) -> Any:
    if row.permits_allowed is None:
        return html.Span([str(row.allowance), html.Small(" (= capacity)", className="text-muted")])
    if row.oversold:
        return html.Span(
            [str(row.allowance), html.Small(f" (+{row.allowance - row.capacity})", className="text-muted")],
            title="More permits than spaces, on purpose",
        )
    return str(row.allowance)


def _matches(row: LotRow, query: str) -> bool:
    haystack = " ".join([row.name, row.code or "", row.group_name or "", *row.zone_names]).lower()
    return all(word in haystack for word in query.lower().split())


def _table(rows: list[LotRow], can_edit: bool) -> Any:
    header = ["Lot", "Code", "Lot group", "Capacity", "Permits allowed", "Sold", "Sells", "Products", "Zones"]
    body = [
        html.Tr(
            [
                html.Td(_name(row, can_edit)),
                html.Td(row.code or "—"),
                html.Td(row.group_name or html.Span("none", className="text-muted")),
                html.Td(row.capacity, className="text-end"),
                html.Td(_allowed(row), className="text-end"),
                html.Td(row.sold, className="text-end"),
                html.Td(_sells(row)),
                html.Td(row.product_count, className="text-end"),
                html.Td(", ".join(row.zone_names) or "—"),
            ],
            id=f"lots-row-{row.id}",
            className=None if row.is_active else "text-muted",
        )
        for row in rows
    ]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h, scope="col") for h in header])), html.Tbody(body)],
        hover=True,
        responsive=True,
        size="sm",
        className="align-middle",
        id="lots-grid",
    )


@callback(
    Output("lots-table", "children"),
    Output("lots-toolbar", "children"),
    Input("lots-search", "value"),
    Input("lots-show-inactive", "value"),
    min_role=Role.MANAGER,
)
def refresh(query: str | None, show_inactive: bool | None) -> tuple[Any, Any]:
    with session_scope() as session:
        rows = lots.list_lots(session, datetime.now(UTC))
    can_edit = has_role(Role.ADMIN)
    total = len(rows)
    if show_inactive is False:
        rows = [row for row in rows if row.is_active]
    if query and query.strip():
        rows = [row for row in rows if _matches(row, query)]
    if not total:
        empty = "There are no lots yet." + (" Add one with “Add lot”." if can_edit else "")
        return html.P(empty, className="text-muted"), _toolbar(can_edit)
    if not rows:
        return html.P("No lot matches the search.", className="text-muted"), _toolbar(can_edit)
    count = html.P(f"{len(rows)} of {total} lot(s)", className="small text-muted mb-1", id="lots-count")
    return html.Div([count, _table(rows, can_edit)]), _toolbar(can_edit)
