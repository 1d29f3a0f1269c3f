"""Local accounts by self-service: registration with e-mail verification, and password reset.

Both rest on single-use links sent by e-mail (``AccountToken``): 32 random bytes, of which only
the SHA-256 is stored, valid for a limited time, spent by their first use, and replaced when a new
one of the same purpose is issued (only the latest link in someone's inbox works).

Nothing here tells a stranger whether an address has an account: asking for a reset link or a new
verification link answers the same whatever the address, and registering an address that already
has an account sends no new account (it re-sends the verification link if that account is still
unconfirmed) while the page says the same as for a new one. The routes also throttle these forms
(``dashboard.services.throttle``), so they cannot be used to flood someone's inbox.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from urllib.parse import urlencode

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from dashboard.services import audit, email, passwords, users
from dashboard.services.errors import DomainError, ValidationFailed
from dashboard.services.violations import when_words
from models import AccountToken, AuthSource, LoginMethod, TokenPurpose, User, UserType

log = logging.getLogger(__name__)

VERIFY_TEMPLATE = "email-verification"
RESET_TEMPLATE = "password-reset"
VERIFY_FOR = timedelta(hours=48)
RESET_FOR = timedelta(hours=1)
MAX_NAME = 80  # User.first_name / last_name
MAX_TOKEN = 100  # what a link can carry; a longer "token" is not one of ours


class InvalidLink(DomainError):
    """A link that is unknown, already used or expired: the page offers to send a new one."""


@dataclass(frozen=True)
class Mailer:
    """What a link e-mail needs: where the site is (``settings.public_url``, never the request's
    Host header), its name and time zone for the text, and the delivery backend."""

    base_url: str
    site_name: str
    tz: tzinfo
    backend: email.EmailBackend


@dataclass(frozen=True)
class TypeChoice:
    id: int
    name: str


def registration_types(session: Session) -> list[TypeChoice]:
    """The user types people may register as themselves (``UserType.self_registration``); never
    a type that signs in through SSO (its accounts come from the IdP, with no password here)."""
    rows = session.execute(
        select(UserType.id, UserType.name)
        .where(UserType.self_registration.is_(True), UserType.login_method == LoginMethod.LOCAL)
        .order_by(UserType.name)
    )
    return [TypeChoice(i, name) for i, name in rows]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _issue(session: Session, user: User, purpose: TokenPurpose, now: datetime, ttl: timedelta) -> str:
    """A new link token for ``user``; earlier unused ones of the same purpose stop working."""
    session.execute(
        delete(AccountToken).where(AccountToken.user_id == user.id, AccountToken.purpose == purpose)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        AccountToken(
            user_id=user.id, purpose=purpose, token_hash=_digest(token), created_at=now, expires_at=now + ttl
        )
    )
    session.flush()
    return token


def _spend(session: Session, token: str | None, purpose: TokenPurpose, now: datetime) -> User:
    """The account a valid token belongs to, marking the token used; else ``InvalidLink``."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise InvalidLink("This link is not valid.")
    row = session.scalar(
        select(AccountToken).where(AccountToken.token_hash == _digest(token), AccountToken.purpose == purpose)
    )
    if row is None or row.used_at is not None:
        raise InvalidLink("This link is not valid or has already been used.")
    if row.expires_at <= now:
        raise InvalidLink("This link has expired.")
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise InvalidLink("This link is not valid.")
    row.used_at = now
    return user


def _send(session: Session, key: str, context: Mapping[str, object], to: str, mailer: Mailer) -> None:
    """The link must reach the person even if an admin broke the template: the shipped wording
    is sent then (and the failure logged), as for boot release codes."""
    try:
        message = email.compose(session, key, context, [to])
    except DomainError:
        log.exception("the %s template does not render: the shipped wording is sent", key)
        shipped = next(t for t in email.DEFAULT_TEMPLATES if t.key == key)
        rendered = email.render_source(shipped.subject, shipped.body_text, shipped.body_html, context)
        message = email.EmailMessage(
            to=[to], subject=rendered.subject, text=rendered.text, html=rendered.html, template_key=key
        )
    email.send_email(session, message, mailer.backend)


def _link(mailer: Mailer, path: str, token: str) -> str:
    return f"{mailer.base_url.rstrip('/')}{path}?{urlencode({'token': token})}"


def _send_verification(session: Session, user: User, mailer: Mailer, now: datetime) -> None:
    token = _issue(session, user, TokenPurpose.VERIFY_EMAIL, now, VERIFY_FOR)
    context = {
        "name": user.full_name,
        "verify_url": _link(mailer, "/verify", token),
        "expires_at": when_words(now + VERIFY_FOR, mailer.tz),
        "site_name": mailer.site_name,
    }
    _send(session, VERIFY_TEMPLATE, context, user.email, mailer)


def _by_email(session: Session, address: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == address.strip().lower()))


def register(
    session: Session,
    *,
    email_address: str,
    password: str,
    first_name: str,
    last_name: str,
    user_type_id: int | None,
    mailer: Mailer,
    now: datetime,
) -> None:
    """Create an unconfirmed local account and e-mail its verification link.

    Field errors raise ``ValidationFailed``. An address that already has an account is not an
    error (that would tell a stranger who has an account here): an unconfirmed one gets a new
    link, a confirmed one nothing; the caller shows the same "check your inbox" either way."""
    first, last = first_name.strip(), last_name.strip()
    errors: dict[str, str] = {}
    if not first:
        errors["first_name"] = "is required"
    elif len(first) > MAX_NAME:
        errors["first_name"] = f"at most {MAX_NAME} characters"
    if not last:
        errors["last_name"] = "is required"
    elif len(last) > MAX_NAME:
        errors["last_name"] = f"at most {MAX_NAME} characters"
    allowed = {choice.id: choice for choice in registration_types(session)}
    if user_type_id not in allowed:
        errors["user_type"] = "choose one of the listed user types"
    if len(email_address) > 254 or not users.EMAIL_RE.match(email_address.strip()):
        errors["email"] = "not a valid e-mail address"
    wrong = passwords.problem(password, email=email_address, first_name=first, last_name=last)
    if wrong:
        errors["password"] = wrong
    if errors:
        raise ValidationFailed(errors)
    existing = _by_email(session, email_address)
    if existing is not None:
        if not existing.email_verified and existing.is_active:
            _send_verification(session, existing, mailer, now)
        log.info("registration for an address that has an account (%s): no new account", existing.id)
        return
    type_code = session.scalar(select(UserType.code).where(UserType.id == user_type_id))
    info = users.create_user(
        session,
        email=email_address,
        password=password,
        first_name=first,
        last_name=last,
        user_type=type_code,
        email_verified=False,
    )
    user = session.get(User, info.id)
    assert user is not None
    audit.record(
        session,
        actor_id=user.id,
        action="user.register",
        entity_type="user",
        entity_id=str(user.id),
        changes={"email": user.email, "user_type": type_code},
    )
    _send_verification(session, user, mailer, now)


def verify_email(session: Session, token: str | None, now: datetime) -> str:
    """Confirm the address a verification link was sent to; returns it (for the sign-in form)."""
    user = _spend(session, token, TokenPurpose.VERIFY_EMAIL, now)
    if not user.email_verified:
        user.email_verified = True
        audit.record(
            session,
            actor_id=user.id,
            action="user.verify_email",
            entity_type="user",
            entity_id=str(user.id),
            changes={"email_verified": [False, True]},
        )
    session.flush()
    return user.email


def resend_verification(session: Session, email_address: str, mailer: Mailer, now: datetime) -> None:
    """A new verification link if the address has an unconfirmed, active account; else nothing
    (and the caller answers the same)."""
    user = _by_email(session, email_address)
    if user is not None and user.is_active and not user.email_verified:
        _send_verification(session, user, mailer, now)


def request_reset(session: Session, email_address: str, mailer: Mailer, now: datetime) -> None:
    """E-mail a reset link if the address has an active local account; else nothing (and the
    caller answers the same). Accounts that sign in through the institution's SSO have no
    password here to reset."""
    user = _by_email(session, email_address)
    if user is None or not user.is_active or user.auth_source is not AuthSource.LOCAL:
        return
    if user.user_type is not None and user.user_type.login_method == LoginMethod.SSO:
        return
    token = _issue(session, user, TokenPurpose.RESET_PASSWORD, now, RESET_FOR)
    context = {
        "name": user.full_name,
        "reset_url": _link(mailer, "/password/reset", token),
        "expires_at": when_words(now + RESET_FOR, mailer.tz),
        "site_name": mailer.site_name,
    }
    _send(session, RESET_TEMPLATE, context, user.email, mailer)


def reset_password(session: Session, token: str | None, password: str, now: datetime) -> str:
    """Set a new password with a reset link; returns the account's e-mail.

    The new hash changes the account's session stamp and the generation is raised too, so every
    session of the account ends (someone who had the old password is out). Following the link
    also proves the address, so an unconfirmed account becomes confirmed. The password is checked
    before the link is spent: a refused password leaves the link usable for another try."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise InvalidLink("This link is not valid.")
    row = session.scalar(select(AccountToken).where(AccountToken.token_hash == _digest(token)))
    owner = session.get(User, row.user_id) if row is not None else None
    if owner is not None:
        wrong = passwords.problem(
            password, email=owner.email, first_name=owner.first_name, last_name=owner.last_name
        )
        if wrong:
            raise ValidationFailed({"password": wrong})
    user = _spend(session, token, TokenPurpose.RESET_PASSWORD, now)
    user.password_hash = users.hash_password(password)
    user.session_generation += 1
    verified_now = not user.email_verified
    user.email_verified = True
    audit.record(
        session,
        actor_id=user.id,
        action="user.password_reset",
        entity_type="user",
        entity_id=str(user.id),
        changes={"password": "changed", **({"email_verified": [False, True]} if verified_now else {})},
    )
    session.flush()
    return user.email
