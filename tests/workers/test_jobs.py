"""Running system tasks: outcomes, the per-task lock, rq workers (inline and in-process), the CLI."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from click.testing import CliRunner
from rq import Queue, SimpleWorker
from rq.job import JobStatus
from sqlalchemy import select

from dashboard.cli import main
from dashboard.services import system_tasks
from models import SystemTask, TaskRun
from workers import jobs
from workers.tasks import TaskContext, TaskRegistry, TaskResult, UnknownTask
from workers.worker import start_inprocess_worker


@pytest.fixture
def job_core(core):
    """Jobs of this process use the test core (as the in-process worker arranges for ``parkops run``)."""
    jobs.set_core(core)
    yield core
    jobs.set_core(None)


class Gate:
    """Lets a test hold a task body mid-run."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def test_registry(monkeypatch, gate) -> TaskRegistry:
    """Real task bodies with known behaviour, in place of the seed's (which are not configured yet)."""
    registry = TaskRegistry()

    @registry.task("test-ok", title="Test OK", interval_seconds=60, description="succeeds")
    def ok(ctx: TaskContext) -> TaskResult:
        with ctx.session() as session:
            count = len(system_tasks.list_tasks(session))
        return TaskResult(rows_touched=count, message=f"saw {count} tasks")

    @registry.task("test-fails", title="Test Fails", interval_seconds=60, description="raises")
    def fails(ctx: TaskContext) -> TaskResult:
        raise RuntimeError("vendor returned HTTP 500")

    @registry.task("test-waits", title="Test Waits", interval_seconds=60, description="blocks on the gate")
    def waits(ctx: TaskContext) -> TaskResult:
        gate.entered.set()
        assert gate.release.wait(10), "test never released the gate"
        return TaskResult(rows_touched=1, message="released")

    monkeypatch.setattr(jobs, "REGISTRY", registry)
    return registry


def runs(core, name: str | None = None) -> list[TaskRun]:
    with core.db.session() as s:
        query = select(TaskRun).order_by(TaskRun.id)
        if name:
            query = query.where(TaskRun.task_name == name)
        return list(s.scalars(query))


def burst(core) -> None:
    SimpleWorker([core.settings.queue_name], connection=redis.Redis.from_url(core.redis_url)).work(burst=True)


def test_not_configured_body_is_recorded_as_not_configured(core):
    run = jobs.execute_task(core, "update-mistall", "manual")
    assert run.outcome == "not_configured"
    assert "Enable Mistall Usage is off" in run.message
    assert run.duration_ms is not None and run.finished_at is not None
    with core.db.session() as s:
        task = s.get(SystemTask, "update-mistall")
    assert (task.last_outcome, task.title) == ("not_configured", "Update Mistall System Job Task")


def test_success_records_rows_and_message(core, test_registry):
    run = jobs.execute_task(core, "test-ok", "cli")
    assert (run.outcome, run.rows_touched, run.message, run.trigger) == ("success", 1, "saw 1 tasks", "cli")


def test_unknown_task_is_refused(core):
    with pytest.raises(UnknownTask):
        jobs.execute_task(core, "no-such-task", "cli")
    with pytest.raises(UnknownTask):
        jobs.enqueue_task(core, "no-such-task", "manual")


def test_failure_is_recorded_with_its_message_and_the_worker_carries_on(
    core, job_core, test_registry, caplog
):
    queue = Queue(core.settings.queue_name, connection=core.redis)
    failing = jobs.enqueue_task(core, "test-fails", "manual")
    succeeding = jobs.enqueue_task(core, "test-ok", "schedule")
    assert queue.count == 2

    burst(core)

    assert queue.count == 0
    assert [(r.task_name, r.outcome.value, r.message) for r in runs(core)] == [
        ("test-fails", "failed", "vendor returned HTTP 500"),
        ("test-ok", "success", "saw 2 tasks"),
    ]
    # execute_task swallowed the failure: rq saw two finished jobs, and the traceback is in the log.
    assert queue.fetch_job(failing).get_status() == JobStatus.FINISHED
    assert queue.fetch_job(succeeding).get_status() == JobStatus.FINISHED
    assert "RuntimeError: vendor returned HTTP 500" in caplog.text
    assert not core.redis.exists(f"{jobs.LOCK_PREFIX}test-fails")


def test_a_second_concurrent_run_is_skipped(core, test_registry, gate):
    results = {}
    first = threading.Thread(
        target=lambda: results.setdefault("first", jobs.execute_task(core, "test-waits", "schedule"))
    )
    first.start()
    try:
        assert gate.entered.wait(10)
        second = jobs.execute_task(core, "test-waits", "manual")
    finally:
        gate.release.set()
        first.join(10)
    assert (second.outcome, second.message, second.trigger) == ("skipped", "already running", "manual")
    assert results["first"].outcome == "success"
    with core.db.session() as s:
        assert s.get(SystemTask, "test-waits").last_outcome == "success"
    assert not core.redis.exists(f"{jobs.LOCK_PREFIX}test-waits")
    # The lock is free again: the next run goes ahead.
    gate.entered.clear()
    assert jobs.execute_task(core, "test-waits", "manual").outcome == "success"


def test_inprocess_worker_runs_queued_tasks_and_stops_when_told(core):
    stop = threading.Event()
    thread = start_inprocess_worker(core, stop)
    try:
        jobs.enqueue_task(core, "fetch-parkmobile", "manual")
        deadline = time.monotonic() + 15
        finished = [r for r in runs(core, "fetch-parkmobile") if r.outcome.value != "running"]
        while not finished and time.monotonic() < deadline:
            time.sleep(0.1)
            finished = [r for r in runs(core, "fetch-parkmobile") if r.outcome.value != "running"]
        assert [(r.trigger, r.outcome.value) for r in runs(core, "fetch-parkmobile")] == [
            ("manual", "not_configured")
        ]
    finally:
        stop.set()
        thread.join(10)
        jobs.set_core(None)
    assert not thread.is_alive()


def cli_env(settings) -> dict[str, str]:
    """``PARKOPS_*`` that make the CLI's own ``build_core`` reach the test database and Redis."""
    env = {
        "PARKOPS_INSTANCE_PATH": str(settings.instance_path),
        "PARKOPS_SECRET_KEY": settings.secret_key,
        "PARKOPS_QUEUE": settings.queue_name,
        "PARKOPS_EMBEDDED_MQTT_PORT": str(settings.embedded_mqtt_port),
        "PARKOPS_BASE_URL": settings.public_url,  # required with a real database
    }
    for name, value in [
        ("PARKOPS_DATABASE_URL", settings.database_url),
        ("PARKOPS_REDIS_URL", settings.redis_url),
        ("PARKOPS_MQTT_URL", settings.mqtt_url),
    ]:
        if value:
            env[name] = value
    return env


def test_cli_lists_and_runs_tasks(core, settings):
    runner = CliRunner()
    listed = runner.invoke(main, ["task", "list"], env=cli_env(settings))
    assert listed.exit_code == 0, listed.output
    assert "update-mistall" in listed.output and "Update Mistall System Job Task" in listed.output

    ran = runner.invoke(main, ["task", "run", "update-mistall"], env=cli_env(settings))
    assert ran.exit_code == 0, ran.output
    assert "update-mistall: not_configured" in ran.output
    assert [(r.trigger, r.outcome.value) for r in runs(core)] == [("cli", "not_configured")]

    as_json = runner.invoke(main, ["task", "list", "--json"], env=cli_env(settings))
    assert '"last_outcome": "not_configured"' in as_json.output

    unknown = runner.invoke(main, ["task", "run", "nope"], env=cli_env(settings))
    assert unknown.exit_code != 0 and "unknown task 'nope'" in unknown.output
