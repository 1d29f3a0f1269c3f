"""Lot groups service: rows carry live figures and integration settings (never the key), closing
is audited once, and an announcement reaches the occupancy channel; a group is associated only
with a Mistall lot the Update Mistall System Job Task imported."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.services import lot_groups
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.occupancy import CHANNEL, LiveStore, Staleness
from models import AuditLog, Lot, LotGroup, MistallLot, OccupancySource, Role

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


def _next_message(pubsub) -> dict | None:
    deadline = time.monotonic() + 2
    message = None
    while message is None and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
    return message


@pytest.fixture
def mistall_lots(session: Session) -> None:
    session.add_all(
        [MistallLot(mistall_id="M-17", name="North deck"), MistallLot(mistall_id="M-20", name="East")]
    )
    session.commit()


def test_set_mistall_lot_associates_changes_and_clears(session, groups, mistall_lots, make_user) -> None:
    admin = make_user(Role.ADMIN)
    assert lot_groups.set_mistall_lot(session, groups["south"], "M-20", admin.id)
    session.commit()
    assert session.get(LotGroup, groups["south"]).mistall_lot_id == "M-20"

    assert lot_groups.set_mistall_lot(session, groups["north"], " M-20 ", admin.id)
    assert lot_groups.set_mistall_lot(session, groups["north"], "", admin.id)
    assert not lot_groups.set_mistall_lot(session, groups["north"], None, admin.id)
    session.commit()
    assert session.get(LotGroup, groups["north"]).mistall_lot_id is None
    assert [(e.action, e.actor_id, e.entity_id, e.changes) for e in _audits(session)] == [
        ("lot_group.mistall_lot", admin.id, str(groups["south"]), {"mistall_lot_id": [None, "M-20"]}),
        ("lot_group.mistall_lot", admin.id, str(groups["north"]), {"mistall_lot_id": ["M-17", "M-20"]}),
        ("lot_group.mistall_lot", admin.id, str(groups["north"]), {"mistall_lot_id": ["M-20", None]}),
    ]


def test_keeping_the_current_mistall_lot_changes_nothing(session, groups, mistall_lots) -> None:
    assert not lot_groups.set_mistall_lot(session, groups["north"], "M-17", None)
    assert _audits(session) == []


def test_a_mistall_lot_that_was_not_imported_is_refused(session, groups, mistall_lots) -> None:
    with pytest.raises(ValidationFailed, match="not an imported Mistall lot") as refused:
        lot_groups.set_mistall_lot(session, groups["south"], "M-99", None)
    assert "Update Mistall System Job Task" in str(refused.value)
    session.rollback()
    assert session.get(LotGroup, groups["south"]).mistall_lot_id is None
    assert _audits(session) == []


def test_nothing_imported_refuses_every_id(session, groups) -> None:
    with pytest.raises(ValidationFailed):
        lot_groups.set_mistall_lot(session, groups["south"], "M-17", None)


def test_set_mistall_lot_on_an_unknown_group(session, mistall_lots) -> None:
    with pytest.raises(NotFound):
        lot_groups.set_mistall_lot(session, 999, "M-17", None)
    with pytest.raises(NotFound):
        lot_groups.mistall_editor(session, 999)


def test_the_editor_keeps_a_current_id_that_was_not_imported(session, groups) -> None:
    editor = lot_groups.mistall_editor(session, groups["north"])
    assert (editor.name, editor.mistall_lot_id, editor.imported) == ("North Garage", "M-17", 0)
    assert editor.choices == [("M-17", "M-17 (not imported)")]
    session.add(MistallLot(mistall_id="M-17", name="North deck"))
    session.flush()
    assert lot_groups.mistall_editor(session, groups["north"]).choices == [("M-17", "North deck (M-17)")]


def test_announce_mistall_lot_publishes_on_the_occupancy_channel(core, groups) -> None:
    pubsub = core.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    try:
        lot_groups.announce_mistall_lot(core.redis, groups["north"], now=NOW)
        message = _next_message(pubsub)
    finally:
        pubsub.close()
    assert message is not None
    assert json.loads(message["data"]) == {
        "group_id": groups["north"],
        "changed": "mistall_lot",
        "changed_at": NOW.isoformat(),
    }
