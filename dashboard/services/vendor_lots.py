"""Lots as the occupancy vendors know them, for the pickers on the Lot Groups page.

Mistall lots exist here only after the Update Mistall System Job Task has run once (the seed says
so): the dropdown stays empty until then, and keeps a lot that Mistall stopped reporting, so a lot
group's association is never silently dropped.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import MistallLot


def mistall_lot_choices(session: Session) -> list[tuple[str, str]]:
    """``(mistall_id, label)`` for the Mistall Lot ID dropdown, by name; the label carries the id
    because two Mistall lots may share a name."""
    lots = session.execute(
        select(MistallLot.mistall_id, MistallLot.name).order_by(MistallLot.name, MistallLot.mistall_id)
    )
    return [(mistall_id, f"{name} ({mistall_id})") for mistall_id, name in lots]
