"""The SAML endpoints: ``/sso/metadata``, ``/sso/login``, ``/sso/acs`` and ``/sso/sls``.

Thin: they turn the Flask request into ``sso.RequestData``, call ``dashboard.services.sso`` and
start or end the Flask-Login session. Every refusal is logged (code, detail, address) and shown as
a page that says what went wrong in words and links back to the login page.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, redirect, request
from flask import session as flask_session
from markupsafe import escape
from werkzeug.wrappers import Response as BaseResponse

from dashboard.auth import SSO_NAME_ID, begin_session, end_session, safe_next
from dashboard.core import core_of
from dashboard.services import sso

log = logging.getLogger(__name__)


def _request_data() -> sso.RequestData:
    return sso.RequestData(
        https=request.scheme == "https",
        host=request.host,
        path=request.path,
        get={k: v for k, v in request.args.items()},
        post={k: v for k, v in request.form.items()},
        query_string=request.query_string.decode("latin-1"),
    )


def base_url(server: Flask) -> str:
    """The site's address as the IdP knows it: ``PARKOPS_BASE_URL`` when set, else the address
    the browser used (its host is one of ``PARKOPS_ALLOWED_HOSTS``, checked before anything)."""
    return core_of(server).settings.base_url or request.host_url.rstrip("/")


def refusal_page(exc: sso.SsoRefused, what: str = "Single sign-on") -> Response:
    log.warning(
        "SSO refused (%s) at %s from %s: %s",
        exc.code,
        request.path,
        request.remote_addr,
        exc.detail or exc.message,
    )
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in refused · ParkOps</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem">
<h1 id="sso-refused">{escape(what)} did not work</h1>
<p id="sso-refused-reason">ParkOps could not accept this: {escape(exc.message)}.</p>
<p>Nothing was changed. Try signing in again; if it keeps happening, tell the parking office
(reason: <code>{escape(exc.code)}</code>).</p>
<p><a href="/login">Back to the login page</a></p>
</body></html>"""
    status = 503 if isinstance(exc, sso.NotConfigured) else 403
    return Response(body, status=status, mimetype="text/html")


def register_sso_routes(server: Flask) -> None:
    @server.get("/sso/metadata")
    def sso_metadata() -> Response:
        core = core_of(server)
        try:
            with core.db.session() as session:
                xml = sso.sp_metadata(session, base_url(server))
        except sso.SsoRefused as exc:
            return refusal_page(exc, "The SP metadata")
        return Response(xml, mimetype="application/samlmetadata+xml")

    @server.get("/sso/login")
    def sso_login() -> BaseResponse:
        core = core_of(server)
        target = safe_next(request.args.get("next"))
        try:
            with core.db.session() as session:
                url = sso.start_login(session, core.secrets, _request_data(), base_url(server), target)
        except sso.SsoRefused as exc:
            return refusal_page(exc)
        return redirect(url)

    @server.post("/sso/acs")
    def sso_acs() -> BaseResponse:
        core = core_of(server)
        try:
            with core.db.session() as session:
                signed_in = sso.finish_login(session, core.secrets, _request_data(), base_url(server))
        except sso.SsoRefused as exc:
            return refusal_page(exc)
        begin_session(signed_in.user)
        flask_session[SSO_NAME_ID] = signed_in.name_id
        log.info(
            "SSO sign-in of user %s (%s) from %s",
            signed_in.user.id,
            signed_in.user.email,
            request.remote_addr,
        )
        return redirect(safe_next(request.form.get("RelayState")))

    @server.get("/sso/sls")
    def sso_sls() -> BaseResponse:
        core = core_of(server)
        try:
            with core.db.session() as session:
                url = sso.finish_logout(session, core.secrets, _request_data(), base_url(server))
        except sso.SsoRefused as exc:
            return refusal_page(exc, "Single logout")
        end_session()
        return redirect(url or "/")


def idp_logout_url(server: Flask, name_id: str) -> str | None:
    """Where ``/logout`` sends someone who signed in through SSO (the IdP's single logout), or
    None when the IdP has none or SSO is off now; the local session ends either way."""
    core = core_of(server)
    try:
        with core.db.session() as session:
            return sso.start_logout(session, core.secrets, _request_data(), base_url(server), name_id, "/")
    except sso.SsoRefused as exc:
        log.info("no single logout at the IdP (%s)", exc.code)
        return None
