"""``parkops devices`` on its own SQLite file (the CLI reads PARKOPS_* like production)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from dashboard.cli import main
from dashboard.cli.devices import devices
from models import Lot, LotGroup, UnknownDeviceMessage
from tests.conftest import TEST_MQTT_PORT


@pytest.fixture
def cli_env(tmp_path) -> dict[str, str]:
    env = {
        "PARKOPS_INSTANCE_PATH": str(tmp_path),
        "PARKOPS_EMBEDDED_MQTT_PORT": str(TEST_MQTT_PORT),
        "PARKOPS_DATABASE_URL": "",
        "PARKOPS_SECRET_KEY": "",
        "PARKOPS_TIMEZONE": "America/Toronto",
    }
    upgraded = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    engine = create_engine(f"sqlite:///{tmp_path / 'parkops.db'}")
    with Session(engine) as s, s.begin():
        s.add(Lot(name="North Garage L1", lot_group=LotGroup(name="North Garage"), capacity=100))
        s.add(
            UnknownDeviceMessage(
                device_id="spc-9",
                topic="parkops/sensors/spc-9/state",
                payload='{"occupied": true}',
                received_at=datetime(2026, 3, 2, 14, 0, tzinfo=UTC),
            )
        )
    engine.dispose()
    return env


def test_add_then_list(cli_env):
    runner = CliRunner()
    added = runner.invoke(
        devices,
        ["add", "--id", "cnt-n1", "--kind", "counter", "--lot", "north garage l1", "--name", "Gate"],
        env=cli_env,
    )
    assert added.exit_code == 0, added.output
    assert "registered cnt-n1 (counter) in North Garage L1" in added.output

    listed = runner.invoke(devices, ["list"], env=cli_env)
    assert listed.exit_code == 0, listed.output
    line = listed.output.strip()
    assert line.startswith("cnt-n1") and "North Garage L1" in line and "never" in line and "Gate" in line

    as_json = json.loads(runner.invoke(devices, ["list", "--json"], env=cli_env).output)
    assert [(d["device_id"], d["kind"], d["group_name"], d["active"]) for d in as_json] == [
        ("cnt-n1", "counter", "North Garage", True)
    ]


def test_add_refuses_bad_input(cli_env):
    runner = CliRunner()
    unknown_lot = runner.invoke(
        devices, ["add", "--id", "cnt-1", "--kind", "counter", "--lot", "Moon"], env=cli_env
    )
    assert unknown_lot.exit_code != 0 and "no lot 'Moon'" in unknown_lot.output
    bad_id = runner.invoke(
        devices, ["add", "--id", "cnt/1", "--kind", "counter", "--lot", "North Garage L1"], env=cli_env
    )
    assert bad_id.exit_code != 0 and "device_id:" in bad_id.output
    bad_kind = runner.invoke(
        devices, ["add", "--id", "cnt-1", "--kind", "camera", "--lot", "North Garage L1"], env=cli_env
    )
    assert bad_kind.exit_code != 0 and "camera" in bad_kind.output
    assert runner.invoke(devices, ["list", "--json"], env=cli_env).output.strip() == "[]"


def test_unknown_lists_kept_messages(cli_env):
    result = CliRunner().invoke(devices, ["unknown"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "spc-9" in result.output and "space_sensor" in result.output and "1 message " in result.output
    assert "2026-03-02 09:00" in result.output  # the site's time zone
    rows = json.loads(CliRunner().invoke(devices, ["unknown", "--json"], env=cli_env).output)
    assert [(r["device_id"], r["message_count"], r["registered"]) for r in rows] == [("spc-9", 1, False)]
