"""Money: carts, payments (with idempotency keys), what each payment paid for, refunds."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, str_enum, utcnow


class CartStatus(enum.StrEnum):
    OPEN = "open"
    CHECKED_OUT = "checked_out"
    ABANDONED = "abandoned"


class Cart(TimestampMixin, Base):
    __tablename__ = "carts"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    guest_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[CartStatus] = mapped_column(str_enum(CartStatus), default=CartStatus.OPEN)

    items: Mapped[list[CartItem]] = relationship(back_populates="cart", cascade="all, delete-orphan")


class CartItemKind(enum.StrEnum):
    PERMIT = "permit"
    VIOLATION = "violation"


class CartItem(Base):
    __tablename__ = "cart_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[CartItemKind] = mapped_column(str_enum(CartItemKind))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("permit_products.id", ondelete="CASCADE"))
    violation_id: Mapped[int | None] = mapped_column(ForeignKey("violations.id", ondelete="CASCADE"))
    plates: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_from: Mapped[datetime | None]
    valid_to: Mapped[datetime | None]
    amount_cents: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    cart: Mapped[Cart] = relationship(back_populates="items")


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    FAILED = "failed"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class Payment(TimestampMixin, Base):
    """One charge attempt. ``idempotency_key`` is unique so a retry or double-click finds the
    first attempt instead of charging twice."""

    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_ref: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[PaymentStatus] = mapped_column(str_enum(PaymentStatus), default=PaymentStatus.PENDING)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="CAD")
    payer_email: Mapped[str | None] = mapped_column(String(254))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    cart_id: Mapped[int | None] = mapped_column(ForeignKey("carts.id", ondelete="SET NULL"))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    message: Mapped[str] = mapped_column(String(255), default="")
    # The secret part of the receipt link (``/receipts/<token>``): how a guest finds a purchase again.
    receipt_token: Mapped[str | None] = mapped_column(String(64), unique=True)

    allocations: Mapped[list[PaymentAllocation]] = relationship(
        back_populates="payment", cascade="all, delete-orphan"
    )
    refunds: Mapped[list[Refund]] = relationship(back_populates="payment")


class PaymentAllocation(Base):
    """What part of a payment paid for which permit or violation."""

    __tablename__ = "payment_allocations"
    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"), index=True)
    permit_id: Mapped[int | None] = mapped_column(ForeignKey("permits.id", ondelete="SET NULL"))
    violation_id: Mapped[int | None] = mapped_column(ForeignKey("violations.id", ondelete="SET NULL"))
    amount_cents: Mapped[int] = mapped_column(Integer)

    payment: Mapped[Payment] = relationship(back_populates="allocations")


class Refund(Base):
    __tablename__ = "refunds"
    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="RESTRICT"), index=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[PaymentStatus] = mapped_column(str_enum(PaymentStatus), default=PaymentStatus.PENDING)
    provider_ref: Mapped[str | None] = mapped_column(String(80))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    payment: Mapped[Payment] = relationship(back_populates="refunds")


class SandboxCharge(Base):
    """The built-in sandbox card processor's own ledger: what a real processor keeps on its side.
    A charge is found again by its idempotency key, so a retried request returns the first outcome
    instead of charging twice."""

    __tablename__ = "sandbox_charges"
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    card_last4: Mapped[str] = mapped_column(String(4))
    status: Mapped[PaymentStatus] = mapped_column(str_enum(PaymentStatus))
    message: Mapped[str] = mapped_column(String(255), default="")
    refunded_cents: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessorEvent(Base):
    """A processor's webhook event already acted on, kept by its id: processors deliver an event
    at least once (Stripe retries for days), so a repeat is answered without acting again."""

    __tablename__ = "processor_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    event_type: Mapped[str] = mapped_column(String(80))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class MismatchKind(enum.StrEnum):
    """How the ledger and the processor disagree about one charge."""

    CHARGED_UNSETTLED = "charged_unsettled"  # the processor charged; ParkOps has no settled payment
    SETTLED_UNCHARGED = "settled_uncharged"  # ParkOps counts it paid; the processor has no charge
    AMOUNT_DIFFERS = "amount_differs"  # both have it, for different amounts (or refunds)
    REFUNDED_ELSEWHERE = "refunded_elsewhere"  # refunded at the processor beyond ParkOps' refunds


class MismatchStatus(enum.StrEnum):
    OPEN = "open"
    REVIEWED = "reviewed"  # a person looked and wrote why it is fine (or what was done elsewhere)
    SETTLED = "settled"  # a charge without a settled payment was settled from the processor
    REFUNDED = "refunded"  # a charge without a settled payment was refunded to the card


class PaymentMismatch(Base):
    """A disagreement the Payment Reconciliation task found between ParkOps' payments and what the
    processor holds. Found again on the next run, it is the same row (``provider, kind,
    reference``), so a mismatch is listed once however long it stays; it changes only when a
    person acts on it (``resolved_*``)."""

    __tablename__ = "payment_mismatches"
    __table_args__ = (UniqueConstraint("provider", "kind", "reference"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    kind: Mapped[MismatchKind] = mapped_column(str_enum(MismatchKind))
    reference: Mapped[str] = mapped_column(String(80))  # the processor's charge, else our payment's key
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id", ondelete="SET NULL"), index=True)
    ledger_cents: Mapped[int | None] = mapped_column(Integer)
    processor_cents: Mapped[int | None] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="CAD")
    detail: Mapped[str] = mapped_column(String(255), default="")
    found_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[MismatchStatus] = mapped_column(str_enum(MismatchStatus), default=MismatchStatus.OPEN)
    note: Mapped[str] = mapped_column(String(500), default="")
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None]
    refund_reference: Mapped[str | None] = mapped_column(String(80))
