"""The system tasks (Tools > View System Task Logs): names, defaults and bodies, registered in code.

Code owns *which* tasks exist and what they do; the ``system_tasks`` table owns what admins change
(enabled, interval) and the schedule. ``dashboard.services.system_tasks.sync_registry`` reconciles
the two. A body receives a ``TaskContext`` and returns a ``TaskResult``; ``workers.jobs`` wraps
every call in a lock and records the run.

The seed's tasks are registered here with bodies that raise ``TaskNotConfigured`` until the
integration each one needs is written: the run log then says exactly what is missing instead of
pretending the task succeeded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from dashboard.app import Core


class TaskNotConfigured(Exception):
    """The task cannot run until something is set up; ``str()`` says what, for the run log.

    A state rather than a fault, so runs record it as ``not_configured``, not ``failed``."""


class UnknownTask(LookupError):
    """No task of that name is registered (a stale job, a typo, or a tampered page request)."""


@dataclass(frozen=True)
class TaskDefinition:
    """What code declares about a task; the database row starts from these defaults."""

    name: str
    title: str
    default_interval_seconds: int
    description: str
    default_enabled: bool = False


@dataclass(frozen=True)
class TaskResult:
    rows_touched: int
    message: str


@dataclass(frozen=True)
class TaskContext:
    """What a body may use. Bodies open their own short sessions so a long import can commit in
    batches, and a failure rolls back only the batch in progress."""

    core: Core
    logger: logging.Logger

    def session(self) -> AbstractContextManager[Session]:
        return self.core.db.session()


TaskBody = Callable[[TaskContext], TaskResult]


@dataclass(frozen=True)
class RegisteredTask:
    definition: TaskDefinition
    body: TaskBody


class TaskRegistry:
    """Named task bodies with their definitions, in registration order (the order admins see)."""

    def __init__(self) -> None:
        self._tasks: dict[str, RegisteredTask] = {}

    def task(
        self,
        name: str,
        *,
        title: str,
        interval_seconds: int,
        description: str,
        default_enabled: bool = False,
    ) -> Callable[[TaskBody], TaskBody]:
        """Decorator registering a body under ``name``; a duplicate name is a programming error."""
        definition = TaskDefinition(name, title, interval_seconds, description, default_enabled)

        def register(body: TaskBody) -> TaskBody:
            if name in self._tasks:
                raise ValueError(f"task {name!r} is already registered")
            self._tasks[name] = RegisteredTask(definition, body)
            return body

        return register

    def definitions(self) -> list[TaskDefinition]:
        return [registered.definition for registered in self._tasks.values()]

    def names(self) -> list[str]:
        return list(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def get(self, name: str) -> RegisteredTask:
        try:
            return self._tasks[name]
        except KeyError:
            raise UnknownTask(f"unknown task {name!r}") from None


REGISTRY = TaskRegistry()


@REGISTRY.task(
    "update-mistall",
    title="Update Mistall System Job Task",
    interval_seconds=600,
    description="Imports lot occupancy counts from the Mistall parking guidance system.",
)
def update_mistall(ctx: TaskContext) -> TaskResult:
    raise TaskNotConfigured(
        "Mistall credentials are not set (System Settings > Third Party); "
        "the Mistall import arrives with the live-occupancy work"
    )


@REGISTRY.task(
    "fetch-parkmobile",
    title="Fetch ParkMobile Stats",
    interval_seconds=180,
    description=(
        "Fetches ParkMobile permits and stores them as pay-station (Cale) records "
        "for lot zones of the same name."
    ),
)
def fetch_parkmobile(ctx: TaskContext) -> TaskResult:
    raise TaskNotConfigured(
        "ParkMobile API credentials are not set (System Settings > Third Party); "
        "the ParkMobile import arrives with the permits work"
    )


@REGISTRY.task(
    "parking-logix-sync",
    title="Parking Logix Sync",
    interval_seconds=300,
    description=(
        "Reads lot counts from Parking Logix for lot groups that hold an API key and a Parking Logix name."
    ),
)
def parking_logix_sync(ctx: TaskContext) -> TaskResult:
    raise TaskNotConfigured(
        "Parking Logix API URL and key are not set (System Settings > Third Party); "
        "the Parking Logix sync arrives with the live-occupancy work"
    )


@REGISTRY.task(
    "managed-user-import",
    title="Managed User Import",
    interval_seconds=300,
    description=(
        "Imports users from CSV files dropped in the SFTP folder; failures are e-mailed "
        "to the Failed Import Email."
    ),
)
def managed_user_import(ctx: TaskContext) -> TaskResult:
    raise TaskNotConfigured(
        "No SFTP import folder is configured; the managed user import arrives with the "
        "user import work (CSV User Import settings are on System Settings > Third Party)"
    )


@REGISTRY.task(
    "peoplesoft-holds",
    title="PeopleSoft Holds Report",
    interval_seconds=86400,
    description=(
        "E-mails the Holds Added and Holds Released files to the PeopleSoft Holds Notification Email."
    ),
)
def peoplesoft_holds(ctx: TaskContext) -> TaskResult:
    raise TaskNotConfigured(
        "The PeopleSoft Holds Report is not built yet: it arrives with the violations and payments work "
        "(its PeopleSoft Holds Notification Email is on System Settings > Third Party)"
    )
