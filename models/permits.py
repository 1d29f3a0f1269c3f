"""Permits from every source, and pay-station records (Cale, ParkMobile, pay-and-display)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, str_enum, utcnow
from models.lots import Lot, LotZone, PermitKind, PermitProduct


class PermitSource(enum.StrEnum):
    PORTAL = "portal"
    API = "api"
    HOTSPOT = "hotspot"
    PARKMOBILE = "parkmobile"
    PAYSTATION = "paystation"
    ADMIN = "admin"


class PermitStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    CANCELLED = "cancelled"


def new_reference() -> str:
    """A permit's ``reference`` (the OC-TOMA ``referenceID``): random, so that knowing one permit
    tells nothing about another."""
    return str(uuid.uuid4())


class Permit(TimestampMixin, Base):
    """A right to park: for one lot, or for a zone (valid wherever the zone is scheduled).

    Third-party permits are idempotent on (source, external_id). ``over_allowance``: recorded past
    its lot's allowance or its zone's capacity by a partner key holding ``permits:over-allowance``.
    """

    __tablename__ = "permits"
    __table_args__ = (UniqueConstraint("source", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    reference: Mapped[str] = mapped_column(String(36), unique=True, index=True, default=new_reference)
    kind: Mapped[PermitKind] = mapped_column(str_enum(PermitKind))
    status: Mapped[PermitStatus] = mapped_column(str_enum(PermitStatus), default=PermitStatus.ACTIVE)
    source: Mapped[PermitSource] = mapped_column(str_enum(PermitSource), default=PermitSource.PORTAL)
    external_id: Mapped[str | None] = mapped_column(String(80))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id", ondelete="RESTRICT"), index=True)
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("lot_zones.id", ondelete="RESTRICT"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("permit_products.id", ondelete="SET NULL"))
    valid_from: Mapped[datetime] = mapped_column(index=True)
    valid_to: Mapped[datetime] = mapped_column(index=True)
    amount_cents: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="CAD")
    over_allowance: Mapped[bool] = mapped_column(default=False)

    lot: Mapped[Lot | None] = relationship()
    zone: Mapped[LotZone | None] = relationship()
    product: Mapped[PermitProduct | None] = relationship()
    vehicles: Mapped[list[PermitVehicle]] = relationship(
        back_populates="permit", cascade="all, delete-orphan"
    )


class PermitVehicle(Base):
    """A plate on a permit; ``plate_normalized`` (upper case, no spaces or dashes) is what
    officers' look-ups match."""

    __tablename__ = "permit_vehicles"
    __table_args__ = (UniqueConstraint("permit_id", "plate_normalized"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    permit_id: Mapped[int] = mapped_column(ForeignKey("permits.id", ondelete="CASCADE"), index=True)
    plate: Mapped[str] = mapped_column(String(16))
    plate_normalized: Mapped[str] = mapped_column(String(16), index=True)

    permit: Mapped[Permit] = relationship(back_populates="vehicles")


class PayStationRecord(Base):
    """A paid session from a pay station, meter or app (Cale, ParkMobile, HotSpot, API).

    ``zone_name`` keeps what the vendor sent even when it matched no local zone. ``over_capacity``:
    imported when its zone's capacity was already taken (a pulled record cannot be refused).
    """

    __tablename__ = "pay_station_records"
    __table_args__ = (UniqueConstraint("source", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(24), index=True)
    external_id: Mapped[str] = mapped_column(String(80))
    plate: Mapped[str] = mapped_column(String(16))
    plate_normalized: Mapped[str] = mapped_column(String(16), index=True)
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("lot_zones.id", ondelete="SET NULL"), index=True)
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id", ondelete="SET NULL"), index=True)
    zone_name: Mapped[str | None] = mapped_column(String(80))
    start_at: Mapped[datetime] = mapped_column(index=True)
    end_at: Mapped[datetime] = mapped_column(index=True)
    amount_cents: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="CAD")
    raw: Mapped[dict | None] = mapped_column(JSON)
    over_capacity: Mapped[bool] = mapped_column(default=False)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)


class WaitlistStatus(enum.StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"  # a space is held for this person until ``offer_expires_at``
    FULFILLED = "fulfilled"  # they bought it
    EXPIRED = "expired"  # the offer lapsed; the space passed on
    CANCELLED = "cancelled"


class WaitlistEntry(Base):
    """Someone waiting for a sold-out product, first come first served. An offer holds a space
    (it counts against the lot's allowance) until it expires or is taken."""

    __tablename__ = "waitlist_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("permit_products.id", ondelete="CASCADE"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[WaitlistStatus] = mapped_column(
        str_enum(WaitlistStatus), default=WaitlistStatus.WAITING, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    offered_at: Mapped[datetime | None]
    offer_expires_at: Mapped[datetime | None]
    offer_token: Mapped[str | None] = mapped_column(String(64), unique=True)

    product: Mapped[PermitProduct] = relationship()
