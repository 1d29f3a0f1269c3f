"""Login, logout, the session cookie and the gate's redirects."""

import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, quote, urlsplit

import dash
import pytest

from dashboard.services import throttle
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


# --- guessing passwords (issue 9, item 22) -----------------------------------------------------------


def _login(client, email, password, address="192.0.2.10"):
    return client.post(
        "/login",
        data={"email": email, "password": password, "next": "/permits"},
        environ_base={"REMOTE_ADDR": address},
    )


def _query(response) -> dict[str, list[str]]:
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["Location"]).query)


def test_guessing_a_password_is_stopped_after_ten_failures(app, core, make_user, caplog):
    user = make_user(Role.USER)
    client = app.test_client()
    answers = [_query(_login(client, user.email, f"guess-number-{n}"))["error"] for n in range(10)]
    assert answers == [["1"]] * 9 + [["throttled"]]
    locked = _query(_login(client, user.email, PASSWORD))
    assert locked["error"] == ["throttled"] and locked["retry"] == ["15"]
    assert client.get("/permits").status_code == 302  # the right password did not log in
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(f"too many failed logins: account {user.email!r} locked for 15 minutes" in w for w in warnings)
    # Bounded: every counter expires within the 15-minute window, so the lock ends by itself.
    keys = core.redis.keys(f"{throttle.KEY_PREFIX}*")
    assert keys and all(0 < core.redis.ttl(key) <= 15 * 60 for key in keys)


def test_the_account_lock_uses_the_email_as_looked_up(app, make_user):
    user = make_user(Role.USER)
    client = app.test_client()
    for n in range(10):
        _login(client, f"  {user.email.upper()} " if n % 2 else user.email, f"guess-{n}")
    assert _query(_login(client, user.email, PASSWORD))["error"] == ["throttled"]


def test_a_locked_account_does_not_lock_others_at_the_same_address(app, make_user):
    victim, other = make_user(Role.USER), make_user(Role.USER)
    client = app.test_client()
    for n in range(10):
        _login(client, victim.email, f"guess-{n}")
    response = _login(app.test_client(), other.email, PASSWORD)
    assert response.headers["Location"] == "/permits"


def test_guessing_across_accounts_from_one_address_is_stopped(app, make_user, monkeypatch, caplog):
    """The per-address limit (50 in production; 5 here to keep the test short) stops a guesser who
    tries one password on many accounts; other addresses are not affected, and logging in to an
    account of one's own does not clear the address's count."""
    monkeypatch.setattr(throttle, "LOGIN_ADDRESS", throttle.Limit("login-address", 5, 15 * 60))
    own, victim = make_user(Role.USER), make_user(Role.USER)
    client = app.test_client()
    for n in range(4):
        assert _query(_login(client, f"someone{n}@campus.test", "Winter2026!"))["error"] == ["1"]
    assert _login(app.test_client(), own.email, PASSWORD).headers["Location"] == "/permits"
    assert _query(_login(client, "someone4@campus.test", "Winter2026!"))["error"] == ["throttled"]
    assert any("too many failed logins: address locked" in r.getMessage() for r in caplog.records)
    assert _query(_login(app.test_client(), victim.email, PASSWORD))["error"] == ["throttled"]
    elsewhere = _login(app.test_client(), victim.email, PASSWORD, address="198.51.100.7")
    assert elsewhere.headers["Location"] == "/permits"


def test_guesses_sent_at_once_get_no_more_password_checks_than_the_limit(app, make_user):
    user = make_user(Role.USER)

    def guess(n: int) -> list[str]:
        return _query(_login(app.test_client(), user.email, f"parallel-guess-{n}"))["error"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(guess, range(30)))
    assert answers.count(["1"]) == 9 and answers.count(["throttled"]) == 21


def test_the_login_page_says_how_long_to_wait(app):
    layout = dash.page_registry["pages.login"]["layout"]
    shown = json.dumps(layout(error="throttled", retry="15").to_plotly_json(), default=str)
    assert "Too many attempts; try again in 15 minutes." in shown
    for forged in ("999", "-1", "0", "soon", None):
        shown = json.dumps(layout(error="throttled", retry=forged).to_plotly_json(), default=str)
        assert "Too many attempts; try again later." in shown


# --- ending sessions on the server (issue 9, item 23) --------------------------------------------------


def _copy_of(client, app):
    """Another browser holding the same session cookie (stolen, or copied before logging out)."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def _signed_in(client) -> bool:
    return client.get("/admin/settings").status_code == 200


def test_a_copied_cookie_stops_working_after_logout(app, login_as):
    admin = login_as(Role.ADMIN)
    copy = _copy_of(admin, app)
    assert _signed_in(copy)
    admin.post("/logout")
    assert not _signed_in(copy)
    assert not _signed_in(admin)


def test_logging_out_ends_the_accounts_other_sessions_too(app, make_user):
    user = make_user(Role.ADMIN)
    phone, desk = app.test_client(), app.test_client()
    for client in (phone, desk):
        client.post("/login", data={"email": user.email, "password": PASSWORD})
    phone.post("/logout")
    assert not _signed_in(desk)
    desk.post("/login", data={"email": user.email, "password": PASSWORD})
    assert _signed_in(desk)  # a new login works at once


def test_a_new_password_ends_existing_sessions(app, login_as, session):
    from dashboard.services import users
    from models import User

    admin = login_as(Role.ADMIN)
    copy = _copy_of(admin, app)
    session.get(User, admin.user.id).password_hash = users.hash_password("a-brand-new-password")
    session.commit()
    assert not _signed_in(copy) and not _signed_in(admin)
    relogin = app.test_client()
    relogin.post("/login", data={"email": admin.user.email, "password": "a-brand-new-password"})
    assert _signed_in(relogin)


def test_deactivating_a_user_ends_their_sessions(app, login_as, session):
    from models import User

    admin = login_as(Role.ADMIN)
    session.get(User, admin.user.id).is_active = False
    session.commit()
    assert not _signed_in(admin)


def test_a_session_cookie_without_the_stamp_is_not_a_login(app, login_as):
    """A cookie signed with our key but minted without the server's stamp (e.g. before this fix, or
    a remember-me style cookie) names a user id only: it does not log anyone in."""
    admin = login_as(Role.ADMIN)
    with admin.session_transaction() as cookie_session:
        cookie_session.pop("_parkops_stamp")
    assert not _signed_in(admin)
