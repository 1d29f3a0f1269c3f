"""Hints that send an admin somewhere: each names the menu path exactly as the menu shows it, so a
hint never says "Tools > ..." when the menu says "System" (``menu_link`` refuses a path the menu
does not have, and a test renders every hint)."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard.components.shell import MENU
from dashboard.services.system_settings import THIRD_PARTY


def menu_link(section: str, label: str) -> dcc.Link:
    """A link to a menu entry, reading "Section > Label"; a path the menu lacks is a bug, raised."""
    href = next((h for s, name, h, _role in MENU if (s, name) == (section, label)), None)
    if href is None:
        raise LookupError(f"the menu has no entry {section} > {label}")
    return dcc.Link(f"{section} > {label}", href=href)


def no_mistall_lots() -> html.Span:
    """Why the Mistall Lot ID list is empty and the two steps that fill it, in order."""
    return html.Span(
        [
            "No Mistall lots yet: turn on Enable Mistall Usage (",
            menu_link("System", "System Settings"),
            f" > {THIRD_PARTY}), then RUN the Update Mistall System Job Task once (",
            menu_link("System", "System Task Logs"),
            ").",
        ],
        className="text-warning-emphasis",
    )


def mistall_hint(imported: int, imported_text: str) -> Any:
    """The Mistall Lot ID field's hint: how many lots were imported, or how to import them."""
    return imported_text.format(imported=imported) if imported else no_mistall_lots()
