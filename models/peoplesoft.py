"""PeopleSoft holds: who PeopleSoft was last told to hold, and every report sent.

The holds table is what makes the Released file exact: a user is released only if a row here says
PeopleSoft holds them, and the row goes with the release, so nobody is released twice. The row
keeps what the Added file said (the ID, the amount, the violation shown), because the Released
line must name the hold PeopleSoft knows even if the user's ID changed since.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class PeopleSoftHold(Base):
    __tablename__ = "peoplesoft_holds"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    student_id: Mapped[str] = mapped_column(String(64))
    amount_cents: Mapped[int] = mapped_column(Integer)
    user_type: Mapped[str] = mapped_column(String(80), default="")
    violation_type: Mapped[str] = mapped_column(String(200), default="")
    violation_date: Mapped[date | None] = mapped_column(Date)
    held_since: Mapped[datetime] = mapped_column(default=utcnow)
    reported_at: Mapped[datetime] = mapped_column(default=utcnow)


class PeopleSoftReport(Base):
    """One run of the PeopleSoft Holds Report: both files as sent, who was skipped and why, and the
    outbox message that carried them (none when nothing changed)."""

    __tablename__ = "peoplesoft_reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    report_date: Mapped[date] = mapped_column(Date)
    added_filename: Mapped[str] = mapped_column(String(200))
    added_content: Mapped[str] = mapped_column(Text)
    added_count: Mapped[int] = mapped_column(Integer)
    released_filename: Mapped[str] = mapped_column(String(200))
    released_content: Mapped[str] = mapped_column(Text)
    released_count: Mapped[int] = mapped_column(Integer)
    # [{"user_id", "name", "email", "amount_cents"}]: owing users PeopleSoft cannot be told about.
    skipped: Mapped[list[dict]] = mapped_column(JSON, default=list)
    recipient: Mapped[str] = mapped_column(String(254), default="")
    outbox_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_messages.id", ondelete="SET NULL")
    )
