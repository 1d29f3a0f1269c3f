"""The ``parkops`` command on its own SQLite file (the CLI reads PARKOPS_* like production)."""

from __future__ import annotations

import pytest
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
    from dashboard import cli
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
    monkeypatch.setattr(cli, "_core", lambda: core)

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
