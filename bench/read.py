"""The read benchmark: public availability under 200 concurrent clients, on the production setup.

    .venv/bin/python bench/read.py [--groups 500] [--clients 200] [--seconds 10]

Loads ``--groups`` lot groups (three lots each, a live figure each) into PostgreSQL and Redis,
starts gunicorn (``gthread``: 2 workers per core, 8 threads each) on a free port, and drives each
endpoint in turn, ``--clients`` connections at once for ``--seconds``, from one asyncio process:

- ``GET /api/v1/lot-groups``: the list the maps read (the hot path, cached one second in Redis);
- ``GET /api/v1/lot-groups/<id>``: one group, uncached (a few queries per request);
- ``GET /api/v1/ping``: the baseline, same server, gate and middleware, no work. Not ``/healthz``
  (it probes three services), nor an asset (its size would measure the network, not the app).

It prints requests/s, p50 and p95 per endpoint and each endpoint's throughput as a share of the
baseline, all at saturation (each client asks again as soon as it is answered), then the list's
latency with the same clients each polling once a second, as open map pages do. Targets from the
issue: ratio >= 0.5 (saturation) and p95 < 100 ms (the polling clients): at saturation, 200
clients always queue for ``clients / throughput`` seconds whatever the code does. The user map's
data callback is driven the same way: its first load (every pin, popup and table row) and the
refresh an open map sends on each push or poll (pins known: only figures), at saturation and
paced (``--map-poll``). The client shares the machine with the
server, so its own CPU use is printed too: a client near one full core is part of the limit.

The database is emptied and rebuilt (default: ``PARKOPS_TEST_DATABASE_URL``, else a local
``parkops_bench``, created if missing), and the Redis database is flushed: point them at nothing
that holds real data. Everything the script starts is stopped when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psycopg
import redis
from sqlalchemy import insert, make_url, text

from dashboard.db import Database
from dashboard.services.occupancy import LiveStore
from models import Lot, LotGroup, OccupancySource

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/parkops_bench"
LOTS_PER_GROUP = 3
Request = tuple[str, bytes | None]  # a path, and a JSON body to POST (None: a GET)
POST_HEADERS = {"Content-Type": "application/json"}
MAP_OUTPUT = "realtime-markers.children"
PINS_STORE = "realtime-pins"
THREADS = 32  # as the README recommends: a thread blocked sending a large body to a slow client waits alone


@dataclass
class Result:
    label: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


def ensure_database(url: str) -> None:
    """Create the database if the server does not have it yet (PostgreSQL only)."""
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        if (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (parsed.database,)).fetchone()
            is None
        ):
            conn.execute(f'CREATE DATABASE "{parsed.database}"')


def load(database_url: str, redis_url: str, groups: int) -> list[int]:
    """An empty schema, then ``groups`` mapped groups with lots and a live devices figure each."""
    db = Database(database_url)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.upgrade()
    rng = random.Random(7)
    now = datetime.now(UTC)
    with db.session() as session:
        rows = [
            {
                "name": f"Bench Group {n:04d}",
                "map_color": "#1f77b4",
                "latitude": 43.40 + rng.random() / 10,
                "longitude": -80.60 + rng.random() / 10,
                "show_on_map": True,
                "is_closed": n % 50 == 0,
                "created_at": now,
                "updated_at": now,
            }
            for n in range(groups)
        ]
        ids = list(
            session.scalars(insert(LotGroup).returning(LotGroup.id, sort_by_parameter_order=True), rows)
        )
        session.execute(
            insert(Lot),
            [
                {
                    "name": f"Bench Lot {group_id}-{n}",
                    "lot_group_id": group_id,
                    "capacity": 100,
                    "permits_allowed": 120,
                    "sells_standard": n != 2,
                    "sells_temporary": n == 2,
                    "created_at": now,
                    "updated_at": now,
                }
                for group_id in ids
                for n in range(LOTS_PER_GROUP)
            ],
        )
    db.dispose()
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    store = LiveStore(client)
    for group_id in ids:
        store.record(group_id, OccupancySource.DEVICES, rng.randint(0, 300), 300, now)
    client.close()
    return ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, database_url: str, redis_url: str, instance: Path) -> subprocess.Popen[bytes]:
    workers = 2 * (os.cpu_count() or 1)
    env = {
        **os.environ,
        "PARKOPS_DATABASE_URL": database_url,
        "PARKOPS_REDIS_URL": redis_url,
        # Never contacted by the web process; set so that no embedded broker starts.
        "PARKOPS_MQTT_URL": "mqtt://127.0.0.1:1883",
        "PARKOPS_SECRET_KEY": secrets.token_hex(32),
        "PARKOPS_BASE_URL": f"http://127.0.0.1:{port}",  # the benchmark's clients ask for this host
        "PARKOPS_INSTANCE_PATH": str(instance),
        "PARKOPS_LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable, "-m", "gunicorn", "dashboard.wsgi:app",
        "--worker-class", "gthread", "--workers", str(workers), "--threads", str(THREADS),
        "--bind", f"127.0.0.1:{port}", "--backlog", "2048", "--keep-alive", "30",
        "--log-level", "warning",
    ]  # fmt: skip
    print(f"gunicorn: {workers} gthread workers x {THREADS} threads on port {port}")
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


async def wait_ready(base: str, server: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit(f"gunicorn exited with code {server.returncode}")
            try:
                async with http.get(base + "/api/v1/ping") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit("gunicorn did not answer in time")


async def drive(
    base: str, label: str, requests: list[Request], clients: int, seconds: float, interval: float = 0.0
) -> Result:
    """``clients`` loops, each on its own keep-alive connection, for ``seconds`` after a warm-up.

    ``interval`` 0: each client sends its next request as soon as the last one is answered
    (saturation: the server's throughput). ``interval`` > 0: each client sends one request every
    ``interval`` seconds, as an open map page polling for updates does (latency under that load).
    """
    result = Result(label)
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    # Like a browser, ask for gzip; unlike one, don't inflate it: that CPU would be taken from the
    # server sharing this machine, where a real visitor's browser spends its own.
    headers = {"Accept-Encoding": "gzip"}
    async with aiohttp.ClientSession(connector=connector, headers=headers, auto_decompress=False) as http:

        async def client(number: int, until: float, record: bool) -> None:
            n = number
            due = time.perf_counter() + (interval * number / clients if interval else 0.0)
            while time.perf_counter() < until:
                if interval:
                    await asyncio.sleep(max(due - time.perf_counter(), 0.0))
                    due += interval
                path, body = requests[n % len(requests)]
                n += clients
                started = time.perf_counter()
                try:
                    call = (
                        http.post(base + path, data=body, headers=POST_HEADERS)
                        if body
                        else http.get(base + path)
                    )
                    async with call as response:
                        await response.read()
                        ok = response.status == 200
                except aiohttp.ClientError:
                    ok = False
                if record:
                    if ok:
                        result.latencies_ms.append((time.perf_counter() - started) * 1000)
                    else:
                        result.errors += 1

        warm = time.perf_counter() + min(2.0, seconds / 5)
        await asyncio.gather(*(client(n, warm, False) for n in range(clients)))
        started = time.perf_counter()
        await asyncio.gather(*(client(n, started + seconds, True) for n in range(clients)))
        result.seconds = time.perf_counter() - started
    return result


def report(results: list[Result], baseline: Result, client_cpu: dict[str, float], clients: int) -> None:
    print()
    print(
        f"{'endpoint':<46}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'errors':>8}{'ratio':>8}{'client CPU':>12}"
    )
    for r in results:
        ratio = r.rate / baseline.rate if baseline.rate and "every" not in r.label else float("nan")
        print(
            f"{r.label:<46}{r.rate:>9.0f}{statistics.median(r.latencies_ms or [float('nan')]):>9.1f}"
            f"{r.percentile(0.95):>9.1f}{r.errors:>8}{ratio:>8.2f}{client_cpu[r.label]:>11.0%}"
        )
    hot, paced = results[0], results[-1]
    ratio = hot.rate / baseline.rate if baseline.rate else 0.0
    verdict = "met" if ratio >= 0.5 else "NOT met"
    print(f"\ntarget ratio >= 0.5 (list vs ping at saturation): {ratio:.2f} {verdict}")
    p95 = paced.percentile(0.95)
    print(f"target p95 < 100 ms ({paced.label}): {p95:.1f} ms {'met' if p95 < 100 else 'NOT met'}")
    queue_ms = 1000 * clients / max(hot.rate, 1)
    print(f"(at saturation each request waits about clients / throughput = {queue_ms:.0f} ms in the queue)")


async def map_callbacks(base: str) -> tuple[bytes, bytes, int]:
    """The bodies a guest's browser POSTs for the user map (``pages.realtime.refresh``), built
    from the app's own ``/_dash-dependencies``: the first load (no pins yet, so every pin comes
    back) and a later refresh on a push or poll (the pins it has, so only the figures come back);
    and the size of the first load's answer."""
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/_dash-dependencies") as response:
            dependencies = await response.json()
        entry = next(d for d in dependencies if MAP_OUTPUT in d["output"])
        outputs = [
            {"id": part.split(".")[0], "property": part.split(".")[1]}
            for part in entry["output"].strip(".").split("...")
        ]
        inputs = [dict(spec, value=None) for spec in entry["inputs"]]

        def body(pins: object, changed: list[str]) -> bytes:
            state = [dict(spec, value=pins) for spec in entry["state"]]
            payload = {"output": entry["output"], "outputs": outputs, "inputs": inputs, "state": state}
            return json.dumps({**payload, "changedPropIds": changed}).encode()

        first = body(None, [])
        async with http.post(base + "/_dash-update-component", data=first, headers=POST_HEADERS) as response:
            answer = await response.read()
        pins = json.loads(answer)["response"][PINS_STORE]["data"]
    return first, body(pins, [f"{inputs[0]['id']}.{inputs[0]['property']}"]), len(answer)


async def run(args: argparse.Namespace, ids: list[int], base: str) -> None:
    group_paths = [
        (f"/api/v1/lot-groups/{group_id}", None) for group_id in random.Random(3).sample(ids, len(ids))
    ]
    the_list: list[Request] = [("/api/v1/lot-groups", None)]
    first_load, later, size = await map_callbacks(base)
    print(f"  the user map's first load answers {size / 1024:.0f} KiB of JSON (before gzip)")
    map_load: list[Request] = [("/_dash-update-component", first_load)]
    map_refresh: list[Request] = [("/_dash-update-component", later)]
    plan = [
        ("GET /api/v1/lot-groups", the_list, 0.0),
        ("GET /api/v1/lot-groups/<id>", group_paths, 0.0),
        ("GET /api/v1/ping (baseline)", [("/api/v1/ping", None)], 0.0),
        ("POST user map, first load", map_load, 0.0),
        ("POST user map, refresh", map_refresh, 0.0),
        (f"user map refresh, each client every {args.map_poll:g}s", map_refresh, args.map_poll),
        (f"GET /api/v1/lot-groups, each client every {args.poll:g}s", the_list, args.poll),
    ]
    results, cpu = [], {}
    for label, requests, interval in plan:
        before_wall, before_cpu = time.perf_counter(), time.process_time()
        results.append(await drive(base, label, requests, args.clients, args.seconds, interval))
        cpu[label] = (time.process_time() - before_cpu) / (time.perf_counter() - before_wall)
        print(f"  {label}: {len(results[-1].latencies_ms)} requests")
    report(results, results[2], cpu, args.clients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("PARKOPS_TEST_DATABASE_URL") or DEFAULT_DATABASE
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--poll", type=float, default=1.0, help="seconds between requests of one client in the paced run"
    )
    parser.add_argument(
        "--map-poll",
        type=float,
        default=15.0,
        help="seconds between map refreshes of one client (an open map page polls every 15 s while "
        "push works, and refreshes on each pushed change)",
    )
    args = parser.parse_args()

    ensure_database(args.database_url)
    started = time.perf_counter()
    ids = load(args.database_url, args.redis_url, args.groups)
    print(
        f"loaded {len(ids)} groups, {len(ids) * LOTS_PER_GROUP} lots in {time.perf_counter() - started:.1f} s"
    )
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="parkops-bench-") as instance:
        server = start_server(port, args.database_url, args.redis_url, Path(instance))
        try:
            base = f"http://127.0.0.1:{port}"
            asyncio.run(wait_ready(base, server))
            asyncio.run(run(args, ids, base))
        finally:
            stop(server)


def stop(server: subprocess.Popen[bytes]) -> None:
    """gunicorn and its workers: the process group the script started (its own session)."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:
        server.wait()  # already gone


if __name__ == "__main__":
    main()
