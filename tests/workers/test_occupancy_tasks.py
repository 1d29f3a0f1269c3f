"""The Mistall, Parking Logix and Occupancy Snapshots tasks, run through ``execute_task`` against a
real local HTTP server, down to the figures in Redis and the rows in the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from dashboard.core import Core
from dashboard.services import lot_groups, occupancy, system_settings, vendor_lots
from models import Lot, LotGroup, MistallLot, OccupancySnapshot, OccupancySource, TaskRun, utcnow
from tests.workers.payloads import load
from workers.jobs import execute_task
from workers.parking_logix import LOCATION_INFO, MULTI_LOT_INFO
from workers.tasks import REGISTRY

TOKEN = load("mistall_token")["access_token"]


def configure(core: Core, **values: object) -> None:
    with core.db.session() as s:
        system_settings.update(s, core.secrets, values, actor_id=None)


def configure_mistall(core: Core, httpserver: HTTPServer) -> None:
    configure(
        core,
        mistall_enabled=True,
        mistall_api_url=httpserver.url_for(""),
        mistall_username="pilot-user",
        mistall_password="pilot-pass",
    )


def serve_mistall(httpserver: HTTPServer, lots: object) -> None:
    httpserver.expect_request("/auth/token", method="POST").respond_with_json(load("mistall_token"))
    httpserver.expect_request("/lots", headers={"Authorization": f"Bearer {TOKEN}"}).respond_with_json(lots)


def configure_logix(core: Core, httpserver: HTTPServer) -> None:
    configure(core, parking_logix_enabled=True, parking_logix_base_url=httpserver.url_for(""))


@pytest.fixture
def make_group(core: Core) -> Callable[..., int]:
    def make(
        name: str, *, mistall: str | None = None, logix: str | None = None, key: str | None = None
    ) -> int:
        with core.db.session() as s:
            group = LotGroup(
                name=name,
                mistall_lot_id=mistall,
                parking_logix_name=logix,
                parking_logix_api_key=core.secrets.encrypt(key) if key else None,
            )
            s.add(group)
            s.flush()
            return group.id

    return make


def state(core: Core, group_id: int) -> occupancy.GroupOccupancy:
    with core.db.session() as s:
        policy = occupancy.load_policy(s, core.secrets)
        (found,) = occupancy.group_states(
            s, occupancy.LiveStore(core.redis), policy.staleness, utcnow(), [group_id]
        )
    return found


def figure(found: occupancy.GroupOccupancy, source: OccupancySource) -> occupancy.Figure:
    (match,) = [f for f in found.sources if f.source is source]
    return match


def logged_runs(core: Core, name: str) -> list[tuple[str, str]]:
    with core.db.session() as s:
        runs = s.scalars(select(TaskRun).where(TaskRun.task_name == name).order_by(TaskRun.id))
        return [(run.trigger, run.outcome.value) for run in runs]


# Update Mistall


def test_mistall_off_is_not_configured(core):
    run = execute_task(core, "update-mistall", trigger="test")
    assert (run.outcome, run.message) == (
        "not_configured",
        "Enable Mistall Usage is off (System Settings > Third Party)",
    )
    assert logged_runs(core, "update-mistall") == [("test", "not_configured")]


def test_mistall_without_url_or_password_says_which_is_missing(core):
    configure(core, mistall_enabled=True, mistall_username="pilot-user")
    run = execute_task(core, "update-mistall", trigger="test")
    assert run.outcome == "not_configured"
    assert run.message == "Mistall API URL, Mistall Password not set (System Settings > Third Party)"


def test_mistall_import_fills_the_dropdown_and_the_groups_figures(core, httpserver, make_group):
    configure_mistall(core, httpserver)
    serve_mistall(httpserver, load("mistall_lots"))
    north = make_group("North Garage Group", mistall="ML-1")
    ring = make_group("Ring Road", mistall="ML-2")
    make_group("Stadium", mistall="ML-4")
    make_group("Old Pilot Lot", mistall="ML-9")
    make_group("No Mistall")

    run = execute_task(core, "update-mistall", trigger="test")

    assert run.outcome == "success"
    assert run.message == (
        "4 Mistall lots imported; 2 lot groups updated; unassociated: Visitor Lot C; "
        "Mistall lot not in Mistall's answer: Old Pilot Lot (ML-9); Mistall sent no count for: Stadium"
    )
    assert run.rows_touched == 4 + 2
    assert logged_runs(core, "update-mistall") == [("test", "success")]
    with core.db.session() as s:
        assert vendor_lots.mistall_lot_choices(s) == [
            ("ML-1", "North Garage (ML-1)"),
            ("ML-2", "Ring Road East (ML-2)"),
            ("ML-4", "Stadium Overflow (ML-4)"),
            ("3", "Visitor Lot C (3)"),
        ]
        ml1 = s.scalar(select(MistallLot).where(MistallLot.mistall_id == "ML-1"))
        assert (ml1.capacity, ml1.occupied) == (420, 233)
        assert ml1.reported_at == datetime(2024, 5, 1, 14, 5, tzinfo=UTC) and ml1.imported_at is not None
    north_state = state(core, north)
    assert north_state.physical is not None
    assert (north_state.physical.source, north_state.physical.occupied, north_state.physical.capacity) == (
        OccupancySource.MISTALL,
        233,
        420,
    )
    # Mistall's own time of the count: an old count shows as stale rather than fresh.
    assert north_state.physical.updated_at == datetime(2024, 5, 1, 14, 5, tzinfo=UTC)
    assert north_state.physical.stale
    ring_figure = state(core, ring).physical
    assert ring_figure is not None and (ring_figure.occupied, ring_figure.capacity) == (171, 180)


def test_mistall_import_twice_updates_rows_instead_of_adding_them(core, httpserver, make_group):
    configure_mistall(core, httpserver)
    lots = load("mistall_lots")
    serve_mistall(httpserver, lots)
    execute_task(core, "update-mistall", trigger="test")
    httpserver.clear()
    lots["lots"][0]["occupied"] = 300
    lots["lots"][0]["name"] = "North Garage (renamed)"
    serve_mistall(httpserver, lots)
    assert execute_task(core, "update-mistall", trigger="test").outcome == "success"
    with core.db.session() as s:
        assert s.scalar(select(func.count()).select_from(MistallLot)) == 4
        ml1 = s.scalar(select(MistallLot).where(MistallLot.mistall_id == "ML-1"))
        assert (ml1.name, ml1.occupied) == ("North Garage (renamed)", 300)


def test_a_count_above_the_sanity_limit_is_kept_but_flagged(core, httpserver, make_group):
    configure_mistall(core, httpserver)
    serve_mistall(httpserver, {"lots": [{"id": "ML-1", "name": "North", "capacity": 100, "occupied": 130}]})
    group = make_group("North", mistall="ML-1")
    execute_task(core, "update-mistall", trigger="test")
    physical = state(core, group).physical
    assert physical is not None and physical.occupied == 130
    assert physical.flag == "above 110% of capacity: the count may have drifted"


def test_mistall_rejecting_the_login_fails_the_run_with_the_reason(core, httpserver):
    configure_mistall(core, httpserver)
    httpserver.expect_request("/auth/token").respond_with_json({"error": "invalid_grant"}, status=401)
    run = execute_task(core, "update-mistall", trigger="test")
    assert run.outcome == "failed"
    assert "Mistall rejected the login (HTTP 401)" in run.message
    assert logged_runs(core, "update-mistall") == [("test", "failed")]


# Parking Logix Sync


def test_parking_logix_off_is_not_configured(core, make_group):
    make_group("Mountaineer", logix="Mountaineer Garage", key="key-a")
    run = execute_task(core, "parking-logix-sync", trigger="test")
    assert (run.outcome, run.message) == (
        "not_configured",
        "Enable Parking Logix Integration is off (System Settings > Third Party)",
    )


def test_parking_logix_without_configured_groups_is_not_configured(core, httpserver, make_group):
    configure_logix(core, httpserver)
    make_group("Name Only", logix="Lot A")
    make_group("Key Only", key="key-a")
    run = execute_task(core, "parking-logix-sync", trigger="test")
    assert run.outcome == "not_configured"
    assert "No lot group has both a Parking Logix API key and a Parking Logix name" in run.message
    assert httpserver.log == []


def serve_keys(httpserver: HTTPServer) -> None:
    """key-a may call multi-lot-info; key-b is a single-lot key (HTTP 403 there, location-info works)."""
    httpserver.expect_request(MULTI_LOT_INFO, headers={"x-api-key": "key-a"}).respond_with_json(
        load("parking_logix_multi_lot_info")
    )
    httpserver.expect_request(MULTI_LOT_INFO, headers={"x-api-key": "key-b"}).respond_with_data(
        "", status=403
    )
    httpserver.expect_request(LOCATION_INFO, headers={"x-api-key": "key-b"}).respond_with_json(
        load("parking_logix_location_info")
    )


def test_parking_logix_calls_each_key_once_and_matches_names_exactly(core, httpserver, make_group):
    configure_logix(core, httpserver)
    serve_keys(httpserver)
    garage = make_group("Mountaineer", logix="Mountaineer Garage", key="key-a")
    lot_a = make_group("Alpha", logix="Lot A", key="key-a")
    lowercase = make_group("Alpha Lowercase", logix="lot a", key="key-a")
    evansdale = make_group("Evansdale", logix="Evansdale Lot", key="key-b")

    run = execute_task(core, "parking-logix-sync", trigger="test")

    assert run.outcome == "success"
    assert run.rows_touched == 3
    assert run.message.splitlines() == [
        "3 lot groups updated from 2 of 2 API keys",
        "key of Alpha, Alpha Lowercase, Mountaineer: 2 of 3 lot groups updated; "
        'no Parking Logix lot of that exact name: "lot a" for Alpha Lowercase',
        "key of Evansdale: 1 of 1 lot groups updated",
        'Parking Logix lots no lot group claims: "Health Sciences Deck"',
    ]
    calls = [(request.path, request.headers["x-api-key"]) for request, _response in httpserver.log]
    assert calls == [(MULTI_LOT_INFO, "key-a"), (MULTI_LOT_INFO, "key-b"), (LOCATION_INFO, "key-b")]
    for group, expected in [(garage, (833, 1143)), (lot_a, (970, 4380)), (evansdale, (155, 200))]:
        physical = state(core, group).physical
        assert physical is not None
        assert (physical.source, physical.occupied, physical.capacity) == (
            OccupancySource.PARKING_LOGIX,
            *expected,
        )
    assert state(core, lowercase).physical is None
    assert logged_runs(core, "parking-logix-sync") == [("test", "success")]


def test_a_renamed_lot_is_reported_and_leaves_the_groups_figure_alone(core, httpserver, make_group):
    configure_logix(core, httpserver)
    group = make_group("Mountaineer", logix="Mountaineer Garage", key="key-a")
    payload = load("parking_logix_multi_lot_info")
    httpserver.expect_request(MULTI_LOT_INFO).respond_with_json(payload)
    execute_task(core, "parking-logix-sync", trigger="test")
    before = figure(state(core, group), OccupancySource.PARKING_LOGIX)

    httpserver.clear()
    payload[0][0]["location_name"] = "Mountaineer Parking Garage"
    payload[0][0]["free_spaces"] = "0"
    httpserver.expect_request(MULTI_LOT_INFO).respond_with_json(payload)
    run = execute_task(core, "parking-logix-sync", trigger="test")

    assert run.outcome == "success" and run.rows_touched == 0
    assert 'no Parking Logix lot of that exact name: "Mountaineer Garage" for Mountaineer' in run.message
    assert "Mountaineer Parking Garage" in run.message
    assert figure(state(core, group), OccupancySource.PARKING_LOGIX).updated_at == before.updated_at
    assert figure(state(core, group), OccupancySource.PARKING_LOGIX).occupied == before.occupied == 833


def test_one_failing_key_is_reported_and_the_others_carry_on(core, httpserver, make_group):
    configure_logix(core, httpserver)
    httpserver.expect_request(MULTI_LOT_INFO, headers={"x-api-key": "key-a"}).respond_with_json(
        load("parking_logix_multi_lot_info")
    )
    httpserver.expect_request(MULTI_LOT_INFO, headers={"x-api-key": "key-bad"}).respond_with_json(
        load("parking_logix_error")
    )
    garage = make_group("Mountaineer", logix="Mountaineer Garage", key="key-a")
    make_group("Broken One", logix="Lot X", key="key-bad")
    make_group("Broken Two", logix="Lot Y", key="key-bad")

    run = execute_task(core, "parking-logix-sync", trigger="test")

    assert run.outcome == "partly_failed"
    assert run.message.splitlines() == [
        "1 lot groups updated from 1 of 2 API keys",
        f"key of Broken One, Broken Two: FAILED: Parking Logix refused {MULTI_LOT_INFO}: INVALID_API_KEY",
        "key of Mountaineer: 1 of 1 lot groups updated",
        'Parking Logix lots no lot group claims: "Health Sciences Deck", "Lot A"',
    ]
    assert "key-bad" not in run.message
    assert state(core, garage).physical is not None
    assert logged_runs(core, "parking-logix-sync") == [("test", "partly_failed")]


def test_a_key_refused_with_http_401_makes_the_run_partly_failed(core, httpserver, make_group):
    configure_logix(core, httpserver)
    serve_keys(httpserver)
    httpserver.expect_request(MULTI_LOT_INFO, headers={"x-api-key": "key-old"}).respond_with_json(
        {"message": "Unauthorized"}, status=401
    )
    make_group("Mountaineer", logix="Mountaineer Garage", key="key-a")
    make_group("Expired", logix="Lot A", key="key-old")

    run = execute_task(core, "parking-logix-sync", trigger="test")

    assert run.outcome == "partly_failed" and run.rows_touched == 1
    assert run.message.splitlines()[:3] == [
        "1 lot groups updated from 1 of 2 API keys",
        f"key of Expired: FAILED: Parking Logix answered HTTP 401 to {MULTI_LOT_INFO} (Unauthorized): "
        "the API key was not accepted: check the Parking Logix API key on the lot group",
        "key of Mountaineer: 1 of 1 lot groups updated",
    ]


def test_names_match_exactly_as_stored_and_the_log_shows_invisible_whitespace(core, httpserver, make_group):
    """A vendor name with a trailing space matches a group whose name has it too, and only that
    one; the log shows the space (and a no-break space) where an admin can see it."""
    configure_logix(core, httpserver)
    payload = load("parking_logix_multi_lot_info")
    payload[0][0]["location_name"] = "Mountaineer Garage "
    payload[0][1]["location_name"] = "Lot\u00a0A"
    httpserver.expect_request(MULTI_LOT_INFO).respond_with_json(payload)
    spaced = make_group("Mountaineer", logix="Mountaineer Garage ", key="key-a")
    plain = make_group("Mountaineer Plain", logix="Mountaineer Garage", key="key-a")
    make_group("Alpha", logix="Lot A", key="key-a")

    run = execute_task(core, "parking-logix-sync", trigger="test")

    assert run.outcome == "success" and run.rows_touched == 1
    assert run.message.splitlines() == [
        "1 lot groups updated from 1 of 1 API keys",
        "key of Alpha, Mountaineer, Mountaineer Plain: 1 of 3 lot groups updated; "
        'no Parking Logix lot of that exact name: "Lot A" for Alpha, '
        '"Mountaineer Garage" for Mountaineer Plain',
        'Parking Logix lots no lot group claims: "Health Sciences Deck", "Lot\\xa0A"',
    ]
    assert state(core, spaced).physical.occupied == 833
    assert state(core, plain).physical is None


def test_a_name_saved_with_a_trailing_space_in_the_editor_matches_the_vendors(core, httpserver):
    """The editor used to strip the name, so a vendor name ending in a space could never match."""
    configure_logix(core, httpserver)
    payload = load("parking_logix_multi_lot_info")
    payload[0][0]["location_name"] = "Mountaineer Garage "
    httpserver.expect_request(MULTI_LOT_INFO).respond_with_json(payload)
    with core.db.session() as s:
        saved = lot_groups.save_group(
            s,
            core.secrets,
            lot_groups.GroupInput(
                name="Mountaineer", parking_logix_name="Mountaineer Garage ", parking_logix_api_key="key-a"
            ),
            actor_id=None,
        )

    run = execute_task(core, "parking-logix-sync", trigger="test")

    assert (run.outcome, run.rows_touched) == ("success", 1)
    assert run.message.splitlines()[1] == "key of Mountaineer: 1 of 1 lot groups updated"
    assert state(core, saved.group_id).physical.occupied == 833


def test_lots_are_listed_once_and_only_when_no_group_of_any_key_claims_them(core, httpserver, make_group):
    """Two keys that see the same lots: each unclaimed lot is named once, a lot claimed through the
    other key is not named, and a group whose key does not see its lot is told which key does."""
    configure_logix(core, httpserver)
    for key in ("key-a", "key-c"):
        httpserver.expect_request(MULTI_LOT_INFO, headers={"x-api-key": key}).respond_with_json(
            load("parking_logix_multi_lot_info")
        )
    httpserver.expect_request(MULTI_LOT_INFO, headers={"x-api-key": "key-b"}).respond_with_data(
        "", status=403
    )
    httpserver.expect_request(LOCATION_INFO, headers={"x-api-key": "key-b"}).respond_with_json(
        load("parking_logix_location_info")
    )
    make_group("Mountaineer", logix="Mountaineer Garage", key="key-a")
    make_group("Alpha", logix="Lot A", key="key-c")
    make_group("Deck", logix="Health Sciences Deck", key="key-b")

    run = execute_task(core, "parking-logix-sync", trigger="test")

    assert run.outcome == "success" and run.rows_touched == 2
    assert run.message.splitlines() == [
        "2 lot groups updated from 3 of 3 API keys",
        "key of Alpha: 1 of 1 lot groups updated",
        "key of Deck: 0 of 1 lot groups updated; no Parking Logix lot of that exact name: "
        '"Health Sciences Deck" for Deck (only the key of Alpha and the key of Mountaineer sees it)',
        "key of Mountaineer: 1 of 1 lot groups updated",
        'Parking Logix lots no lot group claims: "Evansdale Lot"',
    ]


def test_every_key_failing_fails_the_run(core, httpserver, make_group):
    configure_logix(core, httpserver)
    httpserver.expect_request(MULTI_LOT_INFO).respond_with_json({"message": "Unauthorized"}, status=401)
    make_group("Mountaineer", logix="Mountaineer Garage", key="key-a")
    make_group("Evansdale", logix="Evansdale Lot", key="key-b")

    run = execute_task(core, "parking-logix-sync", trigger="test")

    assert run.outcome == "failed"
    assert run.message.startswith(
        "every Parking Logix call failed: key of Evansdale: Parking Logix answered HTTP 401"
    )
    assert "key of Mountaineer: " in run.message
    assert logged_runs(core, "parking-logix-sync") == [("test", "failed")]


def test_a_key_unreadable_after_a_secret_key_rotation_is_reported(core, httpserver, make_group):
    configure_logix(core, httpserver)
    httpserver.expect_request(MULTI_LOT_INFO).respond_with_json(load("parking_logix_multi_lot_info"))
    make_group("Mountaineer", logix="Mountaineer Garage", key="key-a")
    with core.db.session() as s:
        s.add(LotGroup(name="Rotated", parking_logix_name="Lot A", parking_logix_api_key="enc:v1:garbage"))

    run = execute_task(core, "parking-logix-sync", trigger="test")

    assert run.outcome == "partly_failed"
    assert "API key of Rotated cannot be read with the current secret key" in run.message
    # Rotated still claims its lot by name: "Lot A" is not listed as nobody's.
    assert 'Parking Logix lots no lot group claims: "Health Sciences Deck"' in run.message


# Precedence and history


def test_mistall_wins_over_parking_logix_and_devices(core, httpserver, make_group):
    configure_mistall(core, httpserver)
    configure_logix(core, httpserver)
    serve_mistall(httpserver, load("mistall_lots"))
    serve_keys(httpserver)
    group = make_group("Everything", mistall="ML-2", logix="Lot A", key="key-a")
    occupancy.LiveStore(core.redis).record(group, OccupancySource.DEVICES, 50, 60, utcnow())

    assert execute_task(core, "parking-logix-sync", trigger="test").outcome == "success"
    assert state(core, group).physical.source is OccupancySource.PARKING_LOGIX
    assert execute_task(core, "update-mistall", trigger="test").outcome == "success"

    found = state(core, group)
    assert (found.physical.source, found.physical.occupied, found.physical.capacity) == (
        OccupancySource.MISTALL,
        171,
        180,
    )
    assert [f.source for f in found.sources] == [
        OccupancySource.MISTALL,
        OccupancySource.PARKING_LOGIX,
        OccupancySource.DEVICES,
    ]


def test_occupancy_snapshots_task_is_on_by_default_every_five_minutes():
    (definition,) = [d for d in REGISTRY.definitions() if d.name == "occupancy-snapshots"]
    assert (definition.title, definition.default_interval_seconds, definition.default_enabled) == (
        "Occupancy Snapshots",
        300,
        True,
    )


def test_occupancy_snapshots_task_writes_one_row_per_group_and_source(core, make_group):
    counted = make_group("Counted")
    make_group("Permits Only")
    with core.db.session() as s:
        s.add(Lot(name="Counted Lot", lot_group_id=counted, capacity=40))
    store = occupancy.LiveStore(core.redis)
    store.record(counted, OccupancySource.DEVICES, 12, 40, utcnow() - timedelta(minutes=1))

    run = execute_task(core, "occupancy-snapshots", trigger="test")

    assert (run.outcome, run.rows_touched) == ("success", 3)
    assert run.message == "3 snapshots of 2 lot groups recorded"
    with core.db.session() as s:
        rows = s.execute(
            select(OccupancySnapshot.lot_group_id, OccupancySnapshot.source, OccupancySnapshot.occupied,
                   OccupancySnapshot.capacity)
            .order_by(OccupancySnapshot.lot_group_id, OccupancySnapshot.source)
        ).all()  # fmt: skip
    assert [(g == counted, str(src), occ, cap) for g, src, occ, cap in rows] == [
        (True, "devices", 12, 40),
        (True, "permits", 0, 40),
        (False, "permits", 0, 0),
    ]
