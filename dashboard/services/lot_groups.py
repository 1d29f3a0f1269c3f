"""Lot groups as the Manage Parking Lot Groups screen sees them, and opening or closing one.

The figures come from ``occupancy.group_states`` (one source of truth for precedence and
staleness); this module adds the integration settings that screen shows beside them: the Mistall
lot id and the Parking Logix name (the seed: "it must match exactly"), and whether a Parking Logix
key is set: never the key itself.

Closing a group is what an admin does when a garage shuts: the maps then say "closed" instead of
"0% full". The change is published on ``occupancy.CHANNEL`` like a new count, so open pages
refresh; the caller publishes with ``announce`` after its unit of work has committed, so no page
re-reads the old state.

Associating a group with a Mistall lot (``set_mistall_lot``) accepts only lots the Update Mistall
System Job Task has imported (``vendor_lots.mistall_lot_choices``), and is announced the same way:
the group's physical figure may switch source (``occupancy.choose_physical``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.services import audit, vendor_lots
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.occupancy import CHANNEL, GroupOccupancy, LiveStore, Staleness, group_states
from models import LotGroup

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LotGroupRow:
    """One line of the Manage Parking Lot Groups table."""

    state: GroupOccupancy
    mistall_lot_id: str | None
    parking_logix_name: str | None
    parking_logix_key_set: bool

    @property
    def parking_logix_ready(self) -> bool:
        """Parking Logix counts are used only with both the name and the key (``choose_physical``)."""
        return bool(self.parking_logix_name) and self.parking_logix_key_set


def list_rows(session: Session, store: LiveStore, staleness: Staleness, now: datetime) -> list[LotGroupRow]:
    """Every lot group with its live state and integration settings, ordered by name."""
    states = group_states(session, store, staleness, now)
    settings = {
        group_id: (mistall_lot_id, parking_logix_name, bool(key))
        for group_id, mistall_lot_id, parking_logix_name, key in session.execute(
            select(
                LotGroup.id,
                LotGroup.mistall_lot_id,
                LotGroup.parking_logix_name,
                LotGroup.parking_logix_api_key,
            )
        )
    }
    return [LotGroupRow(state, *settings[state.group_id]) for state in states if state.group_id in settings]


@dataclass(frozen=True)
class ClosedChange:
    group_id: int
    name: str
    closed: bool
    changed: bool


def set_closed(session: Session, group_id: int, closed: bool, actor_id: int | None) -> ClosedChange:
    """Close or reopen a group. Asking for the state it already has changes and audits nothing
    (two admins pressing Close at once), and says so through ``changed``."""
    group = session.get(LotGroup, group_id)
    if group is None:
        raise NotFound(f"There is no lot group with id {group_id}.")
    if group.is_closed == closed:
        return ClosedChange(group.id, group.name, closed, changed=False)
    group.is_closed = closed
    audit.record(
        session,
        actor_id=actor_id,
        action="lot_group.close" if closed else "lot_group.open",
        entity_type="lot_group",
        entity_id=str(group.id),
        changes={"is_closed": [not closed, closed]},
    )
    session.flush()
    return ClosedChange(group.id, group.name, closed, changed=True)


def announce(client: redis.Redis, change: ClosedChange, now: datetime | None = None) -> None:
    """Publish a committed open/close on the occupancy channel. Public data only (the public API
    shows the same status); ``changed_at`` makes every announcement distinct, because pages
    ignore a message identical to the previous one."""
    message = {
        "group_id": change.group_id,
        "closed": change.closed,
        "changed_at": (now or datetime.now(UTC)).isoformat(),
    }
    _publish(client, change.group_id, message)


def _publish(client: redis.Redis, group_id: int, message: dict[str, object]) -> None:
    try:
        client.publish(CHANNEL, json.dumps(message))
    except redis.RedisError:
        log.warning("lot groups: could not announce the change of group %s", group_id, exc_info=True)


@dataclass(frozen=True)
class MistallEditor:
    """What the "Edit Mistall lot" dialog needs for one group. ``choices`` are the imported Mistall
    lots; a current id that is not among them (set before the import, or by hand) is kept as an
    extra choice marked so, so opening the dialog never silently shows it as cleared."""

    group_id: int
    name: str
    mistall_lot_id: str | None
    choices: list[tuple[str, str]]
    imported: int


def mistall_editor(session: Session, group_id: int) -> MistallEditor:
    group = session.get(LotGroup, group_id)
    if group is None:
        raise NotFound(f"There is no lot group with id {group_id}.")
    choices = vendor_lots.mistall_lot_choices(session)
    imported = len(choices)
    current = group.mistall_lot_id or None
    if current and current not in {mistall_id for mistall_id, _label in choices}:
        choices = [*choices, (current, f"{current} (not imported)")]
    return MistallEditor(group.id, group.name, current, choices, imported)


def set_mistall_lot(session: Session, group_id: int, mistall_id: str | None, actor_id: int | None) -> bool:
    """Associate the group with an imported Mistall lot, or clear the association (None or "").
    Returns whether anything changed; keeping the current id changes and audits nothing. The caller
    announces a change with ``announce_mistall_lot`` after its unit of work has committed."""
    group = session.get(LotGroup, group_id)
    if group is None:
        raise NotFound(f"There is no lot group with id {group_id}.")
    new = (mistall_id or "").strip() or None
    old = group.mistall_lot_id or None
    if new == old:
        return False
    if new is not None and new not in {lot_id for lot_id, _label in vendor_lots.mistall_lot_choices(session)}:
        raise ValidationFailed(
            {
                "Mistall lot": f"{new!r} is not an imported Mistall lot; run the Update Mistall System "
                "Job Task, then pick a lot from the list."
            }
        )
    group.mistall_lot_id = new
    audit.record(
        session,
        actor_id=actor_id,
        action="lot_group.mistall_lot",
        entity_type="lot_group",
        entity_id=str(group.id),
        changes={"mistall_lot_id": [old, new]},
    )
    session.flush()
    return True


def announce_mistall_lot(client: redis.Redis, group_id: int, now: datetime | None = None) -> None:
    """Publish a committed Mistall association change: the group's physical source may switch, so
    open pages re-read it. Public data only (which group changed, and when)."""
    message = {
        "group_id": group_id,
        "changed": "mistall_lot",
        "changed_at": (now or datetime.now(UTC)).isoformat(),
    }
    _publish(client, group_id, message)
