"""Replaying a mapped device's kept messages through the real test broker (``core.mqtt_url``)."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
import redis
from sqlalchemy import select

from dashboard.core import set_core
from dashboard.services import devices
from models import Lot, UnknownDeviceMessage
from workers import replay
from workers.mqtt import make_client
from workers.worker import InlineWorker

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
DEADLINE_SECONDS = 15.0


@pytest.fixture
def job_core(core):
    set_core(core)
    yield core
    set_core(None)


@pytest.fixture
def device_id() -> str:
    return f"cnt-replay-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def kept(core, device_id) -> list[tuple[str, str]]:
    """Three kept messages on two topics, inserted out of order; returned in the order kept."""
    prefix = core.settings.mqtt_topic_prefix
    messages = [
        (2, f"{prefix}/counters/{device_id}/count", '{"seq": 2}'),
        (1, f"{prefix}/counters/{device_id}/events", '{"seq": 1}'),
        (3, f"{prefix}/counters/{device_id}/events", '{"seq": 3}'),
    ]
    with core.db.session() as s:
        s.add(Lot(name="Replay Lot", capacity=10))
        for minute, topic, payload in messages:
            s.add(
                UnknownDeviceMessage(
                    device_id=device_id,
                    topic=topic,
                    payload=payload,
                    received_at=T0 + timedelta(minutes=minute),
                )
            )
    return [(topic, payload) for _minute, topic, payload in sorted(messages)]


def map_device(core, device_id: str) -> int:
    with core.db.session() as s:
        lot_id = s.scalars(select(Lot.id)).one()
        return devices.map_unknown_device(s, device_id, "counter", lot_id, None)


def kept_count(core, device_id: str) -> int:
    with core.db.session() as s:
        return devices.kept_message_count(s, device_id)


@pytest.fixture
def listener(core, device_id) -> Iterator[list[tuple[str, str]]]:
    """A paho subscriber on the device's topics; yields what it receives, in order."""
    client, address = make_client(core.mqtt_url, f"parkops-test-sub-{uuid.uuid4().hex[:8]}")
    subscribed = threading.Event()
    received: list[tuple[str, str]] = []

    def on_connect(c: mqtt.Client, *_args: object) -> None:
        prefix = core.settings.mqtt_topic_prefix
        c.subscribe([(f"{prefix}/counters/{device_id}/+", 1), (f"{prefix}/sensors/{device_id}/+", 1)])

    client.on_connect = on_connect
    client.on_subscribe = lambda *_args: subscribed.set()
    client.on_message = lambda _c, _u, msg: received.append((msg.topic, msg.payload.decode()))
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        assert subscribed.wait(5), "no SUBACK from the test broker"
        yield received
    finally:
        client.disconnect()
        client.loop_stop()


def wait_for(received: list, count: int) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline and len(received) < count:
        time.sleep(0.05)


def test_a_mapped_device_s_kept_messages_reach_the_broker_in_order(core, job_core, device_id, kept, listener):
    assert map_device(core, device_id) == 3
    replay.enqueue_replay(core, device_id)
    InlineWorker([core.settings.queue_name], connection=redis.Redis.from_url(core.redis_url)).work(burst=True)

    wait_for(listener, len(kept))
    assert listener == kept
    assert kept_count(core, device_id) == 0

    # Idempotent: a second run finds nothing left to publish.
    assert replay.replay_kept_messages(device_id) == 0
    time.sleep(0.3)
    assert listener == kept


def test_unregistered_and_inactive_devices_keep_their_messages(core, device_id, kept, listener):
    assert replay.replay(core, device_id) == 0
    assert kept_count(core, device_id) == 3

    map_device(core, device_id)
    with core.db.session() as s:
        devices.deactivate_device(s, device_id, actor_id=None)
    assert replay.replay(core, device_id) == 0
    assert kept_count(core, device_id) == 3
    time.sleep(0.3)
    assert listener == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_messages_stay_kept_when_the_broker_is_unreachable(core, device_id, kept):
    map_device(core, device_id)
    offline = dataclasses.replace(core, mqtt_url=f"mqtt://127.0.0.1:{_closed_port()}")
    with pytest.raises(OSError):
        replay.replay(offline, device_id)
    assert kept_count(core, device_id) == 3
