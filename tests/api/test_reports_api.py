"""``GET /api/v1/reports/sales`` with a ``reports:read`` key: the Reports page's sales figures,
refused without the key (401) or the scope (403), strict about its parameters (422)."""

from __future__ import annotations

import pytest

from tests.api.partners import bearer, issue_key
from tests.reports_data import FIRST, LAST, make_report_data


@pytest.fixture
def data(session):
    return make_report_data(session)


def test_sales_by_day_and_by_source_with_the_scope(client, core, data):
    key = issue_key(core, "reports:read")
    answer = client.get(f"/api/v1/reports/sales?from={FIRST}&to={LAST}", headers=bearer(key))
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    body = answer.json
    assert (body["from"], body["to"], body["group_by"], body["time_zone"]) == (
        FIRST,
        LAST,
        "day",
        "America/Toronto",
    )
    assert [(r["key"], r["count"], r["amount_cents"]) for r in body["rows"]] == [
        ("2026-11-02", 2, 12500),
        ("2026-11-03", 3, 675),
        ("2026-11-04", 2, 1400),
    ]
    assert body["totals"] == [{"currency": "CAD", "count": 7, "amount_cents": 14575}]
    by_source = client.get(
        f"/api/v1/reports/sales?from={FIRST}&to={LAST}&group_by=source", headers=bearer(key)
    ).json
    assert by_source["rows"][0] == {
        "key": "standard",
        "label": "Standard permits (online)",
        "currency": "CAD",
        "count": 1,
        "amount_cents": 12000,
    }
    assert {r["key"] for r in by_source["rows"]} == {
        "standard",
        "admin",
        "quick-checkout",
        "parkmobile",
        "hotspot",
        "paystation",
        "cale",
    }


def test_keys_scopes_and_parameters_are_checked(client, core, data):
    assert client.get("/api/v1/reports/sales").status_code == 401
    other = issue_key(core, "permits:read", "violations:read")
    refused = client.get("/api/v1/reports/sales", headers=bearer(other))
    assert refused.status_code == 403 and "reports:read" in refused.json["error"]
    revoked = issue_key(core, "reports:read", revoked=True)
    assert client.get("/api/v1/reports/sales", headers=bearer(revoked)).status_code == 401
    key = issue_key(core, "reports:read")
    unknown = client.get("/api/v1/reports/sales?form=2026-11-02&lot=1", headers=bearer(key))
    assert unknown.status_code == 422 and set(unknown.json["fields"]) == {"form", "lot"}
    for query, field in (
        ("group_by=colour", "group_by"),
        ("from=2026-02-30", "from"),
        ("from=2026-11-05&to=2026-11-01", "to"),
        ("from=2024-01-01&to=2026-11-01", "to"),
        ("to=0001-01-01", "to"),
        ("from=%00", "from"),
        ("to=", "to"),
    ):
        bad = client.get(f"/api/v1/reports/sales?{query}", headers=bearer(key))
        assert bad.status_code == 422 and field in bad.json["fields"], query
    assert client.get("/api/v1/reports/sales", headers=bearer(key)).status_code == 200  # the last 30 days


def test_the_openapi_document_describes_the_call(client):
    document = client.get("/api/v1/openapi.json").json
    call = document["paths"]["/v1/reports/sales"]["get"]
    assert call["security"] == [{"apiKey": ["reports:read"]}]
    assert [p["name"] for p in call["parameters"]] == ["from", "to", "group_by"]
    assert "reports:read" in document["components"]["securitySchemes"]["apiKey"]["description"]
