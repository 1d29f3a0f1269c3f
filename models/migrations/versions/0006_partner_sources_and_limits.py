"""channels: random permit references, over-allowance flags, API key sources, zone capacity

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

Every column is added in place with plain ``ALTER TABLE ... ADD COLUMN`` (and dropped with
``DROP COLUMN``, SQLite 3.35+), not in batch mode: on SQLite batch mode recreates the table, and
dropping the original ``permits`` with foreign keys on deletes the rows that cascade from it (every
permit's plates).

- ``permits.reference``: existing permits get a random reference (the referenceIDs answered before
  were derived from the permit's id and are replaced; a partner's update or delete of a permit
  pushed before the upgrade answers 404).
- ``api_keys.sources``: existing keys act for no source: they keep reading (plate checks, zone
  statistics) and are refused writes until an administrator gives them their source(s) on API
  Keys. Binding them to every source would keep the hole this revision closes (any key reaching
  any partner's permits).
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite adds a NOT NULL column only with a default; "" is replaced below, row by row.
    op.add_column("permits", sa.Column("reference", sa.String(length=36), nullable=False, server_default=""))
    op.add_column(
        "permits", sa.Column("over_allowance", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    connection = op.get_bind()
    permits = sa.table("permits", sa.column("id", sa.Integer), sa.column("reference", sa.String))
    ids = connection.execute(sa.select(permits.c.id)).scalars().all()
    if ids:
        connection.execute(
            permits.update().where(permits.c.id == sa.bindparam("row_id")),
            [{"row_id": row_id, "reference": str(uuid.uuid4())} for row_id in ids],
        )
    op.create_index(op.f("ix_permits_reference"), "permits", ["reference"], unique=True)
    if connection.dialect.name != "sqlite":  # SQLite cannot drop a default without recreating the table
        op.alter_column("permits", "reference", server_default=None)
    op.add_column(
        "pay_station_records",
        sa.Column("over_capacity", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("api_keys", sa.Column("sources", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    op.add_column("lot_zones", sa.Column("capacity", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+ has it): batch mode would recreate the tables (see above).
    op.drop_column("lot_zones", "capacity")
    op.drop_column("api_keys", "sources")
    op.drop_column("pay_station_records", "over_capacity")
    op.drop_index(op.f("ix_permits_reference"), table_name="permits")
    op.drop_column("permits", "over_allowance")
    op.drop_column("permits", "reference")
