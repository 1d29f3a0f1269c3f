"""System tasks: the schedule admins control and the log of every run.

Code declares the tasks (``workers.tasks``); rows here keep what admins change. Any number of
schedulers may run: ``claim_due`` moves a task's ``next_run_at`` with a conditional UPDATE, so of
two schedulers that read the same due slot, only the one whose UPDATE matches the old value gets it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Insert, select, update
from sqlalchemy.orm import Session

from dashboard.services import audit
from dashboard.services.errors import NotFound, ValidationFailed
from models import SystemTask, TaskOutcome, TaskRun, utcnow

MIN_INTERVAL_SECONDS = 60
MAX_INTERVAL_SECONDS = 7 * 24 * 3600
MESSAGE_LIMIT = 4000  # a run message is a summary; a full traceback belongs in the worker's log


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


@dataclass(frozen=True)
class TaskView:
    name: str
    title: str
    enabled: bool
    interval_seconds: int
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_outcome: str | None

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
    )


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
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise RuntimeError(f"ParkOps runs on PostgreSQL or SQLite, not {dialect}")
    return insert(SystemTask).on_conflict_do_nothing(index_elements=[SystemTask.name])


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


def claim_due(session: Session, now: datetime, only: Collection[str] | None = None) -> list[str]:
    """Take every enabled task whose slot has come (optionally only among ``only``), moving its
    next run to ``now + interval``; return the names this caller won.

    The UPDATE matches the ``next_run_at`` this caller read, so when two schedulers read the same
    slot the second UPDATE matches no row (PostgreSQL re-checks the WHERE after the first commits;
    SQLite serialises writers) and only one enqueues the task. A claim is committed before the job
    is enqueued: if enqueueing then fails, that slot is lost and the next interval retries, which
    is better than two runs of an import.
    """
    query = select(SystemTask.name, SystemTask.next_run_at, SystemTask.interval_seconds).where(
        SystemTask.enabled.is_(True),
        (SystemTask.next_run_at.is_(None)) | (SystemTask.next_run_at <= now),
    )
    if only is not None:
        query = query.where(SystemTask.name.in_(list(only)))
    claimed = []
    for name, old_next, interval in session.execute(query.order_by(SystemTask.name)).all():
        slot = SystemTask.next_run_at.is_(None) if old_next is None else SystemTask.next_run_at == old_next
        result = session.execute(
            update(SystemTask)
            .where(SystemTask.name == name, slot)
            .values(next_run_at=now + timedelta(seconds=interval))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            claimed.append(name)
    return claimed


def start_run(session: Session, name: str, trigger: str) -> int:
    """Record that a run began (outcome ``running``) and return its id."""
    _row(session, name)
    run = TaskRun(task_name=name, trigger=trigger, started_at=utcnow(), outcome=TaskOutcome.RUNNING)
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


def recent_runs(session: Session, name: str | None = None, limit: int = 50) -> list[RunView]:
    """Newest first, optionally for one task."""
    query = (
        select(TaskRun, SystemTask.title)
        .join(SystemTask, SystemTask.name == TaskRun.task_name)
        .order_by(TaskRun.started_at.desc(), TaskRun.id.desc())
        .limit(limit)
    )
    if name:
        query = query.where(TaskRun.task_name == name)
    return [_run_view(run, title) for run, title in session.execute(query)]
