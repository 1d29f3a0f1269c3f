"""API keys: issued once in full, stored only as a hash, refused in four distinct ways, audited;
bound to the permit sources they act for."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dashboard.services import api_keys
from dashboard.services.api_keys import MissingKey, RevokedKey, UnknownKey, WrongScope
from dashboard.services.errors import NotAllowed, NotFound, ValidationFailed
from dashboard.services.permits import Partner
from models import ApiKey, AuditLog, Role

T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)


@pytest.fixture
def admin(make_user):
    return make_user(Role.ADMIN)


def issue(session, admin, scopes=("permits:write",), name="Cale pay stations", sources=("paystation",)):
    issued = api_keys.create_key(session, name, list(scopes), admin.id, list(sources))
    session.commit()
    return issued


def test_a_new_key_is_256_bits_shown_once_and_stored_only_as_its_hash(session, admin):
    issued = issue(session, admin)
    assert issued.key.startswith("pk_") and len(issued.key) >= 3 + 43  # 32 random bytes, base64url
    row = session.scalar(select(ApiKey))
    assert row.key_hash == hashlib.sha256(issued.key.encode()).hexdigest()
    assert issued.key not in (row.prefix, row.name, row.key_hash)
    assert issued.key.startswith(row.prefix) and len(row.prefix) == api_keys.PREFIX_CHARS
    assert issued.view.created_by == admin.email and issued.view.scopes == ("permits:write",)
    assert issue(session, admin).key != issued.key


def test_the_list_never_holds_the_key(session, admin):
    issued = issue(session, admin, scopes=("permits:read", "permits:write"))
    [listed] = api_keys.list_keys(session)
    assert issued.key not in repr(listed)
    assert listed.scopes == ("permits:write", "permits:read")  # stable order
    assert listed.created_by == admin.email and listed.active


@pytest.mark.parametrize(
    ("name", "scopes", "field"),
    [
        ("", ["permits:write"], "name"),
        ("x" * 121, ["permits:write"], "name"),
        ("Cale", [], "scopes"),
        ("Cale", ["permits:delete-everything"], "scopes"),
        ("Cale", None, "scopes"),
    ],
)
def test_name_and_scopes_are_validated(session, admin, name, scopes, field):
    with pytest.raises(ValidationFailed) as caught:
        api_keys.create_key(session, name, scopes, admin.id, ["paystation"])
    assert field in caught.value.errors
    assert session.scalar(select(ApiKey)) is None


def test_authenticate_tells_the_four_refusals_apart(session, admin):
    writer = issue(session, admin, scopes=("permits:write",))
    with pytest.raises(MissingKey):
        api_keys.authenticate(session, None, "permits:write", T0)
    with pytest.raises(MissingKey):
        api_keys.authenticate(session, "  ", "permits:write", T0)
    with pytest.raises(UnknownKey):
        api_keys.authenticate(session, writer.key + "x", "permits:write", T0)
    with pytest.raises(WrongScope):
        api_keys.authenticate(session, writer.key, "permits:read", T0)
    assert api_keys.authenticate(session, writer.key, "permits:write", T0).id == writer.view.id
    api_keys.revoke_key(session, writer.view.id, admin.id, T0)
    with pytest.raises(RevokedKey):
        api_keys.authenticate(session, writer.key, "permits:write", T0)


def test_last_use_is_recorded_at_most_once_a_minute(session, admin):
    issued = issue(session, admin)
    api_keys.authenticate(session, issued.key, "permits:write", T0)
    api_keys.authenticate(session, issued.key, "permits:write", T0 + timedelta(seconds=30))
    assert session.get(ApiKey, issued.view.id).last_used_at == T0
    api_keys.authenticate(session, issued.key, "permits:write", T0 + timedelta(seconds=61))
    assert session.get(ApiKey, issued.view.id).last_used_at == T0 + timedelta(seconds=61)


def test_create_and_revoke_are_audited_without_the_key(session, admin):
    issued = issue(session, admin)
    api_keys.revoke_key(session, issued.view.id, admin.id, T0)
    again = api_keys.revoke_key(session, issued.view.id, admin.id, T0 + timedelta(hours=1))
    session.commit()
    assert again.revoked_at == T0 and not again.active
    entries = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
    assert [e.action for e in entries] == ["api_key.create", "api_key.revoke"]
    assert all(e.actor_id == admin.id and e.entity_id == str(issued.view.id) for e in entries)
    assert issued.key not in repr([e.changes for e in entries])
    assert entries[0].changes["scopes"] == [None, ["permits:write"]]
    assert entries[0].changes["sources"] == [None, ["paystation"]]


def test_revoking_an_unknown_key_is_not_found(session, admin):
    with pytest.raises(NotFound):
        api_keys.revoke_key(session, 999, admin.id, T0)


def test_get_key_shows_one_key(session, admin):
    issued = issue(session, admin)
    assert api_keys.get_key(session, issued.view.id) == issued.view
    with pytest.raises(NotFound):
        api_keys.get_key(session, issued.view.id + 1)


@pytest.mark.parametrize(
    ("scopes", "sources", "message"),
    [
        (["permits:write"], [], "choose the source(s)"),
        (["permits:write"], ["portal"], "unknown source portal"),
        (["permits:read"], ["parkmobile"], "unknown source parkmobile"),  # pulled, never pushed
    ],
)
def test_a_writing_key_needs_its_sources(session, admin, scopes, sources, message):
    with pytest.raises(ValidationFailed) as caught:
        api_keys.create_key(session, "Cale", scopes, admin.id, sources)
    assert message in caught.value.errors["sources"]
    assert session.scalar(select(ApiKey)) is None


def test_a_key_is_the_partner_of_its_sources(session, admin):
    reader = issue(session, admin, scopes=("permits:read",), sources=())
    assert reader.view.partner == Partner(frozenset())
    hotspot = issue(session, admin, scopes=("permits:write", "permits:over-allowance"), sources=("hotspot",))
    assert hotspot.view.partner == Partner(frozenset({"hotspot"}), over_allowance=True)
    assert hotspot.view.partner.default_source("paystation") == "hotspot"
    both = issue(session, admin, sources=("hotspot", "paystation"))
    assert both.view.sources == ("paystation", "hotspot")  # stable order
    assert both.view.partner.default_source("paystation") == "paystation"
    assert both.view.partner.default_source("api") == "api"  # two sources: the call's default


def test_an_admin_binds_an_existing_key_to_its_sources(session, admin):
    """Keys from before sources existed act for none (the migration's default) until bound."""
    issued = issue(session, admin)
    session.get(ApiKey, issued.view.id).sources = []
    session.commit()
    bound = api_keys.set_sources(session, issued.view.id, ["hotspot", "paystation"], admin.id)
    session.commit()
    assert bound.sources == ("paystation", "hotspot")
    assert api_keys.authenticate(session, issued.key, "permits:write", T0).sources == bound.sources
    last = session.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first()
    assert last.action == "api_key.sources" and last.changes == {"sources": [[], ["paystation", "hotspot"]]}
    with pytest.raises(ValidationFailed):
        api_keys.set_sources(session, issued.view.id, [], admin.id)  # it records permits
    api_keys.revoke_key(session, issued.view.id, admin.id, T0)
    with pytest.raises(NotAllowed):
        api_keys.set_sources(session, issued.view.id, ["api"], admin.id)
    with pytest.raises(NotFound):
        api_keys.set_sources(session, 999, ["api"], admin.id)
