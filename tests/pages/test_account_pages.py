"""Register, verify, forgot and reset password over HTTP (the browser's callback calls and the
login form's POST), and one callback called directly."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from dashboard.services import email
from models import OutboxMessage, Role, User, UserType
from tests.conftest import PASSWORD
from tests.dash_helpers import callback_entry, dash_post, find_output, outputs_of, press

NEW_PASSWORD = "tram lime orbit 42"


@pytest.fixture
def public_type(core) -> int:
    with core.db.session() as s:
        email.ensure_default_templates(s)
        row = UserType(code="public", name="Public", self_registration=True)
        s.add(row)
        s.flush()
        return row.id


def sent(core, key: str) -> list[OutboxMessage]:
    with core.db.session() as s:
        rows = list(
            s.scalars(
                select(OutboxMessage).where(OutboxMessage.template_key == key).order_by(OutboxMessage.id)
            )
        )
        s.expunge_all()
        return rows


def link_token(message: OutboxMessage, path: str) -> str:
    match = re.search(rf"{re.escape(path)}\?token=([\w-]+)", message.body_text)
    assert match, message.body_text
    return match.group(1)


def form(type_id: int, **more: str) -> dict[str, object]:
    return {
        "register-first": "Robin",
        "register-last": "Quayle",
        "register-email": "robin@example.com",
        "register-type": str(type_id),
        "register-password": NEW_PASSWORD,
        "register-confirm": NEW_PASSWORD,
        **more,
    }


def test_registration_is_closed_without_an_open_user_type(app, client):
    out = outputs_of(dash_post(client, app, find_output(app, "register-type.options"), [0]))
    assert out["register-form"]["hidden"] is True
    assert "cannot be created here" in json.dumps(out["register-status"])


def test_the_types_callback_called_directly_lists_only_open_types(app, core, public_type):
    with core.db.session() as s:
        s.add(UserType(code="staff", name="Staff"))
    guarded = callback_entry(app, find_output(app, "register-type.options"))["callback"].__wrapped__
    with app.test_request_context("/_dash-update-component", method="POST"):
        options, hidden, status = guarded(0)
    assert [o["label"] for o in options] == ["Public"] and hidden is False and status is None


def test_register_verify_and_sign_in_over_http(app, client, core, public_type):
    mismatch = outputs_of(
        press(
            client,
            app,
            "register-status.children@",
            "register-submit",
            form(public_type, **{"register-confirm": "other"}),
        )
    )
    assert "the two passwords differ" in json.dumps(mismatch)
    weak = outputs_of(
        press(
            client,
            app,
            "register-status.children@",
            "register-submit",
            form(public_type, **{"register-password": "password123", "register-confirm": "password123"}),
        )
    )
    assert "most common passwords" in json.dumps(weak) and "register-form" not in weak  # the form stays
    done = outputs_of(press(client, app, "register-status.children@", "register-submit", form(public_type)))
    assert "Check your inbox" in json.dumps(done) and done["register-form"]["hidden"] is True
    [mail] = sent(core, "email-verification")
    assert mail.to_addresses == ["robin@example.com"]

    refused = client.post(
        "/login", data={"email": "robin@example.com", "password": NEW_PASSWORD, "next": "/"}
    )
    assert refused.headers["Location"].startswith("/login?error=unverified")
    page = client.get(refused.headers["Location"])
    assert page.status_code == 200

    verify = find_output(app, "verify-status.children")
    out = outputs_of(dash_post(client, app, verify, [link_token(mail, "/verify")]))
    assert "robin@example.com is confirmed" in json.dumps(out)
    again = outputs_of(dash_post(client, app, verify, [link_token(mail, "/verify")]))
    assert "already been used" in json.dumps(again) and again["verify-resend-form"]["hidden"] is False

    signed_in = client.post(
        "/login", data={"email": "robin@example.com", "password": NEW_PASSWORD, "next": "/"}
    )
    assert signed_in.headers["Location"] == "/"


def test_resend_answers_the_same_for_any_address(app, client, core, public_type):
    press(client, app, "register-status.children@", "register-submit", form(public_type))
    for address in ("robin@example.com", "nobody@example.com"):
        out = outputs_of(
            press(client, app, "verify-resent.children", "verify-resend", {"verify-email": address})
        )
        assert "If an account with this address is waiting" in json.dumps(out)
    assert len(sent(core, "email-verification")) == 2  # the registration's and one resend


def test_forgot_and_reset_end_the_other_sessions(app, core, login_as):
    old = login_as(Role.USER)
    address = old.user.email
    assert old.get("/permits").status_code == 200
    helper = app.test_client()
    answers = [
        json.dumps(
            outputs_of(press(helper, app, "forgot-status.children", "forgot-submit", {"forgot-email": a}))
        )
        for a in (address, "nobody@example.com")
    ]
    assert answers[0] == answers[1] and "If an account uses this address" in answers[0]
    [mail] = sent(core, "password-reset")
    token = link_token(mail, "/password/reset")
    values = {"reset-token": token, "reset-password": NEW_PASSWORD, "reset-confirm": NEW_PASSWORD}
    done = outputs_of(press(helper, app, "reset-status.children", "reset-submit", values))
    assert "signed out" in json.dumps(done)
    assert old.get("/permits").status_code == 302  # the old session is over
    assert (
        helper.post("/login", data={"email": address, "password": PASSWORD})
        .headers["Location"]
        .startswith("/login?error=1")
    )
    assert helper.post("/login", data={"email": address, "password": NEW_PASSWORD}).headers["Location"] == "/"
    reused = outputs_of(press(helper, app, "reset-status.children", "reset-submit", values))
    assert "Ask for a new link" in json.dumps(reused)


def test_the_throttle_stops_a_flood_of_reset_mails(app, core, make_user):
    user = make_user()
    client = app.test_client()
    for _ in range(5):
        press(client, app, "forgot-status.children", "forgot-submit", {"forgot-email": user.email})
    out = json.dumps(
        outputs_of(
            press(client, app, "forgot-status.children", "forgot-submit", {"forgot-email": user.email})
        )
    )
    assert "Too many attempts" in out
    assert len(sent(core, "password-reset")) == 5


def test_wrong_reset_links_are_throttled_per_address(app, core):
    client = app.test_client()
    values = {"reset-token": "forged", "reset-password": NEW_PASSWORD, "reset-confirm": NEW_PASSWORD}
    texts = [
        json.dumps(outputs_of(press(client, app, "reset-status.children", "reset-submit", values)))
        for _ in range(51)
    ]
    assert "not valid" in texts[0] and "Too many attempts" in texts[-1]


def test_a_deactivated_account_cannot_reset_or_sign_in(app, core, make_user):
    user = make_user()
    with core.db.session() as s:
        s.get(User, user.id).is_active = False
    client = app.test_client()
    press(client, app, "forgot-status.children", "forgot-submit", {"forgot-email": user.email})
    assert sent(core, "password-reset") == []


def test_many_forgot_requests_from_one_client_are_capped_but_do_not_lock_logins(app, core, make_user):
    user = make_user()
    client = app.test_client()
    for n in range(30):
        press(client, app, "forgot-status.children", "forgot-submit", {"forgot-email": f"p{n}@example.com"})
    out = outputs_of(
        press(client, app, "forgot-status.children", "forgot-submit", {"forgot-email": user.email})
    )
    assert "Too many attempts" in json.dumps(out)
    login = client.post("/login", data={"email": user.email, "password": PASSWORD, "next": "/"})
    assert login.headers["Location"] == "/"


def test_wrong_links_count_as_failed_logins_from_that_client(app, core, make_user):
    user = make_user()
    client = app.test_client()
    for n in range(50):
        dash_post(client, app, find_output(app, "verify-status.children"), [f"forged-{n}"])
    login = client.post("/login", data={"email": user.email, "password": PASSWORD, "next": "/"})
    assert "error=throttled" in login.headers["Location"]
