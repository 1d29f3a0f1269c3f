"""One violation (managers, ``/admin/violations/<id>``): its items, photos, boot, appeal, and the two
decisions taken here: voiding it with a reason, and deciding a pending appeal (upheld, cancelled or
reduced, with a note the owner receives by e-mail). Both are audited by their services.

The forms are static scaffolding, shown when they apply; the violation arrives through
``Role.MANAGER`` callbacks. Photos load from ``/violation-photos/<id>``, a staff-only route.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components.checkout import mail_backend
from dashboard.components.enforcement import (
    boot_badge,
    boots_on,
    field_errors,
    money,
    setting,
    site,
    violation_badge,
    when,
)
from dashboard.inputs import as_id
from dashboard.services import appeals, violations
from dashboard.services.errors import DomainError, NotFound, ValidationFailed
from dashboard.services.lots import parse_dollars
from dashboard.services.violations import TicketView
from dashboard.web import current_user_id, session_scope
from models import Role

register_page(
    __name__,
    path_template="/admin/violations/<violation_id>",
    path="/admin/violations/none",
    title="Violation",
    min_role=Role.MANAGER,
)

LABELS = {"reason": "Reason", "outcome": "Decision", "note": "Note", "reduced_to": "New total"}
VOIDABLE = {"unpaid", "overdue", "under_appeal"}


def layout(violation_id: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Store(id="violation-id", data=violation_id),
            dcc.Link("← Violations", href="/admin/violations", className="small"),
            html.Div(id="violation-content", className="mt-2"),
            dbc.Card(
                dbc.CardBody(
                    [
                        html.H2("Decide the appeal", className="h5"),
                        dbc.RadioItems(
                            id="violation-outcome",
                            options=[
                                {"label": "Upheld: the ticket stands", "value": "upheld"},
                                {"label": "Cancelled: the ticket is voided", "value": "cancelled"},
                                {"label": "Reduced: a lower total", "value": "reduced"},
                            ],
                            className="mb-2",
                        ),
                        dbc.Label("New total ($, when reduced)", html_for="violation-reduced-to"),
                        dbc.Input(id="violation-reduced-to", inputMode="decimal", className="mb-2"),
                        dbc.Label("Note to the owner (sent by e-mail)", html_for="violation-note"),
                        dbc.Textarea(id="violation-note", rows=3, maxLength=2000, className="mb-2"),
                        dbc.Button("Decide", id="violation-decide", color="primary", n_clicks=0),
                    ]
                ),
                id="violation-appeal-card",
                className="mb-3",
                style={"maxWidth": "40rem", "display": "none"},
            ),
            dbc.Card(
                dbc.CardBody(
                    [
                        html.H2("Void this violation", className="h5"),
                        dbc.Label("Reason (kept in the audit log)", html_for="violation-void-reason"),
                        dbc.Input(id="violation-void-reason", maxLength=255, className="mb-2"),
                        dbc.Button("Void", id="violation-void", color="danger", outline=True, n_clicks=0),
                    ]
                ),
                id="violation-void-card",
                className="mb-3",
                style={"maxWidth": "40rem", "display": "none"},
            ),
            html.Div(id="violation-status", role="status"),
        ]
    )


def _photos(ids: tuple[int, ...], label: str) -> Any:
    if not ids:
        return None
    return html.Div(
        [
            html.A(
                html.Img(
                    src=f"/violation-photos/{i}",
                    alt=f"{label} {n}",
                    className="img-thumbnail me-2 mb-2",
                    style={"maxWidth": "10rem"},
                ),  # fmt: skip
                href=f"/violation-photos/{i}",
                target="_blank",
            )
            for n, i in enumerate(ids, 1)
        ]
    )


def _content(ticket: TicketView, show_boot: bool) -> Any:
    items = [
        html.Tr(
            [
                html.Td(i.code or i.kind.replace("_", " ")),
                html.Td(i.description),
                html.Td(money(i.amount_cents), className="text-end"),
            ]
        )  # fmt: skip
        for i in ticket.items
    ]
    items.append(
        html.Tr([html.Th("Total", colSpan=2), html.Th(money(ticket.total_cents), className="text-end")])
    )
    facts = [
        ("Plate", ticket.plate),
        ("Lot", ticket.lot_name or "—"),
        ("Officer", ticket.officer_name or "—"),
        ("Issued", when(ticket.issued_at)),
        ("Due", when(ticket.due_at, with_time=False) if ticket.due_at else "—"),
    ]
    if ticket.paid_at:
        facts.append(("Paid", when(ticket.paid_at)))
    if ticket.void_reason:
        facts.append(("Void because", ticket.void_reason))
    if ticket.early_total_cents is not None and ticket.discount_until is not None:
        facts.append(
            ("Early payment", f"{money(ticket.early_total_cents)} until {when(ticket.discount_until)}")
        )
    parts: list[Any] = [
        html.H1([ticket.ticket_number, " ", violation_badge(ticket.shown_status)], className="h3"),
        html.Dl(
            [
                x
                for label, value in facts
                for x in (html.Dt(label, className="col-4"), html.Dd(value, className="col-8"))
            ],
            className="row small",
            style={"maxWidth": "40rem"},
        ),
        dbc.Table([html.Tbody(items)], size="sm", style={"maxWidth": "40rem"}, id="violation-items"),
    ]
    if ticket.notes:
        parts.append(html.P(["Notes: ", ticket.notes], className="small"))
    parts.append(_photos(ticket.photo_ids, "Photo"))
    if show_boot and ticket.boots:
        parts.append(html.H2("Boot", className="h5 mt-3"))
        for b in ticket.boots:
            dates = [f"applied {when(b.applied_at)}"]
            if b.released_at:
                dates.append(f"released {when(b.released_at)}")
            if b.returned_at:
                dates.append(f"returned {when(b.returned_at)}")
            parts.append(
                html.P(
                    [html.Strong(b.boot_name), " ", boot_badge(b.status), " · ", "; ".join(dates)],
                    className="small",
                )
            )
        parts.append(dcc.Link("Boot Device Report", href="/admin/boot-report", className="small"))
    if ticket.appeal is not None:
        a = ticket.appeal
        parts.append(html.H2("Appeal", className="h5 mt-3"))
        lines = [
            html.Div(
                [
                    html.Strong(appeals.OUTCOME_LABELS.get(a.status, a.status)),
                    f" · sent {when(a.submitted_at)} by {a.email}",
                ]
            ),
            html.Blockquote(a.text, className="border-start ps-2 my-2", style={"whiteSpace": "pre-wrap"}),
        ]
        if a.decided_at:
            lines.append(html.Div(f"Decided {when(a.decided_at)}: {a.decision_note}"))
        parts.append(
            html.Div([*lines, _photos(a.photo_ids, "Appeal photo")], className="small", id="violation-appeal")
        )
    parts.append(
        html.Div(
            [
                dcc.Link("Print view", href=f"/officer/tickets/{ticket.ticket_number}", className="me-3"),
                html.A("PDF", href=f"/tickets/{ticket.ticket_number}.pdf"),
            ],
            className="small my-3",
        )
    )
    return html.Div(parts)


def _load(violation_id: int | None) -> tuple[Any, dict[str, str], dict[str, str]]:
    hidden = {"maxWidth": "40rem", "display": "none"}
    shown = {"maxWidth": "40rem"}
    try:
        if violation_id is None:
            raise NotFound("That violation does not exist.")
        with session_scope() as session:
            ticket = violations.get_violation(session, violation_id, datetime.now(UTC))
    except NotFound as exc:
        return html.H1(str(exc), className="h4"), hidden, hidden
    pending = ticket.appeal is not None and ticket.appeal.status == "pending"
    return (
        _content(ticket, boots_on()),
        shown if pending else hidden,
        shown if ticket.shown_status in VOIDABLE else hidden,
    )


@callback(
    Output("violation-content", "children"),
    Output("violation-appeal-card", "style"),
    Output("violation-void-card", "style"),
    Input("violation-id", "data"),
    min_role=Role.MANAGER,
)
def show(raw: str | None) -> tuple[Any, Any, Any]:
    """``raw`` is the address's id, as text: anything but an id ParkOps can hold is "not found"."""
    return _load(as_id(raw))


@callback(
    Output("violation-status", "children"),
    Output("violation-content", "children", allow_duplicate=True),
    Output("violation-appeal-card", "style", allow_duplicate=True),
    Output("violation-void-card", "style", allow_duplicate=True),
    Input("violation-void", "n_clicks"),
    Input("violation-decide", "n_clicks"),
    State("violation-id", "data"),
    State("violation-void-reason", "value"),
    State("violation-outcome", "value"),
    State("violation-note", "value"),
    State("violation-reduced-to", "value"),
    min_role=Role.MANAGER,
    prevent_initial_call=True,
)
def act(
    _void: int | None,
    _decide: int | None,
    raw: str | None,
    reason: str | None,
    outcome: str | None,
    note: str | None,
    reduced_to: str | None,
) -> tuple[Any, ...]:
    trigger = ctx.triggered_id
    violation_id = as_id(raw)
    if trigger not in ("violation-void", "violation-decide") or violation_id is None:
        return (no_update,) * 4
    now = datetime.now(UTC)
    due_days, the_site = int(setting("violation_due_days")), site()
    try:
        with session_scope() as session:
            if trigger == "violation-void":
                violations.void_violation(session, violation_id, reason or "", current_user_id(), now)
                message = "The violation is void."
            else:
                ticket = violations.get_violation(session, violation_id, now)
                if ticket.appeal is None:
                    raise NotFound("This violation has no appeal.")
                cents = None
                if outcome == "reduced":
                    try:
                        cents = parse_dollars(reduced_to)
                    except ValueError as exc:
                        raise ValidationFailed({"reduced_to": str(exc)}) from None
                appeals.decide_appeal(
                    session,
                    ticket.appeal.id,
                    outcome=outcome or "",
                    note=note or "",
                    reduced_to_cents=cents,
                    actor_id=current_user_id(),
                    due_days=due_days,
                    site=the_site,
                    backend=mail_backend(),
                    now=now,
                )
                message = "Decided; the owner was e-mailed."
    except ValidationFailed as exc:
        return field_errors(exc.errors, LABELS), no_update, no_update, no_update
    except DomainError as exc:
        return dbc.Alert(str(exc), color="danger"), no_update, no_update, no_update
    content, appeal_style, void_style = _load(violation_id)
    return dbc.Alert(message, color="success"), content, appeal_style, void_style
