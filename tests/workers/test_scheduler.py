"""The scheduler: due tasks are enqueued once, even with several schedulers; a bad tick is survived."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import timedelta

import redis
from rq import Queue
from sqlalchemy import select

from dashboard.services import system_tasks
from models import TaskRun, utcnow
from workers import jobs
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
        for default_on in ("occupancy-snapshots", "waitlist-offers"):
            system_tasks.set_enabled(s, default_on, default_on in names, None)


def test_first_tick_syncs_the_registry_and_enqueues_only_the_history_task(core):
    assert Scheduler(core).tick() == ["occupancy-snapshots", "waitlist-offers"]
    with core.db.session() as s:
        assert len(system_tasks.list_tasks(s)) == len(REGISTRY.definitions()) == 8
    assert queue(core).count == 2


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


def test_a_failing_tick_is_logged_and_the_scheduler_keeps_going(core, caplog):
    """Redis unreachable: enqueueing raises, the loop survives and fails again on the next due task.
    (The claimed slot is not retried before the next interval: at most one run per slot.)"""
    Scheduler(core).tick()
    enable(core, "update-mistall")
    broken = dataclasses.replace(core, redis=redis.Redis(unix_socket_path="/nonexistent/redis.sock"))
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(broken, stop), kwargs={"tick_seconds": 0.05})
    thread.start()

    def failures_reach(count: int) -> bool:
        deadline = time.monotonic() + 10
        while caplog.text.count("scheduler tick failed") < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return caplog.text.count("scheduler tick failed") == count

    try:
        assert failures_reach(1)
        assert thread.is_alive()
        enable(core, "fetch-parkmobile")
        assert failures_reach(2)
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert "ConnectionError" in caplog.text


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
        jobs.set_core(None)
    assert not any(thread.is_alive() for thread in threads)
