"""The OpenAPI document against the real app (schemathesis, in process over WSGI): every documented
operation, with generated valid and invalid input, never answers 500 and answers what the document
promises (status codes, content types, bodies). A valid key is sent, so the authorised paths run
too; ``ignored_auth`` also checks that each secured operation refuses a request without it.

The schema is loaded from ``DOCUMENT`` rather than with ``from_wsgi`` + ``from_fixture`` (the lazy
fixture loader of schemathesis 4.32 breaks on pytest 9: it sets ``Function._nodeid``); the first
test proves that the app serves exactly that document.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi import checks

from dashboard.api.openapi import DOCUMENT
from tests.api.partners import bearer, issue_key, make_place

EXAMPLES_PER_OPERATION = 25
EXCLUDED_CHECKS = [
    # Whether schema-valid input is accepted depends on the database (a lot or zone must exist, a
    # permit must not be cancelled) and on rules JSON Schema cannot say (a plate is letters and
    # digits once spaces and dashes are removed; a history range spans at most 31 days).
    checks.positive_data_acceptance,
    # Dash's page route answers GET on every path, so Flask's automatic OPTIONS lists GET in
    # ``Allow`` for the POST-only calls too; a GET there is answered by the API's JSON 404.
    checks.allow_header_conformance,
]

schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture
def partner_key(core) -> str:
    make_place(core)  # so that some generated lots and zones ("1001", "NG") exist
    return issue_key(core, "permits:write", "permits:read", "violations:read", "reports:read", "users:write")


def test_the_app_serves_the_document(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.is_json
    assert response.json == json.loads(json.dumps(DOCUMENT))
    assert {
        "/v1/permits",
        "/v1/permits/validate",
        "/OC-TOMA/v1/permits/push",
        "/v1/violations",
        "/v1/boots",
        "/v1/users",
        "/OC-TOMA/v1/profiles/push",
    } <= set(response.json["paths"])


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the tree; a failure prints its curl reproduction
    derandomize=True,  # the same examples on every run: CI must not go red by chance
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_keeps_its_documented_promises(case, app, partner_key):
    # The open-data routes gzip for clients that ask; the in-process transport does not unzip.
    headers = {"Accept-Encoding": "identity"}
    if case.operation.path.startswith("/OC-TOMA/"):
        body = case.body if isinstance(case.body, dict) else None
        if body is not None and isinstance(body.get("apiToken"), str) and body["apiToken"]:
            body["apiToken"] = partner_key  # in the body; a token that is itself the invalid part stays
    else:
        headers.update(bearer(partner_key))
    # ``ignored_auth`` re-sends a request without the key through the operation's own transport: it
    # must reach the app in process too (a key-protected call that answers 200, such as a plate's
    # violations, triggers it).
    case.operation.schema.app = case.operation.app = app
    case.call_and_validate(
        app=app,
        headers=headers,
        excluded_checks=EXCLUDED_CHECKS,
    )
