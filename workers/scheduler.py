"""The scheduler: every few seconds, claim the system tasks that are due and enqueue them, and
recover the runs whose worker died.

Any number of schedulers may run (one per ``parkops run``, or ``parkops scheduler`` on several
hosts): ``system_tasks.claim_slot`` gives each due slot to exactly one of them.

A slot is claimed and enqueued both or neither: each claim is its own transaction, committed only
after its job is in Redis (under an id made from the slot, so repeating a claim whose commit failed
queues nothing twice). While Redis is down the slot simply stays due and every tick tries again;
when Redis is back the task runs, and a slot one interval late or more leaves a ``missed`` entry in
the task log (``system_tasks.record_missed``); a task at fixed times that starts late (the
scheduler was down at 02:00, back at 05:00) runs once on return and leaves a ``late`` entry.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from redis.exceptions import RedisError

from dashboard.core import Core
from dashboard.services import system_tasks
from dashboard.services.system_tasks import Slot
from models import utcnow
from workers.jobs import enqueue_task, recover_lost_runs
from workers.tasks import REGISTRY, TaskRegistry

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0


def slot_job_id(slot: Slot) -> str | None:
    """The RQ job id of a scheduled slot (``None`` for a task never scheduled yet)."""
    if slot.due_at is None:
        return None
    return f"parkops-{slot.name}-{int(slot.due_at.timestamp() * 1_000_000)}"


class Scheduler:
    def __init__(self, core: Core, registry: TaskRegistry = REGISTRY) -> None:
        self.core = core
        self.registry = registry
        self._synced = False
        # What Redis answered when a task could not be queued, for the "missed" entry if it comes to that.
        self._queue_errors: dict[str, str] = {}

    def tick(self, now: datetime | None = None) -> list[str]:
        """Recover lost runs, then claim and enqueue the due tasks; return their names. The registry
        is synced on the first tick (not in ``__init__``) so that a database that is down at start-up
        is retried. A slot that could not be queued stays due; the first such error is raised after
        every slot was tried, for the loop to log."""
        with self.core.db.session() as session:
            if not self._synced:
                system_tasks.sync_registry(session, self.registry.definitions())
            now = now or utcnow()  # after the sync, which makes new tasks due at its own "now"
            slots = system_tasks.due_slots(session, now, only=self.registry.names())
        self._synced = True
        try:
            recover_lost_runs(self.core, self.registry, now)
        except Exception as exc:
            log.warning("could not look for task runs whose worker died: %s", exc)
        claimed: list[str] = []
        errors: list[Exception] = []
        for slot in slots:
            try:
                if self._claim(slot, now):
                    claimed.append(slot.name)
            except RedisError as exc:
                self._queue_errors[slot.name] = f"{type(exc).__name__}: {exc}"
                errors.append(exc)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        return claimed

    def _claim(self, slot: Slot, now: datetime) -> bool:
        """Claim ``slot`` and enqueue its job in one transaction that commits after the enqueue."""
        with self.core.db.session() as session:
            if not system_tasks.claim_slot(session, slot, now, self.core.settings.tz):
                return False
            system_tasks.record_missed(
                session, slot, now, self.core.settings.tz, self._queue_errors.get(slot.name)
            )
            job_id = enqueue_task(self.core, slot.name, trigger="schedule", job_id=slot_job_id(slot))
        self._queue_errors.pop(slot.name, None)
        log.info("enqueued system task %s (job %s)", slot.name, job_id)
        return True


def run_scheduler(core: Core, stop: threading.Event, tick_seconds: float = TICK_SECONDS) -> None:
    """Tick until ``stop`` is set. A failing tick is logged and the next one tries again: a
    database or Redis blip must not end scheduling for good."""
    scheduler = Scheduler(core)
    log.info("scheduler started (every %.0f s)", tick_seconds)
    while not stop.is_set():
        try:
            scheduler.tick()
        except Exception:
            log.exception("scheduler tick failed")
        stop.wait(tick_seconds)


def start_scheduler_thread(core: Core, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=run_scheduler, args=(core, stop), name="parkops-scheduler", daemon=True)
    thread.start()
    return thread
