"""Open parking data: what anyone may read about availability, without signing in.

Three shapes of the same occupancy state (``occupancy.group_states``):

- the ParkOps list (``public_groups``): one entry per lot group shown on the map, with the figure
  the map's donut shows and each lot's permit figure. Hidden groups are absent everywhere here,
  and a closed group carries ``status: "closed"`` with null figures, never "0 % full".
- history (``history_points`` after ``parse_range``): the snapshots of one group.
- FIWARE Smart Data Models entities in key-values form, validated against the official schemas
  in the tests. The mapping:

  * a lot group is a physical place counted as one, so it is an ``OffStreetParking``
    (``urn:ngsi-ld:OffStreetParking:<site>-<group id>``) with the group's figure;
  * a lot is a permit area inside that place, so it is a ``ParkingGroup``
    (``urn:ngsi-ld:ParkingGroup:<site>-<lot id>``) whose ``refParkingSite`` is its group. Sensors
    count groups, not lots, so a ParkingGroup carries its spaces but no live availability: the
    lot's permit figure (permits sold against an allowance) is not a count of free spaces.

  ``<site>`` is the slug of the Site Name setting, so two campuses feeding one broker do not
  collide; renaming the site renames the ids. An entity needs a location (the schema requires
  it), so groups without coordinates are left out, with their lots (a ParkingGroup may not be
  orphaned). A stale figure is not published as current: the entity keeps its size and the time
  of the last observation, and drops availability and status. A flagged figure (far above
  capacity, a counter corrected from below zero) is published with ``statusFlags`` beside its
  ``status`` (``FIWARE_FLAGS``); the list has the same as ``flags``.

The list is the hot path (every map refresh of every visitor), so its JSON body is cached in
Redis by ``BodyCache`` and rebuilt every second, by a thread behind the requests, which serve the
body in hand meanwhile. ``occupancy`` also drops it (``PUBLIC_CACHE_KEY``, the same key as
``LIST_CACHE_KEY``) on every change, so a new figure shows on the next read (one request at a time
rebuilds it while the others serve the previous body); other edits (a renamed or closed group)
show within a second or two. A web process also keeps the last body it read
for a tenth of a second without asking Redis, except right after a change: it listens to the
occupancy change channel (``ChangeWatch``), so a sensor's change is in the API within milliseconds
of the ingester applying it. One group (``GroupIndex``) is read from the
same cached list, so the two never disagree.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.crypto import SecretBox
from dashboard.db import Database
from dashboard.services import occupancy, occupancy_history, system_settings
from dashboard.services.body_cache import CHANGES, BodyCache, CachedBody
from dashboard.services.errors import ValidationFailed
from dashboard.services.occupancy import Figure, GroupOccupancy, LiveStore, Policy
from models import Lot, OccupancySource

LIST_CACHE_KEY = "parkops:api:lot-groups"
log = logging.getLogger(__name__)
FIWARE_CACHE_KEY = "parkops:api:fiware:{}"
DEFAULT_HISTORY = timedelta(hours=24)
# The years a date may have in our inputs: parking happens in between, and the edges of
# ``datetime`` overflow in arithmetic (a day before 0001-01-01).
FIRST_YEAR, LAST_YEAR = 1970, 2199


def in_service_range(moment: datetime) -> bool:
    return FIRST_YEAR <= moment.year <= LAST_YEAR


MAX_HISTORY = timedelta(days=31)
# FIWARE "almostFull": a driver heading there may find nothing by the time they arrive.
ALMOST_FULL_PERCENT = 90
# A flagged count (``occupancy.FLAG_CODES``) in FIWARE's camelCase. The schema's ``status`` takes
# only DATEX II values (an enum), none of which says "this count is suspect", so the codes go in
# ``statusFlags`` beside it: the schema allows extra attributes, and a consumer reading ``status``
# finds the flag next to it.
FIWARE_FLAGS = {
    occupancy.OVER_CAPACITY: "overCapacity",
    occupancy.BELOW_ZERO: "belowZero",
    occupancy.OTHER_FLAG: "other",
}

# The public contract of the list: the map's figure, not the admin map's per-source detail.
GROUP_FIELDS = (
    "id",
    "name",
    "lat",
    "lon",
    "color",
    "status",
    "stale",
    "capacity",
    "occupied",
    "available",
    "percent",
    "source",
    "updated_at",
    "flags",
)
LOT_FIELDS = ("name", "sold", "allowance", "available", "percent", "sells_standard", "sells_temporary")


# -- the ParkOps list -------------------------------------------------------------------------------
def public_group(state: GroupOccupancy) -> dict[str, Any]:
    """One group as the public API shows it."""
    full = state.as_dict()
    group = {name: full[name] for name in GROUP_FIELDS}
    group["lots"] = [
        {"id": lot["lot_id"], **{name: lot[name] for name in LOT_FIELDS}} for lot in full["lots"]
    ]
    return group


def public_states(
    session: Session,
    store: LiveStore,
    policy: Policy,
    now: datetime,
    group_ids: Iterable[int] | None = None,
) -> list[GroupOccupancy]:
    """Current states of the groups shown on the map (or of those among ``group_ids``)."""
    states = occupancy.group_states(session, store, policy.staleness, now, group_ids)
    return [state for state in states if state.show_on_map]


def public_groups(session: Session, store: LiveStore, policy: Policy, now: datetime) -> list[dict[str, Any]]:
    return [public_group(state) for state in public_states(session, store, policy, now)]


# -- history ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryRange:
    start: datetime
    end: datetime
    source: OccupancySource | None


def parse_range(start: str | None, end: str | None, source: str | None, now: datetime) -> HistoryRange:
    """Validate the history query; raises ``ValidationFailed`` keyed by the query field's name.
    An absent field takes its default; a field sent empty (``?from=``) is refused like any other
    value that is not what the OpenAPI document says."""
    errors: dict[str, str] = {}
    end_at = _parse_instant("to", end, errors) if end is not None else now
    start_at = _parse_instant("from", start, errors) if start is not None else None
    chosen: OccupancySource | None = None
    if source is not None:
        try:
            chosen = OccupancySource(source)
        except ValueError:
            errors["source"] = "must be one of " + ", ".join(s.value for s in OccupancySource)
    if errors:
        raise ValidationFailed(errors)
    assert end_at is not None  # parsed without an error
    start_at = start_at or end_at - DEFAULT_HISTORY
    if start_at > end_at:
        raise ValidationFailed({"from": "must not be after 'to'"})
    if end_at - start_at > MAX_HISTORY:
        raise ValidationFailed({"from": f"the range may span at most {MAX_HISTORY.days} days"})
    return HistoryRange(start_at, end_at, chosen)


_SPACED_OFFSET = re.compile(r" (\d{2}(?::?\d{2})?)$")


def _parse_instant(name: str, value: str, errors: dict[str, str]) -> datetime | None:
    # An unencoded "+01:00" in a query string arrives as " 01:00": read it as the offset it was.
    text = _SPACED_OFFSET.sub(r"+\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        errors[name] = "not an ISO-8601 date-time (e.g. 2025-01-31T08:00:00Z)"
        return None
    if parsed.tzinfo is None:
        errors[name] = "must include a time zone (Z or an offset such as +00:00)"
        return None
    if not in_service_range(parsed):
        errors[name] = f"must be between the years {FIRST_YEAR} and {LAST_YEAR}"
        return None
    return parsed.astimezone(UTC)


def history_points(session: Session, group_id: int, window: HistoryRange) -> list[dict[str, Any]]:
    points = occupancy_history.history(session, group_id, window.start, window.end, window.source)
    return [
        {
            "recorded_at": iso_utc(point.recorded_at),
            "source": point.source,
            "occupied": point.occupied,
            "capacity": point.capacity,
            "percent": round(100.0 * point.occupied / point.capacity, 1) if point.capacity > 0 else None,
        }
        for point in points
    ]


# -- FIWARE -----------------------------------------------------------------------------------------
def site_id(session: Session, secrets: SecretBox) -> str:
    """The ``<site>`` part of entity ids: the Site Name setting as a slug."""
    name = str(system_settings.get(session, secrets, "site_name"))
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "parkops"


def off_street_parking_id(site: str, group_id: int) -> str:
    return f"urn:ngsi-ld:OffStreetParking:{site}-{group_id}"


def parking_group_id(site: str, lot_id: int) -> str:
    return f"urn:ngsi-ld:ParkingGroup:{site}-{lot_id}"


def off_street_parkings(states: Iterable[GroupOccupancy], site: str) -> list[dict[str, Any]]:
    """One ``OffStreetParking`` per mapped group with coordinates."""
    return [_off_street_parking(state, site) for state in states if _located(state)]


def _located(state: GroupOccupancy) -> bool:
    return state.latitude is not None and state.longitude is not None


def _off_street_parking(state: GroupOccupancy, site: str) -> dict[str, Any]:
    figure = state.primary
    entity: dict[str, Any] = {
        "id": off_street_parking_id(site, state.group_id),
        "type": "OffStreetParking",
        "name": state.name,
        "location": _point(state.latitude, state.longitude),
        "allowedVehicleType": ["car"],
    }
    category = _group_category(state)
    if category:
        entity["category"] = category
    if figure.capacity > 0:
        entity["totalSpotNumber"] = figure.capacity
    if figure.updated_at is not None:
        entity["observationDateTime"] = iso_utc(figure.updated_at)
    if state.closed:
        entity["status"] = ["closed"]
        return entity
    if figure.stale:
        return entity
    if figure.source is OccupancySource.PERMITS:
        # Availability estimated from permits sold, not counted at the gates.
        entity["occupancyDetectionType"] = ["modelBased"]
    entity["availableSpotNumber"] = figure.available
    entity["occupiedSpotNumber"] = figure.occupied
    if figure.updated_at is not None:
        entity["occupancyModified"] = iso_utc(figure.updated_at)
    if figure.capacity > 0:
        entity["occupancy"] = min(round(figure.occupied / figure.capacity, 3), 1.0)
    entity["status"] = [_open_status(figure)]
    if figure.flags:
        entity["statusFlags"] = [FIWARE_FLAGS[code] for code in figure.flags]
    return entity


def _open_status(figure: Figure) -> str:
    """DATEX II wording, as the schema's ``status`` enum has it."""
    if figure.capacity > 0 and figure.available == 0:
        return "full"
    if figure.percent is not None and figure.percent >= ALMOST_FULL_PERCENT:
        return "almostFull"
    return "open"


def _group_category(state: GroupOccupancy) -> list[str]:
    """What the lots sell says who parks: term permits mean long stays by permit holders,
    temporary (hourly, daily) options mean visitors may park for short stays."""
    standard = any(lot.sells_standard for lot in state.lots)
    temporary = any(lot.sells_temporary for lot in state.lots)
    category = []
    if standard:
        category.append("longTerm")
    if temporary:
        category += ["shortTerm", "forVisitors"]
    elif standard:
        category.append("onlyWithPermit")
    return category


def parking_groups(session: Session, states: Iterable[GroupOccupancy], site: str) -> list[dict[str, Any]]:
    """One ``ParkingGroup`` per active lot of a mapped, located group."""
    parents = {state.group_id: state for state in states if _located(state)}
    if not parents:
        return []
    lots = session.scalars(
        select(Lot).where(Lot.lot_group_id.in_(list(parents)), Lot.is_active).order_by(Lot.name)
    )
    return [_parking_group(lot, parents[lot.lot_group_id], site) for lot in lots]  # type: ignore[index]


def _parking_group(lot: Lot, parent: GroupOccupancy, site: str) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "id": parking_group_id(site, lot.id),
        "type": "ParkingGroup",
        "name": lot.name,
        "refParkingSite": off_street_parking_id(site, parent.group_id),
        "allowedVehicleType": "car",
        "category": ["offStreet"] + (["onlyWithPermit"] if not lot.sells_temporary else []),
    }
    if lot.description:
        entity["description"] = lot.description
    if lot.latitude is not None and lot.longitude is not None:
        entity["location"] = _point(lot.latitude, lot.longitude)
    if lot.capacity > 0:
        entity["totalSpotNumber"] = lot.capacity
    charges = (["seasonTicket"] if lot.sells_standard else []) + (
        ["temporaryPrice"] if lot.sells_temporary else []
    )
    if charges:
        entity["chargeType"] = charges
    return entity


def _point(latitude: float | None, longitude: float | None) -> dict[str, Any]:
    """GeoJSON: longitude first."""
    return {"type": "Point", "coordinates": [longitude, latitude]}


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def dump(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def list_cache(client: redis.Redis) -> BodyCache:
    return BodyCache(client, LIST_CACHE_KEY)


def cached_list(
    database: Database,
    client: redis.Redis,
    secrets: SecretBox,
    now: Callable[[], datetime],
    *,
    fresh: bool = False,
    held: str | None = None,
) -> CachedBody:
    """The list's body (``{"lot_groups": [...]}``), shared by the API and the user map's refresh:
    built at most once a second for every process together (``BodyCache``; ``fresh`` as there)."""

    def build() -> bytes:
        with database.session() as session:
            policy = occupancy.load_policy(session, secrets)
            return dump({"lot_groups": public_groups(session, LiveStore(client), policy, now())})

    CHANGES.watch(client)
    return list_cache(client).get(build, fresh=fresh, held=held)


def fiware_cache(client: redis.Redis, entity_type: str) -> BodyCache:
    return BodyCache(client, FIWARE_CACHE_KEY.format(entity_type))


class GroupIndex:
    """One group out of the cached list, so ``/lot-groups/<id>`` reads the same snapshot as the
    list for the cost of a cache hit instead of four queries. Each process parses a list body
    once (per ETag) and keeps it indexed by id."""

    def __init__(self) -> None:
        self._memo: tuple[str, dict[int, bytes]] = ("", {})

    def group(self, cached: CachedBody, group_id: int) -> bytes | None:
        etag, index = self._memo
        if etag != cached.etag:
            index = {group["id"]: dump(group) for group in json.loads(cached.body)["lot_groups"]}
            self._memo = (cached.etag, index)
        return index.get(group_id)
