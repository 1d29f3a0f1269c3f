"""Login, logout, the session cookie and the gate's redirects."""

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


def test_login_never_redirects_off_site(client, make_user):
    user = make_user(Role.USER)
    for target in ["https://evil.example/", "//evil.example/", "/\\evil.example"]:
        response = client.post("/login", data={"email": user.email, "password": PASSWORD, "next": target})
        assert response.headers["Location"] == "/"


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
    original = app.wsgi_app
    trust_proxies(app, 1)
    try:
        response = app.test_client().post(
            "/login", data={"email": user.email, "password": PASSWORD}, headers=headers
        )
    finally:
        app.wsgi_app = original
    assert response.status_code == 302 and response.headers["Location"] == "/"
