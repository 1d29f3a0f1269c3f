"""Enforcement: offence types, violations and their items, boots and their assignments."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, str_enum, utcnow
from models.lots import Lot


class OffenceType(TimestampMixin, Base):
    """A fine item. The seed forbids Apply Discount together with Apply Boot (the boot deposit
    refund ignores discounts), enforced here by a check constraint."""

    __tablename__ = "offence_types"
    __table_args__ = (CheckConstraint("NOT (apply_boot AND apply_discount)", name="boot_xor_discount"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    fine_cents: Mapped[int] = mapped_column(Integer)
    apply_boot: Mapped[bool] = mapped_column(default=False)
    apply_discount: Mapped[bool] = mapped_column(default=False)
    discount_percent: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(default=True)


class ViolationStatus(enum.StrEnum):
    UNPAID = "unpaid"
    PAID = "paid"
    VOID = "void"
    APPEALED = "appealed"


class Violation(TimestampMixin, Base):
    __tablename__ = "violations"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_number: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[ViolationStatus] = mapped_column(str_enum(ViolationStatus), default=ViolationStatus.UNPAID)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id", ondelete="SET NULL"))
    plate: Mapped[str] = mapped_column(String(16))
    plate_normalized: Mapped[str] = mapped_column(String(16), index=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    due_at: Mapped[datetime | None]
    notes: Mapped[str] = mapped_column(Text, default="")

    lot: Mapped[Lot | None] = relationship()
    items: Mapped[list[ViolationItem]] = relationship(
        back_populates="violation", cascade="all, delete-orphan"
    )

    @property
    def total_cents(self) -> int:
        return sum(item.amount_cents for item in self.items)


class ViolationItem(Base):
    __tablename__ = "violation_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id", ondelete="CASCADE"), index=True)
    offence_type_id: Mapped[int] = mapped_column(ForeignKey("offence_types.id", ondelete="RESTRICT"))
    amount_cents: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(200), default="")

    violation: Mapped[Violation] = relationship(back_populates="items")
    offence_type: Mapped[OffenceType] = relationship()


class BootStatus(enum.StrEnum):
    """The seed's boot lifecycle: Available -> In Use -> Released (paid, not returned) -> Returned."""

    AVAILABLE = "available"
    IN_USE = "in_use"
    RELEASED = "released"
    RETURNED = "returned"


class Boot(TimestampMixin, Base):
    """A physical boot. ``release_code`` is stored encrypted: it unlocks a real device."""

    __tablename__ = "boots"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    release_code: Mapped[str] = mapped_column(Text)
    status: Mapped[BootStatus] = mapped_column(str_enum(BootStatus), default=BootStatus.AVAILABLE)
    is_active: Mapped[bool] = mapped_column(default=True)

    assignments: Mapped[list[BootAssignment]] = relationship(back_populates="boot")


class BootAssignment(Base):
    """One use of a boot on one violation; the Boot Device Report lists these."""

    __tablename__ = "boot_assignments"
    id: Mapped[int] = mapped_column(primary_key=True)
    boot_id: Mapped[int] = mapped_column(ForeignKey("boots.id", ondelete="RESTRICT"), index=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id", ondelete="RESTRICT"), index=True)
    status: Mapped[BootStatus] = mapped_column(str_enum(BootStatus), default=BootStatus.IN_USE)
    deposit_cents: Mapped[int] = mapped_column(Integer, default=0)
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None]
    returned_at: Mapped[datetime | None]
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id", ondelete="SET NULL"))

    boot: Mapped[Boot] = relationship(back_populates="assignments")
    violation: Mapped[Violation] = relationship()
