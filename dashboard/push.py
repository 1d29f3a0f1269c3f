"""Server-Sent Events: ``GET /api/v1/occupancy/stream`` relays every occupancy change to open pages.

Every change to a lot group's figures (``dashboard.services.occupancy.LiveStore.publish``) or state
(``dashboard.services.lot_groups.announce``) is published on the Redis channel ``occupancy.CHANNEL``;
this endpoint subscribes to it and forwards each message as one SSE ``data:`` line. The payload is
public (group id and counts, the same as the public availability API), so the stream needs no user,
and a page that receives a message re-reads what it shows through its own role-checked callback.

Why SSE and not WebSockets: the traffic is one-way, SSE runs over plain HTTP through the same gate
and proxies, and the browser reconnects by itself (the ``retry:`` hint sets how soon).

Deployment: in production the load balancer sends this path to ``parkops stream``
(``dashboard.push_asgi``: thousands of streams per process on one Redis subscription); this route
serves it in ``parkops run`` (one process, embedded Redis) and wherever the path is not routed.
Here each open stream holds one worker thread and one Redis connection for as long as the page is
open. Production web processes therefore need threaded workers, e.g.
``gunicorn -k gthread --threads 32 'dashboard.wsgi:app'`` (a sync worker would be taken by the
first stream for good), and a proxy that does not buffer the response (``X-Accel-Buffering: no``
tells nginx). ``MAX_STREAMS`` caps the streams per process and must stay below the thread count:
beyond it the endpoint answers 503, the browser's EventSource gives up, and
``dashboard.components.live`` falls back to polling, so a busy process keeps threads free for
ordinary requests.

Under WSGI a server learns that a client went away only when a write fails: the heartbeat comment
every ``HEARTBEAT_SECONDS`` both keeps idle proxies from cutting the stream and bounds how long a
closed page holds its slot and its Redis connection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import redis
from flask import Flask, Response

from dashboard.services import live_channel
from dashboard.services.live_channel import CHANNEL

log = logging.getLogger(__name__)

STREAM_PATH = live_channel.STREAM_PATH
# Module attributes (read at every request/loop) so tests and operators can tune them.
MAX_STREAMS = 24  # below gthread's --threads (32 in the deployment notes above)
HEARTBEAT_SECONDS = live_channel.HEARTBEAT_SECONDS
RETRY_MS = live_channel.RETRY_MS

_active = 0
_active_lock = threading.Lock()


def active_streams() -> int:
    """Streams currently open in this process (for tests and diagnostics)."""
    return _active


def _acquire_slot() -> bool:
    global _active
    with _active_lock:
        if _active >= MAX_STREAMS:
            return False
        _active += 1
        return True


def _release_slot() -> None:
    global _active
    with _active_lock:
        _active -= 1


def _refused(reason: str) -> Response:
    """503 with ``Retry-After``: EventSource treats any non-200 answer as final, so the page
    switches to polling instead of hammering a full or broken process."""
    return Response(f"{reason}\n", status=503, mimetype="text/plain", headers={"Retry-After": "60"})


def _events(pubsub: redis.client.PubSub) -> Iterator[str]:
    """Each published change as one event; a comment line whenever nothing was sent for a while.
    ``get_message`` blocks until a message or the next heartbeat is due, so the loop never spins."""
    yield f"retry: {RETRY_MS}\n: connected\n\n"
    last_sent = time.monotonic()
    while True:
        wait = max(HEARTBEAT_SECONDS - (time.monotonic() - last_sent), 0.0)
        try:
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
        except redis.RedisError:
            # End cleanly: the browser reconnects after ``RETRY_MS`` and gets a 503 (and polls)
            # for as long as Redis stays away.
            log.warning("occupancy stream: lost the Redis connection; ending the stream")
            return
        if message is not None and message["type"] == "message":
            data = message["data"]
            text = data.decode() if isinstance(data, bytes) else str(data)
            # One event per change; each line of a payload needs its own ``data:`` field.
            yield "".join(f"data: {line}\n" for line in text.splitlines()) + "\n"
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent >= HEARTBEAT_SECONDS:
            yield ": heartbeat\n\n"
            last_sent = time.monotonic()


def register_push(server: Flask) -> None:
    """Add the stream route. Its path is in the gate's public prefixes (``dashboard.auth``)."""

    @server.get(STREAM_PATH)
    def occupancy_stream() -> Response:
        if not _acquire_slot():
            return _refused("too many live streams on this server; poll instead")
        client: redis.Redis = server.extensions["parkops"].redis
        pubsub = client.pubsub()
        try:
            # Subscribe before answering, so no change published after the 200 can be missed.
            pubsub.subscribe(CHANNEL)
        except redis.RedisError:
            log.warning("occupancy stream: Redis unavailable", exc_info=True)
            pubsub.close()
            _release_slot()
            return _refused("live updates are unavailable; poll instead")

        response = Response(
            _events(pubsub),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

        # The WSGI server calls ``close`` whether the stream ended, failed, or was never started
        # (a generator's own ``finally`` would not run in that last case).
        @response.call_on_close
        def _cleanup() -> None:
            pubsub.close()
            _release_slot()

        return response
