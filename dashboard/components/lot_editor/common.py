"""What the lot editor's tabs share (``dashboard.components.lot_editor``): the id the URL holds,
field labels for validation messages, and the form-field layout."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from dashboard.inputs import as_id

NEW = "new"
LABELS = {
    "name": "Name",
    "code": "Code",
    "description": "Description",
    "address": "Address",
    "lot_group_id": "Lot Group",
    "capacity": "Capacity",
    "permits_allowed": "Permits allowed",
    "latitude": "Latitude",
    "longitude": "Longitude",
    "kind": "Kind",
    "pricing": "Pricing",
    "price": "Price",
    "term_start": "Term start",
    "term_end": "Term end",
    "max_duration_minutes": "Maximum duration",
    "user_type_ids": "Eligible user types",
    "zone_id": "Zone",
    "days": "Days",
    "start_time": "Start time",
    "end_time": "End time",
}


def lot_key(value: Any) -> int | None:
    """The lot id in the URL, or None for ``new`` or anything that is not an id."""
    return as_id(value)


def field(label: str, control: Any, control_id: str, help_text: str | None = None, **col: Any) -> Any:
    parts = [dbc.Label(label, html_for=control_id), control]
    if help_text:
        parts.append(dbc.FormText(help_text, id=f"{control_id}-help"))
    return dbc.Col(parts, **{"xs": 12, **col}, className="mb-3")


def fieldset(legend: str, control: Any, **col: Any) -> Any:
    """A group of choices (radios, checkboxes) under its legend, laid out like ``field``: the
    legend names the group for a screen reader where a label would name one control."""
    return dbc.Col(
        html.Fieldset([html.Legend(legend, className="form-label fs-6"), control]),
        **{"xs": 12, **col},
        className="mb-3",
    )
