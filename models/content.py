"""What the site says: email templates, the outbox, admin-edited pages, dashboard widgets."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, str_enum, utcnow


class EmailTemplate(TimestampMixin, Base):
    """Admin-editable; rendered in Jinja's sandbox so an admin's template cannot reach Python."""

    __tablename__ = "email_templates"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    subject: Mapped[str] = mapped_column(String(255))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text, default="")


class OutboxStatus(enum.StrEnum):
    """``queued``: waiting for (another) delivery attempt; ``sending``: claimed by one worker, which
    is talking to the mail server; ``stored``: kept by the outbox-only backend, never sent;
    ``bounced``/``complained``: sent, then reported back by the provider."""

    QUEUED = "queued"
    SENDING = "sending"
    STORED = "stored"
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class OutboxMessage(Base):
    """Every email the system sends, whatever the backend, so admins can see what went out."""

    __tablename__ = "outbox_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    to_addresses: Mapped[list[str]] = mapped_column(JSON)
    reply_to: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(255))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    template_key: Mapped[str | None] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(24))
    status: Mapped[OutboxStatus] = mapped_column(str_enum(OutboxStatus), default=OutboxStatus.QUEUED)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None]
    # Delivery in RQ (``workers.email_delivery``): the From header used, the provider's id for the
    # message (Message-ID for SMTP, Mailgun's id), every attempt as {"at", "ok", "result"}, when the
    # next one is due, and when a worker claimed the row (a claim left behind by a dead worker is
    # found by its age).
    sender: Mapped[str | None] = mapped_column(String(320))
    provider_message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    attempts: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    claimed_at: Mapped[datetime | None]
    resent_from_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_messages.id", ondelete="SET NULL"))

    attachments: Mapped[list[OutboxAttachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan"
    )


class OutboxAttachment(Base):
    __tablename__ = "outbox_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox_messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))
    content: Mapped[bytes] = mapped_column(LargeBinary)

    message: Mapped[OutboxMessage] = relationship(back_populates="attachments")


class MailgunWebhookToken(Base):
    """Tokens of Mailgun webhook calls already accepted: a captured, correctly signed call replayed
    within the timestamp window is refused because its token is here. Rows older than the window
    can be deleted (they would be refused for their timestamp anyway)."""

    __tablename__ = "mailgun_webhook_tokens"
    token: Mapped[str] = mapped_column(String(128), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class BodyFormat(enum.StrEnum):
    MARKDOWN = "markdown"
    HTML = "html"


class ContentPage(TimestampMixin, Base):
    """System Messaging > Editing Pages: public pages at /p/<slug>, with shortcodes."""

    __tablename__ = "content_pages"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    body_format: Mapped[BodyFormat] = mapped_column(str_enum(BodyFormat), default=BodyFormat.MARKDOWN)
    is_published: Mapped[bool] = mapped_column(default=False)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class DashboardWidget(Base):
    """One widget on one user's dashboard, in order."""

    __tablename__ = "dashboard_widgets"
    __table_args__ = (UniqueConstraint("user_id", "widget_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    widget_key: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer, default=0)
    config: Mapped[dict] = mapped_column(JSON, default=dict)
