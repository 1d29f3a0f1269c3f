"""Alembic environment: the engine comes from ``Database.alembic_config`` (or the
``PARKOPS_DATABASE_URL`` when alembic is run by hand)."""

from alembic import context
from sqlalchemy import create_engine

import models

config = context.config
target_metadata = models.Base.metadata


def run() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from dashboard.settings import Settings

        engine = create_engine(Settings.from_env().effective_database_url)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a SQLite table by dropping the original; with foreign keys on,
            # that drop deletes or empties every row referring to it (a user's vehicles, say).
            # The pragma only takes effect outside a transaction: off for the migration, the
            # references checked before committing, on again after.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                context.configure(
                    connection=connection,
                    target_metadata=target_metadata,
                    render_as_batch=sqlite,
                    compare_type=True,
                )
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"the migration left rows with broken references: {broken[:5]}")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


run()
