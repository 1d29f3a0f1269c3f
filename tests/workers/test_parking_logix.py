"""The Parking Logix client against a real local HTTP server serving the recorded payloads."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.workers.payloads import load
from workers.parking_logix import (
    LOCATION_INFO,
    MULTI_LOT_INFO,
    LotCount,
    ParkingLogixClient,
    ParkingLogixError,
    quoted,
)

KEY = "pl-key-1"


def client(httpserver: HTTPServer, **options: Any) -> ParkingLogixClient:
    options.setdefault("backoff_factor", 0)
    return ParkingLogixClient(httpserver.url_for(""), **options)


def paths(httpserver: HTTPServer) -> list[str]:
    return [request.path for request, _response in httpserver.log]


def test_multi_lot_info_reads_numbers_given_as_strings_or_numbers(httpserver):
    httpserver.expect_request(MULTI_LOT_INFO, headers={"x-api-key": KEY}).respond_with_json(
        load("parking_logix_multi_lot_info")
    )
    with client(httpserver) as logix:
        lots = logix.lots(KEY)
    assert lots == [
        LotCount("Mountaineer Garage", 1143, 310),
        LotCount("Lot A", 4380, 3410),
        LotCount("Health Sciences Deck", 600, 600),
    ]
    assert [lot.occupied for lot in lots] == [833, 970, 0]
    assert paths(httpserver) == [MULTI_LOT_INFO]


def test_a_single_lot_key_refused_multi_lot_info_falls_back_to_location_info(httpserver):
    httpserver.expect_request(MULTI_LOT_INFO).respond_with_json({"message": "Forbidden"}, status=403)
    httpserver.expect_request(LOCATION_INFO, headers={"x-api-key": KEY}).respond_with_json(
        load("parking_logix_location_info")
    )
    with client(httpserver) as logix:
        lots = logix.lots(KEY)
    # "2017-06-14 12:38:34 -7:00": the offset's one-digit hour is read too.
    assert lots == [LotCount("Evansdale Lot", 200, 45, datetime(2017, 6, 14, 19, 38, 34, tzinfo=UTC))]
    assert paths(httpserver) == [MULTI_LOT_INFO, LOCATION_INFO]


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, "was not accepted"), (422, "could not process the request")],
)
def test_other_error_statuses_are_reported_without_a_fallback(httpserver, status, expected):
    httpserver.expect_request(MULTI_LOT_INFO).respond_with_json({"message": "Nope"}, status=status)
    with client(httpserver) as logix, pytest.raises(ParkingLogixError) as error:
        logix.lots(KEY)
    assert error.value.status == status
    assert f"HTTP {status} to {MULTI_LOT_INFO} (Nope)" in str(error.value) and expected in str(error.value)
    assert KEY not in str(error.value)
    assert paths(httpserver) == [MULTI_LOT_INFO]


def test_a_key_refused_by_both_calls_reports_the_second_refusal(httpserver):
    httpserver.expect_request(MULTI_LOT_INFO).respond_with_data("", status=403)
    httpserver.expect_request(LOCATION_INFO).respond_with_data("", status=403)
    with client(httpserver) as logix, pytest.raises(ParkingLogixError, match="has no access to this call"):
        logix.lots(KEY)
    assert paths(httpserver) == [MULTI_LOT_INFO, LOCATION_INFO]


def test_http_200_with_status_error_is_an_error_with_the_vendor_code(httpserver):
    httpserver.expect_request(MULTI_LOT_INFO).respond_with_json(load("parking_logix_error"))
    with client(httpserver) as logix, pytest.raises(ParkingLogixError) as error:
        logix.lots(KEY)
    assert error.value.code == "INVALID_API_KEY" and error.value.status is None
    assert str(error.value) == f"Parking Logix refused {MULTI_LOT_INFO}: INVALID_API_KEY"


def test_malformed_json_is_an_error(httpserver):
    httpserver.expect_request(MULTI_LOT_INFO).respond_with_data("[[{", content_type="application/json")
    with client(httpserver) as logix, pytest.raises(ParkingLogixError, match="not JSON"):
        logix.lots(KEY)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"lots": []}, "not a list"),
        ([["Lot A"]], "a lot is not an object"),
        ([[{"total_spaces": 1, "free_spaces": 0}]], "a lot has no location_name"),
        ([[{"location_name": "Lot A", "total_spaces": "many", "free_spaces": 0}]], "total_spaces of 'Lot A'"),
        ([[{"location_name": "Lot A", "total_spaces": 10}]], "free_spaces of 'Lot A'"),
    ],
)
def test_an_unexpected_shape_is_an_error(httpserver, payload, expected):
    httpserver.expect_request(MULTI_LOT_INFO).respond_with_json(payload)
    with client(httpserver) as logix, pytest.raises(ParkingLogixError, match="unexpected shape") as error:
        logix.lots(KEY)
    assert expected in str(error.value)


def test_more_free_spaces_than_spaces_counts_as_empty_not_negative():
    assert LotCount("Lot A", 10, 12).occupied == 0


def test_a_slow_answer_times_out_without_a_retry(httpserver):
    release = threading.Event()

    def slow(_request: Request) -> Response:
        release.wait(5)
        return Response("[[]]", content_type="application/json")

    httpserver.expect_request(MULTI_LOT_INFO).respond_with_handler(slow)
    with (
        client(httpserver, read_timeout=0.2) as logix,
        pytest.raises(ParkingLogixError, match="within 0.2 s"),
    ):
        logix.lots(KEY)
    release.set()
    # The test server answers one request at a time: let it finish before the next test uses it.
    deadline = time.monotonic() + 5
    while not httpserver.log and time.monotonic() < deadline:
        time.sleep(0.01)
    assert paths(httpserver) == [MULTI_LOT_INFO]


def test_server_errors_are_retried_then_succeed(httpserver):
    httpserver.expect_oneshot_request(MULTI_LOT_INFO).respond_with_data("busy", status=503)
    httpserver.expect_request(MULTI_LOT_INFO).respond_with_json(load("parking_logix_multi_lot_info"))
    with client(httpserver) as logix:
        assert len(logix.lots(KEY)) == 3
    assert paths(httpserver) == [MULTI_LOT_INFO, MULTI_LOT_INFO]


def test_server_errors_after_the_last_retry_are_an_error(httpserver):
    httpserver.expect_request(MULTI_LOT_INFO).respond_with_data("down", status=503)
    with client(httpserver, retries=2) as logix, pytest.raises(ParkingLogixError) as error:
        logix.lots(KEY)
    assert error.value.status == 503 and "after 2 retries" in str(error.value)
    assert len(httpserver.log) == 3


def test_an_unreachable_server_is_an_error_naming_the_url():
    with (
        ParkingLogixClient("http://127.0.0.1:9", retries=1, backoff_factor=0) as logix,
        pytest.raises(ParkingLogixError, match="could not reach Parking Logix at http://127.0.0.1:9/pl1/"),
    ):
        logix.lots(KEY)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Mountaineer Garage", '"Mountaineer Garage"'),
        ("Mountaineer Garage ", '"Mountaineer Garage␠"'),
        (" Lot A", '"␠Lot A"'),
        ("Lot  A", '"Lot␠␠A"'),
        ("Lot\tA", '"Lot\\tA"'),
        ("Lot\u00a0A", '"Lot\\xa0A"'),
        ("Lot\u200bA", '"Lot\\u200bA"'),
        ("C:\\lots", '"C:\\\\lots"'),
        (" ", '"␠"'),
    ],
)
def test_quoted_names_show_invisible_whitespace(name, shown):
    assert quoted(name) == shown
