"""Lot groups service: rows carry live figures and integration settings (never the key), closing
is audited once, and an announcement reaches the occupancy channel."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.services import lot_groups
from dashboard.services.errors import NotFound
from dashboard.services.occupancy import CHANNEL, LiveStore, Staleness
from models import AuditLog, Lot, LotGroup, OccupancySource, Role

NOW = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)


@pytest.fixture
def groups(session: Session) -> dict[str, int]:
    north = LotGroup(
        name="North Garage",
        map_color="#123456",
        mistall_lot_id="M-17",
        parking_logix_name="Mountaineer Garage",
        parking_logix_api_key="encrypted-key-material",
    )
    south = LotGroup(name="South Lot", map_color="#654321", parking_logix_name="South")
    session.add_all([north, south, Lot(name="North A", capacity=80, permits_allowed=100, lot_group=north)])
    session.commit()
    return {"north": north.id, "south": south.id}


def test_rows_join_live_state_and_integration_settings(core, session, groups) -> None:
    store = LiveStore(core.redis)
    store.record(groups["north"], OccupancySource.MISTALL, 30, 80, NOW - timedelta(minutes=1))
    store.record(groups["north"], OccupancySource.DEVICES, 28, 80, NOW - timedelta(hours=3))

    rows = {row.state.name: row for row in lot_groups.list_rows(session, store, Staleness(), NOW)}

    north, south = rows["North Garage"], rows["South Lot"]
    assert (north.mistall_lot_id, north.parking_logix_name) == ("M-17", "Mountaineer Garage")
    assert north.parking_logix_key_set and north.parking_logix_ready
    assert "encrypted-key-material" not in repr(north)
    assert north.state.physical is not None and north.state.physical.source is OccupancySource.MISTALL
    assert [(f.source, f.stale) for f in north.state.sources] == [
        (OccupancySource.MISTALL, False),
        (OccupancySource.DEVICES, True),
    ]
    assert (north.state.permits.occupied, north.state.permits.capacity) == (0, 100)
    assert south.parking_logix_name == "South" and not south.parking_logix_ready
    assert south.state.physical is None


def _audits(session: Session) -> list[AuditLog]:
    return list(session.scalars(select(AuditLog).where(AuditLog.entity_type == "lot_group")))


def test_closing_and_reopening_are_audited(session, groups, make_user) -> None:
    admin = make_user(Role.ADMIN)
    change = lot_groups.set_closed(session, groups["north"], True, admin.id)
    session.commit()
    assert (change.name, change.closed, change.changed) == ("North Garage", True, True)
    assert session.get(LotGroup, groups["north"]).is_closed

    lot_groups.set_closed(session, groups["north"], False, admin.id)
    session.commit()
    entries = _audits(session)
    assert [(e.action, e.actor_id, e.entity_id, e.changes) for e in entries] == [
        ("lot_group.close", admin.id, str(groups["north"]), {"is_closed": [False, True]}),
        ("lot_group.open", admin.id, str(groups["north"]), {"is_closed": [True, False]}),
    ]


def test_asking_for_the_current_state_changes_nothing(session, groups) -> None:
    change = lot_groups.set_closed(session, groups["south"], False, None)
    assert not change.changed
    assert _audits(session) == []


def test_unknown_group(session) -> None:
    with pytest.raises(NotFound):
        lot_groups.set_closed(session, 999, True, None)


def test_announce_publishes_on_the_occupancy_channel(core, session, groups) -> None:
    pubsub = core.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    try:
        change = lot_groups.set_closed(session, groups["north"], True, None)
        lot_groups.announce(core.redis, change, now=NOW)
        deadline = time.monotonic() + 2
        message = None
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.2)
    finally:
        pubsub.close()
    assert message is not None
    assert json.loads(message["data"]) == {
        "group_id": groups["north"],
        "closed": True,
        "changed_at": NOW.isoformat(),
    }
