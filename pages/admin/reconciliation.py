"""Payment Reconciliation (``/admin/reconciliation``, managers): what the daily Payment
Reconciliation task found between ParkOps' payments and the card processor's records
(``reconciliation``), newest first, with when it was found and last seen in words in the site's
time zone.

Nothing changes without a person's click, confirmed in a dialog: Mark reviewed (a note saying what
was checked is required), and for a charge without a settled payment, Settle (its payment is still
pending: the processor is asked again and only its answer settles it) or Refund (no payment counts
it: the money goes back to the card). Every one is audited. The layout is scaffolding; the list
arrives through manager-checked callbacks, and each action checks again on the server that it is
allowed for that mismatch now.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components import checkout
from dashboard.components.feedback import validation_alert
from dashboard.inputs import require_id
from dashboard.services import reconciliation, system_tasks
from dashboard.services.days import moment_words
from dashboard.services.errors import DomainError, NotFound, ValidationFailed
from dashboard.services.lots import format_dollars
from dashboard.services.reconciliation import MismatchView
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(__name__, path="/admin/reconciliation", title="Payment Reconciliation", min_role=Role.MANAGER)

ACT = "recon-act"
TASK = "payment-reconciliation"
SHOW = [
    {"label": "To look at", "value": "open"},
    {"label": "Done", "value": "done"},
    {"label": "All", "value": "all"},
]
ACTIONS = {
    "review": ("Mark reviewed", "secondary"),
    "settle": ("Settle the payment", "success"),
    "refund": ("Refund the charge", "danger"),
}


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Payment Reconciliation", className="h3"),
            html.P(
                "Each day the Payment Reconciliation task compares the card payments of the last three "
                "days with what the card processor recorded. Every disagreement is listed here; "
                "nothing is changed until you act on it.",
                className="text-muted",
            ),
            dcc.Store(id="recon-version", data=0),
            dcc.Store(id="recon-selected"),
            html.Div(id="recon-status", className="mb-2"),
            dbc.RadioItems(id="recon-show", options=SHOW, value="open", inline=True, className="mb-2"),
            html.Div(id="recon-message", role="status"),
            html.Div(id="recon-list"),
            dbc.Modal(
                [
                    dbc.ModalHeader(dbc.ModalTitle(id="recon-modal-title")),
                    dbc.ModalBody(
                        [
                            html.Div(id="recon-modal-facts", className="mb-2"),
                            dbc.Label("Note", html_for="recon-note"),
                            dbc.Textarea(id="recon-note", maxLength=reconciliation.NOTE_MAX, rows=3),
                            html.Div(id="recon-modal-error", className="mt-2"),
                        ]
                    ),
                    dbc.ModalFooter(dbc.Button("Confirm", id="recon-confirm", n_clicks=0)),
                ],
                id="recon-modal",
                is_open=False,
            ),
        ]
    )


def _amount(cents: int | None, currency: str) -> str:
    return "—" if cents is None else f"${format_dollars(cents)} {currency}"


def _status() -> Any:
    tz = core().settings.tz
    with session_scope() as session:
        task = system_tasks.find_task(session, TASK)
    if task is None:
        return None
    if not task.enabled:
        return dbc.Alert("The Payment Reconciliation task is off in System Task Logs.", color="warning")
    last = moment_words(task.last_run_at, datetime.now(UTC), tz) if task.last_run_at else "not yet"
    return html.P(
        f"Checked {task.schedule_words}; last run: {last}; next: {system_tasks.next_run_words(task, tz)}.",
        className="small text-muted",
        id="recon-schedule",
    )


def _buttons(row: MismatchView) -> list[Any]:
    if row.status != "open":
        return []
    wanted = ["review"] + (["settle"] if row.can_settle else []) + (["refund"] if row.can_refund else [])
    return [
        dbc.Button(
            ACTIONS[action][0],
            id={"type": ACT, "id": row.id, "action": action},
            color=ACTIONS[action][1],
            outline=action == "review",
            size="sm",
            className="me-1 mb-1",
            n_clicks=0,
        )
        for action in wanted
    ]


def _card(row: MismatchView, now: datetime) -> Any:
    """One mismatch as a card: readable at 390 px without a table to scroll sideways."""
    tz = core().settings.tz
    seen = moment_words(row.last_seen_at, now, tz)
    facts = [
        html.Div(
            [html.Strong(row.kind_words), f" · {row.provider_words}"],
            className="recon-kind",
        ),
        html.Div(row.detail, className="small"),
        html.Div(
            [
                f"ParkOps: {_amount(row.ledger_cents, row.currency)} · ",
                f"processor: {_amount(row.processor_cents, row.currency)}",
            ],
            className="small",
        ),
        html.Div(
            [
                "Reference ",
                html.Code(row.reference, className="text-break"),
                f" · payment {row.payment_id}" if row.payment_id is not None else " · no payment in ParkOps",
            ],
            className="small",
        ),
        html.Div(
            f"Found {moment_words(row.found_at, now, tz)}; last seen {seen}", className="small text-muted"
        ),
    ]
    if row.status != "open":
        who = row.resolved_by or "someone"
        when = moment_words(row.resolved_at, now, tz) if row.resolved_at else ""
        done = f"{row.status.capitalize()} by {who} {when}".strip()
        facts.append(
            html.Div([html.Strong(done), f": {row.note}" if row.note else ""], className="small mt-1")
        )
    return dbc.Card(
        dbc.CardBody([*facts, html.Div(_buttons(row), className="mt-2")]),
        className="mb-2",
        id={"type": "recon-row", "id": row.id},
    )


@callback(
    Output("recon-status", "children"),
    Output("recon-list", "children"),
    Input("recon-show", "value"),
    Input("recon-version", "data"),
    min_role=Role.MANAGER,
)
def refresh(show: Any, _version: Any) -> tuple[Any, Any]:
    chosen = show if show in ("open", "done", "all") else "open"
    with session_scope() as session:
        rows = reconciliation.list_mismatches(session, chosen)
    if not rows:
        empty = "Nothing to look at: the ledger and the processor agree." if chosen == "open" else "None."
        return _status(), html.P(empty, className="text-muted", id="recon-none")
    now = datetime.now(UTC)
    return _status(), html.Div([_card(row, now) for row in rows], id="recon-rows")


def _facts(row: MismatchView, action: str) -> str:
    if action == "settle":
        return (
            f"The processor is asked again about payment {row.payment_id}; if it confirms the charge of "
            f"{_amount(row.processor_cents, row.currency)}, the payment is settled: what it paid for "
            "counts as paid and the buyer gets the receipt."
        )
    if action == "refund":
        return (
            f"{_amount(row.processor_cents, row.currency)} goes back to the card of {row.provider_words} "
            f"charge {row.reference}. This cannot be undone."
        )
    return f"{row.kind_words}: {row.detail}. Say what you checked or did; it is kept with your name."


@callback(
    Output("recon-modal", "is_open"),
    Output("recon-selected", "data"),
    Output("recon-modal-title", "children"),
    Output("recon-modal-facts", "children"),
    Output("recon-confirm", "children"),
    Output("recon-confirm", "color"),
    Output("recon-note", "value"),
    Output("recon-modal-error", "children"),
    Input({"type": ACT, "id": ALL, "action": ALL}, "n_clicks"),
    min_role=Role.MANAGER,
    prevent_initial_call=True,
)
def open_action(clicks: list[int | None]) -> tuple[Any, ...]:
    trigger = dash.ctx.triggered_id
    if not isinstance(trigger, dict) or not any(clicks) or trigger.get("action") not in ACTIONS:
        return (no_update,) * 8
    mismatch_id = require_id(trigger.get("id"), "mismatch")
    action = str(trigger["action"])
    with session_scope() as session:
        try:
            row = reconciliation.get_mismatch(session, mismatch_id)
        except NotFound:
            return (no_update,) * 8
    label, color = ACTIONS[action]
    return (
        True,
        {"id": mismatch_id, "action": action},
        f"{label}?",
        _facts(row, action),
        label,
        color,
        "",
        None,
    )


@callback(
    Output("recon-modal-error", "children", allow_duplicate=True),
    Output("recon-modal", "is_open", allow_duplicate=True),
    Output("recon-message", "children"),
    Output("recon-version", "data"),
    Input("recon-confirm", "n_clicks"),
    State("recon-selected", "data"),
    State("recon-note", "value"),
    State("recon-version", "data"),
    min_role=Role.MANAGER,
    prevent_initial_call=True,
    running=[(Output("recon-confirm", "disabled"), True, False)],
)
def confirm(clicks: int | None, selected: Any, note: Any, version: Any) -> tuple[Any, ...]:
    if not clicks or not isinstance(selected, dict) or selected.get("action") not in ACTIONS:
        return (no_update,) * 4
    mismatch_id = require_id(selected.get("id"), "mismatch")
    action = selected["action"]
    actor = current_user_id()
    now = datetime.now(UTC)
    bumped = (version or 0) + 1 if isinstance(version, int) else 1
    try:
        if action == "review":
            with session_scope() as session:
                reconciliation.mark_reviewed(session, mismatch_id, note, actor, now)
            said = "Marked reviewed."
        elif action == "settle":
            said = reconciliation.settle(
                core().db,
                core().secrets,
                mismatch_id,
                note,
                actor,
                receipt=checkout.receipt_context(None),
                backend=checkout.mail_backend(),
                now=now,
            )
        else:
            said = reconciliation.refund(core().db, core().secrets, mismatch_id, note, actor, now)
    except ValidationFailed as exc:
        return validation_alert(exc, {"note": "Note"}, "Not done:"), no_update, no_update, no_update
    except DomainError as exc:
        return dbc.Alert(str(exc), color="danger", id="recon-refused"), no_update, no_update, bumped
    return None, False, dbc.Alert(said, color="success", id="recon-done", dismissable=True), bumped
