"""The ``parkops`` command."""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import UTC, datetime

import click

from dashboard.app import Core, build_core, create_app, prepare_database
from dashboard.cli_devices import devices
from dashboard.settings import Settings, SettingsError
from models import Role


def _core() -> Core:
    try:
        return build_core(Settings.from_env())
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def main() -> None:
    """ParkOps: real-time parking operations."""


@main.command()
@click.option("--host", default=None, help="Overrides PARKOPS_HOST.")
@click.option("--port", default=None, type=int, help="Overrides PARKOPS_PORT.")
def run(host: str | None, port: int | None) -> None:
    """Serve the web app; with embedded services, also run the worker, scheduler, ingester and simulator."""
    from dashboard.services import demo
    from workers import ingest, scheduler, simulator, worker

    core = _core()
    prepare_database(core)
    settings = core.settings
    stop = threading.Event()
    if settings.run_inprocess_workers:
        worker.start_inprocess_worker(core, stop)
        scheduler.start_scheduler_thread(core, stop)
        ingest.start_ingester_thread(core, stop)
    if settings.run_simulator:
        simulator.start_simulator_thread(core, stop)
    app = create_app(core=core)
    credentials = demo.read_credentials(settings.instance_path)
    url = f"http://{host or settings.host}:{port or settings.port}"
    click.echo(f"\nParkOps is serving {url}  (health: {url}/healthz)")
    if credentials:
        click.echo("Demo accounts (e-mail / password):")
        for row in credentials:
            click.echo(f"  {row['role']:<8} {row['email']:<32} {row['password']}")
    click.echo("")
    try:
        app.run(host=host or settings.host, port=port or settings.port, threaded=True, use_reloader=False)
    finally:
        stop.set()


@main.command("worker")
@click.option("--burst", is_flag=True, help="Run the queued jobs and exit.")
def worker_cmd(burst: bool) -> None:
    """Run an RQ worker on the ParkOps queue."""
    from workers import worker

    worker.run_worker(_core(), burst=burst)


@main.command("scheduler")
def scheduler_cmd() -> None:
    """Enqueue due system tasks (any number of schedulers may run; a task is enqueued once)."""
    from workers import scheduler

    core = _core()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scheduler.run_scheduler(core, stop)


@main.command("ingest")
def ingest_cmd() -> None:
    """Subscribe to the MQTT broker and ingest sensor and camera feeds (one ingester at a time)."""
    from workers import ingest
    from workers.ingest_lock import AnotherIngesterRunning

    core = _core()
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

    core = _core()
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
    core = _core()
    if revision == "head":
        prepare_database(core)
    else:
        core.db.upgrade(revision)
    click.echo(f"database at {revision}: {core.db.engine.url.render_as_string(hide_password=True)}")


@main.command("seed-demo")
def seed_demo() -> None:
    """Create the demo campus (idempotent: running it again changes nothing)."""
    from dashboard.services import demo

    core = _core()
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

    core = _core()
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

    core = _core()
    with core.db.session() as session:
        system_tasks.sync_registry(session, REGISTRY.definitions())
        rows = system_tasks.list_tasks(session)
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2, default=str))
        return
    for row in rows:
        click.echo(
            f"{row.name:<24} {'on ' if row.enabled else 'off'} every {row.interval_seconds:>6}s  "
            f"last: {row.last_outcome or '-':<15} next: {row.next_run_at or '-'}  {row.title}"
        )


@task.command("run")
@click.argument("name")
def task_run(name: str) -> None:
    """Run task NAME now, in this process, and record the run."""
    from workers.jobs import execute_task
    from workers.tasks import REGISTRY

    if name not in REGISTRY:
        raise click.ClickException(f"unknown task {name!r}; known: {', '.join(REGISTRY.names())}")
    run = execute_task(_core(), name, trigger="cli")
    click.echo(f"{name}: {run.outcome} in {run.duration_ms} ms, {run.rows_touched} rows. {run.message}")
    if run.outcome == "failed":
        sys.exit(1)


main.add_command(devices)
