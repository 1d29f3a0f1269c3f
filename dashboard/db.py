"""Engine and sessions. One ``Database`` per app; services receive a ``Session`` from it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import CursorResult, Engine, Result, create_engine, event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "models" / "migrations"


def rows_matched(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched. ``Session.execute`` is typed as returning a plain
    ``Result``; for those statements it returns a ``CursorResult``, which counts them."""
    return cast(CursorResult[Any], result).rowcount


# SQLite reports every error as an OperationalError, a missing table as much as a failing disk:
# only these result codes (and their extended forms, ``SQLITE_IOERR_READ``...) say its file could
# not be used just now. Anything else (``SQLITE_ERROR``: "no such table", a syntax error) is a
# fault in the code or the schema, which must stay a logged 500, not "try again".
SQLITE_UNAVAILABLE = ("SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_BUSY", "SQLITE_LOCKED")


def lost_connection(exc: BaseException) -> bool:
    """The database could not be reached or the connection dropped (a restart, a failover, a
    network cut): a state that passes, unlike an error in the statement itself."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    if isinstance(exc.orig, sqlite3.Error):
        return (getattr(exc.orig, "sqlite_errorname", None) or "").startswith(SQLITE_UNAVAILABLE)
    return True


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Foreign keys are off by default in SQLite; WAL lets the web, worker and ingester threads
    read while one writes; the busy timeout makes writers queue instead of failing."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Database:
    def __init__(self, url: str, *, pool_size: int | None = None) -> None:
        """``pool_size``: connections kept per process (SQLAlchemy's default, 5 + 10 overflow,
        unless given; a benchmark driving many threads from one process sets more)."""
        self.url = url
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if pool_size is not None:
            kwargs.update(pool_size=pool_size, max_overflow=0, pool_timeout=120)
        if url.startswith("sqlite"):
            if ":///" in url and not url.endswith(":memory:"):
                Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        self.engine: Engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def alembic_config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["engine"] = self.engine
        return cfg

    def upgrade(self, revision: str = "head") -> None:
        command.upgrade(self.alembic_config(), revision)

    def dispose(self) -> None:
        self.engine.dispose()
