"""Tasks at a time of day, through the real scheduler and queue: a nightly task runs once a night
across the spring and fall DST changes of America/Toronto, once (late, and logged so) after a
3-hour scheduler outage, and never twice across a restart or with two schedulers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
from rq import Queue
from sqlalchemy import select

from dashboard.core import set_core
from dashboard.services import schedules, system_tasks
from models import SystemTask, TaskOutcome, TaskRun
from workers.scheduler import Scheduler
from workers.tasks import REGISTRY
from workers.worker import InlineWorker

TORONTO = ZoneInfo("America/Toronto")
TASK = "peoplesoft-holds"


def local(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=TORONTO, fold=fold).astimezone(UTC)


def words(moment: datetime) -> str:
    return f"{moment.astimezone(TORONTO):%a %d %b %H:%M %Z}"


@pytest.fixture
def nightly(core) -> Iterator[None]:
    """Only the PeopleSoft task on, at its default schedule, in the site's time zone (Toronto)."""
    assert core.settings.tz == TORONTO
    with core.db.session() as s:
        system_tasks.sync_registry(s, REGISTRY.definitions())
        for row in s.scalars(select(SystemTask)):
            row.enabled = row.name == TASK
    yield


def start_at(core, spec: str, moment: datetime) -> None:
    """The task scheduled by ``spec`` as of ``moment`` (as if an admin had set it then)."""
    with core.db.session() as s:
        system_tasks.set_schedule(s, TASK, spec, TORONTO, None, now=moment)
        s.get(SystemTask, TASK).next_run_at = schedules.next_fire(spec, TORONTO, moment)


def ticks(scheduler: Scheduler, start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """Tick every ``step`` in [start, end); the instants at which the task was claimed."""
    claimed = []
    moment = start
    while moment < end:
        if scheduler.tick(moment):
            claimed.append(moment)
        moment += step
    return claimed


def queued(core) -> list[str]:
    return [job.id for job in Queue(core.settings.queue_name, connection=core.redis).get_jobs()]


def log(core) -> list[TaskRun]:
    with core.db.session() as s:
        return list(s.scalars(select(TaskRun).order_by(TaskRun.id)))


def test_a_nightly_task_runs_once_each_night_across_the_spring_change(core, nightly):
    """8 March 2026: 02:00 does not exist (clocks jump to 03:00); that night's run is at 03:00 EDT."""
    start_at(core, "0 2 * * *", local(2026, 3, 6, 12, 0))
    claimed = ticks(
        Scheduler(core), local(2026, 3, 6, 12, 0), local(2026, 3, 10, 12, 0), timedelta(minutes=10)
    )
    assert [words(m) for m in claimed] == [
        "Sat 07 Mar 02:00 EST",
        "Sun 08 Mar 03:00 EDT",
        "Mon 09 Mar 02:00 EDT",
        "Tue 10 Mar 02:00 EDT",
    ]
    assert len(set(queued(core))) == 4
    assert log(core) == []  # every run on time: nothing late or missed


def test_a_nightly_task_in_the_repeated_hour_runs_once_across_the_fall_change(core, nightly):
    """1 November 2026: 01:30 happens twice (EDT, then EST); the run is at the first one only."""
    start_at(core, "30 1 * * *", local(2026, 10, 30, 12, 0))
    claimed = ticks(
        Scheduler(core), local(2026, 10, 30, 12, 0), local(2026, 11, 3, 12, 0), timedelta(minutes=10)
    )
    assert [words(m) for m in claimed] == [
        "Sat 31 Oct 01:30 EDT",
        "Sun 01 Nov 01:30 EDT",
        "Mon 02 Nov 01:30 EST",
        "Tue 03 Nov 01:30 EST",
    ]
    assert local(2026, 11, 1, 1, 30, fold=1) not in claimed
    assert len(set(queued(core))) == 4


def test_after_a_three_hour_outage_the_missed_run_runs_once_and_is_logged_late(core, nightly):
    start_at(core, "0 2 * * *", local(2026, 3, 1, 12, 0))
    scheduler = Scheduler(core)
    assert ticks(scheduler, local(2026, 3, 1, 12, 0), local(2026, 3, 2, 1, 55), timedelta(minutes=5)) == []
    # The scheduler is down from 01:55 to 05:00; it comes back and ticks every 5 s.
    back = local(2026, 3, 2, 5, 0)
    claimed = ticks(scheduler, back, back + timedelta(minutes=2), timedelta(seconds=5))
    assert claimed == [back]
    assert len(queued(core)) == 1
    (late,) = log(core)
    assert late.outcome is TaskOutcome.LATE and late.task_name == TASK
    assert late.message == (
        "The run due at 02:00:00 EST on Mon 2 Mar 2026 starts 3 h late: no scheduler could queue the task "
        "in time (the job queue, the database or every scheduler was down)."
    )
    # The run itself goes through the worker: the task is off in System Settings, and says so.
    set_core(core)
    try:
        InlineWorker([core.settings.queue_name], connection=redis.Redis.from_url(core.redis_url)).work(
            burst=True
        )
    finally:
        set_core(None)
    run = log(core)[-1]
    assert (run.trigger, run.outcome) == ("schedule", TaskOutcome.NOT_CONFIGURED)
    assert run.message.startswith("PeopleSoft holds are turned off in System Settings")
    # The next night is on time again.
    claimed = ticks(scheduler, back + timedelta(minutes=5), local(2026, 3, 3, 12, 0), timedelta(minutes=5))
    assert [words(m) for m in claimed] == ["Tue 03 Mar 02:00 EST"]
    assert [r.outcome for r in log(core)] == [TaskOutcome.LATE, TaskOutcome.NOT_CONFIGURED]


def test_an_outage_over_several_nights_runs_once_and_counts_the_nights_passed(core, nightly):
    start_at(core, "0 2 * * *", local(2026, 3, 1, 12, 0))
    claimed = ticks(Scheduler(core), local(2026, 3, 4, 5, 0), local(2026, 3, 4, 6, 0), timedelta(minutes=1))
    assert claimed == [local(2026, 3, 4, 5, 0)]
    (late,) = log(core)
    assert late.message.startswith("The run due at 02:00:00 EST on Mon 2 Mar 2026 starts 2 d 3 h late")
    assert late.message.endswith(
        "2 later times of its schedule passed meanwhile (up to 02:00:00 EST on Wed 4 Mar 2026); "
        "this one run stands for them."
    )
    assert len(queued(core)) == 1


def test_a_restarted_or_second_scheduler_does_not_run_the_night_again(core, nightly):
    start_at(core, "0 2 * * *", local(2026, 3, 1, 12, 0))
    first = Scheduler(core)
    assert first.tick(local(2026, 3, 2, 2, 0, 3)) == [TASK]
    restarted = Scheduler(core)  # a new process: it knows only what the database says
    assert restarted.tick(local(2026, 3, 2, 2, 0, 8)) == []
    assert Scheduler(core).tick(local(2026, 3, 2, 2, 59)) == []
    # Both come back after an outage at the same moment: one of them runs the late slot.
    back = local(2026, 3, 3, 5, 0)
    assert sorted(first.tick(back) + restarted.tick(back)) == [TASK]
    assert len(set(queued(core))) == 2
    assert [r.outcome for r in log(core)] == [TaskOutcome.LATE]


def test_the_schedule_is_kept_across_a_restart(core, nightly):
    """Changing the schedule is stored, so a restarted scheduler keeps to it."""
    with core.db.session() as s:
        task = system_tasks.set_schedule(s, TASK, "0 3 * * 0", TORONTO, None, now=local(2026, 3, 2, 12, 0))
    assert task.schedule_words == "weekly on Sunday at 03:00"
    assert words(task.next_run_at) == "Sun 08 Mar 03:00 EDT"
    with core.db.session() as s:
        assert system_tasks.get_task(s, TASK).schedule == "0 3 * * 0"
