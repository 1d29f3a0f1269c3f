"""People: accounts (local or SSO), their user types and vehicles."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, false, func, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, str_enum, utcnow


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


class LoginMethod(enum.StrEnum):
    """How the people of a user type sign in: their institution's SSO, or a password kept here."""

    LOCAL = "local"
    SSO = "sso"


class UserType(Base):
    """Student, staff, faculty, public...: drives permit eligibility and PeopleSoft exports."""

    __tablename__ = "user_types"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    # Whether people may create an account of this type themselves at ``/register``.
    self_registration: Mapped[bool] = mapped_column(default=False, server_default=false())
    login_method: Mapped[LoginMethod] = mapped_column(
        str_enum(LoginMethod, length=16), default=LoginMethod.LOCAL, server_default="local"
    )


class User(TimestampMixin, Base):
    __tablename__ = "users"
    # E-mail addresses are looked up without regard to case (sign-in, imports): without this index
    # each look-up reads the whole table, and an import of N users takes N full scans.
    __table_args__ = (Index("ix_users_email_lower", func.lower("email")),)
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
    # The institution's "special user" designation (set by an admin, or by the IdP's attribute).
    is_special: Mapped[bool] = mapped_column(default=False, server_default=false())
    # False only for a self-registered account whose e-mail link has not been followed yet: it
    # cannot sign in. Accounts made by an admin, the CLI or an IdP are verified by whoever made them.
    email_verified: Mapped[bool] = mapped_column(default=True, server_default=true())
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


class TokenPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 (a purpose, not a password)


class AccountToken(Base):
    """A single-use, expiring link sent by e-mail (verify an address, reset a password). Only the
    SHA-256 of the token is stored: a copy of the database gives nobody a working link."""

    __tablename__ = "account_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[TokenPurpose] = mapped_column(str_enum(TokenPurpose))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
