"""task times and PeopleSoft holds: a cron-like schedule per system task, who PeopleSoft holds,
and the history of holds reports

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("system_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("schedule", sa.String(length=64), nullable=True))
    # The holds report is nightly by default (the seed recommends a daily overnight run).
    op.execute("UPDATE system_tasks SET schedule = '0 2 * * *' WHERE name = 'peoplesoft-holds'")
    op.create_table(
        "peoplesoft_holds",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.String(length=64), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("user_type", sa.String(length=80), nullable=False),
        sa.Column("violation_type", sa.String(length=200), nullable=False),
        sa.Column("violation_date", sa.Date(), nullable=True),
        sa.Column("held_since", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reported_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_peoplesoft_holds_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_peoplesoft_holds")),
    )
    op.create_table(
        "peoplesoft_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("report_date", sa.Date(), nullable=False),
        sa.Column("added_filename", sa.String(length=200), nullable=False),
        sa.Column("added_content", sa.Text(), nullable=False),
        sa.Column("added_count", sa.Integer(), nullable=False),
        sa.Column("released_filename", sa.String(length=200), nullable=False),
        sa.Column("released_content", sa.Text(), nullable=False),
        sa.Column("released_count", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("outbox_message_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_message_id"],
            ["outbox_messages.id"],
            name=op.f("fk_peoplesoft_reports_outbox_message_id_outbox_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_peoplesoft_reports")),
    )
    with op.batch_alter_table("peoplesoft_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_peoplesoft_reports_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("peoplesoft_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_peoplesoft_reports_created_at"))
    op.drop_table("peoplesoft_reports")
    op.drop_table("peoplesoft_holds")
    with op.batch_alter_table("system_tasks", schema=None) as batch_op:
        batch_op.drop_column("schedule")
