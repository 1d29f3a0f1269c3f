"""The device registry, kept messages of unknown devices, dead letters and the ingest counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dashboard.services import devices
from dashboard.services.errors import NotFound, ValidationFailed
from models import (
    AuditLog,
    DeviceKind,
    IngestDeadLetter,
    Lot,
    LotGroup,
    SensingDevice,
    UnknownDeviceMessage,
)

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


@pytest.fixture
def lots(core) -> dict[str, int]:
    with core.db.session() as s:
        garage = LotGroup(name="North Garage")
        s.add_all(
            [
                Lot(name="North Garage L1", lot_group=garage, capacity=100),
                Lot(name="Visitor Lot", capacity=20),
            ]
        )
        s.flush()
        return {lot.name: lot.id for lot in s.scalars(select(Lot))}


def keep(core, device_id: str, topic: str, payload: str, minutes: int) -> None:
    with core.db.session() as s:
        s.add(
            UnknownDeviceMessage(
                device_id=device_id,
                topic=topic,
                payload=payload,
                received_at=T0 + timedelta(minutes=minutes),
            )
        )


def audit_actions(core) -> list[tuple[str, str | None]]:
    with core.db.session() as s:
        return [(a.action, a.entity_id) for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]


def test_add_and_list(core, lots):
    with core.db.session() as s:
        added = devices.add_device(
            s, device_id="cnt-n1", kind="counter", lot_id=lots["North Garage L1"], name="Gate", actor_id=None
        )
        devices.add_device(
            s, device_id="spc-7", kind=DeviceKind.SPACE_SENSOR, lot_name=" visitor lot ", actor_id=None
        )
    assert (added.lot_name, added.group_name, added.name, added.active) == (
        "North Garage L1",
        "North Garage",
        "Gate",
        True,
    )
    with core.db.session() as s:
        listed = devices.list_devices(s)
    assert [(d.device_id, d.kind, d.lot_name, d.group_name) for d in listed] == [
        ("cnt-n1", DeviceKind.COUNTER, "North Garage L1", "North Garage"),
        ("spc-7", DeviceKind.SPACE_SENSOR, "Visitor Lot", None),
    ]
    assert audit_actions(core) == [("device.add", "cnt-n1"), ("device.add", "spc-7")]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"device_id": "cnt/1"}, "device_id", "letters, digits"),
        ({"device_id": "-cnt"}, "device_id", "starting with"),
        ({"device_id": "x" * 81}, "device_id", "1 to 80"),
        ({"device_id": "cnt-taken"}, "device_id", "already registered"),
        ({"kind": "camera"}, "kind", "counter, space_sensor"),
        ({"lot_name": "Nowhere"}, "lot", "no lot 'Nowhere'"),
        ({"lot_name": None}, "lot", "either a lot id or a lot name"),
        ({"name": "n" * 121}, "name", "at most 120"),
    ],
)
def test_add_refuses_bad_input(core, lots, fields, field, message):
    with core.db.session() as s:
        devices.add_device(s, device_id="cnt-taken", kind="counter", lot_name="Visitor Lot", actor_id=None)
    values = {"device_id": "cnt-new", "kind": "counter", "lot_name": "Visitor Lot", "name": ""} | fields
    with pytest.raises(ValidationFailed) as raised, core.db.session() as s:
        devices.add_device(s, actor_id=None, **values)
    assert message in raised.value.errors[field]
    with core.db.session() as s:
        assert s.scalars(select(SensingDevice.device_id)).all() == ["cnt-taken"]


def test_update_deactivate_delete_are_audited(core, lots, make_user):
    admin = make_user()
    with core.db.session() as s:
        devices.add_device(s, device_id="cnt-1", kind="counter", lot_name="Visitor Lot", actor_id=admin.id)
    with core.db.session() as s:
        moved = devices.update_device(
            s, "cnt-1", kind="space_sensor", lot_id=lots["North Garage L1"], name="Bay 1", actor_id=admin.id
        )
        unchanged = devices.update_device(s, "cnt-1", name="Bay 1", actor_id=admin.id)
    assert (moved.kind, moved.lot_name, moved.group_name, moved.name) == (
        DeviceKind.SPACE_SENSOR,
        "North Garage L1",
        "North Garage",
        "Bay 1",
    )
    assert unchanged == moved
    with core.db.session() as s:
        assert devices.deactivate_device(s, "cnt-1", actor_id=admin.id).active is False
    with core.db.session() as s:
        devices.delete_device(s, "cnt-1", actor_id=admin.id)
    with core.db.session() as s:
        assert devices.list_devices(s) == []
        update = s.scalars(select(AuditLog).where(AuditLog.action == "device.update")).first()
        with pytest.raises(NotFound):
            devices.get_device(s, "cnt-1")
    assert update.actor_id == admin.id
    assert update.changes == {
        "kind": ["counter", "space_sensor"],
        "lot": ["Visitor Lot", "North Garage L1"],
        "name": ["", "Bay 1"],
    }
    assert [a for a, _ in audit_actions(core)] == [
        "device.add",
        "device.update",
        "device.update",
        "device.delete",
    ]


def test_unknown_devices_are_summarised(core, lots):
    keep(core, "cnt-x", "parkops/counters/cnt-x/events", '{"n": 1}', 0)
    keep(core, "cnt-x", "parkops/counters/cnt-x/count", '{"n": 2}', 5)
    keep(core, "cnt-x", "parkops/counters/cnt-x/events", '{"n": 3}', 9)
    keep(core, "spc-y", "campus/a/sensors/spc-y/state", '{"occupied": true}', 20)
    keep(core, "odd-z", "parkops/counters/odd-z/events", "{}", 1)
    keep(core, "odd-z", "parkops/sensors/odd-z/state", "{}", 2)
    with core.db.session() as s:
        views = {v.device_id: v for v in devices.unknown_devices(s)}
    assert list(views) == ["spc-y", "cnt-x", "odd-z"]  # most recently heard first
    x = views["cnt-x"]
    assert (x.guessed_kind, x.message_count, x.first_seen_at, x.last_seen_at) == (
        DeviceKind.COUNTER,
        3,
        T0,
        T0 + timedelta(minutes=9),
    )
    assert (x.sample_topic, x.sample_payload, x.registered) == (
        "parkops/counters/cnt-x/events",
        '{"n": 3}',
        False,
    )
    assert views["spc-y"].guessed_kind is DeviceKind.SPACE_SENSOR  # a prefix with a slash
    assert views["odd-z"].guessed_kind is None  # it used both kinds of topic


def test_map_registers_and_take_returns_the_kept_messages_in_order(core, lots):
    for minute, n in [(3, 2), (1, 1), (7, 3)]:
        keep(
            core,
            "cnt-x",
            f"parkops/counters/cnt-x/{'count' if n == 2 else 'events'}",
            f'{{"n": {n}}}',
            minute,
        )
    keep(core, "cnt-other", "parkops/counters/cnt-other/events", "{}", 0)
    with core.db.session() as s:
        kept = devices.map_unknown_device(s, "cnt-x", "counter", lots["Visitor Lot"], None)
    assert kept == 3
    with core.db.session() as s:
        assert devices.get_device(s, "cnt-x").lot_name == "Visitor Lot"
        assert [v.registered for v in devices.unknown_devices(s) if v.device_id == "cnt-x"] == [True]
    with core.db.session() as s:
        taken = devices.take_kept_messages(s, "cnt-x")
    assert taken == [
        ("parkops/counters/cnt-x/events", '{"n": 1}'),
        ("parkops/counters/cnt-x/count", '{"n": 2}'),
        ("parkops/counters/cnt-x/events", '{"n": 3}'),
    ]
    with core.db.session() as s:
        assert devices.take_kept_messages(s, "cnt-x") == []
        assert [v.device_id for v in devices.unknown_devices(s)] == ["cnt-other"]
    assert audit_actions(core) == [("device.map", "cnt-x")]


def test_a_failed_replay_keeps_the_messages(core, lots):
    keep(core, "cnt-x", "parkops/counters/cnt-x/events", "{}", 0)
    with pytest.raises(RuntimeError), core.db.session() as s:
        assert len(devices.take_kept_messages(s, "cnt-x")) == 1
        raise RuntimeError("broker went away")
    with core.db.session() as s:
        assert devices.kept_message_count(s, "cnt-x") == 1


def test_map_refuses_a_registered_id_and_a_missing_lot(core, lots):
    with core.db.session() as s:
        devices.add_device(s, device_id="cnt-x", kind="counter", lot_name="Visitor Lot", actor_id=None)
    with pytest.raises(ValidationFailed, match="already registered"), core.db.session() as s:
        devices.map_unknown_device(s, "cnt-x", "counter", lots["Visitor Lot"], None)
    with pytest.raises(ValidationFailed, match="no lot with id 999"), core.db.session() as s:
        devices.map_unknown_device(s, "cnt-y", "counter", 999, None)


def test_dead_letters_newest_first_and_by_reason(core):
    with core.db.session() as s:
        for minute, reason in [
            (0, "payload is not valid JSON"),
            (1, "ts has no time zone"),
            (2, "payload is not valid JSON"),
        ]:
            s.add(
                IngestDeadLetter(
                    topic=f"parkops/counters/c{minute}/events",
                    payload="{",
                    reason=reason,
                    received_at=T0 + timedelta(minutes=minute),
                )
            )
    with core.db.session() as s:
        assert [d.topic for d in devices.dead_letters(s)] == [
            f"parkops/counters/c{m}/events" for m in (2, 1, 0)
        ]
        assert [d.topic for d in devices.dead_letters(s, limit=1)] == ["parkops/counters/c2/events"]
        only = devices.dead_letters(s, reason="ts has no time zone")
        reasons = devices.dead_letter_reasons(s)
    assert [(d.topic, d.received_at) for d in only] == [
        ("parkops/counters/c1/events", T0 + timedelta(minutes=1))
    ]
    assert reasons == [("payload is not valid JSON", 2), ("ts has no time zone", 1)]


def test_ingest_counters_and_notification(core):
    assert devices.ingest_counters(core.redis) == devices.IngestCounters(0, 0, 0)
    core.redis.set(devices.MESSAGES_KEY, 12)
    core.redis.set(devices.DEAD_LETTERS_KEY, 2)
    core.redis.hset(devices.UNKNOWN_DEVICES_KEY, mapping={"cnt-a": 3, "cnt-b": 4})
    assert devices.ingest_counters(core.redis) == devices.IngestCounters(12, 2, 7)

    pubsub = core.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(devices.DEVICES_CHANNEL)
    try:
        pubsub.get_message(timeout=1)
        devices.notify_devices_changed(core.redis)
        message = pubsub.get_message(timeout=5)
    finally:
        pubsub.close()
    assert message is not None and message["channel"] == devices.DEVICES_CHANNEL.encode()
