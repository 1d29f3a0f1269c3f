"""Accounts: creation, password checks, look-ups. Passwords are hashed with scrypt (Werkzeug)."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from dashboard.services import passwords
from dashboard.services.errors import DomainError, ValidationFailed
from models import AuthSource, Role, User, UserType, utcnow

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = passwords.MIN_LENGTH
# Checked against when the e-mail is unknown, so a failed login takes as long either way.
_DUMMY_HASH = generate_password_hash("parkops-timing-equaliser", method="scrypt")


class Unverified(DomainError):
    """The password is right but the account's e-mail address is not confirmed yet."""

    def __init__(self, email: str) -> None:
        self.email = email
        super().__init__("Confirm your e-mail address first: open the link we sent you.")


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


def describe(user: User) -> UserInfo:
    """An account as plain values, for services that load the ``User`` themselves (SSO)."""
    return _info(user)


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
    email_verified: bool = True,
) -> UserInfo:
    """A new account. A local one needs a password that passes ``passwords.problem``."""
    email = email.strip().lower()
    errors: dict[str, str] = {}
    if not EMAIL_RE.match(email):
        errors["email"] = "not a valid e-mail address"
    elif session.scalar(select(User.id).where(func.lower(User.email) == email)) is not None:
        errors["email"] = "an account with this e-mail already exists"
    if auth_source is AuthSource.LOCAL:
        wrong = passwords.problem(password or "", email=email, first_name=first_name, last_name=last_name)
        if wrong:
            errors["password"] = wrong
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
        email_verified=email_verified,
    )
    session.add(user)
    session.flush()
    return _info(user)


def authenticate(session: Session, email: str, password: str) -> UserInfo | None:
    """The account if the password is right; None if not. A right password on an account whose
    e-mail is unconfirmed raises ``Unverified`` (only someone who knows the password learns it)."""
    user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None or not user.password_hash or not user.is_active:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    if not user.email_verified:
        raise Unverified(user.email)
    user.last_login_at = utcnow()
    return _info(user)


def _stamp(user: User, key: bytes) -> str:
    """Changes whenever the account's sessions must end: a log-out raises ``session_generation``,
    and a new password changes the hash (by whatever path it is set: nothing has to remember to
    end the sessions). Keyed, so the cookie (signed, not encrypted) reveals nothing of the hash."""
    material = f"{user.id}:{user.session_generation}:{user.password_hash or ''}"
    return hmac.new(key, material.encode(), hashlib.sha256).hexdigest()


def session_stamp(session: Session, user_id: int, key: bytes) -> str | None:
    """What a login keeps in its session, to present on every later request (``session_user``)."""
    user = session.get(User, user_id)
    if user is None or not user.is_active or not user.email_verified:
        return None
    return _stamp(user, key)


def session_user(session: Session, user_id: int, stamp: object, key: bytes) -> UserInfo | None:
    """The account a session belongs to, if it is active and the session's stamp is still current
    (not logged out since, same password); else None and the request is anonymous."""
    user = session.get(User, user_id)
    if user is None or not user.is_active or not isinstance(stamp, str):
        return None
    if not hmac.compare_digest(stamp, _stamp(user, key)):
        return None
    return _info(user)


def end_sessions(session: Session, user_id: int) -> None:
    """End every session of the account, on every device (a copied cookie included)."""
    session.execute(
        update(User).where(User.id == user_id).values(session_generation=User.session_generation + 1)
    )


def by_email(session: Session, email: str) -> UserInfo | None:
    user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    return _info(user) if user else None
