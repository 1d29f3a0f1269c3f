"""The audit log: who changed what, and when.

Services call ``record`` inside the same session as the change they describe, so an entry is
committed exactly when the change is (a rolled-back save leaves no trace claiming it happened).
Callers own what goes into ``changes``: secrets must appear only as a marker such as ``"changed"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditLog, User


@dataclass(frozen=True)
class AuditEntry:
    """One audit row as plain values, so pages and the API never hold a live ORM object."""

    id: int
    created_at: datetime
    actor_id: int | None
    actor_email: str | None
    action: str
    entity_type: str
    entity_id: str | None
    changes: dict[str, Any]


def record(
    session: Session,
    *,
    actor_id: int | None,
    action: str,
    entity_type: str,
    entity_id: str | None,
    changes: dict[str, Any],
) -> None:
    """Add an entry to the current unit of work. ``actor_id`` is None for system tasks."""
    session.add(
        AuditLog(
            actor_id=actor_id,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            changes=dict(changes),
        )
    )


def recent(session: Session, limit: int = 100, entity_type: str | None = None) -> list[AuditEntry]:
    """Newest first; the actor's e-mail is joined in because ids alone mean nothing to a reader."""
    query = (
        select(AuditLog, User.email)
        .outerjoin(User, User.id == AuditLog.actor_id)
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
        .limit(limit)
    )
    if entity_type is not None:
        query = query.where(AuditLog.entity_type == entity_type)
    return [
        AuditEntry(
            id=row.id,
            created_at=row.created_at,
            actor_id=row.actor_id,
            actor_email=email,
            action=row.action,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
            changes=dict(row.changes or {}),
        )
        for row, email in session.execute(query)
    ]
