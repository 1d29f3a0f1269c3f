"""What the staff screens show, as one body the browser draws: ``GET /live/lot-status.json``.

The Real-Time Map (Admin) and the officers' Lot Status page read the same figures: every lot
group's physical count (Mistall, else Parking Logix, else the live sensors) with its source, age,
stale and flag marks, and the permits sold against each lot's allowance. Both pages draw them in
the browser (``assets/staff_live.js``) from this one body instead of a Dash callback building every
pin, popup, row and card per refresh per officer: the body is built at most once a second for every
web process together (``BodyCache`` under ``occupancy.STAFF_CACHE_KEY``, which ``occupancy`` drops
on every change) and all staff share it.

Everything a screen says is worded here (``dashboard.services.wording``), so the browser only lays
it out. Relative times ("updated 12s ago") are computed when the body is built, so they are as old
as the body: at most a second behind on a refresh, and they do not tick on between refreshes (a
refresh comes at least every 15 s, and at once on a change). A body whose figures are all older
than a minute stays the same from one build to the next, so browsers holding it get ``304``.

The body is for officers and up only (the route checks the role); it holds no personal data.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis

from dashboard.crypto import SecretBox
from dashboard.db import Database
from dashboard.services import body_cache, maps, occupancy, open_data
from dashboard.services.occupancy import Figure, GroupOccupancy, LiveStore, LotPermits
from dashboard.services.wording import ago, percent, source_label

DIFFER_NOTE = (
    "The physical count and the permits sold are meant to differ: one is the cars present, "
    "the other the permits sold against each lot's allowance."
)
NO_PHYSICAL = "No sensor data for this group: the map uses the permit count below."
# Around the pins when the map is fitted to them: one pin alone would otherwise zoom in all the way.
BOUNDS_PAD = 0.002


def on_map(state: GroupOccupancy) -> bool:
    return state.show_on_map and state.latitude is not None and state.longitude is not None


def fullness(state: GroupOccupancy, lot: LotPermits) -> float | None:
    """What the officers' sort orders by: the group's physical percent, else the lot's permit
    percent; None for a closed group (sorted last) or a lot with no figure at all."""
    if state.closed:
        return None
    if state.physical is not None and state.physical.percent is not None:
        return state.physical.percent
    return lot.percent


def _physical(figure: Figure | None, now: datetime) -> dict[str, Any] | None:
    """One figure, worded for each place it shows: the admin popup, the admin table and the
    officer card (each reads differently in its space)."""
    if figure is None:
        return None
    source, updated = source_label(figure), f"updated {ago(figure.updated_at, now)}"
    full = percent(figure.percent)
    return {
        "heading": f"Physical count ({source})",
        "count": f"{figure.occupied} / {figure.capacity}",
        "popup": f" occupied · {figure.available} available · {full} full",
        "table": f" ({source}, {figure.available} available, {full}, {updated})",
        "officer": f" · {full} full · {figure.available} free",
        "origin": f"{source} · {updated}",
        "updated": updated,
        "stale": figure.stale,
        "flag": figure.flag,
    }


def _lot(state: GroupOccupancy, lot: LotPermits) -> dict[str, Any]:
    return {
        "id": lot.lot_id,
        "name": lot.name,
        "sold": lot.sold,
        "allowance": lot.allowance,
        "available": lot.available,
        "permits": f"{lot.sold} / {lot.allowance}",
        "left": f" sold · {lot.available} left",
        "line": f"{lot.name}: {lot.sold} / {lot.allowance} sold, {lot.available} available",
        "fullness": fullness(state, lot),
    }


def _group(state: GroupOccupancy, now: datetime) -> dict[str, Any]:
    permits = state.permits
    return {
        "id": state.group_id,
        "name": state.name,
        "color": state.map_color,
        "closed": state.closed,
        "status": "Closed" if state.closed else state.status.title(),
        "on_map": on_map(state),
        "tooltip": f"{state.name}: Closed" if state.closed else state.name,
        "physical": _physical(state.physical, now),
        "permits": f"{permits.occupied} / {permits.capacity} sold · {permits.available} available",
        "permits_sold": f"{permits.occupied} / {permits.capacity} sold",
        "lots": [_lot(state, lot) for lot in state.lots],
    }


def lot_status_payload(states: list[GroupOccupancy], now: datetime) -> dict[str, Any]:
    """Every group (ordered by name, as ``group_states`` gives them) with its lots, the pins of
    those on the map as GeoJSON points (``[lon, lat]``; a pin's figures are looked up by its id in
    ``groups``, so the map layer's data changes only when a pin appears, moves or closes), the
    bounds to fit the map to, and the names of the groups not on the map. ``now`` is the moment
    relative times are worded against: the body's build."""
    shown = [state for state in states if on_map(state)]
    hidden = [state.name for state in states if not on_map(state)]
    return {
        "groups": [_group(state, now) for state in states],
        "pins": {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "id": state.group_id,
                    "geometry": {"type": "Point", "coordinates": [state.longitude, state.latitude]},
                    "properties": {"id": state.group_id, "closed": state.closed},
                }
                for state in shown
            ],
        },
        "bounds": maps.bounds_of(((state.latitude, state.longitude) for state in shown), BOUNDS_PAD),
        "hidden": f"Not on the map (hidden or no location): {', '.join(hidden)}." if hidden else None,
        "notes": {"differ": DIFFER_NOTE, "no_physical": NO_PHYSICAL},
    }


def staff_cache(client: redis.Redis) -> body_cache.BodyCache:
    return body_cache.BodyCache(client, occupancy.STAFF_CACHE_KEY)


def cached_lot_status(
    database: Database,
    client: redis.Redis,
    secrets: SecretBox,
    now: Callable[[], datetime],
    *,
    fresh: bool = False,
    held: str | None = None,
) -> body_cache.CachedBody:
    """The staff body, built at most once a second for every process together (``fresh`` and
    ``held`` as in ``BodyCache.get``: a page told of a change by the push channel, and the ETag it
    holds). ``RedisError`` when Redis is down: the figures live there, so there is nothing true to
    show."""

    def build() -> bytes:
        moment = now()
        with database.session() as session:
            policy = occupancy.load_policy(session, secrets)
            states = occupancy.group_states(session, LiveStore(client), policy.staleness, moment)
        return open_data.dump(lot_status_payload(states, moment))

    body_cache.CHANGES.watch(client)
    return staff_cache(client).get(build, fresh=fresh, held=held)
