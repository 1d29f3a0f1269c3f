"""What the user-side real-time map and the lot group page show (no Flask, no Dash here).

The seed (Real-Time Maps > User-Side Map, User-Side Lot Group Page):

- one pin per lot group shown on the map, in the group's map colour;
- a donut of the group's *availability*: the physical figure (Mistall, Parking Logix, live
  sensors) when there is one, else the collated permit counts of its lots
  (``GroupOccupancy.primary``). A closed group has no figure (it is closed, not "0 % free");
- below it each lot's permit figure as a percentage (not numbers: leeway for inaccuracy) and
  which permits it offers: guests (not logged in) see only temporary permits, logged-in users
  standard and temporary.

Everything here is public data (the open API publishes the same figures); what depends on the
visitor is only which permit options are offered, from ``logged_in``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from dashboard.services import open_data
from dashboard.services.errors import NotFound
from dashboard.services.occupancy import GroupOccupancy, LiveStore, LotPermits, Policy


@dataclass(frozen=True)
class UserMapLot:
    lot_id: int
    name: str
    percent_full: float | None
    offers_standard: bool
    offers_temporary: bool

    @property
    def offers_any(self) -> bool:
        return self.offers_standard or self.offers_temporary


@dataclass(frozen=True)
class UserMapGroup:
    group_id: int
    name: str
    color: str
    lat: float | None
    lon: float | None
    status: str  # "open", "closed" or "stale"
    percent_available: float | None
    lots: tuple[UserMapLot, ...]

    @property
    def located(self) -> bool:
        return self.lat is not None and self.lon is not None


def _percent_available(state: GroupOccupancy) -> float | None:
    if state.closed:
        return None
    return _available(state.primary.percent)


def _available(percent_full: float | None) -> float | None:
    return None if percent_full is None else round(max(0.0, 100.0 - percent_full), 1)


def _lot(lot: LotPermits, *, logged_in: bool) -> UserMapLot:
    return UserMapLot(
        lot_id=lot.lot_id,
        name=lot.name,
        percent_full=lot.percent,
        offers_standard=logged_in and lot.sells_standard,
        offers_temporary=lot.sells_temporary,
    )


def _group(state: GroupOccupancy, *, logged_in: bool) -> UserMapGroup:
    return UserMapGroup(
        group_id=state.group_id,
        name=state.name,
        color=state.map_color,
        lat=state.latitude,
        lon=state.longitude,
        status=state.status,
        percent_available=_percent_available(state),
        lots=tuple(_lot(lot, logged_in=logged_in) for lot in state.lots),
    )


def from_public_list(groups: list[dict[str, Any]], *, logged_in: bool) -> list[UserMapGroup]:
    """The map's groups from the open API's list (``open_data.public_group`` entries): the map
    shows exactly what the API publishes, and can reuse its cached body (``open_data.cached_list``)
    instead of reading the database and Redis on every refresh of every open map."""
    found = []
    for group in groups:
        if group["lat"] is None or group["lon"] is None:
            continue
        if not any(lot["sells_standard"] or lot["sells_temporary"] for lot in group["lots"]):
            # A group just made, or whose lots sell nothing: a pin with "No data" and nothing to
            # book tells a driver nothing. It shows once one of its lots sells a permit.
            continue
        closed = group["status"] == "closed"
        lots = tuple(
            UserMapLot(
                lot_id=lot["id"],
                name=lot["name"],
                percent_full=lot["percent"],
                offers_standard=logged_in and bool(lot["sells_standard"]),
                offers_temporary=bool(lot["sells_temporary"]),
            )
            for lot in group["lots"]
        )
        found.append(
            UserMapGroup(
                group_id=group["id"],
                name=group["name"],
                color=group["color"],
                lat=group["lat"],
                lon=group["lon"],
                status=group["status"],
                percent_available=None if closed else _available(group["percent"]),
                lots=lots,
            )
        )
    return found


def user_map_groups(
    session: Session, store: LiveStore, policy: Policy, now: datetime, *, logged_in: bool
) -> list[UserMapGroup]:
    """Every group shown on the map that has a location, ordered by name."""
    return from_public_list(open_data.public_groups(session, store, policy, now), logged_in=logged_in)


def lot_group_page(
    session: Session, store: LiveStore, policy: Policy, now: datetime, group_id: int, *, logged_in: bool
) -> UserMapGroup:
    """One group for its public page; ``NotFound`` for an unknown or hidden group."""
    states = open_data.public_states(session, store, policy, now, [group_id])
    if not states:
        raise NotFound(f"lot group {group_id} not found")
    return _group(states[0], logged_in=logged_in)
