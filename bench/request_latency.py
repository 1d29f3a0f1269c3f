"""Latency of the request paths every screen pays for: the gate plus a Dash callback round trip,
a refused callback, and /healthz. Runs in-process on the embedded services; prints its figures.

    .venv/bin/python bench/request_latency.py [--requests 500]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from dashboard.app import create_app
from dashboard.services import users
from dashboard.settings import Settings
from models import Role


def _callback_body(dash_app, fragment: str, value: object) -> str:
    key = next(k for k in dash_app.callback_map if fragment in k)
    entry = dash_app.callback_map[key]
    outputs = entry["output"] if isinstance(entry["output"], list) else [entry["output"]]
    return json.dumps(
        {
            "output": key,
            "outputs": [{"id": o.component_id, "property": o.component_property} for o in outputs],
            "inputs": [dict(spec, value=value) for spec in entry["inputs"]],
            "state": [dict(spec, value=None) for spec in entry["state"]],
            "changedPropIds": [f"{entry['inputs'][0]['id']}.{entry['inputs'][0]['property']}"],
        }
    )


def _measure(label: str, call, count: int) -> None:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(f"{label:<42} p50 {statistics.median(timings):6.2f} ms   p95 {p95:6.2f} ms   n={count}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    instance = Path(tempfile.mkdtemp(prefix="parkops-bench-"))
    app = create_app(
        Settings(instance_path=instance, secret_key="bench", embedded_mqtt_port=18838, testing=True)
    )
    core = app.extensions["parkops"]
    core.db.upgrade()
    with core.db.session() as session:
        users.create_user(session, email="bench@campus.test", password="bench-password", role=Role.ADMIN)
    client = app.test_client()
    client.get("/")
    nav = _callback_body(core.dash, "shell-nav.children", "/")
    guest = app.test_client()
    admin = app.test_client()
    admin.post("/login", data={"email": "bench@campus.test", "password": "bench-password"})
    post = {"content_type": "application/json"}

    _measure(
        "guest: shell callback through the gate",
        lambda: guest.post("/_dash-update-component", data=nav, **post),
        args.requests,
    )
    _measure(
        "admin: shell callback (loads the user)",
        lambda: admin.post("/_dash-update-component", data=nav, **post),
        args.requests,
    )
    _measure("guest: admin page refused by the gate", lambda: guest.get("/admin/settings"), args.requests)
    _measure(
        "/healthz (database, Redis, MQTT probe)", lambda: client.get("/healthz"), max(20, args.requests // 10)
    )


if __name__ == "__main__":
    main()
