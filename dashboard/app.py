"""The application factory.

``build_core`` gives what every process needs (settings, database, Redis, secrets); workers,
the scheduler and the ingester use it alone. ``create_app`` adds Flask, Dash and the pages: Dash
imports ``pages/`` and registers their callbacks, so it is built once per process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import dash
import redis
from dash.exceptions import DependencyException
from flask import Flask, Response, jsonify, request
from werkzeug.middleware.proxy_fix import ProxyFix

from dashboard import embedded
from dashboard.api import register_api
from dashboard.auth import guard_pages, has_role, init_auth, page_for_path
from dashboard.components import shell
from dashboard.crypto import SecretBox
from dashboard.csp import content_security_policy
from dashboard.db import Database
from dashboard.enforcement_routes import register_enforcement_routes
from dashboard.json_bodies import BoundedJSONProvider
from dashboard.mail_hooks import register_mail_hooks
from dashboard.payment_routes import register_payment_routes
from dashboard.push import register_push
from dashboard.services.health import Check, run_check
from dashboard.settings import PROJECT_ROOT, Settings
from dashboard.sso_routes import register_sso_routes
from dashboard.static_assets import register_static_compression
from models import Role

log = logging.getLogger(__name__)


@dataclass
class Core:
    settings: Settings
    db: Database
    redis: redis.Redis
    redis_url: str
    mqtt_url: str
    secrets: SecretBox
    dash: dash.Dash | None = None


def build_core(settings: Settings | None = None) -> Core:
    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("amqtt", "transitions"):  # the embedded broker logs every connection state change
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    redis_url = settings.redis_url or embedded.embedded_redis_url(settings.instance_path)
    if settings.embedded_mqtt:
        mqtt_url = embedded.ensure_embedded_broker(settings.embedded_mqtt_port)
    else:
        mqtt_url = settings.effective_mqtt_url
    return Core(
        settings=settings,
        db=Database(settings.effective_database_url),
        redis=redis.Redis.from_url(redis_url, socket_timeout=5, health_check_interval=30),
        redis_url=redis_url,
        mqtt_url=mqtt_url,
        secrets=SecretBox(settings.resolved_secret_key()),
    )


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
        server=server,
        use_pages=True,
        pages_folder=str(PROJECT_ROOT / "pages"),
        assets_folder=str(PROJECT_ROOT / "assets"),
        suppress_callback_exceptions=True,
        serve_locally=True,
        # gzip for Dash's bundles and JSON (about 1.9 MiB of JS and CSS for the map, a quarter of
        # that compressed); event streams and our pre-gzipped API bodies are left as they are.
        compress=True,
        title="ParkOps",
        update_title=None,
        external_stylesheets=[],
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    core.dash = dash_app
    register_static_compression(server, dash_app.config.routes_pathname_prefix)
    dash_app.layout = shell.layout
    shell.register_callbacks(dash_app)
    guard_pages()
    init_auth(server, dash_app)
    _register_health(server)
    register_api(server)
    register_push(server)
    register_enforcement_routes(server)
    register_payment_routes(server)
    register_sso_routes(server)
    register_mail_hooks(server)
    # Dash builds its callback map on the first request, unguarded: in a threaded worker two
    # first requests at once can collide ("dictionary changed size during iteration", a 500).
    # Building it here, once, before any request, takes the race away.
    dash_app._setup_server()  # noqa: SLF001
    _security_headers(server, lambda: content_security_policy(dash_app, settings.tile_url))
    _not_found_status(server)
    return server


class _Dash(dash.Dash):
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


def core_of(server: Flask) -> Core:
    return server.extensions["parkops"]


__all__ = ["Core", "build_core", "core_of", "create_app", "prepare_database"]
