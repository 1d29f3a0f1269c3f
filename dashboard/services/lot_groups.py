"""Lot groups as the Manage Parking Lot Groups screen sees them, and opening or closing one.

The figures come from ``occupancy.group_states`` (one source of truth for precedence and
staleness); this module adds the integration settings that screen shows beside them: the Mistall
lot id and the Parking Logix name (the seed: "it must match exactly"), and whether a Parking Logix
key is set: never the key itself.

Closing a group is what an admin does when a garage shuts: the maps then say "closed" instead of
"0% full". The change is published on ``occupancy.CHANNEL`` like a new count, so open pages
refresh; the caller publishes with ``announce`` after its unit of work has committed, so no page
re-reads the old state.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.services import audit
from dashboard.services.errors import NotFound
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
    try:
        client.publish(CHANNEL, json.dumps(message))
    except redis.RedisError:
        log.warning("lot groups: could not announce the change of group %s", change.group_id, exc_info=True)
