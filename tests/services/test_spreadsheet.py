"""Exported cells never run as spreadsheet formulas."""

from __future__ import annotations

from dashboard.services.spreadsheet import safe_cell


def test_a_cell_that_starts_like_a_formula_is_text():
    assert [safe_cell(v) for v in ["=1", "+1", "-1", "@a", "\tx", "\rx", "a=1", "", None, 12]] == [
        "'=1", "'+1", "'-1", "'@a", "'\tx", "'\rx", "a=1", "", "", "12",
    ]  # fmt: skip
