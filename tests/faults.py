"""Dropping the database connection at an exact step, to test what survives it.

On PostgreSQL the drop is real: just before the chosen statement (or COMMIT) is sent, the server
process behind that connection is terminated with ``pg_terminate_backend`` from a connection of
its own, and the statement then meets a dead connection, as after a failover or a restart. SQLite
has no server to drop, so there the driver's own ``OperationalError`` is raised at that point.

``answer_lost=True`` drops the connection after a COMMIT went through, before its answer reaches
the caller: the hook sends the COMMIT itself and opens an empty transaction, then drops the
connection, so the driver's own COMMIT fails although the work is committed.

    with DropConnection(core.db, "INSERT INTO outbox_messages") as drop:
        ...
    assert drop.fired == 1
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from dashboard.db import Database


class DropConnection:
    """Drop the connection that runs the first ``times`` statements matching ``statement`` (a
    regular expression), or with ``commit=True`` the COMMIT of a transaction that ran one. With
    ``after``, only statements run once one matching ``after`` has run count. ``times=None``: every
    time (a database that stays unreachable)."""

    def __init__(
        self,
        database: Database,
        statement: str,
        *,
        times: int | None = 1,
        after: str | None = None,
        commit: bool = False,
        answer_lost: bool = False,
    ) -> None:
        self.database = database
        self.pattern = re.compile(statement, re.IGNORECASE)
        self.after = re.compile(after, re.IGNORECASE) if after else None
        self.times = times
        self.commit = commit or answer_lost
        self.answer_lost = answer_lost
        self.fired = 0
        self.statements: list[str] = []  # the statements that met a dropped connection
        self._armed = after is None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._admin: psycopg.Connection[Any] | None = None

    # --- installing the hooks ------------------------------------------------------------------

    def __enter__(self) -> DropConnection:
        engine = self.database.engine
        if engine.dialect.name == "postgresql":
            url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._admin = psycopg.connect(url, autocommit=True)
        event.listen(engine, "before_cursor_execute", self._before_statement)
        event.listen(engine, "commit", self._before_commit)
        event.listen(engine, "rollback", self._forget)
        return self

    def __exit__(self, *_exc: object) -> None:
        engine = self.database.engine
        event.remove(engine, "before_cursor_execute", self._before_statement)
        event.remove(engine, "commit", self._before_commit)
        event.remove(engine, "rollback", self._forget)
        if self._admin is not None:
            self._admin.close()

    def stop(self) -> None:
        """No more drops (the database is back)."""
        self.times = self.fired

    # --- deciding ---------------------------------------------------------------------------

    def _take(self) -> bool:
        with self._lock:
            if self.times is not None and self.fired >= self.times:
                return False
            self.fired += 1
            return True

    def _before_statement(self, conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if not self._armed:
            if self.after is not None and self.after.search(statement):
                self._armed = True
            return
        if not self.pattern.search(statement):
            return
        if self.commit:
            self._local.seen = True
            return
        if self._take():
            self.statements.append(statement)
            self._drop(conn, statement)

    def _before_commit(self, conn: Any) -> None:
        if not getattr(self._local, "seen", False):
            return
        self._local.seen = False
        if not self._take():
            return
        if self.answer_lost:
            self.statements.append("COMMIT (answer lost)")
            cursor = conn.connection.dbapi_connection.cursor()
            cursor.execute("COMMIT")
            cursor.execute("BEGIN")
            cursor.close()
        else:
            self.statements.append("COMMIT")
        self._drop(conn, "COMMIT")

    def _forget(self, _conn: Any) -> None:
        self._local.seen = False

    # --- dropping -----------------------------------------------------------------------------

    @staticmethod
    def _pid(conn: Any) -> int | None:
        info = getattr(conn.connection.dbapi_connection, "info", None)
        return getattr(info, "backend_pid", None)

    def _drop(self, conn: Any, statement: str) -> None:
        if self._admin is None:
            if statement == "COMMIT":
                raise OperationalError(statement, None, disk_error())
            raise disk_error()
        self._terminate(self._pid(conn))

    def _terminate(self, pid: int | None) -> None:
        """Terminate the backend and wait until it is gone, so the next statement surely meets a
        dead connection."""
        assert self._admin is not None and pid is not None
        self._admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while self._admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} did not stop"
            time.sleep(0.01)


def disk_error() -> sqlite3.OperationalError:
    """What SQLite raises when its file cannot be read: the message and the result code it sets."""
    error = sqlite3.OperationalError("disk I/O error (injected)")
    error.sqlite_errorname = "SQLITE_IOERR"
    return error
