"""Users, one user and user types over HTTP, as an admin: search, the belongings shown, an audited
save, deactivation signing the user out, the self-lockout guard, and a user type saved."""

from __future__ import annotations

import json

from sqlalchemy import select

from models import AuditLog, Role, User, UserType
from tests.dash_helpers import dash_post, find_output, outputs_of, press
from tests.user_admin_helpers import make_owner


def test_search_finds_by_id_number_and_links_the_user(app, login_as, make_user):
    admin = login_as(Role.ADMIN)
    target = make_user(first_name="Ana", last_name="Lopez", external_id="S7654321")
    out = outputs_of(
        dash_post(admin, app, find_output(app, "users-table.children"), ["7654321", "", "", "", 1])
    )
    text = json.dumps(out["users-table"])
    assert f"/admin/users/{target.id}" in text and "Ana Lopez" in text and admin.user.email not in text
    assert out["users-range"]["children"] == "1–1 of 1"
    bad = outputs_of(
        dash_post(admin, app, find_output(app, "users-table.children"), ["x" * 101, "", "", "", 1])
    )
    assert "at most 100 characters" in json.dumps(bad["users-error"])


def test_the_user_page_shows_belongings(app, core, login_as, make_user):
    admin = login_as(Role.ADMIN)
    owner = make_owner(core, make_user, first_name="Olive", last_name="Owner")
    out = outputs_of(dash_post(admin, app, find_output(app, "user-form.hidden"), [str(owner.user_id)]))
    text = json.dumps(out)
    assert "Olive Owner" in text and "ABC 123" in text and owner.permit_number in text
    assert owner.ticket_number in text and "4242" in text
    assert out["user-form"]["hidden"] is False and out["user-active"]["value"] is True
    assert "bounced" not in text
    with core.db.session() as s:
        user = s.get(User, owner.user_id)
        user.email_bounced_at, user.email_bounce_reason = user.created_at, "550 5.1.1 mailbox unavailable"
    again = json.dumps(
        outputs_of(dash_post(admin, app, find_output(app, "user-form.hidden"), [str(owner.user_id)]))
    )
    assert "mail to this address bounced (550 5.1.1 mailbox unavailable): see Email Outbox" in again


def test_deactivating_signs_the_user_out_and_is_audited(app, core, login_as):
    admin = login_as(Role.ADMIN)
    victim = login_as(Role.USER)
    assert victim.get("/permits").status_code == 200
    values = {"user-id": str(victim.user.id), "user-role": str(int(Role.USER)), "user-type": "",
              "user-special": True, "user-active": False}  # fmt: skip
    out = outputs_of(press(admin, app, "user-status.children", "user-save", values))
    assert "signed out everywhere" in json.dumps(out)
    assert victim.get("/permits").status_code == 302
    with core.db.session() as s:
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "user.update"))
        assert entry.changes == {"is_special": [False, True], "is_active": [True, False]}
        assert s.get(User, victim.user.id).is_special is True


def test_an_admin_cannot_demote_themselves(app, core, login_as):
    admin = login_as(Role.ADMIN)
    values = {"user-id": str(admin.user.id), "user-role": str(int(Role.MANAGER)), "user-type": "",
              "user-special": False, "user-active": True}  # fmt: skip
    out = outputs_of(press(admin, app, "user-status.children", "user-save", values))
    assert "cannot deactivate your own account or remove your own admin role" in json.dumps(out)
    with core.db.session() as s:
        assert s.get(User, admin.user.id).role == int(Role.ADMIN)


def test_a_user_type_is_saved_with_self_registration(app, core, login_as):
    admin = login_as(Role.ADMIN)
    values = {"utypes-which": "new", "utypes-code": "public", "utypes-name": "Public",
              "utypes-products": [], "utypes-self-register": True}  # fmt: skip
    out = outputs_of(press(admin, app, "utypes-status.children", "utypes-save", values))
    assert "Saved." in json.dumps(out) and "Public" in json.dumps(out["utypes-table"])
    with core.db.session() as s:
        assert s.scalar(select(UserType.self_registration).where(UserType.code == "public")) is True
    refused = outputs_of(
        press(admin, app, "utypes-status.children", "utypes-save", {**values, "utypes-name": ""})
    )
    assert "Name: is required" in json.dumps(refused)
