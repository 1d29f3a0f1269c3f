"""The REST API (``/api/v1``): one blueprint; each module of this package adds its routes to it.

Routes are thin (parse, call a service, render JSON). Access is the gate's business
(``dashboard.auth.PUBLIC_PREFIXES`` lists the open-data prefixes); every answer, errors included,
is JSON, because API clients do not read Dash's HTML "not found" page. Routes answer errors with
``error``; what Flask or Werkzeug refuse before or around a route (a body over 8 MiB, malformed or
too deeply nested JSON, a wrong method, a crash) gets the same shape from ``register_json_errors``,
on every API path and on Dash's callback endpoint.
"""

from __future__ import annotations

from flask import Flask

from dashboard.api.blueprint import api, register_json_errors


def register_api(server: Flask) -> None:
    """Attach the API to the app (once per app: the blueprint's routes are module-level)."""
    from dashboard.api import occupancy, openapi, permits, reports, users, violations  # noqa: F401  (routes attach to ``api``)
    from dashboard.api.oc_toma import register_oc_toma

    server.register_blueprint(api)
    register_oc_toma(server)
    register_json_errors(server)
