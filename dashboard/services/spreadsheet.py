"""Cells of the CSV files ParkOps hands out (exports, import failures): opened in a spreadsheet,
a cell that starts like a formula must show as text, never run (OWASP's CSV injection advice:
prefix a leading = + - @ tab or carriage return with an apostrophe). Names, plates and notes
come from people, so every exported cell goes through ``safe_cell``."""

from __future__ import annotations

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell as text a spreadsheet will not evaluate; ``None`` is empty."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_LEADS) else text
