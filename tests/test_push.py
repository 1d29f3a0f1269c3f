"""The occupancy stream: a published change reaches an open stream within a second, idle streams
get heartbeats, the per-process cap answers 503, and a client that goes away frees its slot."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
import requests
from werkzeug.serving import make_server

from dashboard import push
from dashboard.services.occupancy import CHANNEL, LiveStore, apply_figure
from models import LotGroup, OccupancySource

URL = push.STREAM_PATH


@pytest.fixture(autouse=True)
def _bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A short heartbeat bounds every read below: a stream that gets no event still yields within
    a second instead of blocking a failing test for 15 s."""
    monkeypatch.setattr(push, "HEARTBEAT_SECONDS", 1.0)


def _chunks(response) -> Iterator[str]:
    for chunk in response.response:
        yield chunk.decode() if isinstance(chunk, bytes) else chunk


def _next_data(chunks: Iterator[str], within: float) -> tuple[str, float]:
    """The first ``data:`` event and how long it took, reading at most ``within`` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        chunk = next(chunks)
        if chunk.startswith("data: "):
            return chunk, time.monotonic() - start
    raise AssertionError(f"no data event within {within} s")


def test_stream_answers_with_sse_headers_and_a_retry_hint(client) -> None:
    response = client.get(URL, buffered=False)
    try:
        assert response.status_code == 200
        assert response.mimetype == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Accel-Buffering"] == "no"
        first = next(_chunks(response))
        assert first.startswith(f"retry: {push.RETRY_MS}\n")
        assert first.endswith("\n\n")
    finally:
        response.close()
    assert push.active_streams() == 0


def test_a_published_change_arrives_within_a_second(client, core, session) -> None:
    group = LotGroup(name="North Garage", map_color="#123456")
    session.add(group)
    session.commit()
    response = client.get(URL, buffered=False)
    try:
        chunks = _chunks(response)
        next(chunks)  # the retry hint: the stream is open and subscribed
        publisher = threading.Timer(
            0.2,
            lambda: apply_figure(
                session,
                LiveStore(core.redis),
                group.id,
                OccupancySource.DEVICES,
                41,
                120,
                datetime.now(UTC),
                step_percent=5,
            ),
        )
        publisher.start()
        event, elapsed = _next_data(chunks, within=3)
        publisher.join()
    finally:
        response.close()
    assert elapsed < 1.2  # 0.2 s until the publish, then well under a second
    payload = json.loads(event.removeprefix("data: ").strip())
    assert payload["group_id"] == group.id
    assert (payload["occupied"], payload["capacity"], payload["source"]) == (41, 120, "devices")
    assert event.endswith("\n\n")


def test_an_idle_stream_sends_heartbeat_comments(client, monkeypatch) -> None:
    monkeypatch.setattr(push, "HEARTBEAT_SECONDS", 0.2)
    response = client.get(URL, buffered=False)
    try:
        chunks = _chunks(response)
        next(chunks)
        start = time.monotonic()
        assert next(chunks) == ": heartbeat\n\n"
        assert time.monotonic() - start < 1
    finally:
        response.close()


def test_streams_beyond_the_cap_get_503(client, monkeypatch) -> None:
    monkeypatch.setattr(push, "MAX_STREAMS", 1)
    first = client.get(URL, buffered=False)
    try:
        assert first.status_code == 200
        refused = client.get(URL)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"]
        assert push.active_streams() == 1
    finally:
        first.close()
    assert push.active_streams() == 0
    again = client.get(URL, buffered=False)
    assert again.status_code == 200
    again.close()


def test_a_cap_of_zero_refuses_every_stream(client, monkeypatch) -> None:
    monkeypatch.setattr(push, "MAX_STREAMS", 0)
    assert client.get(URL).status_code == 503


def test_the_stream_needs_no_login(client) -> None:
    response = client.get(URL, buffered=False)
    assert response.status_code == 200
    response.close()


class BrokenPubSub:
    """Stands in for a pub/sub connection when Redis is down (at subscribe, or mid-stream)."""

    def __init__(self, fail_at: str) -> None:
        self.fail_at = fail_at
        self.closed = False

    def subscribe(self, *_channels: str) -> None:
        if self.fail_at == "subscribe":
            raise redis.ConnectionError("Redis is down")

    def get_message(self, **_kwargs: object) -> None:
        raise redis.ConnectionError("Redis went away")

    def close(self) -> None:
        self.closed = True


def test_without_redis_the_stream_is_refused(client, core, monkeypatch) -> None:
    broken = BrokenPubSub("subscribe")
    monkeypatch.setattr(core.redis, "pubsub", lambda: broken)
    assert client.get(URL).status_code == 503
    assert broken.closed
    assert push.active_streams() == 0


def test_losing_redis_ends_the_stream_cleanly(client, core, monkeypatch) -> None:
    broken = BrokenPubSub("get_message")
    monkeypatch.setattr(core.redis, "pubsub", lambda: broken)
    response = client.get(URL, buffered=False)
    assert response.status_code == 200
    assert list(_chunks(response)) == [f"retry: {push.RETRY_MS}\n: connected\n\n"]
    response.close()
    assert broken.closed
    assert push.active_streams() == 0


@pytest.fixture
def http_server(app) -> Iterator[str]:
    """A real threaded server, to see what a real disconnect does (the test client has none)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _subscribers(core) -> int:
    return int(core.redis.pubsub_numsub(CHANNEL)[0][1])


def test_over_http_and_a_client_that_leaves_frees_its_slot_and_redis_connection(
    http_server, core, monkeypatch
) -> None:
    monkeypatch.setattr(push, "HEARTBEAT_SECONDS", 0.2)
    # The process's own change watch (body_cache.ChangeWatch) may already listen on the channel.
    others = _subscribers(core)
    with requests.get(http_server + URL, stream=True, timeout=5) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        lines = response.iter_lines(decode_unicode=True)
        assert next(lines).startswith("retry:")
        assert push.active_streams() == 1
        assert _subscribers(core) == others + 1
        core.redis.publish(CHANNEL, json.dumps({"group_id": 7}))
        assert next(line for line in lines if line.startswith("data:")) == 'data: {"group_id": 7}'
    deadline = time.monotonic() + 5
    while (push.active_streams(), _subscribers(core)) != (0, others) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert push.active_streams() == 0
    assert _subscribers(core) == others
