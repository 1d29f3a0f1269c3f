"""Authentication (Flask-Login) and the single default-deny gate in front of everything.

Three layers, all on the server:
1. ``gate`` (``before_request``) lets through only public routes, Dash's bundles and assets, pages
   whose declared minimum role the user holds, and Dash callback calls whose callback declares a
   role the user holds. Anything undeclared is refused.
2. Every page layout is wrapped (``guard_pages``) so that Dash's client-side router cannot render a
   page to someone below its role either.
3. Every callback registered with ``dashboard.callbacks.callback`` re-checks the role itself.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import dash
from dash import dcc, html
from flask import Flask, Response, abort, current_app, g, jsonify, redirect, request
from flask import session as flask_session
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import SecurityError
from werkzeug.wrappers import Response as BaseResponse

from dashboard.db import lost_connection
from dashboard.inputs import malformed_call, router_problem
from dashboard.outage import outage_layout
from dashboard.services import sso as sso_service
from dashboard.services import throttle
from dashboard.services import users as users_service
from models import Role

log = logging.getLogger(__name__)

ROLE_ATTR = "parkops_min_role"
STAMP = "_parkops_stamp"  # the session's stamp (see ``load_user``)
SSO_NAME_ID = "_parkops_sso_name_id"  # in the Flask session of someone who signed in through SSO
PAGES_ROUTER_OUTPUT = "_pages_content.children"

# Prefixes served without a user: Dash's framework routes (callbacks are checked one by one in
# ``_check_callback``), static assets, health, and the login/SSO endpoints.
PUBLIC_PREFIXES = (
    "/_dash-component-suites/",
    "/_dash-layout",
    "/_dash-dependencies",
    "/_reload-hash",
    "/_favicon.ico",
    "/assets/",
    "/healthz",
    "/login",
    "/logout",
    "/sso/",
    "/api/public/",
    # Open parking data: availability, history, the FIWARE feed and the live change stream.
    "/api/v1/lot-groups",
    "/api/v1/fiware/",
    "/api/v1/occupancy/stream",
    "/api/v1/ping",
    # Partner APIs: no user session; each route authenticates an admin-issued API key itself.
    "/api/v1/permits",
    "/api/v1/openapi.json",
    "/api/OC-TOMA/",
    "/api/OC_TOMA/",
    # Provider webhooks: no session; each route checks the provider's signature itself.
    "/hooks/",
)


@dataclass(frozen=True)
class SessionUser(UserMixin):
    """What a request knows about its user: plain values, never a live ORM object."""

    id: int
    email: str
    name: str
    role: Role

    def get_id(self) -> str:
        return str(self.id)


def current_role() -> Role:
    if current_user and current_user.is_authenticated:
        return current_user.role
    return Role.GUEST


def has_role(min_role: Role) -> bool:
    return current_role() >= min_role


def _database() -> Any:
    return current_app.extensions["parkops"].db


def refuse_unknown_host() -> None:
    """A request naming a host that is not ours (``PARKOPS_BASE_URL``, ``PARKOPS_ALLOWED_HOSTS``)
    gets a 400 before anything else runs. Flask's ``TRUSTED_HOSTS`` finds it, but raises only when
    the view is dispatched, after the ``before_request`` hooks: the gate would answer first (a
    redirect to the login page, say). Behind trusted proxies (``PARKOPS_PROXY_HOPS``) ProxyFix
    has already put ``X-Forwarded-Host`` in place of ``Host``, so the browser's host is checked."""
    if isinstance(request.routing_exception, SecurityError):
        log.warning(
            "refused a request for unknown host %r: %s %s from %s",
            request.headers.get("Host"),
            request.method,
            request.path,
            request.remote_addr,
        )
        raise request.routing_exception


def init_auth(server: Flask, dash_app: dash.Dash, single_logout: Callable[[str], str | None]) -> None:
    """Login, logout and the gate. ``single_logout`` gives, for the SAML name id of someone who
    signed in through SSO, the IdP's logout address (or None): ``create_app`` passes the SSO
    routes' ``idp_logout_url``, so this module does not import them."""
    server.before_request(refuse_unknown_host)
    manager = LoginManager()
    manager.init_app(server)
    # "basic": an officer whose phone hops from Wi-Fi to LTE keeps the session (marked non-fresh)
    # instead of being logged out mid-patrol, as "strong" would do on every IP change.
    manager.session_protection = "basic"

    @manager.user_loader
    def load_user(user_id: str) -> SessionUser | None:
        if not user_id.isdecimal():
            return None
        with _database().session() as session:
            found = users_service.session_user(session, int(user_id), flask_session.get(STAMP), _stamp_key())
        if found is None:
            return None
        return SessionUser(found.id, found.email, found.name, found.role)

    @server.post("/login")
    def login_post() -> BaseResponse:
        email = (request.form.get("email") or "").strip()
        password = request.form.get("password") or ""
        target = safe_next(request.form.get("next"))
        redis_client = current_app.extensions["parkops"].redis
        account, address = throttle.login_subjects(email, request.remote_addr)
        try:
            attempt = throttle.attempt(redis_client, (account, address))
        except throttle.Throttled as exc:
            log.info("login refused (throttled) for %r from %s", email, request.remote_addr)
            return _throttled_login(exc, target)
        try:
            with _database().session() as session:
                if sso_service.sso_only(session, email):
                    # No password to check: the account signs in at the institution's IdP.
                    log.info(
                        "password login refused for SSO-only account %r from %s", email, request.remote_addr
                    )
                    return redirect("/login?" + urlencode({"error": "sso", "next": target}))
                found = users_service.authenticate(session, email, password)
        except users_service.Unverified:
            # The right password: not a guess, so not counted; the page offers a new link.
            attempt.succeeded(forget=[account])
            log.info("login refused for %r: e-mail not verified yet", email)
            return redirect("/login?" + urlencode({"error": "unverified", "next": target}))
        if found is None:
            log.info("failed login for %r from %s", email, request.remote_addr)
            locked = attempt.failed()
            if locked is not None:
                whom = f"account {email!r}" if locked.subject is account else "address"
                log.warning(
                    "too many failed logins: %s locked for %d minutes (%d failures; last from %s)",
                    whom,
                    locked.minutes,
                    locked.subject.limit.failures,
                    request.remote_addr,
                )
                return _throttled_login(locked, target)
            return redirect("/login?" + urlencode({"error": "1", "next": target}))
        attempt.succeeded(forget=[account])
        begin_session(found)
        return redirect(target)

    @server.post("/logout")
    def logout_post() -> BaseResponse:
        name_id = flask_session.get(SSO_NAME_ID)
        end_session()
        # Signed in through SSO: also end the session at the IdP (single logout), if it has one.
        idp_url = single_logout(name_id) if isinstance(name_id, str) and name_id else None
        return redirect(idp_url or "/")

    server.before_request(lambda: gate(dash_app))

    @server.after_request
    def denied_status(response: Response) -> Response:
        if page_denied() and response.status_code == 200:
            response.status_code = 403
        return response


def _stamp_key() -> bytes:
    """Sessions are signed cookies, so ending one needs state on the server: each login stores
    the account's current stamp (``users.session_stamp``), and a session whose stamp is no
    longer current (logged out since, new password) or whose account was deactivated is anonymous."""
    return hashlib.sha256(b"parkops-session-stamp:" + str(current_app.secret_key).encode()).digest()


def begin_session(found: users_service.UserInfo) -> None:
    """Sign the account in on this browser (password or SSO), with its current session stamp."""
    with _database().session() as session:
        stamp = users_service.session_stamp(session, found.id, _stamp_key())
    flask_session.clear()  # nothing from before the login (session fixation)
    login_user(SessionUser(found.id, found.email, found.name, found.role))
    flask_session[STAMP] = stamp


def end_session() -> None:
    """Log out here and end the account's sessions everywhere (``users.end_sessions``)."""
    if current_user.is_authenticated:
        with _database().session() as session:
            users_service.end_sessions(session, int(current_user.id))
    logout_user()
    flask_session.clear()


def _throttled_login(exc: throttle.Throttled, target: str) -> BaseResponse:
    """Back to the login page, which says how long to wait (in whole minutes)."""
    return redirect("/login?" + urlencode({"error": "throttled", "retry": exc.minutes, "next": target}))


# What a browser ignores in a URL (the WHATWG URL standard): leading and trailing C0 controls and
# spaces, and tabs and newlines anywhere. "/\t/evil.example" is "//evil.example" to a browser.
_URL_EDGES = "".join(map(chr, range(0x21)))
_URL_DROPPED = str.maketrans("", "", "\t\n\r")


def safe_next(target: object) -> str:
    """Only a same-site path, as the browser will read it: an open redirect after login is a
    phishing tool. The target is normalised the way a browser normalises a ``Location`` (see
    ``_URL_EDGES``), then must parse as a bare path: no scheme, no host, not ``//`` (a
    protocol-relative URL), no backslash (browsers read it as ``/``) and no other control
    character (a header cannot carry it). Anything else means the home page."""
    if not isinstance(target, str):
        return "/"
    cleaned = target.strip(_URL_EDGES).translate(_URL_DROPPED)
    if not cleaned.startswith("/") or cleaned.startswith("//") or "\\" in cleaned:
        return "/"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in cleaned):
        return "/"
    parts = urlsplit(cleaned)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return "/"
    return cleaned


def _same_origin() -> bool:
    """POSTs must come from our own pages: SameSite=Lax already drops the cookie cross-site, and
    this also stops login CSRF. Requests without Origin/Referer (curl, partners) pass."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin:
        return True
    return urlsplit(origin).netloc == request.host


@functools.cache
def _page_index(registry_size: int) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Static paths for a dict look-up, templated ones to parse; rebuilt only if pages are added
    (the key is the registry's size). The gate runs on every request, so this matters."""
    static: dict[str, dict[str, Any]] = {}
    templated: list[dict[str, Any]] = []
    for page in dash.page_registry.values():
        # Dash's router also serves a templated page at its plain ``path``, so both are indexed.
        static[page["path"].rstrip("/") or "/"] = page
        if page.get("path_template"):
            templated.append(page)
    return static, templated


def page_for_path(path: str) -> dict[str, Any] | None:
    from dash._pages import _parse_path_variables

    static, templated = _page_index(len(dash.page_registry))
    page = static.get(path.rstrip("/") or "/")
    if page is not None:
        return page
    for candidate in templated:
        variables = _parse_path_variables(path, candidate["path_template"])
        # Dash lets a variable run over "/": ``/lot-groups/7/x`` would be group "7/x". Only a page
        # registered with ``slash_in_variables`` (the lot group editor's ``7/edit``) takes one.
        if variables is None:
            continue
        if candidate.get("slash_in_variables") or not any("/" in str(v) for v in variables.values()):
            return candidate
    return None


def gate(dash_app: dash.Dash) -> BaseResponse | None:
    path = request.path
    # The IdP's POST to the ACS and the mail provider's webhooks are cross-site by design; a
    # signature is what authenticates each of them.
    cross_site_ok = path.startswith(("/api/", "/hooks/")) or path == "/sso/acs"
    if request.method == "POST" and not cross_site_ok and not _same_origin():
        abort(403, "cross-site request refused")
    if path == "/_dash-update-component":
        return _check_callback(dash_app)
    if path.startswith(PUBLIC_PREFIXES):
        return None
    page = page_for_path(path)
    if page is None:
        # Not a page of ours: Flask's own routes declare access themselves; anything else is
        # Dash's "not found" page, which holds nothing.
        return None
    min_role = page[ROLE_ATTR]
    if has_role(min_role):
        return None
    if not current_user.is_authenticated:
        return redirect("/login?" + urlencode({"next": request.full_path.rstrip("?")}))
    # Signed in without the role: the app's frame, which holds no page data, answered 403; its
    # layout is the page guard's "Not authorised" (``denied_layout``) under the menu this user
    # may use, a way on instead of a bare line of text.
    g.page_denied = True
    return None


def page_denied() -> bool:
    """The gate let this request through only to say "Not authorised" (see ``gate``)."""
    return bool(g.get("page_denied"))


def _check_callback(dash_app: dash.Dash) -> Response | None:
    body = request.get_json(silent=True)  # None for malformed or too deeply nested JSON
    if not isinstance(body, dict):
        return _deny(400, "the body must be a JSON object (a Dash callback call)")
    output = body.get("output")
    entry = dash_app.callback_map.get(output) if isinstance(output, str) else None
    if entry is None or not isinstance(output, str):
        return _deny(400, "unknown callback")
    if PAGES_ROUTER_OUTPUT in output:
        # The pages router: each page layout is guarded (see guard_pages).
        problem = malformed_call(body, entry) or router_problem(body)
        return _deny(400, problem) if problem else None
    min_role = getattr(entry.get("callback"), ROLE_ATTR, None)
    if min_role is None:
        log.error("refused callback %s: it declares no role", output)
        return _deny(403, "callback declares no role")
    if not has_role(min_role):
        return _deny(403 if current_user.is_authenticated else 401, "not allowed")
    problem = malformed_call(body, entry)
    return _deny(400, problem) if problem else None


def _deny(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


DENIED_TITLE = "Not authorised · ParkOps"
DEFAULT_TITLE = "ParkOps"


def denied_layout(path: str) -> Any:
    """What the client-side router shows instead of a page the user may not see."""
    if not current_user.is_authenticated:
        return html.Div(
            [dcc.Location(id="guard-redirect", href="/login?" + urlencode({"next": path}), refresh=True)]
        )
    return html.Div(
        [
            html.H2("Not authorised"),
            html.P("Your account does not have access to this page."),
            html.P(["Go to the ", dcc.Link("home page", href="/"), "."]),
        ],
        className="container py-5",
    )


def guard_pages() -> None:
    """Wrap every registered page layout with its role check; a page without a role fails start-up."""
    for module, page in dash.page_registry.items():
        if ROLE_ATTR not in page:
            raise RuntimeError(f"page {module} does not declare its minimum role ({ROLE_ATTR})")
        layout = page["layout"]
        if getattr(layout, "parkops_guarded", False):
            continue
        page["layout"] = _guarded_layout(page[ROLE_ATTR], layout, page["path"])
        page["title"] = _guarded_title(page[ROLE_ATTR], page["title"])


def _guarded_title(min_role: Role, title: Any) -> Any:
    """The page's title, or "Not authorised" for someone its layout refuses: the tab says what the
    page shows (``denied_layout``), not the name of a page they may not see. While the database
    (the session's user) is unreachable, the page's own title if it is fixed: the layout's guard
    says what happened (``outage_layout``)."""

    def guarded(**kwargs: Any) -> Any:
        try:
            allowed = has_role(min_role)
        except DBAPIError as exc:
            if not lost_connection(exc):
                raise
            return title if isinstance(title, str) else DEFAULT_TITLE
        if not allowed:
            return DENIED_TITLE
        return title(**kwargs) if callable(title) else title

    return guarded


def _guarded_layout(min_role: Role, layout: Any, path: str) -> Any:
    def guarded(**kwargs: Any) -> Any:
        try:
            if not has_role(min_role):
                return denied_layout(path)
            return layout(**kwargs) if callable(layout) else layout
        except DBAPIError as exc:
            if not lost_connection(exc):
                raise
            log.warning("page %s: its layout could not reach the database: %s", path, exc.orig)
            return outage_layout()

    guarded.parkops_guarded = True  # type: ignore[attr-defined]
    return guarded
