"""System tasks: the schedule admins control and the log of every run.

Code declares the tasks (``workers.tasks``); rows here keep what admins change. Any number of
schedulers may run: ``claim_slot`` moves a task's ``next_run_at`` with a conditional UPDATE, so of
two schedulers that read the same due slot, only the one whose UPDATE matches the old value gets it.
A task runs every ``interval_seconds`` or, with a ``schedule``, at fixed times of day in the site's
time zone (``dashboard.services.schedules``); either way the claim moves ``next_run_at`` to the
next slot, so a restart or a second scheduler never runs a slot twice.
A run stamps a heartbeat while it works; ``silent_runs`` and ``give_up_run`` find and close the
runs whose worker died.

Why this module is long: the schedule (claiming slots with a conditional UPDATE), the run log and
recovering lost runs share the task row and its invariants across any number of schedulers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Protocol

from sqlalchemy import Insert, Select, func, select, update
from sqlalchemy.orm import Session

from dashboard.db import rows_matched
from dashboard.services import audit, schedules
from dashboard.services.errors import NotFound, ValidationFailed
from models import SystemTask, TaskOutcome, TaskRun, utcnow

MIN_INTERVAL_SECONDS = 60
MAX_INTERVAL_SECONDS = 7 * 24 * 3600
MESSAGE_LIMIT = 4000  # a run message is a summary; a full traceback belongs in the worker's log
RETRY_TRIGGER = "retry"  # the trigger of the one re-run of a run whose worker died
# A run at a fixed time that starts this much after its time is logged as late (a tick is 5 s; a
# busy database may hold a tick up for a while without anything being wrong).
LATE_AFTER = timedelta(minutes=5)


class TaskDefinitionLike(Protocol):
    """The part of ``workers.tasks.TaskDefinition`` the schedule needs (services do not import workers)."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def default_interval_seconds(self) -> int: ...
    @property
    def default_enabled(self) -> bool: ...
    @property
    def default_schedule(self) -> str | None: ...


@dataclass(frozen=True)
class TaskView:
    name: str
    title: str
    enabled: bool
    interval_seconds: int
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_outcome: str | None
    schedule: str | None = None  # a cron-like spec in the site's time zone; None: every interval

    @property
    def schedule_words(self) -> str:
        """How often it runs, as the tasks page says it ("daily at 02:00", "every 10 min")."""
        if self.schedule:
            try:
                return schedules.parse(self.schedule).words
            except ValidationFailed:
                return f"at times matching {self.schedule} (not a valid schedule: edit it)"
        return f"every {every_words(self.interval_seconds)}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunView:
    id: int
    task_name: str
    task_title: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    outcome: str
    message: str
    rows_touched: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _task_view(row: SystemTask) -> TaskView:
    return TaskView(
        name=row.name,
        title=row.title,
        enabled=row.enabled,
        interval_seconds=row.interval_seconds,
        next_run_at=row.next_run_at,
        last_run_at=row.last_run_at,
        last_outcome=row.last_outcome,
        schedule=row.schedule,
    )


def every_words(seconds: int) -> str:
    """An interval as the tasks page shows it: "1 d", "6 h", "10 min"."""
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def _run_view(run: TaskRun, title: str) -> RunView:
    return RunView(
        id=run.id,
        task_name=run.task_name,
        task_title=title,
        trigger=run.trigger,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_ms=run.duration_ms,
        outcome=TaskOutcome(run.outcome).value,
        message=run.message,
        rows_touched=run.rows_touched,
    )


def _insert_ignoring_conflicts(session: Session) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING``: the web app, the CLI and every scheduler sync at start-up,
    possibly at the same moment, and the loser of that race must not fail."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(SystemTask).on_conflict_do_nothing(index_elements=[SystemTask.name])
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(SystemTask).on_conflict_do_nothing(index_elements=[SystemTask.name])
    raise RuntimeError(f"ParkOps runs on PostgreSQL or SQLite, not {dialect}")


def sync_registry(session: Session, definitions: Iterable[TaskDefinitionLike]) -> None:
    """Make a row for every registered task and refresh titles; never touch what admins changed.

    New rows are due at once (``next_run_at`` = now), so a task enabled by default runs on the
    first scheduler tick. Rows of tasks no longer in code are kept with their run history; the
    scheduler only enqueues registered names.
    """
    now = utcnow()
    for definition in definitions:
        session.execute(
            _insert_ignoring_conflicts(session).values(
                name=definition.name,
                title=definition.title,
                enabled=definition.default_enabled,
                interval_seconds=definition.default_interval_seconds,
                schedule=definition.default_schedule,
                next_run_at=now,
            )
        )
        session.execute(
            update(SystemTask)
            .where(SystemTask.name == definition.name, SystemTask.title != definition.title)
            .values(title=definition.title)
            .execution_options(synchronize_session=False)
        )
    session.expire_all()


def list_tasks(session: Session) -> list[TaskView]:
    rows = session.scalars(select(SystemTask).order_by(SystemTask.title))
    return [_task_view(row) for row in rows]


def get_task(session: Session, name: str) -> TaskView:
    return _task_view(_row(session, name))


def find_task(session: Session, name: str) -> TaskView | None:
    """The task, or None where it is not there (a database its migration has not reached): a
    page that describes a task's schedule says nothing rather than failing."""
    try:
        return get_task(session, name)
    except NotFound:
        return None


def _row(session: Session, name: str) -> SystemTask:
    row = session.get(SystemTask, name)
    if row is None:
        raise NotFound(f"no system task named {name!r}")
    return row


def set_enabled(session: Session, name: str, enabled: bool, actor_id: int | None) -> TaskView:
    """Turning a task on makes it due now: the seed promises "Your report will run immediately and
    then schedule for the next frequency". Turning it off keeps its schedule for display."""
    row = _row(session, name)
    if row.enabled == enabled:
        return _task_view(row)
    row.enabled = enabled
    changes: dict[str, Any] = {"enabled": [not enabled, enabled]}
    if enabled:
        row.next_run_at = utcnow()
    audit.record(
        session,
        actor_id=actor_id,
        action="system_task.enable" if enabled else "system_task.disable",
        entity_type="system_task",
        entity_id=name,
        changes=changes,
    )
    session.flush()
    return _task_view(row)


def set_interval(session: Session, name: str, seconds: int, actor_id: int | None) -> TaskView:
    """Change how often a task runs. A shorter interval takes effect at once (the next run moves
    earlier if it was further away than the new interval); a longer one from the next run on."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise ValidationFailed({"interval_seconds": "must be a whole number of seconds"})
    if not MIN_INTERVAL_SECONDS <= seconds <= MAX_INTERVAL_SECONDS:
        raise ValidationFailed({"interval_seconds": "must be between 1 minute and 7 days"})
    row = _row(session, name)
    if row.interval_seconds == seconds:
        return _task_view(row)
    old = row.interval_seconds
    row.interval_seconds = seconds
    soonest = utcnow() + timedelta(seconds=seconds)
    if row.next_run_at is None or row.next_run_at > soonest:
        row.next_run_at = soonest
    audit.record(
        session,
        actor_id=actor_id,
        action="system_task.interval",
        entity_type="system_task",
        entity_id=name,
        changes={"interval_seconds": [old, seconds]},
    )
    session.flush()
    return _task_view(row)


def set_schedule(
    session: Session,
    name: str,
    spec: str | None,
    tz: tzinfo,
    actor_id: int | None,
    now: datetime | None = None,
) -> TaskView:
    """Run a task at the fixed times of ``spec`` (site time zone ``tz``), or every interval again
    with ``None``. With a spec the next run moves to its next time at once; back to an interval,
    the next run is at most one interval away (as ``set_interval`` does)."""
    checked = schedules.parse(spec).spec if spec is not None else None
    row = _row(session, name)
    if row.schedule == checked:
        return _task_view(row)
    now = now or utcnow()
    old = row.schedule
    row.schedule = checked
    if checked is not None:
        row.next_run_at = next_slot(checked, row.interval_seconds, tz, now)
    else:
        soonest = now + timedelta(seconds=row.interval_seconds)
        if row.next_run_at is None or row.next_run_at > soonest:
            row.next_run_at = soonest
    audit.record(
        session,
        actor_id=actor_id,
        action="system_task.schedule",
        entity_type="system_task",
        entity_id=name,
        changes={"schedule": [old, checked]},
    )
    session.flush()
    return _task_view(row)


def next_slot(schedule: str | None, interval_seconds: int, tz: tzinfo, now: datetime) -> datetime:
    """When a slot claimed at ``now`` is next due: the schedule's next time after now, or now plus
    one interval (also for a schedule that finds no next time, rather than a slot due forever)."""
    if schedule:
        upcoming = schedules.next_fire(schedule, tz, now)
        if upcoming is not None:
            return upcoming
    return now + timedelta(seconds=interval_seconds)


@dataclass(frozen=True)
class Slot:
    """A due slot as a scheduler read it; ``claim_slot`` takes it (or finds another scheduler did)."""

    name: str
    due_at: datetime | None
    interval_seconds: int
    schedule: str | None = None

    def missed_runs(self, now: datetime) -> int:
        """How many whole intervals late the slot is: the runs that would have happened meanwhile
        had the slot been queued on time (0 for a slot late by less than one interval)."""
        if self.due_at is None:
            return 0
        return max(0, int((now - self.due_at) / timedelta(seconds=self.interval_seconds)))


def due_slots(session: Session, now: datetime, only: Collection[str] | None = None) -> list[Slot]:
    """Every enabled task whose slot has come (optionally only among ``only``), by name."""
    query = select(
        SystemTask.name, SystemTask.next_run_at, SystemTask.interval_seconds, SystemTask.schedule
    ).where(
        SystemTask.enabled.is_(True),
        (SystemTask.next_run_at.is_(None)) | (SystemTask.next_run_at <= now),
    )
    if only is not None:
        query = query.where(SystemTask.name.in_(list(only)))
    return [Slot(*row) for row in session.execute(query.order_by(SystemTask.name)).all()]


def claim_slot(session: Session, slot: Slot, now: datetime, tz: tzinfo) -> bool:
    """Move the task's next run to its next slot after ``now`` (``next_slot``: the schedule's next
    time in the site's time zone ``tz``, or ``now + interval``) if the slot is still the one read;
    True when this caller won it.

    The UPDATE matches the ``next_run_at`` this caller read, so when two schedulers read the same
    slot the second UPDATE matches no row (PostgreSQL re-checks the WHERE once the first commits;
    SQLite serialises writers) and only one enqueues the task. The claim holds the row until the
    caller's transaction ends: the scheduler enqueues the job *before* committing, so a queue that
    fails undoes the claim and the slot stays due for the next tick (claim and enqueue happen both
    or neither).
    """
    matches = (
        SystemTask.next_run_at.is_(None) if slot.due_at is None else SystemTask.next_run_at == slot.due_at
    )
    result = session.execute(
        update(SystemTask)
        .where(SystemTask.name == slot.name, matches)
        .values(next_run_at=next_slot(slot.schedule, slot.interval_seconds, tz, now))
        .execution_options(synchronize_session=False)
    )
    return rows_matched(result) == 1


def record_missed(
    session: Session, slot: Slot, now: datetime, tz: tzinfo, queue_error: str | None = None
) -> RunView | None:
    """The rule for a late slot: it still runs (once, now), and when it is one interval late or
    more, the runs that fell in the gap are logged as one ``missed`` entry saying when they were
    due and why (``queue_error``: what this scheduler last saw when the queue refused the job).
    Returns the entry, or ``None`` when nothing was missed. Like a skip, it leaves the task's last
    run to the run that follows. A slot at a fixed time is logged as late instead (``_record_late``)."""
    if slot.schedule:
        return _record_late(session, slot, now, tz, queue_error)
    count = slot.missed_runs(now)
    if count == 0 or slot.due_at is None:
        return None
    last = slot.due_at + timedelta(seconds=slot.interval_seconds * (count - 1))
    due = (
        f"due at {when(slot.due_at, tz)}"
        if count == 1
        else f"due from {when(slot.due_at, tz)} to {when(last, tz)}"
    )
    why = _why_late(queue_error)
    runs = "1 scheduled run was" if count == 1 else f"{count} scheduled runs were"
    run = TaskRun(
        task_name=slot.name,
        trigger="schedule",
        started_at=now,
        finished_at=now,
        duration_ms=0,
        outcome=TaskOutcome.MISSED,
        message=f"{runs} missed ({due}): {why}. The task runs now instead."[:MESSAGE_LIMIT],
    )
    session.add(run)
    session.flush()
    return _run_view(run, _row(session, slot.name).title)


def _why_late(queue_error: str | None) -> str:
    if queue_error:
        return f"the job queue (Redis) could not take jobs ({queue_error})"
    return (
        "no scheduler could queue the task in time (the job queue, the database or every scheduler was down)"
    )


def _record_late(
    session: Session, slot: Slot, now: datetime, tz: tzinfo, queue_error: str | None
) -> RunView | None:
    """A run at a fixed time that starts ``LATE_AFTER`` or more after its time: it runs once, now,
    and this entry says when it was due, how late it is and why. Other times of the schedule that
    passed during the same outage are not run separately (one late run does what they would have
    done); the entry counts them."""
    if slot.due_at is None or now - slot.due_at < LATE_AFTER or not slot.schedule:
        return None
    passed = schedules.fires_between(slot.schedule, tz, slot.due_at + timedelta(microseconds=1), now)
    late = _duration_words(now - slot.due_at)
    message = f"The run due at {when(slot.due_at, tz)} starts {late} late: {_why_late(queue_error)}."
    if passed:
        times = "1 later time" if len(passed) == 1 else f"{len(passed)} later times"
        message += (
            f" {times} of its schedule passed meanwhile (up to {when(passed[-1], tz)}); "
            "this one run stands for them."
        )
    run = TaskRun(
        task_name=slot.name,
        trigger="schedule",
        started_at=now,
        finished_at=now,
        duration_ms=0,
        outcome=TaskOutcome.LATE,
        message=message[:MESSAGE_LIMIT],
    )
    session.add(run)
    session.flush()
    return _run_view(run, _row(session, slot.name).title)


def _duration_words(delta: timedelta) -> str:
    """ "3 h 2 min", "12 min", "2 d 1 h": how late, in words a person reads."""
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(p for p in parts if p) or "less than a minute"


def schedule_sentence(task: TaskView | None, title: str, tz: tzinfo, now: datetime | None = None) -> str:
    """What a page that depends on a task says of it: that the task ``title`` is off in System
    Task Logs, or when it runs and when next."""
    if task is None or not task.enabled:
        return f"The {title} task is off in System Task Logs."
    return f"It runs {task.schedule_words}; next run: {next_run_words(task, tz, now)}."


def next_run_words(task: TaskView, tz: tzinfo, now: datetime | None = None) -> str:
    """The next run as a person reads it in the site's time zone: "Sunday 8 March 2026 at 03:00
    EDT (in 5 h 12 min)"; a slot already passed is "due now"."""
    if not task.enabled:
        return "paused"
    if task.next_run_at is None:
        return "due now"
    now = now or utcnow()
    local = task.next_run_at.astimezone(tz)
    words = f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M %Z}"
    if task.next_run_at <= now:
        return f"due now (was due {words})"
    return f"{words} (in {_duration_words(task.next_run_at - now)})"


def start_run(session: Session, name: str, trigger: str) -> int:
    """Record that a run began (outcome ``running``, alive as of now) and return its id."""
    _row(session, name)
    started = utcnow()
    run = TaskRun(
        task_name=name, trigger=trigger, started_at=started, heartbeat_at=started, outcome=TaskOutcome.RUNNING
    )
    session.add(run)
    session.flush()
    return run.id


def finish_run(
    session: Session, run_id: int, outcome: TaskOutcome | str, message: str, rows_touched: int
) -> RunView:
    """Close a run and update its task's last run. A ``skipped`` run did no work, so it leaves the
    task's last run and outcome to the run that did (otherwise "skipped" would hide a failure)."""
    run = session.get(TaskRun, run_id)
    if run is None:
        raise NotFound(f"no task run {run_id}")
    outcome = TaskOutcome(outcome)
    finished = utcnow()
    run.outcome = outcome
    run.message = message[:MESSAGE_LIMIT]
    run.rows_touched = rows_touched
    run.finished_at = finished
    run.duration_ms = max(0, int((finished - run.started_at).total_seconds() * 1000))
    task = _row(session, run.task_name)
    if outcome is not TaskOutcome.SKIPPED:
        task.last_run_at = run.started_at
        task.last_outcome = outcome.value
    session.flush()
    return _run_view(run, task.title)


def beat(session: Session, run_id: int, now: datetime) -> bool:
    """Stamp a run's heartbeat (its process is alive); False once the run is no longer running."""
    result = session.execute(
        update(TaskRun)
        .where(TaskRun.id == run_id, TaskRun.outcome == TaskOutcome.RUNNING)
        .values(heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    return rows_matched(result) == 1


@dataclass(frozen=True)
class SilentRun:
    id: int
    task_name: str
    trigger: str
    last_seen: datetime


def silent_runs(session: Session, silent_since: datetime) -> list[SilentRun]:
    """Runs still ``running`` whose process has shown no sign of life since ``silent_since``."""
    last_seen = func.coalesce(TaskRun.heartbeat_at, TaskRun.started_at)
    rows = session.execute(
        select(TaskRun.id, TaskRun.task_name, TaskRun.trigger, TaskRun.heartbeat_at, TaskRun.started_at)
        .where(TaskRun.outcome == TaskOutcome.RUNNING, last_seen < silent_since)
        .order_by(TaskRun.id)
    ).all()
    return [
        SilentRun(id, name, trigger, heartbeat or started) for id, name, trigger, heartbeat, started in rows
    ]


@dataclass(frozen=True)
class LostRun:
    run: RunView
    retry: bool  # the caller queues the task again (trigger ``RETRY_TRIGGER``)


def give_up_run(session: Session, run_id: int, tz: tzinfo, *, can_retry: bool) -> LostRun | None:
    """Record a run whose worker died as failed, saying so in words, and decide whether it is
    retried: once, so a task that kills its worker every time does not do it forever, and only if
    the task has not run since (a newer run, or the next slot, already did what a retry would do;
    this also keeps runs left ``running`` by older versions from each queueing a retry). ``None``
    when the run is no longer running (it finished after all, or another scheduler recorded it
    first: the UPDATE is conditional, so only one of them retries it).

    ``can_retry``: the task is still registered (the caller knows the registry)."""
    run = session.get(TaskRun, run_id)
    if run is None or run.outcome is not TaskOutcome.RUNNING:
        return None
    last_seen = run.heartbeat_at or run.started_at
    ran_since = session.scalar(
        select(func.count(TaskRun.id)).where(
            TaskRun.task_name == run.task_name,
            TaskRun.id != run.id,
            TaskRun.started_at >= run.started_at,
            TaskRun.outcome.not_in([TaskOutcome.SKIPPED, TaskOutcome.MISSED, TaskOutcome.LATE]),
        )
    )
    retry = can_retry and run.trigger != RETRY_TRIGGER and not ran_since
    if retry:
        then = "it is queued again, once (see the next run, trigger retry)."
    elif run.trigger == RETRY_TRIGGER:
        then = "not retried again: this run was already the retry."
    elif ran_since:
        then = "not retried: the task has run again since."
    else:
        then = "not retried: the task no longer exists in this version of ParkOps."
    message = (
        f"The worker running it stopped (killed?) at {when(last_seen, tz)}, its last sign of life; "
        f"its lock on the task has expired, and {then}"
    )
    result = session.execute(
        update(TaskRun)
        .where(TaskRun.id == run_id, TaskRun.outcome == TaskOutcome.RUNNING)
        .values(
            outcome=TaskOutcome.FAILED,
            message=message,
            finished_at=last_seen,
            duration_ms=max(0, int((last_seen - run.started_at).total_seconds() * 1000)),
        )
        .execution_options(synchronize_session=False)
    )
    if rows_matched(result) != 1:
        return None
    session.refresh(run)
    task = _row(session, run.task_name)
    if task.last_run_at is None or task.last_run_at <= run.started_at:
        task.last_run_at = run.started_at
        task.last_outcome = TaskOutcome.FAILED.value
    session.flush()
    return LostRun(_run_view(run, task.title), retry)


def when(moment: datetime, tz: tzinfo) -> str:
    """A time for a run message, in the site's time zone, e.g. "14:03:22 EST on Tue 5 Jan 2027"."""
    local = moment.astimezone(tz)
    return f"{local:%H:%M:%S %Z} on {local:%a} {local.day} {local:%b %Y}"


def _runs_query(name: str | None, outcome: str | None) -> Select:
    query = select(TaskRun, SystemTask.title).join(SystemTask, SystemTask.name == TaskRun.task_name)
    if name:
        query = query.where(TaskRun.task_name == name)
    if outcome:
        query = query.where(TaskRun.outcome == outcome)
    return query


def recent_runs(
    session: Session, name: str | None = None, limit: int = 50, *, outcome: str | None = None, offset: int = 0
) -> list[RunView]:
    """Newest first, optionally for one task and one outcome; ``offset`` pages back."""
    query = (
        _runs_query(name, outcome)
        .order_by(TaskRun.started_at.desc(), TaskRun.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [_run_view(run, title) for run, title in session.execute(query)]


def count_runs(session: Session, name: str | None = None, outcome: str | None = None) -> int:
    """How many runs the log holds for the filter (its pages)."""
    return int(session.scalar(select(func.count()).select_from(_runs_query(name, outcome).subquery())) or 0)


@dataclass(frozen=True)
class RunGroup:
    """One line of the run log: a run, or consecutive runs of one task that did nothing and said
    the same thing (the Waitlist Offers run every minute: 60 identical lines an hour hide the one
    that matters)."""

    first: RunView  # the newest of the group
    count: int
    oldest_started_at: datetime


def _no_op(run: RunView) -> bool:
    return run.outcome == "success" and run.rows_touched == 0


def fold_runs(runs: list[RunView]) -> list[RunGroup]:
    """Fold consecutive no-op runs (success, no rows, same task and message) into one line."""
    groups: list[RunGroup] = []
    for run in runs:
        last = groups[-1] if groups else None
        if (
            last is not None
            and _no_op(run)
            and _no_op(last.first)
            and (run.task_name, run.message) == (last.first.task_name, last.first.message)
        ):
            groups[-1] = RunGroup(last.first, last.count + 1, run.started_at)
        else:
            groups.append(RunGroup(run, 1, run.started_at))
    return groups
