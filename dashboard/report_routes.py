"""The Reports page's downloads: ``/admin/reports/export.csv`` and ``/admin/reports/export.xlsx``,
with the page's own query string (``?report=sales&from=...``).

Not a Dash page, so the gate lets it through and the route checks the role itself (managers and
up, as the page). A file holds the table the page shows for the same query, built by the same
service call (``reports.build(...).table()``), so its figures are the page's.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from flask import Flask, Response, redirect, request
from flask_login import current_user

from dashboard.auth import has_role
from dashboard.core import core_of
from dashboard.services import reports
from dashboard.services.errors import ValidationFailed
from models import Role

log = logging.getLogger(__name__)
MIN_ROLE = Role.MANAGER
TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def register_report_routes(server: Flask) -> None:
    @server.get("/admin/reports/export.<extension>")
    def report_export(extension: str) -> Response:
        if not has_role(MIN_ROLE):
            if not current_user.is_authenticated:
                return redirect("/login?" + urlencode({"next": request.full_path.rstrip("?")}))  # type: ignore[return-value]
            return Response("You do not have access to this file.", status=403, mimetype="text/plain")
        if extension not in TYPES:
            return Response("Reports download as .csv or .xlsx.", status=404, mimetype="text/plain")
        core = core_of(server)
        tz = core.settings.tz
        try:
            query = reports.parse_query(request.args.to_dict(), tz, reports.site_today(tz))
            with core.db.session() as session:
                report = reports.build(session, query, tz)
        except ValidationFailed as exc:
            log.info("report not downloaded: %s", exc.errors)
            message = "; ".join(f"{field}: {text}" for field, text in exc.errors.items())
            return Response(f"This report cannot be made: {message}\n", status=400, mimetype="text/plain")
        table = report.table()
        if extension == "csv":
            body: bytes = reports.to_csv(table).encode("utf-8")
        else:
            body = reports.to_xlsx(table, reports.KIND_TITLES[query.kind], reports.describe(query, report))
        response = Response(body, mimetype=TYPES[extension])
        name = reports.file_name(query, extension)
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        response.headers["Cache-Control"] = "private, no-store"
        return response
