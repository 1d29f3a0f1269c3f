"""The audit log service."""

import pytest

from dashboard.services import audit
from models import Role


def test_record_and_read_back_with_the_actor(session, make_user):
    admin = make_user(Role.ADMIN)
    audit.record(
        session,
        actor_id=admin.id,
        action="settings.update",
        entity_type="system_settings",
        entity_id=None,
        changes={"site_name": {"old": "ParkOps", "new": "Campus"}},
    )
    session.flush()
    [entry] = audit.recent(session)
    assert entry.actor_id == admin.id and entry.actor_email == admin.email
    assert entry.action == "settings.update" and entry.entity_type == "system_settings"
    assert entry.entity_id is None
    assert entry.changes == {"site_name": {"old": "ParkOps", "new": "Campus"}}
    assert entry.created_at.tzinfo is not None


def test_system_actions_have_no_actor(session):
    audit.record(session, actor_id=None, action="task.run", entity_type="task", entity_id="x", changes={})
    session.flush()
    [entry] = audit.recent(session)
    assert entry.actor_id is None and entry.actor_email is None


def test_recent_is_newest_first_limited_and_filtered(session):
    for i in range(5):
        kind = "boot" if i % 2 else "system_settings"
        audit.record(session, actor_id=None, action=f"a{i}", entity_type=kind, entity_id=str(i), changes={})
        session.flush()
    assert [e.action for e in audit.recent(session)] == ["a4", "a3", "a2", "a1", "a0"]
    assert [e.action for e in audit.recent(session, limit=2)] == ["a4", "a3"]
    assert [e.action for e in audit.recent(session, entity_type="boot")] == ["a3", "a1"]


def test_an_entry_is_committed_only_with_its_change(core):
    """Recorded in the caller's unit of work: a failed save leaves no entry claiming it happened."""
    with pytest.raises(RuntimeError), core.db.session() as session:
        audit.record(session, actor_id=None, action="x", entity_type="y", entity_id=None, changes={})
        raise RuntimeError("the change failed")
    with core.db.session() as session:
        assert audit.recent(session) == []
