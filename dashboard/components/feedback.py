"""How a screen says a save failed: one alert listing each field's problem, the same everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from dashboard.services.errors import ValidationFailed


def validation_alert(exc: ValidationFailed, labels: Mapping[str, str], heading: str = "Not saved:") -> Any:
    return dbc.Alert(
        [
            html.Strong(heading),
            html.Ul(
                [html.Li(f"{labels.get(field, field)}: {message}") for field, message in exc.errors.items()]
            ),
        ],
        color="danger",
    )
