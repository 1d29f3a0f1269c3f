"""Universal Boot Devices, the Boot Device Report (managers): every use of every boot, with the
ticket, the status (In Use, Released / Not Returned, Returned) and the dates it was created,
released and returned; filters; CSV export.

Edit > Return marks a boot returned (available again). When the violation was paid, "Process
Refund" refunds the deposit (the Apply Boot items' fines, no discount) once through the payment
provider; leaving it unticked asks why the deposit is kept (a damaged boot). When the violation
was never paid the dialog says there is nothing to refund. A returned boot whose deposit was kept
or whose refund failed can be opened again to refund it. With Universal Boot off the page says so
and shows nothing else. ``?boot=<id>`` (the boot's QR label) filters to one boot.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.components import paged_search
from dashboard.components.checkout import provider
from dashboard.components.enforcement import (
    boot_badge,
    boots_off_notice,
    boots_on,
    money,
    setting,
    short_when,
)
from dashboard.components.feedback import validation_alert
from dashboard.inputs import require_id
from dashboard.services import boot_deposits, boots
from dashboard.services.boots import ReportFilters
from dashboard.services.days import parse_day
from dashboard.services.errors import DomainError, NotFound, ValidationFailed
from dashboard.web import core, current_user_id, session_scope
from models import Role

register_page(__name__, path="/admin/boot-report", title="Universal Boot Devices", min_role=Role.MANAGER)

EDIT = "bootreport-edit"
FILTERS = ("bootreport-status", "bootreport-boot", "bootreport-ticket", "bootreport-from", "bootreport-to")
STATUS_CHOICES = [
    ("", "All statuses"),
    ("in_use", "In Use"),
    ("released", "Released"),
    (boots.NOT_RETURNED, "Released / Not Returned"),
    ("returned", "Returned"),
]
RETURN = "returned"
FILTER_LABELS = {"status": "Status", "ticket": "Ticket", "from": "Created from", "to": "Created to"}


def _field(label: str, control: Any) -> Any:
    return dbc.Col(
        [dbc.Label(label, html_for=control.id, className="small mb-1"), control], xs=12, sm=6, lg=2
    )


def layout(boot: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Store(id="bootreport-init", data=boot),
            dcc.Store(id="bootreport-version", data=0),
            dcc.Store(id="bootreport-selected"),
            dcc.Download(id="bootreport-download"),
            html.Div(id="bootreport-off"),
            html.Div(
                [
                    html.H1("Universal Boot Devices", className="h3"),
                    dbc.Card(
                        dbc.CardBody(
                            dbc.Row(
                                [
                                    _field(
                                        "Status",
                                        dbc.Select(
                                            id="bootreport-status",
                                            value="",
                                            placeholder="All statuses",
                                            options=[{"label": t, "value": v} for v, t in STATUS_CHOICES],
                                        ),
                                    ),
                                    _field(
                                        "Boot",
                                        dbc.Select(id="bootreport-boot", value="", placeholder="All boots"),
                                    ),
                                    _field(
                                        "Ticket",
                                        dbc.Input(id="bootreport-ticket", debounce=True, maxLength=32),
                                    ),
                                    _field(
                                        "Created from",
                                        dbc.Input(id="bootreport-from", type="date", debounce=True),
                                    ),
                                    _field(
                                        "Created to",
                                        dbc.Input(id="bootreport-to", type="date", debounce=True),
                                    ),
                                    dbc.Col(
                                        dbc.Button(
                                            "Export CSV",
                                            id="bootreport-export",
                                            color="secondary",
                                            n_clicks=0,
                                        ),
                                        xs=12,
                                        sm=6,
                                        lg=2,
                                        className="d-flex align-items-end",
                                    ),
                                ],
                                className="g-2",
                            )
                        ),
                        className="mb-3",
                    ),
                    html.Div(id="bootreport-message", role="status"),
                    html.Div(id="bootreport-range", className="small text-muted mb-1"),
                    html.Div(id="bootreport-table"),
                    dbc.Pagination(
                        id="bootreport-pages",
                        max_value=1,
                        active_page=1,
                        fully_expanded=False,
                        size="sm",
                        className="justify-content-center mt-2",
                    ),  # fmt: skip
                ],
                id="bootreport-main",
                hidden=True,
            ),
            dbc.Modal(
                [
                    dbc.ModalHeader(dbc.ModalTitle("Edit boot", id="bootreport-modal-title")),
                    dbc.ModalBody(
                        [
                            html.Div(id="bootreport-modal-facts", className="small mb-2"),
                            dbc.Label("Status", html_for="bootreport-new-status"),
                            dbc.Select(id="bootreport-new-status", className="mb-2"),
                            dbc.Checkbox(id="bootreport-refund", label="Process Refund", value=False),
                            html.Div(id="bootreport-refund-note", className="small text-muted mb-2"),
                            html.Div(
                                [
                                    dbc.Label(
                                        "Why is the deposit kept? (e.g. damaged boot)",
                                        html_for="bootreport-reason",
                                    ),
                                    dbc.Input(id="bootreport-reason", maxLength=255),
                                ],
                                id="bootreport-reason-row",
                            ),
                            html.Div(id="bootreport-modal-error", className="mt-2"),
                        ]
                    ),
                    dbc.ModalFooter(dbc.Button("Save", id="bootreport-save", color="primary", n_clicks=0)),
                ],
                id="bootreport-modal",
                is_open=False,
            ),
        ]
    )


@callback(
    Output("bootreport-off", "children"),
    Output("bootreport-main", "hidden"),
    Output("bootreport-boot", "options"),
    Output("bootreport-boot", "value"),
    Input("bootreport-init", "data"),
    min_role=Role.MANAGER,
)
def load(boot_query: str | None) -> tuple[Any, ...]:
    """``boot_query`` is the address's ``?boot=<id>`` (a boot's QR label), as text."""
    if not boots_on():
        return boots_off_notice(), True, no_update, no_update
    with session_scope() as session:
        rows = boots.list_boots(session, core().secrets)
    options = [{"label": "All boots", "value": ""}] + [{"label": b.name, "value": str(b.id)} for b in rows]
    wanted = str(boot_query or "")
    return None, False, options, wanted if any(o["value"] == wanted for o in options) else ""


def filters_from(
    status: str | None, boot: str | None, ticket: str | None, start: str | None, end: str | None
) -> ReportFilters:
    """The Boot choice holds ids the page gave out ("" for all)."""
    return ReportFilters(
        status=status or None,
        boot_id=require_id(boot, "boot") if boot else None,
        ticket=ticket or None,
        applied_from=parse_day(start, "from"),
        applied_to=parse_day(end, "to"),
    )


def _non_return_days() -> int:
    return int(setting("boot_non_return_days"))


def _editable(row: boots.ReportRow) -> bool:
    return (
        row.status in ("in_use", "released")
        or row.refund in ("not refunded", "refund failed")
        or (row.refund.startswith("kept:"))
    )


def _table(page: boots.ReportPage) -> Any:
    if not page.rows:
        return html.P("No boots match these filters.", className="text-muted")
    header = ["Boot", "Ticket", "Plate", "Status", "Created", "Released", "Returned", "Deposit", "Refund", ""]
    body = []
    for r in page.rows:
        status = [boot_badge(r.shown_status)]
        if r.late_fee_ticket:
            status.append(html.Div(f"late fee {r.late_fee_ticket}", className="small text-danger"))
        body.append(
            html.Tr(
                [
                    html.Td(r.boot_name, className="fw-semibold text-nowrap"),
                    html.Td(
                        dcc.Link(r.ticket_number, href=f"/admin/violations/{r.violation_id}"),
                        className="text-nowrap",
                    ),
                    html.Td(r.plate, className="text-nowrap"),
                    html.Td(status),
                    html.Td(short_when(r.applied_at), className="text-nowrap"),
                    html.Td(short_when(r.released_at), className="text-nowrap"),
                    html.Td(short_when(r.returned_at), className="text-nowrap"),
                    html.Td(money(r.deposit_cents), className="text-end"),
                    html.Td(r.refund, className="small"),
                    html.Td(
                        dbc.Button(
                            "Edit",
                            id={"type": EDIT, "id": r.assignment_id},
                            size="sm",
                            outline=True,
                            n_clicks=0,
                        )
                        if _editable(r)
                        else None
                    ),
                ],
                id=f"bootreport-row-{r.assignment_id}",
                className="table-danger" if r.not_returned else None,
            )
        )
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h, scope="col") for h in header])), html.Tbody(body)],
        size="sm",
        hover=True,
        responsive=True,
        id="bootreport-grid",
    )


@callback(
    Output("bootreport-message", "children", allow_duplicate=True),
    Output("bootreport-range", "children"),
    Output("bootreport-table", "children"),
    Output("bootreport-pages", "max_value"),
    Output("bootreport-pages", "active_page"),
    *(Input(f, "value") for f in FILTERS),
    Input("bootreport-pages", "active_page"),
    Input("bootreport-version", "data"),
    min_role=Role.MANAGER,
    prevent_initial_call="initial_duplicate",
)
def refresh(
    status: str | None,
    boot: str | None,
    ticket: str | None,
    start: str | None,
    end: str | None,
    page: int | None,
    _version: int | None,
) -> tuple[Any, ...]:
    values = (status, boot, ticket, start, end)
    if not boots_on():
        return (no_update,) * 5
    if dash.ctx.triggered_id in FILTERS:
        page = 1
    try:
        filters = filters_from(*values)
        with session_scope() as session:
            result = boots.report(
                session, filters, datetime.now(UTC), core().settings.tz, non_return_days=_non_return_days(),
                page=page or 1,
            )  # fmt: skip
    except ValidationFailed as exc:
        return validation_alert(exc, FILTER_LABELS, "Not searched:"), *([no_update] * 4)
    shown = paged_search.range_words(result, boots.PAGE_SIZE)
    return no_update, shown, _table(result), result.pages, result.page


@callback(
    Output("bootreport-modal", "is_open"),
    Output("bootreport-selected", "data"),
    Output("bootreport-modal-title", "children"),
    Output("bootreport-modal-facts", "children"),
    Output("bootreport-new-status", "options"),
    Output("bootreport-new-status", "value"),
    Output("bootreport-refund", "value"),
    Output("bootreport-refund", "disabled"),
    Output("bootreport-refund-note", "children"),
    Output("bootreport-reason", "value"),
    Output("bootreport-modal-error", "children"),
    Output("bootreport-message", "children", allow_duplicate=True),
    Input({"type": EDIT, "id": ALL}, "n_clicks"),
    min_role=Role.MANAGER,
    prevent_initial_call=True,
)
def open_edit(_clicks: list[int | None]) -> tuple[Any, ...]:
    trigger = dash.ctx.triggered_id
    if not isinstance(trigger, dict) or not any(_clicks) or not boots_on():
        return (no_update,) * 12
    assignment_id = require_id(trigger["id"], "boot use")
    try:
        with session_scope() as session:
            row = boots.report_row(session, assignment_id, datetime.now(UTC), _non_return_days())
            plan = boot_deposits.refund_plan(session, assignment_id)
    except NotFound as exc:
        return (*(no_update,) * 11, dbc.Alert(str(exc), color="warning"))
    facts = [
        html.Div(f"Ticket {row.ticket_number} · {row.plate}"),
        html.Div(f"Created {short_when(row.applied_at)}"),
        *([html.Div(f"Released {short_when(row.released_at)}")] if row.released_at else []),
        *([html.Div(f"Returned {short_when(row.returned_at)}")] if row.returned_at else []),
    ]
    if row.status == RETURN:
        options = [{"label": "Returned", "value": RETURN}]
    else:
        options = [
            {"label": boots.status_label(row.status), "value": row.status},
            {"label": "Return", "value": RETURN},
        ]
    if plan.possible:
        note = (
            f"Refunds the deposit, {money(plan.amount_cents)} (the Apply Boot items' fines), "
            "to the card that paid."
        )
    elif plan.payment_id is None:
        note = "The violation was never paid: there is nothing to refund."
    elif plan.refunded_cents:
        note = f"The deposit was refunded already ({money(plan.refunded_cents)})."
    else:
        note = "There is no deposit to refund (no Apply Boot item was paid)."
    return (
        True,
        assignment_id,
        f"Edit {row.boot_name}",
        facts,
        options,
        RETURN,
        plan.possible,
        not plan.possible,
        note,
        "",
        None,
        no_update,
    )


@callback(
    Output("bootreport-reason-row", "hidden"),
    Input("bootreport-refund", "value"),
    Input("bootreport-refund", "disabled"),
    min_role=Role.MANAGER,
)
def reason_shown(refund: bool | None, disabled: bool | None) -> bool:
    """Keeping a deposit that could be refunded needs a reason."""
    return bool(refund) or bool(disabled)


@callback(
    Output("bootreport-modal-error", "children", allow_duplicate=True),
    Output("bootreport-modal", "is_open", allow_duplicate=True),
    Output("bootreport-message", "children"),
    Output("bootreport-version", "data"),
    Input("bootreport-save", "n_clicks"),
    State("bootreport-selected", "data"),
    State("bootreport-new-status", "value"),
    State("bootreport-refund", "value"),
    State("bootreport-refund", "disabled"),
    State("bootreport-reason", "value"),
    State("bootreport-version", "data"),
    min_role=Role.MANAGER,
    prevent_initial_call=True,
    running=[(Output("bootreport-save", "disabled"), True, False)],
)
def save(
    clicks: int | None,
    selected: int | None,
    status: str | None,
    refund: bool | None,
    cannot_refund: bool | None,
    reason: str | None,
    version: int | None,
) -> tuple[Any, ...]:
    if not clicks or selected is None or not boots_on():
        return (no_update,) * 4
    assignment_id = require_id(selected, "boot use")
    actor = current_user_id()
    now = datetime.now(UTC)
    messages: list[str] = []
    try:
        with session_scope() as session:
            row = boots.report_row(session, assignment_id, now, _non_return_days())
        if status != RETURN:
            raise ValidationFailed({"status": "choose Return to mark the boot returned"})
        if not refund and not cannot_refund and not (reason or "").strip():
            raise ValidationFailed({"reason": "say why the deposit is kept, or tick Process Refund"})
        if row.status != RETURN:
            with session_scope() as session:
                boots.mark_returned(
                    session, assignment_id, actor, now, skip_reason="" if refund else reason or ""
                )
            messages.append(f"{row.boot_name} is returned and available again.")
        elif not refund and reason:
            with session_scope() as session:
                boots.keep_deposit(session, assignment_id, reason, actor)
            messages.append("The deposit is kept.")
        if refund and not cannot_refund:
            outcome = boot_deposits.refund_deposit(
                core().db, provider(), assignment_id, actor, core().secrets
            )
            messages.append(
                f"Deposit of {money(outcome.amount_cents)} refunded."
                if outcome.succeeded
                else outcome.message
            )
    except ValidationFailed as exc:
        labels = {"status": "Status", "reason": "Reason"}
        return validation_alert(exc, labels, "Not saved:"), no_update, no_update, no_update
    except DomainError as exc:
        return dbc.Alert(str(exc), color="danger"), no_update, no_update, (version or 0) + 1
    return (
        None,
        False,
        dbc.Alert(" ".join(messages), color="success", id="bootreport-done"),
        (version or 0) + 1,
    )


@callback(
    Output("bootreport-download", "data"),
    Output("bootreport-message", "children", allow_duplicate=True),
    Input("bootreport-export", "n_clicks"),
    *(State(f, "value") for f in FILTERS),
    min_role=Role.MANAGER,
    prevent_initial_call=True,
)
def export(
    clicks: int | None,
    status: str | None,
    boot: str | None,
    ticket: str | None,
    start: str | None,
    end: str | None,
) -> tuple[Any, Any]:
    values = (status, boot, ticket, start, end)
    if not clicks or not boots_on():
        return no_update, no_update
    try:
        filters = filters_from(*values)
        with session_scope() as session:
            text = boots.report_csv(
                session, filters, datetime.now(UTC), core().settings.tz, non_return_days=_non_return_days()
            )
    except ValidationFailed as exc:
        return no_update, validation_alert(exc, FILTER_LABELS, "Not exported:")
    stamp = datetime.now(core().settings.tz).strftime("%Y%m%d-%H%M")
    return dcc.send_string(text, f"boot-devices-{stamp}.csv", type="text/csv"), None
