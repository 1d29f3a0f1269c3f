"""enforcement: tickets, photos, appeals, boot returns and refunds

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OPEN_BOOT = "status IN ('in_use', 'released')"


def upgrade() -> None:
    op.create_table(
        "appeals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("violation_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending", "upheld", "cancelled", "reduced", name="appealstatus", native_enum=False, length=24
            ),
            nullable=False,
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("submitted_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.Column("reduced_to_cents", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_appeals_decided_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_appeals_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["violation_id"],
            ["violations.id"],
            name=op.f("fk_appeals_violation_id_violations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeals")),
        sa.UniqueConstraint("violation_id", name=op.f("uq_appeals_violation_id")),
    )
    op.create_table(
        "violation_photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("violation_id", sa.Integer(), nullable=True),
        sa.Column("appeal_id", sa.Integer(), nullable=True),
        sa.Column("draft_key", sa.String(length=64), nullable=True),
        sa.Column("stored_name", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appeal_id"],
            ["appeals.id"],
            name=op.f("fk_violation_photos_appeal_id_appeals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["users.id"],
            name=op.f("fk_violation_photos_uploaded_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["violation_id"],
            ["violations.id"],
            name=op.f("fk_violation_photos_violation_id_violations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_violation_photos")),
        sa.UniqueConstraint("stored_name", name=op.f("uq_violation_photos_stored_name")),
    )
    with op.batch_alter_table("violation_photos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_violation_photos_appeal_id"), ["appeal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_violation_photos_draft_key"), ["draft_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_violation_photos_violation_id"), ["violation_id"], unique=False)

    with op.batch_alter_table("boot_assignments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("refund_skipped_reason", sa.String(length=255), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("not_returned_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("late_fee_violation_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            "uq_boot_assignments_open_boot",
            ["boot_id"],
            unique=True,
            postgresql_where=sa.text(OPEN_BOOT),
            sqlite_where=sa.text(OPEN_BOOT),
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_boot_assignments_late_fee_violation_id_violations"),
            "violations",
            ["late_fee_violation_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("offence_types", schema=None) as batch_op:
        batch_op.add_column(sa.Column("discount_days", sa.Integer(), nullable=False, server_default="0"))

    with op.batch_alter_table("violation_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum("offence", "late_fee", "reduction", name="itemkind", native_enum=False, length=24),
                nullable=False,
                server_default="offence",
            )
        )
        batch_op.alter_column("offence_type_id", existing_type=sa.INTEGER(), nullable=True)

    with op.batch_alter_table("violations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("submit_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("paid_at", models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("void_reason", sa.String(length=255), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("voided_at", models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_violations_officer_id"), ["officer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_violations_status"), ["status"], unique=False)
        batch_op.create_unique_constraint(batch_op.f("uq_violations_submit_key"), ["submit_key"])
    # "appealed" was never written by any screen; its place is taken by "under_appeal".
    op.execute("UPDATE violations SET status = 'under_appeal' WHERE status = 'appealed'")


def downgrade() -> None:
    op.execute("UPDATE violations SET status = 'appealed' WHERE status = 'under_appeal'")
    with op.batch_alter_table("violations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_violations_submit_key"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_violations_status"))
        batch_op.drop_index(batch_op.f("ix_violations_officer_id"))
        batch_op.drop_column("voided_at")
        batch_op.drop_column("void_reason")
        batch_op.drop_column("paid_at")
        batch_op.drop_column("submit_key")

    op.execute("DELETE FROM violation_items WHERE offence_type_id IS NULL")
    with op.batch_alter_table("violation_items", schema=None) as batch_op:
        batch_op.alter_column("offence_type_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column("kind")

    with op.batch_alter_table("offence_types", schema=None) as batch_op:
        batch_op.drop_column("discount_days")

    with op.batch_alter_table("boot_assignments", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_boot_assignments_late_fee_violation_id_violations"), type_="foreignkey"
        )
        batch_op.drop_index("uq_boot_assignments_open_boot")
        batch_op.drop_column("late_fee_violation_id")
        batch_op.drop_column("not_returned_at")
        batch_op.drop_column("refund_skipped_reason")

    with op.batch_alter_table("violation_photos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_violation_photos_violation_id"))
        batch_op.drop_index(batch_op.f("ix_violation_photos_draft_key"))
        batch_op.drop_index(batch_op.f("ix_violation_photos_appeal_id"))

    op.drop_table("violation_photos")
    op.drop_table("appeals")
