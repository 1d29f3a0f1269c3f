"""The ingester's validation and bookkeeping, without a broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.app import Core
from models import DeviceKind, IngestDeadLetter, Lot, SensingDevice
from workers.ingest import (
    DEAD_LETTERS_KEY,
    MAX_PAYLOAD_BYTES,
    MESSAGES_KEY,
    UNKNOWN_DEVICES_KEY,
    BadMessage,
    CounterCount,
    CounterEvent,
    Ingester,
    SensorState,
    parse_message,
    subscriptions,
)

P = "parkops"
TS = "2026-11-03T13:45:10+00:00"


def _json(data: Any) -> bytes:
    return json.dumps(data).encode()


def test_counter_event() -> None:
    message = parse_message(
        f"{P}/counters/cnt-a/events",
        _json({"event_id": "e1", "direction": "in", "ts": "2026-11-03T08:45:10-05:00", "plate": "ABCD 123"}),
        P,
    )
    assert message == CounterEvent(
        "cnt-a", datetime(2026, 11, 3, 13, 45, 10, tzinfo=UTC), "e1", "in", "ABCD 123"
    )


def test_counter_event_without_plate_and_with_extra_fields() -> None:
    payload = _json({"event_id": "e2", "direction": "out", "ts": "2026-11-03T13:45:10Z", "lane": 2})
    message = parse_message(f"{P}/counters/cnt-a/events", payload, P)
    assert isinstance(message, CounterEvent) and message.plate is None and message.direction == "out"


def test_absolute_count_and_sensor_state() -> None:
    count = parse_message(f"{P}/counters/cnt-a/count", _json({"occupied": 12, "capacity": 40, "ts": TS}), P)
    assert count == CounterCount("cnt-a", datetime.fromisoformat(TS), 12, 40)
    state = parse_message(
        f"{P}/sensors/spc-1/state", _json({"occupied": True, "ts": TS, "event_id": "s1"}), P
    )
    assert state == SensorState("spc-1", datetime.fromisoformat(TS), "s1", True)


def test_prefix_may_have_levels() -> None:
    message = parse_message(
        "campus/parkops/sensors/spc-1/state",
        _json({"occupied": False, "ts": TS, "event_id": "x"}),
        "campus/parkops",
    )
    assert isinstance(message, SensorState) and message.occupied is False


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (f"{P}/counters/c/events", b"{not json", "not valid JSON"),
        (f"{P}/counters/c/events", b"\xff\xfe", "not UTF-8"),
        (f"{P}/counters/c/events", b"[1, 2]", "not a JSON object"),
        (f"{P}/counters/c/events", b"x" * (MAX_PAYLOAD_BYTES + 1), "too large"),
        (f"{P}/counters/c/events", _json({"event_id": "e", "direction": "sideways", "ts": TS}), "direction"),
        (f"{P}/counters/c/events", _json({"event_id": "e", "direction": "in"}), "ts missing"),
        (
            f"{P}/counters/c/events",
            _json({"event_id": "e", "direction": "in", "ts": 1700000000}),
            "ts missing",
        ),
        (
            f"{P}/counters/c/events",
            _json({"event_id": "e", "direction": "in", "ts": "yesterday"}),
            "ISO-8601",
        ),
        (
            f"{P}/counters/c/events",
            _json({"event_id": "e", "direction": "in", "ts": "2026-11-03T13:45:10"}),
            "no time zone",
        ),
        (f"{P}/counters/c/events", _json({"direction": "in", "ts": TS}), "event_id"),
        (f"{P}/counters/c/events", _json({"event_id": 7, "direction": "in", "ts": TS}), "event_id"),
        (
            f"{P}/counters/c/events",
            _json({"event_id": "e", "direction": "in", "ts": TS, "plate": 42}),
            "plate",
        ),
        (f"{P}/counters/c/count", _json({"occupied": "12", "capacity": 40, "ts": TS}), "occupied"),
        (f"{P}/counters/c/count", _json({"occupied": -1, "capacity": 40, "ts": TS}), "negative"),
        (f"{P}/counters/c/count", _json({"occupied": True, "capacity": 40, "ts": TS}), "occupied"),
        (f"{P}/counters/c/count", _json({"occupied": 2.5, "capacity": 40, "ts": TS}), "occupied"),
        (f"{P}/counters/c/count", _json({"occupied": 2, "ts": TS}), "capacity"),
        (f"{P}/sensors/s/state", _json({"occupied": 1, "ts": TS, "event_id": "e"}), "boolean"),
        (f"{P}/sensors/s/state", _json({"occupied": True, "ts": TS}), "event_id"),
        ("other/sensors/s/state", _json({"occupied": True, "ts": TS, "event_id": "e"}), "outside"),
        (f"{P}/sensors/s/extra/state", _json({"occupied": True, "ts": TS, "event_id": "e"}), "topic shape"),
        (f"{P}/sensors/s/events", _json({"occupied": True, "ts": TS, "event_id": "e"}), "topic shape"),
        (f"{P}/sensors/bad id/state", _json({"occupied": True, "ts": TS, "event_id": "e"}), "device id"),
    ],
)
def test_bad_messages(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(BadMessage) as caught:
        parse_message(topic, payload, P)
    assert reason in caught.value.reason


def test_subscriptions_use_qos_1() -> None:
    assert subscriptions("x") == [
        ("x/counters/+/events", 1),
        ("x/counters/+/count", 1),
        ("x/sensors/+/state", 1),
    ]


@pytest.fixture
def counter(session: Session) -> SensingDevice:
    lot = Lot(name="Lot T", code="T", capacity=50)
    device = SensingDevice(device_id="cnt-t-entrance", kind=DeviceKind.COUNTER, lot=lot)
    session.add(device)
    session.commit()
    return device


def _event(ts: datetime) -> bytes:
    return _json({"event_id": "e", "direction": "in", "ts": ts.isoformat()})


def test_good_message_marks_the_device_seen(core: Core, counter: SensingDevice) -> None:
    ts = datetime.now(UTC) - timedelta(seconds=5)
    handled = Ingester(core).handle(f"{P}/counters/cnt-t-entrance/events", _event(ts))

    assert isinstance(handled, CounterEvent)
    with core.db.session() as s:
        assert s.get(SensingDevice, counter.id).last_seen_at == ts
    assert int(core.redis.get(MESSAGES_KEY)) == 1
    assert core.redis.get(DEAD_LETTERS_KEY) is None


def test_last_seen_never_goes_back_or_into_the_future(core: Core, counter: SensingDevice) -> None:
    ingester = Ingester(core)
    topic = f"{P}/counters/cnt-t-entrance/events"
    now = datetime.now(UTC)
    ingester.handle(topic, _event(now - timedelta(minutes=1)))
    ingester.handle(topic, _event(now - timedelta(hours=1)))  # a replayed, older message
    with core.db.session() as s:
        assert s.get(SensingDevice, counter.id).last_seen_at == now - timedelta(minutes=1)
    ingester.handle(topic, _event(now + timedelta(days=1)))  # a device with a wrong clock
    with core.db.session() as s:
        assert s.get(SensingDevice, counter.id).last_seen_at <= datetime.now(UTC)


def test_unknown_devices_are_counted_not_stored(core: Core, session: Session) -> None:
    ingester = Ingester(core)
    for _ in range(3):
        ingester.handle(f"{P}/counters/cnt-new/events", _event(datetime.now(UTC)))
    assert core.redis.hgetall(UNKNOWN_DEVICES_KEY) == {b"cnt-new": b"3"}
    assert int(core.redis.get(MESSAGES_KEY)) == 3
    assert session.scalars(select(SensingDevice)).all() == []


def test_bad_message_is_dead_lettered(core: Core, session: Session) -> None:
    payload = b"\xff" + b"z" * (2 * MAX_PAYLOAD_BYTES)
    assert Ingester(core).handle(f"{P}/counters/c/events", payload) is None

    letter = session.scalars(select(IngestDeadLetter)).one()
    assert letter.topic == f"{P}/counters/c/events"
    assert "too large" in letter.reason
    assert letter.payload.startswith("\ufffd") and len(letter.payload) == MAX_PAYLOAD_BYTES
    assert int(core.redis.get(DEAD_LETTERS_KEY)) == 1
    assert core.redis.get(MESSAGES_KEY) is None


def test_message_for_a_device_of_another_kind_is_dead_lettered(
    core: Core, session: Session, counter: SensingDevice
) -> None:
    payload = _json({"occupied": True, "ts": datetime.now(UTC).isoformat(), "event_id": "e"})
    assert Ingester(core).handle(f"{P}/sensors/cnt-t-entrance/state", payload) is None
    assert "is a counter" in session.scalars(select(IngestDeadLetter)).one().reason
    assert session.get(SensingDevice, counter.id).last_seen_at is None


def test_an_error_while_applying_is_dead_lettered_and_the_next_message_works(
    core: Core, session: Session, counter: SensingDevice, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingester = Ingester(core)
    topic = f"{P}/counters/cnt-t-entrance/events"
    with monkeypatch.context() as patch:
        patch.setattr(ingester, "apply", _boom)
        assert ingester.handle(topic, _event(datetime.now(UTC))) is None
    assert "RuntimeError" in session.scalars(select(IngestDeadLetter)).one().reason

    assert ingester.handle(topic, _event(datetime.now(UTC))) is not None


def _boom(*_args: object) -> None:
    raise RuntimeError("database went away")
