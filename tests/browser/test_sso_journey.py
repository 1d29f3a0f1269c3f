"""Signing in through the institution's IdP in a real browser: the login page's SSO button, the
IdP (pysaml2 behind a local HTTP server, answering with its auto-submitting POST form) and back
to the page the person asked for, with the account made from the IdP's attributes."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page, expect
from werkzeug import Request, Response

from models import LoginMethod, UserType
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
