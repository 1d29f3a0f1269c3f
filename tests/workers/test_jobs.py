"""Running system tasks: outcomes, the per-task lock, rq workers (inline and in-process), the CLI."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from click.testing import CliRunner
from rq import Queue
from rq.job import JobStatus
from sqlalchemy import select

from dashboard.cli import main
from dashboard.core import set_core
from dashboard.services import system_tasks
from models import SystemTask, TaskRun, utcnow
from tests.workers import task_worker
from workers import jobs
from workers.scheduler import Scheduler
from workers.tasks import TaskContext, TaskRegistry, TaskResult, UnknownTask
from workers.worker import InlineWorker, start_inprocess_worker


@pytest.fixture
def job_core(core):
    """Jobs of this process use the test core (as the in-process worker arranges for ``parkops run``)."""
    set_core(core)
    yield core
    set_core(None)


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


def queue_of(core) -> Queue:
    return Queue(core.settings.queue_name, connection=core.redis)


def burst(core) -> None:
    InlineWorker([core.settings.queue_name], connection=redis.Redis.from_url(core.redis_url)).work(burst=True)


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
        set_core(None)
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


# -- runs whose worker died -------------------------------------------------------------------------

LEASE = 3  # seconds; production's is a minute (PARKOPS_TASK_LEASE_SECONDS)


def short_lease(core):
    return dataclasses.replace(core, settings=core.settings.with_overrides(task_lease_seconds=LEASE))


@pytest.fixture
def blocking_registry(monkeypatch) -> TaskRegistry:
    """The registry the worker subprocess runs with (``tests.workers.task_worker``), here too."""
    registry = TaskRegistry()
    task_worker.register(registry)
    monkeypatch.setattr(jobs, "REGISTRY", registry)
    return registry


def worker_process(core, *args: str) -> subprocess.Popen:
    """``parkops worker`` (with the blocking test task registered) on the test's database and Redis,
    in a process group of its own, so that the test can kill it and its work horse together."""
    env = dict(os.environ)
    env.update(
        PARKOPS_DATABASE_URL=core.db.url,
        PARKOPS_REDIS_URL=core.redis_url,
        PARKOPS_MQTT_URL=core.mqtt_url,
        PARKOPS_SECRET_KEY=core.settings.secret_key,
        PARKOPS_QUEUE=core.settings.queue_name,
        PARKOPS_INSTANCE_PATH=str(core.settings.instance_path),
        PARKOPS_TASK_LEASE_SECONDS=str(LEASE),
        PARKOPS_BASE_URL=core.settings.public_url,  # required with a real database
    )
    return subprocess.Popen(
        [sys.executable, "-m", "tests.workers.task_worker", "worker", *args],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        start_new_session=True,
    )


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.1)
    return result


def test_a_worker_killed_mid_run_is_found_recorded_failed_and_retried_once(core, blocking_registry):
    """``kill -9`` of ``parkops worker`` and its work horse in the middle of a task: within a lease
    the scheduler records the run failed in words, the lock is free, and the task runs once more."""
    name = task_worker.BLOCKING_TASK
    short = short_lease(core)
    worker = worker_process(core)
    horse = None
    try:
        jobs.enqueue_task(core, name, "manual")
        horse = int(
            wait_for(lambda: core.redis.get(task_worker.ENTERED_KEY), 60, "the worker starting the task")
        )
        # rq runs the job in a work horse, its child in a process group of its own.
        assert f"PPid:\t{worker.pid}\n" in Path(f"/proc/{horse}/status").read_text()
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        if horse is not None:
            os.kill(horse, signal.SIGKILL)
        worker.wait(10)
    killed_at = time.monotonic()
    [running] = runs(core, name)
    assert running.outcome.value == "running"

    scheduler = Scheduler(short, registry=blocking_registry)

    def recorded() -> list[TaskRun]:
        scheduler.tick()
        return [r for r in runs(core, name) if r.outcome.value != "running"]

    [lost] = wait_for(recorded, 120, "finding the dead run")
    assert time.monotonic() - killed_at < 120
    last_seen = lost.heartbeat_at.astimezone(ZoneInfo("America/Toronto"))
    assert lost.outcome.value == "failed"
    when = f"{last_seen:%H:%M:%S %Z} on {last_seen:%a} {last_seen.day} {last_seen:%b %Y}"
    assert lost.message.startswith(
        f"The worker running it stopped (killed?) at {when}, its last sign of life"
    )
    assert "queued again, once" in lost.message
    assert not core.redis.exists(jobs.lock_key(name))
    with core.db.session() as s:
        assert s.get(SystemTask, name).last_outcome == "failed"
    assert [job.args for job in queue_of(core).get_jobs()] == [(name, "retry")]

    # Nothing else is recovered or queued on later ticks; the retry runs on a new worker.
    scheduler.tick()
    assert queue_of(core).count == 1
    core.redis.set(task_worker.RELEASE_KEY, 1)
    retry_worker = worker_process(core, "--burst")
    assert retry_worker.wait(60) == 0
    assert [(r.trigger, r.outcome.value, r.message) for r in runs(core, name)] == [
        ("manual", "failed", lost.message),
        ("retry", "success", "released"),
    ]
    assert not core.redis.exists(jobs.lock_key(name))


def test_a_long_healthy_run_keeps_its_lock_and_is_never_declared_dead(core, test_registry, gate):
    """A run lasting several leases renews its lock and heartbeat: the scheduler leaves it alone."""
    short = short_lease(core)
    results = {}
    thread = threading.Thread(
        target=lambda: results.setdefault("run", jobs.execute_task(short, "test-waits", "schedule"))
    )
    thread.start()
    try:
        assert gate.entered.wait(10)
        [run] = runs(core, "test-waits")
        until = time.monotonic() + 2.5 * LEASE
        while time.monotonic() < until:
            assert jobs.recover_lost_runs(short, test_registry) == []
            time.sleep(0.2)
        holder = core.redis.get(jobs.lock_key("test-waits")).decode()
        assert holder.startswith(f"{run.id}:")
        assert 0 < core.redis.pttl(jobs.lock_key("test-waits")) <= LEASE * 1000
    finally:
        gate.release.set()
        thread.join(10)
    assert results["run"].outcome == "success"
    assert [r.outcome.value for r in runs(core, "test-waits")] == ["success"]
    assert queue_of(core).count == 0


def silent_run(core, name: str, trigger: str, minutes_ago: int = 10) -> int:
    """A ``running`` run whose last heartbeat was ``minutes_ago`` (its worker is gone)."""
    with core.db.session() as s:
        system_tasks.sync_registry(s, jobs.REGISTRY.definitions())
        run_id = system_tasks.start_run(s, name, trigger)
        run = s.get(TaskRun, run_id)
        run.started_at = run.heartbeat_at = utcnow() - timedelta(minutes=minutes_ago)
    return run_id


def test_a_lost_retry_is_not_retried_again(core, test_registry):
    silent_run(core, "test-ok", "retry")
    [lost] = jobs.recover_lost_runs(core, test_registry)
    assert lost.outcome == "failed"
    assert "not retried again: this run was already the retry" in lost.message
    assert queue_of(core).count == 0


def test_a_run_whose_lock_is_still_renewed_is_not_lost_even_if_its_heartbeat_is_late(core, test_registry):
    """Its process lives (it renews the lock under the run's token), only its database writes fail."""
    run_id = silent_run(core, "test-ok", "schedule")
    core.redis.set(jobs.lock_key("test-ok"), f"{run_id}:token", px=60_000)
    assert jobs.recover_lost_runs(core, test_registry) == []
    core.redis.set(jobs.lock_key("test-ok"), "someone-else:token", px=60_000)
    [lost] = jobs.recover_lost_runs(core, test_registry)
    assert lost.id == run_id and "queued again, once" in lost.message
    assert [job.args for job in queue_of(core).get_jobs()] == [("test-ok", "retry")]
    # Another scheduler doing the same finds nothing left to do: one retry.
    assert jobs.recover_lost_runs(core, test_registry) == []
    assert queue_of(core).count == 1
