"""API keys for partners (pay stations, HotSpot, OC-TOMA clients, in-house scripts).

An admin issues a key with a name and scopes; the full key is returned once, at creation, and only
its SHA-256 is stored (keys are 256-bit random, so a slow password hash would add nothing but
latency to every API call). ``prefix`` (the key's first characters) lets an admin tell keys apart
in the list and in a partner's configuration without the key being recoverable.

``authenticate`` tells apart the four ways a key is refused (missing, unknown, revoked, lacking
the scope) so that a route can answer 401 or 403 and a partner can see what to fix. It records
``last_used_at`` at most once a minute: a busy pay station must not turn every read into a write.

A key is bound to the permit sources it acts for (``sources``: api, hotspot, paystation): it
records, sees and changes only permits of those sources, so one partner's key cannot reach
another's permits. A key that records permits needs at least one; keys made before sources
existed have none (they read, and are refused writes, until an admin sets them: ``set_sources``).
``permits:over-allowance`` lets a key record past a lot's allowance or a zone's capacity (for a
machine that has already sold the permit); each such permit is flagged.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.services import audit
from dashboard.services.errors import DomainError, NotAllowed, NotFound, ValidationFailed
from dashboard.services.permits import THIRD_PARTY_SOURCES, Partner
from models import ApiKey, User

KEY_PREFIX = "pk_"
PREFIX_CHARS = 10  # "pk_" and 7 random characters: enough to tell keys apart, useless to guess
NAME_MAX = 120
USE_RECORD_INTERVAL = timedelta(minutes=1)
WRITE = "permits:write"
OVER_ALLOWANCE = "permits:over-allowance"
SCOPES = {
    WRITE: "Record, update and cancel permits sold elsewhere (pay stations, HotSpot, OC-TOMA)",
    "permits:read": "Check whether a plate may park; OC-TOMA permit statistics",
    OVER_ALLOWANCE: "Record permits even when the lot or zone is full (each one is flagged)",
    "violations:read": "Read a plate's violations and the boot inventory (never release codes)",
    "reports:read": "Permit sales and revenue by day, lot, product or source (GET /api/v1/reports/sales)",
    "users:write": "Create and update users by their unique id (POST /api/v1/users, OC-TOMA profiles/push)",
}
SOURCES = {
    "paystation": "Pay stations (pay-and-display, meters)",
    "hotspot": "HotSpot",
    "api": "Other partners (API)",
}
assert set(SOURCES) == {source.value for source in THIRD_PARTY_SOURCES}


class KeyRefused(DomainError):
    """The request's key does not authenticate it (answered 401)."""


class MissingKey(KeyRefused):
    pass


class UnknownKey(KeyRefused):
    pass


class RevokedKey(KeyRefused):
    pass


class WrongScope(NotAllowed):
    """The key is valid but may not do this (answered 403)."""


@dataclass(frozen=True)
class ApiKeyView:
    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    sources: tuple[str, ...]
    created_at: datetime
    created_by: str | None  # the admin's e-mail
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def partner(self) -> Partner:
        """What the key may do with permits: its sources, and whether it may go over a limit."""
        return Partner(frozenset(self.sources), OVER_ALLOWANCE in self.scopes)


@dataclass(frozen=True)
class IssuedKey:
    """The key in full (shown once, never stored) and what is stored about it."""

    key: str
    view: ApiKeyView


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _view(row: ApiKey, created_by: str | None) -> ApiKeyView:
    return ApiKeyView(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=tuple(row.scopes or ()),
        sources=tuple(row.sources or ()),
        created_at=row.created_at,
        created_by=created_by,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _clean_scopes(scopes: object) -> list[str]:
    if isinstance(scopes, str):
        chosen = [scopes]
    elif isinstance(scopes, list | tuple | set | frozenset):
        chosen = list(scopes)
    else:
        chosen = []
    if not chosen:
        raise ValidationFailed({"scopes": "choose at least one scope"})
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown:
        raise ValidationFailed({"scopes": "unknown scope " + ", ".join(map(str, unknown))})
    return [s for s in SCOPES if s in chosen]  # de-duplicated, in a stable order


def _clean_sources(sources: object, scopes: list[str]) -> list[str]:
    if isinstance(sources, str):
        chosen = [sources]
    elif isinstance(sources, list | tuple | set | frozenset):
        chosen = list(sources)
    else:
        chosen = []
    unknown = [s for s in chosen if s not in SOURCES]
    if unknown:
        raise ValidationFailed({"sources": "unknown source " + ", ".join(map(str, unknown))})
    if not chosen and WRITE in scopes:
        raise ValidationFailed({"sources": "choose the source(s) whose permits this key records"})
    return [s for s in SOURCES if s in chosen]


def create_key(
    session: Session, name: str | None, scopes: object, actor_id: int | None, sources: object = ()
) -> IssuedKey:
    """A new key; ``sources`` are required with ``permits:write`` (whose permits it records)."""
    cleaned = (name or "").strip()
    errors: dict[str, str] = {}
    if not cleaned or len(cleaned) > NAME_MAX:
        errors["name"] = f"required, at most {NAME_MAX} characters (say who uses the key)"
    chosen: list[str] = []
    try:
        chosen = _clean_scopes(scopes)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    try:
        bound = _clean_sources(sources, chosen)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=cleaned,
        prefix=key[:PREFIX_CHARS],
        key_hash=hash_key(key),
        scopes=chosen,
        sources=bound,
        created_by_id=actor_id,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor_id=actor_id,
        action="api_key.create",
        entity_type="api_key",
        entity_id=str(row.id),
        changes={
            "name": [None, cleaned],
            "prefix": [None, row.prefix],
            "scopes": [None, chosen],
            "sources": [None, bound],
        },
    )
    return IssuedKey(key=key, view=_view(row, _email(session, actor_id)))


def set_sources(session: Session, key_id: int, sources: object, actor_id: int | None) -> ApiKeyView:
    """Bind an existing key to its sources (keys issued before sources existed have none). A
    revoked key stays as it was: it authenticates nothing any more."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound("That API key does not exist.")
    if row.revoked_at is not None:
        raise NotAllowed("That API key is revoked; issue a new one.")
    bound = _clean_sources(sources, list(row.scopes or ()))
    if bound != list(row.sources or ()):
        audit.record(
            session,
            actor_id=actor_id,
            action="api_key.sources",
            entity_type="api_key",
            entity_id=str(row.id),
            changes={"sources": [list(row.sources or ()), bound]},
        )
        row.sources = bound
        session.flush()
    return _view(row, _email(session, row.created_by_id))


def _email(session: Session, user_id: int | None) -> str | None:
    return session.scalar(select(User.email).where(User.id == user_id)) if user_id is not None else None


def list_keys(session: Session) -> list[ApiKeyView]:
    """Active keys first, newest first within each; never the key itself (it is not stored)."""
    rows = session.execute(
        select(ApiKey, User.email)
        .outerjoin(User, User.id == ApiKey.created_by_id)
        .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id.desc())
    )
    return [_view(row, email) for row, email in rows]


def get_key(session: Session, key_id: int) -> ApiKeyView:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound("That API key does not exist.")
    return _view(row, _email(session, row.created_by_id))


def revoke_key(session: Session, key_id: int, actor_id: int | None, now: datetime) -> ApiKeyView:
    """Revoking twice keeps the first revocation's time (and audits once)."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound("That API key does not exist.")
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
        audit.record(
            session,
            actor_id=actor_id,
            action="api_key.revoke",
            entity_type="api_key",
            entity_id=str(row.id),
            changes={"revoked_at": [None, now.isoformat()]},
        )
    return _view(row, _email(session, row.created_by_id))


def authenticate(session: Session, presented: str | None, required_scope: str, now: datetime) -> ApiKeyView:
    """The key's view, or ``MissingKey`` / ``UnknownKey`` / ``RevokedKey`` / ``WrongScope``."""
    if required_scope not in SCOPES:
        raise ValueError(f"unknown scope {required_scope!r}")  # a programming error, not the partner's
    presented = (presented or "").strip()
    if not presented:
        raise MissingKey("an API key is required (Authorization: Bearer <key>)")
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(presented)))
    if row is None:
        raise UnknownKey("this API key is not known")
    if row.revoked_at is not None:
        raise RevokedKey("this API key was revoked")
    if required_scope not in (row.scopes or ()):
        raise WrongScope(f"this API key lacks the {required_scope} scope")
    if row.last_used_at is None or now - row.last_used_at >= USE_RECORD_INTERVAL:
        row.last_used_at = now
        session.flush()
    return _view(row, None)
