"""``GET /api/v1/reports/sales``: permit sales and revenue for finance systems (``reports:read``).

The same figures as the Reports page's sales report (``dashboard.services.reports.sales``): site-
local days ``from`` to ``to`` (default the last 30 days), grouped by day, lot, product or source,
amounts in integer cents per currency. Keys as in ``dashboard.api.permits``: 401 without a valid
key, 403 without the scope, 422 naming each bad parameter (an unknown one included).
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request

from dashboard.api.blueprint import api, unknown_parameters
from dashboard.api.permits import _bearer, authenticate_key, invalid, private, refused, unstorable_fields
from dashboard.core import core_of
from dashboard.services import reports
from dashboard.services.api_keys import KeyRefused, WrongScope
from dashboard.services.errors import ValidationFailed
from dashboard.services.reports import ReportKind, SalesReport

SCOPE = "reports:read"
PARAMETERS = ("from", "to", "group_by")


def _sales_json(report: SalesReport, time_zone: str) -> dict[str, Any]:
    return {
        "from": report.days.first.isoformat(),
        "to": report.days.last.isoformat(),
        "time_zone": time_zone,
        "group_by": report.group_by,
        "rows": [
            {
                "key": row.key,
                "label": row.label,
                "currency": row.currency,
                "count": row.count,
                "amount_cents": row.amount_cents,
            }
            for row in report.rows
        ],
        "totals": [
            {"currency": t.currency, "count": t.count, "amount_cents": t.amount_cents} for t in report.totals
        ],
    }


@api.get("/reports/sales")
def sales_report() -> tuple[Response, int]:
    core = core_of(current_app)
    tz = core.settings.tz
    with core.db.session() as session:
        try:
            authenticate_key(session, _bearer(), SCOPE)
        except (KeyRefused, WrongScope) as exc:
            return refused(exc)
        args = request.args.to_dict()
        errors = unknown_parameters(request.args, PARAMETERS) or unstorable_fields(dict(args))
        # Present but empty is a mistake (a template that never filled it in), not a default.
        errors |= {name: "empty: leave it out for the default" for name, value in args.items() if not value}
        if errors:
            return invalid(ValidationFailed(errors))
        try:
            query = reports.parse_query(
                {**args, "report": ReportKind.SALES.value}, tz, reports.site_today(tz)
            )
            report = reports.sales(session, query.days, tz, group_by=query.group_by)
        except ValidationFailed as exc:
            return invalid(exc)
    return private(jsonify(_sales_json(report, getattr(tz, "key", str(tz)))))
