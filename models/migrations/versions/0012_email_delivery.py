"""email delivery: attempts, provider ids and claims on the outbox, bounce flags on users, and the
Mailgun webhook tokens already seen

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.add_column(sa.Column("sender", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("provider_message_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("attempts", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("next_attempt_at", models.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_at", models.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("resent_from_id", sa.Integer(), nullable=True))
        batch.create_index("ix_outbox_messages_provider_message_id", ["provider_message_id"])
        batch.create_index("ix_outbox_messages_next_attempt_at", ["next_attempt_at"])
        batch.create_foreign_key(
            "fk_outbox_messages_resent_from_id_outbox_messages",
            "outbox_messages",
            ["resent_from_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email_bounced_at", models.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("email_bounce_reason", sa.String(length=500), nullable=True))
    op.create_table(
        "mailgun_webhook_tokens",
        sa.Column("token", sa.String(length=128), nullable=False),
        sa.Column("seen_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_mailgun_webhook_tokens")),
    )
    op.create_index("ix_mailgun_webhook_tokens_seen_at", "mailgun_webhook_tokens", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_mailgun_webhook_tokens_seen_at", table_name="mailgun_webhook_tokens")
    op.drop_table("mailgun_webhook_tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email_bounce_reason")
        batch.drop_column("email_bounced_at")
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_constraint("fk_outbox_messages_resent_from_id_outbox_messages", type_="foreignkey")
        batch.drop_index("ix_outbox_messages_next_attempt_at")
        batch.drop_index("ix_outbox_messages_provider_message_id")
        batch.drop_column("resent_from_id")
        batch.drop_column("claimed_at")
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
        batch.drop_column("provider_message_id")
        batch.drop_column("sender")
