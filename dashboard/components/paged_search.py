"""What the admin searches with pages share (Users, Violations; Boot Report's range line): the
area under the filters (the error, the range shown, the table, the pager), the search callback's
outputs and its answer.

The ids start with the page's prefix (``users``, ``violations``).
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any, Protocol

import dash_bootstrap_components as dbc
from dash import Output, html


class SearchPage(Protocol):
    """A service's page of matches: the page number, its rows, how many match, how many pages."""

    @property
    def page(self) -> int: ...

    @property
    def rows(self) -> Sized: ...

    @property
    def total(self) -> int: ...

    @property
    def pages(self) -> int: ...


def results(prefix: str) -> list[Any]:
    """Under the filters: the error, the range shown, the table and its pager, empty until the
    page's search callback fills them."""
    return [
        html.Div(id=f"{prefix}-error", role="alert"),
        html.Div(id=f"{prefix}-range", className="small text-muted mb-1", role="status"),
        html.Div(id=f"{prefix}-table"),
        dbc.Pagination(
            id=f"{prefix}-pages",
            max_value=1,
            active_page=1,
            fully_expanded=False,
            size="sm",
            className="justify-content-center mt-2",
        ),
    ]


def result_outputs(prefix: str) -> list[Output]:
    """The outputs of a page's search callback, in the order ``shown`` returns them."""
    return [
        Output(f"{prefix}-error", "children"),
        Output(f"{prefix}-range", "children"),
        Output(f"{prefix}-table", "children"),
        Output(f"{prefix}-pages", "max_value"),
        Output(f"{prefix}-pages", "active_page"),
    ]


def range_words(result: SearchPage, page_size: int) -> str:
    """ "51–100 of 230": the matches this page shows; empty when none match."""
    if not len(result.rows):
        return ""
    first = (result.page - 1) * page_size + 1
    return f"{first}–{first + len(result.rows) - 1} of {result.total}"


def shown(result: SearchPage, page_size: int, table: Any) -> tuple[Any, ...]:
    """A search's answer: no error, the range shown, the table and the pager."""
    return None, range_words(result, page_size), table, result.pages, result.page
