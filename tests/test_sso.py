"""SAML single sign-on end to end against a real IdP (pysaml2, ``tests/saml_idp.py``): the
AuthnRequest ParkOps sends, the IdP's signed answer POSTed to the ACS as a browser would (from the
IdP's origin), the account made or synced; and every answer that must be refused, refused with a
page that says why and a log line."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from sqlalchemy import select

from dashboard.auth import STAMP
from dashboard.services import sso
from models import AuthSource, LoginMethod, Role, User, UserType
from tests.conftest import PASSWORD
from tests.saml_idp import (
    AFFILIATION,
    ENTITLEMENT,
    GIVEN,
    MAIL,
    NUMBER,
    OTHER_SP,
    SPECIAL,
    SURNAME,
    TestIdp,
    configure,
    tamper,
    write_keypair,
)

IDP_ORIGIN = {"Origin": "https://idp.campus.test"}
BASE = "http://localhost"
ANN = {
    MAIL: ["ann.lee@campus.test"],
    GIVEN: ["Ann"],
    SURNAME: ["Lee"],
    NUMBER: ["S1234567"],
    AFFILIATION: ["student"],
    ENTITLEMENT: [SPECIAL],
}


@pytest.fixture
def user_types(core) -> None:
    with core.db.session() as session:
        session.add_all(
            [
                UserType(code="student", name="Student", login_method=LoginMethod.SSO),
                UserType(code="staff", name="Staff", login_method=LoginMethod.SSO),
                UserType(code="public", name="Public", login_method=LoginMethod.LOCAL),
            ]
        )


@pytest.fixture
def idp(tmp_path, core, client, user_types) -> TestIdp:
    provider = TestIdp(tmp_path, BASE)
    configure(core, provider)
    metadata = client.get("/sso/metadata")
    assert metadata.status_code == 200
    provider.trust(metadata.get_data(as_text=True))
    return provider


def start(client, target: str = "/permits") -> str:
    response = client.get(f"/sso/login?next={target}")
    assert response.status_code == 302
    return response.headers["Location"]


def signed_in_as(client) -> str | None:
    with client.session_transaction() as flask_session:
        return flask_session.get("_user_id") if flask_session.get(STAMP) else None


def account(core, email: str) -> User | None:
    with core.db.session() as session:
        user = session.scalar(select(User).where(User.email == email))
        if user is not None:
            user.type_code = user.user_type.code if user.user_type_id else None  # type: ignore[attr-defined]
            session.expunge(user)
        return user


def test_the_login_redirect_carries_a_signed_sha256_authn_request(idp, client):
    location = start(client)
    assert location.startswith(idp.sso_url + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"]
    assert query["RelayState"] == ["/permits"]
    assert "Signature" in query


def test_first_login_creates_the_account_from_the_attributes(idp, client, core, caplog):
    fields = idp.answer(start(client), ANN)
    with caplog.at_level(logging.INFO, logger="dashboard"):
        response = client.post("/sso/acs", data=fields, headers=IDP_ORIGIN)
    assert response.status_code == 302
    assert response.headers["Location"] == "/permits"
    user = account(core, "ann.lee@campus.test")
    assert user is not None
    assert (user.first_name, user.last_name, user.external_id) == ("Ann", "Lee", "S1234567")
    assert user.type_code == "student"  # type: ignore[attr-defined]
    assert user.is_special is True
    assert user.auth_source == AuthSource.SAML and user.password_hash is None
    assert user.role == Role.USER
    assert signed_in_as(client) == str(user.id)
    assert "SSO created account" in caplog.text
    assert client.get("/permits").status_code == 200


def test_every_login_syncs_the_attributes(idp, client, core):
    client.post("/sso/acs", data=idp.answer(start(client), ANN), headers=IDP_ORIGIN)
    changed = {**ANN, SURNAME: ["Lee-Park"], AFFILIATION: ["faculty"], ENTITLEMENT: ["something-else"]}
    again = core.dash.server.test_client()
    response = again.post("/sso/acs", data=idp.answer(start(again), changed), headers=IDP_ORIGIN)
    assert response.status_code == 302
    user = account(core, "ann.lee@campus.test")
    assert user.last_name == "Lee-Park"
    assert user.type_code == "staff"  # type: ignore[attr-defined]
    assert user.is_special is False


def test_one_time_sync_keeps_what_the_first_login_brought(idp, client, core):
    configure(core, idp, sync_every_login=False)
    client.post("/sso/acs", data=idp.answer(start(client), ANN), headers=IDP_ORIGIN)
    changed = {**ANN, SURNAME: ["Lee-Park"]}
    response = client.post("/sso/acs", data=idp.answer(start(client), changed), headers=IDP_ORIGIN)
    assert response.status_code == 302
    assert account(core, "ann.lee@campus.test").last_name == "Lee"


def test_the_account_is_found_by_its_number_when_the_email_changes(idp, client, core):
    client.post("/sso/acs", data=idp.answer(start(client), ANN), headers=IDP_ORIGIN)
    moved = {**ANN, MAIL: ["ann.park@campus.test"]}
    client.post("/sso/acs", data=idp.answer(start(client), moved), headers=IDP_ORIGIN)
    with core.db.session() as session:
        emails = session.scalars(select(User.email).where(User.external_id == "S1234567")).all()
    assert emails == ["ann.park@campus.test"]


def refused(response, caplog, code: str, words: str) -> None:
    page = response.get_data(as_text=True)
    assert response.status_code == 403
    assert words in page
    assert "Back to the login page" in page
    assert f"SSO refused ({code})" in caplog.text


def test_without_just_in_time_creation_a_new_person_is_refused(idp, client, core, caplog):
    configure(core, idp, jit_create=False)
    with caplog.at_level(logging.WARNING):
        response = client.post("/sso/acs", data=idp.answer(start(client), ANN), headers=IDP_ORIGIN)
    refused(response, caplog, "no_account", "no account on this site yet")
    assert account(core, "ann.lee@campus.test") is None
    assert signed_in_as(client) is None


def test_an_unsigned_response_is_refused(idp, client, core, caplog):
    with caplog.at_level(logging.WARNING):
        response = client.post(
            "/sso/acs", data=idp.answer(start(client), ANN, signed=False), headers=IDP_ORIGIN
        )
    refused(response, caplog, "unsigned", "was not signed")
    assert account(core, "ann.lee@campus.test") is None


def test_a_tampered_response_is_refused(idp, client, core, caplog):
    fields = tamper(idp.answer(start(client), ANN), "ann.lee@campus.test", "dean@campus.test")
    with caplog.at_level(logging.WARNING):
        response = client.post("/sso/acs", data=fields, headers=IDP_ORIGIN)
    refused(response, caplog, "tampered", "signature does not match")
    assert account(core, "dean@campus.test") is None
    assert signed_in_as(client) is None


def test_an_expired_response_is_refused(idp, client, core, caplog, monkeypatch):
    fields = idp.answer(start(client), ANN)
    later = OneLogin_Saml2_Utils.now() + 3600  # the answer arrives an hour late (5 min lifetime)
    monkeypatch.setattr(OneLogin_Saml2_Utils, "now", staticmethod(lambda: later))
    with caplog.at_level(logging.WARNING):
        response = client.post("/sso/acs", data=fields, headers=IDP_ORIGIN)
    refused(response, caplog, "expired", "has expired")
    assert account(core, "ann.lee@campus.test") is None


def test_the_clock_skew_setting_tolerates_a_slow_clock(idp, client, core, monkeypatch):
    """NotBefore is the IdP's "now": an SP clock 60 s behind accepts it only within the skew."""
    fields = idp.answer(start(client), ANN)
    behind = OneLogin_Saml2_Utils.now() - 60
    monkeypatch.setattr(OneLogin_Saml2_Utils, "now", staticmethod(lambda: behind))
    configure(core, idp, clock_skew_seconds=10)
    assert client.post("/sso/acs", data=fields).status_code == 403
    fields = idp.answer(start(client), ANN)
    configure(core, idp, clock_skew_seconds=120)
    assert client.post("/sso/acs", data=fields).status_code == 302


def test_a_sha1_signed_response_is_refused(idp, client, core, caplog):
    with caplog.at_level(logging.WARNING):
        response = client.post("/sso/acs", data=idp.answer(start(client), ANN, sha1=True), headers=IDP_ORIGIN)
    refused(response, caplog, "weak_signature", "weak signature (SHA-1)")
    assert account(core, "ann.lee@campus.test") is None


def test_a_response_for_another_sp_is_refused(idp, client, core, caplog):
    fields = idp.answer(start(client), ANN, audience=OTHER_SP)
    with caplog.at_level(logging.WARNING):
        response = client.post("/sso/acs", data=fields, headers=IDP_ORIGIN)
    refused(response, caplog, "wrong_audience", "meant for another site")
    assert account(core, "ann.lee@campus.test") is None


def test_a_replayed_response_is_refused(idp, client, core, caplog, app):
    fields = idp.answer(start(client), ANN)
    assert client.post("/sso/acs", data=fields, headers=IDP_ORIGIN).status_code == 302
    attacker = app.test_client()
    with caplog.at_level(logging.WARNING):
        response = attacker.post("/sso/acs", data=fields, headers=IDP_ORIGIN)
    refused(response, caplog, "replayed", "already used")
    assert signed_in_as(attacker) is None


def test_a_response_to_a_request_this_site_never_sent_is_refused(idp, client, core, caplog):
    """An IdP-initiated (unsolicited) answer, or one for a request forged elsewhere."""
    with core.db.session() as session:
        config = sso.load(session)
        settings = sso.onelogin_settings(config, BASE, sso._private_key(session, core.secrets))  # noqa: SLF001
    request = {"https": "off", "http_host": "localhost", "script_name": "/", "get_data": {}, "post_data": {}}
    forged_login = OneLogin_Saml2_Auth(request, old_settings=settings).login()
    with caplog.at_level(logging.WARNING):
        response = client.post("/sso/acs", data=idp.answer(forged_login, ANN), headers=IDP_ORIGIN)
    refused(response, caplog, "unknown_request", "does not match a sign-in started on this site")


def test_an_idp_cannot_take_over_a_local_admin_account(idp, client, core, make_user, caplog):
    admin = make_user(Role.ADMIN)
    with caplog.at_level(logging.WARNING):
        response = client.post(
            "/sso/acs", data=idp.answer(start(client), {**ANN, MAIL: [admin.email]}), headers=IDP_ORIGIN
        )
    refused(response, caplog, "local_account", "signs in with its password")
    assert signed_in_as(client) is None


def test_certificate_rollover_trusts_the_next_certificate(idp, client, core, tmp_path):
    _key, _cert, old_cert = write_keypair(tmp_path, "old-idp")
    configure(core, idp, idp_cert=old_cert, idp_cert_next=idp.cert)
    response = client.post("/sso/acs", data=idp.answer(start(client), ANN), headers=IDP_ORIGIN)
    assert response.status_code == 302
    configure(core, idp, idp_cert=old_cert, idp_cert_next="")
    assert client.post("/sso/acs", data=idp.answer(start(client), ANN)).status_code == 403


def test_next_is_kept_only_as_a_local_path(idp, client):
    location = client.get("/sso/login?next=//evil.example/x").headers["Location"]
    assert parse_qs(urlsplit(location).query)["RelayState"] == ["/"]


def test_sso_is_refused_with_a_page_when_it_is_not_set_up(client, caplog):
    with caplog.at_level(logging.WARNING):
        response = client.get("/sso/login")
    assert response.status_code == 503
    assert "not set up" in response.get_data(as_text=True)
    assert "SSO refused (not_configured)" in caplog.text


def test_an_sso_only_user_type_cannot_use_a_password(idp, client, make_user, caplog):
    student = make_user(Role.USER, user_type="student")
    with caplog.at_level(logging.INFO):
        response = client.post("/login", data={"email": student.email, "password": PASSWORD, "next": "/"})
    assert response.status_code == 302
    assert "error=sso" in response.headers["Location"]
    assert "password login refused for SSO-only account" in caplog.text
    assert signed_in_as(client) is None
    public = make_user(Role.USER, user_type="public")
    response = client.post("/login", data={"email": public.email, "password": PASSWORD, "next": "/"})
    assert response.headers["Location"] == "/"


def test_login_options_follow_the_user_types(idp, core):
    with core.db.session() as session:
        options = sso.login_options(session)
        assert (options.sso, options.institution_name, options.password) == (True, "Campus", True)
        sso.set_login_methods(session, {"public": "sso"}, None)
        assert sso.login_options(session).password is False
    configure(core, idp, enabled=False)
    with core.db.session() as session:
        assert sso.login_options(session) == sso.LoginOptions(
            sso=False, institution_name="Campus", password=True
        )


def sign_in(idp, client) -> None:
    assert client.post("/sso/acs", data=idp.answer(start(client), ANN), headers=IDP_ORIGIN).status_code == 302
    assert signed_in_as(client) is not None


def test_idp_initiated_single_logout_ends_the_session(idp, client, app):
    sign_in(idp, client)
    with client.session_transaction() as flask_session:
        copied = dict(flask_session)
    location = idp.logout_request(f"{BASE}/sso/sls", "ann.lee@campus.test")
    response = client.get(location.removeprefix(BASE))
    assert response.status_code == 302
    back = response.headers["Location"]
    assert back.startswith(idp.slo_url + "?") and "SAMLResponse=" in back and "Signature=" in back
    assert signed_in_as(client) is None
    # A copy of the old session cookie is dead too (the account's sessions ended on the server).
    thief = app.test_client()
    with thief.session_transaction() as flask_session:
        flask_session.update(copied)
    assert thief.get("/permits").status_code == 302


def test_an_unsigned_logout_request_is_refused(idp, client, caplog):
    sign_in(idp, client)
    location = idp.logout_request(f"{BASE}/sso/sls", "ann.lee@campus.test", signed=False)
    with caplog.at_level(logging.WARNING):
        response = client.get(location.removeprefix(BASE))
    refused(response, caplog, "unsigned", "logout message was not signed")
    assert signed_in_as(client) is not None


def test_logging_out_after_sso_also_logs_out_at_the_idp(idp, client):
    sign_in(idp, client)
    response = client.post("/logout")
    assert response.status_code == 302
    to_idp = response.headers["Location"]
    assert to_idp.startswith(idp.slo_url + "?") and "SAMLRequest=" in to_idp
    assert signed_in_as(client) is None
    back = client.get(idp.logout_answer(to_idp).removeprefix(BASE))
    assert back.status_code == 302 and back.headers["Location"] == "/"
    replayed = client.get(idp.logout_answer(to_idp).removeprefix(BASE))
    assert replayed.status_code == 403


def test_a_password_login_logs_out_locally_only(idp, client, make_user):
    user = make_user(Role.USER, user_type="public")
    client.post("/login", data={"email": user.email, "password": PASSWORD, "next": "/"})
    assert client.post("/logout").headers["Location"] == "/"
