"""The Dashboard's widgets: what exists, who may add which, each user's own layout, and the data
each widget shows.

Why it is shaped this way:

* Widgets are declared in code (``REGISTRY``); a user's rows in ``dashboard_widgets`` only keep
  their choice and order. A user with no rows sees ``DEFAULT_KEYS``; the first edit writes that
  default down and changes it, so what the user saw is what they edit. "Reset to default" deletes
  the rows again. Removing the last saved widget is refused: with no rows left the default set
  would reappear, which is not what "remove" means.
* A saved widget can stop being available without the user doing anything: an admin turns
  "Enable Mistall Usage" off, or lowers the user's role. Such rows are skipped on display and kept,
  so the widget comes back in its place when it is available again.
* The widget data functions are the dashboard's reads of other concepts. They reuse those
  concepts' services (occupancy, devices, system tasks) and only query tables directly where no
  service reads them yet (Mistall lots' figures, permits, boots). A layout change is a personal
  preference, not a change to the system, so it is not written to the audit log.

Why this module is long: the widget registry and each widget's data live together so a widget's key,
its role and what it shows are declared in one place.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

import redis
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from dashboard.crypto import SecretBox
from dashboard.services import (
    boots,
    devices,
    feed_health,
    occupancy,
    occupancy_history,
    schedules,
    system_settings,
    system_tasks,
)
from dashboard.services.devices import DeadLetterView, IngestCounters
from dashboard.services.errors import ValidationFailed
from dashboard.services.feed_health import SessionsLost
from dashboard.services.occupancy import LiveStore, Policy, Staleness
from models import (
    Boot,
    BootAssignment,
    BootStatus,
    DashboardWidget,
    IngestDeadLetter,
    Lot,
    LotGroup,
    MistallLot,
    Payment,
    PaymentAllocation,
    PaymentStatus,
    Permit,
    PermitStatus,
    Role,
    Violation,
)
from models.system import FAILING_OUTCOMES

MISTALL_SETTING = "mistall_enabled"  # "Enable Mistall Usage"
BOOT_SETTING = "boot_universal_enabled"  # "Universal Boot Enabled" hides every boot screen

# -- the registry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WidgetDef:
    """One kind of widget. ``chart`` widgets get a fixed-height chart with a table beside it;
    ``requires`` says why a widget may be unavailable (shown on Edit Dashboard)."""

    key: str
    title: str
    description: str
    min_role: Role
    chart: bool = False
    available: Callable[[Session, SecretBox], bool] | None = None
    requires: str = ""


def _mistall_enabled(session: Session, secrets: SecretBox) -> bool:
    return bool(system_settings.get(session, secrets, MISTALL_SETTING))


def _boots_enabled(session: Session, secrets: SecretBox) -> bool:
    return bool(system_settings.get(session, secrets, BOOT_SETTING))


REGISTRY: tuple[WidgetDef, ...] = (
    WidgetDef(
        "occupancy-summary",
        "Live Occupancy",
        "Occupied spaces across the open lot groups, the fullest groups, and how many are stale or closed.",
        Role.MANAGER,
    ),
    WidgetDef(
        "occupancy-today",
        "Occupancy Today",
        "How full each lot group has been since midnight, from the occupancy history.",
        Role.MANAGER,
        chart=True,
    ),
    WidgetDef(
        "permits-today",
        "Permits Sold Today",
        "Permits sold since midnight and what they were sold for.",
        Role.MANAGER,
    ),
    WidgetDef(
        "boots-in-use",
        "Boots In Use",
        "Boots currently applied to vehicles, and released boots not returned in time.",
        Role.MANAGER,
        available=_boots_enabled,
        requires="Needs the system setting Universal Boot Enabled.",
    ),
    WidgetDef(
        "mistall-lot-stats",
        "Mistall Lot Stats",
        "The raw counts imported from Mistall, labelled with the lot groups they are associated to "
        "(or Mistall's own lot name when none is).",
        Role.MANAGER,
        chart=True,
        available=_mistall_enabled,
        requires="Needs the system setting Enable Mistall Usage.",
    ),
    WidgetDef(
        "task-health",
        "System Task Health",
        "Each system task's last run, with failing and overdue tasks highlighted.",
        Role.ADMIN,
    ),
    WidgetDef(
        "dead-letters",
        "Sensor Dead Letters",
        "Sensor messages the ingester could not use, with the latest reasons.",
        Role.ADMIN,
    ),
)
_BY_KEY = {widget.key: widget for widget in REGISTRY}
DEFAULT_KEYS = (
    "occupancy-summary",
    "occupancy-today",
    "permits-today",
    "boots-in-use",
    "task-health",
    "dead-letters",
)


def widget(key: str) -> WidgetDef:
    """The definition of ``key``; ``ValidationFailed`` for a key no widget has (it comes from a browser)."""
    found = _BY_KEY.get(key) if isinstance(key, str) else None
    if found is None:
        raise ValidationFailed({"widget_key": f"there is no widget {key!r}"})
    return found


def available_widgets(session: Session, secrets: SecretBox, role: Role) -> list[WidgetDef]:
    """The widgets ``role`` may have on a dashboard now, in registry order."""
    return [
        w for w in REGISTRY if role >= w.min_role and (w.available is None or w.available(session, secrets))
    ]


# -- each user's layout ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """What a user's dashboard shows, in order. ``kept`` are saved widgets not shown now (not
    available to the user at the moment, or no longer in the registry); ``is_default``: the user
    never changed their dashboard."""

    widgets: tuple[WidgetDef, ...]
    addable: tuple[WidgetDef, ...]
    kept: tuple[str, ...]
    is_default: bool

    @property
    def keys(self) -> list[str]:
        return [w.key for w in self.widgets]


def _rows(session: Session, user_id: int) -> list[DashboardWidget]:
    return list(
        session.scalars(
            select(DashboardWidget)
            .where(DashboardWidget.user_id == user_id)
            .order_by(DashboardWidget.position, DashboardWidget.id)
        )
    )


def user_layout(session: Session, secrets: SecretBox, user_id: int, role: Role) -> Layout:
    available = available_widgets(session, secrets, role)
    allowed = {w.key for w in available}
    rows = _rows(session, user_id)
    saved = [row.widget_key for row in rows] if rows else [k for k in DEFAULT_KEYS if k in allowed]
    shown = tuple(_BY_KEY[key] for key in saved if key in allowed)
    return Layout(
        widgets=shown,
        addable=tuple(w for w in available if w.key not in saved),
        kept=tuple(key for key in saved if key not in allowed),
        is_default=not rows,
    )


def _materialized(session: Session, secrets: SecretBox, user_id: int, role: Role) -> list[DashboardWidget]:
    """The user's rows, first writing down the default layout they were seeing if they had none."""
    rows = _rows(session, user_id)
    if rows:
        return rows
    for key in user_layout(session, secrets, user_id, role).keys:
        row = DashboardWidget(user_id=user_id, widget_key=key, position=0, config={})
        session.add(row)
        rows.append(row)
    _renumber(rows)
    session.flush()
    return rows


def _renumber(rows: Iterable[DashboardWidget]) -> None:
    for position, row in enumerate(rows):
        row.position = position


def _require_available(session: Session, secrets: SecretBox, role: Role, key: str) -> WidgetDef:
    definition = widget(key)
    if role < definition.min_role:
        raise ValidationFailed({"widget_key": f"{definition.title} is not available to your role"})
    if definition.available is not None and not definition.available(session, secrets):
        raise ValidationFailed({"widget_key": f"{definition.title} is not available: {definition.requires}"})
    return definition


def add_widget(session: Session, secrets: SecretBox, user_id: int, role: Role, key: str) -> Layout:
    """Add a widget at the end of the user's dashboard; adding one already there changes nothing."""
    _require_available(session, secrets, role, key)
    rows = _materialized(session, secrets, user_id, role)
    if all(row.widget_key != key for row in rows):
        row = DashboardWidget(user_id=user_id, widget_key=key, position=len(rows), config={})
        session.add(row)
        rows.append(row)
        _renumber(rows)
    session.flush()
    return user_layout(session, secrets, user_id, role)


def remove_widget(session: Session, secrets: SecretBox, user_id: int, role: Role, key: str) -> Layout:
    widget(key)
    rows = _materialized(session, secrets, user_id, role)
    row = next((r for r in rows if r.widget_key == key), None)
    if row is None:
        raise ValidationFailed({"widget_key": f"{_BY_KEY[key].title} is not on your dashboard"})
    if len(rows) == 1:
        raise ValidationFailed(
            {"widget_key": "a dashboard keeps at least one widget: add another first, or reset to default"}
        )
    session.delete(row)
    rows.remove(row)
    _renumber(rows)
    session.flush()
    return user_layout(session, secrets, user_id, role)


def move_widget(
    session: Session, secrets: SecretBox, user_id: int, role: Role, key: str, direction: str
) -> Layout:
    """Move a shown widget one place ``"up"`` or ``"down"`` among the *shown* widgets: kept rows
    in between are stepped over, or the button would seem to do nothing. At an end, nothing moves."""
    if direction not in ("up", "down"):
        raise ValidationFailed({"direction": "must be up or down"})
    _require_available(session, secrets, role, key)
    rows = _materialized(session, secrets, user_id, role)
    shown = set(user_layout(session, secrets, user_id, role).keys)
    index = next((i for i, r in enumerate(rows) if r.widget_key == key), None)
    if index is None:
        raise ValidationFailed({"widget_key": f"{_BY_KEY[key].title} is not on your dashboard"})
    step = -1 if direction == "up" else 1
    other = index + step
    while 0 <= other < len(rows) and rows[other].widget_key not in shown:
        other += step
    if 0 <= other < len(rows):
        rows[index], rows[other] = rows[other], rows[index]
        _renumber(rows)
        session.flush()
    return user_layout(session, secrets, user_id, role)


def set_order(session: Session, secrets: SecretBox, user_id: int, role: Role, keys: list[str]) -> Layout:
    """Put the shown widgets in the order of ``keys`` (exactly the shown ones, each once); kept
    rows follow them in their previous order."""
    for key in keys:
        widget(key)
    shown = user_layout(session, secrets, user_id, role).keys
    if len(set(keys)) != len(keys) or set(keys) != set(shown):
        raise ValidationFailed({"order": "must list each widget on the dashboard exactly once"})
    rows = _materialized(session, secrets, user_id, role)
    by_key = {row.widget_key: row for row in rows}
    ordered = [by_key[key] for key in keys] + [row for row in rows if row.widget_key not in shown]
    _renumber(ordered)
    session.flush()
    return user_layout(session, secrets, user_id, role)


def reset_to_default(session: Session, secrets: SecretBox, user_id: int, role: Role) -> Layout:
    """Forget the user's layout, kept rows included: the user asked for the default."""
    session.execute(delete(DashboardWidget).where(DashboardWidget.user_id == user_id))
    session.flush()
    return user_layout(session, secrets, user_id, role)


# -- widget data: mistall-lot-stats ------------------------------------------------------------------


@dataclass(frozen=True)
class MistallBar:
    """One imported Mistall lot: labelled with its lot groups' names, or Mistall's name for it."""

    mistall_id: str
    mistall_name: str
    group_names: tuple[str, ...]
    occupied: int | None
    capacity: int | None
    reported_at: datetime | None
    imported_at: datetime | None

    @property
    def label(self) -> str:
        return ", ".join(self.group_names) if self.group_names else self.mistall_name

    @property
    def percent(self) -> float | None:
        if not self.capacity or self.occupied is None:
            return None
        return round(100.0 * self.occupied / self.capacity, 1)


@dataclass(frozen=True)
class MistallStats:
    bars: tuple[MistallBar, ...]
    reported_at: datetime | None  # the newest of the lots'
    imported_at: datetime | None


def mistall_lot_stats(session: Session) -> MistallStats:
    """The Mistall lots as the Update Mistall task last imported them, by label."""
    groups: dict[str, list[str]] = defaultdict(list)
    for mistall_id, name in session.execute(
        select(LotGroup.mistall_lot_id, LotGroup.name)
        .where(LotGroup.mistall_lot_id.is_not(None))
        .order_by(LotGroup.name)
    ):
        if mistall_id is not None:
            groups[mistall_id].append(name)
    bars = [
        MistallBar(
            mistall_id=lot.mistall_id,
            mistall_name=lot.name,
            group_names=tuple(groups.get(lot.mistall_id, ())),
            occupied=lot.occupied,
            capacity=lot.capacity,
            reported_at=lot.reported_at,
            imported_at=lot.imported_at,
        )
        for lot in session.scalars(select(MistallLot))
    ]
    bars.sort(key=lambda bar: (bar.label.casefold(), bar.mistall_id))
    return MistallStats(
        bars=tuple(bars),
        reported_at=max((b.reported_at for b in bars if b.reported_at), default=None),
        imported_at=max((b.imported_at for b in bars if b.imported_at), default=None),
    )


# -- occupancy-summary and occupancy-today ------------------------------------------------------------


@dataclass(frozen=True)
class GroupLine:
    group_id: int
    name: str
    occupied: int
    capacity: int
    percent: float | None
    source: str
    stale: bool


@dataclass(frozen=True)
class OccupancySummary:
    """Totals over the open lot groups, from the figure each one shows on the maps."""

    occupied: int
    capacity: int
    groups: int
    open_groups: int
    stale: int
    closed: int
    fullest: tuple[GroupLine, ...]
    feed_frozen: bool = False  # the ingester is stuck: live sensor figures are not moving

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.occupied / self.capacity, 1) if self.capacity > 0 else None


def occupancy_summary(
    session: Session, store: LiveStore, policy: Policy, now: datetime, fullest: int = 3
) -> OccupancySummary:
    states = occupancy.group_states(session, store, policy.staleness, now)
    open_states = [s for s in states if not s.closed]
    lines = [
        GroupLine(
            s.group_id,
            s.name,
            s.primary.occupied,
            s.primary.capacity,
            s.primary.percent,
            str(s.primary.source),
            s.primary.stale,
        )
        for s in open_states
    ]
    ranked = sorted(
        (line for line in lines if line.percent is not None),
        key=lambda line: (-(line.percent or 0.0), line.name),
    )
    return OccupancySummary(
        occupied=sum(line.occupied for line in lines),
        capacity=sum(line.capacity for line in lines),
        groups=len(states),
        open_groups=len(open_states),
        stale=sum(1 for line in lines if line.stale),
        closed=len(states) - len(open_states),
        fullest=tuple(ranked[:fullest]),
        feed_frozen=_feed_stuck(store.redis, now) is not None,
    )


def _feed_stuck(client: redis.Redis, now: datetime) -> str | None:
    try:
        status = feed_health.read_status(client)
    except redis.RedisError:
        return None
    return status.stuck(now) if status else None


@dataclass(frozen=True)
class SeriesPoint:
    at: datetime
    occupied: int
    capacity: int

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.occupied / self.capacity, 1) if self.capacity > 0 else None


@dataclass(frozen=True)
class GroupSeries:
    """One group's history today, from the source its maps figure comes from now."""

    group_id: int
    name: str
    color: str
    source: str
    points: tuple[SeriesPoint, ...]


@dataclass(frozen=True)
class OccupancyToday:
    start: datetime
    end: datetime
    series: tuple[GroupSeries, ...]


def local_day_start(now: datetime, tz: tzinfo) -> datetime:
    """Midnight of ``now``'s day in the site's time zone (what "today" means to its staff)."""
    local = now.astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz)


def occupancy_today(
    session: Session, store: LiveStore, staleness: Staleness, now: datetime, tz: tzinfo
) -> OccupancyToday:
    """Read like ``/api/v1/lot-groups/<id>/occupancy`` reads history (``occupancy_history.history``), one
    source per group so a line does not jump between a sensor count and a permit count."""
    start = local_day_start(now, tz)
    series = []
    for state in occupancy.group_states(session, store, staleness, now):
        source = state.primary.source
        points = occupancy_history.history(session, state.group_id, start, now, source)
        series.append(
            GroupSeries(
                state.group_id,
                state.name,
                state.map_color,
                str(source),
                tuple(SeriesPoint(p.recorded_at, p.occupied, p.capacity) for p in points),
            )
        )
    return OccupancyToday(start=start, end=now, series=tuple(series))


# -- permits-today ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PermitsToday:
    """Active permits created today; amounts per currency in cents. ``paid_online`` is what
    successful payments allocated to permits today (third-party permits are paid elsewhere).
    ``currency`` is the site's, which an amount of nothing is said in."""

    day: date
    count: int
    revenue: tuple[tuple[str, int], ...]
    by_source: tuple[tuple[str, int], ...]
    paid_online: tuple[tuple[str, int], ...]
    currency: str


def permits_today(session: Session, now: datetime, tz: tzinfo) -> PermitsToday:
    start = local_day_start(now, tz)
    end = start + timedelta(days=1)
    rows = session.execute(
        select(Permit.source, Permit.currency, Permit.amount_cents).where(
            Permit.status == PermitStatus.ACTIVE, Permit.created_at >= start, Permit.created_at < end
        )
    ).all()
    revenue: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    for source, currency, cents in rows:
        revenue[currency] += cents
        sources[str(source)] += 1
    paid = session.execute(
        select(Payment.currency, func.sum(PaymentAllocation.amount_cents))
        .join(PaymentAllocation, PaymentAllocation.payment_id == Payment.id)
        .where(
            PaymentAllocation.permit_id.is_not(None),
            Payment.status.in_([PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED]),
            Payment.created_at >= start,
            Payment.created_at < end,
        )
        .group_by(Payment.currency)
    ).all()
    return PermitsToday(
        day=start.date(),
        count=len(rows),
        revenue=tuple(sorted(revenue.items())),
        by_source=tuple(sorted(sources.items(), key=lambda item: (-item[1], item[0]))),
        paid_online=tuple(sorted((currency, int(cents or 0)) for currency, cents in paid)),
        currency=system_settings.currency(session),
    )


# -- boots-in-use ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootLine:
    boot_name: str
    plate: str
    ticket_number: str
    lot_name: str | None
    applied_at: datetime


@dataclass(frozen=True)
class BootsInUse:
    count: int
    latest: tuple[BootLine, ...]
    not_returned: int = 0  # released boots past System Settings' non-return days


def boots_in_use(
    session: Session, latest: int = 5, now: datetime | None = None, non_return_days: int | None = None
) -> BootsInUse:
    """Assignments still in use (applied, not yet released), newest first; with ``now`` and
    ``non_return_days``, also how many released boots count as not returned."""
    in_use = BootAssignment.status == BootStatus.IN_USE
    count = session.scalar(select(func.count()).select_from(BootAssignment).where(in_use)) or 0
    rows = session.execute(
        select(Boot.name, Violation.plate, Violation.ticket_number, Lot.name, BootAssignment.applied_at)
        .join(Boot, Boot.id == BootAssignment.boot_id)
        .join(Violation, Violation.id == BootAssignment.violation_id)
        .outerjoin(Lot, Lot.id == Violation.lot_id)
        .where(in_use)
        .order_by(BootAssignment.applied_at.desc(), BootAssignment.id.desc())
        .limit(latest)
    )
    late = 0
    if now is not None and non_return_days is not None:
        late = boots.summary(session, now, non_return_days).not_returned
    return BootsInUse(count=count, latest=tuple(BootLine(*row) for row in rows), not_returned=late)


# -- task-health -----------------------------------------------------------------------------------

# The scheduler claims a due task within seconds; a slot this late means no scheduler is running.
OVERDUE_GRACE = timedelta(minutes=5)


@dataclass(frozen=True)
class TaskLine:
    name: str
    title: str
    enabled: bool
    last_outcome: str | None
    last_run_at: datetime | None
    interval_seconds: int
    failing: bool
    overdue: bool


@dataclass(frozen=True)
class TaskHealth:
    tasks: tuple[TaskLine, ...]

    @property
    def failing(self) -> int:
        return sum(1 for task in self.tasks if task.failing)

    @property
    def overdue(self) -> int:
        return sum(1 for task in self.tasks if task.overdue)


def task_health(session: Session, now: datetime, tz: tzinfo | None = None) -> TaskHealth:
    """Failing: the last run failed, wholly or partly. Overdue: an enabled task whose slot passed
    unclaimed, or whose last run is more than two intervals old (claimed but never run: the workers
    are down); for a task at fixed times, one of its times (in the site's zone ``tz``) passed since
    its last run without a run."""
    lines = []
    for task in system_tasks.list_tasks(session):
        missed_slot = task.next_run_at is not None and now - task.next_run_at > OVERDUE_GRACE
        late_run = task.last_run_at is not None and _run_overdue(task, task.last_run_at, now, tz)
        lines.append(
            TaskLine(
                name=task.name,
                title=task.title,
                enabled=task.enabled,
                last_outcome=task.last_outcome,
                last_run_at=task.last_run_at,
                interval_seconds=task.interval_seconds,
                failing=task.last_outcome in FAILING_OUTCOMES,
                overdue=task.enabled and (missed_slot or late_run),
            )
        )
    lines.sort(key=lambda line: (not line.failing, not line.overdue, line.title))
    return TaskHealth(tuple(lines))


def _run_overdue(
    task: system_tasks.TaskView, last_run_at: datetime, now: datetime, tz: tzinfo | None
) -> bool:
    if task.schedule:
        if tz is None:
            return False
        passed = schedules.fires_between(
            task.schedule, tz, last_run_at + OVERDUE_GRACE, now - OVERDUE_GRACE, 1
        )
        return bool(passed)
    return now - last_run_at > 2 * timedelta(seconds=task.interval_seconds) + OVERDUE_GRACE


# -- dead-letters ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetters:
    """``counters`` are the ingester's totals since their reset; they and ``sessions_lost`` are
    None when Redis is unreachable. ``stuck`` says why live occupancy is frozen, when it is."""

    total: int
    last_24h: int
    latest: tuple[DeadLetterView, ...]
    counters: IngestCounters | None
    stuck: str | None = None
    sessions_lost: SessionsLost | None = None


def dead_letters(session: Session, client: redis.Redis | None, now: datetime, latest: int = 3) -> DeadLetters:
    total = session.scalar(select(func.count()).select_from(IngestDeadLetter)) or 0
    recent = (
        session.scalar(
            select(func.count())
            .select_from(IngestDeadLetter)
            .where(IngestDeadLetter.received_at >= now - timedelta(hours=24))
        )
        or 0
    )
    counters = status = lost = None
    if client is not None:
        try:
            counters = devices.ingest_counters(client)
            status = feed_health.read_status(client)
            lost = feed_health.read_sessions_lost(client)
        except redis.RedisError:
            counters = status = lost = None
    return DeadLetters(
        total=total,
        last_24h=recent,
        latest=tuple(devices.dead_letters(session, limit=latest)),
        counters=counters,
        stuck=status.stuck(now) if status else None,
        sessions_lost=lost,
    )
