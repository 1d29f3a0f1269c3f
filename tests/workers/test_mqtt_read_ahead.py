"""The ingester's paho client (``workers.mqtt.ReadAheadClient``) through a real broker
(``core.mqtt_url``: embedded amqtt, or Mosquitto in the service run): a burst is read in a few
system calls, every message arrives whole and in order however its bytes fall across reads, and
bytes read ahead on a connection that is gone are never taken for the next one's."""

from __future__ import annotations

import select
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import paho.mqtt.client as mqtt
import pytest

from dashboard.core import Core
from workers.mqtt import ReadAheadClient, make_client, make_read_ahead_client

DEADLINE_SECONDS = 15.0


def _turn(client: ReadAheadClient) -> None:
    """One turn of the ingester's loop, reduced: wait on the socket only when nothing read ahead
    waits in memory (``select`` cannot see it), then read, write and keep alive."""
    sock = client.socket()
    assert sock is not None
    if not client.buffered():
        select.select([sock], [sock] if client.want_write() else [], [], 0.05)
    client.loop_read()
    if client.want_write():
        client.loop_write()
    client.loop_misc()


def _until(client: ReadAheadClient, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {DEADLINE_SECONDS}s waiting for {what}")
        _turn(client)


@contextmanager
def _subscriber(core: Core, topic: str, received: list[bytes]) -> Iterator[ReadAheadClient]:
    client_id = f"parkops-test-ahead-{uuid.uuid4().hex[:8]}"
    client, address = make_read_ahead_client(core.mqtt_url, client_id)
    subscribed: list[int] = []
    client.on_connect = lambda c, *_args: c.subscribe(topic, 0)
    client.on_subscribe = lambda *_args: subscribed.append(1)
    client.on_message = lambda _c, _u, message: received.append(bytes(message.payload))
    client.connect(address.host, address.port)
    try:
        _until(client, lambda: bool(subscribed), "the subscription")
        yield client
    finally:
        client.disconnect()


def _publish_and_let_arrive(core: Core, topic: str, payloads: list[bytes]) -> None:
    """QoS 0 (no flow control: the broker sends them all at once), then a moment for every byte
    to reach the subscriber's socket while it reads nothing."""
    client, address = make_client(core.mqtt_url, f"parkops-test-pub-{uuid.uuid4().hex[:8]}")
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=0)
        client.publish(topic, b"last", qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()
    time.sleep(1.0)


def _payloads(n: int) -> list[bytes]:
    # Sizes from a few bytes to over 127 (a two-byte length), so packets end anywhere in a read.
    return [f"{i}:".encode() + b"x" * (i * 7 % 300) for i in range(n)]


@pytest.mark.parametrize("read_ahead", [ReadAheadClient.READ_AHEAD, 3, 100])
def test_a_burst_arrives_whole_and_in_order_in_few_system_calls(
    core: Core, monkeypatch: pytest.MonkeyPatch, read_ahead: int
) -> None:
    topic = f"parkops-test/ahead/{uuid.uuid4().hex[:8]}"
    sent = _payloads(300)
    received: list[bytes] = []
    recv_calls: list[int] = []
    real_recv = mqtt.Client._sock_recv

    def counting_recv(self: mqtt.Client, bufsize: int) -> bytes:
        recv_calls.append(bufsize)
        return real_recv(self, bufsize)

    with _subscriber(core, topic, received) as client:
        client.READ_AHEAD = read_ahead
        _publish_and_let_arrive(core, topic, sent)
        monkeypatch.setattr(mqtt.Client, "_sock_recv", counting_recv)
        _until(client, lambda: b"last" in received, "the burst")

    assert received == [*sent, b"last"]
    if read_ahead == ReadAheadClient.READ_AHEAD:
        # paho alone makes at least three per message (type byte, length, body): 903 or more.
        assert len(recv_calls) <= len(sent) // 10, len(recv_calls)


def test_bytes_read_ahead_on_a_lost_connection_are_not_read_on_the_next(core: Core) -> None:
    topic = f"parkops-test/ahead/{uuid.uuid4().hex[:8]}"
    received: list[bytes] = []
    connects: list[str] = []
    with _subscriber(core, topic, received) as client:

        def on_connect(c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
            connects.append(str(reason))
            c.subscribe(topic, 0)

        client.on_connect = on_connect
        _publish_and_let_arrive(core, topic, _payloads(50))
        client.loop_read()  # one packet: the rest of the burst is read ahead, waiting in memory
        assert client.buffered() and len(received) == 1

        client.reconnect()
        _until(client, lambda: bool(connects), "the new connection's CONNACK")
        assert connects == ["Success"]
        assert len(received) == 1  # nothing of the old connection's burst was read after it
        del received[:]
        _publish_and_let_arrive(core, topic, [b"after"])
        _until(client, lambda: b"last" in received, "a message on the new connection")

    assert received == [b"after", b"last"]
