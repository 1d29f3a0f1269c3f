"""The callback boundary's checks (``dashboard.inputs``) on their own: ids, type hints, values no
browser sends, and the shape of a call."""

from __future__ import annotations

from typing import Any

import pytest
from dash import ALL, Input, Output

from dashboard.inputs import MAX_ID, InvalidInput, as_id, checker, malformed_call, require_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7, 7), ("7", 7), (" 42 ", 42), (MAX_ID, MAX_ID), (MAX_ID + 1, None), (str(10**20), None), (0, None)]
    + [
        (-1, None),
        ("-1", None),
        (True, None),
        (1.0, None),
        ("1e5", None),
        ("٣", None),
        (None, None),
        ([], None),
    ],
)
def test_as_id(value, expected):
    assert as_id(value) == expected


def test_require_id_names_the_field():
    with pytest.raises(InvalidInput, match="zone: not an id"):
        require_id(2**31, "zone")


def _callback(name: str | None, clicks: int | None, rows: list[int | None], anything: Any) -> None: ...


def test_arguments_are_checked_strictly_against_the_type_hints():
    check = checker(_callback)
    assert check(("a", 3, [1, None], {"x": object})) == ("a", 3, [1, None], {"x": object})
    for bad, field in [((5, 1, [], None), "name"), (("a", True, [], None), "clicks")]:
        with pytest.raises(InvalidInput, match=field):
            check(bad)
    with pytest.raises(InvalidInput, match="rows"):
        check(("a", 1, [1.5], None))


@pytest.mark.parametrize("value", ["a\x00b", 2**60, {"k": ["x\x00"]}, [[-(2**54)]]])
def test_values_no_browser_sends_are_refused_even_where_the_hint_is_any(value):
    with pytest.raises(InvalidInput, match="anything"):
        checker(_callback)(("a", 1, [], value))


ENTRY = {
    "output": [Output("a", "children"), Output({"type": "row", "id": ALL}, "children")],
    "inputs": [Input("b", "n_clicks").to_dict(), Input({"type": "row", "id": ALL}, "n_clicks").to_dict()],
    "state": [],
}
GOOD = {
    "output": "..a.children...",
    "outputs": [
        {"id": "a", "property": "children@0123"},
        [{"id": {"type": "row", "id": 4}, "property": "children"}],
    ],
    "inputs": [{"id": "b", "property": "n_clicks", "value": 1}, []],
    "changedPropIds": ["b.n_clicks"],
}


def test_a_call_as_the_renderer_sends_it_passes():
    assert malformed_call(GOOD, ENTRY) is None


@pytest.mark.parametrize(
    "change",
    [
        {"outputs": {"id": "a", "property": "children"}},
        {"inputs": [{"id": "b", "property": "n_clicks", "value": 1}]},
        {"inputs": [{"id": "c", "property": "n_clicks", "value": 1}, []]},
        {"inputs": [{"id": "b", "property": "n_clicks"}, [{"id": {"type": "row"}, "property": "n_clicks"}]]},
        {
            "inputs": [
                {"id": "b", "property": "n_clicks"},
                [{"id": {"type": "row", "id": [1]}, "property": "n_clicks"}],
            ]
        },
        {
            "inputs": [
                {"id": "b", "property": "n_clicks"},
                [{"id": {"type": "x", "id": 1}, "property": "n_clicks"}],
            ]
        },
        {
            "inputs": [
                {"id": "b", "property": "n_clicks"},
                [{"id": {"type": "row", "id": 2**60}, "property": "n_clicks"}],
            ]
        },
        {"changedPropIds": "b.n_clicks"},
    ],
)
def test_a_call_of_another_shape_is_named(change):
    assert malformed_call({**GOOD, **change}, ENTRY)
