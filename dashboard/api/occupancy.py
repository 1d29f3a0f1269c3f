"""Open occupancy data: availability per lot group, its history, the FIWARE feed, and a ping.

All public (see the gate's ``PUBLIC_PREFIXES``) and read-only. Answers may be cached one second
by browsers and proxies (``Cache-Control: public, max-age=1``): availability moves by the minute,
and a second is what the list's server-side cache holds it anyway (see ``body_cache.BodyCache``).
While Redis (live figures and that cache) is unreachable they answer JSON 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Response, current_app, request
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from werkzeug.wrappers import Response as BaseResponse

from dashboard.api.blueprint import api, error, unknown_parameters
from dashboard.cached_responses import cached_json
from dashboard.core import Core, core_of
from dashboard.db import lost_connection
from dashboard.services import body_cache, occupancy, open_data
from dashboard.services.errors import ValidationFailed
from dashboard.services.occupancy import LiveStore

CACHE_CONTROL = "public, max-age=1"
FIWARE_TYPES = ("OffStreetParking", "ParkingGroup")
GROUPS = open_data.GroupIndex()
# Live figures and the answers' cache are in Redis: while it is down, clients are told when to
# try again (a restart or failover takes seconds; the maps poll every few seconds anyway).
RETRY_AFTER_SECONDS = 30
log = logging.getLogger(__name__)


@api.after_request
def _cacheable(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", CACHE_CONTROL)
    return response


@api.errorhandler(RedisError)
def _redis_unavailable(exc: RedisError) -> Response:
    """A Redis outage is a temporary state, not a fault of the request: JSON 503 with
    ``Retry-After`` (as ``/healthz`` answers 503), never Flask's HTML 500. Not cacheable. Registered
    on the blueprint, so it covers every ``/api/v1`` route, not only these."""
    log.warning("api: %s %s answered 503, Redis is unavailable: %s", request.method, request.path, exc)
    return _unavailable("the live data store is unreachable")


@api.errorhandler(DBAPIError)
def _database_unavailable(exc: DBAPIError) -> Response:
    """The database unreachable while a read had to reach it (the lists: ``body_cache.BodyCache``
    serves the previous one as long as it has it): a 503 as for Redis. A write that lost its
    connection may or may not have committed, and any other database error is a fault: those
    stay a 500 (logged by Flask), not an invitation to try again."""
    if request.method not in ("GET", "HEAD") or not lost_connection(exc):
        raise exc
    log.warning(
        "api: %s %s answered 503, the database is unreachable: %s", request.method, request.path, exc.orig
    )
    return _unavailable("the database is unreachable")


def _unavailable(what: str) -> Response:
    response, status = error(503, f"temporarily unavailable ({what}); try again shortly")
    response.status_code = status
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


@api.get("/ping")
def ping() -> Response:
    """The benchmark's baseline: the same server, gate and middleware, and no work at all."""
    return _json({"ok": True})


@api.get("/lot-groups")
def lot_groups() -> BaseResponse:
    return cached_json(_list_body(_core()))


def _list_body(core: Core) -> body_cache.CachedBody:
    return open_data.cached_list(core.db, core.redis, core.secrets, _now)


@api.get("/lot-groups/<group_id>")
def lot_group(group_id: str) -> Response | tuple[Response, int]:
    body = _group_body(group_id)
    if body is None:
        return error(404, "no such lot group")
    return Response(body, mimetype="application/json")


@api.get("/lot-groups/<group_id>/occupancy")
def lot_group_history(group_id: str) -> Response | tuple[Response, int]:
    core = _core()
    args = request.args
    unknown = unknown_parameters(args, ("from", "to", "source"))
    if unknown:
        field, message = next(iter(unknown.items()))
        return error(400, f"{field}: {message}", field)
    try:
        window = open_data.parse_range(args.get("from"), args.get("to"), args.get("source"), _now())
    except ValidationFailed as exc:
        field, message = next(iter(exc.errors.items()))
        return error(400, f"{field}: {message}", field)
    if _group_body(group_id) is None:
        return error(404, "no such lot group")
    with core.db.session() as session:
        points = open_data.history_points(session, int(group_id), window)
    return _json(
        {
            "id": int(group_id),
            "from": open_data.iso_utc(window.start),
            "to": open_data.iso_utc(window.end),
            "source": str(window.source) if window.source else None,
            "points": points,
        }
    )


@api.get("/fiware/<entity_type>")
def fiware(entity_type: str) -> BaseResponse | tuple[Response, int]:
    """Key-values entities of one FIWARE type (see ``open_data`` for the mapping)."""
    if entity_type not in FIWARE_TYPES:
        return error(404, "entity types: " + ", ".join(FIWARE_TYPES))
    core = _core()

    def build() -> bytes:
        with core.db.session() as session:
            policy = occupancy.load_policy(session, core.secrets)
            states = open_data.public_states(session, LiveStore(core.redis), policy, _now())
            site = open_data.site_id(session, core.secrets)
            if entity_type == "OffStreetParking":
                entities = open_data.off_street_parkings(states, site)
            else:
                entities = open_data.parking_groups(session, states, site)
        return open_data.dump(entities)

    return cached_json(open_data.fiware_cache(core.redis, entity_type).get(build))


def _json(payload: object) -> Response:
    """Keys in the order the service built them (``jsonify`` would sort them)."""
    return Response(open_data.dump(payload), mimetype="application/json")


def _group_body(group_id: str) -> bytes | None:
    """A group shown on the map, from the list's snapshot; ids are parsed here, not by a route
    converter, so that ``/lot-groups/abc`` is a JSON 404 rather than Dash's catch-all page."""
    if not (group_id.isascii() and group_id.isdigit()):  # "²" is a digit, not a number
        return None
    return GROUPS.group(_list_body(_core()), int(group_id))


def _core() -> Core:
    return core_of(current_app)


def _now() -> datetime:
    return datetime.now(UTC)
