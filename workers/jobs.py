"""Running system tasks: the RQ job, the lock around every run, and the record of each run.

``execute_task`` never raises what a task body raised: a failure is recorded and logged, the worker
carries on, and the next scheduled slot is the retry. Each run holds a Redis lock for its task so
that a RUN click during a scheduled run (or two workers) cannot run the same import twice at once;
the loser records a ``skipped`` run.

The lock is a lease: it lasts ``task_lease_seconds`` (a minute) and a heartbeat thread beside the
body renews it, and stamps the run's heartbeat in the database, every third of that. So a long run
keeps its lock for as long as its process lives, and a run whose process was killed (``kill -9``,
the OOM killer, a lost host) lets its lock go within a lease. The scheduler then finds the run
(``recover_lost_runs``: still ``running``, no heartbeat for a lease, lock not renewed), records it
failed in words, and queues the task once more (trigger ``retry``; a retry is not retried again).
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime, timedelta

from redis.exceptions import LockError, RedisError
from redis.lock import Lock
from rq import Queue
from rq.job import Job

from dashboard.core import Core, get_core
from dashboard.services import system_tasks
from dashboard.services.system_tasks import RETRY_TRIGGER, RunView
from models import TaskOutcome, utcnow
from workers.tasks import REGISTRY, TaskContext, TaskNotConfigured, TaskRegistry

log = logging.getLogger(__name__)

LOCK_PREFIX = "parkops:task-lock:"
JOB_TIMEOUT_SECONDS = 30 * 60


def lock_key(name: str) -> str:
    return f"{LOCK_PREFIX}{name}"


def execute_task(core: Core, name: str, trigger: str) -> RunView:
    """Run task ``name`` under its lock and record the run; returns the finished run.

    The run is recorded first and its id goes into the lock's token, so the lock says which run
    holds it. Raises ``UnknownTask`` for a name not in the registry; nothing a body raises escapes.
    """
    registered = REGISTRY.get(name)
    with core.db.session() as session:
        # The CLI may run a task before any scheduler has created its row.
        system_tasks.sync_registry(session, [registered.definition])
        run_id = system_tasks.start_run(session, name, trigger)
    lock = core.redis.lock(lock_key(name), timeout=core.settings.task_lease_seconds, thread_local=False)
    try:
        acquired = lock.acquire(blocking=False, token=f"{run_id}:{uuid.uuid4().hex}")
    except RedisError as exc:
        return _finish(
            core, run_id, TaskOutcome.FAILED, f"the task's lock could not be taken in Redis: {exc}"
        )
    if not acquired:
        return _finish(core, run_id, TaskOutcome.SKIPPED, "already running")

    heartbeat = _Heartbeat(core, lock, run_id, name)
    try:
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
        heartbeat.stop()
        with core.db.session() as session:
            return system_tasks.finish_run(session, run_id, outcome, message, rows)
    finally:
        heartbeat.stop()
        _release(lock, name)


def _finish(core: Core, run_id: int, outcome: TaskOutcome, message: str) -> RunView:
    """The log shows every request, including one that found the task already running."""
    with core.db.session() as session:
        return system_tasks.finish_run(session, run_id, outcome, message, 0)


class _Heartbeat:
    """Renews the run's lock and stamps its heartbeat every third of the lease, from a thread beside
    the body, for as long as this process runs the body.

    A lock lost meanwhile (Redis restarted empty) is taken again under the same token when free.
    Failures are logged and retried on the next beat: a short Redis or database blip must not end
    a healthy run, and the lease is three beats long."""

    def __init__(self, core: Core, lock: Lock, run_id: int, name: str) -> None:
        self.core, self.lock, self.run_id, self.name = core, lock, run_id, name
        self.lease = core.settings.task_lease_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"parkops-heartbeat-{name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _beat(self) -> None:
        while not self._stopped.wait(self.lease / 3):
            self._renew_lock()
            try:
                with self.core.db.session() as session:
                    system_tasks.beat(session, self.run_id, utcnow())
            except Exception:
                log.warning(
                    "system task %s (run %s): heartbeat not recorded", self.name, self.run_id, exc_info=True
                )

    def _renew_lock(self) -> None:
        try:
            self.lock.extend(self.lease, replace_ttl=True)
        except LockError:
            token = self.lock.local.token
            if self.lock.acquire(blocking=False, token=token):
                log.warning(
                    "system task %s (run %s): its lock had vanished; taken again", self.name, self.run_id
                )
            else:
                log.warning(
                    "system task %s (run %s): its lock is held by another run", self.name, self.run_id
                )
        except RedisError:
            log.warning("system task %s (run %s): lock not renewed", self.name, self.run_id, exc_info=True)


def _release(lock: Lock, name: str) -> None:
    try:
        lock.release()
    except LockError:
        log.warning("lock of system task %s had expired before the run ended", name)


def run_system_task(name: str, trigger: str) -> dict[str, object]:
    """The RQ job: plain values in and out, so the job survives serialisation."""
    return execute_task(get_core(), name, trigger).as_dict()


def enqueue_task(core: Core, name: str, trigger: str, job_id: str | None = None) -> str:
    """Queue a run of ``name``; returns the RQ job id.

    With ``job_id`` (a scheduled slot, the retry of a lost run) the enqueue is idempotent: a job of
    that id already in Redis is not queued again. That is what makes a scheduler's claim safe to
    repeat when its database commit failed after the job was queued."""
    REGISTRY.get(name)  # refuse unknown names here rather than in a worker later
    if job_id is not None and Job.exists(job_id, connection=core.redis):
        return job_id
    queue = Queue(core.settings.queue_name, connection=core.redis)
    job = queue.enqueue(
        run_system_task,
        name,
        trigger,
        job_timeout=JOB_TIMEOUT_SECONDS,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"system task {name} ({trigger})",
        job_id=job_id,
    )
    return job.id


def recover_lost_runs(
    core: Core, registry: TaskRegistry | None = None, now: datetime | None = None
) -> list[RunView]:
    """Find the runs whose worker died, record each failed, and queue its task once more.

    A run is lost when it is still ``running``, has stamped no heartbeat for a lease, and its
    lock is not held under its token (by then the lock has expired; a run whose database writes
    fail but whose process lives keeps renewing it). Marking the run and queueing the retry happen
    in one transaction that commits after the enqueue, so a retry is queued exactly when the run is
    marked; of several schedulers doing this at once, one wins. Returns the runs recorded failed.
    """
    registry = REGISTRY if registry is None else registry
    now = now or utcnow()
    with core.db.session() as session:
        silent = system_tasks.silent_runs(session, now - timedelta(seconds=core.settings.task_lease_seconds))
    recorded = []
    for run in silent:
        holder = core.redis.get(lock_key(run.task_name))
        holder_text = holder.decode() if isinstance(holder, bytes) else holder
        if holder_text is not None and holder_text.partition(":")[0] == str(run.id):
            continue
        with core.db.session() as session:
            lost = system_tasks.give_up_run(
                session, run.id, core.settings.tz, can_retry=run.task_name in registry
            )
            if lost is None:
                continue
            if lost.retry:
                enqueue_task(core, run.task_name, RETRY_TRIGGER, job_id=f"parkops-retry-{run.id}")
        log.warning("system task %s: run %s lost its worker (%s)", run.task_name, run.id, lost.run.message)
        recorded.append(lost.run)
    return recorded
