"""The ParkMobile client and the Fetch ParkMobile Stats task, against a real local HTTP server
serving the recorded (assumed) payloads in ``payloads/parkmobile/``, down to the rows in the database."""

from __future__ import annotations

import base64
import functools
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from werkzeug import Request, Response

from dashboard.core import Core
from dashboard.services import dashboard_widgets, occupancy, permits, system_settings
from dashboard.services.permits import PermitView
from models import (
    Lot,
    LotZone,
    LotZoneSchedule,
    PayStationRecord,
    Permit,
    PermitKind,
    PermitSource,
    TaskRun,
    utcnow,
)
from tests.workers.payloads import load
from workers import parkmobile
from workers.jobs import execute_task
from workers.parkmobile import ParkMobileClient, ParkMobileError, ParkMobilePermit

USERNAME, PASSWORD, API_KEY = "campus-api", "pm-pass-1234", "pm-key-abcdef"
BASIC = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
AUTH_HEADERS = {"Authorization": BASIC, "X-API-Key": API_KEY}
SINCE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TASK = "fetch-parkmobile"


def payload(name: str) -> Any:
    return load(f"parkmobile/{name}")


def client(httpserver: HTTPServer, **options: Any) -> ParkMobileClient:
    options.setdefault("backoff_factor", 0)
    return ParkMobileClient(httpserver.url_for(""), USERNAME, PASSWORD, API_KEY, **options)


def serve(httpserver: HTTPServer, body: object, status: int = 200) -> None:
    httpserver.expect_request("/permits", method="GET", headers=AUTH_HEADERS).respond_with_json(
        body, status=status
    )


def queries(httpserver: HTTPServer) -> list[dict[str, str]]:
    return [dict(request.args) for request, _response in httpserver.log]


def wait_for_log(httpserver: HTTPServer, count: int) -> None:
    """The test server answers one request at a time: let a slow handler finish first."""
    deadline = time.monotonic() + 5
    while len(httpserver.log) < count and time.monotonic() < deadline:
        time.sleep(0.01)


# The client


def test_reads_permits_with_basic_auth_and_the_api_key(httpserver):
    serve(httpserver, payload("permits"))
    with client(httpserver) as pm:
        batch = pm.permits(SINCE)
    assert batch.rejected == ()
    assert batch.permits[:2] == (
        ParkMobilePermit(
            "PM-40211873",
            "abc-123",
            "1001",
            datetime(2024, 5, 1, 13, 30, tzinfo=UTC),
            datetime(2024, 5, 1, 15, 30, tzinfo=UTC),
            650,
            "CAD",
            raw={},
        ),
        ParkMobilePermit(
            "40211874",
            "CBXR 442",
            "2002",
            datetime(2024, 5, 1, 13, 45, tzinfo=UTC),
            datetime(2024, 5, 1, 17, 45, tzinfo=UTC),
            1200,
            "CAD",
            raw={},
        ),
    )
    assert [p.zone for p in batch.permits] == ["1001", "2002", "9999", "9999", "Stadium East"]
    assert batch.permits[0].raw == payload("permits")["permits"][0]
    assert queries(httpserver) == [{"updatedSince": "2024-05-01T12:00:00Z", "page": "1", "pageSize": "500"}]


def test_follows_pages_while_has_more(httpserver):
    pages = {"1": payload("permits_page1"), "2": payload("permits_page2")}

    def by_page(request: Request) -> Response:
        return Response(json.dumps(pages[request.args["page"]]), content_type="application/json")

    httpserver.expect_request("/permits", headers=AUTH_HEADERS).respond_with_handler(by_page)
    with client(httpserver, page_size=1) as pm:
        batch = pm.permits(SINCE)
    assert [p.permit_id for p in batch.permits] == ["PM-50000001", "PM-50000002"]
    assert [(q["page"], q["pageSize"]) for q in queries(httpserver)] == [("1", "1"), ("2", "1")]


def test_a_server_that_always_has_more_fails_instead_of_looping(httpserver, monkeypatch):
    monkeypatch.setattr(parkmobile, "MAX_PAGES", 3)
    serve(httpserver, payload("permits_page1"))
    with client(httpserver, page_size=1) as pm, pytest.raises(ParkMobileError, match="after 3 pages"):
        pm.permits(SINCE)
    assert len(httpserver.log) == 3


def test_malformed_entries_are_returned_with_their_reason_and_the_rest_kept(httpserver):
    serve(httpserver, payload("permits_malformed"))
    with client(httpserver) as pm:
        batch = pm.permits(SINCE)
    assert [p.permit_id for p in batch.permits] == ["PM-40211890", "PM-40211896"]
    assert [(r.ref, r.reason) for r in batch.rejected] == [
        ("entry #2 of page 1", "no permitId"),
        ("permit PM-40211892", "no licensePlate"),
        ("permit PM-40211893", "startTime has no UTC offset ('2024-05-02T08:30:00')"),
        ("permit PM-40211894", "amount is not a number ('three dollars')"),
        ("entry #6 of page 1", "not an object"),
    ]
    assert batch.rejected[4].raw == "PM-40211895"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"zone": None}, "no zone"),
        ({"zone": "  "}, "no zone"),
        ({"endTime": "2024-05-01T09:00:00-04:00"}, "endTime is not after startTime"),
        ({"endTime": "tomorrow"}, "endTime is not an ISO-8601 time ('tomorrow')"),
        ({"amount": "-1.00"}, "amount is negative or has fractions of a cent ('-1.00')"),
        ({"amount": "6.505"}, "amount is negative or has fractions of a cent ('6.505')"),
        ({"amount": "NaN"}, "amount is negative or has fractions of a cent ('NaN')"),
        ({"amount": None}, "no amount"),
        ({"amount": True}, "no amount"),
        ({"currency": "dollars"}, "currency is not a three-letter code ('dollars')"),
        ({"currency": None}, "currency is not a three-letter code (None)"),
        ({"licensePlate": 12.5}, "no licensePlate"),
    ],
)
def test_each_field_is_checked(httpserver, change, reason):
    entry = payload("permits")["permits"][0] | change
    serve(httpserver, {"permits": [entry]})
    with client(httpserver) as pm:
        batch = pm.permits(SINCE)
    assert batch.permits == ()
    assert [(r.ref, r.reason) for r in batch.rejected] == [("permit PM-40211873", reason)]


@pytest.mark.parametrize("body", [{"data": []}, [], {"permits": {"permitId": "PM-1"}}])
def test_a_page_without_a_permits_list_fails_the_call(httpserver, body):
    serve(httpserver, body)
    with client(httpserver) as pm, pytest.raises(ParkMobileError, match='no "permits" list'):
        pm.permits(SINCE)


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_credentials_name_the_three_settings(httpserver, status):
    httpserver.expect_request("/permits").respond_with_json(payload("error_401"), status=status)
    with client(httpserver) as pm, pytest.raises(ParkMobileError) as error:
        pm.permits(SINCE)
    assert f"HTTP {status}" in str(error.value)
    assert "ParkMobile API Username, ParkMobile API Password and ParkMobile X-API-Key" in str(error.value)


def test_server_errors_are_retried_then_reported(httpserver):
    httpserver.expect_request("/permits").respond_with_json(payload("error_500"), status=500)
    with client(httpserver, retries=2) as pm, pytest.raises(ParkMobileError, match="HTTP 500.*2 retries"):
        pm.permits(SINCE)
    assert len(httpserver.log) == 3


def test_a_server_error_then_success_is_a_success(httpserver):
    httpserver.expect_oneshot_request("/permits").respond_with_json(payload("error_500"), status=503)
    serve(httpserver, payload("permits"))
    with client(httpserver) as pm:
        assert len(pm.permits(SINCE).permits) == 5
    assert len(httpserver.log) == 2


def test_another_status_points_at_the_base_url(httpserver):
    httpserver.expect_request("/permits").respond_with_data("not here", status=404)
    with client(httpserver) as pm, pytest.raises(ParkMobileError, match="HTTP 404.*ParkMobile API Base URL"):
        pm.permits(SINCE)


def test_an_answer_that_is_not_json_is_an_error(httpserver):
    httpserver.expect_request("/permits").respond_with_data("<html>login</html>", content_type="text/html")
    with client(httpserver) as pm, pytest.raises(ParkMobileError, match="not JSON"):
        pm.permits(SINCE)


def test_a_slow_answer_times_out_without_a_retry(httpserver):
    release = threading.Event()

    def slow(_request: Request) -> Response:
        release.wait(5)
        return Response('{"permits": []}', content_type="application/json")

    httpserver.expect_request("/permits").respond_with_handler(slow)
    with client(httpserver, read_timeout=0.2) as pm, pytest.raises(ParkMobileError) as error:
        pm.permits(SINCE)
    assert "did not answer GET" in str(error.value) and "within 0.2 s" in str(error.value)
    release.set()
    wait_for_log(httpserver, 1)
    assert len(httpserver.log) == 1


def test_since_overlaps_the_last_success_and_never_looks_back_more_than_a_week():
    now = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
    assert parkmobile.since(None, now) == now - timedelta(hours=24)
    assert parkmobile.since(now - timedelta(minutes=3), now) == now - timedelta(minutes=13)
    assert parkmobile.since(now - timedelta(days=30), now) == now - timedelta(days=7)


# The task


def configure(core: Core, httpserver: HTTPServer | None = None, **values: object) -> None:
    if httpserver is not None:
        values = {
            "parkmobile_base_url": httpserver.url_for(""),
            "parkmobile_username": USERNAME,
            "parkmobile_password": PASSWORD,
            "parkmobile_api_key": API_KEY,
        } | values
    with core.db.session() as s:
        system_settings.update(s, core.secrets, values, actor_id=None)


@pytest.fixture
def zones(core: Core) -> dict[str, int]:
    """1001 and 2002 as ParkMobile names them; the stadium zone in another case than ParkMobile's."""
    with core.db.session() as s:
        made = [LotZone(name="1001"), LotZone(name="2002"), LotZone(name="stadium east")]
        s.add_all(made)
        s.flush()
        return {zone.name: zone.id for zone in made}


@pytest.fixture
def fast_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """The task's client without backoff sleeps and with a short read timeout."""
    monkeypatch.setattr(
        parkmobile,
        "ParkMobileClient",
        functools.partial(ParkMobileClient, backoff_factor=0, read_timeout=0.3),
    )


def records(core: Core) -> dict[str, PermitView]:
    """ParkMobile's sessions as stored: temporary permits (no pay-station record is written)."""
    with core.db.session() as s:
        assert s.scalar(select(func.count(PayStationRecord.id))) == 0
        rows = s.scalars(
            select(Permit).where(Permit.source == PermitSource.PARKMOBILE).order_by(Permit.external_id)
        ).all()
        return {str(row.external_id): permits.view(row) for row in rows}


def test_without_credentials_the_task_is_not_configured(core):
    run = execute_task(core, TASK, trigger="test")
    assert run.outcome == "not_configured"
    assert run.message == (
        "ParkMobile API Username, ParkMobile API Password, ParkMobile X-API-Key, ParkMobile API Base URL "
        "not set (System Settings > Third Party)"
    )


def test_a_missing_api_key_alone_is_named(core, httpserver):
    configure(core, httpserver, parkmobile_api_key="")
    run = execute_task(core, TASK, trigger="test")
    assert (run.outcome, run.message) == (
        "not_configured",
        "ParkMobile X-API-Key not set (System Settings > Third Party)",
    )
    assert httpserver.log == []


def test_imports_permits_of_matching_zones_and_names_the_others(core, httpserver, zones):
    configure(core, httpserver)
    serve(httpserver, payload("permits"))

    run = execute_task(core, TASK, trigger="test")

    assert run.outcome == "success", run.message
    assert run.message.startswith("5 ParkMobile permits changed since ")
    assert run.message.endswith(
        " UTC; 3 imported, 0 updated, 0 unchanged; 2 skipped, no lot zone of that name: 9999 (2)"
    )
    assert run.rows_touched == 3
    found = records(core)
    assert sorted(found) == ["40211874", "PM-40211873", "PM-40211882"]
    first = found["PM-40211873"]
    assert (first.source, first.kind, first.status, first.plates) == (
        "parkmobile",
        "temporary",
        "active",
        ("ABC-123",),
    )
    assert (first.zone_id, first.zone_name, first.lot_id) == (zones["1001"], "1001", None)
    assert (first.valid_from, first.valid_to) == (
        datetime(2024, 5, 1, 13, 30, tzinfo=UTC),
        datetime(2024, 5, 1, 15, 30, tzinfo=UTC),
    )
    assert (first.amount_cents, first.currency) == (650, "CAD")
    assert found["40211874"].currency == "CAD" and found["40211874"].amount_cents == 1200
    # Matched regardless of case.
    stadium = found["PM-40211882"]
    assert (stadium.zone_id, stadium.zone_name) == (zones["stadium east"], "stadium east")


def test_an_imported_session_counts_in_the_lot_sold_today_oc_toma_and_check_a_plate_once(
    core, httpserver, zones
):
    """Zone 1001 is scheduled on Visitor Lot: ParkMobile's session there is one of the lot's
    permits (its permits figure), of today's sales, of the zone's OC-TOMA count, and what makes
    the plate valid, found once."""
    with core.db.session() as s:
        lot = Lot(name="Visitor Lot", capacity=20)
        s.add(lot)
        s.flush()
        s.add(LotZoneSchedule(lot_id=lot.id, zone_id=zones["1001"]))
        lot_id = lot.id
    configure(core, httpserver)
    serve(httpserver, payload("permits"))

    assert execute_task(core, TASK, trigger="test").outcome == "success"

    during = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
    tz = core.settings.tz
    with core.db.session() as s:
        assert occupancy.permit_counts(s, during) == {lot_id: 1}
        sold = dashboard_widgets.permits_today(s, utcnow(), tz)
        assert (sold.count, sold.by_source) == (3, (("parkmobile", 3),))
        assert dict(sold.revenue) == {"CAD": 650 + 1200 + 1500}
        stats = {count.zone: count.temporary for count in permits.zone_stats(s, None, during)}
        assert stats == {"1001": 1, "2002": 1, "stadium east": 0}  # the stadium's is later
        check = permits.check_plate(s, "abc 123", lot_id, during, tz)
    assert check.valid and check.sessions == ()
    assert [p.external_id for p in check.permits] == ["PM-40211873"]
    assert check.reason.startswith("Valid: temporary permit T-")
    assert records(core)["PM-40211873"].lot_id == lot_id


def test_a_second_run_imports_nothing_new_and_asks_from_the_last_success(core, httpserver, zones):
    configure(core, httpserver)
    serve(httpserver, payload("permits"))
    first = execute_task(core, TASK, trigger="test")
    second = execute_task(core, TASK, trigger="test")

    assert second.outcome == "success"
    assert "0 imported, 0 updated, 3 unchanged" in second.message
    assert second.rows_touched == 0
    with core.db.session() as s:
        assert s.scalar(select(func.count(Permit.id))) == 3
        started = s.get(TaskRun, first.id).started_at
    asked = [datetime.fromisoformat(q["updatedSince"]) for q in queries(httpserver)]
    assert asked[1] == (started - parkmobile.OVERLAP).replace(microsecond=0)
    assert asked[0] < asked[1]


def test_an_extended_permit_updates_its_end_and_amount(core, httpserver, zones):
    configure(core, httpserver)
    httpserver.expect_oneshot_request("/permits").respond_with_json(payload("permits"))
    serve(httpserver, payload("permits_extended"))
    execute_task(core, TASK, trigger="test")
    number = records(core)["PM-40211873"].number

    run = execute_task(core, TASK, trigger="test")

    assert run.message.endswith(" UTC; 0 imported, 1 updated, 0 unchanged"), run.message
    assert run.rows_touched == 1
    extended = records(core)["PM-40211873"]
    assert extended.valid_to == datetime(2024, 5, 1, 16, 30, tzinfo=UTC)
    assert extended.amount_cents == 975
    assert extended.number == number  # the same permit, extended
    assert len(records(core)) == 3


def test_records_past_the_zone_capacity_are_imported_and_flagged(core, httpserver, zones):
    """A pulled permit was sold already: it is never refused, but one imported when its zone was
    full (here by a HotSpot permit pushed for the same time) is flagged and counted in the log."""
    with core.db.session() as s:
        s.get(LotZone, zones["1001"]).capacity = 1
        s.get(LotZone, zones["2002"]).capacity = 1
        s.add(
            Permit(
                number="T-HOTSPOT1",
                kind=PermitKind.TEMPORARY,
                source=PermitSource.HOTSPOT,
                external_id="HS-1",
                zone_id=zones["1001"],
                valid_from=datetime(2024, 5, 1, 14, 0, tzinfo=UTC),
                valid_to=datetime(2024, 5, 1, 15, 0, tzinfo=UTC),
            )
        )
    configure(core, httpserver)
    serve(httpserver, payload("permits"))

    run = execute_task(core, TASK, trigger="test")

    assert run.outcome == "success", run.message
    assert run.message.endswith(
        "; 1 imported past their lot's allowance or zone's capacity, flagged: zone 1001 (1)"
    ), run.message
    found = records(core)
    assert sorted(found) == ["40211874", "PM-40211873", "PM-40211882"]  # all three imported
    assert found["PM-40211873"].over_allowance is True
    assert found["40211874"].over_allowance is False  # zone 2002 had room
    assert found["PM-40211882"].over_allowance is False  # no capacity set: no limit


def test_malformed_entries_are_skipped_counted_and_named(core, httpserver, zones, caplog):
    configure(core, httpserver)
    serve(httpserver, payload("permits_malformed"))

    run = execute_task(core, TASK, trigger="test")

    assert run.outcome == "success"
    assert run.message.endswith(
        " UTC; 1 imported, 0 updated, 0 unchanged; 6 malformed, skipped: entry #2 of page 1 (no permitId), "
        "permit PM-40211892 (no licensePlate), "
        "permit PM-40211893 (startTime has no UTC offset ('2024-05-02T08:30:00')), "
        "permit PM-40211894 (amount is not a number ('three dollars')), "
        "entry #6 of page 1 (not an object), "
        "permit PM-40211896 (the plate 'A VERY LONG PLATE TEXT' is longer than 16 characters)"
    ), run.message
    assert list(records(core)) == ["PM-40211890"]
    # The whole entry is in the worker's log, so nothing is lost.
    assert "'licensePlate': 'NOID 1'" in caplog.text


def test_every_entry_malformed_fails_the_run(core, httpserver, zones):
    configure(core, httpserver)
    entries = payload("permits_malformed")["permits"][1:6]
    serve(httpserver, {"permits": entries})
    run = execute_task(core, TASK, trigger="test")
    assert run.outcome == "failed"
    assert run.message.startswith("every one of the 5 ParkMobile permits was malformed, nothing was imported")
    assert records(core) == {}


def test_no_changes_is_a_quiet_success(core, httpserver, zones):
    configure(core, httpserver)
    serve(httpserver, {"permits": [], "hasMore": False})
    run = execute_task(core, TASK, trigger="test")
    assert run.outcome == "success"
    assert run.message.endswith(" UTC; 0 imported, 0 updated, 0 unchanged")


def test_an_api_error_fails_the_run_with_a_clear_message(core, httpserver, zones, fast_client):
    configure(core, httpserver)
    httpserver.expect_request("/permits").respond_with_json(payload("error_500"), status=500)
    run = execute_task(core, TASK, trigger="test")
    assert run.outcome == "failed"
    assert run.message == (
        f"ParkMobile answered HTTP 500 to GET {httpserver.url_for('/permits')} after 3 retries: "
        "the service is having trouble, the next run tries again"
    )
    assert records(core) == {}


def test_rejected_credentials_fail_the_run(core, httpserver, zones):
    configure(core, httpserver, parkmobile_api_key="wrong-key")
    httpserver.expect_request("/permits", headers={"X-API-Key": "wrong-key"}).respond_with_json(
        payload("error_401"), status=401
    )
    run = execute_task(core, TASK, trigger="test")
    assert run.outcome == "failed"
    assert "ParkMobile rejected the credentials (HTTP 401)" in run.message


def test_a_timeout_fails_the_run(core, httpserver, zones, fast_client):
    configure(core, httpserver)
    release = threading.Event()

    def slow(_request: Request) -> Response:
        release.wait(5)
        return Response('{"permits": []}', content_type="application/json")

    httpserver.expect_request("/permits").respond_with_handler(slow)
    run = execute_task(core, TASK, trigger="test")
    release.set()
    wait_for_log(httpserver, 1)
    assert run.outcome == "failed"
    assert run.message.startswith("ParkMobile did not answer GET ")
    assert run.message.endswith(" within 0.3 s")
    assert records(core) == {}
