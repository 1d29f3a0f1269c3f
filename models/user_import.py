"""The history of managed user imports: one row per CSV file the import task took in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class UserImport(Base):
    """One imported file: its counts, the file-level error that stopped it (nothing imported then),
    and the failed rows as the CSV that was e-mailed, kept so admins can download it again."""

    __tablename__ = "user_imports"
    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    failures_filename: Mapped[str] = mapped_column(String(255), default="")
    failures_content: Mapped[str] = mapped_column(Text, default="")
    # Where the file went afterwards (its name in the ``.bak`` folder).
    kept_as: Mapped[str] = mapped_column(String(255), default="")
    outbox_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_messages.id", ondelete="SET NULL")
    )
