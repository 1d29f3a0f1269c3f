"""``/healthz``: public, 200 when database, Redis and MQTT answer, 503 naming what is down."""

from __future__ import annotations

import dataclasses

import redis

from dashboard.core import core_of
from models import Role


def test_healthz_is_ok_on_the_test_services(client):
    """``client`` is not signed in: load balancers and monitors call this without a session."""
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    for name in ("database", "redis", "mqtt"):
        assert body["checks"][name]["ok"] is True, body["checks"][name]
        assert body["checks"][name]["error"] is None


def test_healthz_is_503_and_names_what_is_down(app, client, login_as):
    """Redis and MQTT on closed ports: the route reads the core at request time, so swapping it in
    ``app.extensions`` for this test is enough. Only an admin sees the error texts (they name
    internal hosts); anyone sees which part is down."""
    admin = login_as(Role.ADMIN)
    healthy = core_of(app)
    broken = dataclasses.replace(
        healthy,
        redis=redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5),
        mqtt_url="mqtt://127.0.0.1:1",
    )
    app.extensions["parkops"] = broken
    try:
        response = client.get("/healthz")
        detailed = admin.get("/healthz")
    finally:
        app.extensions["parkops"] = healthy
    assert response.status_code == detailed.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["ok"] is True
    for name in ("redis", "mqtt"):
        assert body["checks"][name] == {
            "ok": False,
            "latency_ms": body["checks"][name]["latency_ms"],
            "error": "unreachable",
        }
        assert "refused" in detailed.get_json()["checks"][name]["error"].lower()
