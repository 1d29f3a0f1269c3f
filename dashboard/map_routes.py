"""The live screens' data, for the page's script to draw: ``GET /live/user-map.json`` (the user
map) and ``GET /live/lot-status.json`` (the staff screens: the admin map and the officers' Lot
Status).

The Real-Time Map (and the ``[real-time-map]`` shortcode) draws its pins, tooltips, popups and
table in the browser from this body (``assets/realtime_map.js``) instead of a Dash callback
building every marker as components for every visitor: the body is derived once per version of
the open API's cached list and per audience (guests: temporary permits only; signed-in users:
standard too, from the session), gzipped once, and answered ``304`` to a browser that has it. A
visitor then costs the server what a client of ``GET /api/v1/lot-groups`` does.

The staff screens share one body (``dashboard.services.lot_status``), built at most once a second
for all of them, for officers and up.

Not Dash pages, so the gate lets them through and each route decides access itself: every figure
of the user map is already public (the open API publishes them); the staff body is refused with a
JSON 401 (not signed in) or 403 (a lower role), never data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from flask import Flask, Response, current_app, jsonify, request
from flask_login import current_user
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from werkzeug.wrappers import Response as BaseResponse

from dashboard.auth import current_role, has_role
from dashboard.cached_responses import cached_json
from dashboard.core import core_of
from dashboard.db import lost_connection
from dashboard.services import lot_status, maps, open_data
from dashboard.services.body_cache import CachedBody
from models import Role

log = logging.getLogger(__name__)
LIVE_PREFIX = "/live/"
USER_MAP_PATH = LIVE_PREFIX + "user-map.json"
LOT_STATUS_PATH = LIVE_PREFIX + "lot-status.json"
STAFF_ROLE = Role.OFFICER  # the least role that reads the staff body
RETRY_AFTER_SECONDS = 5
UNAVAILABLE = "Live counts are unavailable right now."
# dash-leaflet's GeoJSON layer comes in a chunk of its own, loaded once a page draws one.
GEOJSON_CHUNK = "_dash-component-suites/dash_leaflet/async-GeoJSON.js"
# The pages drawn from live data: their data's URL, and whether they draw with dash-leaflet's
# GeoJSON layer (the user map draws its pins with Leaflet's own: ``assets/realtime_map.js``).
MAP_PAGES = {
    "/real-time": (USER_MAP_PATH, False),
    "/admin/map": (LOT_STATUS_PATH, True),
    "/officer": (LOT_STATUS_PATH, False),
}
# The browser keeps the body and asks again with If-None-Match on every refresh; it depends on
# the session (the audience), so no shared cache may keep it.
PRIVATE_REVALIDATE = "private, no-cache"


def map_preloads(path: str, prefix: str) -> str:
    """``<link rel=preload>`` for a live page's data and, on a staff map, GeoJSON code
    (``dashboard.app``). The data's link is what the page's script fetches (same URL, ``cors``
    mode, same-origin credentials), so the browser hands the script the preloaded answer. Only
    those a page is for get it: the gate redirects a guest, and someone signed in below its role
    gets the frame without these links (``auth.page_denied``)."""
    found = MAP_PAGES.get(path)
    if found is None:
        return ""
    data, draws_geojson = found
    links = f'<link rel="preload" href="{data}" as="fetch" crossorigin>'
    if draws_geojson:
        links += f'<link rel="preload" href="{prefix}{GEOJSON_CHUNK}" as="script">'
    return links


def unavailable(exc: RedisError | DBAPIError) -> Response:
    """A JSON 503 the page's script shows as "unavailable", keeping what it has drawn: Redis down,
    or the database down when the body had to be rebuilt (``body_cache.BodyCache`` serves the
    previous body while it has one) or the signed-in visitor (``dashboard.outage``). Any
    other database error is a fault: raised (a 500)."""
    if isinstance(exc, DBAPIError):
        if not lost_connection(exc):
            raise exc
        log.warning("live data: %s answered 503, the database is unreachable: %s", request.path, exc.orig)
    else:
        log.warning("live data: %s answered 503, Redis is unavailable: %s", request.path, exc)
    response = Response(f'{{"error": "{UNAVAILABLE}"}}', 503, mimetype="application/json")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused() -> Response:
    signed_in = current_user.is_authenticated
    response = jsonify({"error": "You do not have access to these figures." if signed_in else "Sign in."})
    response.status_code = 403 if signed_in else 401
    response.headers["Cache-Control"] = "no-store"
    return response


def register_map_routes(server: Flask) -> None:
    @server.get(USER_MAP_PATH)
    def user_map() -> BaseResponse:
        """``?fresh=1`` is sent by a page told of a change it could not apply itself: the list is
        then read from Redis rather than this process's copy of the last tenth of a second, and
        while it is being rebuilt the page waits for it only if it already holds the previous
        one (its ``If-None-Match``)."""
        try:
            listed = _read_cached(server, open_data.cached_list)
        except (RedisError, DBAPIError) as exc:
            return unavailable(exc)
        body = maps.user_map_body(listed, logged_in=current_role() > Role.GUEST)
        return cached_json(body, cache_control=PRIVATE_REVALIDATE)

    @server.get(LOT_STATUS_PATH)
    def staff_lot_status() -> BaseResponse:
        """The staff screens' body, for officers and up; ``?fresh=1`` as for the user map."""
        if not has_role(STAFF_ROLE):
            return _refused()
        try:
            body = _read_cached(server, lot_status.cached_lot_status)
        except (RedisError, DBAPIError) as exc:
            return unavailable(exc)
        return cached_json(body, cache_control=PRIVATE_REVALIDATE)


def opening_bounds() -> maps.Bounds | None:
    """Where this visitor's user map opens (``maps.user_map_bounds``), from the same cached list as
    its data. None while that list cannot be read (Redis down, or the database down with no list
    left): the map then opens on the world, and its first refresh says live counts are
    unavailable (logged by the data route)."""
    core = core_of(current_app)
    listed = _readable(lambda: open_data.cached_list(core.db, core.redis, core.secrets, _now))
    return None if listed is None else maps.user_map_bounds(listed, logged_in=current_role() > Role.GUEST)


def staff_opening_bounds() -> maps.Bounds | None:
    """Where the admin map opens: the staff body's bounds (``lot_status``), as ``opening_bounds``."""
    core = core_of(current_app)
    body = _readable(lambda: lot_status.cached_lot_status(core.db, core.redis, core.secrets, _now))
    return None if body is None else orjson.loads(body.body)["bounds"]


def _now() -> datetime:
    return datetime.now(UTC)


def _readable(read: Callable[[], CachedBody]) -> CachedBody | None:
    """A cached body, or None while it cannot be read (see ``unavailable``)."""
    try:
        return read()
    except RedisError:
        return None
    except DBAPIError as exc:
        if not lost_connection(exc):
            raise
        return None


def _read_cached(server: Flask, read: Callable[..., CachedBody]) -> CachedBody:
    """A cached body (``open_data.cached_list``, ``lot_status.cached_lot_status``) as this request
    asks for it: ``?fresh=1`` after a pushed change, with the ETag the browser holds."""
    core = core_of(server)
    return read(
        core.db,
        core.redis,
        core.secrets,
        _now,
        fresh=request.args.get("fresh") == "1",
        held=_held_etag(),
    )


def _held_etag() -> str | None:
    """The cached body's version behind what the browser holds: our ETags are that body's
    (hexadecimal), then for the user map the audience, then the encoding, joined by ``-``."""
    for tag in request.if_none_match.as_set():
        return tag.split("-", 1)[0]
    return None
