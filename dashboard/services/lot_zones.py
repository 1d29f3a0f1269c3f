"""Lot zones (Manage Lot Zones): the names HotSpot, ParkMobile and pay stations speak.

A zone on its own sells nothing: a lot's "Add Zone by Days" schedules (``lots.add_schedule``) say
where and when it is valid, so a permit bought for zone 1001 is good in every lot that has 1001
scheduled at that moment. ParkMobile permits are imported only when their zone name matches a zone
here exactly, which is why names are unique regardless of case (two zones differing only in case
would make that match a guess) and why a rename is worth a second thought.

A zone's optional capacity is how many zone permits and pay-station records may overlap at any time
(the rule is in ``dashboard.services.permits``): partners are refused past it, pulled ParkMobile
records are flagged. A zone permit takes no space of any one lot, so a lot that also hosts a zone
sells its own allowance; set the two so that together they fit the lot.

A zone still scheduled on a lot, or named by a permit, cannot be deleted: the database refuses it
anyway (``ondelete="RESTRICT"``), and the error here names the lots and counts the permits so the
admin knows what to change first. Pay-station records keep the vendor's zone name and merely lose
the link, so they do not block a delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard.services import audit
from dashboard.services.errors import NotAllowed, NotFound, ValidationFailed
from dashboard.services.permits import zone_taken
from models import Lot, LotZone, LotZoneSchedule, Permit

NAME_MAX = 80
CAPACITY_MAX = 100_000


@dataclass(frozen=True)
class ZoneView:
    """One zone with what uses it: the lots that schedule it (by name) and the permits naming it;
    ``capacity`` (None: no limit) and ``taken_now`` (what counts against it at the moment listed)."""

    id: int
    name: str
    created_at: datetime
    lot_names: tuple[str, ...]
    permit_count: int
    capacity: int | None = None
    taken_now: int = 0

    @property
    def in_use(self) -> bool:
        return bool(self.lot_names) or self.permit_count > 0


class ZoneInUse(NotAllowed):
    """Deleting a zone that lots schedule or permits name; the message lists what to change."""

    def __init__(self, name: str, lot_names: tuple[str, ...], permit_count: int) -> None:
        reasons, advice = [], []
        if lot_names:
            reasons.append(f"it is scheduled on {len(lot_names)} lot(s): {', '.join(lot_names)}")
            advice.append("Remove it from those lots first (Lot Administration > a lot > Zones & Location).")
        if permit_count:
            reasons.append(f"{permit_count} permit(s) are for this zone")
            advice.append("A zone that permits name is kept for their history.")
        super().__init__(f"Zone {name} cannot be deleted: {'; '.join(reasons)}. {' '.join(advice)}")
        self.lot_names = lot_names
        self.permit_count = permit_count


def _usage(
    session: Session, zone_ids: list[int] | None = None
) -> tuple[dict[int, list[str]], dict[int, int]]:
    lots_query = (
        select(LotZoneSchedule.zone_id, Lot.name)
        .join(Lot, Lot.id == LotZoneSchedule.lot_id)
        .distinct()
        .order_by(Lot.name)
    )
    permits_query = (
        select(Permit.zone_id, func.count(Permit.id))
        .where(Permit.zone_id.is_not(None))
        .group_by(Permit.zone_id)
    )
    if zone_ids is not None:
        lots_query = lots_query.where(LotZoneSchedule.zone_id.in_(zone_ids))
        permits_query = permits_query.where(Permit.zone_id.in_(zone_ids))
    lots: dict[int, list[str]] = {}
    for zone_id, lot_name in session.execute(lots_query):
        lots.setdefault(zone_id, []).append(lot_name)
    permits = {zone_id: count for zone_id, count in session.execute(permits_query) if zone_id is not None}
    return lots, permits


def _view(
    zone: LotZone, lots: dict[int, list[str]], permits: dict[int, int], taken: dict[int, int] | None = None
) -> ZoneView:
    return ZoneView(
        zone.id,
        zone.name,
        zone.created_at,
        tuple(lots.get(zone.id, ())),
        permits.get(zone.id, 0),
        zone.capacity,
        (taken or {}).get(zone.id, 0),
    )


def list_zones(session: Session, now: datetime | None = None) -> list[ZoneView]:
    """Every zone with its usage, ordered by name; with ``now``, what each one has taken then."""
    lots, permits = _usage(session)
    zones = list(session.scalars(select(LotZone).order_by(LotZone.name)))
    taken = None
    if now is not None and zones:
        taken = zone_taken(session, [zone.id for zone in zones], now, now + timedelta(seconds=1), now)
    return [_view(zone, lots, permits, taken) for zone in zones]


def zone_choices(session: Session) -> list[tuple[int, str]]:
    """(id, name) of every zone, for the lot editor's "Add Zone by Days" dropdown."""
    return [
        (zone_id, name)
        for zone_id, name in session.execute(select(LotZone.id, LotZone.name).order_by(LotZone.name))
    ]


def get_zone(session: Session, zone_id: int) -> ZoneView:
    zone = _row(session, zone_id)
    lots, permits = _usage(session, [zone.id])
    return _view(zone, lots, permits)


def _row(session: Session, zone_id: int) -> LotZone:
    zone = session.get(LotZone, zone_id)
    if zone is None:
        raise NotFound(f"There is no lot zone with id {zone_id}.")
    return zone


def _clean_name(session: Session, name: str | None, zone_id: int | None = None) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise ValidationFailed({"name": "enter the zone's name (as HotSpot or ParkMobile spell it)"})
    if len(cleaned) > NAME_MAX:
        raise ValidationFailed({"name": f"at most {NAME_MAX} characters"})
    clash = session.scalar(
        select(LotZone).where(func.lower(LotZone.name) == cleaned.lower(), LotZone.id != (zone_id or 0))
    )
    if clash is not None:
        raise ValidationFailed({"name": f"zone {clash.name} already exists"})
    return cleaned


def _clean_capacity(value: object) -> int | None:
    """None or "" (no limit), else a whole number 0 .. ``CAPACITY_MAX`` (a number or its digits)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= CAPACITY_MAX:
        raise ValidationFailed(
            {"capacity": f"a whole number from 0 to {CAPACITY_MAX:,}, or empty for no limit"}
        )
    return value


def add_zone(session: Session, name: str | None, actor_id: int | None, capacity: object = None) -> ZoneView:
    errors: dict[str, str] = {}
    cleaned = limit = None
    try:
        cleaned = _clean_name(session, name)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    try:
        limit = _clean_capacity(capacity)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    assert cleaned is not None
    zone = LotZone(name=cleaned, capacity=limit)
    session.add(zone)
    session.flush()
    audit.record(
        session,
        actor_id=actor_id,
        action="lot_zone.add",
        entity_type="lot_zone",
        entity_id=str(zone.id),
        changes={"name": [None, cleaned], **({"capacity": [None, limit]} if limit is not None else {})},
    )
    return ZoneView(zone.id, zone.name, zone.created_at, (), 0, limit)


def set_capacity(session: Session, zone_id: int, capacity: object, actor_id: int | None) -> ZoneView:
    """Set or clear (None, "") the zone's capacity. Lowering it below what is already sold cancels
    nothing: new sales are refused until the zone has room again."""
    zone = _row(session, zone_id)
    limit = _clean_capacity(capacity)
    if limit != zone.capacity:
        audit.record(
            session,
            actor_id=actor_id,
            action="lot_zone.capacity",
            entity_type="lot_zone",
            entity_id=str(zone.id),
            changes={"capacity": [zone.capacity, limit]},
        )
        zone.capacity = limit
        session.flush()
    return get_zone(session, zone.id)


def rename_zone(session: Session, zone_id: int, name: str | None, actor_id: int | None) -> ZoneView:
    """Rename in place: schedules and permits follow the id, so they keep the zone."""
    zone = _row(session, zone_id)
    cleaned = _clean_name(session, name, zone.id)
    if cleaned != zone.name:
        audit.record(
            session,
            actor_id=actor_id,
            action="lot_zone.rename",
            entity_type="lot_zone",
            entity_id=str(zone.id),
            changes={"name": [zone.name, cleaned]},
        )
        zone.name = cleaned
        session.flush()
    return get_zone(session, zone.id)


def delete_zone(session: Session, zone_id: int, actor_id: int | None) -> str:
    """Delete an unused zone and return its name; raise ``ZoneInUse`` otherwise."""
    view = get_zone(session, zone_id)
    if view.in_use:
        raise ZoneInUse(view.name, view.lot_names, view.permit_count)
    session.delete(_row(session, zone_id))
    audit.record(
        session,
        actor_id=actor_id,
        action="lot_zone.delete",
        entity_type="lot_zone",
        entity_id=str(zone_id),
        changes={"name": [view.name, None]},
    )
    session.flush()
    return view.name
