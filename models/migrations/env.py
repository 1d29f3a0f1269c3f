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
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run()
