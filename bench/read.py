"""The read benchmark: public availability under 200 concurrent clients, on the production setup.

    .venv/bin/python bench/read.py [--groups 500] [--clients 200] [--seconds 10]

Loads ``--groups`` lot groups (three lots each, a live figure each) into PostgreSQL and Redis,
starts gunicorn (``gthread``: 2 workers per core, 8 threads each) on a free port, and drives each
endpoint in turn, ``--clients`` connections at once for ``--seconds``, from one asyncio process:

- ``GET /api/v1/lot-groups``: the list the maps read (the hot path, cached one second in Redis);
- ``GET /api/v1/lot-groups/<id>``: one group, uncached (a few queries per request);
- ``GET /api/v1/ping``: the baseline, same server, gate and middleware, no work. Not ``/healthz``
  (it probes three services), nor an asset (its size would measure the network, not the app);
- ``GET /live/user-map.json``: the user map's data, which the page's script draws: a new
  visitor's first load, the re-read after a change the page could not apply from the pushed
  message (the body is new: downloaded whole) and a poll that finds nothing changed (304). A
  pushed change of the figure a pin shows costs no request: the page applies the message.

It prints requests/s, p50 and p95 per endpoint and each endpoint's throughput as a share of the
baseline, all at saturation (each client asks again as soon as it is answered), then the list's
latency with the same clients each polling once a second, as open map pages do. Targets from the
issue: the list's ratio >= 0.8 (saturation) and p95 < 100 ms (the polling clients): at
saturation, 200 clients always queue for ``clients / throughput`` seconds whatever the code does;
the user map's data, ratio >= 0.5 on its first load and on a refresh, also paced
(``--map-poll``). The client shares the machine with the server, so its own CPU use is printed
too: a client near one full core is part of the limit.

The database is emptied and rebuilt (default: ``PARKOPS_TEST_DATABASE_URL``, else a local
``parkops_bench``, created if missing), and the Redis database is flushed: point them at nothing
that holds real data. Everything the script starts is stopped when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
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
# a path, a JSON body to POST (None: a GET), an ETag to send as If-None-Match, the status expected
Request = tuple[str, bytes | None, str | None, int]
POST_HEADERS = {"Content-Type": "application/json"}
USER_MAP = "/live/user-map.json"
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
                path, body, etag, expected = requests[n % len(requests)]
                n += clients
                started = time.perf_counter()
                try:
                    call = (
                        http.post(base + path, data=body, headers=POST_HEADERS)
                        if body
                        else http.get(base + path, headers={"If-None-Match": etag} if etag else None)
                    )
                    async with call as response:
                        await response.read()
                        ok = response.status == expected
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


BASELINE = "GET /api/v1/ping (baseline)"
TARGETS = {"GET /api/v1/lot-groups": 0.8, "GET user map data, first load": 0.5}


def report(rounds: list[dict[str, Result]], client_cpu: dict[str, float], clients: int) -> int:
    """Per endpoint: requests/s (median over the rounds), p50 and p95 over every round's requests,
    and the ratio to ping taken round by round (each against the ping of its own round), median.
    Returns the number of requests that failed (an error, or not the answer expected)."""
    print()
    print(
        f"{'endpoint':<46}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'errors':>8}{'ratio':>8}{'client CPU':>12}"
    )
    ratios: dict[str, float] = {}
    for label in rounds[-1]:
        runs = [found[label] for found in rounds if label in found]
        latencies = [ms for r in runs for ms in r.latencies_ms]
        merged = Result(label, latencies, sum(r.errors for r in runs))
        per_round = [
            found[label].rate / found[BASELINE].rate
            for found in rounds
            if label in found and BASELINE in found and found[BASELINE].rate and "every" not in label
        ]
        ratios[label] = statistics.median(per_round) if per_round else float("nan")
        rate = statistics.median(r.rate for r in runs)
        shown = " / ".join(f"{r:.2f}" for r in per_round) if len(per_round) > 1 else ""
        print(
            f"{label:<46}{rate:>9.0f}{statistics.median(latencies or [float('nan')]):>9.1f}"
            f"{merged.percentile(0.95):>9.1f}{merged.errors:>8}{ratios[label]:>8.2f}"
            f"{client_cpu[label]:>11.0%}  {shown}"
        )
    print()
    for label, wanted in [*TARGETS.items(), ("GET user map data, re-read after a change", 0.5)]:
        verdict = "met" if ratios[label] >= wanted else "NOT met"
        print(f"target ratio >= {wanted:g} ({label} vs ping): {ratios[label]:.2f} {verdict}")
    paced = rounds[-1][list(rounds[-1])[-1]]
    p95 = paced.percentile(0.95)
    print(f"target p95 < 100 ms ({paced.label}): {p95:.1f} ms {'met' if p95 < 100 else 'NOT met'}")
    hot = rounds[0]["GET /api/v1/lot-groups"]
    queue_ms = 1000 * clients / max(hot.rate, 1)
    print(f"(at saturation each request waits about clients / throughput = {queue_ms:.0f} ms in the queue)")
    return sum(r.errors for found in rounds for r in found.values())


async def user_map_etag(base: str) -> tuple[str, int, int]:
    """The ETag a guest's browser holds after its first load of the user map's data
    (``/live/user-map.json``, which the page's script draws), and the body's size as sent (gzip)
    and before compression."""
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        async with http.get(base + USER_MAP, headers={"Accept-Encoding": "gzip"}) as response:
            sent = len(await response.read())
            etag = response.headers["ETag"]
        async with http.get(base + USER_MAP, headers={"Accept-Encoding": "identity"}) as response:
            plain = len(await response.read())
    return etag, sent, plain


async def run(args: argparse.Namespace, ids: list[int], base: str) -> None:
    group_paths = [
        (f"/api/v1/lot-groups/{group_id}", None, None, 200)
        for group_id in random.Random(3).sample(ids, len(ids))
    ]
    the_list: list[Request] = [("/api/v1/lot-groups", None, None, 200)]
    etag, sent, plain = await user_map_etag(base)
    print(f"  the user map's data: {sent / 1024:.0f} KiB gzipped ({plain / 1024:.0f} KiB of JSON)")
    # A new visitor's browser holds nothing. A pushed change of the figure a pin shows costs no
    # request (the page applies the message); any other change makes the page ask with
    # ``?fresh=1`` and the ETag it holds, an older one, so the new body comes back whole. A poll
    # that finds nothing changed revalidates the body it holds (304).
    older = etag.replace(etag.strip('"').split("-", 1)[0], "0" * 32)
    map_load: list[Request] = [(USER_MAP, None, None, 200)]
    map_refresh: list[Request] = [(USER_MAP + "?fresh=1", None, older, 200)]
    map_revalidate: list[Request] = [(USER_MAP, None, etag, 304)]
    plan = [
        ("GET /api/v1/lot-groups", the_list, 0.0),
        ("GET /api/v1/lot-groups/<id>", group_paths, 0.0),
        ("GET /api/v1/ping (baseline)", [("/api/v1/ping", None, None, 200)], 0.0),
        ("GET user map data, first load", map_load, 0.0),
        ("GET user map data, re-read after a change", map_refresh, 0.0),
        ("GET user map data, poll unchanged (304)", map_revalidate, 0.0),
        (f"user map poll, each client every {args.map_poll:g}s", map_revalidate, args.map_poll),
        (f"GET /api/v1/lot-groups, each client every {args.poll:g}s", the_list, args.poll),
    ]
    # The saturated runs go round ``--rounds`` times, every other round in reverse order, so no
    # endpoint always meets the machine's busy or quiet moment; the paced ones once, at the end.
    saturated = [entry for entry in plan if not entry[2]]
    rounds: list[dict[str, Result]] = []
    cpu: dict[str, float] = {}
    for number in range(args.rounds):
        found: dict[str, Result] = {}
        order = saturated if number % 2 == 0 else saturated[::-1]
        last = number == args.rounds - 1
        for label, requests, interval in order + ([e for e in plan if e[2]] if last else []):
            before_wall, before_cpu = time.perf_counter(), time.process_time()
            found[label] = await drive(base, label, requests, args.clients, args.seconds, interval)
            cpu[label] = (time.process_time() - before_cpu) / (time.perf_counter() - before_wall)
            print(f"  round {number + 1}, {label}: {len(found[label].latencies_ms)} requests")
        rounds.append({label: found[label] for label, _, _ in plan if label in found})
    failed = report(rounds, cpu, args.clients)
    if failed:
        raise SystemExit(f"{failed} requests failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("PARKOPS_TEST_DATABASE_URL") or DEFAULT_DATABASE
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the saturated runs")
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
