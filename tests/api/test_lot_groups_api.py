"""``/api/v1/lot-groups``: public availability, history, caching, and JSON errors."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from dashboard.core import Core
from dashboard.services import occupancy
from dashboard.services.occupancy import LiveStore
from models import DeviceKind, Lot, LotGroup, OccupancySource, SensingDevice
from workers.ingest import Ingester


@pytest.fixture
def groups(core: Core) -> dict[str, int]:
    """Three groups: one shown with a live count, one closed, one hidden from the map."""
    with core.db.session() as session:
        made = {}
        for name, fields in {
            "Garage": {},
            "Closed Deck": {"is_closed": True},
            "Service Yard": {"show_on_map": False},
        }.items():
            group = LotGroup(name=name, latitude=43.47, longitude=-80.54, **fields)
            session.add(group)
            session.flush()
            session.add(Lot(name=f"{name} permits", lot_group_id=group.id, capacity=120, permits_allowed=150))
            made[name] = group.id
    return made


def _apply(core: Core, group_id: int, occupied: int, ts: datetime, capacity: int = 200) -> None:
    with core.db.session() as session:
        occupancy.apply_figure(
            session,
            LiveStore(core.redis),
            group_id,
            OccupancySource.DEVICES,
            occupied,
            capacity,
            ts,
            step_percent=5,
        )


def _now() -> datetime:
    return datetime.now(UTC)


def test_list_is_public_json_with_the_live_state(
    client: FlaskClient, core: Core, groups: dict[str, int]
) -> None:
    updated = _now() - timedelta(minutes=1)
    _apply(core, groups["Garage"], 150, updated)

    response = client.get("/api/v1/lot-groups")

    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "public, max-age=1" and response.headers["ETag"]
    listed = {g["name"]: g for g in response.get_json()["lot_groups"]}
    assert set(listed) == {"Garage", "Closed Deck"}
    garage = listed["Garage"]
    assert garage["id"] == groups["Garage"] and garage["status"] == "open" and garage["source"] == "devices"
    assert (garage["capacity"], garage["occupied"], garage["available"], garage["percent"]) == (
        200,
        150,
        50,
        75.0,
    )
    assert datetime.fromisoformat(garage["updated_at"]) == updated
    assert garage["lots"] == [
        {
            "id": garage["lots"][0]["id"],
            "name": "Garage permits",
            "sold": 0,
            "allowance": 150,
            "available": 150,
            "percent": 0.0,
            "sells_standard": True,
            "sells_temporary": False,
        }
    ]
    closed = listed["Closed Deck"]
    assert closed["status"] == "closed" and closed["percent"] is None and closed["available"] is None


def test_stale_source_reads_stale(client: FlaskClient, core: Core, groups: dict[str, int]) -> None:
    _apply(core, groups["Garage"], 150, _now() - timedelta(minutes=61))  # devices: 60 minutes by default

    garage = client.get(f"/api/v1/lot-groups/{groups['Garage']}").get_json()

    assert garage["status"] == "stale" and garage["stale"] is True and garage["occupied"] == 150


def test_list_answers_304_to_its_etag(client: FlaskClient, groups: dict[str, int]) -> None:
    first = client.get("/api/v1/lot-groups")

    again = client.get("/api/v1/lot-groups", headers={"If-None-Match": first.headers["ETag"]})

    assert again.status_code == 304 and again.data == b""
    assert client.get("/api/v1/lot-groups", headers={"If-None-Match": '"other"'}).status_code == 200


def test_list_body_is_cached_until_a_change(client: FlaskClient, core: Core, groups: dict[str, int]) -> None:
    before = client.get("/api/v1/lot-groups")
    with core.db.session() as session:  # not an occupancy change: nothing drops the cache
        session.get(LotGroup, groups["Garage"]).name = "Renamed Garage"  # type: ignore[union-attr]

    cached = client.get("/api/v1/lot-groups")
    assert cached.data == before.data and cached.headers["ETag"] == before.headers["ETag"]

    _apply(core, groups["Garage"], 190, _now())  # a change drops the cached body at once
    fresh = client.get("/api/v1/lot-groups")
    assert fresh.headers["ETag"] != before.headers["ETag"]
    garage = next(g for g in fresh.get_json()["lot_groups"] if g["id"] == groups["Garage"])
    assert (garage["name"], garage["occupied"]) == ("Renamed Garage", 190)


def test_list_is_gzipped_for_clients_that_accept_it(client: FlaskClient, groups: dict[str, int]) -> None:
    plain = client.get("/api/v1/lot-groups")

    packed = client.get("/api/v1/lot-groups", headers={"Accept-Encoding": "gzip, deflate"})

    assert packed.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed.headers["Vary"]
    assert gzip.decompress(packed.data) == plain.data
    assert packed.headers["ETag"] != plain.headers["ETag"]
    again = client.get(
        "/api/v1/lot-groups", headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]}
    )
    assert again.status_code == 304


def test_one_group(client: FlaskClient, core: Core, groups: dict[str, int]) -> None:
    _apply(core, groups["Garage"], 20, _now())

    response = client.get(f"/api/v1/lot-groups/{groups['Garage']}")

    assert response.status_code == 200 and response.headers["Cache-Control"] == "public, max-age=1"
    assert response.get_json()["name"] == "Garage" and response.get_json()["occupied"] == 20


@pytest.mark.parametrize("which", ["hidden", "unknown", "not a number", "a digit but not a number"])
def test_hidden_or_unknown_group_is_a_json_404(
    client: FlaskClient, groups: dict[str, int], which: str
) -> None:
    group_id = {
        "hidden": str(groups["Service Yard"]),
        "unknown": "99999",
        "not a number": "abc",
        "a digit but not a number": "²",  # str.isdigit() says yes, int() refuses (found by make fuzz-api)
    }[which]

    for path in (f"/api/v1/lot-groups/{group_id}", f"/api/v1/lot-groups/{group_id}/occupancy"):
        response = client.get(path)
        assert response.status_code == 404 and response.get_json() == {"error": "no such lot group"}


def test_unknown_api_path_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404 and response.is_json


def test_history_defaults_to_the_last_day(client: FlaskClient, core: Core, groups: dict[str, int]) -> None:
    now = _now()
    _apply(core, groups["Garage"], 20, now - timedelta(hours=25))
    _apply(core, groups["Garage"], 100, now - timedelta(hours=1))

    body = client.get(f"/api/v1/lot-groups/{groups['Garage']}/occupancy").get_json()

    assert body["id"] == groups["Garage"] and body["source"] is None
    assert [(p["occupied"], p["capacity"], p["percent"]) for p in body["points"]] == [(100, 200, 50.0)]
    start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
    assert end - start == timedelta(hours=24)


def test_history_range_and_source(client: FlaskClient, core: Core, groups: dict[str, int]) -> None:
    now = _now()
    _apply(core, groups["Garage"], 20, now - timedelta(hours=25))
    _apply(core, groups["Garage"], 100, now - timedelta(hours=1))
    query = {
        "from": (now - timedelta(hours=30)).isoformat(),
        "to": (now - timedelta(hours=20)).isoformat(),
        "source": "devices",
    }

    body = client.get(f"/api/v1/lot-groups/{groups['Garage']}/occupancy?{urlencode(query)}").get_json()
    assert [p["occupied"] for p in body["points"]] == [20] and body["source"] == "devices"

    query["source"] = "permits"
    body = client.get(f"/api/v1/lot-groups/{groups['Garage']}/occupancy?{urlencode(query)}").get_json()
    assert body["points"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-11-01T08:00:00"}, "from"),
        ({"to": "soon"}, "to"),
        ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "from"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "from"),
        ({"source": "cameras"}, "source"),
        # Sent empty: not a date-time or a source, as the OpenAPI document types them (schemathesis).
        ({"from": ""}, "from"),
        ({"to": ""}, "to"),
        ({"source": ""}, "source"),
        # A misspelt parameter is refused, not ignored (the caller would read the default range).
        ({"form": "2026-11-01T08:00:00Z"}, "form"),
    ],
)
def test_history_bad_input_is_a_json_400_naming_the_field(
    client: FlaskClient, groups: dict[str, int], query: dict[str, str], field: str
) -> None:
    response = client.get(f"/api/v1/lot-groups/{groups['Garage']}/occupancy?{urlencode(query)}")

    assert response.status_code == 400
    body = response.get_json()
    assert body["field"] == field and body["error"].startswith(f"{field}: ")


def test_ping(client: FlaskClient) -> None:
    response = client.get("/api/v1/ping")
    assert response.status_code == 200 and response.get_json() == {"ok": True}


def test_flagged_counts_carry_their_flags(client: FlaskClient, core: Core, groups: dict[str, int]) -> None:
    """The ingester's flags reach the open data, not only the admin pages: a counter that went
    below zero, and a count far above capacity (the ingester's own path for both)."""
    prefix = core.settings.mqtt_topic_prefix
    with core.db.session() as session:
        lots = {lot.lot_group_id: lot for lot in session.scalars(select(Lot))}
        annex = LotGroup(name="Annex", latitude=43.48, longitude=-80.53)
        annex_lot = Lot(name="Annex permits", capacity=10, lot_group=annex)
        for device, lot in [
            ("cnt-garage", lots[groups["Garage"]]),
            ("cnt-annex", annex_lot),
            ("cnt-deck", lots[groups["Closed Deck"]]),
        ]:
            session.add(SensingDevice(device_id=device, kind=DeviceKind.COUNTER, lot=lot))
    ts = (_now() - timedelta(minutes=1)).isoformat()

    def message(device: str, kind: str, **body: object) -> tuple[str, bytes]:
        return f"{prefix}/counters/{device}/{kind}", json.dumps({"ts": ts, **body}).encode()

    result = Ingester(core).process(
        [
            message("cnt-garage", "events", event_id="g1", direction="out"),  # 0 - 1: corrected to 0
            message("cnt-annex", "count", occupied=30, capacity=10),  # 300 %: far above capacity
            message("cnt-deck", "count", occupied=30, capacity=10),  # flagged, but the group is closed
        ]
    )
    assert result.applied == 3

    listed = {g["name"]: g for g in client.get("/api/v1/lot-groups").get_json()["lot_groups"]}
    assert listed["Garage"]["flags"] == ["below_zero"] and listed["Garage"]["occupied"] == 0
    assert listed["Annex"]["flags"] == ["over_capacity"] and listed["Annex"]["occupied"] == 30
    assert listed["Closed Deck"]["flags"] == []  # a closed group publishes no figure
    one = client.get(f"/api/v1/lot-groups/{groups['Garage']}").get_json()
    assert one["flags"] == ["below_zero"]


def test_an_unflagged_group_has_an_empty_flags_list(
    client: FlaskClient, core: Core, groups: dict[str, int]
) -> None:
    _apply(core, groups["Garage"], 150, _now())
    listed = client.get("/api/v1/lot-groups").get_json()["lot_groups"]
    assert [g["flags"] for g in listed] == [[], []]
