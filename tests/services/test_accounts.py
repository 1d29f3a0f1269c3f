"""Self-service accounts: registration with e-mail verification, resend, and password reset, on
the real outbox. Links are single-use, expire, are stored hashed, and never say who has an account."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard.services import accounts, email, users
from dashboard.services.errors import ValidationFailed
from models import AccountToken, AuditLog, LoginMethod, OutboxMessage, User, UserType

MAILER = accounts.Mailer(
    "https://parking.example.edu", "Campus", ZoneInfo("America/Toronto"), email.OutboxBackend()
)
NOW = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
KEY = b"k" * 32
GOOD = "tram lime orbit 42"


@pytest.fixture
def types(core):
    with core.db.session() as s:
        email.ensure_default_templates(s)
        public = UserType(code="public", name="Public", self_registration=True)
        staff = UserType(code="staff", name="Staff", self_registration=False)
        s.add_all([public, staff])
        s.flush()
        return public.id, staff.id


def register(core, type_id: int, address: str = "new.person@example.com", password: str = GOOD):
    with core.db.session() as s:
        accounts.register(
            s,
            email_address=address,
            password=password,
            first_name="New",
            last_name="Person",
            user_type_id=type_id,
            mailer=MAILER,
            now=NOW,
        )


def outbox(core, key: str) -> list[OutboxMessage]:
    with core.db.session() as s:
        rows = list(
            s.scalars(
                select(OutboxMessage).where(OutboxMessage.template_key == key).order_by(OutboxMessage.id)
            )
        )
        s.expunge_all()
        return rows


def token_in(message: OutboxMessage, path: str) -> str:
    match = re.search(rf"https://parking\.example\.edu{re.escape(path)}\?token=([\w-]+)", message.body_text)
    assert match, message.body_text
    return match.group(1)


def test_registration_sends_a_link_and_the_account_cannot_sign_in_until_it_is_used(core, types):
    public, _ = types
    register(core, public)
    [sent] = outbox(core, "email-verification")
    assert sent.to_addresses == ["new.person@example.com"]
    assert "Saturday 5 December 2026 at 10:00" in sent.body_text  # 48 h, in the site's zone, in words
    token = token_in(sent, "/verify")
    with core.db.session() as s:
        stored = s.scalar(select(AccountToken))
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()  # only the hash is kept
        with pytest.raises(users.Unverified):
            users.authenticate(s, "new.person@example.com", "tram lime orbit 42")
        user = s.scalar(select(User).where(User.email == "new.person@example.com"))
        assert user.user_type.code == "public" and user.email_verified is False
        assert users.session_stamp(s, user.id, KEY) is None
    with core.db.session() as s:
        assert accounts.verify_email(s, token, NOW + timedelta(hours=1)) == "new.person@example.com"
    with core.db.session() as s:
        assert users.authenticate(s, "new.person@example.com", "tram lime orbit 42") is not None
        assert {"user.register", "user.verify_email"} <= set(s.scalars(select(AuditLog.action)))
    with core.db.session() as s, pytest.raises(accounts.InvalidLink, match="already been used"):
        accounts.verify_email(s, token, NOW + timedelta(hours=2))


def test_an_expired_or_unknown_link_is_refused(core, types):
    register(core, types[0])
    token = token_in(outbox(core, "email-verification")[0], "/verify")
    with core.db.session() as s, pytest.raises(accounts.InvalidLink, match="expired"):
        accounts.verify_email(s, token, NOW + accounts.VERIFY_FOR + timedelta(seconds=1))
    for bad in ["", "nope", "x" * 5000, None]:
        with core.db.session() as s, pytest.raises(accounts.InvalidLink):
            accounts.verify_email(s, bad, NOW)


def test_only_open_types_and_good_fields_register(core, types):
    public, staff = types
    with pytest.raises(ValidationFailed) as caught:
        register(core, staff, address="not-an-address", password="password123")
    assert set(caught.value.errors) == {"user_type", "email", "password"}
    with core.db.session() as s:
        assert s.scalar(select(User)) is None
        assert [c.name for c in accounts.registration_types(s)] == ["Public"]
        # A type whose people sign in through SSO gets its accounts from the IdP, not /register.
        s.get(UserType, public).login_method = LoginMethod.SSO
        assert accounts.registration_types(s) == []


def test_registering_a_taken_address_makes_no_account_and_says_nothing(core, types, make_user):
    existing = make_user(email="taken@example.com")
    register(core, types[0], address="Taken@Example.com")
    with core.db.session() as s:
        assert s.scalar(select(User.id).where(User.email == "taken@example.com")) == existing.id
        assert len(s.scalars(select(User)).all()) == 1
    assert outbox(core, "email-verification") == []  # a confirmed account gets no mail


def test_resend_replaces_the_link_and_is_silent_for_unknown_addresses(core, types):
    register(core, types[0])
    first = token_in(outbox(core, "email-verification")[0], "/verify")
    with core.db.session() as s:
        accounts.resend_verification(s, "NEW.person@example.com", MAILER, NOW)
        accounts.resend_verification(s, "nobody@example.com", MAILER, NOW)
    sent = outbox(core, "email-verification")
    assert len(sent) == 2
    with core.db.session() as s, pytest.raises(accounts.InvalidLink):
        accounts.verify_email(s, first, NOW)  # the older link no longer works
    with core.db.session() as s:
        accounts.verify_email(s, token_in(sent[1], "/verify"), NOW)


def test_reset_sets_the_password_ends_sessions_and_is_single_use(core, types, make_user):
    user = make_user(email="alex@example.com", first_name="Alex", last_name="Morgan")
    with core.db.session() as s:
        old_stamp = users.session_stamp(s, user.id, KEY)
        accounts.request_reset(s, "ALEX@example.com", MAILER, NOW)
        accounts.request_reset(s, "nobody@example.com", MAILER, NOW)  # no mail, no error
    [sent] = outbox(core, "password-reset")
    assert sent.to_addresses == ["alex@example.com"] and "16:00" not in sent.subject
    token = token_in(sent, "/password/reset")
    with core.db.session() as s, pytest.raises(ValidationFailed, match="password"):
        accounts.reset_password(s, token, "alex-morgan-2026", NOW)  # refused, link still usable
    with core.db.session() as s:
        assert accounts.reset_password(s, token, "new tram lime orbit", NOW) == "alex@example.com"
    with core.db.session() as s:
        assert users.session_user(s, user.id, old_stamp, KEY) is None  # signed out everywhere
        assert users.authenticate(s, "alex@example.com", "new tram lime orbit") is not None
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "user.password_reset"))
        assert entry.changes == {"password": "changed"}
    with core.db.session() as s, pytest.raises(accounts.InvalidLink):
        accounts.reset_password(s, token, "another tram lime orbit", NOW)


def test_a_reset_link_expires_after_an_hour(core, make_user):
    make_user(email="alex@example.com")
    with core.db.session() as s:
        accounts.request_reset(s, "alex@example.com", MAILER, NOW)
    token = token_in(outbox(core, "password-reset")[0], "/password/reset")
    with core.db.session() as s, pytest.raises(accounts.InvalidLink, match="expired"):
        accounts.reset_password(s, token, "new tram lime orbit", NOW + timedelta(minutes=61))


def test_a_verify_link_cannot_reset_a_password(core, types):
    register(core, types[0])
    token = token_in(outbox(core, "email-verification")[0], "/verify")
    with core.db.session() as s, pytest.raises(accounts.InvalidLink):
        accounts.reset_password(s, token, "quiet tram lime orbit", NOW)


def test_deactivated_and_sso_accounts_get_no_reset_mail(core, make_user):
    make_user(email="gone@example.com")
    with core.db.session() as s:
        s.scalar(select(User).where(User.email == "gone@example.com")).is_active = False
        users.create_user(s, email="sso@example.com", password=None, auth_source=users.AuthSource.SAML)
        # A local account whose user type has moved to SSO: its password no longer signs in.
        student = UserType(code="student", name="Student", login_method=LoginMethod.SSO)
        s.add(student)
        s.flush()
        users.create_user(s, email="moved@example.com", password=GOOD, user_type="student")
    with core.db.session() as s:
        accounts.request_reset(s, "gone@example.com", MAILER, NOW)
        accounts.request_reset(s, "sso@example.com", MAILER, NOW)
        accounts.request_reset(s, "moved@example.com", MAILER, NOW)
    assert outbox(core, "password-reset") == []


def test_a_broken_template_still_sends_the_shipped_wording(core, types):
    with core.db.session() as s:
        from models import EmailTemplate

        s.scalar(
            select(EmailTemplate).where(EmailTemplate.key == "email-verification")
        ).body_text = "{{ nope }}"
    register(core, types[0])
    [sent] = outbox(core, "email-verification")
    assert "/verify?token=" in sent.body_text
