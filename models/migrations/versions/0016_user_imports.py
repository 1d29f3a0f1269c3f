"""user imports: the history of managed CSV user imports with their failure files, and an index
on lower(email) so that looking users up by e-mail does not read the whole table

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_users_email_lower", "users", [sa.text("lower(email)")], unique=False)
    op.create_table(
        "user_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("started_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failures_filename", sa.String(length=255), nullable=False),
        sa.Column("failures_content", sa.Text(), nullable=False),
        sa.Column("kept_as", sa.String(length=255), nullable=False),
        sa.Column("outbox_message_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_message_id"],
            ["outbox_messages.id"],
            name=op.f("fk_user_imports_outbox_message_id_outbox_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_imports")),
    )
    with op.batch_alter_table("user_imports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_imports_started_at"), ["started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("user_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_imports_started_at"))
    op.drop_table("user_imports")
    op.drop_index("ix_users_email_lower", table_name="users")
