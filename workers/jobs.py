"""Running system tasks: the RQ job, the lock around every run, and the record of each run.

``execute_task`` never raises what a task body raised: a failure is recorded and logged, the worker
carries on, and the next scheduled slot is the retry. Each run holds a Redis lock for its task so
that a RUN click during a scheduled run (or two workers) cannot run the same import twice at once;
the loser records a ``skipped`` run.
"""

from __future__ import annotations

import logging
import threading

from redis.exceptions import LockError
from redis.lock import Lock
from rq import Queue

from dashboard.app import Core, build_core
from dashboard.services import system_tasks
from dashboard.services.system_tasks import RunView
from dashboard.settings import Settings
from models import TaskOutcome
from workers.tasks import REGISTRY, TaskContext, TaskNotConfigured

log = logging.getLogger(__name__)

LOCK_PREFIX = "parkops:task-lock:"
JOB_TIMEOUT_SECONDS = 30 * 60
# Longer than any run may take (rq stops a job at JOB_TIMEOUT_SECONDS), so a live run never loses
# its lock, yet a run whose process died frees the task within minutes.
LOCK_TIMEOUT_SECONDS = JOB_TIMEOUT_SECONDS + 5 * 60

_core: Core | None = None
_core_lock = threading.Lock()


def set_core(core: Core | None) -> None:
    """Give jobs of this process an existing core (the in-process worker, ``parkops worker``, tests)."""
    global _core
    with _core_lock:
        _core = core


def get_core() -> Core:
    """The process's core, built from ``PARKOPS_*`` on first use when none was given."""
    global _core
    with _core_lock:
        if _core is None:
            _core = build_core(Settings.from_env())
        return _core


def execute_task(core: Core, name: str, trigger: str) -> RunView:
    """Run task ``name`` under its lock and record the run; returns the finished run.

    Raises ``UnknownTask`` for a name not in the registry; nothing a body raises escapes.
    """
    registered = REGISTRY.get(name)
    with core.db.session() as session:
        # The CLI may run a task before any scheduler has created its row.
        system_tasks.sync_registry(session, [registered.definition])
    lock = core.redis.lock(f"{LOCK_PREFIX}{name}", timeout=LOCK_TIMEOUT_SECONDS)
    if not lock.acquire(blocking=False):
        return _record_skipped(core, name, trigger)

    try:
        with core.db.session() as session:
            run_id = system_tasks.start_run(session, name, trigger)
        context = TaskContext(core=core, logger=logging.getLogger(f"workers.tasks.{name}"))
        try:
            result = registered.body(context)
        except TaskNotConfigured as exc:
            outcome, message, rows = TaskOutcome.NOT_CONFIGURED, str(exc), 0
        except Exception as exc:
            log.exception("system task %s failed (run %s)", name, run_id)
            outcome, message, rows = TaskOutcome.FAILED, str(exc) or type(exc).__name__, 0
        else:
            outcome, message, rows = TaskOutcome.SUCCESS, result.message, result.rows_touched
            if result.partly_failed:
                log.warning("system task %s partly failed (run %s): %s", name, run_id, message)
                outcome = TaskOutcome.PARTLY_FAILED
        with core.db.session() as session:
            return system_tasks.finish_run(session, run_id, outcome, message, rows)
    finally:
        _release(lock, name)


def _record_skipped(core: Core, name: str, trigger: str) -> RunView:
    """The log shows every request, including one that found the task already running."""
    with core.db.session() as session:
        run_id = system_tasks.start_run(session, name, trigger)
        return system_tasks.finish_run(session, run_id, TaskOutcome.SKIPPED, "already running", 0)


def _release(lock: Lock, name: str) -> None:
    try:
        lock.release()
    except LockError:
        log.warning("lock of system task %s had expired before the run ended", name)


def run_system_task(name: str, trigger: str) -> dict[str, object]:
    """The RQ job: plain values in and out, so the job survives serialisation."""
    return execute_task(get_core(), name, trigger).as_dict()


def enqueue_task(core: Core, name: str, trigger: str) -> str:
    """Queue a run of ``name``; returns the RQ job id."""
    REGISTRY.get(name)  # refuse unknown names here rather than in a worker later
    queue = Queue(core.settings.queue_name, connection=core.redis)
    job = queue.enqueue(
        run_system_task,
        name,
        trigger,
        job_timeout=JOB_TIMEOUT_SECONDS,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"system task {name} ({trigger})",
    )
    return job.id
