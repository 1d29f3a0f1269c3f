"""Login, logout, the session cookie and the gate's redirects."""

from urllib.parse import parse_qs, quote, urlsplit

import pytest

from models import Role
from tests.conftest import PASSWORD


def test_login_sets_hardened_session_cookie(client, make_user):
    user = make_user(Role.USER)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "next": "/"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(client, make_user):
    user = make_user(Role.USER)
    response = client.post("/login", data={"email": user.email, "password": "nope-nope-nope", "next": "/x"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?error=1")
    unknown = client.post("/login", data={"email": "nobody@campus.test", "password": "whatever-123"})
    assert unknown.headers["Location"].startswith("/login?error=1")


OFF_SITE = [
    "https://evil.example/",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example",
    "\\/evil.example",
    "/\t/evil.example",  # browsers drop tabs and newlines anywhere in a URL: //evil.example
    "/\t\t/evil.example",
    "/\t\\evil.example",
    "/\r/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    " //evil.example",  # ... and leading or trailing spaces and control characters
    "\x00//evil.example",
    "\x1f/\t/evil.example",
    "//evil.example\x7f",
    "%2f%2fevil.example",
    "https:evil.example",
    "https:/evil.example",
    "javascript:alert(document.cookie)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "evil.example",
    "",
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_login_never_redirects_off_site(client, make_user, target):
    """Whatever ``next`` holds, a successful login lands on a path of this site, never a 500."""
    user = make_user(Role.USER)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/%09/evil.example", "/%0d/evil.example", "/%0a/evil.example"])
def test_login_with_an_encoded_control_character_in_next_stays_on_site(app, make_user, target):
    """The issue's payloads exactly as a link carries them: the login page's form echoes the query's
    ``next`` (decoded once by the browser), and the POST must not redirect off-site or fail."""
    user = make_user(Role.USER)
    client = app.test_client()
    body = f"email={quote(user.email)}&password={quote(PASSWORD)}&next={target}"
    response = client.post("/login", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    failed = client.post(
        "/login",
        data=f"email={quote(user.email)}&password=wrong-wrong-wrong&next={target}",
        content_type="application/x-www-form-urlencoded",
    )
    assert failed.status_code == 302
    assert parse_qs(urlsplit(failed.headers["Location"]).query)["next"] == ["/"]


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("/admin/settings", "/admin/settings"),
        ("/lot-groups/3?tab=lots#map", "/lot-groups/3?tab=lots#map"),
        ("/%2f%2fevil.example", "/%2f%2fevil.example"),  # a path of this site, not a host
        ("/p/a\tb", "/p/ab"),  # what the browser would have asked for
        ("  /permits  ", "/permits"),
    ],
)
def test_login_lands_on_the_same_site_path_asked_for(client, make_user, target, landing):
    user = make_user(Role.USER)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == landing


def test_cross_site_post_is_refused(client, make_user):
    user = make_user(Role.USER)
    response = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


def test_logout_ends_the_session(login_as):
    client = login_as(Role.ADMIN)
    assert client.post("/logout").status_code == 302
    assert client.get("/admin/settings").status_code == 302


def test_passwords_are_stored_hashed(session, make_user):
    from models import User

    user = make_user(Role.USER)
    stored = session.get(User, user.id).password_hash
    assert PASSWORD not in stored
    assert stored.startswith("scrypt:")


def test_behind_a_proxy_the_forwarded_host_counts_as_same_origin(app, make_user):
    """With PARKOPS_PROXY_HOPS the browser's Origin (the public host) matches the forwarded host."""
    from dashboard.app import trust_proxies

    user = make_user(Role.USER)
    headers = {"Origin": "https://parking.example.edu", "X-Forwarded-Host": "parking.example.edu"}
    direct = app.test_client().post(
        "/login", data={"email": user.email, "password": PASSWORD}, headers=headers
    )
    assert direct.status_code == 403  # without trusted proxies the forwarded host is ignored
    original, trusted = app.wsgi_app, app.config["TRUSTED_HOSTS"]
    trust_proxies(app, 1)
    app.config["TRUSTED_HOSTS"] = [*trusted, "parking.example.edu"]  # its PARKOPS_BASE_URL's host
    try:
        response = app.test_client().post(
            "/login", data={"email": user.email, "password": PASSWORD}, headers=headers
        )
    finally:
        app.wsgi_app, app.config["TRUSTED_HOSTS"] = original, trusted
    assert response.status_code == 302 and response.headers["Location"] == "/"
