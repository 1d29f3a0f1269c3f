"""The REST API (``/api/v1``): one blueprint; each module of this package adds its routes to it.

Routes are thin (parse, call a service, render JSON). Access is the gate's business
(``dashboard.auth.PUBLIC_PREFIXES`` lists the open-data prefixes); every answer, errors included,
is JSON, because API clients do not read Dash's HTML "not found" page.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, jsonify

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


@api.get("/<path:_rest>")
def unknown(_rest: str) -> tuple[Response, int]:
    """Without it, an unknown /api/v1 path would fall through to Dash's catch-all page (200, HTML)."""
    return error(404, "no such resource")


def register_api(server: Flask) -> None:
    """Attach the API to the app (once per app: the blueprint's routes are module-level)."""
    from dashboard.api import occupancy, openapi, permits, violations  # noqa: F401  (routes attach to ``api``)
    from dashboard.api.oc_toma import register_oc_toma

    server.register_blueprint(api)
    register_oc_toma(server)
