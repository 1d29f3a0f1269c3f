"""Running the system: admin settings, system tasks and their runs, API keys, the audit log."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, str_enum, utcnow


class SystemSetting(Base):
    """One admin-editable setting. Secret values are stored as Fernet tokens (``enc:`` prefix)."""

    __tablename__ = "system_settings"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class SystemTask(Base):
    """A named periodic task (Tools > View System Task Logs). Code registers the names; this row
    keeps what admins change (enabled, interval) and the schedule."""

    __tablename__ = "system_tasks"
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    enabled: Mapped[bool] = mapped_column(default=False)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    # A cron-like spec read in the site's time zone ("0 2 * * *": daily at 02:00); None: every
    # ``interval_seconds``. See ``dashboard.services.schedules``.
    schedule: Mapped[str | None] = mapped_column(String(64))
    next_run_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    last_outcome: Mapped[str | None] = mapped_column(String(24))


class TaskOutcome(enum.StrEnum):
    """Stored as its value in a plain VARCHAR (``str_enum``, no CHECK), so a new value needs no
    migration. Pages show the value in words ("partly failed")."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    # The run did part of its work and failed at the rest (one Parking Logix key of several was
    # refused): it needs an admin as much as a failed run, and the message says which part.
    PARTLY_FAILED = "partly_failed"
    NOT_CONFIGURED = "not_configured"
    SKIPPED = "skipped"
    MISSED = "missed"  # a scheduled slot nobody could queue in time (not a run; see claim_slot)
    # A run at a fixed time that starts late (the scheduler was down at its time): not a run either,
    # the entry that says so; the run itself follows at once.
    LATE = "late"


# The outcomes that need attention: the task health widget counts them as failing.
FAILING_OUTCOMES = frozenset({TaskOutcome.FAILED, TaskOutcome.PARTLY_FAILED})


class TaskRun(Base):
    """One run of a task, or one entry about a run that did not happen (skipped, missed).

    ``heartbeat_at`` is the last sign of life of the process running it (stamped every few seconds
    while the body runs): a ``running`` run whose heartbeat stopped belongs to a worker that died."""

    __tablename__ = "task_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_name: Mapped[str] = mapped_column(ForeignKey("system_tasks.name", ondelete="CASCADE"), index=True)
    trigger: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[TaskOutcome] = mapped_column(
        str_enum(TaskOutcome), default=TaskOutcome.RUNNING, index=True
    )
    message: Mapped[str] = mapped_column(Text, default="")
    rows_touched: Mapped[int] = mapped_column(Integer, default=0)


class ApiKey(Base):
    """A partner's key. Only a SHA-256 of the key is kept (keys are 256-bit random, so a slow hash
    adds nothing); ``prefix`` lets admins recognise a key without it being recoverable. ``sources``:
    the permit sources (``PermitSource`` values) the key acts for: it records, sees and changes
    only permits of those sources."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    sources: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditLog(Base):
    """Who changed what. Secret values never appear in ``changes``, only that they changed."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(80))
    entity_type: Mapped[str] = mapped_column(String(60))
    entity_id: Mapped[str | None] = mapped_column(String(80))
    changes: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
