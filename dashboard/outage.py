"""What a visitor is answered while the database is unreachable (a restart, a failover, a network
cut), wherever no route answers it itself.

The routes that read the live lists keep serving them from Redis and answer 503 only when one has
to be rebuilt (``body_cache.BodyCache``, ``map_routes``, the API's handlers). Everything else
reached the database before it could answer, often in Flask-Login's user loader, before any
route ran: a signed-in visitor then got Flask's bare "Internal Server Error" on every page, and a
signed-in map's data a 500 where a guest's got the map's own 503. Here a read (GET, HEAD) that
lost the database is a 503 with ``Retry-After``, never stored: the live bodies' own JSON 503 (the
map keeps its pins and says live counts are unavailable), else a page that says so in words and
tries again by itself. (The API answers its own, ``dashboard.api.occupancy``; Dash's layout falls
back to the bare frame, ``components.shell``.) A page whose layout lost the database inside the
app (a guest's first load, or a move by link) shows the same words where the page would be
(``outage_layout``, from ``auth``'s page guard) instead of an empty frame. A write may or may not
have committed when its connection dropped, and any other database error is a fault: those stay a
logged 500, not an invitation to send it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from dash import html
from flask import Flask, Response, request
from sqlalchemy.exc import DBAPIError

from dashboard.db import lost_connection

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5
RELOAD_SECONDS = 10
HEADING = "ParkOps is briefly unavailable"
REASON = "ParkOps cannot reach its database right now, so this page cannot be shown."
# Static words only: nothing of the request is echoed ("Try again" reloads the same address).
PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Briefly unavailable · ParkOps</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{RELOAD_SECONDS}"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem">
<h1 id="outage">{HEADING}</h1>
<p id="outage-reason">{REASON}
It tries again by itself every {RELOAD_SECONDS} seconds; nothing needs doing on your side.</p>
<p><a href="">Try again now</a></p>
</body></html>"""


def register_outage_answers(server: Flask, answers: Mapping[str, Callable[[DBAPIError], Response]]) -> None:
    """``answers``: by path prefix, a route family's own answer (the maps' data: their JSON 503)."""

    @server.errorhandler(DBAPIError)
    def database_unreachable(exc: DBAPIError) -> Response:
        if request.method not in ("GET", "HEAD") or not lost_connection(exc):
            raise exc
        for prefix, answer in answers.items():
            if request.path.startswith(prefix):
                return answer(exc)
        log.warning(
            "%s %s answered 503, the database is unreachable: %s", request.method, request.path, exc.orig
        )
        response = Response(PAGE, 503, mimetype="text/html")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response.headers["Cache-Control"] = "no-store"
        return response


def outage_layout() -> Any:
    """The page area's words when its layout could not reach the database ("Try again" reloads
    the address in the bar)."""
    return html.Div(
        [
            html.H1(HEADING, className="h3"),
            html.P([REASON, " Try again in a moment."], id="outage-reason"),
            html.A("Try again", href="", className="btn btn-primary"),
        ],
        id="outage",
        role="alert",
        className="py-4",
    )
