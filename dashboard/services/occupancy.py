"""One occupancy state per lot group, from every source, with the seed's precedence.

Sources (``models.OccupancySource``):
- ``mistall`` and ``parking_logix``: vendor counts pulled by system tasks;
- ``devices``: live MQTT counters and space sensors (``workers.ingest``);
- ``permits``: the "collated counts of the lots": valid permits sold against each lot's allowance.

Precedence of the physical figure (what the maps' donut shows): Mistall when the group has a
Mistall lot, else Parking Logix when the group has a Parking Logix name and key, else the live
devices, else none, and then the permit figure stands in, as the seed does for groups without
sensor data. The permit figure is always kept beside it: the admin map shows both on purpose.

Where things live: the current figure of each (group, source) is a JSON field in the Redis hash
``parkops:occ:group:<id>`` (fast reads, shared by every process); every change is published on
``CHANNEL``; history goes to ``occupancy_snapshots`` at a fixed interval (the Occupancy Snapshots
task) and at once when a figure moves by more than a set step.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard.crypto import SecretBox
from dashboard.services import system_settings
from dashboard.services.live_channel import CHANNEL
from models import Lot, LotGroup, OccupancySnapshot, OccupancySource, Permit, PermitStatus

log = logging.getLogger(__name__)

GROUP_KEY = "parkops:occ:group:{}"
SNAPSHOT_KEY = "parkops:occ:snapshotted:{}"
# The public list's cached body (dashboard.services.open_data): dropped on every change, so a
# change is visible at once rather than after the cache's lifetime.
PUBLIC_CACHE_KEY = "parkops:api:lot-groups"
# The staff screens' cached body (``dashboard.services.lot_status``), dropped with it.
STAFF_CACHE_KEY = "parkops:live:lot-status"
# Each body's count of changes (``<key>:changes``): a rebuild that read the data before a change
# must not store its body as the current one (``body_cache.BodyCache``).
CHANGES_SUFFIX = ":changes"
PHYSICAL = (OccupancySource.MISTALL, OccupancySource.PARKING_LOGIX, OccupancySource.DEVICES)


@dataclass(frozen=True)
class Staleness:
    """How long each source may stay silent before its figure is marked stale (seconds)."""

    mistall: int = 25 * 60
    parking_logix: int = 15 * 60
    devices: int = 60 * 60

    def limit(self, source: OccupancySource) -> int | None:
        return {
            OccupancySource.MISTALL: self.mistall,
            OccupancySource.PARKING_LOGIX: self.parking_logix,
            OccupancySource.DEVICES: self.devices,
        }.get(source)


@dataclass(frozen=True)
class Policy:
    """The admin's occupancy settings (System Settings > Occupancy), read once per run or refresh."""

    staleness: Staleness
    step_percent: int
    flag_above_percent: int


def load_policy(session: Session, secrets: SecretBox) -> Policy:
    values = system_settings.get_many(
        session,
        secrets,
        [
            "occupancy_stale_mistall_minutes",
            "occupancy_stale_parking_logix_minutes",
            "occupancy_stale_devices_minutes",
            "occupancy_snapshot_step_percent",
            "occupancy_flag_above_percent",
        ],
    )
    return Policy(
        staleness=Staleness(
            mistall=int(values["occupancy_stale_mistall_minutes"]) * 60,
            parking_logix=int(values["occupancy_stale_parking_logix_minutes"]) * 60,
            devices=int(values["occupancy_stale_devices_minutes"]) * 60,
        ),
        step_percent=int(values["occupancy_snapshot_step_percent"]),
        flag_above_percent=int(values["occupancy_flag_above_percent"]),
    )


# A flagged figure carries words for admins (``Figure.flag``, made by ``capacity_flag`` or the
# ingester's ``BELOW_ZERO_FLAG``) and codes for machines (``Figure.flags``, in the open-data API).
OVER_CAPACITY = "over_capacity"
BELOW_ZERO = "below_zero"
OTHER_FLAG = "other"  # a flag made elsewhere: published as "other" rather than hidden
FLAG_CODES = (OVER_CAPACITY, BELOW_ZERO, OTHER_FLAG)
BELOW_ZERO_FLAG = "a counter went below zero and was corrected to 0"
_OVER_CAPACITY_WORDS = "% of capacity: the count may have drifted"


def capacity_flag(occupied: int, capacity: int, policy: Policy) -> str | None:
    """The sanity flag of a count: far above capacity means a drifted counter or a wrong capacity;
    the figure is kept as reported and shown flagged, never silently clamped."""
    if capacity > 0 and occupied * 100 > capacity * policy.flag_above_percent:
        return f"above {policy.flag_above_percent}{_OVER_CAPACITY_WORDS}"
    return None


def flag_codes(flag: str | None) -> list[str]:
    """The codes of a figure's flag (``FLAG_CODES``); [] when it has none."""
    if not flag:
        return []
    if flag == BELOW_ZERO_FLAG:
        return [BELOW_ZERO]
    if flag.startswith("above ") and flag.endswith(_OVER_CAPACITY_WORDS):
        return [OVER_CAPACITY]
    return [OTHER_FLAG]


@dataclass(frozen=True)
class Figure:
    source: OccupancySource
    occupied: int
    capacity: int
    updated_at: datetime | None
    stale: bool = False
    flag: str | None = None

    @property
    def available(self) -> int:
        return max(self.capacity - self.occupied, 0)

    @property
    def percent(self) -> float | None:
        """Percent full; None when the capacity is unknown (0)."""
        if self.capacity <= 0:
            return None
        return round(100.0 * self.occupied / self.capacity, 1)

    @property
    def flags(self) -> list[str]:
        return flag_codes(self.flag)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "occupied": self.occupied,
            "capacity": self.capacity,
            "available": self.available,
            "percent": self.percent,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "stale": self.stale,
            "flag": self.flag,
            "flags": self.flags,
        }


@dataclass(frozen=True)
class LotPermits:
    """One lot's permit figure: valid permits sold against what the manager allows."""

    lot_id: int
    name: str
    sold: int
    allowance: int
    sells_standard: bool
    sells_temporary: bool

    @property
    def available(self) -> int:
        return max(self.allowance - self.sold, 0)

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.sold / self.allowance, 1) if self.allowance > 0 else None


@dataclass(frozen=True)
class GroupOccupancy:
    group_id: int
    name: str
    map_color: str
    latitude: float | None
    longitude: float | None
    show_on_map: bool
    closed: bool
    physical: Figure | None
    permits: Figure
    sources: tuple[Figure, ...] = ()
    lots: tuple[LotPermits, ...] = field(default_factory=tuple)

    @property
    def primary(self) -> Figure:
        """What the donut and the public API show: the physical figure, else the permit figure."""
        return self.physical or self.permits

    @property
    def status(self) -> str:
        """``closed`` (an admin closed it: not "0% full"), ``stale`` or ``open``."""
        if self.closed:
            return "closed"
        return "stale" if self.primary.stale else "open"

    def as_dict(self) -> dict[str, Any]:
        primary = self.primary
        return {
            "id": self.group_id,
            "name": self.name,
            "color": self.map_color,
            "lat": self.latitude,
            "lon": self.longitude,
            "show_on_map": self.show_on_map,
            "status": self.status,
            "closed": self.closed,
            "stale": primary.stale,
            "source": str(primary.source),
            "capacity": None if self.closed else primary.capacity,
            "occupied": None if self.closed else primary.occupied,
            "available": None if self.closed else primary.available,
            "percent": None if self.closed else primary.percent,
            "updated_at": primary.updated_at.isoformat() if primary.updated_at else None,
            "flags": [] if self.closed else primary.flags,
            "physical": self.physical.as_dict() if self.physical else None,
            "permits": self.permits.as_dict(),
            "sources": [figure.as_dict() for figure in self.sources],
            "lots": [
                {**asdict(lot), "available": lot.available, "percent": lot.percent} for lot in self.lots
            ],
        }


class LiveStore:
    """Current figures in Redis. Plain values in and out, so every process shares one view."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def record(
        self,
        group_id: int,
        source: OccupancySource,
        occupied: int,
        capacity: int,
        ts: datetime,
        flag: str | None = None,
    ) -> Figure | None:
        """Store a figure; return the previous one (None if there was none)."""
        return self.record_many([FigureUpdate(group_id, source, occupied, capacity, ts, flag)])[0]

    def record_many(self, updates: list[FigureUpdate]) -> list[Figure | None]:
        """Store several figures in one round trip; return the previous ones."""
        pipe = self.redis.pipeline(transaction=False)
        for update in updates:
            key = GROUP_KEY.format(update.group_id)
            value = {
                "occupied": int(update.occupied),
                "capacity": int(update.capacity),
                "ts": update.ts.timestamp(),
                "flag": update.flag,
            }
            if update.restored:
                value["restored"] = True
            pipe.hget(key, str(update.source))
            pipe.hset(key, str(update.source), json.dumps(value))
        answers = pipe.execute()
        return [
            _figure(update.source, before) if before else None
            for update, before in zip(updates, answers[::2], strict=True)
        ]

    def forget(self, group_id: int, source: OccupancySource) -> None:
        self.redis.hdel(GROUP_KEY.format(group_id), str(source))

    def read(self, group_ids: Iterable[int]) -> dict[int, dict[OccupancySource, Figure]]:
        ids = list(group_ids)
        pipe = self.redis.pipeline()
        for group_id in ids:
            pipe.hgetall(GROUP_KEY.format(group_id))
        result: dict[int, dict[OccupancySource, Figure]] = {}
        for group_id, raw in zip(ids, pipe.execute(), strict=True):
            figures: dict[OccupancySource, Figure] = {}
            for name, value in raw.items():
                try:
                    source = OccupancySource(name.decode() if isinstance(name, bytes) else name)
                except ValueError:
                    continue
                figures[source] = _figure(source, value)
            result[group_id] = figures
        return result


def _figure(source: OccupancySource, raw: bytes | str) -> Figure:
    """A stored figure; one restored from saved state (see ``restore_figures``) reads as stale
    whatever its age, until its source reports again."""
    data = json.loads(raw)
    return Figure(
        source=source,
        occupied=int(data["occupied"]),
        capacity=int(data["capacity"]),
        updated_at=datetime.fromtimestamp(float(data["ts"]), UTC),
        stale=bool(data.get("restored")),
        flag=data.get("flag"),
    )


@dataclass(frozen=True)
class FigureUpdate:
    group_id: int
    source: OccupancySource
    occupied: int
    capacity: int
    ts: datetime
    flag: str | None = None
    restored: bool = False

    @property
    def figure(self) -> Figure:
        return Figure(
            self.source, int(self.occupied), int(self.capacity), self.ts, self.restored, flag=self.flag
        )


def apply_figure(
    session: Session,
    store: LiveStore,
    group_id: int,
    source: OccupancySource,
    occupied: int,
    capacity: int,
    ts: datetime,
    *,
    step_percent: int,
    flag: str | None = None,
) -> bool:
    """Record one new figure (see ``apply_figures``); returns whether it changed."""
    update = FigureUpdate(group_id, source, occupied, capacity, ts, flag)
    return bool(apply_figures(session, store, [update], step_percent=step_percent))


def apply_figures(
    session: Session, store: LiveStore, updates: list[FigureUpdate], *, step_percent: int
) -> set[int]:
    """Record new figures, publish those that changed, and write a history row for each that moved
    by at least ``step_percent`` points since its last row. Three Redis round trips whatever the
    number of updates: the ingester calls this once per batch. Returns the changed group ids."""
    if not updates:
        return set()
    previous = store.record_many(updates)
    changed = [
        update
        for update, before in zip(updates, previous, strict=True)
        if before is None
        or before.stale  # a restored figure that its source now confirms is news: live again
        or (before.occupied, before.capacity, before.flag) != (update.occupied, update.capacity, update.flag)
    ]
    if not changed:
        return set()
    marks = store.redis.pipeline(transaction=False)
    for update in changed:
        marks.hget(SNAPSHOT_KEY.format(update.group_id), str(update.source))
    pipe = store.redis.pipeline(transaction=False)
    drop_cached_bodies(pipe)
    written = False
    for update, last in zip(changed, marks.execute(), strict=True):
        figure = update.figure
        pipe.publish(CHANNEL, json.dumps({"group_id": update.group_id, **figure.as_dict()}))
        percent = figure.percent if figure.percent is not None else 0.0
        if last is None or abs(percent - float(last)) >= step_percent:
            _write_snapshot(session, update.group_id, figure)
            pipe.hset(SNAPSHOT_KEY.format(update.group_id), str(update.source), percent)
            written = True
    if written:
        # A history row the database refuses must not leave its mark behind: the caller's retry
        # would then see no step and never write it.
        session.flush()
    try:
        pipe.execute()
    except redis.RedisError:
        log.warning("occupancy: could not publish %d changes", len(changed), exc_info=True)
    return {update.group_id for update in changed}


def drop_cached_bodies(pipe: redis.client.Pipeline) -> None:
    """Drop the cached bodies that show live figures, and count the change for each."""
    for key in (PUBLIC_CACHE_KEY, STAFF_CACHE_KEY):
        pipe.delete(key)
        pipe.incr(key + CHANGES_SUFFIX)


def restore_figures(store: LiveStore, updates: list[FigureUpdate]) -> None:
    """Put back figures that Redis lost (a restart without persistence), rebuilt from saved state:
    recorded as restored (every reader sees them stale, never as a live figure, until their
    source reports again and ``apply_figures`` replaces them) and published, with no history row,
    since nothing was measured."""
    if not updates:
        return
    restored = [
        FigureUpdate(u.group_id, u.source, u.occupied, u.capacity, u.ts, u.flag, restored=True)
        for u in updates
    ]
    store.record_many(restored)
    pipe = store.redis.pipeline(transaction=False)
    drop_cached_bodies(pipe)
    for update in restored:
        pipe.publish(CHANNEL, json.dumps({"group_id": update.group_id, **update.figure.as_dict()}))
    pipe.execute()


def announce_changes(
    client: redis.Redis, messages: Iterable[Mapping[str, object]], now: datetime | None = None
) -> None:
    """Tell open pages that settings behind some groups changed (a group closed, moved, deleted;
    a lot's allowance or group), after the change has committed: drop the public list's and the
    staff screens' cached bodies first, so the refresh each message triggers reads the change, then
    publish one message per change. Public data only; ``changed_at`` keeps each message distinct
    (pages ignore one identical to the previous). A Redis outage is logged: the change itself is
    saved, and pages see it on their next poll."""
    moment = (now or datetime.now(UTC)).isoformat()
    pipe = client.pipeline(transaction=False)
    drop_cached_bodies(pipe)
    for message in messages:
        pipe.publish(CHANNEL, json.dumps({**message, "changed_at": moment}))
    try:
        pipe.execute()
    except redis.RedisError:
        log.warning("occupancy: could not announce a change", exc_info=True)


def _write_snapshot(session: Session, group_id: int, figure: Figure) -> None:
    session.add(
        OccupancySnapshot(
            lot_group_id=group_id,
            source=figure.source,
            occupied=figure.occupied,
            capacity=figure.capacity,
            recorded_at=figure.updated_at or datetime.now(UTC),
        )
    )


def record_snapshots(
    session: Session, store: LiveStore, states: Iterable[GroupOccupancy], now: datetime
) -> int:
    """The periodic history: one row per group and source with data, including the permit figure."""
    rows = 0
    for state in states:
        for figure in (*state.sources, state.permits):
            _write_snapshot(
                session, state.group_id, Figure(figure.source, figure.occupied, figure.capacity, now)
            )
            if figure.source is not OccupancySource.PERMITS:
                store.redis.hset(
                    SNAPSHOT_KEY.format(state.group_id), str(figure.source), figure.percent or 0.0
                )
            rows += 1
    return rows


def permit_counts(session: Session, now: datetime, lot_ids: Iterable[int] | None = None) -> dict[int, int]:
    """Valid lot permits per lot at ``now`` (zone permits count in no single lot's allowance)."""
    query = (
        select(Permit.lot_id, func.count(Permit.id))
        .where(
            Permit.status == PermitStatus.ACTIVE,
            Permit.lot_id.is_not(None),
            Permit.valid_from <= now,
            Permit.valid_to > now,
        )
        .group_by(Permit.lot_id)
    )
    if lot_ids is not None:
        query = query.where(Permit.lot_id.in_(list(lot_ids)))
    return {lot_id: count for lot_id, count in session.execute(query) if lot_id is not None}


class SourceSettings(Protocol):
    """What of a lot group says which source its physical figure comes from: a ``LotGroup``, or
    a row of ``group_states``' query."""

    @property
    def mistall_lot_id(self) -> str | None: ...

    @property
    def parking_logix_name(self) -> str | None: ...

    @property
    def parking_logix_api_key(self) -> str | None: ...


def choose_physical(group: SourceSettings, figures: Mapping[OccupancySource, Figure]) -> Figure | None:
    """The seed's precedence; a source the group is configured for wins even when stale (the
    staleness shows), rather than silently switching to another source."""
    if group.mistall_lot_id and OccupancySource.MISTALL in figures:
        return figures[OccupancySource.MISTALL]
    if group.parking_logix_name and group.parking_logix_api_key and OccupancySource.PARKING_LOGIX in figures:
        return figures[OccupancySource.PARKING_LOGIX]
    return figures.get(OccupancySource.DEVICES)


def group_states(
    session: Session,
    store: LiveStore,
    staleness: Staleness,
    now: datetime,
    group_ids: Iterable[int] | None = None,
) -> list[GroupOccupancy]:
    """The full state of every lot group (or of ``group_ids``), ordered by name.

    Read as plain rows, not ORM objects: at 5,000 groups, loading them as ``LotGroup`` and ``Lot``
    instances (identity map, collections) took 324-589 ms, most of a rebuild of the map's list;
    as rows, 86-213 ms (``bench/pages.py``: the 5,000-pin map from navigation, 896 -> 577 ms)."""
    ids = None if group_ids is None else list(group_ids)
    group_query = select(
        LotGroup.id,
        LotGroup.name,
        LotGroup.map_color,
        LotGroup.latitude,
        LotGroup.longitude,
        LotGroup.show_on_map,
        LotGroup.is_closed,
        LotGroup.mistall_lot_id,
        LotGroup.parking_logix_name,
        LotGroup.parking_logix_api_key,
    ).order_by(LotGroup.name)
    lot_query = (
        select(
            Lot.lot_group_id,
            Lot.id,
            Lot.name,
            Lot.allowance,
            Lot.sells_standard,
            Lot.sells_temporary,
        )
        .where(Lot.is_active, Lot.lot_group_id.is_not(None))
        .order_by(Lot.name)
    )
    if ids is not None:
        group_query = group_query.where(LotGroup.id.in_(ids))
        lot_query = lot_query.where(Lot.lot_group_id.in_(ids))
    groups = session.execute(group_query).all()
    sold = permit_counts(session, now)
    lots_of: dict[int, list[LotPermits]] = {}
    for group_id, lot_id, name, allowance, standard, temporary in session.execute(lot_query):
        assert group_id is not None  # the query's own condition
        lots_of.setdefault(group_id, []).append(
            LotPermits(lot_id, name, sold.get(lot_id, 0), allowance, standard, temporary)
        )
    live = store.read(group.id for group in groups)
    states = []
    for group in groups:
        figures = {
            source: _with_staleness(figure, staleness, now) for source, figure in live[group.id].items()
        }
        lots = tuple(lots_of.get(group.id, ()))
        permits = Figure(
            OccupancySource.PERMITS,
            sum(lot.sold for lot in lots),
            sum(lot.allowance for lot in lots),
            now,
        )
        states.append(
            GroupOccupancy(
                group_id=group.id,
                name=group.name,
                map_color=group.map_color,
                latitude=group.latitude,
                longitude=group.longitude,
                show_on_map=group.show_on_map,
                closed=group.is_closed,
                physical=choose_physical(group, figures),
                permits=permits,
                sources=tuple(figures[source] for source in PHYSICAL if source in figures),
                lots=lots,
            )
        )
    return states


def _with_staleness(figure: Figure, staleness: Staleness, now: datetime) -> Figure:
    limit = staleness.limit(figure.source)
    if limit is None or figure.updated_at is None:
        return figure
    stale = figure.stale or now - figure.updated_at > timedelta(seconds=limit)
    return Figure(figure.source, figure.occupied, figure.capacity, figure.updated_at, stale, figure.flag)
