"""task run heartbeats: a run's last sign of life, so a run whose worker died is found

Revision ID: 0004_tasks
Revises: 0003
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0004_tasks"
down_revision = "0003"
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
