"""The ``parkops`` command: the top-level group and its commands; ``parkops devices`` lives in
``dashboard.cli.devices`` and the core they all build in ``dashboard.cli.common``."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from datetime import UTC, datetime

import click
from redis.client import PubSubWorkerThread

from dashboard import embedded
from dashboard.app import create_app, prepare_database
from dashboard.cli import common
from dashboard.cli.devices import devices
from dashboard.core import Core
from models import Role

STOP_SECONDS = 15.0  # how long ``parkops run`` waits for its threads when stopping


@click.group()
def main() -> None:
    """ParkOps: real-time parking operations."""


@main.command()
@click.option("--host", default=None, help="Overrides PARKOPS_HOST.")
@click.option("--port", default=None, type=int, help="Overrides PARKOPS_PORT.")
def run(host: str | None, port: int | None) -> None:
    """Serve the web app; with embedded services, also run the worker, scheduler, ingester and simulator.

    On Ctrl-C or SIGTERM, everything it started stops with it, the embedded Redis server included."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    core: Core | None = None
    # SIGTERM (systemd, docker, kill) stops the server like Ctrl-C does, so that what it started stops
    # too; SIGINT explicitly as well, since a shell starting it in the background may have ignored it.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        core = common.core_from_env()
        _serve(core, stop, threads, host, port)
    finally:
        _stop_everything(core, stop, threads)


def _serve(
    core: Core, stop: threading.Event, threads: list[threading.Thread], host: str | None, port: int | None
) -> None:
    from dashboard.services import demo
    from dashboard.serving import QuietRequestHandler
    from workers import ingest, scheduler, simulator, worker

    # The options move the embedded default public URL (links in e-mails) and trusted hosts too.
    core.settings = core.settings.with_overrides(
        host=host or core.settings.host, port=port or core.settings.port
    )
    prepare_database(core)
    settings = core.settings
    if settings.run_inprocess_workers:
        threads.append(worker.start_inprocess_worker(core, stop))
        threads.append(scheduler.start_scheduler_thread(core, stop))
        threads.append(ingest.start_ingester_thread(core, stop))
    if settings.run_simulator:
        threads.append(simulator.start_simulator_thread(core, stop))
    app = create_app(core=core)
    credentials = demo.read_credentials(settings.instance_path)
    url = f"http://{settings.host}:{settings.port}"
    click.echo(f"\nParkOps is serving {url}  (health: {url}/healthz)")
    if settings.public_url != url:
        click.echo(f"Links in e-mails and QR codes point at {settings.public_url}")
    if credentials:
        click.echo("Demo accounts (e-mail / password):")
        for row in credentials:
            click.echo(f"  {row['role']:<8} {row['email']:<32} {row['password']}")
    click.echo("")
    app.run(
        host=settings.host,
        port=settings.port,
        threaded=True,
        use_reloader=False,
        request_handler=QuietRequestHandler,
    )


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _stop_everything(core: Core | None, stop: threading.Event, threads: list[threading.Thread]) -> None:
    """Stop the threads (each ends within a second or two, after the task or batch in progress),
    then the embedded broker and Redis server. A thread still busy after ``STOP_SECONDS`` (a long
    task) is left to die with the process: its run is then found and retried by the next start's
    scheduler, as for a killed worker. A second Ctrl-C or SIGTERM meanwhile is ignored: it would
    leave the Redis server behind, and the stop is bounded anyway."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    click.echo("Stopping ParkOps...", err=True)
    stop.set()
    deadline = time.monotonic() + STOP_SECONDS
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    # Redis listeners the threads started (the ingester's device-change listener) end after their
    # current one-second read; wait for that, so none reads from a server that is going away.
    listeners = [thread for thread in threading.enumerate() if isinstance(thread, PubSubWorkerThread)]
    for listener in listeners:
        listener.stop()
    for listener in listeners:
        listener.join(max(0.0, deadline - time.monotonic()))
    busy = [thread.name for thread in threads + listeners if thread.is_alive()]
    if busy:
        click.echo(f"still busy, stopped anyway: {', '.join(busy)}", err=True)
    if core is not None:
        core.db.dispose()
    embedded.shutdown()
    click.echo("ParkOps stopped.", err=True)


@main.command("worker")
@click.option("--burst", is_flag=True, help="Run the queued jobs and exit.")
def worker_cmd(burst: bool) -> None:
    """Run an RQ worker on the ParkOps queue."""
    from workers import worker

    worker.run_worker(common.core_from_env(), burst=burst)


@main.command("stream")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8060, show_default=True, type=int, help="Port to listen on.")
@click.option("--max-streams", default=10_000, show_default=True, type=int, help="Open streams before 503.")
def stream_cmd(host: str, port: int, max_streams: int) -> None:
    """Serve the live occupancy stream (GET /api/v1/occupancy/stream) for thousands of open pages.

    One async process on one Redis subscription; route that path to it at the load balancer.
    Needs PARKOPS_REDIS_URL: with the embedded Redis, ``parkops run`` serves the stream itself."""
    import uvicorn

    from dashboard.push_asgi import create_stream_app, raise_fd_limit
    from dashboard.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    if settings.redis_url is None:
        raise click.ClickException(
            "parkops stream needs PARKOPS_REDIS_URL (the Redis that the web app and ingester use); "
            "with the embedded Redis, parkops run serves the stream itself"
        )
    soft = raise_fd_limit()
    if soft < max_streams + 100:
        click.echo(f"warning: only {soft} file descriptors; fewer than --max-streams {max_streams}", err=True)
    app = create_stream_app(settings.redis_url, max_streams=max_streams)
    click.echo(f"ParkOps live stream on http://{host}:{port}/api/v1/occupancy/stream (health: /healthz)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=2)


@main.command("scheduler")
def scheduler_cmd() -> None:
    """Enqueue due system tasks (any number of schedulers may run; a task is enqueued once)."""
    from workers import scheduler

    core = common.core_from_env()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scheduler.run_scheduler(core, stop)


@main.command("ingest")
def ingest_cmd() -> None:
    """Subscribe to the MQTT broker and ingest sensor and camera feeds (one ingester at a time)."""
    from workers import ingest
    from workers.ingest_lock import AnotherIngesterRunning

    core = common.core_from_env()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        ingest.run_ingester(core, stop)
    except AnotherIngesterRunning as exc:
        raise click.ClickException(str(exc)) from None


@main.command("simulate")
@click.option("--seconds", default=0, type=int, help="Stop after this many seconds (0: run until stopped).")
@click.option(
    "--speed",
    default=None,
    type=click.FloatRange(min=0, min_open=True, max=3600),
    help="How much faster than real time the campus day runs (60: an hour a minute). "
    "Default: PARKOPS_SIMULATOR_SPEED or 1.",
)
@click.option(
    "--start",
    default=None,
    help="Local time of day the simulated clock starts at, e.g. 06:30 to watch the morning fill.",
)
def simulate_cmd(seconds: int, speed: float | None, start: str | None) -> None:
    """Publish simulated sensor and camera events for the demo campus."""
    from workers import simulator

    core = common.core_from_env()
    start_at = None
    if start:
        try:
            hour, minute = (int(part) for part in start.split(":"))
            local = datetime.now(core.settings.tz).replace(hour=hour, minute=minute, second=0, microsecond=0)
        except ValueError as exc:
            raise click.BadParameter("use HH:MM, e.g. 06:30", param_hint="--start") from exc
        start_at = local.astimezone(UTC)
    stop = threading.Event()
    if seconds:
        threading.Timer(seconds, stop.set).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    simulator.run_simulator(core, stop, speed=speed, start=start_at)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    core = common.core_from_env()
    if revision == "head":
        prepare_database(core)
    else:
        core.db.upgrade(revision)
    click.echo(f"database at {revision}: {core.db.engine.url.render_as_string(hide_password=True)}")


@main.command("seed-demo")
def seed_demo() -> None:
    """Create the demo campus (idempotent: running it again changes nothing)."""
    from dashboard.services import demo

    core = common.core_from_env()
    prepare_database(core)
    with core.db.session() as session:
        result = demo.seed_demo(session, core.secrets, core.settings.instance_path)
    click.echo(result.summary())


@main.command("create-user")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option(
    "--role", type=click.Choice([r.name.lower() for r in Role if r is not Role.GUEST]), default="user"
)
@click.option("--first-name", default="")
@click.option("--last-name", default="")
@click.option("--user-type", default=None, help="student, staff, faculty, public ...")
def create_user(
    email: str, password: str, role: str, first_name: str, last_name: str, user_type: str | None
) -> None:
    """Create a local account."""
    from dashboard.services import users
    from dashboard.services.errors import ValidationFailed

    core = common.core_from_env()
    try:
        with core.db.session() as session:
            info = users.create_user(
                session,
                email=email,
                password=password,
                role=Role[role.upper()],
                first_name=first_name,
                last_name=last_name,
                user_type=user_type,
            )
    except ValidationFailed as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created {info.email} ({info.role.label}), id {info.id}")


@main.group()
def task() -> None:
    """System tasks (Tools > View System Task Logs)."""


@task.command("list")
@click.option("--json", "as_json", is_flag=True)
def task_list(as_json: bool) -> None:
    """List registered tasks with their schedule and last outcome."""
    from dashboard.services import system_tasks
    from workers.tasks import REGISTRY

    core = common.core_from_env()
    with core.db.session() as session:
        system_tasks.sync_registry(session, REGISTRY.definitions())
        rows = system_tasks.list_tasks(session)
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2, default=str))
        return
    for row in rows:
        click.echo(
            f"{row.name:<24} {'on ' if row.enabled else 'off'} {row.schedule_words:<26} "
            f"last: {row.last_outcome or '-':<15} next: {row.next_run_at or '-'}  {row.title}"
        )


@task.command("run")
@click.argument("name")
def task_run(name: str) -> None:
    """Run task NAME now, in this process, and record the run."""
    from models.system import FAILING_OUTCOMES
    from workers.jobs import execute_task
    from workers.tasks import REGISTRY

    if name not in REGISTRY:
        raise click.ClickException(f"unknown task {name!r}; known: {', '.join(REGISTRY.names())}")
    run = execute_task(common.core_from_env(), name, trigger="cli")
    click.echo(f"{name}: {run.outcome} in {run.duration_ms} ms, {run.rows_touched} rows. {run.message}")
    if run.outcome in FAILING_OUTCOMES:
        sys.exit(1)


main.add_command(devices)
