"""Manage Capacity: what each lot may sell, what it sold, how full it physically gets, and advice
a manager can act on.

**What the sensors say, and what they cannot.** Mistall, Parking Logix and the live devices count
*lot groups* (one garage, one surface lot), not the lots permits are sold for. A lot's cars are
therefore estimated: the group's percent full (its highest reading from any physical source in
``occupancy_snapshots``; readings above capacity count as 100%) times the lot's capacity. The
highest source is taken on purpose: a source that over-counts can only make the advice more
cautious. Readings are taken per hour (the busiest reading of each hour).

**Standard (term) lots: the oversell ratio history supports.** Term permit holders do not all park
at once. For every hour of the window the lot's estimated cars are set against the lot's permits
valid at that moment (from the permits' validity, so history reads the permits of its own time,
not today's). The *peak* is the hour with the most cars per permit (holders showing up most), among
hours when at least ``MIN_PERMIT_SHARE`` of the window's most permits were valid (in the first days
of a term, three permits beside a busy group's estimate say nothing about permit holders). To keep
that hour below ``1 − margin`` of the spaces, the lot may sell::

    suggested = floor(capacity × (1 − margin) / (cars at peak / permits at peak))

bounded above by ``MAX_FACTOR`` × capacity (a near-empty reading must not suggest a thousand). The
oversell ratio is ``suggested / capacity`` (permits per space). Lots that also sell temporary
permits count them too: a temporary permit is a car, so the ratio only gets more cautious.

**Temporary (hourly, daily) lots: the spaces to keep for visitors.** A temporary permit is a car
parked now, so these lots cannot be oversold, and the permits valid this minute say nothing about
how many visitors come (that was the old rule's mistake: it pinned a pay lot to the hourly permits
valid at that minute). The advice is the spaces to keep for visitors: the capacity less the margin
(left for pay-station and zone parkers), shown beside the busiest hour's visitors.

**Never below sold, never without evidence.** A suggestion is never below the permits valid now
(advice never implies cancelling permits). There is no suggestion without a group, a capacity and
at least ``MIN_READINGS`` physical readings reaching back ``MIN_SPAN`` (a full week, so every
weekday is in it); the sentence says plainly what is missing instead.

**Changing the allowance** (``set_allowance``) is audited with the old and new value, announced to
open maps after the commit (``announce``) and, when it frees space, offers it to the people waiting
(``waitlist.offer_next``) in the same transaction. An allowance below the permits sold is refused:
it cancels nothing and only stops every sale until permits lapse, which is never what a manager
means. ``preview_allowance`` says beforehand when a change leaves fewer than ``low_available``
permits to sell, so the page can ask before saving.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import redis
from sqlalchemy import case, select
from sqlalchemy.orm import Session, selectinload

from dashboard.services import audit, permits, waitlist
from dashboard.services.days import moment_words
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.occupancy import PHYSICAL, announce_changes, permit_counts
from models import AuditLog, Lot, OccupancySnapshot, Permit, PermitStatus, User

DEFAULT_DAYS = 28
MIN_DAYS = 7
MAX_DAYS = 366
MIN_SPAN = timedelta(days=7)
MIN_READINGS = 24
MIN_PERMIT_SHARE = 0.5
DEFAULT_MARGIN_PERCENT = 10
MAX_MARGIN_PERCENT = 50
MAX_FACTOR = 3
LOW_AVAILABLE_MIN = 5
LOW_AVAILABLE_SHARE = 0.05
SPACES_MAX = 100_000  # as on the lot editor: a typo of three extra zeros is caught
AUDIT_ACTION = "lot.allowance"
# Lot edits that may carry a ``permits_allowed`` change (the lot editor's, and this page's).
ALLOWANCE_ACTIONS = ("lot.create", "lot.update", AUDIT_ACTION)


@dataclass(frozen=True)
class Hour:
    """One hour of a lot's history: the group's busiest reading in it, and the lot's permits then."""

    at: datetime  # the reading's time (UTC)
    percent: float  # the group's percent full, 0..100
    cars: int  # the lot's estimated cars: percent × the lot's capacity
    permits: int  # the lot's permits valid at ``at``


@dataclass(frozen=True)
class Evidence:
    """What the advice stands on: the window's readings, a point per day for the chart (each day's
    busiest hour), and the peak hour the advice is computed from (None: no usable hour)."""

    readings: int
    since: datetime  # the oldest reading in the window
    days: tuple[Hour, ...]
    peak: Hour | None


@dataclass(frozen=True)
class Suggestion:
    allowance: int | None  # None: no advice (the sentence says why)
    sentence: str
    kind: str = "none"  # "term": an oversell ratio; "visitors": spaces kept for visitors; "none"
    headline: str | None = None  # the advice in a few words: "Sell up to 379 (1.18 per space)"


@dataclass(frozen=True)
class LotCapacity:
    lot_id: int
    name: str
    code: str | None
    group_id: int | None
    group_name: str | None
    is_active: bool
    capacity: int
    permits_allowed: int | None  # None: same as capacity
    allowance: int
    sold: int  # valid permits now
    available: int  # left to sell now (after checkout holds and open waitlist offers)
    waiting: int  # people on the lot's waitlist
    sells_standard: bool
    sells_temporary: bool
    evidence: Evidence | None  # None: the group has no physical reading in the window
    suggestion: Suggestion

    @property
    def peak_percent(self) -> float | None:
        """The group's busiest reading in the window (what the old "Physical peak" column showed)."""
        if self.evidence is None or not self.evidence.days:
            return None
        return max(hour.percent for hour in self.evidence.days)


def _check_window(days: int, margin_percent: int) -> None:
    errors = {}
    if isinstance(days, bool) or not isinstance(days, int) or not MIN_DAYS <= days <= MAX_DAYS:
        errors["days"] = f"between {MIN_DAYS} and {MAX_DAYS} days"
    if (
        isinstance(margin_percent, bool)
        or not isinstance(margin_percent, int)
        or not 0 <= margin_percent <= MAX_MARGIN_PERCENT
    ):
        errors["margin"] = f"a whole percentage from 0 to {MAX_MARGIN_PERCENT}"
    if errors:
        raise ValidationFailed(errors)


def _aware(moment: datetime, like: datetime) -> datetime:
    """SQLite hands back naive datetimes (UTC by the schema's rule)."""
    return moment.replace(tzinfo=like.tzinfo) if moment.tzinfo is None else moment


def group_hours(
    session: Session, group_ids: list[int], now: datetime, days: int
) -> dict[int, list[tuple[datetime, float, int]]]:
    """Per group, its busiest physical reading of each hour in the last ``days`` days, oldest
    first, as (time, percent, readings in that hour). Permit snapshots are not sensors: left out."""
    if not group_ids:
        return {}
    share = case(
        (OccupancySnapshot.occupied >= OccupancySnapshot.capacity, 100.0),
        (OccupancySnapshot.occupied <= 0, 0.0),
        else_=OccupancySnapshot.occupied * 100.0 / OccupancySnapshot.capacity,
    )
    rows = session.execute(
        select(OccupancySnapshot.lot_group_id, OccupancySnapshot.recorded_at, share)
        .where(
            OccupancySnapshot.lot_group_id.in_(group_ids),
            OccupancySnapshot.source.in_(PHYSICAL),
            OccupancySnapshot.capacity > 0,
            OccupancySnapshot.recorded_at > now - timedelta(days=days),
            OccupancySnapshot.recorded_at <= now,
        )
        .order_by(OccupancySnapshot.lot_group_id, OccupancySnapshot.recorded_at)
    )
    hours: dict[int, dict[datetime, list[Any]]] = {}
    for group_id, at, percent in rows:
        at = _aware(at, now)
        key = at.replace(minute=0, second=0, microsecond=0)
        slot = hours.setdefault(group_id, {}).get(key)
        if slot is None:
            hours[group_id][key] = [at, float(percent), 1]
        else:
            slot[2] += 1
            if percent > slot[1]:
                slot[0], slot[1] = at, float(percent)
    return {
        group_id: [(at, round(percent, 1), count) for at, percent, count in slots.values()]
        for group_id, slots in hours.items()
    }


class _ValidCounter:
    """Permits of one lot valid at a moment, from their validity (sorted starts and ends)."""

    def __init__(self, periods: list[tuple[datetime, datetime]]) -> None:
        self.starts = sorted(start for start, _ in periods)
        self.ends = sorted(end for _, end in periods)

    def at(self, moment: datetime) -> int:
        return bisect.bisect_right(self.starts, moment) - bisect.bisect_right(self.ends, moment)


def _lot_periods(
    session: Session, lot_ids: list[int], start: datetime, end: datetime
) -> dict[int, _ValidCounter]:
    """Each lot's permits that overlapped ``[start, end]``. Cancelled permits are left out: when
    they were cancelled is not kept, and a cancelled permit parked nobody."""
    periods: dict[int, list[tuple[datetime, datetime]]] = {lot_id: [] for lot_id in lot_ids}
    if lot_ids:
        rows = session.execute(
            select(Permit.lot_id, Permit.valid_from, Permit.valid_to).where(
                Permit.lot_id.in_(lot_ids),
                Permit.status == PermitStatus.ACTIVE,
                Permit.valid_from <= end,
                Permit.valid_to > start,
            )
        )
        for lot_id, valid_from, valid_to in rows:
            if lot_id is not None:
                periods[lot_id].append((_aware(valid_from, end), _aware(valid_to, end)))
    return {lot_id: _ValidCounter(found) for lot_id, found in periods.items()}


def lot_evidence(
    capacity: int,
    readings: list[tuple[datetime, float, int]],
    valid: _ValidCounter,
    tz: tzinfo,
    *,
    term: bool,
) -> Evidence:
    """The lot's hours, a chart point per local day, and the peak (see the module's docstring)."""
    hours = [Hour(at, percent, round(percent / 100 * capacity), valid.at(at)) for at, percent, _ in readings]
    days: dict[date, Hour] = {}
    for hour in hours:
        day = hour.at.astimezone(tz).date()
        if day not in days or hour.cars > days[day].cars:
            days[day] = hour
    peak = None
    if term:
        most = max((hour.permits for hour in hours), default=0)
        usable = [hour for hour in hours if hour.permits > 0 and hour.permits >= MIN_PERMIT_SHARE * most]
        peak = max(usable, key=lambda h: (h.cars / h.permits, h.cars), default=None)
    elif hours:
        peak = max(hours, key=lambda h: (h.cars, h.permits))
    return Evidence(
        readings=sum(count for _, _, count in readings),
        since=min((at for at, _, _ in readings), default=datetime.max.replace(tzinfo=UTC)),
        days=tuple(days[day] for day in sorted(days)),
        peak=peak,
    )


def suggest(
    capacity: int,
    sold: int,
    found: Evidence | None,
    now: datetime,
    margin_percent: int = DEFAULT_MARGIN_PERCENT,
    *,
    in_group: bool = True,
    term: bool = True,
    tz: tzinfo = UTC,
) -> Suggestion:
    """The rules of the module's docstring, each with the one sentence managers read."""
    if not in_group:
        return Suggestion(None, "No advice: this lot is in no lot group, so no sensor counts its cars.")
    if capacity <= 0:
        return Suggestion(None, "No advice: the lot has no capacity to compare the sensor counts with.")
    if found is None or found.readings < MIN_READINGS or found.since > now - MIN_SPAN:
        have = (
            "no sensor readings"
            if found is None or not found.readings
            else f"only {found.readings} readings over {max((now - found.since).days, 0)} days"
        )
        return Suggestion(
            None,
            f"No advice yet: the lot's group has {have}; advice needs {MIN_READINGS} readings "
            f"over at least {MIN_SPAN.days} days.",
        )
    target = 1 - margin_percent / 100
    peak = found.peak
    if not term:
        keep = max(sold, math.floor(capacity * target))
        busiest = ""
        if peak is not None:
            plural = "s" if peak.permits != 1 else ""
            busiest = (
                f"At the busiest hour ({moment_words(peak.at, now, tz)}) the lot was about "
                f"{peak.percent:.0f}% full with {peak.permits} visitor permit{plural}; "
            )
        sentence = (
            f"{busiest}keep {keep} of the {capacity} spaces for visitors "
            f"({margin_percent}% left for pay-station and zone parkers)."
        )
        return Suggestion(keep, sentence[0].upper() + sentence[1:], "visitors", f"Keep {keep} for visitors")
    if peak is None:
        return Suggestion(
            None,
            "No advice yet: no permits of this lot were valid while the sensors counted, so nothing "
            "says how its permit holders park.",
        )
    ceiling = min(MAX_FACTOR * capacity, SPACES_MAX)
    raw = ceiling if peak.cars <= 0 else math.floor(capacity * target * peak.permits / peak.cars)
    supported = min(raw, ceiling)
    suggested = max(sold, supported)
    ratio = suggested / capacity
    seen = (
        f"At the busiest hour ({moment_words(peak.at, now, tz)}) about {peak.cars} cars parked for "
        f"{peak.permits} valid permits"
    )
    capped = f", the most this page suggests: {MAX_FACTOR}× capacity" if raw >= ceiling else ""
    if supported < sold:
        sentence = (
            f"{seen}, so {supported} permits would keep that hour at {target:.0%} full: "
            f"{sold} are sold already, sell no more until some lapse."
        )
        return Suggestion(sold, sentence, "term", "Sell no more")
    sentence = (
        f"{seen}, so up to {suggested} permits ({ratio:.2f} per space{capped}) keep that hour at "
        f"{target:.0%} full: {suggested - sold} more than sold."
    )
    return Suggestion(suggested, sentence, "term", f"Sell up to {suggested} ({ratio:.2f} per space)")


def overview(
    session: Session,
    now: datetime,
    *,
    days: int = DEFAULT_DAYS,
    margin_percent: int = DEFAULT_MARGIN_PERCENT,
    lot_ids: list[int] | None = None,
    tz: tzinfo = UTC,
) -> list[LotCapacity]:
    """Every lot (or ``lot_ids``), ordered by name, with its figures, evidence and suggestion;
    ``tz`` is the site's zone (days of the chart, hours in the sentences)."""
    _check_window(days, margin_percent)
    query = select(Lot).options(selectinload(Lot.lot_group)).order_by(Lot.name)
    if lot_ids is not None:
        query = query.where(Lot.id.in_(lot_ids))
    lots = list(session.scalars(query))
    ids = [lot.id for lot in lots]
    sold = permit_counts(session, now, ids)
    free = permits.availability(session, ids, now, now + timedelta(minutes=1), now)
    waiting = waitlist.waiting_counts(session, ids)
    readings = group_hours(session, sorted({lot.lot_group_id for lot in lots if lot.lot_group_id}), now, days)
    valid = _lot_periods(session, ids, now - timedelta(days=days), now)
    rows = []
    for lot in lots:
        term = lot.sells_standard or not lot.sells_temporary  # a visitor lot sells temporary permits only
        found = (
            lot_evidence(lot.capacity, readings[lot.lot_group_id], valid[lot.id], tz, term=term)
            if lot.lot_group_id in readings
            else None
        )
        lot_sold = sold.get(lot.id, 0)
        rows.append(
            LotCapacity(
                lot_id=lot.id,
                name=lot.name,
                code=lot.code,
                group_id=lot.lot_group_id,
                group_name=lot.lot_group.name if lot.lot_group else None,
                is_active=lot.is_active,
                capacity=lot.capacity,
                permits_allowed=lot.permits_allowed,
                allowance=lot.allowance,
                sold=lot_sold,
                available=free[lot.id].available,
                waiting=waiting.get(lot.id, 0),
                sells_standard=lot.sells_standard,
                sells_temporary=lot.sells_temporary,
                evidence=found,
                suggestion=suggest(
                    lot.capacity,
                    lot_sold,
                    found,
                    now,
                    margin_percent,
                    in_group=lot.lot_group_id is not None,
                    term=term,
                    tz=tz,
                ),
            )
        )
    return rows


def lot_capacity(
    session: Session,
    lot_id: int,
    now: datetime,
    *,
    days: int = DEFAULT_DAYS,
    margin_percent: int = DEFAULT_MARGIN_PERCENT,
    tz: tzinfo = UTC,
) -> LotCapacity:
    found = overview(session, now, days=days, margin_percent=margin_percent, lot_ids=[lot_id], tz=tz)
    if not found:
        raise NotFound("That lot does not exist.")
    return found[0]


# --- changing the allowance ----------------------------------------------------------------------


@dataclass(frozen=True)
class AllowanceSaved:
    lot_id: int
    name: str
    old: int
    new: int
    sold: int
    changed: bool
    warning: str | None  # the change leaves few permits to sell (``_warning``)
    offers: int  # waitlist offers made because the change freed space
    announce_groups: tuple[int, ...]


def _whole(value: Any) -> int:
    """A whole number 0..SPACES_MAX as typed (text or number), else ``ValidationFailed``."""
    if isinstance(value, bool):
        raise ValidationFailed({"allowance": "enter a whole number"})
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValidationFailed({"allowance": "enter the number of permits allowed"})
        if not text.lstrip("-").isdecimal():
            raise ValidationFailed({"allowance": "enter a whole number"})
        value = int(text)
    if not isinstance(value, int):
        raise ValidationFailed({"allowance": "enter a whole number"})
    if value < 0:
        raise ValidationFailed({"allowance": "cannot be negative"})
    if value > SPACES_MAX:
        raise ValidationFailed({"allowance": f"at most {SPACES_MAX:,}"})
    return value


def low_available(capacity: int) -> int:
    """Fewer permits than this left to sell after a change is worth a question before saving: one
    in twenty spaces, and at least ``LOW_AVAILABLE_MIN``."""
    return max(LOW_AVAILABLE_MIN, math.ceil(capacity * LOW_AVAILABLE_SHARE))


@dataclass(frozen=True)
class AllowancePreview:
    lot_id: int
    name: str
    old: int
    new: int
    sold: int
    left: int  # permits left to sell right after the change (holds and offers count as taken)
    warning: str | None  # set when ``left`` is below ``low_available``: ask before saving


def _refuse_below_sold(value: int, sold: int) -> None:
    if value < sold:
        raise ValidationFailed(
            {
                "allowance": f"at least the {sold} permits valid now: a lower number cancels none of "
                "them, it only stops every sale until enough lapse"
            }
        )


def _left(session: Session, lot: Lot, value: int, now: datetime) -> int:
    taken = permits.lot_taken(session, [lot.id], now, now + timedelta(minutes=1), now)[lot.id]
    return max(0, value - taken)


def _warning(name: str, value: int, sold: int, left: int, capacity: int) -> str | None:
    if left >= low_available(capacity):
        return None
    if left == 0:
        return (
            f"{value} allowed with {sold} sold leaves no permit to sell in {name}: "
            "everyone who tries to buy one is told it is sold out."
        )
    plural = "s" if left != 1 else ""
    return f"{value} allowed with {sold} sold leaves only {left} permit{plural} to sell in {name}."


def preview_allowance(session: Session, lot_id: int, new: Any, now: datetime) -> AllowancePreview:
    """What saving ``new`` would do, without saving: refused (``ValidationFailed``) when it is not a
    whole number or below the permits valid now; a warning when it leaves few permits to sell."""
    value = _whole(new)
    lot = session.get(Lot, lot_id)
    if lot is None:
        raise NotFound("That lot does not exist.")
    sold = permit_counts(session, now, [lot.id]).get(lot.id, 0)
    if value != lot.permits_allowed:
        _refuse_below_sold(value, sold)
    left = _left(session, lot, value, now)
    return AllowancePreview(
        lot.id,
        lot.name,
        lot.allowance,
        value,
        sold,
        left,
        _warning(lot.name, value, sold, left, lot.capacity),
    )


def set_allowance(
    session: Session,
    lot_id: int,
    new: Any,
    actor_id: int | None,
    now: datetime,
    policy: waitlist.OfferPolicy,
) -> AllowanceSaved:
    """Set the permits a lot may sell (see the module's docstring). Saving the current value
    changes, audits and announces nothing; a new value below the permits valid now is refused."""
    value = _whole(new)
    permits.lock_lot(session, lot_id)
    lot = session.get(Lot, lot_id, populate_existing=True)
    if lot is None:
        raise NotFound("That lot does not exist.")
    old = lot.allowance
    sold = permit_counts(session, now, [lot.id]).get(lot.id, 0)
    if lot.permits_allowed == value:
        return AllowanceSaved(lot.id, lot.name, old, value, sold, False, None, 0, ())
    _refuse_below_sold(value, sold)
    audit.record(
        session,
        actor_id=actor_id,
        action=AUDIT_ACTION,
        entity_type="lot",
        entity_id=str(lot.id),
        changes={"permits_allowed": [lot.permits_allowed, value]},
    )
    lot.permits_allowed = value
    session.flush()
    offers = waitlist.offer_next(session, lot.id, now, policy) if value > old else []
    warning = _warning(lot.name, value, sold, _left(session, lot, value, now), lot.capacity)
    groups = (lot.lot_group_id,) if lot.lot_group_id is not None else ()
    return AllowanceSaved(lot.id, lot.name, old, value, sold, True, warning, len(offers), groups)


def announce(client: redis.Redis, saved: AllowanceSaved, now: datetime | None = None) -> None:
    """Tell open maps and lists about a committed change (``occupancy.announce_changes``)."""
    if saved.changed and saved.announce_groups:
        messages = [{"group_id": g, "changed": "lot", "lot_id": saved.lot_id} for g in saved.announce_groups]
        announce_changes(client, messages, now)


@dataclass(frozen=True)
class AllowanceChange:
    at: datetime
    actor_id: int | None
    actor_email: str | None
    action: str
    old: int | None  # None: "same as capacity"
    new: int | None


def history(session: Session, lot_id: int, limit: int = 50) -> list[AllowanceChange]:
    """Who changed the lot's permits allowed, when, from what to what: newest first, from this
    page and from the lot editor alike."""
    if session.get(Lot, lot_id) is None:
        raise NotFound("That lot does not exist.")
    rows = session.execute(
        select(AuditLog, User.email)
        .outerjoin(User, User.id == AuditLog.actor_id)
        .where(
            AuditLog.entity_type == "lot",
            AuditLog.entity_id == str(lot_id),
            AuditLog.action.in_(ALLOWANCE_ACTIONS),
        )
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
    )
    changes = []
    for row, actor_email in rows:
        change = (row.changes or {}).get("permits_allowed")
        if isinstance(change, list) and len(change) == 2:
            changes.append(AllowanceChange(row.created_at, row.actor_id, actor_email, row.action, *change))
        if len(changes) >= limit:
            break
    return changes
