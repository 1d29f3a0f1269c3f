"""The Mistall client against a real local HTTP server serving the recorded (assumed) payloads."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.workers.payloads import load
from workers.mistall import MistallClient, MistallError, MistallLotReading

TOKEN = load("mistall_token")["access_token"]


def client(httpserver: HTTPServer, **options: Any) -> MistallClient:
    options.setdefault("backoff_factor", 0)
    return MistallClient(httpserver.url_for(""), "pilot-user", "pilot-pass", **options)


def serve_login(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        "/auth/token", method="POST", json={"username": "pilot-user", "password": "pilot-pass"}
    ).respond_with_json(load("mistall_token"))


def serve_lots(httpserver: HTTPServer, payload: object) -> None:
    httpserver.expect_request(
        "/lots", method="GET", headers={"Authorization": f"Bearer {TOKEN}"}
    ).respond_with_json(payload)


def test_logs_in_and_reads_every_lot_with_numbers_as_numbers_or_strings(httpserver):
    serve_login(httpserver)
    serve_lots(httpserver, load("mistall_lots"))
    with client(httpserver) as mistall:
        lots = mistall.fetch_lots()
    assert lots == [
        MistallLotReading("ML-1", "North Garage", 420, 233, datetime(2024, 5, 1, 14, 5, tzinfo=UTC)),
        MistallLotReading("ML-2", "Ring Road East", 180, 171, datetime(2024, 5, 1, 14, 4, 30, tzinfo=UTC)),
        MistallLotReading("3", "Visitor Lot C", 96, 12, None),
        MistallLotReading("ML-4", "Stadium Overflow", None, None, None),
    ]


def test_a_lot_without_a_name_is_shown_by_its_id(httpserver):
    serve_login(httpserver)
    serve_lots(httpserver, {"lots": [{"id": "ML-7", "capacity": 10, "occupied": 1}]})
    with client(httpserver) as mistall:
        assert mistall.fetch_lots()[0].name == "ML-7"


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_credentials_name_the_settings_to_check(httpserver, status):
    httpserver.expect_request("/auth/token", method="POST").respond_with_json(
        {"error": "invalid_grant"}, status=status
    )
    with client(httpserver) as mistall, pytest.raises(MistallError) as error:
        mistall.fetch_lots()
    assert f"HTTP {status}" in str(error.value)
    assert "Mistall Username and Mistall Password" in str(error.value)
    assert [entry[0].path for entry in httpserver.log] == ["/auth/token"]


def test_a_refused_lot_list_says_the_account_lacks_access(httpserver):
    serve_login(httpserver)
    httpserver.expect_request("/lots").respond_with_data("forbidden", status=403)
    with client(httpserver) as mistall, pytest.raises(MistallError, match="lack access to lot data"):
        mistall.fetch_lots()


def test_a_login_answer_without_a_token_is_an_error(httpserver):
    httpserver.expect_request("/auth/token", method="POST").respond_with_json({"token_type": "Bearer"})
    with client(httpserver) as mistall, pytest.raises(MistallError, match="without an access_token"):
        mistall.fetch_lots()


def test_malformed_json_is_an_error(httpserver):
    serve_login(httpserver)
    httpserver.expect_request("/lots").respond_with_data(
        '{"lots": [{"id": "ML-1",', content_type="application/json"
    )
    with client(httpserver) as mistall, pytest.raises(MistallError, match="not JSON"):
        mistall.fetch_lots()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"data": []}, 'no "lots" list'),
        ([{"id": "ML-1"}], 'no "lots" list'),
        ({"lots": ["ML-1"]}, "lot #1 is not an object"),
        ({"lots": [{"name": "No Id"}]}, "lot #1 has no id"),
        ({"lots": [{"id": "ML-1", "occupied": "n/a"}]}, "ML-1: occupied is not a whole number"),
        ({"lots": [{"id": "ML-1", "capacity": -5}]}, "ML-1: capacity is not a whole number"),
        ({"lots": [{"id": "ML-1", "updated_at": "yesterday"}]}, "ML-1: updated_at is not an ISO-8601"),
    ],
)
def test_an_unexpected_shape_is_an_error_naming_the_lot_and_field(httpserver, payload, expected):
    serve_login(httpserver)
    serve_lots(httpserver, payload)
    with client(httpserver) as mistall, pytest.raises(MistallError, match=expected):
        mistall.fetch_lots()


def test_a_slow_answer_times_out_without_a_retry(httpserver):
    serve_login(httpserver)
    release = threading.Event()

    def slow(_request: Request) -> Response:
        release.wait(5)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/lots").respond_with_handler(slow)
    with client(httpserver, read_timeout=0.2) as mistall, pytest.raises(MistallError) as error:
        mistall.fetch_lots()
    assert "did not answer GET" in str(error.value) and "within 0.2 s" in str(error.value)
    release.set()
    # The test server answers one request at a time: let it finish before the next test uses it.
    deadline = time.monotonic() + 5
    while len(httpserver.log) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [entry[0].path for entry in httpserver.log] == ["/auth/token", "/lots"]


def test_server_errors_are_retried_then_succeed(httpserver):
    serve_login(httpserver)
    httpserver.expect_oneshot_request("/lots").respond_with_data("busy", status=503)
    httpserver.expect_oneshot_request("/lots").respond_with_data("busy", status=502)
    serve_lots(httpserver, load("mistall_lots"))
    with client(httpserver) as mistall:
        assert len(mistall.fetch_lots()) == 4
    assert [entry[0].path for entry in httpserver.log] == ["/auth/token", "/lots", "/lots", "/lots"]


def test_server_errors_after_the_last_retry_are_an_error(httpserver):
    httpserver.expect_request("/auth/token").respond_with_data("down", status=503)
    with client(httpserver, retries=2) as mistall, pytest.raises(MistallError, match="HTTP 503.*2 retries"):
        mistall.fetch_lots()
    assert len(httpserver.log) == 3


def test_an_unreachable_server_is_an_error_naming_the_url():
    mistall = MistallClient("http://127.0.0.1:9", "u", "p", retries=1, backoff_factor=0)
    with (
        mistall,
        pytest.raises(MistallError, match="could not reach Mistall at http://127.0.0.1:9/auth/token"),
    ):
        mistall.fetch_lots()
