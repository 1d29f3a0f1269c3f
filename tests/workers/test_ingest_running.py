"""The running ingester against real services and their failures (issue 9): a stuck ingester shows
in ``/healthz``; a stop while Redis refuses writes acknowledges nothing; a broker that forgot the
session is reported; the README's Mosquitto configuration keeps what it queued across a restart;
a second ingester refuses to start; a Redis restart brings the live figures back as stale.

Servers that a test restarts are its own (``tests/workers/conftest.py``); a test that needs the
machine's Mosquitto is marked ``services``."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.cli import main
from dashboard.core import Core
from dashboard.embedded import EMBEDDED_USERNAME, EmbeddedBroker
from dashboard.services import dashboard_widgets, feed_health
from dashboard.services.devices import DUPLICATES_KEY, MESSAGES_KEY, UNKNOWN_DEVICES_KEY
from dashboard.services.feed_health import LOCK_KEY
from dashboard.services.occupancy import LiveStore, Staleness, group_states
from models import DeviceKind, Lot, LotDeviceState, LotGroup, Role, SensingDevice, UnknownDeviceMessage
from tests.conftest import TEST_MQTT_PORT
from tests.dash_helpers import dash_post, find_output, outputs_of
from tests.ports import restartable_port
from tests.workers.servers import PrivateMosquitto, PrivateRedis, refused_writes
from workers import ingest, ingest_lock
from workers.mqtt import make_client, probe

DEADLINE_SECONDS = 20.0
README = Path(__file__).resolve().parents[2] / "README.md"


def _wait_for(condition: Callable[[], object], what: str, deadline: float = DEADLINE_SECONDS) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {deadline}s waiting for {what}")


@dataclasses.dataclass
class Garage:
    group_id: int
    lot_id: int
    counter: str


@pytest.fixture
def garage(core: Core) -> Garage:
    """North Campus Garage: one lot of 500 spaces counted by an entrance counter."""
    counter = f"cnt-ncg-{uuid.uuid4().hex[:6]}"
    with core.db.session() as s:
        group = LotGroup(name="North Campus Garage", map_color="#224466")
        lot = Lot(name="North Campus Garage P1", code="NCG", capacity=500, lot_group=group)
        s.add_all([group, lot, SensingDevice(device_id=counter, kind=DeviceKind.COUNTER, lot=lot)])
        s.flush()
        return Garage(group.id, lot.id, counter)


def _event(core: Core, garage: Garage, direction: str = "in") -> tuple[str, bytes]:
    body = {"event_id": str(uuid.uuid4()), "direction": direction, "ts": datetime.now(UTC).isoformat()}
    return f"{core.settings.mqtt_topic_prefix}/counters/{garage.counter}/events", json.dumps(body).encode()


def _count(core: Core, garage: Garage, occupied: int, capacity: int) -> tuple[str, bytes]:
    body = {"occupied": occupied, "capacity": capacity, "ts": datetime.now(UTC).isoformat()}
    return f"{core.settings.mqtt_topic_prefix}/counters/{garage.counter}/count", json.dumps(body).encode()


def _publish(url: str, messages: list[tuple[str, bytes]]) -> None:
    client, address = make_client(url, f"parkops-test-pub-{uuid.uuid4().hex[:8]}")
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        for topic, payload in messages:
            info = client.publish(topic, payload, qos=1)
            info.wait_for_publish(5)
            assert info.is_published(), "the broker did not acknowledge a publish"
    finally:
        client.disconnect()
        client.loop_stop()


def _drop_session(url: str, client_id: str) -> None:
    """Connect once with a clean session so the broker forgets the test ingester's session."""
    client, address = make_client(url, client_id)
    client.connect(address.host, address.port)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


def _count_in_redis(core: Core, garage: Garage) -> int:
    return int(core.redis.hget(ingest.LOT_COUNTER_KEY.format(garage.lot_id), "count") or 0)


@contextmanager
def _ingester(core: Core, client_id: str) -> Iterator[threading.Thread]:
    stop = threading.Event()
    thread = ingest.start_ingester_thread(core, stop, client_id=client_id)
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive(), "the ingester did not stop"


def _until_subscribed(core: Core, client_id: str) -> None:
    """Wait until the ingester ``client_id`` has its subscription (it records that in Redis)."""
    key = ingest.SESSION_KEY.format(client_id)
    _wait_for(lambda: core.redis.exists(key), "the ingester's subscription")


def _until_counting(core: Core, garage: Garage) -> None:
    """Publish single events until the ingester counts one (after a broker restart: once it has
    subscribed again). How many it counts is not exact: for tests that compare nothing after."""
    before = _count_in_redis(core, garage)
    _wait_for(
        lambda: _publish(core.mqtt_url, [_event(core, garage)]) or _count_in_redis(core, garage) > before,
        "the ingester to count",
    )


def _one_more(core: Core, garage: Garage, message: tuple[str, bytes] | None = None) -> int:
    """Publish one message (an event by default) and wait until the count moves; returns it."""
    before = _count_in_redis(core, garage)
    _publish(core.mqtt_url, [message or _event(core, garage)])
    _wait_for(lambda: _count_in_redis(core, garage) != before, "the ingester to count")
    return _count_in_redis(core, garage)


# -- item 1: a stuck ingester turns /healthz to 503 ------------------------------------------


def test_a_stuck_ingester_turns_healthz_503_and_shows_why(
    app, core: Core, garage: Garage, client, login_as, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses to keep messages of unknown devices (a trigger): one such message
    waits, unacknowledged; after the threshold ``/healthz`` answers 503 for the MQTT part
    (anonymous callers read "ingester stuck", an admin reads why) and the dashboard's feed widget
    says so. Once the database takes writes again, the message is kept once and the counters
    moved once."""
    monkeypatch.setattr(feed_health, "STUCK_AFTER_SECONDS", 1)
    monkeypatch.setattr(ingest, "RETRY_MAX_SECONDS", 1.0)
    client_id = f"parkops-ingest-test-{uuid.uuid4().hex[:8]}"
    admin = login_as(Role.ADMIN)
    body = {"event_id": "u-1", "direction": "in", "ts": datetime.now(UTC).isoformat()}
    unknown = (f"{core.settings.mqtt_topic_prefix}/counters/cnt-unmapped/events", json.dumps(body).encode())
    try:
        with _ingester(core, client_id):
            _until_subscribed(core, client_id)
            seen = _one_more(core, garage)
            # The feed's counters move just after the batch is kept, a moment after the count.
            _wait_for(lambda: core.redis.get(MESSAGES_KEY) is not None, "the feed's counters")
            messages_before = int(core.redis.get(MESSAGES_KEY))
            assert client.get("/healthz").status_code == 200
            with refused_writes(core, "unknown_device_messages"):
                _publish(core.mqtt_url, [unknown])
                _wait_for(lambda: client.get("/healthz").status_code == 503, "/healthz to turn 503")
                body = client.get("/healthz").get_json()
                assert body["checks"]["mqtt"]["error"] == "ingester stuck"
                assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
                detailed = admin.get("/healthz").get_json()["checks"]["mqtt"]["error"]
                assert "waiting to be applied" in detailed and "refused by the test" in detailed
                widget = dashboard_widgets.dead_letters(session, core.redis, datetime.now(UTC))
                assert widget.stuck and "1 message(s) waiting" in widget.stuck
            _wait_for(lambda: client.get("/healthz").status_code == 200, "/healthz to recover")
            assert _count_in_redis(core, garage) == seen
            assert core.redis.hgetall(UNKNOWN_DEVICES_KEY) == {b"cnt-unmapped": b"1"}
            assert int(core.redis.get(MESSAGES_KEY)) == messages_before + 1
            assert core.redis.get(DUPLICATES_KEY) is None
    finally:
        _drop_session(core.mqtt_url, client_id)


def test_a_nul_payload_on_the_wire_does_not_stop_the_feed(
    core: Core, garage: Garage, session: Session
) -> None:
    """The issue's case end to end: a NUL byte in a counter message, then ordinary events. The
    NUL message becomes one dead letter (stored on PostgreSQL in the service run) and the events
    after it are counted."""
    client_id = f"parkops-ingest-test-{uuid.uuid4().hex[:8]}"
    topic = f"{core.settings.mqtt_topic_prefix}/counters/{garage.counter}/events"
    poison = (
        b'{"event_id": "\x00", "direction": "in", "ts": "' + datetime.now(UTC).isoformat().encode() + b'"}'
    )
    try:
        with _ingester(core, client_id):
            _until_subscribed(core, client_id)
            seen = _count_in_redis(core, garage)
            _publish(core.mqtt_url, [(topic, poison), *(_event(core, garage) for _ in range(3))])
            _wait_for(lambda: _count_in_redis(core, garage) == seen + 3, "the events after the NUL message")
    finally:
        _drop_session(core.mqtt_url, client_id)
    letters = dashboard_widgets.dead_letters(session, None, datetime.now(UTC)).latest
    assert [(letter.topic, letter.reason) for letter in letters] == [(topic, "payload holds a NUL byte")]
    assert letters[0].payload == poison.decode().replace("\x00", "\u2400")


# -- item 3: a graceful stop acknowledges only what was applied -------------------------------


@pytest.mark.services
def test_a_stop_while_redis_refuses_writes_acknowledges_nothing(
    core: Core, garage: Garage, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis refuses writes (``min-replicas-to-write``), 100 cars come in, the ingester is
    stopped (what SIGTERM does), Redis takes writes again, the ingester starts again: +100, each
    once. Needs Mosquitto: the embedded broker drops a message left unacknowledged for 5 s."""
    own = dataclasses.replace(core, redis=private_redis.client(), redis_url=private_redis.url)
    client_id = f"parkops-ingest-test-{uuid.uuid4().hex[:8]}"
    caplog.set_level(logging.WARNING, logger="workers.ingest")
    try:
        with _ingester(own, client_id):
            _until_subscribed(own, client_id)
            start = _one_more(own, garage)
            own.redis.config_set("min-replicas-to-write", 1)
            _publish(own.mqtt_url, [_event(own, garage) for _ in range(100)])
            _wait_for(
                lambda: any("wait unapplied" in r.getMessage() for r in caplog.records),
                "the ingester to fail on the refused writes",
            )
        assert any(
            "stopping with" in r.getMessage() and "not applied" in r.getMessage() for r in caplog.records
        )
        own.redis.config_set("min-replicas-to-write", 0)
        assert _count_in_redis(own, garage) == start
        with _ingester(own, client_id):
            _wait_for(lambda: _count_in_redis(own, garage) >= start + 100, "the 100 redelivered events")
        assert _count_in_redis(own, garage) == start + 100
    finally:
        _drop_session(own.mqtt_url, client_id)


# -- item 4: a broker that forgot the session, and the README's Mosquitto configuration -------


def test_a_broker_that_forgot_the_session_is_reported_loudly(
    app, core: Core, garage: Garage, login_as, caplog: pytest.LogCaptureFixture
) -> None:
    """A private embedded broker restarted under the running ingester comes back without its
    session (amqtt keeps none across a restart, like Mosquitto without persistence): a WARNING,
    a count in Redis, and Sensor Feed Health says what it means."""
    port = restartable_port()
    own = dataclasses.replace(core, mqtt_url=f"mqtt://{EMBEDDED_USERNAME}@127.0.0.1:{port}")
    caplog.set_level(logging.WARNING, logger="workers.ingest")
    broker = EmbeddedBroker(port)
    broker.start()
    try:
        with _ingester(own, client_id := f"parkops-ingest-test-{uuid.uuid4().hex[:8]}"):
            _until_subscribed(own, client_id)
            assert feed_health.read_sessions_lost(core.redis).count == 0
            broker.stop()
            broker = EmbeddedBroker(port)
            broker.start()
            # At least once: amqtt may also take one last connection while it shuts down, sessionless too.
            _wait_for(lambda: feed_health.read_sessions_lost(core.redis).count >= 1, "the lost session count")
            _until_counting(own, garage)  # and it subscribed again
    finally:
        broker.stop()
    lost = feed_health.read_sessions_lost(core.redis).count
    warnings = [r for r in caplog.records if "forgot this ingester's session" in r.getMessage()]
    assert len(warnings) == lost and {r.levelno for r in warnings} == {logging.WARNING}
    out = outputs_of(
        dash_post(login_as(Role.ADMIN), app, find_output(app, "ingest-messages.children"), [None, ""])
    )
    assert out["ingest-sessions-lost"]["children"] == str(lost)
    assert f"forgot the ingester's session {lost} time(s)" in json.dumps(out["ingest-status"]["children"])


def readme_block(title: str) -> str:
    """The first fenced block after the README's prose names ``title`` (in backquotes)."""
    text = README.read_text()
    found = re.search(re.escape(f"`{title}`") + r".*?```[a-z]*\n(.*?)```", text, re.S)
    assert found, f"README has no block after {title!r}"
    return found.group(1)


def readme_mosquitto(broker: PrivateMosquitto, passwords: dict[str, str], prefix: str) -> None:
    """Exactly the README's files, with the paths and the port of this private broker (and the
    test run's topic prefix, as the README says to when PARKOPS_MQTT_TOPIC_PREFIX is changed)."""
    config = readme_block("/etc/mosquitto/mosquitto.conf")
    acl = readme_block("/etc/mosquitto/parkops.acl").replace("parkops/", f"{prefix}/")
    replacements = {
        "listener 1883": f"listener {broker.port} 127.0.0.1",
        "/etc/mosquitto/parkops.passwd": str(broker.folder / "parkops.passwd"),
        "/etc/mosquitto/parkops.acl": str(broker.folder / "parkops.acl"),
        "/var/lib/mosquitto/": f"{broker.folder}/",
    }
    for old, new in replacements.items():
        assert config.count(old) == 1, f"{old!r} should appear once in the README's configuration"
        config = config.replace(old, new)
    broker.write("mosquitto.conf", config)
    broker.write("parkops.acl", acl)
    passwd = broker.write("parkops.passwd", "")
    for user, password in passwords.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    passwd.chmod(0o644)


@pytest.mark.services
def test_the_readme_mosquitto_configuration_keeps_queued_events_across_a_broker_restart(
    core: Core, garage: Garage, private_mosquitto: PrivateMosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """Mosquitto started with exactly the README's configuration (paths and port aside): a
    counter publishes while the ingester is away, the broker restarts, the ingester comes back:
    every event is counted, the session is still there (no warning). Anonymous clients are
    refused, and a device class cannot publish on another class's topics."""
    prefix = core.settings.mqtt_topic_prefix
    passwords = {"parkops": "ingest-secret", "counters": "counters-secret", "sensors": "sensors-secret"}
    readme_mosquitto(private_mosquitto, passwords, prefix)
    private_mosquitto.start()
    base = f"127.0.0.1:{private_mosquitto.port}"
    own = dataclasses.replace(core, mqtt_url=f"mqtt://parkops:ingest-secret@{base}")
    counters_url = f"mqtt://counters:counters-secret@{base}"
    client_id = f"parkops-ingest-test-{uuid.uuid4().hex[:8]}"
    caplog.set_level(logging.INFO, logger="workers.ingest")
    with pytest.raises(ConnectionError, match="refused"):
        probe(f"mqtt://{base}")  # anonymous
    denied = (f"{prefix}/sensors/spc-1/state", b'{"occupied": true, "ts": "2026-12-01T08:00:00+00:00"}')
    assert _delivered(own.mqtt_url, counters_url, [denied, _event(own, garage)]) == [_event(own, garage)[0]]
    with _ingester(own, client_id):
        _until_subscribed(own, client_id)
    start = _count_in_redis(own, garage)
    _publish(counters_url, [_event(own, garage) for _ in range(50)])
    private_mosquitto.restart()
    with _ingester(own, client_id):
        _wait_for(
            lambda: _count_in_redis(own, garage) == start + 50, "the 50 events queued before the restart"
        )
    assert not any("forgot this ingester's session" in r.getMessage() for r in caplog.records)
    assert any("session present" in r.getMessage() for r in caplog.records)


def _delivered(reader_url: str, publisher_url: str, messages: list[tuple[str, bytes]]) -> list[str]:
    """The topics of ``messages`` (published in order by one client) that a subscriber to the
    whole tree receives, up to the last one: the broker keeps one publisher's order, so a message
    the ACL refused is known missing once the message after it has arrived."""
    client, address = make_client(reader_url, f"parkops-test-reader-{uuid.uuid4().hex[:8]}")
    subscribed, last = threading.Event(), threading.Event()
    received: list[str] = []
    prefix = messages[-1][0].split("/", 1)[0]

    def on_message(_c: object, _u: object, message: object) -> None:
        received.append(message.topic)  # type: ignore[attr-defined]
        if message.topic == messages[-1][0]:  # type: ignore[attr-defined]
            last.set()

    client.on_connect = lambda c, *_: c.subscribe(f"{prefix}/#", 1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = on_message
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        assert subscribed.wait(5), "the reader could not subscribe"
        _publish(publisher_url, messages)
        assert last.wait(5), "the last message did not arrive"
    finally:
        client.disconnect()
        client.loop_stop()
    return received


# -- item 6: one ingester at a time -----------------------------------------------------------


def test_a_second_ingester_refuses_to_start_and_the_first_runs_on(
    core: Core, garage: Garage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ingesters would share the client id and evict each other from the broker: the second
    one refuses, naming the first (host and process), and the first keeps counting."""
    monkeypatch.setattr(ingest_lock, "LOCK_TTL_SECONDS", 3)
    monkeypatch.setattr(ingest_lock, "LOCK_REFRESH_SECONDS", 0.5)
    first_id = f"parkops-ingest-test-{uuid.uuid4().hex[:8]}"
    second_stop = threading.Event()
    timer = threading.Timer(10, second_stop.set)  # without the lock the second would run until stopped
    try:
        with _ingester(core, first_id):
            _until_subscribed(core, first_id)
            timer.start()
            with pytest.raises(
                ingest_lock.AnotherIngesterRunning, match=r"another ParkOps ingester is running \(host"
            ):
                ingest.run_ingester(core, second_stop, client_id=first_id)
            _one_more(core, garage)  # the first still counts
    finally:
        timer.cancel()
        _drop_session(core.mqtt_url, first_id)


def test_parkops_ingest_exits_with_a_clear_message_when_another_runs(
    core: Core, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_lock, "LOCK_TTL_SECONDS", 1)
    other = {"host": "ingest-host-2", "pid": 4242, "since": "2026-12-01T08:00:00+00:00", "id": "x"}
    core.redis.set(LOCK_KEY, json.dumps(other), ex=60)
    env = {
        "PARKOPS_INSTANCE_PATH": str(tmp_path),
        "PARKOPS_EMBEDDED_MQTT_PORT": str(TEST_MQTT_PORT),
        "PARKOPS_DATABASE_URL": core.settings.effective_database_url,
        "PARKOPS_REDIS_URL": core.redis_url,
        "PARKOPS_MQTT_URL": core.mqtt_url,
        "PARKOPS_SECRET_KEY": "test-secret-key-not-for-production",
        "PARKOPS_BASE_URL": core.settings.public_url,  # required with a real database
    }
    result = CliRunner().invoke(main, ["ingest"], env=env)
    assert result.exit_code == 1
    assert "another ParkOps ingester is running (host ingest-host-2, process 4242" in result.output
    assert "only one may run at a time" in result.output


def test_a_killed_ingesters_lock_on_this_host_is_taken_at_once(core: Core) -> None:
    """``kill -9`` leaves the lock behind until it expires; a restart on the same host sees that
    its process is gone and takes it without waiting."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    lock = ingest_lock.IngestLock(core.redis)
    core.redis.set(
        LOCK_KEY, json.dumps({"host": lock.host, "pid": gone.pid, "since": "-", "id": "old"}), ex=60
    )
    assert lock.acquire(threading.Event(), wait=0)
    assert json.loads(core.redis.get(LOCK_KEY))["pid"] == json.loads(lock.value)["pid"]
    lock.release()


# -- item 7: a Redis restart brings the figures back, stale --------------------------------------


def _devices_state(core: Core, garage: Garage) -> tuple[str, str, int | None, int | None, bool]:
    with core.db.session() as s:
        (state,) = group_states(s, LiveStore(core.redis), Staleness(), datetime.now(UTC), [garage.group_id])
    return (
        state.status,
        str(state.primary.source),
        state.primary.occupied,
        state.primary.capacity,
        state.primary.stale,
    )


def test_after_a_redis_restart_the_live_figures_come_back_stale_until_the_devices_speak(
    core: Core, garage: Garage, private_redis: PrivateRedis
) -> None:
    """North Campus Garage at 333/500; Redis restarts empty (no persistence): the garage reads
    333/500 from its devices, marked stale (never the permit figure 0/500 as if live), then live
    again with the next car. The same when the ingester itself starts after the restart."""
    own = dataclasses.replace(core, redis=private_redis.client(), redis_url=private_redis.url)
    client_id = f"parkops-ingest-test-{uuid.uuid4().hex[:8]}"
    try:
        with _ingester(own, client_id):
            _until_subscribed(own, client_id)
            assert _one_more(own, garage, _count(own, garage, 333, 500)) == 333
            _wait_for(lambda: _saved_count(own, garage) == 333, "the lot's state to be saved (every second)")
            assert _devices_state(own, garage) == ("open", "devices", 333, 500, False)
            private_redis.restart()
            _wait_for(
                lambda: _quiet(lambda: _devices_state(own, garage)) == ("stale", "devices", 333, 500, True),
                "the restored figure " + str(_quiet(lambda: _devices_state(own, garage))),
            )
            _publish(own.mqtt_url, [_event(own, garage)])
            _wait_for(
                lambda: _devices_state(own, garage) == ("open", "devices", 334, 500, False), "the next car"
            )
            _wait_for(lambda: _saved_count(own, garage) == 334, "the lot's state to be saved")
        private_redis.restart()
        with _ingester(own, client_id):
            _wait_for(
                lambda: _quiet(lambda: _devices_state(own, garage)) == ("stale", "devices", 334, 500, True),
                "the figure restored on start",
            )
            _publish(own.mqtt_url, [_event(own, garage, "out")])
            _wait_for(
                lambda: _devices_state(own, garage) == ("open", "devices", 333, 500, False), "the next car"
            )
    finally:
        _drop_session(own.mqtt_url, client_id)


def _saved_count(core: Core, garage: Garage) -> int | None:
    with core.db.session() as s:
        return s.scalar(select(LotDeviceState.count).where(LotDeviceState.lot_id == garage.lot_id))


def _quiet(read: Callable[[], object]) -> object:
    """A read that may meet the Redis restart half way."""
    try:
        return read()
    except redis.RedisError:
        return None


# -- issue 14: batches are applied in a second thread ---------------------------------------------


@dataclasses.dataclass
class _Gate:
    """Holds the applying thread inside the first batch that has the garage's messages until
    ``release`` is set, and records the acknowledgements the ingester sends (their message ids)."""

    entered: threading.Event
    release: threading.Event
    acked: list[int]


def _gate(monkeypatch: pytest.MonkeyPatch, garage: Garage) -> _Gate:
    gate = _Gate(threading.Event(), threading.Event(), [])
    process = ingest._process
    ack = mqtt.Client.ack

    def held(ingester: ingest.Ingester, part: list[ingest.Delivery]) -> None:
        if not gate.entered.is_set() and any(garage.counter in d.topic for d in part):
            gate.entered.set()
            gate.release.wait(DEADLINE_SECONDS)
        process(ingester, part)

    def recorded(client: mqtt.Client, mid: int, qos: int) -> mqtt.MQTTErrorCode:
        gate.acked.append(mid)
        return ack(client, mid, qos)

    monkeypatch.setattr(ingest, "_process", held)
    monkeypatch.setattr(mqtt.Client, "ack", recorded)
    return gate


def _status_waiting(core: Core) -> int:
    return int(core.redis.hget(feed_health.STATUS_KEY, "waiting") or 0)


def test_the_next_batch_is_read_while_one_is_applied_and_nothing_is_acknowledged_before_it_applies(
    core: Core, garage: Garage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The applying thread is held inside a batch of one car: the reading thread reads the next
    four meanwhile (the status counts five waiting) and acknowledges nothing; once the batch is
    through, all five are counted once and acknowledged once."""
    gate = _gate(monkeypatch, garage)
    client_id = f"parkops-ingest-test-{uuid.uuid4().hex[:8]}"
    try:
        with _ingester(core, client_id):
            _until_subscribed(core, client_id)
            start = _count_in_redis(core, garage)
            _publish(core.mqtt_url, [_event(core, garage)])
            _wait_for(gate.entered.is_set, "the applying thread to take the first car")
            _publish(core.mqtt_url, [_event(core, garage) for _ in range(4)])
            _wait_for(lambda: _status_waiting(core) == 5, "the four cars behind it to be read")
            assert gate.acked == [] and _count_in_redis(core, garage) == start
            gate.release.set()
            _wait_for(lambda: len(gate.acked) == 5, "five acknowledgements")
            assert _count_in_redis(core, garage) == start + 5
            _wait_for(lambda: _status_waiting(core) == 0, "nothing waiting")
        assert len(set(gate.acked)) == 5 and _count_in_redis(core, garage) == start + 5
        assert core.redis.get(DUPLICATES_KEY) is None
    finally:
        _drop_session(core.mqtt_url, client_id)


def test_a_stop_while_a_batch_is_applied_finishes_it_and_leaves_the_rest_unacknowledged(
    core: Core, garage: Garage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopped while the applying thread is inside a batch (one car) and four more wait in the
    hand-off: that batch is finished and acknowledged, the four are neither applied nor
    acknowledged (the broker delivers them again), and the ingester stops."""
    gate = _gate(monkeypatch, garage)
    subscribers: list[ingest._Subscriber] = []
    run = ingest._Subscriber.run

    def recorded_run(subscriber: ingest._Subscriber) -> None:
        subscribers.append(subscriber)
        run(subscriber)

    def release_once_stopping() -> None:
        end = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < end and not (subscribers and subscribers[0].closing):
            time.sleep(0.01)
        gate.release.set()

    monkeypatch.setattr(ingest._Subscriber, "run", recorded_run)
    caplog.set_level(logging.WARNING, logger="workers.ingest")
    client_id = f"parkops-ingest-test-{uuid.uuid4().hex[:8]}"
    try:
        with _ingester(core, client_id):
            _until_subscribed(core, client_id)
            start = _count_in_redis(core, garage)
            _publish(core.mqtt_url, [_event(core, garage)])
            _wait_for(gate.entered.is_set, "the applying thread to take the first car")
            _publish(core.mqtt_url, [_event(core, garage) for _ in range(4)])
            _wait_for(lambda: _status_waiting(core) == 5, "the four cars behind it to be read")
            threading.Thread(target=release_once_stopping, daemon=True).start()
        assert gate.release.is_set() and len(gate.acked) == 1
        assert _count_in_redis(core, garage) == start + 1
        assert any("stopping with 4 message(s) not applied" in r.getMessage() for r in caplog.records), [
            r.getMessage() for r in caplog.records
        ]
    finally:
        _drop_session(core.mqtt_url, client_id)


@pytest.mark.services
def test_a_batch_that_fails_after_redis_counted_it_is_delivered_again_and_counted_once(
    core: Core, garage: Garage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch fails in the applying thread half way: Redis counted its five cars, then the
    database refused to keep the unknown device's message in it. Nothing is acknowledged; stopped
    (what SIGTERM does) and started again with the database taking writes, the broker delivers
    all six again: the cars count once (five duplicates recognised), the message is kept once.
    Needs Mosquitto: the embedded broker drops a message left unacknowledged for 5 s."""
    monkeypatch.setattr(ingest, "RETRY_MAX_SECONDS", 1.0)
    caplog.set_level(logging.WARNING, logger="workers.ingest")
    client_id = f"parkops-ingest-test-{uuid.uuid4().hex[:8]}"
    stranger = f"cnt-unmapped-{uuid.uuid4().hex[:6]}"
    body = {"event_id": str(uuid.uuid4()), "direction": "in", "ts": datetime.now(UTC).isoformat()}
    unknown = (f"{core.settings.mqtt_topic_prefix}/counters/{stranger}/events", json.dumps(body).encode())
    try:
        with _ingester(core, client_id):
            _until_subscribed(core, client_id)
            start = _one_more(core, garage)
            with refused_writes(core, "unknown_device_messages"):
                _publish(core.mqtt_url, [unknown, *(_event(core, garage) for _ in range(5))])
                # Retried with the cars behind it: Redis counts them, the database refuses.
                _wait_for(lambda: _count_in_redis(core, garage) == start + 5, "Redis to count the cars")
                _wait_for(lambda: _status_waiting(core) == 6, "the six to wait, unacknowledged")
                _wait_for(lambda: core.redis.hget(feed_health.STATUS_KEY, "last_error"), "the error")
        assert any("stopping with 6 message(s) not applied" in r.getMessage() for r in caplog.records)
        assert core.redis.hget(UNKNOWN_DEVICES_KEY, stranger) is None
        with _ingester(core, client_id):
            _wait_for(lambda: core.redis.hget(UNKNOWN_DEVICES_KEY, stranger) == b"1", "the message kept")
            _wait_for(lambda: core.redis.get(DUPLICATES_KEY) == b"5", "the five cars seen again")
        assert _count_in_redis(core, garage) == start + 5
        with core.db.session() as s:
            kept = s.scalars(select(UnknownDeviceMessage).where(UnknownDeviceMessage.device_id == stranger))
            assert len(kept.all()) == 1
    finally:
        _drop_session(core.mqtt_url, client_id)
