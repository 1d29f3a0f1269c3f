"""Bodies an attacker sends: JSON nested thousands deep and bodies over the 8 MiB limit. Every API
path and Dash's callback endpoint answer them with the API's JSON error, never an HTML page or a
500; the partner APIs still check the key first."""

from __future__ import annotations

import json

import pytest

from dashboard.json_bodies import MAX_DEPTH, depth
from models import Role
from tests.api.partners import bearer, issue_key

NESTED = "[" * 5000
TEN_MB = b'{"a": "' + b"x" * (10 * 1024 * 1024) + b'"}'
API_WRITES = ["/api/v1/permits", "/api/OC-TOMA/v1/permits/push", "/api/OC_TOMA/v1/permits/update"]
DASH = "/_dash-update-component"


def assert_json_error(response, status: int) -> str:
    assert response.status_code == status, response.data[:200]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body, dict) and isinstance(body["error"], str) and body["error"]
    return body["error"]


@pytest.mark.parametrize("path", API_WRITES)
def test_deeply_nested_json_to_a_partner_api(client, core, path):
    # Without a key: /api/v1 checks the header's key first; OC-TOMA's key travels in the body.
    keyless = 401 if path.startswith("/api/v1/") else 400
    assert_json_error(client.post(path, data=NESTED, content_type="application/json"), keyless)
    key = issue_key(core, "permits:write")
    response = client.post(path, data=NESTED, content_type="application/json", headers=bearer(key))
    assert "JSON object" in assert_json_error(response, 400)


@pytest.mark.parametrize("path", [*API_WRITES, DASH])
def test_a_body_over_the_limit_is_a_json_413(client, core, path):
    key = issue_key(core, "permits:write")
    response = client.post(path, data=TEN_MB, content_type="application/json", headers=bearer(key))
    assert "8 MiB" in assert_json_error(response, 413)


@pytest.mark.parametrize("role", [Role.GUEST, Role.ADMIN])
def test_deeply_nested_json_to_dash_is_a_json_400(login_as, role):
    client = login_as(role)
    assert_json_error(client.post(DASH, data=NESTED, content_type="application/json"), 400)
    shallow = json.dumps({"output": "x.children", "inputs": [[[[[[[[[]]]]]]]] * 20]})
    deep = '{"output": "x.children", "inputs": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}"
    assert_json_error(client.post(DASH, data=deep, content_type="application/json"), 400)
    # Depth, not bracket count, is what is refused: many shallow lists are a call like any other.
    refused = client.post(DASH, data=shallow, content_type="application/json")
    assert "unknown callback" in assert_json_error(refused, 400)


def test_other_framework_errors_on_api_paths_are_json(client):
    response = client.delete("/api/OC-TOMA/v1/permits/stats")
    assert "POST" in response.headers["Allow"]
    assert_json_error(response, 405)
    assert_json_error(client.put("/api/v1/lot-groups"), 405)


def test_depth_counts_levels_without_recursion():
    assert depth(1) == 0 and depth([]) == 1 and depth({"a": [1, {"b": []}]}) == 4
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert depth(deep) == 100_001
