"""ParkMobile sessions become temporary permits: the stored ParkMobile records of a known zone are
converted (one permit each, its plate, zone, times, amount and over-capacity flag), and removed from
``pay_station_records`` so that Check a Plate finds each session once. Records whose zone was
deleted stay where they are (there is no zone to give the permit). Converted sessions get no lot:
the lot a session is sold in is chosen by the zone's schedule at the time of the import.

Revision ID: 0015
Revises: 0014
"""

import secrets
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_records = sa.table(
    "pay_station_records",
    sa.column("id", sa.Integer),
    sa.column("source", sa.String),
    sa.column("external_id", sa.String),
    sa.column("plate", sa.String),
    sa.column("plate_normalized", sa.String),
    sa.column("zone_id", sa.Integer),
    sa.column("start_at", sa.DateTime),
    sa.column("end_at", sa.DateTime),
    sa.column("amount_cents", sa.Integer),
    sa.column("currency", sa.String),
    sa.column("over_capacity", sa.Boolean),
)
_permits = sa.table(
    "permits",
    sa.column("id", sa.Integer),
    sa.column("number", sa.String),
    sa.column("reference", sa.String),
    sa.column("kind", sa.String),
    sa.column("status", sa.String),
    sa.column("source", sa.String),
    sa.column("external_id", sa.String),
    sa.column("zone_id", sa.Integer),
    sa.column("valid_from", sa.DateTime),
    sa.column("valid_to", sa.DateTime),
    sa.column("amount_cents", sa.Integer),
    sa.column("currency", sa.String),
    sa.column("over_allowance", sa.Boolean),
    sa.column("created_at", sa.DateTime),
    sa.column("updated_at", sa.DateTime),
)
_vehicles = sa.table(
    "permit_vehicles",
    sa.column("permit_id", sa.Integer),
    sa.column("plate", sa.String),
    sa.column("plate_normalized", sa.String),
)


def upgrade() -> None:
    conn = op.get_bind()
    now = datetime.now(UTC)
    if conn.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # the models store naive UTC on SQLite
    rows = conn.execute(
        sa.select(_records).where(_records.c.source == "parkmobile", _records.c.zone_id.is_not(None))
    ).all()
    for row in rows:
        known = conn.execute(
            sa.select(_permits.c.id).where(
                _permits.c.source == "parkmobile", _permits.c.external_id == row.external_id
            )
        ).scalar()
        if known is None:
            known = conn.execute(
                _permits.insert()
                .values(
                    number=f"T-{secrets.token_hex(4).upper()}",
                    reference=str(uuid.uuid4()),
                    kind="temporary",
                    status="active",
                    source="parkmobile",
                    external_id=row.external_id,
                    zone_id=row.zone_id,
                    valid_from=row.start_at,
                    valid_to=row.end_at,
                    amount_cents=row.amount_cents,
                    currency=row.currency,
                    over_allowance=row.over_capacity,
                    created_at=now,
                    updated_at=now,
                )
                .returning(_permits.c.id)
            ).scalar_one()
            conn.execute(
                _vehicles.insert().values(
                    permit_id=known, plate=row.plate, plate_normalized=row.plate_normalized
                )
            )
        conn.execute(_records.delete().where(_records.c.id == row.id))


def downgrade() -> None:
    """The converted permits stay permits: a downgrade must not lose sales (nothing to undo)."""
