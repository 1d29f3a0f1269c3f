"""The live maps' data, for the page's script to draw: ``GET /live/user-map.json``.

The Real-Time Map (and the ``[real-time-map]`` shortcode) draws its pins, tooltips, popups and
table in the browser from this body (``assets/realtime_map.js``) instead of a Dash callback
building every marker as components for every visitor: the body is derived once per version of
the open API's cached list and per audience (guests: temporary permits only; signed-in users:
standard too, from the session), gzipped once, and answered ``304`` to a browser that has it. A
visitor then costs the server what a client of ``GET /api/v1/lot-groups`` does.

Not a Dash page, so the gate lets it through and the route decides the audience itself; every
figure in it is already public (the open API publishes them).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Flask, Response, request
from redis.exceptions import RedisError
from werkzeug.wrappers import Response as BaseResponse

from dashboard.auth import current_role
from dashboard.cached_responses import cached_json
from dashboard.core import core_of
from dashboard.services import maps, open_data
from models import Role

log = logging.getLogger(__name__)
USER_MAP_PATH = "/live/user-map.json"
RETRY_AFTER_SECONDS = 5
# dash-leaflet's GeoJSON layer comes in a chunk of its own, loaded once a page draws one.
GEOJSON_CHUNK = "_dash-component-suites/dash_leaflet/async-GeoJSON.js"
MAP_PAGES = {"/real-time": USER_MAP_PATH}  # the pages that draw a live map, and its data
# The browser keeps the body and asks again with If-None-Match on every refresh; it depends on
# the session (the audience), so no shared cache may keep it.
PRIVATE_REVALIDATE = "private, no-cache"


def map_preloads(path: str, prefix: str) -> str:
    """``<link rel=preload>`` for a map page's data and GeoJSON code (``dashboard.app``). The
    data's link is what the page's script fetches (same URL, ``cors`` mode, same-origin
    credentials), so the browser hands the script the preloaded answer."""
    data = MAP_PAGES.get(path)
    if data is None:
        return ""
    return (
        f'<link rel="preload" href="{data}" as="fetch" crossorigin>'
        f'<link rel="preload" href="{prefix}{GEOJSON_CHUNK}" as="script">'
    )


def register_map_routes(server: Flask) -> None:
    @server.get(USER_MAP_PATH)
    def user_map() -> BaseResponse:
        """``?fresh=1`` is sent by a page told of a change it could not apply itself: the list is
        then read from Redis rather than this process's copy of the last tenth of a second, and
        while it is being rebuilt the page waits for it only if it already holds the previous
        one (its ``If-None-Match``)."""
        core = core_of(server)
        try:
            listed = open_data.cached_list(
                core.db,
                core.redis,
                core.secrets,
                lambda: datetime.now(UTC),
                fresh=request.args.get("fresh") == "1",
                held=_held_list_etag(),
            )
        except RedisError as exc:
            log.warning("live map: %s answered 503, Redis is unavailable: %s", request.path, exc)
            response = Response(
                '{"error": "Live counts are unavailable right now."}', 503, mimetype="application/json"
            )
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            response.headers["Cache-Control"] = "no-store"
            return response
        body = maps.user_map_body(listed, logged_in=current_role() > Role.GUEST)
        return cached_json(body, cache_control=PRIVATE_REVALIDATE)


def _held_list_etag() -> str | None:
    """The list version behind the body the browser holds: our ETags are the list's, the
    audience's and the encoding's, joined by ``-`` (the list's own is hexadecimal)."""
    for tag in request.if_none_match.as_set():
        return tag.split("-", 1)[0]
    return None
