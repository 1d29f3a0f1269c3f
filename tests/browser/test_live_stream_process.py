"""The production layout of live updates, in a browser: a load balancer sends
``/api/v1/occupancy/stream`` to ``parkops stream``'s app and everything else to the web app. The
page is unchanged; its EventSource reaches the stream process, and a new count reaches the open
page within 2 s through it (the web process serves no stream)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from dashboard import push
from tests.browser.test_live_occupancy import LIVE, POLL, Traffic, garage, open_page, record
from tests.redis_process import free_port
from tests.test_push_asgi import StreamServer

pytestmark = pytest.mark.browser
__all__ = ["garage"]  # the lot group fixture, shared with the Flask-route journeys


class PathRouter:
    """A minimal load balancer: one request per connection, routed by its path, piped both ways."""

    def __init__(self, web_port: int, stream_port: int) -> None:
        self.web_port, self.stream_port = web_port, stream_port
        self.port = free_port()
        self.streams_routed = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.split(b"\r\n")[:-2]
        path = lines[0].split(b" ")[1].split(b"?")[0].decode()
        to_stream = path == push.STREAM_PATH
        self.streams_routed += to_stream
        length = 0
        kept = [lines[0]]
        for line in lines[1:]:
            name = line.split(b":", 1)[0].strip().lower()
            if name == b"content-length":
                length = int(line.split(b":", 1)[1])
            if name != b"connection":
                kept.append(line)
        body = await reader.readexactly(length) if length else b""
        port = self.stream_port if to_stream else self.web_port
        back_reader, back_writer = await asyncio.open_connection("127.0.0.1", port)
        back_writer.write(b"\r\n".join([*kept, b"Connection: close", b"", b""]) + body)

        async def down() -> None:
            while chunk := await back_reader.read(65_536):
                writer.write(chunk)
                await writer.drain()

        tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(reader.read())]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        back_writer.close()
        writer.close()

    async def _shutdown(self) -> None:
        self.server.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> PathRouter:
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self.loop
        ).result(5)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def balanced(live_server: str, core) -> Iterator[tuple[str, StreamServer]]:
    kwargs = core.redis.connection_pool.connection_kwargs
    url = (
        f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
        if "path" in kwargs
        else f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"
    )
    web_port = int(live_server.rsplit(":", 1)[1])
    with StreamServer(url) as stream_server, PathRouter(web_port, stream_server.port) as router:
        yield f"http://127.0.0.1:{router.port}", stream_server


def test_a_new_count_reaches_the_page_through_the_stream_process(
    journey: Page, balanced, make_user, core, session, garage
) -> None:
    base, stream_server = balanced
    traffic = Traffic(journey)
    open_page(journey, base, make_user, garage)
    expect(journey.locator("#lotgroups-live-status")).to_have_text("Live")
    assert stream_server.hub.open_streams == 1
    assert push.active_streams() == 0  # the web process holds no stream
    traffic.refresh_triggers.clear()
    physical = journey.locator(f"#lotgroups-row-{garage} .lotgroups-physical")

    record(core, session, garage, 57)
    expect(physical).to_have_text("57 / 200", timeout=2_000)
    record(core, session, garage, 58)
    expect(physical).to_have_text("58 / 200", timeout=2_000)

    assert LIVE in traffic.refresh_triggers
    assert POLL not in traffic.refresh_triggers
    assert traffic.stream_statuses == [200]
