"""The Core: what every ParkOps process needs (settings, database, Redis, secrets), and the ways to
reach it.

Web requests reach the app's core with ``core_of(server)``; jobs, the scheduler and the ingester
reach their process's core with ``get_core()`` (given once with ``set_core``, or built from
``PARKOPS_*`` on first use). This module imports no route, page or job, so every layer can import it
without drawing an import circle: ``create_app`` (``dashboard.app``) only assembles the web app
around a core.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from dashboard import embedded
from dashboard.crypto import SecretBox
from dashboard.db import Database
from dashboard.settings import Settings

if TYPE_CHECKING:
    import dash
    from flask import Flask


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


def core_of(server: Flask) -> Core:
    """The core ``create_app`` attached to the Flask app (``current_app`` in a request)."""
    core: Core = server.extensions["parkops"]
    return core


_core: Core | None = None
_core_lock = threading.Lock()


def set_core(core: Core | None) -> None:
    """Give jobs of this process an existing core (the in-process worker, ``parkops worker``, tests)."""
    global _core
    with _core_lock:
        _core = core


def get_core() -> Core:
    """The process's core, built from ``PARKOPS_*`` on first use when none was given."""
    global _core
    with _core_lock:
        if _core is None:
            _core = build_core(Settings.from_env())
        return _core


__all__ = ["Core", "build_core", "core_of", "get_core", "set_core"]
