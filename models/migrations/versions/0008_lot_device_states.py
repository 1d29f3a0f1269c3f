"""lot device states: the ingester's per-lot live state, to rebuild Redis from

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lot_device_states",
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("reported_capacity", sa.Integer(), nullable=True),
        sa.Column("count_ts", sa.Float(), nullable=True),
        sa.Column("occupied_sensors", sa.Text(), nullable=False),
        sa.Column("saved_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["lots.id"], name=op.f("fk_lot_device_states_lot_id_lots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("lot_id", name=op.f("pk_lot_device_states")),
    )


def downgrade() -> None:
    op.drop_table("lot_device_states")
