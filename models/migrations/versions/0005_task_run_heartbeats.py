"""task run heartbeats: a run's last sign of life, so a run whose worker died is found

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", models.base.UTCDateTime(timezone=True), nullable=True))
        # The scheduler looks for ``running`` runs every few seconds; the log grows by thousands a day.
        batch_op.create_index(batch_op.f("ix_task_runs_outcome"), ["outcome"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_runs_outcome"))
        batch_op.drop_column("heartbeat_at")
