"""User administration: search and filters, the account's belongings, audited changes, the
admin guards, and user types with the products they may buy."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard.services import user_admin, users
from dashboard.services.errors import NotAllowed, NotFound, ValidationFailed
from dashboard.services.user_admin import UserChange, UserFilters, UserTypeInput
from models import AuditLog, Lot, PermitKind, PermitProduct, Pricing, Role, User, UserType
from tests.user_admin_helpers import make_owner

TZ = ZoneInfo("America/Toronto")
KEY = b"k" * 32


def ids(page: user_admin.UserPage) -> list[int]:
    return [row.id for row in page.rows]


def test_search_by_name_email_id_number_and_filters(core, session, make_user):
    with core.db.session() as s:
        s.add_all([UserType(code="student", name="Student"), UserType(code="public", name="Public")])
    ana = make_user(
        first_name="Ana",
        last_name="Lopez",
        email="ana@campus.test",
        user_type="student",
        external_id="S1234567",
    )
    bob = make_user(
        Role.OFFICER, first_name="Bob", last_name="Stone", email="bob@campus.test", user_type="public"
    )
    with core.db.session() as s:
        s.get(User, bob.id).is_active = False
        users.create_user(s, email="new@x.test", password="tram lime orbit 42", email_verified=False)
    assert ids(user_admin.search(session, UserFilters(text="lopez"))) == [ana.id]
    assert ids(user_admin.search(session, UserFilters(text="ANA LOPEZ"))) == [ana.id]
    assert ids(user_admin.search(session, UserFilters(text="S12345"))) == [ana.id]
    assert ids(user_admin.search(session, UserFilters(text="bob@"))) == [bob.id]
    assert ids(user_admin.search(session, UserFilters(text="100%_"))) == []  # wildcards are literal
    student = session.scalar(select(UserType.id).where(UserType.code == "student"))
    assert ids(user_admin.search(session, UserFilters(user_type_id=student))) == [ana.id]
    assert ids(user_admin.search(session, UserFilters(role=int(Role.OFFICER)))) == [bob.id]
    assert ids(user_admin.search(session, UserFilters(status="inactive"))) == [bob.id]
    assert len(user_admin.search(session, UserFilters(status="unverified")).rows) == 1
    assert ana.id in ids(user_admin.search(session, UserFilters(status="active")))


def test_search_pages_and_bounds_its_input(core, session, make_user):
    for n in range(30):
        make_user(last_name=f"Person{n:02d}")
    first = user_admin.search(session, UserFilters(), page=1)
    second = user_admin.search(session, UserFilters(), page=2)
    assert (first.total, first.pages, len(first.rows), len(second.rows)) == (30, 2, 25, 5)
    assert user_admin.search(session, UserFilters(), page=99).page == 2
    with pytest.raises(ValidationFailed) as caught:
        user_admin.search(session, UserFilters(text="x" * 101, role=99, status="odd"))
    assert set(caught.value.errors) == {"text", "role", "status"}


def test_detail_lists_what_the_account_owns(core, session, make_user):
    owner = make_owner(core, make_user)
    found = user_admin.detail(session, owner.user_id, datetime.now(UTC), TZ)
    assert [v.plate for v in found.vehicles] == ["ABC 123"]
    assert [p.permit.number for p in found.permits.current] == [owner.permit_number]
    assert [v.ticket_number for v in found.violations.rows] == [owner.ticket_number]
    assert [(p.amount_cents, p.card_last4) for p in found.payments] == [(18500, "4242")]
    with pytest.raises(NotFound):
        user_admin.detail(session, 999_999, datetime.now(UTC), TZ)


def test_an_audited_change_and_deactivation_ends_sessions(core, make_user):
    admin = make_user(Role.ADMIN)
    target = make_user(Role.USER)
    with core.db.session() as s:
        staff = UserType(code="staff", name="Staff")
        s.add(staff)
        s.flush()
        staff_id = staff.id
        stamp = users.session_stamp(s, target.id, KEY)
    change = UserChange(role=int(Role.OFFICER), user_type_id=staff_id, is_special=True, is_active=False)
    with core.db.session() as s:
        changed = user_admin.update_user(s, actor_id=admin.id, user_id=target.id, change=change)
    assert set(changed) == {"role", "user_type_id", "is_special", "is_active"}
    with core.db.session() as s:
        assert users.session_user(s, target.id, stamp, KEY) is None
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "user.update"))
        assert (entry.actor_id, entry.entity_id) == (admin.id, str(target.id))
        assert entry.changes["role"] == ["user", "officer"] and entry.changes["is_active"] == [True, False]
        # re-activating does not bring the old session back
        s.get(User, target.id).is_active = True
    with core.db.session() as s:
        assert users.session_user(s, target.id, stamp, KEY) is None
        same = UserChange(role=int(Role.OFFICER), user_type_id=staff_id, is_special=True, is_active=True)
        assert user_admin.update_user(s, actor_id=admin.id, user_id=target.id, change=same) == []


def test_an_admin_cannot_lock_themselves_or_the_site_out(core, make_user):
    admin = make_user(Role.ADMIN)
    demote = UserChange(role=int(Role.MANAGER), user_type_id=None, is_special=False, is_active=True)
    deactivate = UserChange(role=int(Role.ADMIN), user_type_id=None, is_special=False, is_active=False)
    for change in (demote, deactivate):
        with core.db.session() as s, pytest.raises(NotAllowed, match="your own"):
            user_admin.update_user(s, actor_id=admin.id, user_id=admin.id, change=change)
    other = make_user(Role.ADMIN)
    with core.db.session() as s:
        user_admin.update_user(s, actor_id=admin.id, user_id=other.id, change=demote)
    with core.db.session() as s:
        assert s.get(User, other.id).role == int(Role.MANAGER)
    with core.db.session() as s, pytest.raises(NotAllowed, match="last active admin"):
        # now the only admin: nobody can take that away, not even another (ex-)admin
        user_admin.update_user(s, actor_id=other.id, user_id=admin.id, change=demote)
    with core.db.session() as s, pytest.raises(ValidationFailed):
        user_admin.update_user(
            s, actor_id=admin.id, user_id=other.id, change=UserChange(0, 999_999, False, True)
        )


def test_user_types_with_products_and_self_registration(core, make_user):
    admin = make_user(Role.ADMIN)
    with core.db.session() as s:
        lot = Lot(name="Lot A", capacity=10)
        s.add(lot)
        s.flush()
        a = PermitProduct(
            lot_id=lot.id, kind=PermitKind.STANDARD, name="Term", pricing=Pricing.FIXED, price_cents=100
        )
        b = PermitProduct(
            lot_id=lot.id, kind=PermitKind.STANDARD, name="Night", pricing=Pricing.FIXED, price_cents=50
        )
        s.add_all([a, b])
        s.flush()
        a_id, b_id = a.id, b.id
    with core.db.session() as s:
        type_id = user_admin.save_user_type(
            s, actor_id=admin.id, type_id=None, data=UserTypeInput("Public", "Public", True, (a_id,))
        )
    with core.db.session() as s:
        [row] = user_admin.user_types(s)
        assert (row.code, row.self_registration, row.product_ids) == ("public", True, (a_id,))
        user_admin.save_user_type(
            s, actor_id=admin.id, type_id=type_id, data=UserTypeInput("public", "Visitors", False, (b_id,))
        )
    with core.db.session() as s:
        [row] = user_admin.user_types(s)
        assert (row.name, row.self_registration, row.product_names) == ("Visitors", False, ("Night",))
        actions = list(s.scalars(select(AuditLog.action).where(AuditLog.entity_type == "user_type")))
        assert actions == ["user_type.create", "user_type.update"]
    with core.db.session() as s, pytest.raises(ValidationFailed) as caught:
        user_admin.save_user_type(
            s, actor_id=admin.id, type_id=None, data=UserTypeInput("public", "", False, (999,))
        )
    assert set(caught.value.errors) == {"code", "name", "products"}
