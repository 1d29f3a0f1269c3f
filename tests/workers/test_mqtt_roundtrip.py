"""The simulator and the ingester through a real broker (``core.mqtt_url``: embedded amqtt, or
Mosquitto in the service run), plus the simulator's traffic model on its own."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from dashboard.core import Core
from dashboard.embedded import EMBEDDED_USERNAME, EmbeddedBroker
from dashboard.services import demo
from dashboard.services.devices import DEAD_LETTERS_KEY, MESSAGES_KEY, UNKNOWN_DEVICES_KEY
from models import DeviceKind, IngestDeadLetter, SensingDevice
from tests.ports import restartable_port
from workers import ingest, simulator
from workers.mqtt import make_client

DEADLINE_SECONDS = 15.0
TORONTO = ZoneInfo("America/Toronto")


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {DEADLINE_SECONDS}s waiting for {what}")


def _drop_session(core: Core, client_id: str) -> None:
    """Connect once with a clean session so the broker forgets the test ingester's session."""
    client, address = make_client(core.mqtt_url, client_id)
    client.connect(address.host, address.port)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def running(core: Core, tmp_path: Path) -> Iterator[str]:
    """The demo seeded, the ingester and the simulator running; stopped and joined afterwards."""
    with core.db.session() as session:
        demo.seed_demo(session, core.secrets, tmp_path)
    stop = threading.Event()
    client_id = f"parkops-ingest-test-{uuid.uuid4().hex[:8]}"
    threads = [
        ingest.start_ingester_thread(core, stop, client_id=client_id),
        simulator.start_simulator_thread(core, stop),
    ]
    try:
        yield client_id
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        assert not any(thread.is_alive() for thread in threads), "a worker thread did not stop"
        _drop_session(core, client_id)


def test_simulated_traffic_reaches_the_ingester(core: Core, running: str) -> None:
    prefix = core.settings.mqtt_topic_prefix

    def counted() -> bool:
        return int(core.redis.get(MESSAGES_KEY) or 0) > 0

    def device_seen() -> bool:
        with core.db.session() as s:
            return bool(s.scalar(select(func.count()).where(SensingDevice.last_seen_at.is_not(None))))

    _wait_for(counted, "the ingester to count messages")
    _wait_for(device_seen, "a device's last_seen_at")

    client, address = make_client(core.mqtt_url, f"parkops-test-pub-{uuid.uuid4().hex[:8]}")
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        client.publish(f"{prefix}/counters/cnt-broken/events", b"{not json", qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()

    def dead_lettered() -> bool:
        with core.db.session() as s:
            return bool(s.scalar(select(func.count()).where(IngestDeadLetter.topic.contains("cnt-broken"))))

    _wait_for(dead_lettered, "the malformed message in the dead letters")
    assert int(core.redis.get(DEAD_LETTERS_KEY)) >= 1
    with core.db.session() as s:
        letter = s.scalars(
            select(IngestDeadLetter).where(IngestDeadLetter.topic.contains("cnt-broken"))
        ).one()
    assert letter.payload == "{not json" and "JSON" in letter.reason


def test_simulated_counts_stay_within_capacity() -> None:
    devices = [
        ("cnt-a", DeviceKind.COUNTER, 20),
        ("cnt-b", DeviceKind.COUNTER, 5),
        ("spc-1", DeviceKind.SPACE_SENSOR, 20),
    ]
    start = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)  # 08:00 in Toronto, a Tuesday
    sim = simulator.Simulator.start_at(devices, "p", TORONTO, start, random.Random(7))
    for step in range(3000):  # ten simulated seconds a tick: 08:00 to 16:20
        for topic, body in sim.tick(start + timedelta(seconds=10 * step)):
            if topic.endswith("/count"):
                assert 0 <= body["occupied"] <= body["capacity"]
            ingest.parse_message(topic, json.dumps(body).encode(), "p")  # what it sends is valid
        assert all(0 <= c.occupied <= c.capacity for c in sim.counters)


def test_campus_rhythm() -> None:
    tuesday = datetime(2026, 11, 3, tzinfo=TORONTO)
    saturday = datetime(2026, 11, 7, tzinfo=TORONTO)
    morning, noon, evening = (tuesday.replace(hour=h) for h in (8, 12, 20))
    assert (
        simulator.target_fraction(noon)
        > simulator.target_fraction(morning)
        > simulator.target_fraction(evening)
    )
    assert simulator.target_fraction(saturday.replace(hour=12)) < simulator.target_fraction(noon) / 2

    rng = random.Random(3)
    ins = sum(simulator.choose_direction(50, 100, 0.5, 0.1, rng) == "in" for _ in range(1000))
    outs = sum(simulator.choose_direction(50, 100, 0.5, -0.1, rng) == "out" for _ in range(1000))
    assert ins > 600 and outs > 600
    assert simulator.choose_direction(0, 100, 0.0, -1.0, rng) == "in"
    assert simulator.choose_direction(100, 100, 1.0, 1.0, rng) == "out"


def _publish(core: Core, topic: str, payloads: list[bytes]) -> None:
    client, address = make_client(core.mqtt_url, f"parkops-test-pub-{uuid.uuid4().hex[:8]}")
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def _visit(core: Core, client_id: str, topic: str, wait: float) -> list[bytes]:
    """Connect with a persistent session, subscribe to ``topic``, collect for ``wait`` s, leave."""
    client, address = make_client(core.mqtt_url, client_id, persistent=True)
    subscribed = threading.Event()
    received: list[bytes] = []
    client.on_connect = lambda c, *_args: c.subscribe(topic, 1)
    client.on_subscribe = lambda *_args: subscribed.set()
    client.on_message = lambda _c, _u, message: received.append(message.payload)
    client.connect(address.host, address.port)
    client.loop_start()
    subscribed.wait(5)
    time.sleep(wait)
    client.disconnect()
    client.loop_stop()
    return received


def test_messages_sent_while_the_ingester_is_down_arrive_after_restart(core: Core) -> None:
    prefix = core.settings.mqtt_topic_prefix
    topic = f"{prefix}/counters/cnt-offline/events"
    client_id = f"parkops-ingest-test-{uuid.uuid4().hex[:8]}"

    def event() -> bytes:
        return json.dumps(
            {"event_id": str(uuid.uuid4()), "direction": "in", "ts": datetime.now(UTC).isoformat()}
        ).encode()

    def unknown_count() -> int:
        return int(core.redis.hget(UNKNOWN_DEVICES_KEY, "cnt-offline") or 0)

    def run_until(count: int) -> None:
        stop = threading.Event()
        thread = ingest.start_ingester_thread(core, stop, client_id=client_id)
        try:
            if count == 1:  # first run: keep publishing until the subscription is in place
                _wait_for(lambda: _publish(core, topic, [event()]) or unknown_count() >= 1, "the first run")
            else:
                _wait_for(lambda: unknown_count() >= count, f"{count} messages")
        finally:
            stop.set()
            thread.join(timeout=10)
        assert not thread.is_alive()

    try:
        run_until(1)
        seen = unknown_count()
        _publish(core, topic, [event() for _ in range(3)])  # nobody is listening now
        run_until(seen + 3)
    finally:
        _drop_session(core, client_id)


def test_the_ingester_reconnects_when_the_broker_comes_back(core: Core) -> None:
    """A private broker on its own port, stopped and started again under a running ingester."""
    port = restartable_port()
    own = dataclasses.replace(core, mqtt_url=f"mqtt://{EMBEDDED_USERNAME}@127.0.0.1:{port}")
    topic = f"{core.settings.mqtt_topic_prefix}/counters/cnt-flaky/events"
    payload = json.dumps({"event_id": "e", "direction": "out", "ts": datetime.now(UTC).isoformat()}).encode()

    def counted() -> int:
        return int(core.redis.hget(UNKNOWN_DEVICES_KEY, "cnt-flaky") or 0)

    broker = EmbeddedBroker(port)
    broker.start()
    stop = threading.Event()
    thread = ingest.start_ingester_thread(own, stop, client_id=f"parkops-ingest-test-{uuid.uuid4().hex[:8]}")
    try:
        _wait_for(lambda: _publish(own, topic, [payload]) or counted() >= 1, "the first connection")
        broker.stop()
        broker = EmbeddedBroker(port)
        broker.start()
        before = counted()
        _wait_for(lambda: _publish(own, topic, [payload]) or counted() > before, "the ingester to reconnect")
    finally:
        stop.set()
        thread.join(timeout=10)
        broker.stop()
    assert not thread.is_alive()


def test_a_broker_whose_shutdown_hangs_still_frees_its_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """amqtt closes its listener last, after each client's handler has stopped; a handler that
    hangs must not keep the port, or the broker started in its place cannot bind it."""
    port = restartable_port()
    broker = EmbeddedBroker(port)
    broker.start()
    assert broker._broker is not None

    async def hangs() -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(broker._broker, "shutdown", hangs)
    monkeypatch.setattr(broker, "shutdown_seconds", 0.2)
    broker.stop()
    again = EmbeddedBroker(port)
    again.start()
    again.stop()


def test_a_broker_that_never_answers_is_dropped_and_tried_again(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker going down can accept the TCP connection and never answer CONNECT: the ingester
    gives up on it after CONNECT_TIMEOUT_SECONDS instead of waiting for the keepalive."""
    monkeypatch.setattr(ingest, "CONNECT_TIMEOUT_SECONDS", 0.5)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    silent.settimeout(5)
    port = silent.getsockname()[1]
    own = dataclasses.replace(core, mqtt_url=f"mqtt://{EMBEDDED_USERNAME}@127.0.0.1:{port}")
    stop = threading.Event()
    thread = ingest.start_ingester_thread(own, stop, client_id=f"parkops-ingest-test-{uuid.uuid4().hex[:8]}")
    accepted: list[socket.socket] = []
    try:
        for _ in range(2):
            connection, _address = silent.accept()  # socket.timeout (a failure) if it never retries
            accepted.append(connection)
    finally:
        stop.set()
        thread.join(timeout=10)
        for connection in accepted:
            connection.close()
        silent.close()
    assert len(accepted) == 2 and not thread.is_alive()
