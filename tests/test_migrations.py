"""The migrations build, from an empty database, exactly the schema the models describe, on
SQLite always and on PostgreSQL in the service run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy import select as sa_select
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


def test_parkmobile_records_become_temporary_permits_once(empty_database_url):
    """0015: a stored ParkMobile record of a known zone becomes one temporary permit (plate, zone,
    times, amount, flag) and leaves the records, so Check a Plate finds it once; a record whose zone
    was deleted, and other sources' records, stay records."""
    database = Database(empty_database_url)
    try:
        command.upgrade(database.alembic_config(), "0013")
        with database.engine.begin() as conn:
            zone_id = conn.execute(
                text(
                    "INSERT INTO lot_zones (name, created_at) "
                    "VALUES ('1001', '2024-01-01 00:00:00') RETURNING id"
                )
            ).scalar()
            insert = text(
                "INSERT INTO pay_station_records (source, external_id, plate, plate_normalized, zone_id, "
                "zone_name, start_at, end_at, amount_cents, currency, over_capacity, imported_at) VALUES "
                "(:source, :ext, 'ABC 123', 'ABC123', :zone, '1001', '2024-05-01 13:30:00', "
                "'2024-05-01 15:30:00', 650, 'CAD', :over, '2024-05-01 13:31:00')"
            )
            conn.execute(insert, {"source": "parkmobile", "ext": "PM-1", "zone": zone_id, "over": True})
            conn.execute(insert, {"source": "parkmobile", "ext": "PM-2", "zone": None, "over": False})
            conn.execute(insert, {"source": "cale", "ext": "C-1", "zone": zone_id, "over": False})
        database.upgrade()
        with database.session() as s:
            (permit,) = s.scalars(sa_select(models.Permit)).all()
            assert (permit.source, permit.external_id, permit.kind, permit.status) == (
                models.PermitSource.PARKMOBILE,
                "PM-1",
                models.PermitKind.TEMPORARY,
                models.PermitStatus.ACTIVE,
            )
            assert (permit.zone_id, permit.lot_id, permit.amount_cents, permit.over_allowance) == (
                zone_id,
                None,
                650,
                True,
            )
            assert permit.valid_from == datetime(2024, 5, 1, 13, 30, tzinfo=UTC)
            assert permit.valid_to == datetime(2024, 5, 1, 15, 30, tzinfo=UTC)
            assert [(v.plate, v.plate_normalized) for v in permit.vehicles] == [("ABC 123", "ABC123")]
            assert permit.number.startswith("T-") and len(permit.reference) == 36
            left = s.scalars(sa_select(models.PayStationRecord.external_id).order_by("external_id")).all()
            assert left == ["C-1", "PM-2"]
    finally:
        database.dispose()
