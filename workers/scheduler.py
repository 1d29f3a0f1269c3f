"""The scheduler: every few seconds, claim the system tasks that are due and enqueue them.

Any number of schedulers may run (one per ``parkops run``, or ``parkops scheduler`` on several
hosts): ``system_tasks.claim_due`` gives each due slot to exactly one of them.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from dashboard.app import Core
from dashboard.services import system_tasks
from models import utcnow
from workers.jobs import enqueue_task
from workers.tasks import REGISTRY, TaskRegistry

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0


class Scheduler:
    def __init__(self, core: Core, registry: TaskRegistry = REGISTRY) -> None:
        self.core = core
        self.registry = registry
        self._synced = False

    def tick(self, now: datetime | None = None) -> list[str]:
        """Claim and enqueue the due tasks; return their names. The registry is synced on the first
        tick (not in ``__init__``) so that a database that is down at start-up is retried."""
        with self.core.db.session() as session:
            if not self._synced:
                system_tasks.sync_registry(session, self.registry.definitions())
            claimed = system_tasks.claim_due(session, now or utcnow(), only=self.registry.names())
        self._synced = True
        for name in claimed:
            job_id = enqueue_task(self.core, name, trigger="schedule")
            log.info("enqueued system task %s (job %s)", name, job_id)
        return claimed


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
