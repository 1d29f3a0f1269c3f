"""Manage Capacity: what each lot may sell, what it sold, how full it physically gets, and advice.

Managers oversell lots that are never physically full (``Lot.permits_allowed`` may exceed the
capacity). This module shows the evidence for that decision and records it.

**What the sensors say, and what they cannot.** Mistall, Parking Logix and the live devices count
*lot groups* (one garage, one surface lot), not the lots permits are sold for. A lot's physical use
is therefore estimated: the group's peak percent full over the last ``days`` days (its highest
reading from any physical source in ``occupancy_snapshots``; readings above capacity count as
100%), times the lot's capacity. The highest source is taken on purpose: a source that over-counts
can only make the advice more cautious.

**The suggestion.** Assume parked cars grow in proportion to the permits sold. Now ``sold`` permits
(valid permits, ``occupancy.permit_counts``) fill at most ``peak`` (a share of capacity) at the
busiest time; to keep the busiest time below ``1 - margin`` of capacity, the lot may sell::

    suggested = floor(sold × (1 − margin) / peak)

bounded above by ``MAX_FACTOR`` × capacity (a near-empty reading must not suggest a thousand
permits) and never below ``sold`` (advice never implies cancelling permits). Sensors also count
visitors and pay-and-display parkers, so the rule leans cautious. No suggestion without evidence:
the lot needs a group, a capacity, permits valid now, and at least ``MIN_READINGS`` physical
readings reaching back ``MIN_SPAN`` (a full week, so the busiest weekday is in it).

**Changing the allowance** (``set_allowance``) is audited with the old and new value, announced to
open maps after the commit (``announce``, as ``lots.announce`` does) and, when it frees space,
offers it to the people waiting (``waitlist.offer_next``) in the same transaction. Lowering it below
the permits sold is allowed and warned about: no permit is cancelled, sales just stop until enough
permits lapse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, selectinload

from dashboard.services import audit, permits, waitlist
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.occupancy import PHYSICAL, announce_changes, permit_counts
from models import AuditLog, Lot, OccupancySnapshot, User

DEFAULT_DAYS = 28
MIN_DAYS = 7
MAX_DAYS = 366
MIN_SPAN = timedelta(days=7)
MIN_READINGS = 24
DEFAULT_MARGIN_PERCENT = 10
MAX_MARGIN_PERCENT = 50
MAX_FACTOR = 3
SPACES_MAX = 100_000  # as on the lot editor: a typo of three extra zeros is caught
AUDIT_ACTION = "lot.allowance"
# Lot edits that may carry a ``permits_allowed`` change (the lot editor's, and this page's).
ALLOWANCE_ACTIONS = ("lot.create", "lot.update", AUDIT_ACTION)


@dataclass(frozen=True)
class Peak:
    """A lot group's busiest physical reading in the window."""

    percent: float  # 0..100
    readings: int
    since: datetime  # the oldest reading in the window


@dataclass(frozen=True)
class Suggestion:
    allowance: int | None  # None: not enough evidence
    sentence: str


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
    peak: Peak | None
    suggestion: Suggestion

    @property
    def estimated_peak_cars(self) -> int | None:
        """The lot's share of the group's peak: the group's percent full × the lot's capacity."""
        return None if self.peak is None else round(self.peak.percent / 100 * self.capacity)


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


def group_peaks(session: Session, group_ids: list[int], now: datetime, days: int) -> dict[int, Peak]:
    """Each group's highest physical reading over the last ``days`` days (groups without readings
    are absent). Permit snapshots are not sensors and are left out."""
    if not group_ids:
        return {}
    share = case(
        (OccupancySnapshot.occupied >= OccupancySnapshot.capacity, 100.0),
        (OccupancySnapshot.occupied <= 0, 0.0),
        else_=OccupancySnapshot.occupied * 100.0 / OccupancySnapshot.capacity,
    )
    rows = session.execute(
        select(
            OccupancySnapshot.lot_group_id,
            func.max(share),
            func.count(OccupancySnapshot.id),
            func.min(OccupancySnapshot.recorded_at),
        )
        .where(
            OccupancySnapshot.lot_group_id.in_(group_ids),
            OccupancySnapshot.source.in_(PHYSICAL),
            OccupancySnapshot.capacity > 0,
            OccupancySnapshot.recorded_at > now - timedelta(days=days),
            OccupancySnapshot.recorded_at <= now,
        )
        .group_by(OccupancySnapshot.lot_group_id)
    )
    peaks = {}
    for group_id, percent, count, since in rows:
        if since.tzinfo is None:  # an aggregate bypasses the column type's conversion
            since = since.replace(tzinfo=now.tzinfo)
        peaks[group_id] = Peak(round(float(percent), 1), int(count), since)
    return peaks


def suggest(
    capacity: int,
    sold: int,
    peak: Peak | None,
    now: datetime,
    margin_percent: int = DEFAULT_MARGIN_PERCENT,
    *,
    in_group: bool = True,
) -> Suggestion:
    """The rule of the module's docstring, with the sentence managers read."""
    if not in_group:
        return Suggestion(None, "Not in a lot group: no sensor counts to learn from.")
    if capacity <= 0:
        return Suggestion(None, "No capacity set: nothing to compare the sensor counts with.")
    if peak is None or peak.readings < MIN_READINGS or peak.since > now - MIN_SPAN:
        if peak is None:
            have = "no sensor readings"
        else:
            have = f"{peak.readings} readings over {max((now - peak.since).days, 0)} days"
        need = f"needs {MIN_READINGS} readings over {MIN_SPAN.days} days"
        return Suggestion(None, f"Not enough sensor history yet ({have}; {need}).")
    if sold <= 0:
        return Suggestion(None, "No permits are valid now: the sensors say nothing about permit holders yet.")
    target = 1 - margin_percent / 100
    ceiling = min(MAX_FACTOR * capacity, SPACES_MAX)
    share = peak.percent / 100
    raw = None if share <= 0 else math.floor(sold * target / share)  # None: no limit seen at all
    suggested = max(sold, ceiling if raw is None else min(raw, ceiling))
    evidence = (
        f"Peak physical use {peak.percent:.0f}% with {sold} sold "
        f"({sold / capacity:.0%} of {capacity} spaces, {margin_percent}% margin)"
    )
    if suggested == sold:
        return Suggestion(suggested, f"{evidence}: sell no more than the {sold} sold now.")
    capped = f" (capped at {MAX_FACTOR}× capacity)" if raw is None or raw > ceiling else ""
    return Suggestion(
        suggested,
        f"{evidence}: you can sell about {suggested - sold} more, {suggested} in all{capped}.",
    )


def overview(
    session: Session,
    now: datetime,
    *,
    days: int = DEFAULT_DAYS,
    margin_percent: int = DEFAULT_MARGIN_PERCENT,
    lot_ids: list[int] | None = None,
) -> list[LotCapacity]:
    """Every lot (or ``lot_ids``), ordered by name, with its figures and the suggestion."""
    _check_window(days, margin_percent)
    query = select(Lot).options(selectinload(Lot.lot_group)).order_by(Lot.name)
    if lot_ids is not None:
        query = query.where(Lot.id.in_(lot_ids))
    lots = list(session.scalars(query))
    ids = [lot.id for lot in lots]
    sold = permit_counts(session, now, ids)
    free = permits.availability(session, ids, now, now + timedelta(minutes=1), now)
    waiting = waitlist.waiting_counts(session, ids)
    peaks = group_peaks(session, sorted({lot.lot_group_id for lot in lots if lot.lot_group_id}), now, days)
    rows = []
    for lot in lots:
        peak = peaks.get(lot.lot_group_id) if lot.lot_group_id else None
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
                peak=peak,
                suggestion=suggest(
                    lot.capacity, lot_sold, peak, now, margin_percent, in_group=lot.lot_group_id is not None
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
) -> LotCapacity:
    found = overview(session, now, days=days, margin_percent=margin_percent, lot_ids=[lot_id])
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
    warning: str | None
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
        if not text.lstrip("-").isdigit():
            raise ValidationFailed({"allowance": "enter a whole number"})
        value = int(text)
    if not isinstance(value, int):
        raise ValidationFailed({"allowance": "enter a whole number"})
    if value < 0:
        raise ValidationFailed({"allowance": "cannot be negative"})
    if value > SPACES_MAX:
        raise ValidationFailed({"allowance": f"at most {SPACES_MAX:,}"})
    return value


def set_allowance(
    session: Session,
    lot_id: int,
    new: Any,
    actor_id: int | None,
    now: datetime,
    policy: waitlist.OfferPolicy,
) -> AllowanceSaved:
    """Set the permits a lot may sell (see the module's docstring). Saving the current value
    changes, audits and announces nothing."""
    value = _whole(new)
    permits.lock_lot(session, lot_id)
    lot = session.get(Lot, lot_id, populate_existing=True)
    if lot is None:
        raise NotFound("That lot does not exist.")
    old = lot.allowance
    sold = permit_counts(session, now, [lot.id]).get(lot.id, 0)
    warning = (
        f"{sold} permits are valid now, more than the {value} allowed: none is cancelled, but no more "
        f"will be sold until fewer than {value} are valid."
        if value < sold
        else None
    )
    if lot.permits_allowed == value:
        return AllowanceSaved(lot.id, lot.name, old, value, sold, False, warning, 0, ())
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
