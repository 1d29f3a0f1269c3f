"""``parkops`` with one more task registered, for tests that kill a real worker process mid-run:
``python -m tests.workers.task_worker worker [--burst]`` is ``parkops worker`` whose registry also
holds ``test-blocks``, a task that runs until the test sets a Redis key."""

from __future__ import annotations

import os
import sys
import time

from dashboard.cli import main
from workers.tasks import REGISTRY, TaskContext, TaskRegistry, TaskResult

BLOCKING_TASK = "test-blocks"
ENTERED_KEY = "parkops-test:blocking-task-entered"  # holds the pid of the process running the body
RELEASE_KEY = "parkops-test:blocking-task-release"


def register(registry: TaskRegistry) -> None:
    @registry.task(BLOCKING_TASK, title="Test Blocks", interval_seconds=60, description="runs until released")
    def blocks(ctx: TaskContext) -> TaskResult:
        ctx.core.redis.set(ENTERED_KEY, os.getpid())
        deadline = time.monotonic() + 120
        while not ctx.core.redis.exists(RELEASE_KEY):
            if time.monotonic() > deadline:
                raise TimeoutError("the test never released the task")
            time.sleep(0.05)
        return TaskResult(rows_touched=1, message="released")


if __name__ == "__main__":
    register(REGISTRY)
    main(sys.argv[1:], prog_name="parkops")
