"""Process settings from PARKOPS_* variables."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dashboard.settings import Settings, SettingsError
from models import LotGroup, OccupancySnapshot


def test_no_configuration_means_embedded_everything(tmp_path):
    settings = Settings.from_env({"PARKOPS_INSTANCE_PATH": str(tmp_path)})
    assert settings.embedded_database and settings.embedded_redis and settings.embedded_mqtt
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'parkops.db'}"
    assert settings.effective_mqtt_url == "mqtt://parkops@127.0.0.1:18830"
    assert settings.run_inprocess_workers and settings.run_simulator
    assert (settings.host, settings.port) == ("127.0.0.1", 8050)


def test_embedded_secret_key_is_generated_once_and_kept(tmp_path):
    settings = Settings.from_env({"PARKOPS_INSTANCE_PATH": str(tmp_path)})
    first = settings.resolved_secret_key()
    assert len(first) >= 40
    assert Settings.from_env({"PARKOPS_INSTANCE_PATH": str(tmp_path)}).resolved_secret_key() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_real_services_from_the_environment():
    settings = Settings.from_env(
        {
            "PARKOPS_DATABASE_URL": "postgresql+psycopg://u@db/parkops",
            "PARKOPS_REDIS_URL": "redis://cache:6379/0",
            "PARKOPS_MQTT_URL": "mqtt://broker:1883",
            "PARKOPS_SECRET_KEY": "s" * 40,
            "PARKOPS_PORT": "9000",
            "PARKOPS_BASE_URL": "https://parking.example.edu/",
        }
    )
    assert settings.effective_database_url == "postgresql+psycopg://u@db/parkops"
    assert not settings.run_inprocess_workers and not settings.run_simulator
    assert settings.port == 9000
    assert settings.secure_cookies
    assert settings.base_url == "https://parking.example.edu"


def test_a_real_database_needs_a_secret_key():
    with pytest.raises(SettingsError, match="PARKOPS_SECRET_KEY"):
        Settings.from_env({"PARKOPS_DATABASE_URL": "postgresql+psycopg://u@db/parkops"})


REAL = {
    "PARKOPS_DATABASE_URL": "postgresql+psycopg://u@db/parkops",
    "PARKOPS_SECRET_KEY": "s" * 40,
}


def test_a_real_database_needs_a_base_url():
    """E-mailed links are built from it, never from a request's Host header: checked at start."""
    with pytest.raises(SettingsError, match="PARKOPS_BASE_URL must be set"):
        Settings.from_env(REAL)


@pytest.mark.parametrize(
    "value",
    [
        "parking.example.edu",
        "ftp://parking.example.edu",
        "https://",
        "https://parking.example.edu/parking",
        "https://parking.example.edu/?x=1",
        "https://user:pw@parking.example.edu",
        "https://parking.example.edu:99999",
    ],
)
def test_a_base_url_is_a_scheme_and_a_host(value):
    with pytest.raises(SettingsError, match="PARKOPS_BASE_URL must be the site's public address"):
        Settings.from_env({**REAL, "PARKOPS_BASE_URL": value})


def test_embedded_mode_links_to_where_it_serves_and_trusts_this_machine(tmp_path):
    settings = Settings.from_env({"PARKOPS_INSTANCE_PATH": str(tmp_path), "PARKOPS_PORT": "9000"})
    assert settings.public_url == "http://127.0.0.1:9000"
    assert settings.trusted_hosts == ["127.0.0.1", "localhost"]
    everywhere = Settings.from_env({"PARKOPS_INSTANCE_PATH": str(tmp_path), "PARKOPS_HOST": "0.0.0.0"})  # noqa: S104
    assert everywhere.public_url == "http://127.0.0.1:8050"


def test_production_trusts_the_base_url_host_and_the_allowed_hosts_only():
    settings = Settings.from_env(
        {
            **REAL,
            "PARKOPS_BASE_URL": "https://Parking.Example.edu:8443/",
            "PARKOPS_ALLOWED_HOSTS": " 10.0.0.5, .internal.example.edu ,",
        }
    )
    assert settings.public_url == "https://Parking.Example.edu:8443"
    assert settings.allowed_hosts == ("10.0.0.5", ".internal.example.edu")
    assert settings.trusted_hosts == ["parking.example.edu", "10.0.0.5", ".internal.example.edu"]


@pytest.mark.parametrize("value", ["https://parking.example.edu", "parking.example.edu:443", "a b", "*"])
def test_allowed_hosts_are_host_names(value):
    with pytest.raises(SettingsError, match="PARKOPS_ALLOWED_HOSTS"):
        Settings.from_env({"PARKOPS_ALLOWED_HOSTS": value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PARKOPS_PORT", "eighty"),
        ("PARKOPS_TIMEZONE", "Mars/Olympus"),
        ("PARKOPS_SIMULATOR", "maybe"),
        ("PARKOPS_SIMULATOR_SPEED", "fast"),
        ("PARKOPS_SIMULATOR_SPEED", "0"),
        ("PARKOPS_TASK_LEASE_SECONDS", "a minute"),
        ("PARKOPS_TASK_LEASE_SECONDS", "2"),
    ],
)
def test_malformed_values_are_clear_errors(name, value):
    with pytest.raises(SettingsError, match=name if name != "PARKOPS_SIMULATOR" else "boolean"):
        Settings.from_env({name: value})


def test_times_are_stored_in_utc_and_come_back_aware(session):
    group = LotGroup(name="Garage", map_color="#112233")
    session.add(group)
    session.flush()
    toronto = timezone(timedelta(hours=-5))
    session.add(
        OccupancySnapshot(
            lot_group_id=group.id,
            source="devices",
            occupied=1,
            capacity=2,
            recorded_at=datetime(2026, 11, 28, 7, 30, tzinfo=toronto),
        )
    )
    session.commit()
    session.expire_all()
    stored = session.query(OccupancySnapshot).one().recorded_at
    assert stored == datetime(2026, 11, 28, 12, 30, tzinfo=UTC)
    assert stored.tzinfo is not None


def test_naive_datetimes_are_refused(session):
    group = LotGroup(name="Naive", map_color="#112233")
    session.add(group)
    session.flush()
    session.add(
        OccupancySnapshot(
            lot_group_id=group.id,
            source="devices",
            occupied=1,
            capacity=2,
            recorded_at=datetime(2026, 11, 28, 7, 30),
        )
    )
    with pytest.raises(Exception, match="naive datetime"):
        session.flush()
    session.rollback()
