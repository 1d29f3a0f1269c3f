"""The REST API (``/api/v1``): one blueprint; each module of this package adds its routes to it.

Routes are thin (parse, call a service, render JSON). Access is the gate's business
(``dashboard.auth.PUBLIC_PREFIXES`` lists the open-data prefixes); every answer, errors included,
is JSON, because API clients do not read Dash's HTML "not found" page. Routes answer errors with
``error``; what Flask or Werkzeug refuse before or around a route (a body over 8 MiB, malformed or
too deeply nested JSON, a wrong method, a crash) gets the same shape from ``register_json_errors``,
on every API path and on Dash's callback endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

api = Blueprint("api", __name__, url_prefix="/api/v1")


def error(
    status: int, message: str, field: str | None = None, fields: dict[str, str] | None = None
) -> tuple[Response, int]:
    """The one error shape: ``{"error": ..., "field": ..., "fields": {name: message}}``; ``field``
    names the one bad query parameter, ``fields`` every bad field of a body (both only for bad input)."""
    body: dict[str, object] = {"error": message}
    if field is not None:
        body["field"] = field
    if fields is not None:
        body["fields"] = dict(fields)
    return jsonify(body), status


def unknown_parameters(args: Mapping[str, str], allowed: tuple[str, ...]) -> dict[str, str]:
    """A message for each query parameter the call does not take: a misspelt ``plat=`` or ``form=``
    would otherwise be ignored silently and the caller trust an answer to a question it never asked."""
    takes = ", ".join(allowed)
    return {name: f"unknown parameter (this call takes {takes})" for name in args if name not in allowed}


# Paths whose clients read JSON: the APIs and Dash's callback endpoint (the renderer reads a JSON
# error; an HTML page there is noise in the browser console).
JSON_PATHS = ("/api/", "/_dash-update-component")
MESSAGES = {  # Werkzeug's descriptions are written for HTML pages; these say what to change.
    400: "the request could not be read (malformed or too deeply nested JSON?)",
    404: "no such resource",
    405: "this method is not allowed here",
    413: "the body is too large (at most 8 MiB)",
    415: "the body must be JSON (Content-Type: application/json)",
    500: "internal error (it was logged)",
}


def register_json_errors(server: Flask) -> None:
    """Errors raised outside a route's own handling, in the API's shape on ``JSON_PATHS``; other
    paths (pages) keep Flask's HTML pages."""

    @server.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response | HTTPException:
        if not request.path.startswith(JSON_PATHS):
            return exc
        response = exc.get_response()  # keeps headers such as Allow on a 405
        status = exc.code or 500
        custom = exc.description != type(exc).description  # e.g. abort(403, "cross-site request refused")
        message = exc.description if custom and status < 500 else MESSAGES.get(status, exc.name.lower())
        response.set_data(jsonify({"error": message}).get_data())
        response.mimetype = "application/json"
        return response


@api.get("/<path:_rest>")
def unknown(_rest: str) -> tuple[Response, int]:
    """Without it, an unknown /api/v1 path would fall through to Dash's catch-all page (200, HTML)."""
    return error(404, "no such resource")


def register_api(server: Flask) -> None:
    """Attach the API to the app (once per app: the blueprint's routes are module-level)."""
    from dashboard.api import occupancy, openapi, permits, reports, users, violations  # noqa: F401  (routes attach to ``api``)
    from dashboard.api.oc_toma import register_oc_toma

    server.register_blueprint(api)
    register_oc_toma(server)
    register_json_errors(server)
