"""A Redis outage, on a real ``redis-server`` of the test's own that is killed mid-test: the
open-data API answers JSON 503 with ``Retry-After`` (not an HTML 500), the public map and lot
group page say that live counts are unavailable, and everything answers again once Redis is back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dashboard.core import Core
from dashboard.services import occupancy
from dashboard.services.body_cache import BodyCache
from dashboard.services.occupancy import LiveStore
from models import Lot, LotGroup, OccupancySource, Role
from tests.dash_helpers import dash_post, find_output, outputs_of
from tests.redis_process import RedisProcess

UNAVAILABLE = "temporarily unavailable (the live data store is unreachable); try again shortly"
NOW = datetime.now(UTC)


@pytest.fixture
def own_redis(core: Core, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisProcess]:
    """The app's Redis client pointed at a private server this test may kill. The list's
    per-process tenth-of-a-second memo is turned off, so every request asks Redis."""
    with RedisProcess(tmp_path) as server:
        client = server.client()
        monkeypatch.setattr(core, "redis", client)
        monkeypatch.setattr(BodyCache, "local_ttl_s", 0.0)
        yield server
        client.close()


@pytest.fixture
def group_id(core: Core, own_redis: RedisProcess) -> int:
    with core.db.session() as session:
        group = LotGroup(name="North Garage", latitude=43.47, longitude=-80.54)
        session.add(group)
        session.flush()
        session.add(Lot(name="North A", lot_group_id=group.id, capacity=120))
        occupancy.apply_figure(
            session, LiveStore(core.redis), group.id, OccupancySource.DEVICES, 60, 120, NOW, step_percent=5
        )
        return group.id


def _urls(group_id: int) -> list[str]:
    return [
        "/api/v1/lot-groups",
        f"/api/v1/lot-groups/{group_id}",
        f"/api/v1/lot-groups/{group_id}/occupancy",
        "/api/v1/fiware/OffStreetParking",
        "/api/v1/fiware/ParkingGroup",
    ]


def test_the_open_data_api_answers_json_503_while_redis_is_down(
    client: FlaskClient, own_redis: RedisProcess, group_id: int
) -> None:
    for url in _urls(group_id):
        assert client.get(url).status_code == 200, url

    own_redis.stop()

    for url in _urls(group_id):
        response = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert (response.status_code, response.mimetype) == (503, "application/json"), url
        assert response.get_json() == {"error": UNAVAILABLE}, url
        assert response.headers["Retry-After"] == "30"
        assert response.headers["Cache-Control"] == "no-store"

    own_redis.start()  # back, empty (no persistence): the API answers again at once
    for url in _urls(group_id):
        assert client.get(url).status_code == 200, url
    listed = client.get("/api/v1/lot-groups").get_json()["lot_groups"]
    assert [(g["name"], g["source"]) for g in listed] == [("North Garage", "permits")]


def test_the_public_map_and_lot_group_page_say_live_counts_are_unavailable(
    app: Flask, login_as, own_redis: RedisProcess, group_id: int
) -> None:
    guest = login_as(Role.GUEST)

    def group_page() -> str:
        response = dash_post(guest, app, find_output(app, "lotgroup-content.children"), [group_id, None, 0])
        assert response.status_code == 200
        return json.dumps(outputs_of(response)["lotgroup-content"]["children"])

    assert "North Garage" in group_page() and "unavailable" not in group_page()
    assert "North Garage" in guest.get("/live/user-map.json?fresh=1").get_data(as_text=True)

    own_redis.stop()

    assert "Live counts are unavailable right now." in group_page()
    # The map's data: a JSON 503 the page's script shows as "unavailable", keeping the pins it has.
    refused = guest.get("/live/user-map.json?fresh=1")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert refused.get_json() == {"error": "Live counts are unavailable right now."}
    assert refused.headers["Cache-Control"] == "no-store"
    assert guest.get(f"/lot-groups/{group_id}").status_code == 200
    assert guest.get("/real-time").status_code == 200
    # The page still comes, its map on the world view (where the pins are is not known).
    layout = guest.get("/_dash-layout", headers={"Referer": "http://localhost/real-time"})
    assert layout.status_code == 200 and '"zoom":2' in layout.get_data(as_text=True).replace(" ", "")


def test_the_staff_screens_data_answers_json_503_while_redis_is_down(
    login_as, own_redis: RedisProcess, group_id: int
) -> None:
    """The admin map and Lot Status keep what they have drawn and say live counts are unavailable
    (``assets/staff_live.js``); they come back with Redis."""
    officer = login_as(Role.OFFICER)
    assert "North Garage" in officer.get("/live/lot-status.json?fresh=1").get_data(as_text=True)

    own_redis.stop()

    refused = officer.get("/live/lot-status.json?fresh=1")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert refused.get_json() == {"error": "Live counts are unavailable right now."}
    assert refused.headers["Cache-Control"] == "no-store"
    assert officer.get("/officer").status_code == 200

    own_redis.start()
    assert "North Garage" in officer.get("/live/lot-status.json?fresh=1").get_data(as_text=True)
