"""One typed settings object, read from ``PARKOPS_*`` environment variables.

Everything has an embedded default so that ``make run`` works with no configuration; a variable
that is set switches that part to the real service (PostgreSQL, Redis, an MQTT broker).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A ``PARKOPS_*`` variable is missing or malformed."""


def _optional_bool(value: str | None) -> bool | None:
    """Unset means "decide from the other settings"."""
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"not a boolean: {value!r}")


def _speed(value: str | None) -> float:
    if value is None or value == "":
        return 1.0
    try:
        speed = float(value)
    except ValueError as exc:
        raise SettingsError(f"PARKOPS_SIMULATOR_SPEED must be a number, got {value!r}") from exc
    if not 0 < speed <= 3600:
        raise SettingsError("PARKOPS_SIMULATOR_SPEED must be above 0 and at most 3600")
    return speed


def _int(name: str, value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {value!r}") from exc


_HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")


def _hosts(value: str | None) -> tuple[str, ...]:
    """``PARKOPS_ALLOWED_HOSTS``: host names (no scheme, no port) separated by commas."""
    hosts = tuple(h.strip().lower() for h in (value or "").split(",") if h.strip())
    for host in hosts:
        name = host.removeprefix(".")
        if not name or not _HOST_NAME.fullmatch(name):
            raise SettingsError(
                f"PARKOPS_ALLOWED_HOSTS: {host!r} is not a host name (write e.g. parking.example.edu, "
                "10.0.0.5 or .example.edu for every subdomain; no scheme, no port)"
            )
    return hosts


def _check_base_url(url: str) -> None:
    """Links are ``PARKOPS_BASE_URL`` + a path, and the app is served at the root: so a scheme and
    a host (and a port), nothing else."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  (raises on a port out of range)
    except ValueError:
        parts = parts._replace(netloc="")
    if (
        parts.scheme not in {"http", "https"}
        or not parts.hostname
        or parts.username is not None
        or parts.path
        or parts.query
        or parts.fragment
    ):
        raise SettingsError(
            "PARKOPS_BASE_URL must be the site's public address, scheme and host only "
            f"(e.g. https://parking.example.edu), got {url!r}"
        )


@dataclass(frozen=True)
class Settings:
    """Process configuration. Site behaviour that admins change lives in the database instead."""

    instance_path: Path = PROJECT_ROOT / "instance"
    database_url: str | None = None
    redis_url: str | None = None
    mqtt_url: str | None = None
    embedded_mqtt_port: int = 18830
    mqtt_topic_prefix: str = "parkops"
    secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8050
    base_url: str = ""
    allowed_hosts: tuple[str, ...] = ()
    timezone: str = "America/Toronto"
    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    simulator: bool | None = None
    simulator_speed: float = 1.0
    inprocess_workers: bool | None = None
    queue_name: str = "parkops"
    proxy_hops: int = 0
    # A task run holds its lock this long and renews it (and its heartbeat) every third of it; a run
    # silent for longer is declared dead (its worker was killed) and retried once.
    task_lease_seconds: int = 60
    log_level: str = "INFO"
    # Extra CA certificates (PEM) trusted for SMTP TLS: a campus relay with a private CA.
    smtp_ca_file: str | None = None
    testing: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        get = env.get
        instance = Path(get("PARKOPS_INSTANCE_PATH") or PROJECT_ROOT / "instance")
        settings = cls(
            instance_path=instance,
            database_url=get("PARKOPS_DATABASE_URL") or None,
            redis_url=get("PARKOPS_REDIS_URL") or None,
            mqtt_url=get("PARKOPS_MQTT_URL") or None,
            embedded_mqtt_port=_int("PARKOPS_EMBEDDED_MQTT_PORT", get("PARKOPS_EMBEDDED_MQTT_PORT"), 18830),
            mqtt_topic_prefix=get("PARKOPS_MQTT_TOPIC_PREFIX") or "parkops",
            secret_key=get("PARKOPS_SECRET_KEY") or None,
            host=get("PARKOPS_HOST") or "127.0.0.1",
            port=_int("PARKOPS_PORT", get("PARKOPS_PORT"), 8050),
            base_url=(get("PARKOPS_BASE_URL") or "").strip().rstrip("/"),
            allowed_hosts=_hosts(get("PARKOPS_ALLOWED_HOSTS")),
            timezone=get("PARKOPS_TIMEZONE") or "America/Toronto",
            tile_url=get("PARKOPS_TILE_URL") or cls.tile_url,
            simulator=_optional_bool(get("PARKOPS_SIMULATOR")),
            simulator_speed=_speed(get("PARKOPS_SIMULATOR_SPEED")),
            inprocess_workers=_optional_bool(get("PARKOPS_INPROCESS_WORKERS")),
            queue_name=get("PARKOPS_QUEUE") or "parkops",
            proxy_hops=_int("PARKOPS_PROXY_HOPS", get("PARKOPS_PROXY_HOPS"), 0),
            task_lease_seconds=_int("PARKOPS_TASK_LEASE_SECONDS", get("PARKOPS_TASK_LEASE_SECONDS"), 60),
            log_level=(get("PARKOPS_LOG_LEVEL") or "INFO").upper(),
            smtp_ca_file=get("PARKOPS_SMTP_CA_FILE") or None,
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"PARKOPS_TIMEZONE is not a known time zone: {self.timezone!r}") from exc
        if not 3 <= self.task_lease_seconds <= 3600:
            raise SettingsError("PARKOPS_TASK_LEASE_SECONDS must be between 3 and 3600")
        if not self.embedded_database and not self.secret_key and not self.testing:
            raise SettingsError(
                "PARKOPS_SECRET_KEY must be set when PARKOPS_DATABASE_URL points at a real database: "
                "it encrypts stored secrets and signs sessions"
            )
        if self.base_url:
            _check_base_url(self.base_url)
        elif not self.embedded_database and not self.testing:
            raise SettingsError(
                "PARKOPS_BASE_URL must be set when PARKOPS_DATABASE_URL points at a real database: "
                "links in e-mails and QR codes are built from it (e.g. https://parking.example.edu)"
            )

    # -- derived values -----------------------------------------------------------------------
    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.instance_path / 'parkops.db'}"

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def embedded_mqtt(self) -> bool:
        return self.mqtt_url is None

    @property
    def effective_mqtt_url(self) -> str:
        return self.mqtt_url or f"mqtt://parkops@127.0.0.1:{self.embedded_mqtt_port}"

    @property
    def run_inprocess_workers(self) -> bool:
        """Embedded Redis is private to ``parkops run``, so its workers must live in-process too."""
        return self.embedded_redis if self.inprocess_workers is None else self.inprocess_workers

    @property
    def run_simulator(self) -> bool:
        return self.embedded_mqtt if self.simulator is None else self.simulator

    @property
    def public_url(self) -> str:
        """Where people reach the site: every link that leaves a request (e-mails, QR codes) starts
        with it. Never the request's Host header, which whoever sends the request chooses."""
        if self.base_url:
            return self.base_url
        host = "127.0.0.1" if self.host in {"", "0.0.0.0", "::"} else self.host  # noqa: S104
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def trusted_hosts(self) -> list[str]:
        """Host names a request may name (Flask's ``TRUSTED_HOSTS``; other hosts get a 400): the
        public URL's, ``PARKOPS_ALLOWED_HOSTS``, and in embedded demo mode this machine's."""
        hosts = [urlsplit(self.public_url).hostname or "", *self.allowed_hosts]
        if self.embedded_database:
            hosts += ["localhost", "127.0.0.1"]
        return list(dict.fromkeys(f"[{h}]" if ":" in h else h for h in hosts if h))

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def resolved_secret_key(self) -> str:
        """The configured key, or in embedded demo mode one generated once and kept in ``instance/``.

        Keeping it on disk matters: stored secrets are encrypted with a key derived from it.
        """
        if self.secret_key:
            return self.secret_key
        self.instance_path.mkdir(parents=True, exist_ok=True)
        key_file = self.instance_path / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)
