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

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy.orm import Session

from dashboard.services import body_cache, open_data
from dashboard.services.errors import NotFound
from dashboard.services.occupancy import GroupOccupancy, LiveStore, LotPermits, Policy

Bounds = list[list[float]]  # [[south, west], [north, east]], as Leaflet takes them


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
    source: str | None = None  # where the availability comes from (the group's primary figure)

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
        source=str(state.primary.source),
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
                source=group["source"],
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


# --- the user map as the browser draws it (``/live/user-map.json``) ---


def availability_text(percent_available: float | None, status: str = "open") -> str:
    if status == "closed":
        return "Closed"
    if percent_available is None:
        return "No data"
    return f"{percent_available:.0f}% available"


def sold_out(lot: UserMapLot) -> bool:
    """Every permit the lot may sell is taken now (a lot that sells nothing is not "sold out")."""
    return lot.offers_any and lot.percent_full is not None and lot.percent_full >= 100


def group_sold_out(group: UserMapGroup) -> bool:
    selling = [lot for lot in group.lots if lot.offers_any]
    return bool(selling) and all(sold_out(lot) for lot in selling)


def _has_space(group: UserMapGroup) -> bool:
    return group.status != "closed" and any(lot.offers_any and not sold_out(lot) for lot in group.lots)


def nearest_with_space(group: UserMapGroup, groups: list[UserMapGroup]) -> UserMapGroup | None:
    """The closest other group on the map that still sells a permit, for a sold-out popup. Lots
    are a few hundred metres apart: a flat-earth distance (longitude scaled by the latitude) is
    plenty to rank them."""
    if not group.located:
        return None
    scale = math.cos(math.radians(group.lat or 0.0)) ** 2

    def distance(other: UserMapGroup) -> float:
        return ((other.lat or 0.0) - (group.lat or 0.0)) ** 2 + scale * (
            (other.lon or 0.0) - (group.lon or 0.0)
        ) ** 2

    others = [o for o in groups if o.group_id != group.group_id and o.located and _has_space(o)]
    return min(others, key=distance, default=None)


def lot_figure(lot: UserMapLot) -> str:
    """A lot's permit figure as the popup words it (percent, not numbers: leeway for inaccuracy)."""
    if sold_out(lot):
        return "sold out"
    return f"{lot.percent_full:.0f}% of permits taken" if lot.percent_full is not None else "—"


def _nearest_index(groups: list[UserMapGroup]) -> dict[int, UserMapGroup | None]:
    """The nearest group with space for every sold-out group: only those need one, so a map of
    thousands of groups with a few sold out does not rank every pair."""
    return {g.group_id: nearest_with_space(g, groups) for g in groups if group_sold_out(g)}


def bounds_of(points: Iterable[tuple[float | None, float | None]], pad: float = 0.0) -> Bounds | None:
    """The south-west and north-east corners around ``(latitude, longitude)`` points (those with
    both), widened by ``pad`` degrees; None without one. Both maps open on these."""
    located = [(lat, lon) for lat, lon in points if lat is not None and lon is not None]
    if not located:
        return None
    lats = [lat for lat, _ in located]
    lons = [lon for _, lon in located]
    return [[min(lats) - pad, min(lons) - pad], [max(lats) + pad, max(lons) + pad]]


def user_map_payload(groups: list[UserMapGroup], *, logged_in: bool) -> dict[str, Any]:
    """What the browser needs to draw the user map for one audience: every pin, its tooltip and
    popup text already worded, so the page's script only lays them out (one wording, here, for the
    map, its table alternative and the tests). The pins' features are GeoJSON points
    (``[lon, lat]``), drawn with Leaflet's GeoJSON layer (``assets/realtime_map.js``)."""
    nearest = _nearest_index(groups)
    features = []
    for group in groups:
        if not group.located:
            continue
        elsewhere = nearest.get(group.group_id)
        lots_page = f"/lot-groups/{group.group_id}"
        features.append(
            {
                "type": "Feature",
                "id": group.group_id,
                "geometry": {"type": "Point", "coordinates": [group.lon, group.lat]},
                "properties": {
                    "id": group.group_id,
                    "name": group.name,
                    "color": group.color,
                    "status": group.status,
                    "available": group.percent_available,
                    "source": group.source,
                    "text": availability_text(group.percent_available, group.status),
                    "href": lots_page,
                    "sold_out": group_sold_out(group),
                    "nearest": (
                        {"name": elsewhere.name, "href": f"/lot-groups/{elsewhere.group_id}"}
                        if elsewhere is not None
                        else None
                    ),
                    "login": "/login?" + urlencode({"next": lots_page}),
                    "lots": [
                        {
                            "name": lot.name,
                            "figure": lot_figure(lot),
                            "sold_out": sold_out(lot),
                            "standard": lot.offers_standard,
                            "temporary": lot.offers_temporary,
                        }
                        for lot in group.lots
                    ],
                },
            }
        )
    return {
        "logged_in": logged_in,
        "bounds": bounds_of((g.lat, g.lon) for g in groups),
        "pins": {"type": "FeatureCollection", "features": features},
    }


def user_map_body(listed: body_cache.CachedBody, *, logged_in: bool) -> body_cache.CachedBody:
    """The user map's data for one audience, derived from the open API's cached list (one source
    of figures for the API and the maps, no database read) and rebuilt only when the list's version
    changes: every open map asks again on every pushed change. Its ETag is the list's and the
    audience's, so a browser that holds the current one is answered 304."""
    return _user_map(listed, logged_in).body


def user_map_bounds(listed: body_cache.CachedBody, *, logged_in: bool) -> Bounds | None:
    """Where the user map opens (its pins' south-west and north-east corners; None without a
    located group): given with the page, so the map opens on the campus instead of the world
    view it would leave once the pins arrive (and never fetches the world's tiles)."""
    return _user_map(listed, logged_in).bounds


@dataclass(frozen=True)
class _UserMap:
    body: body_cache.CachedBody
    bounds: Bounds | None


_BODIES: dict[bool, _UserMap] = {}  # per process, by audience: the latest body only


def _user_map(listed: body_cache.CachedBody, logged_in: bool) -> _UserMap:
    audience = "user" if logged_in else "guest"
    etag = f"{listed.etag}-{audience}"
    known = _BODIES.get(logged_in)
    if known is not None and known.body.etag == etag:
        return known
    groups = from_public_list(orjson.loads(listed.body)["lot_groups"], logged_in=logged_in)
    payload = user_map_payload(groups, logged_in=logged_in)
    built = _UserMap(body_cache.CachedBody(open_data.dump(payload), etag), payload["bounds"])
    _BODIES[logged_in] = built
    return built
