"""What every answer says about the app: a Content-Security-Policy, no server or Python version
(Werkzeug's server, gunicorn, Dash's page config), and 404 for what does not exist."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from dashboard.csp import tile_origin
from dashboard.serving import SERVER_NAME, QuietRequestHandler
from models import Role


def test_pages_carry_a_policy_that_allows_no_inline_script_but_dashs_own(app, client):
    policy = client.get("/").headers["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", policy).group(1).split()
    assert script_src[0] == "'self'" and all(s.startswith("'sha256-") for s in script_src[1:])
    hashes = app.extensions["parkops"].dash.csp_hashes()
    assert set(script_src[1:]) == set(hashes)  # the renderer's line and every clientside callback
    assert "object-src 'none'" in policy and "frame-ancestors 'self'" in policy
    assert "connect-src 'self'" in policy


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"),
        ("https://{s}.tiles.example/{z}/{x}/{y}.png", "https://*.tiles.example"),
        ("http://127.0.0.1:8080/tiles/{z}/{x}/{y}.png", "http://127.0.0.1:8080"),
        ("/tiles/{z}/{x}/{y}.png", None),
    ],
)
def test_the_tile_servers_origin(url, origin):
    assert tile_origin(url) == origin


def test_dash_config_names_no_python_version(client):
    page = client.get("/").get_data(as_text=True)
    config = re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>', page).group(1)
    assert "python_version" not in config and sys.version.split()[0] not in config


@pytest.mark.parametrize(
    "path", ["/no/such/page", "/_dash-config", "/admin/settings/extra", "/lot-groups/7/x", "/p/help/more"]
)
def test_unknown_paths_are_404_with_the_app_shell(login_as, path):
    response = login_as(Role.ADMIN).get(path)
    assert response.status_code == 404
    assert '<div id="react-entry-point">' in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/", "/real-time", "/lot-groups/7", "/p/help", "/404"])
def test_known_paths_are_200(client, path):
    assert client.get(path).status_code == 200


@pytest.mark.parametrize(
    "path", ["/_dash-component-suites/os/path.py", "/_dash-component-suites/dash/nope.js"]
)
def test_an_unknown_component_bundle_is_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "registered" not in response.get_data(as_text=True)  # no list of what is installed


def _server_header(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 (a local test server)
            return answer.headers["Server"]
    except urllib.error.HTTPError as refused:
        return refused.headers["Server"]


def test_parkops_run_names_no_server_or_python_version(app):
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert _server_header(f"http://127.0.0.1:{server.server_port}/api/v1/ping") == SERVER_NAME
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_gunicorn_names_no_server(tmp_path: Path):
    """The production command (``gunicorn dashboard.wsgi:app``) on a private SQLite database."""
    port = _free_port()
    env = {
        **os.environ,
        "PARKOPS_INSTANCE_PATH": str(tmp_path),
        "PARKOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'gunicorn.db'}",
        "PARKOPS_SECRET_KEY": "test-secret-key-not-for-production",
        "PARKOPS_BASE_URL": f"http://127.0.0.1:{port}",  # required with a real database
        "PARKOPS_EMBEDDED_MQTT_PORT": str(_free_port()),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "-w", "1", "-k", "gthread", "-b", f"127.0.0.1:{port}", "dashboard.wsgi:app"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                header = _server_header(f"http://127.0.0.1:{port}/api/v1/ping")
                break
            except OSError:
                assert process.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "gunicorn did not answer in 60 s"
                time.sleep(0.2)
        assert header == SERVER_NAME
    finally:
        process.terminate()
        process.wait(timeout=30)
