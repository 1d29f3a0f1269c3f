"""payment mismatches: what the Payment Reconciliation task found between the ledger and the card
processor; an index on processor_events.received_at for its pruning of old webhook event ids

Revision ID: 0018
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0018"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_mismatches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "charged_unsettled",
                "settled_uncharged",
                "amount_differs",
                "refunded_elsewhere",
                name="mismatchkind",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("reference", sa.String(length=80), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("ledger_cents", sa.Integer(), nullable=True),
        sa.Column("processor_cents", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=False),
        sa.Column("found_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open", "reviewed", "settled", "refunded", name="mismatchstatus", native_enum=False, length=24
            ),
            nullable=False,
        ),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("refund_reference", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_payment_mismatches_payment_id_payments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"],
            ["users.id"],
            name=op.f("fk_payment_mismatches_resolved_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_mismatches")),
        sa.UniqueConstraint(
            "provider", "kind", "reference", name=op.f("uq_payment_mismatches_provider_kind_reference")
        ),
    )
    with op.batch_alter_table("payment_mismatches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_mismatches_found_at"), ["found_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_payment_mismatches_payment_id"), ["payment_id"], unique=False)

    with op.batch_alter_table("processor_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_processor_events_received_at"), ["received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("processor_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processor_events_received_at"))

    with op.batch_alter_table("payment_mismatches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_mismatches_payment_id"))
        batch_op.drop_index(batch_op.f("ix_payment_mismatches_found_at"))

    op.drop_table("payment_mismatches")
