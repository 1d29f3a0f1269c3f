"""The migrations build, from an empty database, exactly the schema the models describe, on
SQLite always and on PostgreSQL in the service run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

import models
from dashboard.db import Database


def _empty_databases() -> list[str]:
    kinds = ["sqlite"]
    if (os.environ.get("PARKOPS_TEST_DATABASE_URL") or "").startswith("postgresql"):
        kinds.append("postgresql")
    return kinds


@pytest.fixture(params=_empty_databases())
def empty_database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server_url = make_url(os.environ["PARKOPS_TEST_DATABASE_URL"])
    name = f"parkops_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_upgrade_on_an_empty_database_matches_the_models(empty_database_url):
    database = Database(empty_database_url)
    try:
        database.upgrade()
        tables = set(inspect(database.engine).get_table_names())
        assert set(models.Base.metadata.tables) <= tables
        with database.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), models.Base.metadata
            )
        assert diff == [], f"models and migrations disagree: {diff}"
        database.upgrade()  # a second upgrade is a no-op
    finally:
        database.dispose()


def test_migrating_a_sqlite_database_down_and_up_keeps_the_rows_that_refer_to_rebuilt_tables(tmp_path):
    """SQLite batch mode rebuilds a table (``users`` when a column is dropped) by dropping the
    original: with foreign keys on, that drop would delete every user's vehicles (ON DELETE
    CASCADE). The migrations run with foreign keys off and check the references instead."""
    database = Database(f"sqlite:///{tmp_path / 'kept.db'}")
    try:
        database.upgrade()
        with database.session() as s:
            user = models.User(email="kept@campus.test", first_name="Kept", password_hash="x")
            user.vehicles.append(models.Vehicle(plate="ABC 123", plate_normalized="ABC123"))
            s.add(user)
        command.downgrade(database.alembic_config(), "0003")
        command.upgrade(database.alembic_config(), "head")
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT plate FROM vehicles")).scalars().all() == ["ABC 123"]
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        database.dispose()
