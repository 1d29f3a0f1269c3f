"""The occupancy stream as its own ASGI process: thousands of open pages on one Redis subscription.

``dashboard.push`` serves ``GET /api/v1/occupancy/stream`` from the Flask app with one worker thread
and one Redis connection per open page, so a web process holds a couple of dozen streams. This app
serves the same path, the same SSE wire format (``retry:`` hint, heartbeat comments, one ``data:``
line per change) and the same public payload, but holds every open stream as a coroutine: one
``Hub`` per process subscribes to ``occupancy.CHANNEL`` once and copies each message into every
client's bounded queue. ``parkops stream`` runs it under uvicorn; in production the load balancer
routes that one path to it (README, Production), so pages need no change.

Failure behaviour, chosen so that no client can hurt the others:

- A client whose queue is full (it reads slower than changes arrive) is dropped: its stream ends,
  the browser reconnects after ``RETRY_MS`` and the page's 15 s poll covers what it missed. The hub
  never waits for a client.
- When Redis goes away every stream ends the same way, and the hub resubscribes with a growing
  pause (up to ``MAX_RECONNECT_SECONDS``). Until it has, new requests get 503 with ``Retry-After``
  (the page then polls, as with the Flask route), and ``/healthz`` says 503 so a load balancer can
  steer away from a process that cannot deliver.
- Beyond ``max_streams`` open streams the answer is 503 too: a bound on memory and file
  descriptors, far above what a gthread worker could hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from dashboard.services.live_channel import CHANNEL, HEARTBEAT_SECONDS, RETRY_MS, STREAM_PATH

log = logging.getLogger(__name__)

MAX_STREAMS = 10_000  # per process; each costs a socket and a few KB
QUEUE_SIZE = 64  # changes waiting for one client before it counts as too slow and is dropped
MAX_RECONNECT_SECONDS = 5.0
HEARTBEAT = b": heartbeat\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_event(payload: str) -> bytes:
    """One SSE event: each line of a payload needs its own ``data:`` field (as ``dashboard.push``)."""
    return ("".join(f"data: {line}\n" for line in payload.splitlines()) + "\n").encode()


@dataclass(eq=False)
class _Client:
    queue: asyncio.Queue[bytes | None]
    # Set by the hub when it stops feeding this client (too slow, or Redis went away): the stream
    # ends at its next wake-up even if changes are still queued.
    dropped: bool = False
    reason: str = field(default="")


class Hub:
    """One Redis subscription per process, fanned out to every open stream's queue."""

    def __init__(
        self,
        redis_url: str,
        *,
        max_streams: int = MAX_STREAMS,
        queue_size: int = QUEUE_SIZE,
        redis_factory: Callable[[str], aioredis.Redis] | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.max_streams = max_streams
        self.queue_size = queue_size
        self._redis_factory = redis_factory or _redis_client
        self._clients: set[_Client] = set()
        self.subscribed = asyncio.Event()
        self.delivered = 0  # events handed to client queues (diagnostics)
        self.dropped_slow = 0
        self.resubscribes = 0

    @property
    def open_streams(self) -> int:
        return len(self._clients)

    def join(self) -> _Client | None:
        """A new client's queue, or ``None`` when the stream must be refused (no subscription, or
        full). The client is registered before the 200 goes out, so no later change is missed."""
        if not self.subscribed.is_set() or len(self._clients) >= self.max_streams:
            return None
        client = _Client(asyncio.Queue(maxsize=self.queue_size))
        self._clients.add(client)
        return client

    def leave(self, client: _Client) -> None:
        self._clients.discard(client)

    def _drop(self, client: _Client, reason: str) -> None:
        client.dropped = True
        client.reason = reason
        self._clients.discard(client)
        # Wake the stream; a full queue wakes it anyway (its next ``get`` returns at once).
        with contextlib.suppress(asyncio.QueueFull):
            client.queue.put_nowait(None)

    def fan_out(self, event: bytes) -> None:
        """Give one event to every client without ever waiting: a full queue drops its client."""
        for client in list(self._clients):
            try:
                client.queue.put_nowait(event)
                self.delivered += 1
            except asyncio.QueueFull:
                self.dropped_slow += 1
                log.info("occupancy stream: dropping a client that fell %d changes behind", self.queue_size)
                self._drop(client, "slow")

    def _drop_all(self, reason: str) -> None:
        for client in list(self._clients):
            self._drop(client, reason)

    async def run(self) -> None:
        """Subscribe, relay, and on any Redis failure end every stream and subscribe again."""
        pause = 0.2
        while True:
            client = self._redis_factory(self.redis_url)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                if self.resubscribes or pause > 0.2:
                    log.warning("occupancy stream: subscribed to Redis again")
                self.subscribed.set()
                pause = 0.2
                async for message in pubsub.listen():
                    if message["type"] != "message":
                        continue
                    data = message["data"]
                    self.fan_out(sse_event(data.decode() if isinstance(data, bytes) else str(data)))
                raise RedisError("subscription ended")
            except Exception as exc:
                # Redis errors above all, but anything else too: the hub must outlive it.
                if not isinstance(exc, RedisError | OSError):
                    log.exception("occupancy stream: unexpected error in the subscription")
                if self.subscribed.is_set():
                    log.warning(
                        "occupancy stream: lost Redis (%s); ending %d streams", exc, self.open_streams
                    )
                    self.resubscribes += 1
                elif pause == 0.2:
                    log.warning("occupancy stream: cannot reach Redis (%s); retrying", exc)
                self.subscribed.clear()
                self._drop_all("redis")
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_RECONNECT_SECONDS)

    async def heartbeats(self) -> None:
        """A comment to every stream every ``HEARTBEAT_SECONDS``: keeps idle proxies from cutting
        the streams and finds closed ones (a write to them fails)."""
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            self.fan_out(HEARTBEAT)

    def close(self) -> None:
        self.subscribed.clear()
        self._drop_all("shutdown")


def raise_fd_limit() -> int:
    """Lift the soft limit on open files to the hard one (each open stream is a socket); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= target:
        return target
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def _redis_client(url: str) -> aioredis.Redis:
    # No read timeout: a subscription is idle for as long as nothing changes. A dead server is seen
    # as a closed connection; over TCP, keepalive finds a silently vanished one (a Unix socket
    # connection takes no keepalive option).
    if url.startswith("unix:"):
        return aioredis.Redis.from_url(url, socket_connect_timeout=2)
    return aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_keepalive=True)


async def _events(hub: Hub, client: _Client) -> AsyncIterator[bytes]:
    try:
        yield f"retry: {RETRY_MS}\n: connected\n\n".encode()
        while True:
            # No timeout per client: the hub's own ticker queues the heartbeats (one timer for all).
            event = await client.queue.get()
            if event is None or client.dropped:
                # End cleanly; the browser reconnects after ``RETRY_MS``.
                return
            yield event
    finally:
        hub.leave(client)


def _refused(reason: str) -> Response:
    """503 with ``Retry-After``, as the Flask route: the page's EventSource stops and it polls."""
    return PlainTextResponse(f"{reason}\n", status_code=503, headers={"Retry-After": "60"})


def create_stream_app(
    redis_url: str, *, max_streams: int = MAX_STREAMS, queue_size: int = QUEUE_SIZE
) -> Starlette:
    """The stream app: ``GET /api/v1/occupancy/stream`` and ``GET /healthz`` (200 once subscribed)."""
    hub = Hub(redis_url, max_streams=max_streams, queue_size=queue_size)

    async def stream(_request: Request) -> Response:
        client = hub.join()
        if client is None:
            if hub.subscribed.is_set():
                return _refused("too many live streams on this server; poll instead")
            return _refused("live updates are unavailable; poll instead")
        return StreamingResponse(_events(hub, client), media_type="text/event-stream", headers=SSE_HEADERS)

    async def health(_request: Request) -> Response:
        ok = hub.subscribed.is_set()
        body = f"{'ok' if ok else 'redis unavailable'}; {hub.open_streams} open streams\n"
        return PlainTextResponse(body, status_code=200 if ok else 503)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(hub.run(), name="occupancy-hub"),
            asyncio.create_task(hub.heartbeats(), name="occupancy-heartbeats"),
        ]
        try:
            yield
        finally:
            hub.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    app = Starlette(routes=[Route(STREAM_PATH, stream), Route("/healthz", health)], lifespan=lifespan)
    app.state.hub = hub
    return app
