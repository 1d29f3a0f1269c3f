"""Where people park: lot groups (the map pins), lots, lot zones and their schedules, products."""

from __future__ import annotations

import enum
from datetime import date, datetime, time

from sqlalchemy import Column, ColumnElement, ForeignKey, Integer, String, Table, Text, UniqueConstraint, func
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, str_enum, utcnow
from models.users import UserType


class LotGroup(TimestampMixin, Base):
    """A physical place counted as one (a garage, a surface lot): one pin on the real-time maps.

    Mistall and Parking Logix report per group; lots inside it are what permits are sold for.
    ``parking_logix_api_key`` is stored encrypted (see ``dashboard.crypto``).
    """

    __tablename__ = "lot_groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    map_color: Mapped[str] = mapped_column(String(7), default="#1f77b4")
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    show_on_map: Mapped[bool] = mapped_column(default=True)
    is_closed: Mapped[bool] = mapped_column(default=False)
    mistall_lot_id: Mapped[str | None] = mapped_column(String(64))
    parking_logix_name: Mapped[str | None] = mapped_column(String(120))
    parking_logix_api_key: Mapped[str | None] = mapped_column(Text)

    lots: Mapped[list[Lot]] = relationship(back_populates="lot_group")


class Lot(TimestampMixin, Base):
    """A sellable parking area. ``permits_allowed`` may exceed ``capacity`` on purpose (managers
    oversell a lot that is never physically full); ``None`` means "same as capacity"."""

    __tablename__ = "lots"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    code: Mapped[str | None] = mapped_column(String(32), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str | None] = mapped_column(String(200))
    lot_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("lot_groups.id", ondelete="SET NULL"), index=True
    )
    capacity: Mapped[int] = mapped_column(Integer, default=0)
    permits_allowed: Mapped[int | None] = mapped_column(Integer)
    sells_standard: Mapped[bool] = mapped_column(default=True)
    sells_temporary: Mapped[bool] = mapped_column(default=False)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    is_active: Mapped[bool] = mapped_column(default=True)

    lot_group: Mapped[LotGroup | None] = relationship(back_populates="lots")
    products: Mapped[list[PermitProduct]] = relationship(back_populates="lot", cascade="all, delete-orphan")
    zone_schedules: Mapped[list[LotZoneSchedule]] = relationship(
        back_populates="lot", cascade="all, delete-orphan"
    )

    @hybrid_property
    def allowance(self) -> int:
        """How many permits may be sold: ``permits_allowed``, or the capacity when it is unset
        (the same rule in SQL: ``_allowance_in_sql``)."""
        return self.capacity if self.permits_allowed is None else self.permits_allowed

    @allowance.inplace.expression
    @classmethod
    def _allowance_in_sql(cls) -> ColumnElement[int]:
        return func.coalesce(cls.permits_allowed, cls.capacity)


class LotZone(Base):
    """A named zone (HotSpot, ParkMobile, pay stations speak zones): valid in every lot that has
    it scheduled at that day and time. ``capacity``: how many zone permits and pay-station records
    may overlap at any time (None: no limit)."""

    __tablename__ = "lot_zones"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    capacity: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LotZoneSchedule(Base):
    """Zone on a lot for some days of the week between two local times.

    ``days`` is a 7-character mask Monday..Sunday ("1111111" = every day); times are in the site's
    time zone because that is how parking signs read.
    """

    __tablename__ = "lot_zone_schedules"
    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"), index=True)
    zone_id: Mapped[int] = mapped_column(ForeignKey("lot_zones.id", ondelete="RESTRICT"), index=True)
    days: Mapped[str] = mapped_column(String(7), default="1111111")
    start_time: Mapped[time] = mapped_column(default=time(0, 0))
    end_time: Mapped[time] = mapped_column(default=time(23, 59))

    lot: Mapped[Lot] = relationship(back_populates="zone_schedules")
    zone: Mapped[LotZone] = relationship()


class PermitKind(enum.StrEnum):
    STANDARD = "standard"
    TEMPORARY = "temporary"


class Pricing(enum.StrEnum):
    TERM = "term"
    FIXED = "fixed"
    HOURLY = "hourly"
    DAILY = "daily"


product_user_types = Table(
    "product_user_types",
    Base.metadata,
    Column("product_id", ForeignKey("permit_products.id", ondelete="CASCADE"), primary_key=True),
    Column("user_type_id", ForeignKey("user_types.id", ondelete="CASCADE"), primary_key=True),
)


class PermitProduct(TimestampMixin, Base):
    """What a lot sells: a standard term permit or a temporary option, priced in cents."""

    __tablename__ = "permit_products"
    __table_args__ = (UniqueConstraint("lot_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"), index=True)
    kind: Mapped[PermitKind] = mapped_column(str_enum(PermitKind))
    name: Mapped[str] = mapped_column(String(120))
    pricing: Mapped[Pricing] = mapped_column(str_enum(Pricing))
    price_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="CAD")
    term_start: Mapped[date | None]
    term_end: Mapped[date | None]
    max_duration_minutes: Mapped[int | None] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(default=True)

    lot: Mapped[Lot] = relationship(back_populates="products")
    eligible_user_types: Mapped[list[UserType]] = relationship(secondary=product_user_types)


class MistallLot(Base):
    """A lot as Mistall knows it, imported by the Update Mistall System Job Task; fills the
    Mistall Lot ID dropdown on lot groups."""

    __tablename__ = "mistall_lots"
    id: Mapped[int] = mapped_column(primary_key=True)
    mistall_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    capacity: Mapped[int | None] = mapped_column(Integer)
    occupied: Mapped[int | None] = mapped_column(Integer)
    reported_at: Mapped[datetime | None]
    imported_at: Mapped[datetime | None]
