"""SAML SSO: the IdP configuration, remembered message ids, per-user-type login method (the special
flag on users comes with 0010)

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sso_config",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("institution_name", sa.String(length=120), nullable=False),
        sa.Column("idp_metadata_url", sa.String(length=500), nullable=False),
        sa.Column("idp_entity_id", sa.String(length=500), nullable=False),
        sa.Column("idp_sso_url", sa.String(length=500), nullable=False),
        sa.Column("idp_slo_url", sa.String(length=500), nullable=False),
        sa.Column("idp_cert", sa.Text(), nullable=False),
        sa.Column("idp_cert_next", sa.Text(), nullable=False),
        sa.Column("sp_cert", sa.Text(), nullable=False),
        sa.Column("sp_private_key", sa.Text(), nullable=False),
        sa.Column("clock_skew_seconds", sa.Integer(), nullable=False),
        sa.Column("jit_create", sa.Boolean(), nullable=False),
        sa.Column("sync_every_login", sa.Boolean(), nullable=False),
        sa.Column("attr_email", sa.String(length=200), nullable=False),
        sa.Column("attr_first_name", sa.String(length=200), nullable=False),
        sa.Column("attr_last_name", sa.String(length=200), nullable=False),
        sa.Column("attr_external_id", sa.String(length=200), nullable=False),
        sa.Column("attr_user_type", sa.String(length=200), nullable=False),
        sa.Column("user_type_map", sa.Text(), nullable=False),
        sa.Column("attr_special", sa.String(length=200), nullable=False),
        sa.Column("special_values", sa.Text(), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_config")),
    )
    op.create_table(
        "saml_message_ids",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("expires_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kind", "message_id", name=op.f("pk_saml_message_ids")),
    )
    op.create_index(op.f("ix_saml_message_ids_expires_at"), "saml_message_ids", ["expires_at"], unique=False)
    with op.batch_alter_table("user_types", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("login_method", sa.String(length=16), server_default="local", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("user_types", schema=None) as batch_op:
        batch_op.drop_column("login_method")
    op.drop_index(op.f("ix_saml_message_ids_expires_at"), table_name="saml_message_ids")
    op.drop_table("saml_message_ids")
    op.drop_table("sso_config")
