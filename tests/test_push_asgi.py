"""``parkops stream``'s app (dashboard/push_asgi.py) under a real uvicorn on a free port: the same SSE
wire format as the Flask route, every change to every one of hundreds of streams, a slow client
dropped without holding the others back, the cap and Redis outages answered with 503, and the
hub subscribing again after Redis restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner

from dashboard import push_asgi
from dashboard.cli import main
from dashboard.push import STREAM_PATH
from dashboard.services.occupancy import CHANNEL, LiveStore, apply_figure
from models import LotGroup, OccupancySource
from tests.redis_process import RedisProcess, free_port


class StreamServer:
    """The stream app under uvicorn in a thread (its own event loop), as ``parkops stream`` runs it."""

    def __init__(self, redis_url: str, **options: int) -> None:
        self.app = push_asgi.create_stream_app(redis_url, **options)
        self.port = free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def hub(self) -> push_asgi.Hub:
        return self.app.state.hub

    def __enter__(self) -> StreamServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not (self.server.started and self.hub.subscribed.is_set()):
            assert time.monotonic() < deadline, "the stream server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Stream:
    """A raw SSE client: the status line, then one event (blank-line separated block) at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int) -> None:
        self.reader, self.writer, self.status = reader, writer, status
        self.headers: dict[str, str] = {}

    @classmethod
    async def open(cls, port: int, path: str = STREAM_PATH, rcvbuf: int | None = None) -> Stream:
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        status_line = await reader.readline()
        stream = cls(reader, writer, int(status_line.split()[1]))
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            stream.headers[name.strip().lower()] = value.strip()
        return stream

    async def event(self, within: float = 5.0) -> str:
        """The next event as sent (chunked framing removed); "" once the server ended the stream."""
        text = ""
        while not text.endswith("\n\n"):
            size_line = await asyncio.wait_for(self.reader.readline(), within)
            if size_line in (b"", b"0\r\n"):
                return ""
            chunk = await self.reader.readexactly(int(size_line, 16) + 2)
            text += chunk[:-2].decode()
        return text

    async def data(self, within: float = 5.0) -> str:
        """The next ``data:`` event, skipping heartbeats."""
        while True:
            event = await self.event(within)
            if not event.startswith(":"):
                return event  # "" when the stream ended

    async def several(self, count: int) -> list[str]:
        return [await self.data() for _ in range(count)]

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    with RedisProcess(tmp_path) as server:
        yield server


def _wait(condition, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_sse_headers_retry_hint_and_heartbeats(redis_server, monkeypatch) -> None:
    monkeypatch.setattr(push_asgi, "HEARTBEAT_SECONDS", 0.3)

    async def scenario(port: int) -> None:
        stream = await Stream.open(port)
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-cache"
        assert stream.headers["x-accel-buffering"] == "no"
        assert await stream.event() == f"retry: {push_asgi.RETRY_MS}\n: connected\n\n"
        for _ in range(2):
            assert await stream.event(within=1) == ": heartbeat\n\n"  # every 0.3 s
        stream.close()

    with StreamServer(redis_server.url) as server:
        asyncio.run(scenario(server.port))
        _wait(lambda: server.hub.open_streams == 0)  # the closed client left the hub


def test_every_change_reaches_every_one_of_300_streams_in_order(redis_server) -> None:
    publisher = redis_server.client()
    payloads = [json.dumps({"group_id": 7, "occupied": n, "capacity": 120}) for n in range(5)]

    async def scenario(port: int) -> list[list[str]]:
        streams = await asyncio.gather(*(Stream.open(port) for _ in range(300)))
        assert {stream.status for stream in streams} == {200}
        await asyncio.gather(*(stream.event() for stream in streams))  # the retry hints
        for payload in payloads:
            assert publisher.publish(CHANNEL, payload) == 1  # one subscription for all 300
        received = await asyncio.gather(*(stream.several(len(payloads)) for stream in streams))
        for stream in streams:
            stream.close()
        return received

    with StreamServer(redis_server.url) as server:
        received = asyncio.run(scenario(server.port))
    expected = [f"data: {payload}\n\n" for payload in payloads]
    assert all(events == expected for events in received)
    assert len(received) == 300


def test_a_multi_line_payload_gets_one_data_field_per_line(redis_server) -> None:
    async def scenario(port: int) -> str:
        stream = await Stream.open(port)
        await stream.event()
        redis_server.client().publish(CHANNEL, '{"group_id": 1,\n"occupied": 2}')
        event = await stream.data()
        stream.close()
        return event

    with StreamServer(redis_server.url) as server:
        assert asyncio.run(scenario(server.port)) == 'data: {"group_id": 1,\ndata: "occupied": 2}\n\n'


def test_the_public_payload_of_a_real_change_is_relayed_as_published(core, session) -> None:
    """The app's own publisher (``apply_figure`` -> ``LiveStore``) on the test Redis, end to end."""
    kwargs = core.redis.connection_pool.connection_kwargs
    url = (
        f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
        if "path" in kwargs
        else f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"
    )
    group = LotGroup(name="North Garage", map_color="#123456")
    session.add(group)
    session.commit()

    async def scenario(port: int) -> tuple[str, float]:
        stream = await Stream.open(port)
        await stream.event()
        start = time.monotonic()
        await asyncio.to_thread(
            apply_figure,
            session,
            LiveStore(core.redis),
            group.id,
            OccupancySource.DEVICES,
            41,
            120,
            datetime.now(UTC),
            step_percent=5,
        )
        event = await stream.data()
        stream.close()
        return event, time.monotonic() - start

    with StreamServer(url) as server:
        event, elapsed = asyncio.run(scenario(server.port))
    payload = json.loads(event.removeprefix("data: ").strip())
    assert (payload["group_id"], payload["occupied"], payload["capacity"]) == (group.id, 41, 120)
    assert payload["source"] == "devices"
    assert elapsed < 1.0


def test_a_client_that_stops_reading_is_dropped_and_the_others_get_everything(redis_server) -> None:
    """Large changes fill the silent client's socket, then its queue; the hub drops it and never
    waits, so the reading client receives every change."""
    publisher = redis_server.client()
    count = 200
    payloads = [json.dumps({"group_id": 1, "occupied": n, "pad": "x" * 65_536}) for n in range(count)]

    async def scenario(port: int, hub: push_asgi.Hub) -> tuple[list[str], str]:
        silent = await Stream.open(port, rcvbuf=4096)
        reader = await Stream.open(port)
        await silent.event()
        await reader.event()
        received: list[str] = []
        # In lockstep with the reading client, which so never falls behind.
        for payload in payloads:
            await asyncio.to_thread(publisher.publish, CHANNEL, payload)
            received.append(await reader.data())
        # The silent client is dropped: its stream ends once it reads what its socket holds.
        tail = ""
        while (event := await silent.event(within=10)) != "":
            tail = event
        reader.close()
        silent.close()
        return received, tail

    with StreamServer(redis_server.url, queue_size=8) as server:
        received, last_seen = asyncio.run(scenario(server.port, server.hub))
        assert server.hub.dropped_slow == 1
    assert [json.loads(event.removeprefix("data: "))["occupied"] for event in received] == list(range(count))
    # It saw only a beginning of the changes before being cut off.
    assert json.loads(last_seen.removeprefix("data: "))["occupied"] < count - 1


def test_the_hub_drops_a_full_queue_without_waiting() -> None:
    async def scenario() -> None:
        hub = push_asgi.Hub("redis://unused", queue_size=2)
        hub.subscribed.set()
        slow, fast = hub.join(), hub.join()
        for n in range(3):
            hub.fan_out(f"data: {n}\n\n".encode())
            await fast.queue.get()
        assert slow.dropped and slow.reason == "slow"
        assert hub.open_streams == 1 and hub.dropped_slow == 1

    asyncio.run(scenario())


def test_beyond_max_streams_the_answer_is_503_until_one_closes(redis_server) -> None:
    async def scenario(port: int, hub: push_asgi.Hub) -> None:
        open_ = [await Stream.open(port) for _ in range(3)]
        refused = await Stream.open(port)
        assert [stream.status for stream in open_] == [200, 200, 200]
        assert refused.status == 503 and refused.headers["retry-after"] == "60"
        refused.close()
        open_[0].close()
        deadline = time.monotonic() + 5
        while hub.open_streams > 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        again = await Stream.open(port)
        assert again.status == 200
        for stream in [*open_[1:], again]:
            stream.close()

    with StreamServer(redis_server.url, max_streams=3) as server:
        asyncio.run(scenario(server.port, server.hub))


def test_a_redis_restart_ends_the_streams_then_the_hub_subscribes_again(redis_server) -> None:
    async def scenario(port: int, hub: push_asgi.Hub) -> None:
        stream = await Stream.open(port)
        assert stream.status == 200
        await stream.event()
        redis_server.stop()
        # The open stream ends cleanly, so the browser reconnects after the retry hint...
        assert await stream.event(within=5) == ""
        stream.close()
        # ...and while Redis is away, the stream and the health check answer 503.
        refused = await Stream.open(port)
        assert refused.status == 503
        refused.close()
        health = await Stream.open(port, "/healthz")
        assert health.status == 503
        health.close()
        redis_server.start()
        deadline = time.monotonic() + push_asgi.MAX_RECONNECT_SECONDS + 5
        while not hub.subscribed.is_set():
            assert time.monotonic() < deadline, "the hub did not subscribe again"
            await asyncio.sleep(0.05)
        back = await Stream.open(port)
        assert back.status == 200
        await back.event()
        assert redis_server.client().publish(CHANNEL, '{"group_id": 3}') == 1
        assert await back.data() == 'data: {"group_id": 3}\n\n'
        back.close()

    with StreamServer(redis_server.url) as server:
        asyncio.run(scenario(server.port, server.hub))
        assert server.hub.resubscribes == 1


def test_a_stream_server_started_while_redis_is_down_serves_once_it_is_up(tmp_path) -> None:
    server_redis = RedisProcess(tmp_path)
    stream_server = StreamServer(server_redis.url)
    stream_server.thread.start()
    try:
        _wait(lambda: stream_server.server.started)
        assert not stream_server.hub.subscribed.is_set()
        server_redis.start()
        _wait(lambda: stream_server.hub.subscribed.is_set(), within=push_asgi.MAX_RECONNECT_SECONDS + 5)
    finally:
        stream_server.__exit__()
        server_redis.stop()


def test_parkops_stream_needs_a_redis_url(monkeypatch) -> None:
    monkeypatch.delenv("PARKOPS_REDIS_URL", raising=False)
    result = CliRunner().invoke(main, ["stream", "--port", str(free_port())])
    assert result.exit_code == 1
    assert "parkops stream needs PARKOPS_REDIS_URL" in result.output


def test_parkops_stream_serves_the_stream_from_its_own_process(redis_server) -> None:
    """The command as deployed: its own process and port, healthy once subscribed, relaying."""
    port = free_port()
    env = {**os.environ, "PARKOPS_REDIS_URL": redis_server.url}
    command = [str(Path(sys.executable).parent / "parkops"), "stream", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)

    async def scenario() -> str:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = await Stream.open(port, "/healthz")
                health.close()
                if health.status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "parkops stream did not become healthy"
            await asyncio.sleep(0.1)
        stream = await Stream.open(port)
        assert await stream.event() == "retry: 3000\n: connected\n\n"
        redis_server.client().publish(CHANNEL, '{"group_id": 5, "occupied": 9}')
        event = await stream.data()
        stream.close()
        return event

    try:
        assert asyncio.run(scenario()) == 'data: {"group_id": 5, "occupied": 9}\n\n'
    finally:
        process.terminate()
        process.wait(10)
    # uvicorn shuts down gracefully, then re-raises the signal it caught, as the exit status says.
    assert process.returncode == -signal.SIGTERM
    assert f"http://127.0.0.1:{port}/api/v1/occupancy/stream" in process.stdout.read()
