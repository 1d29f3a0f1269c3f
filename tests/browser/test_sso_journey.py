"""Signing in through the institution's IdP in a real browser: the login page's SSO button, the
IdP (pysaml2 behind a local HTTP server, answering with its auto-submitting POST form) and back
to the page the person asked for, with the account made from the IdP's attributes."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page, expect
from werkzeug import Request, Response

from models import LoginMethod, Role, UserType
from tests.browser.signing import sign_in
from tests.saml_idp import AFFILIATION, GIVEN, MAIL, NUMBER, SURNAME, TestIdp, configure, tamper

pytestmark = pytest.mark.browser

ANN = {
    MAIL: ["ann.lee@campus.test"],
    GIVEN: ["Ann"],
    SURNAME: ["Lee"],
    NUMBER: ["S7654321"],
    AFFILIATION: ["student"],
}


@pytest.fixture
def idp(tmp_path, core, live_server, httpserver) -> TestIdp:
    with core.db.session() as session:
        session.add(UserType(code="student", name="Student", login_method=LoginMethod.SSO))
        session.add(UserType(code="staff", name="Staff", login_method=LoginMethod.SSO))
    provider = TestIdp(tmp_path, live_server, entity_id=httpserver.url_for("/idp"))
    configure(core, provider)
    provider.trust(requests.get(f"{live_server}/sso/metadata", timeout=10).text)
    return provider


def serve_idp(httpserver, idp: TestIdp, live_server: str, identity: dict, *, forged: bool = False) -> None:
    """The IdP's login endpoint: the person is taken as signed in there; it answers at once."""

    def answer(request: Request) -> Response:
        fields = idp.answer(request.url, identity)
        if forged:
            fields = tamper(fields, "ann.lee@campus.test", "dean@campus.test")
        return Response(idp.post_form(fields, f"{live_server}/sso/acs"), content_type="text/html")

    httpserver.expect_request("/sso").respond_with_handler(answer)


def test_a_student_signs_in_through_the_idp_and_lands_where_they_were_going(
    page: Page, live_server, idp, httpserver
):
    serve_idp(httpserver, idp, live_server, ANN)
    page.goto(f"{live_server}/permits")
    expect(page).to_have_url(f"{live_server}/login?next=%2Fpermits")
    page.get_by_role("link", name="Sign in with Campus SSO").click()
    expect(page).to_have_url(f"{live_server}/permits")
    expect(page.get_by_text("Ann Lee (User)")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_a_tampered_answer_shows_why_it_was_refused(page: Page, live_server, idp, httpserver):
    serve_idp(httpserver, idp, live_server, ANN, forged=True)
    page.goto(f"{live_server}/login")
    page.get_by_role("link", name="Sign in with Campus SSO").click()
    expect(page.locator("#sso-refused-reason")).to_contain_text("signature does not match")
    page.get_by_role("link", name="Back to the login page").click()
    expect(page.get_by_role("link", name="Sign in with Campus SSO")).to_be_visible()


def test_an_admin_sets_up_sso_from_pasted_metadata(page: Page, live_server, core, make_user, tmp_path):
    with core.db.session() as session:
        session.add(UserType(code="student", name="Student", login_method=LoginMethod.LOCAL))
    provider = TestIdp(tmp_path, live_server)
    admin = make_user(Role.ADMIN)
    sign_in(page, live_server, admin.email, "/admin/sso")
    expect(page.get_by_role("heading", name="Single Sign-On")).to_be_visible()
    expect(page.locator("#sso-sp-key-note")).to_contain_text("No private key yet")
    page.fill("#sso-metadata-xml", provider.metadata())
    page.get_by_role("button", name="Read the pasted metadata").click()
    expect(page.locator("#sso-metadata-result")).to_contain_text(provider.entity_id)
    expect(page.locator("#sso-idp-sso-url")).to_have_value(provider.sso_url)
    page.fill("#sso-institution-name", "Campus")
    page.get_by_label("Single sign-on enabled").check()
    page.get_by_label("Generate a new key pair when saving").check()
    page.get_by_label("Student", exact=True).select_option("sso")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#sso-result")).to_contain_text("Saved")
    expect(page.locator("#sso-sp-key-note")).to_contain_text("A private key is stored")
    metadata = requests.get(f"{live_server}/sso/metadata", timeout=10)
    assert metadata.status_code == 200 and "AssertionConsumerService" in metadata.text
    page.get_by_role("button", name="Log out").click()
    page.goto(f"{live_server}/login")
    expect(page.get_by_role("link", name="Sign in with Campus SSO")).to_be_visible()
