"""How occupancy figures read on every screen: one wording for sources, ages and percentages.

Plain text, in services rather than beside the Dash components: the staff live body
(``dashboard.services.lot_status``) words its figures on the server with the same functions the
pages use."""

from __future__ import annotations

from datetime import datetime

from dashboard.services.occupancy import Figure

SOURCE_LABELS = {
    "mistall": "Mistall",
    "parking_logix": "Parking Logix",
    "devices": "Live sensors",
    "permits": "Permits",
}


def source_label(figure: Figure) -> str:
    return SOURCE_LABELS.get(str(figure.source), str(figure.source))


def ago(moment: datetime | None, now: datetime) -> str:
    """ "12s ago", "3 min ago", "2 h ago", "4 d ago", or "never"."""
    if moment is None:
        return "never"
    seconds = max(int((now - moment).total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"
