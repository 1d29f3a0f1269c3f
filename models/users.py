"""People: accounts (local or SSO), their user types and vehicles."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, str_enum


class Role(enum.IntEnum):
    """Ordered: a higher role can do everything a lower one can."""

    GUEST = 0
    USER = 1
    OFFICER = 2
    MANAGER = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.title()


class AuthSource(enum.StrEnum):
    LOCAL = "local"
    SAML = "saml"


class UserType(Base):
    """Student, staff, faculty, public...: drives permit eligibility and PeopleSoft exports."""

    __tablename__ = "user_types"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))


class User(TimestampMixin, Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    username: Mapped[str | None] = mapped_column(String(120), unique=True)
    first_name: Mapped[str] = mapped_column(String(80), default="")
    last_name: Mapped[str] = mapped_column(String(80), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    auth_source: Mapped[AuthSource] = mapped_column(str_enum(AuthSource), default=AuthSource.LOCAL)
    role: Mapped[int] = mapped_column(Integer, default=int(Role.USER))
    user_type_id: Mapped[int | None] = mapped_column(ForeignKey("user_types.id"))
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    is_active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]
    # Raised to end every session of the account at once (logging out): sessions carry a stamp
    # derived from it and the password hash (``dashboard.services.users.session_stamp``).
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set when the mail provider reports a hard bounce for the address (Mailgun's webhook): admins
    # see it on the outbox; cleared when the address changes or an admin clears it.
    email_bounced_at: Mapped[datetime | None]
    email_bounce_reason: Mapped[str | None] = mapped_column(String(500))

    user_type: Mapped[UserType | None] = relationship()
    vehicles: Mapped[list[Vehicle]] = relationship(back_populates="user", cascade="all, delete-orphan")

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email


class Vehicle(Base):
    __tablename__ = "vehicles"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    plate: Mapped[str] = mapped_column(String(16))
    plate_normalized: Mapped[str] = mapped_column(String(16), index=True)
    province: Mapped[str | None] = mapped_column(String(40))
    make: Mapped[str | None] = mapped_column(String(40))
    model: Mapped[str | None] = mapped_column(String(40))
    colour: Mapped[str | None] = mapped_column(String(30))

    user: Mapped[User] = relationship(back_populates="vehicles")
