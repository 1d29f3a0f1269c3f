"""Enforcement: offence types, violations and their items, photos and appeals, boots and their
assignments."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, str_enum, utcnow
from models.lots import Lot


class OffenceType(TimestampMixin, Base):
    """A fine item. The seed forbids Apply Discount together with Apply Boot (the boot deposit
    refund ignores discounts), enforced here by a check constraint. The early-payment discount is
    ``discount_percent`` off when paid within ``discount_days`` of the ticket."""

    __tablename__ = "offence_types"
    __table_args__ = (CheckConstraint("NOT (apply_boot AND apply_discount)", name="boot_xor_discount"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    fine_cents: Mapped[int] = mapped_column(Integer)
    apply_boot: Mapped[bool] = mapped_column(default=False)
    apply_discount: Mapped[bool] = mapped_column(default=False)
    discount_percent: Mapped[int] = mapped_column(Integer, default=0)
    discount_days: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(default=True)


class ViolationStatus(enum.StrEnum):
    """Stored statuses. "Overdue" is not stored: it is an unpaid violation past its due date (see
    ``dashboard.services.violations``), so nothing has to flip it at midnight."""

    UNPAID = "unpaid"
    PAID = "paid"
    VOID = "void"
    UNDER_APPEAL = "under_appeal"


class Violation(TimestampMixin, Base):
    __tablename__ = "violations"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_number: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[ViolationStatus] = mapped_column(
        str_enum(ViolationStatus), default=ViolationStatus.UNPAID, index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id", ondelete="SET NULL"))
    plate: Mapped[str] = mapped_column(String(16))
    plate_normalized: Mapped[str] = mapped_column(String(16), index=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    due_at: Mapped[datetime | None]
    notes: Mapped[str] = mapped_column(Text, default="")
    # The key the officer's form generated: a retried submit finds the ticket it already made.
    submit_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    paid_at: Mapped[datetime | None]
    void_reason: Mapped[str] = mapped_column(String(255), default="")
    voided_at: Mapped[datetime | None]

    lot: Mapped[Lot | None] = relationship()
    items: Mapped[list[ViolationItem]] = relationship(
        back_populates="violation", cascade="all, delete-orphan", order_by="ViolationItem.id"
    )

    @property
    def total_cents(self) -> int:
        return sum(item.amount_cents for item in self.items)


class ItemKind(enum.StrEnum):
    """An offence from the officer; a late fee for a boot not returned; an appeal's reduction
    (a negative amount, so the items stay a ledger that adds up to what is owed)."""

    OFFENCE = "offence"
    LATE_FEE = "late_fee"
    REDUCTION = "reduction"


class ViolationItem(Base):
    __tablename__ = "violation_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id", ondelete="CASCADE"), index=True)
    offence_type_id: Mapped[int | None] = mapped_column(ForeignKey("offence_types.id", ondelete="RESTRICT"))
    kind: Mapped[ItemKind] = mapped_column(str_enum(ItemKind), default=ItemKind.OFFENCE)
    amount_cents: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(200), default="")

    violation: Mapped[Violation] = relationship(back_populates="items")
    offence_type: Mapped[OffenceType | None] = relationship()


class ViolationPhoto(Base):
    """A photo taken by an officer (``violation_id``) or sent with an appeal (``appeal_id``).

    The file lives under the instance path, outside the web root, named by ``stored_name`` (random,
    never the uploader's name); it is served only through a role-checked route. A photo uploaded
    while a ticket is being written has no violation yet: ``draft_key`` ties it to that form."""

    __tablename__ = "violation_photos"
    id: Mapped[int] = mapped_column(primary_key=True)
    violation_id: Mapped[int | None] = mapped_column(
        ForeignKey("violations.id", ondelete="CASCADE"), index=True
    )
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    draft_key: Mapped[str | None] = mapped_column(String(64), index=True)
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AppealStatus(enum.StrEnum):
    PENDING = "pending"
    UPHELD = "upheld"  # the violation stands as it was
    CANCELLED = "cancelled"  # the violation is voided
    REDUCED = "reduced"  # the violation stands at a lower amount


class Appeal(Base):
    """An owner's appeal of one violation (one per violation), and the manager's decision."""

    __tablename__ = "appeals"
    id: Mapped[int] = mapped_column(primary_key=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id", ondelete="CASCADE"), unique=True)
    status: Mapped[AppealStatus] = mapped_column(str_enum(AppealStatus), default=AppealStatus.PENDING)
    text: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(String(254))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision_note: Mapped[str] = mapped_column(Text, default="")
    reduced_to_cents: Mapped[int | None] = mapped_column(Integer)


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
    """One use of a boot on one violation; the Boot Device Report lists these.

    At most one assignment of a boot is open (in use or released) at a time: a partial unique index
    backs up the service's row lock, so even a bug elsewhere cannot put one boot on two cars."""

    __tablename__ = "boot_assignments"
    __table_args__ = (
        Index(
            "uq_boot_assignments_open_boot",
            "boot_id",
            unique=True,
            postgresql_where=text("status IN ('in_use', 'released')"),
            sqlite_where=text("status IN ('in_use', 'released')"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    boot_id: Mapped[int] = mapped_column(ForeignKey("boots.id", ondelete="RESTRICT"), index=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id", ondelete="RESTRICT"), index=True)
    status: Mapped[BootStatus] = mapped_column(str_enum(BootStatus), default=BootStatus.IN_USE)
    deposit_cents: Mapped[int] = mapped_column(Integer, default=0)
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None]
    returned_at: Mapped[datetime | None]
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id", ondelete="SET NULL"))
    # Why the deposit was kept on return (a damaged boot), when it was.
    refund_skipped_reason: Mapped[str] = mapped_column(String(255), default="")
    # Set once by the non-return task; the late fee's violation, when a fee was charged.
    not_returned_at: Mapped[datetime | None]
    late_fee_violation_id: Mapped[int | None] = mapped_column(
        ForeignKey("violations.id", ondelete="SET NULL")
    )

    boot: Mapped[Boot] = relationship(back_populates="assignments")
    violation: Mapped[Violation] = relationship(foreign_keys=[violation_id])
