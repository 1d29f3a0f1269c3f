"""The system-task schedule: registry sync, enabling, intervals, claiming due slots, the run log."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select

from dashboard.services import system_tasks
from dashboard.services.errors import NotFound, ValidationFailed
from models import AuditLog, Role, SystemTask, TaskOutcome, TaskRun, utcnow
from workers.tasks import REGISTRY

SEED = {
    "update-mistall": ("Update Mistall System Job Task", 600),
    "fetch-parkmobile": ("Fetch ParkMobile Stats", 180),
    "parking-logix-sync": ("Parking Logix Sync", 300),
    "managed-user-import": ("Managed User Import", 300),
    "peoplesoft-holds": ("PeopleSoft Holds Report", 86400),
    "occupancy-snapshots": ("Occupancy Snapshots", 300),
    "waitlist-offers": ("Waitlist Offers", 60),
    "payment-reconciliation": ("Payment Reconciliation", 86400),
    "email-delivery": ("Deliver Queued Email", 60),
    "boot-non-return": ("Unreturned Boots", 3600),
}
# History, offers, reconciliation and mail work out of the box; every integration waits for an admin.
ON_BY_DEFAULT = ("occupancy-snapshots", "waitlist-offers", "payment-reconciliation", "email-delivery")


def claim_due(session, now, only=None) -> list[str]:
    """What one scheduler tick claims (each claim committed with the session here)."""
    return [
        slot.name
        for slot in system_tasks.due_slots(session, now, only=only)
        if system_tasks.claim_slot(session, slot, now, UTC)
    ]


@pytest.fixture
def synced(core):
    """The registry synced, with the one task that is on by default switched off, so that each
    test decides what is due."""
    with core.db.session() as s:
        system_tasks.sync_registry(s, REGISTRY.definitions())
        for name in ON_BY_DEFAULT:
            s.get(SystemTask, name).enabled = False


def test_registry_holds_the_seed_tasks_and_only_history_is_on_by_default():
    assert {d.name: (d.title, d.default_interval_seconds) for d in REGISTRY.definitions()} == SEED
    assert [d.name for d in REGISTRY.definitions() if d.default_enabled] == list(ON_BY_DEFAULT)
    assert "update-mistall" in REGISTRY and "nope" not in REGISTRY


def test_sync_creates_rows_due_now_and_is_idempotent(core):
    before = utcnow()
    for _ in range(2):
        with core.db.session() as s:
            system_tasks.sync_registry(s, REGISTRY.definitions())
    with core.db.session() as s:
        tasks = system_tasks.list_tasks(s)
    assert {t.name: (t.title, t.interval_seconds) for t in tasks} == SEED
    assert all(t.enabled == (t.name in ON_BY_DEFAULT) for t in tasks)
    assert all(t.last_run_at is None and t.last_outcome is None for t in tasks)
    assert all(before <= t.next_run_at <= utcnow() for t in tasks)


def test_sync_updates_titles_but_keeps_what_admins_changed(core, synced, make_user):
    admin = make_user(Role.ADMIN)
    with core.db.session() as s:
        system_tasks.set_enabled(s, "update-mistall", True, admin.id)
        system_tasks.set_interval(s, "update-mistall", 1200, admin.id)
    renamed = [
        replace(d, title="Mistall Import") if d.name == "update-mistall" else d
        for d in REGISTRY.definitions()
    ]
    with core.db.session() as s:
        system_tasks.sync_registry(s, renamed)
        task = system_tasks.get_task(s, "update-mistall")
    assert (task.title, task.enabled, task.interval_seconds) == ("Mistall Import", True, 1200)


def test_enabling_schedules_an_immediate_run_and_is_audited(core, synced, make_user):
    admin = make_user(Role.ADMIN)
    with core.db.session() as s:
        s.get(SystemTask, "peoplesoft-holds").next_run_at = utcnow() + timedelta(days=1)
    with core.db.session() as s:
        task = system_tasks.set_enabled(s, "peoplesoft-holds", True, admin.id)
    assert task.enabled and task.next_run_at <= utcnow()
    with core.db.session() as s:
        assert claim_due(s, utcnow()) == ["peoplesoft-holds"]
        audit = s.scalars(select(AuditLog)).all()
    assert [(a.actor_id, a.action, a.entity_id, a.changes) for a in audit] == [
        (admin.id, "system_task.enable", "peoplesoft-holds", {"enabled": [False, True]})
    ]


def test_enabling_an_enabled_task_changes_nothing(core, synced):
    with core.db.session() as s:
        system_tasks.set_enabled(s, "update-mistall", True, None)
        claimed_at = utcnow()
        claim_due(s, claimed_at)
    with core.db.session() as s:
        task = system_tasks.set_enabled(s, "update-mistall", True, None)
        assert s.scalar(select(AuditLog.id).where(AuditLog.action == "system_task.enable").offset(1)) is None
    assert task.next_run_at == claimed_at + timedelta(seconds=600)


@pytest.mark.parametrize("seconds", [59, 604801, 0, -60, True, "600", 600.0])
def test_interval_out_of_range_or_not_an_integer_is_refused(core, synced, seconds):
    with core.db.session() as s, pytest.raises(ValidationFailed) as failure:
        system_tasks.set_interval(s, "update-mistall", seconds, None)
    assert "interval_seconds" in failure.value.errors


def test_shorter_interval_brings_the_next_run_forward(core, synced, make_user):
    admin = make_user(Role.ADMIN)
    with core.db.session() as s:
        s.get(SystemTask, "peoplesoft-holds").next_run_at = utcnow() + timedelta(days=1)
    with core.db.session() as s:
        task = system_tasks.set_interval(s, "peoplesoft-holds", 3600, admin.id)
        audit = s.scalars(select(AuditLog)).one()
    assert task.interval_seconds == 3600
    assert task.next_run_at <= utcnow() + timedelta(seconds=3600)
    assert (audit.action, audit.changes) == ("system_task.interval", {"interval_seconds": [86400, 3600]})


def test_unknown_task_is_not_found(core, synced):
    with core.db.session() as s:
        with pytest.raises(NotFound):
            system_tasks.set_enabled(s, "no-such-task", True, None)
        with pytest.raises(NotFound):
            system_tasks.start_run(s, "no-such-task", "manual")


def test_claim_due_takes_each_slot_once_and_only_enabled_tasks(core, synced):
    with core.db.session() as s:
        system_tasks.set_enabled(s, "update-mistall", True, None)
        system_tasks.set_enabled(s, "fetch-parkmobile", True, None)
    now = utcnow()
    with core.db.session() as s:
        assert claim_due(s, now, only=["update-mistall"]) == ["update-mistall"]
        assert claim_due(s, now) == ["fetch-parkmobile"]
        assert claim_due(s, now) == []
        assert claim_due(s, now + timedelta(seconds=180)) == ["fetch-parkmobile"]
        assert claim_due(s, now + timedelta(seconds=600)) == [
            "fetch-parkmobile",
            "update-mistall",
        ]
        assert s.get(SystemTask, "update-mistall").next_run_at == now + timedelta(seconds=1200)


def test_claim_loses_when_another_scheduler_takes_the_slot_between_its_read_and_its_update(core, synced):
    """The race itself: scheduler B has read the due slot; just before B's UPDATE runs, scheduler A
    claims it and commits. B's conditional UPDATE then matches nothing and B claims nothing."""
    with core.db.session() as s:
        system_tasks.set_enabled(s, "update-mistall", True, None)
    now = utcnow()
    won_by_a: list[str] = []

    def a_claims_first(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("UPDATE SYSTEM_TASKS") and not won_by_a:
            won_by_a.append("racing")
            with core.db.session() as a:
                won_by_a[:] = claim_due(a, now)

    event.listen(core.db.engine, "before_cursor_execute", a_claims_first)
    try:
        with core.db.session() as b:
            won_by_b = claim_due(b, now)
    finally:
        event.remove(core.db.engine, "before_cursor_execute", a_claims_first)
    assert won_by_a == ["update-mistall"]
    assert won_by_b == []
    with core.db.session() as s:
        assert s.get(SystemTask, "update-mistall").next_run_at == now + timedelta(seconds=600)


def test_runs_are_logged_newest_first_and_skips_keep_the_last_outcome(core, synced):
    with core.db.session() as s:
        first = system_tasks.start_run(s, "update-mistall", "schedule")
        failed = system_tasks.finish_run(s, first, TaskOutcome.FAILED, "boom", 0)
        second = system_tasks.start_run(s, "update-mistall", "manual")
        skipped = system_tasks.finish_run(s, second, TaskOutcome.SKIPPED, "already running", 0)
        other = system_tasks.start_run(s, "fetch-parkmobile", "cli")
        system_tasks.finish_run(s, other, "success", "12 sessions", 12)
    assert failed.outcome == "failed" and failed.duration_ms >= 0 and failed.finished_at is not None
    assert skipped.outcome == "skipped"
    with core.db.session() as s:
        mistall = system_tasks.get_task(s, "update-mistall")
        runs = system_tasks.recent_runs(s)
        only_mistall = system_tasks.recent_runs(s, name="update-mistall", limit=1)
    assert (mistall.last_outcome, mistall.last_run_at) == ("failed", failed.started_at)
    assert [r.id for r in runs] == [other, second, first]
    assert (runs[0].task_title, runs[0].rows_touched, runs[0].message) == (
        "Fetch ParkMobile Stats",
        12,
        "12 sessions",
    )
    assert [r.id for r in only_mistall] == [second]
    assert runs[0].as_dict()["outcome"] == "success"


def test_a_slot_late_by_less_than_an_interval_just_runs_and_one_later_is_logged_missed(core, synced):
    due = utcnow() - timedelta(hours=1)
    slot = system_tasks.Slot("update-mistall", due, 600)
    assert [slot.missed_runs(due + timedelta(seconds=s)) for s in (0, 599, 600, 1199, 1200, 6000)] == [
        0,
        0,
        1,
        1,
        2,
        10,
    ]
    assert system_tasks.Slot("update-mistall", None, 600).missed_runs(due) == 0
    with core.db.session() as s:
        assert system_tasks.record_missed(s, slot, due + timedelta(seconds=599), core.settings.tz) is None
        missed = system_tasks.record_missed(
            s, slot, due + timedelta(seconds=650), core.settings.tz, "ConnectionError: refused"
        )
    assert (missed.outcome, missed.trigger, missed.rows_touched) == ("missed", "schedule", 0)
    assert missed.message.startswith("1 scheduled run was missed (due at ")
    assert "the job queue (Redis) could not take jobs (ConnectionError: refused)" in missed.message
    with core.db.session() as s:
        assert len(system_tasks.recent_runs(s)) == 1
        assert system_tasks.get_task(s, "update-mistall").last_outcome is None


def test_heartbeats_only_touch_running_runs_and_a_lost_run_is_given_up_once(core, synced):
    with core.db.session() as s:
        run_id = system_tasks.start_run(s, "update-mistall", "schedule")
        later = utcnow() + timedelta(seconds=30)
        assert system_tasks.beat(s, run_id, later)
        assert [r.id for r in system_tasks.silent_runs(s, later)] == []
        assert [r.last_seen for r in system_tasks.silent_runs(s, later + timedelta(seconds=1))] == [later]
        lost = system_tasks.give_up_run(s, run_id, core.settings.tz, can_retry=False)
        assert lost is not None and not lost.retry
        assert "not retried: the task no longer exists" in lost.run.message
        assert lost.run.finished_at == later
        assert system_tasks.give_up_run(s, run_id, core.settings.tz, can_retry=True) is None
        assert not system_tasks.beat(s, run_id, later)
        assert system_tasks.silent_runs(s, later + timedelta(days=1)) == []


def test_a_lost_run_is_not_retried_when_the_task_has_run_since(core, synced):
    """E.g. runs left ``running`` by an older version: each is closed, none queues a retry, since a
    newer run (not a skip) already did the work."""
    with core.db.session() as s:
        old = system_tasks.start_run(s, "update-mistall", "schedule")
        skipped = system_tasks.start_run(s, "update-mistall", "manual")
        system_tasks.finish_run(s, skipped, TaskOutcome.SKIPPED, "already running", 0)
        assert system_tasks.give_up_run(s, old, core.settings.tz, can_retry=True).retry
        older = system_tasks.start_run(s, "fetch-parkmobile", "schedule")
        newer = system_tasks.start_run(s, "fetch-parkmobile", "schedule")
        system_tasks.finish_run(s, newer, TaskOutcome.SUCCESS, "12 imported", 12)
        lost = system_tasks.give_up_run(s, older, core.settings.tz, can_retry=True)
    assert not lost.retry
    assert lost.run.message.endswith("not retried: the task has run again since.")


def test_a_schedule_is_checked_and_switching_back_restores_the_interval(core, synced):
    tz = ZoneInfo("America/Toronto")
    with core.db.session() as s:
        with pytest.raises(ValidationFailed) as refused:
            system_tasks.set_schedule(s, "update-mistall", "every night", tz, None)
        assert "five fields" in refused.value.errors["schedule"]
        assert s.get(SystemTask, "update-mistall").schedule is None
        task = system_tasks.set_schedule(s, "update-mistall", "15 4 * * *", tz, None)
        assert task.schedule_words == "daily at 04:15"
        local = task.next_run_at.astimezone(tz)
        assert (local.hour, local.minute) == (4, 15) and task.next_run_at - utcnow() <= timedelta(days=1)
        back = system_tasks.set_schedule(s, "update-mistall", None, tz, None)
        assert back.schedule is None and back.schedule_words == "every 10 min"
        assert back.next_run_at - utcnow() <= timedelta(seconds=600)
        # A spec that does not parse any more (changed by hand in the database) still reads in words.
        s.get(SystemTask, "update-mistall").schedule = "nonsense"
        assert "not a valid schedule" in system_tasks.get_task(s, "update-mistall").schedule_words


def test_a_late_entry_is_not_a_run_when_a_lost_run_is_retried(core, synced):
    """The entry for a late slot (or a missed one) does not count as the task having run since."""
    tz = core.settings.tz
    with core.db.session() as s:
        run_id = system_tasks.start_run(s, "peoplesoft-holds", "schedule")
        s.get(TaskRun, run_id).heartbeat_at = utcnow() - timedelta(hours=4)
        slot = system_tasks.Slot("peoplesoft-holds", utcnow() - timedelta(hours=3), 86400, "0 2 * * *")
        assert system_tasks.record_missed(s, slot, utcnow(), tz).outcome == "late"
        lost = system_tasks.give_up_run(s, run_id, tz, can_retry=True)
        assert lost is not None and lost.retry


def test_a_page_describes_its_task_as_off_missing_or_with_its_next_run(core, synced):
    tz = ZoneInfo("America/Toronto")
    now = datetime(2026, 3, 8, 2, 0, tzinfo=UTC)
    with core.db.session() as s:
        assert system_tasks.find_task(s, "no-such-task") is None
        off = system_tasks.find_task(s, "peoplesoft-holds")
        row = s.get(SystemTask, "peoplesoft-holds")
        row.enabled, row.next_run_at = True, datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    with core.db.session() as s:
        on = system_tasks.find_task(s, "peoplesoft-holds")
    assert off is not None and on is not None
    for task in (None, off):
        assert system_tasks.schedule_sentence(task, "PeopleSoft Holds Report", tz, now) == (
            "The PeopleSoft Holds Report task is off in System Task Logs."
        )
    assert system_tasks.schedule_sentence(on, "PeopleSoft Holds Report", tz, now) == (
        f"It runs {on.schedule_words}; next run: Sunday 8 March 2026 at 03:00 EDT (in 5 h)."
    )
