"""What My Violations (``/violations``) and Pay a Violation (``/pay-violation``) share: the static
payment form, the list of violations as checkboxes (a boot icon on a booted one while Universal
Boot is on), the total the server computes, the payment and its outcome.

Both pages hold only scaffolding in their layouts; the violations arrive through role-checked
callbacks that call these functions with the page's ``Scope`` (the signed-in account, or the
guest's ticket number and plate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, html, no_update
from flask_login import current_user

from dashboard.callbacks import callback
from dashboard.components import checkout
from dashboard.components.enforcement import boots_on, money, setting, short_when, violation_badge, when
from dashboard.components.feedback import validation_alert
from dashboard.services import payment_providers, system_settings, violation_payments
from dashboard.services.errors import DomainError, ValidationFailed
from dashboard.services.violation_payments import Payable, Scope, ViolationCheckout
from dashboard.web import core, session_scope
from models import Role

HIDDEN = {"display": "none"}
RETURNS = ("return", "cancel")  # how a hosted processor's page sends the payer back
LABELS = {"violations": "Tickets", "email": "E-mail", "form": "Form", **checkout.CARD_LABELS}


def pay_form(prefix: str) -> Any:
    """The total, the e-mail, the card and Pay: empty controls, no user data."""
    return html.Div(
        [
            html.P(["Total: ", html.Strong(id=f"{prefix}-total-text")], className="fs-5 mt-3"),
            dbc.Label("E-mail (required: the receipt goes there)", html_for=f"{prefix}-email"),
            dbc.Input(
                id=f"{prefix}-email", type="email", maxLength=254, autoComplete="email", className="mb-3"
            ),
            html.H2("Pay by card", className="h5"),
            checkout.card_form(prefix),
            dbc.Button("Pay", id=f"{prefix}-pay", color="primary", n_clicks=0, className="w-100"),
        ],
        id=f"{prefix}-pay-section",
        style=HIDDEN,
    )


def result_area(prefix: str) -> Any:
    """The outcome of Pay, outside the form: it stays when the form hides (everything paid)."""
    return html.Div(
        [
            html.Div(id=f"{prefix}-back", className="mt-3", role="status"),
            html.Div(id=f"{prefix}-result", className="mt-3", role="status"),
            dbc.Button(
                "Add the overdue tickets",
                id=f"{prefix}-add-overdue",
                color="outline-primary",
                n_clicks=0,
                className="mt-1",
                style=HIDDEN,
            ),
        ]
    )


def boot_icon() -> Any:
    return html.Span(
        "Booted",
        className="badge bg-danger violation-boot-icon",
        title="A boot is on this vehicle: paying sends its release code",
    )


def _label(row: Payable, with_boots: bool) -> Any:
    parts: list[Any] = [
        html.Strong(row.ticket_number, className="me-2"),
        violation_badge(row.shown_status),
        " ",
        boot_icon() if with_boots and row.booted else None,
        html.Br(),
        html.Span(
            f"{row.plate} · {row.lot_name or ''} · written {short_when(row.issued_at)}", className="small"
        ),
        html.Br(),
    ]
    if row.payable:
        amount: list[Any] = [html.Strong(money(row.amount_due_cents))]
        if row.discount_until is not None and row.amount_due_cents != row.total_cents:
            amount += [
                f" (early-payment price; {money(row.total_cents)} after {when(row.discount_until)})",
            ]
        due = f" · due {when(row.due_at, with_time=False)}" if row.due_at else ""
        parts += [html.Span([*amount, due], className="small")]
    else:
        parts += [html.Span(row.reason.capitalize() if row.reason else "", className="small text-muted")]
    return html.Span(parts, className="violation-choice")


def choices(rows: Sequence[Payable]) -> list[dict[str, Any]]:
    with_boots = boots_on()
    return [
        {"label": _label(row, with_boots), "value": row.violation_id, "disabled": not row.payable}
        for row in rows
    ]


def require_overdue() -> bool:
    return bool(setting(violation_payments.REQUIRE_OVERDUE_SETTING))


def overdue_note(rows: Sequence[Payable]) -> Any:
    overdue = [row.ticket_number for row in rows if row.overdue and row.payable]
    if not overdue or not require_overdue():
        return None
    return dbc.Alert(
        f"Every overdue ticket must be paid together: {', '.join(overdue)}.",
        color="warning",
        className="small",
    )


def listed(scope: Scope) -> list[Payable]:
    with session_scope() as session:
        return violation_payments.scope_violations(session, scope, datetime.now(UTC))


def total(scope: Scope, selected: list[int] | None) -> tuple[str, int]:
    rows = listed(scope)
    cents = violation_payments.total_cents(rows, selected or [])
    return money(cents), cents


def outcome(result: ViolationCheckout) -> Any:
    if result.payment is not None and result.status != "refused":
        return checkout.outcome(result.payment, core().settings.tz)
    color = "warning" if result.status in ("overdue_missing", "changed") else "danger"
    return dbc.Alert(result.message, color=color, id=f"violpay-{result.status.replace('_', '-')}")


@dataclass(frozen=True)
class PayAnswer:
    """What Pay does to the page: the message, the form's key (None: keep it; a new one after a
    final no), whether the list must be read again, the overdue tickets to offer adding, and where
    the browser goes next (a hosted processor's payment page)."""

    shown: Any
    key: str | None
    reload: bool
    missing: list[int]
    go: str | None = None


def signed_in_name() -> str | None:
    """The payer's name for the receipt: the account's, or none for a guest."""
    return current_user.name if current_user.is_authenticated else None


def pay_outputs(answer: PayAnswer, version: int | None) -> tuple[Any, ...]:
    """What a page's Pay callback sends: the result, the form's key, the list's version, the
    overdue tickets to offer and the "Add the overdue tickets" button's style, where to go next."""
    return (
        answer.shown,
        answer.key or no_update,
        (version or 0) + 1 if answer.reload else no_update,
        answer.missing,
        {} if answer.missing else HIDDEN,
        answer.go or no_update,
    )


def run_payment(
    scope: Scope,
    name: str | None,
    selected: list[int] | None,
    address: str | None,
    number: str | None,
    expiry: str | None,
    cvc: str | None,
    key: str | None,
    shown_total: int | None,
    return_path: str,
) -> PayAnswer:
    """Pay. With Stripe chosen there is no card here: the answer sends the browser to Stripe's page,
    which comes back to ``return_path`` (``?payment=return`` or ``?payment=cancel``)."""
    tz = core().settings.tz
    now = datetime.now(UTC)
    try:
        provider = checkout.provider()
        hosted = payment_providers.is_hosted(provider)
        card = (
            None if hosted else payment_providers.clean_card(number, expiry, cvc, now.astimezone(tz).date())
        )
        with session_scope() as session:
            currency = system_settings.currency(session)
        result = violation_payments.pay(
            core().db,
            provider,
            scope,
            selected or [],
            address,
            card,
            key or "",
            receipt=checkout.receipt_context(name),
            backend=checkout.mail_backend(),
            now=now,
            require_overdue=require_overdue(),
            expected_total_cents=shown_total,
            return_url=f"{checkout.base_url().rstrip('/')}{return_path}",
            currency=currency,
        )
    except ValidationFailed as exc:
        return PayAnswer(validation_alert(exc, LABELS, heading="Not paid yet:"), None, False, [])
    except DomainError as exc:
        return PayAnswer(dbc.Alert(str(exc), color="danger"), None, False, [])
    if result.status == "redirect" and result.payment is not None:
        # On to Stripe's page; the form's key (kept in the tab) finds the payment on return.
        return PayAnswer(outcome(result), None, False, [], result.payment.redirect_url)
    if result.status in ("declined", "failed"):
        return PayAnswer(outcome(result), checkout.new_key(), False, [])
    if result.status in ("in_progress", "busy", "overdue_missing", "changed"):
        missing = [row.violation_id for row in result.missing]
        return PayAnswer(outcome(result), None, result.status == "changed", missing)
    return PayAnswer(outcome(result), checkout.new_key(), True, [])


def returned(key: Any, how: Any, name: str | None) -> Any:
    """Back from the processor's page: the outcome of the payment under the tab's key, from what
    the processor holds now (paid only once it says so; its back link closes the page and says
    nothing was charged). None when there is nothing to say. The list read again after it gives
    the form a new key."""
    if how not in RETURNS or not isinstance(key, str) or not key:
        return None
    try:
        provider = checkout.provider()
    except DomainError as exc:
        return dbc.Alert(str(exc), color="warning")
    result = checkout.ask_again(provider, key, how, name)
    return None if result is None else checkout.outcome(result, core().settings.tz)


def register_callbacks(prefix: str, min_role: Role) -> None:
    """Register, for the page whose ids start with ``prefix``, the callbacks both payment pages
    share: add the overdue tickets to the ticked ones, the card form or the hosted note, and the
    outcome on return from the processor's page. Call at page import, like the page's callbacks."""

    @callback(
        Output(f"{prefix}-select", "value", allow_duplicate=True),
        Output(f"{prefix}-add-overdue", "style", allow_duplicate=True),
        Input(f"{prefix}-add-overdue", "n_clicks"),
        State(f"{prefix}-missing", "data"),
        State(f"{prefix}-select", "value"),
        prevent_initial_call=True,
        min_role=min_role,
    )
    def add_overdue(
        clicks: int | None, missing: list[int] | None, selected: list[int] | None
    ) -> tuple[Any, Any]:
        if not clicks or not missing:
            return no_update, no_update
        return list(dict.fromkeys([*(selected or []), *missing])), HIDDEN

    @callback(
        Output(f"{prefix}-card-fields", "style"),
        Output(f"{prefix}-hosted-note", "style"),
        Output(f"{prefix}-pay", "children"),
        Input(f"{prefix}-version", "data"),
        min_role=min_role,
    )
    def card_mode(_version: Any) -> tuple[Any, Any, Any]:
        """The card fields with the sandbox; with Stripe, a note and "Continue to secure payment"."""
        return checkout.card_mode()

    @callback(
        Output(f"{prefix}-back", "children"),
        Output(f"{prefix}-version", "data"),
        Input(f"{prefix}-return", "data"),
        State(f"{prefix}-key", "data"),
        min_role=min_role,
    )
    def came_back(how: Any, key: Any) -> tuple[Any, Any]:
        """Back from Stripe's page: what became of the payment (paid only once Stripe says so), then
        the list read again (the tickets it paid show paid)."""
        shown = returned(key, how, signed_in_name())
        if shown is None:
            return no_update, no_update
        return shown, 1
