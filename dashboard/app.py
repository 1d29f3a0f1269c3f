"""The application factory: ``create_app`` assembles the web app around a core.

The core (settings, database, Redis, secrets) lives in ``dashboard.core``, which workers, the
scheduler and the ingester use alone. ``create_app`` adds Flask, Dash and the pages: Dash imports
``pages/`` and registers their callbacks, so it is built once per process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import dash
from dash.exceptions import DependencyException
from flask import Flask, Response, jsonify, request
from werkzeug.middleware.proxy_fix import ProxyFix

from dashboard.api import register_api
from dashboard.auth import guard_pages, has_role, init_auth, page_denied, page_for_path
from dashboard.components import shell
from dashboard.core import Core, build_core, core_of
from dashboard.csp import content_security_policy
from dashboard.enforcement_routes import register_enforcement_routes
from dashboard.json_bodies import BoundedJSONProvider
from dashboard.mail_hooks import register_mail_hooks
from dashboard.map_routes import LIVE_PREFIX, map_preloads, register_map_routes, unavailable
from dashboard.outage import register_outage_answers
from dashboard.payment_routes import register_payment_routes
from dashboard.push import register_push
from dashboard.report_routes import register_report_routes
from dashboard.services.health import Check, run_check
from dashboard.settings import PROJECT_ROOT, Settings
from dashboard.sso_routes import idp_logout_url, register_sso_routes
from dashboard.static_assets import drop_legacy_polyfill, drop_table_bundle, register_static_compression
from models import Role

log = logging.getLogger(__name__)


def prepare_database(core: Core) -> None:
    """Migrate, then add what the code ships and the database must hold: default email templates
    and the registered system tasks. Safe to run on every start; admin edits are kept."""
    from dashboard.services import email, system_tasks
    from workers.tasks import REGISTRY

    core.db.upgrade()
    with core.db.session() as session:
        email.ensure_default_templates(session)
        system_tasks.sync_registry(session, REGISTRY.definitions())


def create_app(settings: Settings | None = None, core: Core | None = None) -> Flask:
    core = core or build_core(settings)
    settings = core.settings
    server = Flask("parkops", instance_path=str(settings.instance_path))
    server.config.update(
        SECRET_KEY=settings.resolved_secret_key(),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=8 * 1024 * 1024,
        TRUSTED_HOSTS=settings.trusted_hosts,  # any other Host header: 400 (see auth.refuse_unknown_host)
        TESTING=settings.testing,
    )
    server.json = BoundedJSONProvider(server)
    server.extensions["parkops"] = core
    if settings.proxy_hops:
        trust_proxies(server, settings.proxy_hops)

    dash_app = _Dash(
        "parkops",
        server=server,  # type: ignore[arg-type]  # Dash's hint omits the Flask app its docs take
        use_pages=True,
        pages_folder=str(PROJECT_ROOT / "pages"),
        assets_folder=str(PROJECT_ROOT / "assets"),
        suppress_callback_exceptions=True,
        serve_locally=True,
        # gzip for Dash's bundles and JSON (about 1.9 MiB of JS and CSS for the map, a quarter of
        # that compressed); event streams and our pre-gzipped API bodies are left as they are.
        compress=True,
        title="ParkOps",
        update_title=None,  # type: ignore[arg-type]  # None keeps the tab's title (Dash's docs)
        external_stylesheets=[],
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    # Screen readers pick their voice from the page's language; Dash's own page leaves it unsaid.
    dash_app.index_string = dash_app.index_string.replace("<html>", '<html lang="en">', 1)
    # Dash's renderer asks for the layout and the callback list only once its ~1.7 MB of scripts
    # have run; preloaded, they arrive while the scripts download and parse (one round trip fewer
    # before a page's first callback; ``bench/pages.py``). Same URL and credentials mode as the
    # renderer's own fetch, so the browser hands it the preloaded responses.
    prefix = dash_app.config.requests_pathname_prefix
    preloads = "".join(
        f'<link rel="preload" href="{prefix}{path}" as="fetch" crossorigin>'
        for path in ("_dash-layout", "_dash-dependencies")
    )
    dash_app.index_string = dash_app.index_string.replace("{%css%}", preloads + "{%css%}", 1)
    core.dash = dash_app
    register_static_compression(server, dash_app.config.routes_pathname_prefix)
    drop_legacy_polyfill()
    drop_table_bundle()
    dash_app.layout = shell.layout
    shell.register_callbacks(dash_app)
    guard_pages()
    init_auth(server, dash_app, single_logout=lambda name_id: idp_logout_url(server, name_id))
    _register_health(server)
    register_api(server)
    register_push(server)
    register_enforcement_routes(server)
    register_report_routes(server)
    register_map_routes(server)
    register_outage_answers(server, {LIVE_PREFIX: unavailable})
    register_payment_routes(server)
    register_sso_routes(server)
    register_mail_hooks(server)
    # Dash builds its callback map on the first request, unguarded: in a threaded worker two
    # first requests at once can collide ("dictionary changed size during iteration", a 500).
    # Building it here, once, before any request, takes the race away.
    dash_app._setup_server()  # noqa: SLF001
    _security_headers(server, lambda: content_security_policy(dash_app, settings.tile_url))
    _not_found_status(server)
    _private_layout(server, dash_app.config.routes_pathname_prefix)
    return server


class _Dash(dash.Dash):
    def interpolate_index(
        self,
        metas: Any = "",
        title: Any = "",
        css: Any = "",
        config: Any = "",
        scripts: Any = "",
        app_entry: Any = "",
        favicon: Any = "",
        renderer: Any = "",
    ) -> Any:
        """A page with live data also preloads it and, on a staff map, dash-leaflet's GeoJSON code
        (loaded by the renderer only once the page's layout is drawn): both arrive while the
        scripts parse, instead of round trips in a row before the first pin (``bench/pages.py``). Not
        for someone the page is refused to (``auth.page_denied``): the data is not theirs."""
        preloads = "" if page_denied() else map_preloads(request.path, self.config.requests_pathname_prefix)
        return super().interpolate_index(
            metas, title, preloads + css, config, scripts, app_entry, favicon, renderer
        )

    def _config(self) -> dict:
        """Dash's page config without the server's Python version (an attacker's hint; the
        renderer shows it only in debug tools, which are off)."""
        config = super()._config()
        config.pop("python_version", None)
        return config


def _not_found_status(server: Flask) -> None:
    """Dash answers every path with the app shell; a path no page claims now says 404 while the
    shell still shows the "not found" page (``pages/not_found_404.py``). Pages reached inside
    the app are routed in the browser and never come here. A component bundle Dash does not
    know (``/_dash-component-suites/os/path.py``) is a 404 too, not Dash's 500."""

    @server.after_request
    def unknown_path(response: Response) -> Response:
        if request.endpoint == "/<path:path>" and page_for_path(request.path) is None:
            response.status_code = 404
        return response

    @server.errorhandler(DependencyException)
    def unknown_bundle(_exc: DependencyException) -> tuple[str, int, dict[str, str]]:
        return "not found", 404, {"Content-Type": "text/plain; charset=utf-8"}


def _private_layout(server: Flask, routes_prefix: str) -> None:
    """Dash's layout now holds the page it is asked for from, built for the signed-in user
    (``components.shell.page_container``): no cache, shared or the browser's, may keep it."""
    path = f"{routes_prefix}_dash-layout"

    @server.after_request
    def not_stored(response: Response) -> Response:
        if request.path == path:
            response.headers["Cache-Control"] = "private, no-store"
        return response


def trust_proxies(server: Flask, hops: int) -> None:
    """Behind a load balancer: trust its X-Forwarded-* headers (client IP, https, host), so that
    the same-origin check, secure cookies and logs see what the browser sees."""
    server.wsgi_app = ProxyFix(server.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


def _register_health(server: Flask) -> None:
    from dashboard.services.feed_health import IngesterStuck, ensure_not_stuck
    from workers.mqtt import probe

    def mqtt_feed(core: Core) -> None:
        """The broker answers, and the ingester is not stuck: live occupancy is not frozen."""
        probe(core.mqtt_url, timeout=3)
        ensure_not_stuck(core.redis)

    @server.get("/healthz")
    def healthz():  # noqa: ANN202
        core = core_of(server)
        checks = [
            run_check("database", core.db.ping),
            run_check("redis", core.redis.ping),
            run_check("mqtt", lambda: mqtt_feed(core)),
        ]
        healthy = all(c.ok for c in checks)
        # Load balancers call this anonymously: error texts name internal hosts, so only admins see them.
        detailed = has_role(Role.ADMIN)

        def shown(check: Check) -> dict[str, object]:
            error = check.error
            if not (detailed or check.ok):
                stuck = (error or "").startswith(IngesterStuck.__name__)
                error = "ingester stuck" if stuck else "unreachable"
            return {"ok": check.ok, "latency_ms": check.latency_ms, "error": error}

        body = {"status": "ok" if healthy else "degraded", "checks": {c.name: shown(c) for c in checks}}
        return jsonify(body), 200 if healthy else 503


def _security_headers(server: Flask, policy: Callable[[], str]) -> None:
    @server.after_request
    def headers(response):  # noqa: ANN001, ANN202
        response.headers.setdefault("Content-Security-Policy", policy())
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response


__all__ = ["create_app", "prepare_database", "trust_proxies"]
