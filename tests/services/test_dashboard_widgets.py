"""Dashboard widgets: the registry and who may have which widget, each user's saved layout, and
the data each widget reads, against the database (and Redis for live occupancy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard.services import dashboard_widgets as dw
from dashboard.services import system_settings
from dashboard.services.errors import ValidationFailed
from dashboard.services.occupancy import LiveStore, Policy, Staleness, apply_figure
from models import (
    Boot,
    BootAssignment,
    BootStatus,
    DashboardWidget,
    IngestDeadLetter,
    Lot,
    LotGroup,
    MistallLot,
    OccupancySnapshot,
    OccupancySource,
    Payment,
    PaymentAllocation,
    PaymentStatus,
    Permit,
    PermitKind,
    PermitSource,
    PermitStatus,
    Role,
    SystemTask,
    Violation,
)
from tests.enforcement import enable_boots

TORONTO = ZoneInfo("America/Toronto")
MANAGER_DEFAULT = ["occupancy-summary", "occupancy-today", "permits-today", "boots-in-use"]
ADMIN_DEFAULT = [*MANAGER_DEFAULT, "task-health", "dead-letters"]


@pytest.fixture(autouse=True)
def _boots_on(core):
    """The default layouts below include Boots In Use, which needs Universal Boot Enabled."""
    enable_boots(core)


@pytest.fixture
def secrets(core):
    return core.secrets


def set_mistall(core, on: bool) -> None:
    with core.db.session() as s:
        system_settings.update(s, core.secrets, {"mistall_enabled": on}, actor_id=None)


def saved(session, user_id: int) -> list[str]:
    session.expire_all()
    rows = session.scalars(
        select(DashboardWidget).where(DashboardWidget.user_id == user_id).order_by(DashboardWidget.position)
    )
    return [row.widget_key for row in rows]


# -- registry and availability ------------------------------------------------------------------------


def test_mistall_lot_stats_is_available_only_while_enable_mistall_usage_is_on(core, session, secrets):
    assert "mistall-lot-stats" not in [w.key for w in dw.available_widgets(session, secrets, Role.ADMIN)]
    set_mistall(core, True)
    session.expire_all()
    keys = [w.key for w in dw.available_widgets(session, secrets, Role.MANAGER)]
    assert "mistall-lot-stats" in keys
    assert dw.MISTALL_SETTING == "mistall_enabled"
    assert system_settings.definition(dw.MISTALL_SETTING).label == "Enable Mistall Usage"


def test_admin_only_widgets_are_not_available_to_managers(session, secrets):
    manager = [w.key for w in dw.available_widgets(session, secrets, Role.MANAGER)]
    admin = [w.key for w in dw.available_widgets(session, secrets, Role.ADMIN)]
    assert "task-health" not in manager and "dead-letters" not in manager
    assert {"task-health", "dead-letters"} <= set(admin)
    assert dw.available_widgets(session, secrets, Role.OFFICER) == []


def test_unknown_keys_are_validation_errors(make_user, session, secrets):
    user = make_user(Role.ADMIN)
    with pytest.raises(ValidationFailed) as exc:
        dw.add_widget(session, secrets, user.id, Role.ADMIN, "weather")
    assert "weather" in exc.value.errors["widget_key"]
    for call in (dw.remove_widget, dw.add_widget):
        with pytest.raises(ValidationFailed):
            call(session, secrets, user.id, Role.ADMIN, "")
    with pytest.raises(ValidationFailed):
        dw.move_widget(session, secrets, user.id, Role.ADMIN, "nope", "up")
    with pytest.raises(ValidationFailed) as exc:
        dw.move_widget(session, secrets, user.id, Role.ADMIN, "permits-today", "sideways")
    assert "direction" in exc.value.errors
    assert saved(session, user.id) == []


# -- layouts ---------------------------------------------------------------------------------------


def test_users_without_rows_see_the_default_set_for_their_role(make_user, session, secrets):
    manager, admin = make_user(Role.MANAGER), make_user(Role.ADMIN)
    assert dw.user_layout(session, secrets, manager.id, Role.MANAGER).keys == MANAGER_DEFAULT
    chosen = dw.user_layout(session, secrets, admin.id, Role.ADMIN)
    assert chosen.keys == ADMIN_DEFAULT and chosen.is_default
    assert [w.key for w in chosen.addable] == []
    assert saved(session, admin.id) == []  # reading writes nothing


def test_the_first_change_saves_the_default_then_changes_it(core, make_user, session, secrets):
    set_mistall(core, True)
    user = make_user(Role.MANAGER)
    chosen = dw.add_widget(session, secrets, user.id, Role.MANAGER, "mistall-lot-stats")
    assert chosen.keys == [*MANAGER_DEFAULT, "mistall-lot-stats"] and not chosen.is_default
    session.commit()
    assert saved(session, user.id) == [*MANAGER_DEFAULT, "mistall-lot-stats"]
    again = dw.add_widget(session, secrets, user.id, Role.MANAGER, "mistall-lot-stats")
    assert again.keys.count("mistall-lot-stats") == 1


def test_adding_an_unavailable_widget_is_refused(make_user, session, secrets):
    manager = make_user(Role.MANAGER)
    with pytest.raises(ValidationFailed) as exc:
        dw.add_widget(session, secrets, manager.id, Role.MANAGER, "mistall-lot-stats")
    assert "Enable Mistall Usage" in exc.value.errors["widget_key"]
    with pytest.raises(ValidationFailed) as exc:
        dw.add_widget(session, secrets, manager.id, Role.MANAGER, "task-health")
    assert "not available to your role" in exc.value.errors["widget_key"]
    assert saved(session, manager.id) == []


def test_remove_move_and_reset(make_user, session, secrets):
    user = make_user(Role.MANAGER)
    dw.remove_widget(session, secrets, user.id, Role.MANAGER, "permits-today")
    assert saved(session, user.id) == ["occupancy-summary", "occupancy-today", "boots-in-use"]
    dw.move_widget(session, secrets, user.id, Role.MANAGER, "boots-in-use", "up")
    assert saved(session, user.id) == ["occupancy-summary", "boots-in-use", "occupancy-today"]
    dw.move_widget(session, secrets, user.id, Role.MANAGER, "occupancy-summary", "down")
    assert saved(session, user.id) == ["boots-in-use", "occupancy-summary", "occupancy-today"]
    # at an end nothing moves
    dw.move_widget(session, secrets, user.id, Role.MANAGER, "boots-in-use", "up")
    dw.move_widget(session, secrets, user.id, Role.MANAGER, "occupancy-today", "down")
    assert saved(session, user.id) == ["boots-in-use", "occupancy-summary", "occupancy-today"]
    positions = session.scalars(
        select(DashboardWidget.position)
        .where(DashboardWidget.user_id == user.id)
        .order_by(DashboardWidget.position)
    ).all()
    assert positions == [0, 1, 2]
    with pytest.raises(ValidationFailed) as exc:
        dw.remove_widget(session, secrets, user.id, Role.MANAGER, "permits-today")
    assert "not on your dashboard" in exc.value.errors["widget_key"]
    chosen = dw.reset_to_default(session, secrets, user.id, Role.MANAGER)
    assert chosen.is_default and chosen.keys == MANAGER_DEFAULT
    assert saved(session, user.id) == []


def test_the_last_widget_cannot_be_removed(make_user, session, secrets):
    user = make_user(Role.MANAGER)
    for key in MANAGER_DEFAULT[1:]:
        dw.remove_widget(session, secrets, user.id, Role.MANAGER, key)
    with pytest.raises(ValidationFailed) as exc:
        dw.remove_widget(session, secrets, user.id, Role.MANAGER, "occupancy-summary")
    assert "at least one widget" in exc.value.errors["widget_key"]
    assert saved(session, user.id) == ["occupancy-summary"]


def test_set_order(make_user, session, secrets):
    user = make_user(Role.MANAGER)
    order = ["permits-today", "occupancy-summary", "boots-in-use", "occupancy-today"]
    assert dw.set_order(session, secrets, user.id, Role.MANAGER, order).keys == order
    assert saved(session, user.id) == order
    for bad in (order[:3], [*order[:3], order[0]], [*order, "task-health"]):
        with pytest.raises(ValidationFailed):
            dw.set_order(session, secrets, user.id, Role.MANAGER, bad)
    assert saved(session, user.id) == order


def test_unavailable_saved_widgets_are_skipped_but_kept(core, make_user, session, secrets):
    set_mistall(core, True)
    user = make_user(Role.ADMIN)
    dw.add_widget(session, secrets, user.id, Role.ADMIN, "mistall-lot-stats")
    dw.move_widget(session, secrets, user.id, Role.ADMIN, "mistall-lot-stats", "up")
    session.commit()
    expected = [*ADMIN_DEFAULT[:5], "mistall-lot-stats", "dead-letters"]
    assert saved(session, user.id) == expected

    set_mistall(core, False)
    session.expire_all()
    chosen = dw.user_layout(session, secrets, user.id, Role.ADMIN)
    assert "mistall-lot-stats" not in chosen.keys and chosen.kept == ("mistall-lot-stats",)
    # a move steps over the hidden row instead of seeming to do nothing
    dw.move_widget(session, secrets, user.id, Role.ADMIN, "dead-letters", "up")
    session.commit()
    assert saved(session, user.id) == [*ADMIN_DEFAULT[:4], "dead-letters", "mistall-lot-stats", "task-health"]

    # role lowered: the admin-only widgets are hidden too, and kept
    lowered = dw.user_layout(session, secrets, user.id, Role.MANAGER)
    assert lowered.keys == MANAGER_DEFAULT
    assert set(lowered.kept) == {"dead-letters", "mistall-lot-stats", "task-health"}

    set_mistall(core, True)
    session.expire_all()
    back = dw.user_layout(session, secrets, user.id, Role.ADMIN)
    assert back.keys == [*ADMIN_DEFAULT[:4], "dead-letters", "mistall-lot-stats", "task-health"]


def test_layouts_are_per_user(make_user, session, secrets):
    one, two = make_user(Role.MANAGER), make_user(Role.MANAGER)
    dw.remove_widget(session, secrets, one.id, Role.MANAGER, "boots-in-use")
    dw.move_widget(session, secrets, one.id, Role.MANAGER, "permits-today", "up")
    session.commit()
    assert dw.user_layout(session, secrets, two.id, Role.MANAGER).keys == MANAGER_DEFAULT
    dw.reset_to_default(session, secrets, two.id, Role.MANAGER)
    assert saved(session, one.id) == ["occupancy-summary", "permits-today", "occupancy-today"]


# -- widget data -----------------------------------------------------------------------------------


def test_mistall_lot_stats_labels_bars_with_group_names_or_the_mistall_name(session):
    reported = datetime(2026, 11, 3, 14, 0, tzinfo=UTC)
    session.add_all(
        [
            MistallLot(
                mistall_id="M-1",
                name="Mistall North",
                capacity=200,
                occupied=50,
                reported_at=reported,
                imported_at=reported + timedelta(minutes=2),
            ),
            MistallLot(mistall_id="M-2", name="Zeta Surface", capacity=80, occupied=None),
            MistallLot(
                mistall_id="M-3",
                name="Mistall East",
                capacity=0,
                occupied=3,
                reported_at=reported - timedelta(hours=1),
                imported_at=reported + timedelta(minutes=5),
            ),
            LotGroup(name="North Garage", mistall_lot_id="M-1"),
            LotGroup(name="Annex", mistall_lot_id="M-1"),
            LotGroup(name="East Deck", mistall_lot_id="M-3"),
            LotGroup(name="No Mistall"),
        ]
    )
    session.flush()
    stats = dw.mistall_lot_stats(session)
    assert [bar.label for bar in stats.bars] == ["Annex, North Garage", "East Deck", "Zeta Surface"]
    north, east, zeta = stats.bars
    assert (north.mistall_name, north.occupied, north.capacity, north.percent) == (
        "Mistall North",
        50,
        200,
        25.0,
    )
    assert east.percent is None and zeta.percent is None and zeta.group_names == ()
    assert stats.reported_at == reported
    assert stats.imported_at == reported + timedelta(minutes=5)


def test_mistall_lot_stats_without_imports(session):
    stats = dw.mistall_lot_stats(session)
    assert stats.bars == () and stats.reported_at is None and stats.imported_at is None


def _groups(session) -> dict[str, int]:
    north = LotGroup(name="North Garage", mistall_lot_id="M-1", map_color="#112233")
    south = LotGroup(name="South Lot")
    closed = LotGroup(name="Closed Deck", mistall_lot_id="M-9", is_closed=True)
    session.add_all([north, south, closed])
    session.flush()
    session.add_all(
        [
            Lot(name="North L1", capacity=100, lot_group_id=north.id),
            Lot(name="South L1", capacity=40, lot_group_id=south.id),
            Lot(name="Closed L1", capacity=10, lot_group_id=closed.id),
        ]
    )
    session.commit()
    return {"north": north.id, "south": south.id, "closed": closed.id}


POLICY = Policy(staleness=Staleness(), step_percent=5, flag_above_percent=110)


def test_occupancy_summary_totals_open_groups_and_counts_stale_and_closed(core, session):
    ids = _groups(session)
    store = LiveStore(core.redis)
    now = datetime.now(UTC)
    apply_figure(session, store, ids["north"], OccupancySource.MISTALL, 150, 200, now, step_percent=5)
    apply_figure(
        session,
        store,
        ids["closed"],
        OccupancySource.MISTALL,
        9,
        10,
        now - timedelta(hours=3),
        step_percent=5,
    )
    session.commit()
    summary = dw.occupancy_summary(session, store, POLICY, now)
    # north: Mistall 150/200; south: no sensor data, so its permit figure 0/40; closed left out
    assert (summary.occupied, summary.capacity) == (150, 240)
    assert (summary.groups, summary.open_groups, summary.closed, summary.stale) == (3, 2, 1, 0)
    assert summary.percent == 62.5
    assert [line.name for line in summary.fullest] == ["North Garage", "South Lot"]
    assert summary.fullest[0].source == "mistall"

    apply_figure(
        session,
        store,
        ids["north"],
        OccupancySource.MISTALL,
        150,
        200,
        now - timedelta(hours=2),
        step_percent=5,
    )
    assert dw.occupancy_summary(session, store, POLICY, now).stale == 1


def test_occupancy_today_reads_todays_history_in_the_site_time_zone(core, session):
    ids = _groups(session)
    store = LiveStore(core.redis)
    now = datetime(2026, 11, 3, 17, 0, tzinfo=UTC)  # 12:00 in Toronto
    midnight = datetime(2026, 11, 3, 5, 0, tzinfo=UTC)
    apply_figure(session, store, ids["north"], OccupancySource.MISTALL, 100, 200, now, step_percent=5)
    session.query(OccupancySnapshot).delete()
    session.add_all(
        [
            OccupancySnapshot(
                lot_group_id=ids["north"],
                source=OccupancySource.MISTALL,
                occupied=occupied,
                capacity=200,
                recorded_at=at,
            )
            for occupied, at in (
                (20, midnight - timedelta(minutes=1)),  # yesterday, local time
                (40, midnight + timedelta(hours=1)),
                (120, midnight + timedelta(hours=6)),
            )
        ]
        + [
            OccupancySnapshot(
                lot_group_id=ids["north"],
                source=OccupancySource.PERMITS,
                occupied=5,
                capacity=100,
                recorded_at=midnight + timedelta(hours=2),
            ),
            OccupancySnapshot(
                lot_group_id=ids["south"],
                source=OccupancySource.PERMITS,
                occupied=10,
                capacity=40,
                recorded_at=midnight + timedelta(hours=3),
            ),
        ]
    )
    session.commit()
    today = dw.occupancy_today(session, store, Staleness(mistall=10**9), now, TORONTO)
    assert today.start == midnight
    by_name = {series.name: series for series in today.series}
    north = by_name["North Garage"]
    assert north.source == "mistall" and north.color == "#112233"
    assert [p.occupied for p in north.points] == [40, 120]
    assert north.points[-1].percent == 60.0
    assert by_name["South Lot"].source == "permits"
    assert [p.percent for p in by_name["South Lot"].points] == [25.0]


def _lot(session) -> Lot:
    lot = Lot(name="West", capacity=10)
    session.add(lot)
    session.flush()
    return lot


def _permit(session, number: str, created: datetime, cents: int, **fields) -> Permit:
    permit = Permit(
        number=number,
        kind=PermitKind.TEMPORARY,
        valid_from=created,
        valid_to=created + timedelta(hours=2),
        amount_cents=cents,
        created_at=created,
        **fields,
    )
    session.add(permit)
    session.flush()
    return permit


def test_permits_today_counts_active_permits_sold_since_local_midnight(session):
    lot = _lot(session)
    now = datetime(2026, 11, 3, 17, 0, tzinfo=UTC)
    midnight = datetime(2026, 11, 3, 5, 0, tzinfo=UTC)
    sold = _permit(session, "P1", midnight + timedelta(hours=1), 1250, lot_id=lot.id)
    _permit(session, "P2", midnight + timedelta(hours=2), 800, lot_id=lot.id, source=PermitSource.PARKMOBILE)
    _permit(session, "P3", midnight - timedelta(minutes=5), 999, lot_id=lot.id)  # yesterday
    _permit(session, "P4", midnight + timedelta(hours=3), 500, lot_id=lot.id, status=PermitStatus.CANCELLED)
    _permit(session, "P5", midnight + timedelta(hours=3), 100, lot_id=lot.id, currency="USD")
    payment = Payment(
        idempotency_key="k1",
        provider="test",
        amount_cents=1250,
        status=PaymentStatus.SUCCEEDED,
        created_at=midnight + timedelta(hours=1),
    )
    declined = Payment(
        idempotency_key="k2",
        provider="test",
        amount_cents=700,
        status=PaymentStatus.DECLINED,
        created_at=midnight + timedelta(hours=1),
    )
    session.add_all([payment, declined])
    session.flush()
    session.add_all(
        [
            PaymentAllocation(payment_id=payment.id, permit_id=sold.id, amount_cents=1250),
            PaymentAllocation(payment_id=declined.id, permit_id=sold.id, amount_cents=700),
        ]
    )
    session.flush()
    today = dw.permits_today(session, now, TORONTO)
    assert today.day.isoformat() == "2026-11-03"
    assert today.count == 3
    assert today.revenue == (("CAD", 2050), ("USD", 100))
    assert today.by_source == (("portal", 2), ("parkmobile", 1))
    assert today.paid_online == (("CAD", 1250),)


def test_permits_today_zero_state(session):
    today = dw.permits_today(session, datetime.now(UTC), TORONTO)
    assert (today.count, today.revenue, today.by_source, today.paid_online) == (0, (), (), ())
    assert today.currency == "CAD"  # the site's, until an admin sets another


def test_boots_in_use_counts_applied_boots_newest_first(core, session):
    lot = _lot(session)
    now = datetime.now(UTC)
    for index, status in enumerate([BootStatus.IN_USE, BootStatus.IN_USE, BootStatus.RELEASED]):
        boot = Boot(name=f"Boot {index}", release_code=core.secrets.encrypt("1234"), status=status)
        violation = Violation(
            ticket_number=f"T-{index}",
            plate=f"ABC {index}",
            plate_normalized=f"ABC{index}",
            lot_id=lot.id if index else None,
        )
        session.add_all([boot, violation])
        session.flush()
        session.add(
            BootAssignment(
                boot_id=boot.id,
                violation_id=violation.id,
                status=status,
                applied_at=now - timedelta(hours=3 - index),
            )
        )
    session.flush()
    boots = dw.boots_in_use(session)
    assert boots.count == 2
    assert [(b.boot_name, b.plate, b.ticket_number, b.lot_name) for b in boots.latest] == [
        ("Boot 1", "ABC 1", "T-1", "West"),
        ("Boot 0", "ABC 0", "T-0", None),
    ]


def test_task_health_flags_failing_and_overdue_tasks(session):
    now = datetime.now(UTC)
    session.add_all(
        [
            SystemTask(
                name="ok",
                title="B Fine",
                enabled=True,
                interval_seconds=600,
                next_run_at=now + timedelta(minutes=5),
                last_run_at=now - timedelta(minutes=5),
                last_outcome="success",
            ),
            SystemTask(
                name="broken",
                title="C Broken",
                enabled=True,
                interval_seconds=600,
                next_run_at=now + timedelta(minutes=5),
                last_run_at=now - timedelta(minutes=5),
                last_outcome="failed",
            ),
            SystemTask(
                name="partly",
                title="C Partly broken",
                enabled=True,
                interval_seconds=600,
                next_run_at=now + timedelta(minutes=5),
                last_run_at=now - timedelta(minutes=5),
                last_outcome="partly_failed",
            ),
            SystemTask(
                name="stuck",
                title="D Stuck",
                enabled=True,
                interval_seconds=600,
                next_run_at=now - timedelta(hours=1),
                last_run_at=now - timedelta(hours=2),
                last_outcome="success",
            ),
            SystemTask(
                name="unworked",
                title="E Claimed but never run",
                enabled=True,
                interval_seconds=600,
                next_run_at=now + timedelta(minutes=5),
                last_run_at=now - timedelta(hours=1),
                last_outcome="success",
            ),
            SystemTask(
                name="off",
                title="A Off",
                enabled=False,
                interval_seconds=600,
                next_run_at=now - timedelta(days=3),
                last_outcome="failed",
            ),
        ]
    )
    session.flush()
    health = dw.task_health(session, now)
    by_name = {task.name: task for task in health.tasks}
    assert not by_name["ok"].failing and not by_name["ok"].overdue
    assert by_name["broken"].failing and not by_name["broken"].overdue
    assert by_name["partly"].failing  # a partly failed run needs an admin too
    assert by_name["stuck"].overdue and by_name["unworked"].overdue
    assert not by_name["off"].overdue  # switched off: not expected to run
    assert (health.failing, health.overdue) == (3, 2)
    assert [task.name for task in health.tasks][:3] == ["off", "broken", "partly"]  # failing first


def test_a_weekly_task_is_overdue_only_when_one_of_its_times_passed_without_a_run(core, session):
    """A weekly task last run six days ago is fine (an interval rule would call it overdue); one
    whose Sunday 03:00 passed since its last run, claimed but not run, is overdue."""
    toronto = ZoneInfo("America/Toronto")
    now = datetime(2026, 3, 9, 12, tzinfo=toronto).astimezone(UTC)  # Monday noon
    session.add_all(
        [
            SystemTask(
                name="weekly-ok", title="Weekly ok", enabled=True, interval_seconds=86400,
                schedule="0 3 * * 0", next_run_at=datetime(2026, 3, 15, 7, tzinfo=UTC),
                last_run_at=datetime(2026, 3, 8, 3, 0, 2, tzinfo=toronto).astimezone(UTC),
                last_outcome="success",
            ),
            SystemTask(
                name="weekly-stuck", title="Weekly stuck", enabled=True, interval_seconds=86400,
                schedule="0 3 * * 0", next_run_at=datetime(2026, 3, 15, 7, tzinfo=UTC),
                last_run_at=datetime(2026, 3, 1, 3, 0, 2, tzinfo=toronto).astimezone(UTC),
                last_outcome="success",
            ),
        ]
    )  # fmt: skip
    session.flush()
    health = {task.name: task for task in dw.task_health(session, now, toronto).tasks}
    assert not health["weekly-ok"].overdue
    assert health["weekly-stuck"].overdue


def test_dead_letters_counts_the_last_day_and_lists_the_newest(core, session):
    now = datetime.now(UTC)
    session.add_all(
        [
            IngestDeadLetter(topic="t/1", payload="{}", reason="old", received_at=now - timedelta(days=2)),
            IngestDeadLetter(
                topic="t/2", payload="{}", reason="bad json", received_at=now - timedelta(hours=2)
            ),
            IngestDeadLetter(
                topic="t/3", payload="{}", reason="no count", received_at=now - timedelta(minutes=1)
            ),
        ]
    )
    session.flush()
    core.redis.set("parkops:ingest:messages", 40)
    core.redis.set("parkops:ingest:dead_letters", 3)
    letters = dw.dead_letters(session, core.redis, now, latest=2)
    assert (letters.total, letters.last_24h) == (3, 2)
    assert [letter.reason for letter in letters.latest] == ["no count", "bad json"]
    assert letters.counters is not None and letters.counters.messages == 40
    assert dw.dead_letters(session, None, now).counters is None


def test_boots_in_use_is_hidden_with_universal_boot_off_and_counts_unreturned_boots(core, session, secrets):
    enable_boots(core, False)
    assert "boots-in-use" not in [w.key for w in dw.available_widgets(session, secrets, Role.ADMIN)]
    enable_boots(core)
    assert "boots-in-use" in [w.key for w in dw.available_widgets(session, secrets, Role.ADMIN)]
    lot = _lot(session)
    now = datetime.now(UTC)
    boot = Boot(name="Late Boot", release_code=core.secrets.encrypt("1"), status=BootStatus.RELEASED)
    violation = Violation(ticket_number="T-LATE", plate="L 1", plate_normalized="L1", lot_id=lot.id)
    session.add_all([boot, violation])
    session.flush()
    session.add(
        BootAssignment(boot_id=boot.id, violation_id=violation.id, status=BootStatus.RELEASED,
                       applied_at=now - timedelta(days=6), released_at=now - timedelta(days=4))
    )  # fmt: skip
    session.flush()
    assert dw.boots_in_use(session, now=now, non_return_days=3).not_returned == 1
    assert dw.boots_in_use(session, now=now, non_return_days=5).not_returned == 0
