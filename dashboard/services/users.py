"""Accounts: creation, password checks, look-ups. Passwords are hashed with scrypt (Werkzeug)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from dashboard.services.errors import ValidationFailed
from models import AuthSource, Role, User, UserType, utcnow

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10
# Checked against when the e-mail is unknown, so a failed login takes as long either way.
_DUMMY_HASH = generate_password_hash("parkops-timing-equaliser", method="scrypt")


@dataclass(frozen=True)
class UserInfo:
    id: int
    email: str
    name: str
    role: Role
    user_type: str | None


def _info(user: User) -> UserInfo:
    return UserInfo(
        user.id, user.email, user.full_name, Role(user.role), user.user_type.code if user.user_type else None
    )


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def create_user(
    session: Session,
    *,
    email: str,
    password: str | None,
    role: Role = Role.USER,
    first_name: str = "",
    last_name: str = "",
    user_type: str | None = None,
    external_id: str | None = None,
    auth_source: AuthSource = AuthSource.LOCAL,
) -> UserInfo:
    email = email.strip().lower()
    errors: dict[str, str] = {}
    if not EMAIL_RE.match(email):
        errors["email"] = "not a valid e-mail address"
    elif session.scalar(select(User.id).where(func.lower(User.email) == email)) is not None:
        errors["email"] = "an account with this e-mail already exists"
    if auth_source is AuthSource.LOCAL and (password is None or len(password) < MIN_PASSWORD):
        errors["password"] = f"must be at least {MIN_PASSWORD} characters"
    type_row = None
    if user_type:
        type_row = session.scalar(select(UserType).where(UserType.code == user_type))
        if type_row is None:
            errors["user_type"] = f"unknown user type {user_type!r}"
    if errors:
        raise ValidationFailed(errors)
    user = User(
        email=email,
        first_name=first_name,
        last_name=last_name,
        password_hash=hash_password(password) if password else None,
        role=int(role),
        user_type=type_row,
        external_id=external_id,
        auth_source=auth_source,
    )
    session.add(user)
    session.flush()
    return _info(user)


def authenticate(session: Session, email: str, password: str) -> UserInfo | None:
    user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None or not user.password_hash or not user.is_active:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    user.last_login_at = utcnow()
    return _info(user)


def get_active(session: Session, user_id: int) -> UserInfo | None:
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    return _info(user)


def by_email(session: Session, email: str) -> UserInfo | None:
    user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    return _info(user) if user else None
