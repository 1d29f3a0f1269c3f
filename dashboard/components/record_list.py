"""What the pages over pay-station and temporary-permit records share (Pay Station Status,
Temporary Permits): a filter field, the filter choices, the totals over every match, the paged
table's frame and what a search puts in it.

The ids start with the page's prefix (``paystations``, ``temps``); ``noun`` is what a row is
("records", "permits"), used in the count's label, the range line and the pager's name.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import dash_bootstrap_components as dbc
from dash import Output, html

from dashboard.services.pay_stations import RecordPage


def field(label: str, control: Any, xs: int = 12, sm: int = 6, lg: int = 2) -> Any:
    """A filter's label over its control, a column of the filter row."""
    return dbc.Col(
        [dbc.Label(label, html_for=control.id, className="small mb-1"), control], xs=xs, sm=sm, lg=lg
    )


def options(everything: str, choices: list[tuple[Any, str]]) -> list[dict[str, str]]:
    """A filter's choices, "everything" (the empty value) first."""
    return [{"label": everything, "value": ""}] + [
        {"label": label, "value": str(value)} for value, label in choices
    ]


def money(cents: int, currency: str) -> str:
    return f"{currency} {Decimal(cents) / 100:,.2f}"


def _total(component_id: str, label: str, phone_width: int) -> Any:
    return dbc.Col(
        dbc.Card(
            dbc.CardBody(
                [
                    html.Div(label, className="text-muted small"),
                    html.Div("—", id=component_id, className="h5 m-0 text-break"),
                ]
            )
        ),
        xs=phone_width,
        sm=4,
    )


def results(prefix: str, noun: str) -> list[Any]:
    """Under the filters: the error, the totals (count, active now, amount), the range shown, the
    table and its pager; empty until the page's search callback fills them."""
    named: dict[str, Any] = {"aria-label": f"Pages of {noun}"}
    return [
        html.Div(id=f"{prefix}-error", role="alert"),
        dbc.Row(
            [
                _total(f"{prefix}-count", noun.capitalize(), 6),
                _total(f"{prefix}-active", "Active now", 6),
                _total(f"{prefix}-amount", "Amount", 12),
            ],
            className="g-2 mb-3",
        ),
        html.Div(id=f"{prefix}-range", className="small text-muted mb-1", role="status"),
        html.Div(id=f"{prefix}-table"),
        html.Nav(
            dbc.Pagination(
                id=f"{prefix}-pages",
                max_value=1,
                active_page=1,
                fully_expanded=False,
                first_last=True,
                previous_next=True,
                size="sm",
            ),
            **named,
            className="d-flex justify-content-center mt-2",
        ),
    ]


def result_outputs(prefix: str) -> list[Output]:
    """The outputs of a page's search callback, in the order ``shown`` returns them."""
    return [
        Output(f"{prefix}-error", "children"),
        Output(f"{prefix}-count", "children"),
        Output(f"{prefix}-active", "children"),
        Output(f"{prefix}-amount", "children"),
        Output(f"{prefix}-range", "children"),
        Output(f"{prefix}-table", "children"),
        Output(f"{prefix}-pages", "max_value"),
        Output(f"{prefix}-pages", "active_page"),
    ]


def shown(result: RecordPage, noun: str, table: Any) -> tuple[Any, ...]:
    """A search's page: no error, the totals over every match (the amount per currency, since
    sources may bill in different ones), the range shown, the table and the pager."""
    amount = " + ".join(money(cents, currency) for currency, cents in result.amounts) or "—"
    where = (
        f"Showing {result.first}–{result.first + len(result.rows) - 1} of {result.total} {noun}"
        if result.rows
        else ""
    )
    return (
        None,
        f"{result.total:,}",
        f"{result.active_now:,}",
        amount,
        where,
        table,
        result.pages,
        result.page,
    )


def over_allowance(title: str) -> Any:
    """The flag on a record sold when its lot's allowance or its zone's capacity was taken."""
    return dbc.Badge("Over allowance", color="warning", text_color="dark", className="ms-1", title=title)
