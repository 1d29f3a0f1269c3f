"""Occupancy history and the devices that feed it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, str_enum, utcnow
from models.lots import Lot


class OccupancySource(enum.StrEnum):
    MISTALL = "mistall"
    PARKING_LOGIX = "parking_logix"
    DEVICES = "devices"
    PERMITS = "permits"


class OccupancySnapshot(Base):
    """One reading of a lot group's occupancy from one source (time series for charts and
    capacity advice). The live figure lives in Redis; this is history."""

    __tablename__ = "occupancy_snapshots"
    __table_args__ = (Index("ix_occupancy_group_time", "lot_group_id", "recorded_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lot_group_id: Mapped[int] = mapped_column(ForeignKey("lot_groups.id", ondelete="CASCADE"))
    source: Mapped[OccupancySource] = mapped_column(str_enum(OccupancySource))
    occupied: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeviceKind(enum.StrEnum):
    COUNTER = "counter"
    SPACE_SENSOR = "space_sensor"


class SensingDevice(TimestampMixin, Base):
    """A counting camera/gate or an in-ground space sensor, registered to a lot."""

    __tablename__ = "sensing_devices"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[DeviceKind] = mapped_column(str_enum(DeviceKind))
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    last_seen_at: Mapped[datetime | None]

    lot: Mapped[Lot] = relationship()


class LotDeviceState(Base):
    """The ingester's live state of one device-counted lot, saved with every batch it applies.

    The live state itself lives in Redis (``workers.ingest``); this copy is what the ingester
    rebuilds it from when Redis comes back empty (a restart without persistence), so a counted
    lot resumes from its last figure instead of 0. Group totals in ``occupancy_snapshots`` cannot
    do that: the next event must move the right lot's count."""

    __tablename__ = "lot_device_states"
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"), primary_key=True)
    # Counter lots: the count, the capacity the counter reported, and the time (epoch seconds, as
    # the devices stamped it) of the last absolute count applied.
    count: Mapped[int | None] = mapped_column(Integer)
    reported_capacity: Mapped[int | None] = mapped_column(Integer)
    count_ts: Mapped[float | None] = mapped_column(Float)
    # Sensor lots: the ids of the occupied space sensors, as a JSON list.
    occupied_sensors: Mapped[str] = mapped_column(Text, default="[]")
    saved_at: Mapped[datetime] = mapped_column(default=utcnow)


class IngestDeadLetter(Base):
    """A message the ingester could not use, kept with the reason so an admin can see it."""

    __tablename__ = "ingest_dead_letters"
    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(255))
    payload: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class UnknownDeviceMessage(Base):
    """A message from a device id nobody registered yet: kept (not dropped) so that an admin can
    map the device to a lot and have its messages counted."""

    __tablename__ = "unknown_device_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(80), index=True)
    topic: Mapped[str] = mapped_column(String(255))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
