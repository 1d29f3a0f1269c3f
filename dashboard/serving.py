"""What the HTTP servers say about themselves: only ``Server: ParkOps``.

Werkzeug's server (``parkops run``) announced ``Werkzeug/3.1 Python/3.11.7`` and gunicorn
(production, ``dashboard.wsgi:app``) ``gunicorn``: versions that tell an attacker which known
holes to try. Neither can drop the header: Python's ``BaseHTTPRequestHandler.send_response``
always sends ``version_string()``, and gunicorn writes its module-level ``SERVER`` name (there is
no setting for it; gunicorn's maintainers declined one). So each gets a neutral name.
"""

from __future__ import annotations

import sys

from werkzeug.serving import WSGIRequestHandler

SERVER_NAME = "ParkOps"


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without the server's and Python's versions in ``Server``."""

    def version_string(self) -> str:
        return SERVER_NAME


def quiet_gunicorn() -> None:
    """Under gunicorn (its response module already imported by the worker), name no server."""
    responses = sys.modules.get("gunicorn.http.wsgi")
    if responses is not None:
        responses.SERVER = SERVER_NAME  # type: ignore[attr-defined]
