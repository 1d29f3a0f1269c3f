"""The ingester's validation and bookkeeping, without a broker."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.core import Core
from dashboard.services.occupancy import CHANNEL, Figure, LiveStore
from models import (
    DeviceKind,
    IngestDeadLetter,
    Lot,
    LotDeviceState,
    LotGroup,
    OccupancySource,
    SensingDevice,
    UnknownDeviceMessage,
)
from tests.workers.servers import refused_writes
from workers.ingest import (
    DEAD_LETTERS_KEY,
    DUPLICATES_KEY,
    MAX_PAYLOAD_BYTES,
    MESSAGES_KEY,
    UNKNOWN_DEVICES_KEY,
    BadMessage,
    CounterCount,
    CounterEvent,
    Delivery,
    Ingester,
    SensorState,
    apply_isolating,
    parse_message,
    subscriptions,
)

P = os.environ.get("PARKOPS_TEST_MQTT_PREFIX") or "parkops"  # the prefix the ``core`` fixture uses
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
    assert count == CounterCount("cnt-a", datetime.fromisoformat(TS), 12, 40, f"cnt-a@{TS}")
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
        (f"{P}/sensors/s/state", _json({"occupied": True, "ts": TS, "event_id": ""}), "event_id"),
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
def campus(session: Session) -> dict[str, int]:
    """One lot group: lot A (50 spaces) with an entrance counter, lot B (4 spaces) with a space
    sensor per space, lot C (30) with no device."""
    group = LotGroup(name="North Garage", map_color="#123456")
    lot_a = Lot(name="Lot A", code="A", capacity=50, lot_group=group)
    lot_b = Lot(name="Lot B", code="B", capacity=4, lot_group=group)
    session.add_all([group, lot_a, lot_b, Lot(name="Lot C", code="C", capacity=30, lot_group=group)])
    session.add(SensingDevice(device_id="cnt-a", kind=DeviceKind.COUNTER, lot=lot_a))
    for n in range(1, 5):
        session.add(SensingDevice(device_id=f"spc-{n}", kind=DeviceKind.SPACE_SENSOR, lot=lot_b))
    session.commit()
    return {"group": group.id, "lot_a": lot_a.id, "lot_b": lot_b.id}


def _at(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=60) + timedelta(minutes=minutes)).isoformat()


def _ev(event_id: str, direction: str = "in", minutes: float = 0) -> tuple[str, bytes]:
    return f"{P}/counters/cnt-a/events", _json(
        {"event_id": event_id, "direction": direction, "ts": _at(minutes)}
    )


def _count(occupied: int, capacity: int, minutes: float) -> tuple[str, bytes]:
    return f"{P}/counters/cnt-a/count", _json(
        {"occupied": occupied, "capacity": capacity, "ts": _at(minutes)}
    )


def _sensor(n: int, occupied: bool, minutes: float, event_id: str | None = None) -> tuple[str, bytes]:
    body: dict[str, Any] = {"occupied": occupied, "ts": _at(minutes)}
    if event_id:
        body["event_id"] = event_id
    return f"{P}/sensors/spc-{n}/state", _json(body)


def _devices_figure(core: Core, group_id: int) -> Figure:
    return LiveStore(core.redis).read([group_id])[group_id][OccupancySource.DEVICES]


def test_counter_events_move_the_group_figure_and_publish(core: Core, campus: dict[str, int]) -> None:
    listener = core.redis.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(CHANNEL)
    ingester = Ingester(core)
    result = ingester.process([_ev("e1"), _ev("e2"), _ev("e3"), _ev("e4", "out")])
    assert (result.applied, result.duplicates, result.groups_changed) == (4, 0, {campus["group"]})
    figure = _devices_figure(core, campus["group"])
    assert (figure.occupied, figure.capacity) == (2, 54)  # lot A's count + lot B's sensors; lot C has none
    published = _next_message(listener)
    assert published["group_id"] == campus["group"] and published["occupied"] == 2
    assert int(core.redis.get(MESSAGES_KEY)) == 4


def test_duplicates_count_once_within_and_across_batches(core: Core, campus: dict[str, int]) -> None:
    ingester = Ingester(core)
    first = ingester.process([_ev("same"), _ev("same")])
    again = ingester.process([_ev("same")])
    assert (first.applied, first.duplicates, again.duplicates) == (1, 1, 1)
    assert _devices_figure(core, campus["group"]).occupied == 1


def test_a_redelivered_batch_changes_nothing(core: Core, campus: dict[str, int]) -> None:
    """What the broker resends after a crash before the acknowledgement."""
    ingester = Ingester(core)
    batch = [_ev("r1"), _ev("r2"), _sensor(1, True, 1, "s-r1"), _count(7, 50, 0)]
    ingester.process(batch)
    before = _devices_figure(core, campus["group"]).occupied
    ingester.process(batch)
    assert _devices_figure(core, campus["group"]).occupied == before


def test_events_older_than_the_last_absolute_count_do_not_move_it(core: Core, campus: dict[str, int]) -> None:
    ingester = Ingester(core)
    ingester.process([_count(10, 60, minutes=30)])
    late = ingester.process([_ev("late", minutes=29)])
    fresh = ingester.process([_ev("fresh", minutes=31)])
    stale_count = ingester.process([_count(3, 60, minutes=20)])
    assert (late.out_of_date, fresh.applied, stale_count.out_of_date) == (1, 1, 1)
    figure = _devices_figure(core, campus["group"])
    assert (figure.occupied, figure.capacity) == (11, 64)  # the counter's reported capacity wins


def test_occupancy_never_goes_below_zero_and_says_so(core: Core, campus: dict[str, int]) -> None:
    Ingester(core).process([_ev("o1", "out"), _ev("o2", "out")])
    figure = _devices_figure(core, campus["group"])
    assert figure.occupied == 0
    assert "below zero" in (figure.flag or "")


def test_far_above_capacity_is_flagged_not_hidden(core: Core, campus: dict[str, int]) -> None:
    Ingester(core).process([_count(70, 50, minutes=1)])
    figure = _devices_figure(core, campus["group"])
    assert figure.occupied == 70
    assert "above 110% of capacity" in (figure.flag or "")


def test_space_sensors_count_occupied_spaces_in_order(core: Core, campus: dict[str, int]) -> None:
    ingester = Ingester(core)
    ingester.process([_sensor(1, True, 1), _sensor(2, True, 1), _sensor(3, True, 1, "x3")])
    result = ingester.process([_sensor(3, False, 5), _sensor(2, False, 0.5), _sensor(3, True, 1, "x3")])
    assert (result.applied, result.out_of_date, result.duplicates) == (1, 1, 1)
    assert _devices_figure(core, campus["group"]).occupied == 2


def test_unknown_devices_messages_are_kept_for_the_admin(core: Core, session: Session) -> None:
    ingester = Ingester(core)
    result = ingester.process(
        [
            (f"{P}/counters/cnt-new/events", _json({"event_id": f"u{n}", "direction": "in", "ts": _at(n)}))
            for n in range(3)
        ]
    )
    assert result.unknown == 3
    assert core.redis.hgetall(UNKNOWN_DEVICES_KEY) == {b"cnt-new": b"3"}
    kept = session.scalars(select(UnknownDeviceMessage).order_by(UnknownDeviceMessage.id)).all()
    assert [row.device_id for row in kept] == ["cnt-new"] * 3
    assert json.loads(kept[0].payload)["event_id"] == "u0"


def test_a_newly_registered_device_counts_after_a_refresh(
    core: Core, campus: dict[str, int], session: Session
) -> None:
    ingester = Ingester(core)
    session.add(SensingDevice(device_id="cnt-late", kind=DeviceKind.COUNTER, lot_id=campus["lot_a"]))
    session.commit()
    ingester.request_refresh()
    ingester.refresh_if_due()
    topic = f"{P}/counters/cnt-late/events"
    assert (
        ingester.process([(topic, _json({"event_id": "n1", "direction": "in", "ts": _at(1)}))]).applied == 1
    )


def test_bad_message_is_dead_lettered(core: Core, session: Session) -> None:
    payload = b"\xff" + b"z" * (2 * MAX_PAYLOAD_BYTES)
    assert Ingester(core).handle(f"{P}/counters/c/events", payload) is None

    letter = session.scalars(select(IngestDeadLetter)).one()
    assert letter.topic == f"{P}/counters/c/events"
    assert "too large" in letter.reason
    assert letter.payload.startswith("\ufffd") and len(letter.payload) == MAX_PAYLOAD_BYTES
    assert int(core.redis.get(DEAD_LETTERS_KEY)) == 1


def test_message_for_a_device_of_another_kind_is_dead_lettered(core: Core, session: Session, campus) -> None:
    payload = _json({"occupied": True, "ts": datetime.now(UTC).isoformat(), "event_id": "e"})
    assert Ingester(core).handle(f"{P}/sensors/cnt-a/state", payload) is None
    assert "is a counter" in session.scalars(select(IngestDeadLetter)).one().reason


def test_last_seen_is_written_in_batches_and_never_goes_back(core: Core, campus: dict[str, int]) -> None:
    ingester = Ingester(core)
    recent = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    topic = f"{P}/counters/cnt-a/events"

    def event(event_id: str, ts: datetime) -> tuple[str, bytes]:
        return topic, _json({"event_id": event_id, "direction": "in", "ts": ts.isoformat()})

    def last_seen() -> datetime | None:
        with core.db.session() as s:
            return s.scalar(select(SensingDevice.last_seen_at).where(SensingDevice.device_id == "cnt-a"))

    ingester.process([event("l1", recent)])
    assert last_seen() is None  # not per message: flushed every few seconds
    ingester.process([event("l2", recent - timedelta(hours=1))])  # a replayed, older message
    ingester.flush_last_seen()
    assert last_seen() == recent
    ingester.process([event("l3", datetime.now(UTC) + timedelta(days=1))])  # a device with a wrong clock
    ingester.flush_last_seen()
    assert recent < last_seen() <= datetime.now(UTC)


def test_when_the_database_fails_the_batch_is_retried_without_double_counting(
    core: Core, campus: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    ingester = Ingester(core)
    ingester.ensure_live_state()
    batch = [_ev("d1"), _ev("d2"), (f"{P}/counters/cnt-a/events", b"{broken")]
    real_session = core.db.session
    with monkeypatch.context() as patch:
        patch.setattr(core.db, "session", _boom)
        with pytest.raises(RuntimeError):
            ingester.process(batch)
    monkeypatch.setattr(core.db, "session", real_session)
    retried = ingester.process(batch)
    assert retried.duplicates == 2
    assert _devices_figure(core, campus["group"]).occupied == 2
    with core.db.session() as s:
        assert len(s.scalars(select(IngestDeadLetter)).all()) == 1


def _boom(*_args: object) -> None:
    raise RuntimeError("database went away")


def _next_message(listener: Any) -> dict[str, Any]:
    deadline = datetime.now(UTC) + timedelta(seconds=3)
    while datetime.now(UTC) < deadline:
        message = listener.get_message(timeout=0.2)
        if message:
            return json.loads(message["data"])
    raise AssertionError("nothing published")


# -- hardening (issue 9) -----------------------------------------------------------------------


def _letters(session: Session) -> list[IngestDeadLetter]:
    session.expire_all()
    return session.scalars(select(IngestDeadLetter).order_by(IngestDeadLetter.id)).all()


def test_a_nul_byte_becomes_one_dead_letter_and_the_feed_flows_on(
    core: Core, campus: dict[str, int], session: Session
) -> None:
    """On PostgreSQL (the service run) the dead letter itself used to fail: text cannot hold NUL,
    and the whole batch was retried forever. A raw NUL byte and an escaped one in event_id are
    both refused by the parser, kept readable (U+2400 for the byte) and the rest is applied."""
    raw_nul = b'{"event_id": "a\x00b", "direction": "in", "ts": "' + _at(1).encode() + b'"}'
    escaped = _json({"event_id": "x\u0000y", "direction": "in", "ts": _at(1)})
    topic = f"{P}/counters/cnt-a/events"
    result = Ingester(core).process([_ev("n1"), (topic, raw_nul), (topic, escaped), _ev("n2")])
    assert (result.applied, result.dead_letters) == (2, 2)
    assert _devices_figure(core, campus["group"]).occupied == 2
    letters = _letters(session)
    assert [letter.reason for letter in letters] == [
        "payload holds a NUL byte",
        "event_id holds control characters",
    ]
    assert letters[0].payload == raw_nul.decode().replace("\x00", "\u2400")
    assert letters[1].payload == escaped.decode() and "\\u0000" in letters[1].payload
    assert int(core.redis.get(DEAD_LETTERS_KEY)) == 2


def test_a_message_the_database_refuses_is_isolated_and_dead_lettered(
    core: Core, campus: dict[str, int], session: Session
) -> None:
    """The general case: a message that passes validation and still cannot be applied (here the
    database refuses the unknown device's kept message) is found by splitting the batch and kept
    as a dead letter with the reason; everything else in the batch is applied."""
    ingester = Ingester(core)
    poison = (f"{P}/counters/cnt-poison/events", _json({"event_id": "p1", "direction": "in", "ts": _at(1)}))
    batch = [_ev("i1"), _ev("i2"), poison, _ev("i3"), _ev("i4", "out"), _ev("i5")]
    deliveries = [Delivery(topic, payload, f"tok-{n}", mid=n) for n, (topic, payload) in enumerate(batch)]
    with refused_writes(core, "unknown_device_messages", "NEW.device_id = 'cnt-poison'"):
        outcome = apply_isolating(ingester, deliveries)
    assert {d.mid for d in outcome.done} == set(range(6)) and outcome.waiting == []
    assert outcome.poison == 1
    assert _devices_figure(core, campus["group"]).occupied == 3
    (letter,) = _letters(session)
    assert letter.topic == poison[0] and letter.payload == poison[1].decode()
    assert letter.reason.startswith("could not be applied:") and "refused by the test" in letter.reason
    assert int(core.redis.get(MESSAGES_KEY)) == 6  # five in batches that applied, one dead letter
    assert core.redis.get(DUPLICATES_KEY) is None  # the script's own retries are not duplicates


def test_a_failure_every_message_shares_keeps_them_all_waiting_and_counts_nothing_twice(
    core: Core, campus: dict[str, int], session: Session
) -> None:
    """Not the messages' fault (the database refuses every row of a table the batch writes to):
    nothing is dead-lettered, nothing acknowledged; tried again once the database takes writes,
    each message counts once (the events the failed tries had already counted in Redis are not
    duplicates), and the feed's counters move once (they used to grow on every retry)."""
    ingester = Ingester(core)
    unknown = (f"{P}/counters/cnt-new/events", _json({"event_id": "u1", "direction": "in", "ts": _at(1)}))
    batch = [_ev("w1"), _ev("w2"), _count(20, 50, 2), _sensor(1, True, 3), unknown]
    deliveries = [Delivery(topic, payload, f"tok-{n}", mid=n) for n, (topic, payload) in enumerate(batch)]
    with refused_writes(core, "unknown_device_messages"):
        for attempt in range(3):
            outcome = apply_isolating(ingester, deliveries, from_end=attempt % 2 == 1)
            assert outcome.done == [] and len(outcome.waiting) == 5
            assert "refused by the test" in (outcome.error or "")
    assert _letters(session) == [] and core.redis.get(MESSAGES_KEY) is None
    outcome = apply_isolating(ingester, deliveries)
    assert len(outcome.done) == 5 and outcome.poison == 0
    assert _devices_figure(core, campus["group"]).occupied == 21  # the count (20), then one sensor
    assert int(core.redis.get(MESSAGES_KEY)) == 5 and core.redis.get(DUPLICATES_KEY) is None
    assert core.redis.hgetall(UNKNOWN_DEVICES_KEY) == {b"cnt-new": b"1"}
    assert len(session.scalars(select(UnknownDeviceMessage)).all()) == 1


def test_a_repeated_count_moves_nothing(core: Core, campus: dict[str, int]) -> None:
    """Count 40 at T, two cars in, then the same count again (a QoS 1 redelivery, or the
    ingester's own retry): still 42; the repeat is a duplicate. A count's optional event_id
    identifies it like an event's."""
    ingester = Ingester(core)
    count = _count(40, 50, minutes=10)
    ingester.process([count])
    ingester.process([_ev("c1", minutes=11), _ev("c2", minutes=12)])
    again = ingester.process([count])
    assert (again.duplicates, _devices_figure(core, campus["group"]).occupied) == (1, 42)

    topic = f"{P}/counters/cnt-a/count"
    with_id = _json({"occupied": 30, "capacity": 50, "ts": _at(20), "event_id": "count-7"})
    ingester.process([(topic, with_id)])
    ingester.process([_ev("c3", minutes=21)])
    repeated = ingester.process([(topic, with_id)])
    assert (repeated.duplicates, _devices_figure(core, campus["group"]).occupied) == (1, 31)


def test_a_count_applies_as_of_its_own_time(core: Core, campus: dict[str, int]) -> None:
    """An event at T2 that arrives before a count taken at T1 < T2 is kept: 60 + 1, not 60.
    Events before the count are in it already; a count older than the last one is out of date."""
    ingester = Ingester(core)
    ingester.process([_ev("t-early", minutes=5), _ev("t2", minutes=12), _ev("t3", "out", minutes=13)])
    ingester.process([_ev("t4", minutes=14)])
    result = ingester.process([_count(60, 80, minutes=11)])
    assert result.applied == 1
    assert _devices_figure(core, campus["group"]).occupied == 61  # 60 + in(12) - out(13) + in(14)
    late = ingester.process([_ev("t-late", minutes=10.5), _count(70, 80, minutes=9)])
    assert late.out_of_date == 2
    assert _devices_figure(core, campus["group"]).occupied == 61
    ingester.process([_count(50, 80, minutes=13.5), _ev("t5", minutes=15)])
    assert _devices_figure(core, campus["group"]).occupied == 52  # 50 + in(14) + in(15)


def test_the_lots_a_batch_touched_are_saved(core: Core, campus: dict[str, int], session: Session) -> None:
    """The copy the live state is rebuilt from after Redis loses it."""
    ingester = Ingester(core)
    counted_at = _at(1)
    count = (f"{P}/counters/cnt-a/count", _json({"occupied": 12, "capacity": 60, "ts": counted_at}))
    ingester.process([count, _ev("s1", minutes=2), _sensor(2, True, 3), _sensor(4, True, 3)])
    ingester.save_lot_states()  # the run loop does this every second
    states = {row.lot_id: row for row in session.scalars(select(LotDeviceState))}
    counter, sensors = states[campus["lot_a"]], states[campus["lot_b"]]
    assert (counter.count, counter.reported_capacity) == (13, 60)
    assert counter.count_ts == pytest.approx(datetime.fromisoformat(counted_at).timestamp(), abs=1e-6)
    assert json.loads(sensors.occupied_sensors) == ["spc-2", "spc-4"]
