"""Sensing devices (counters and space sensors): the registry the MQTT ingester matches topics
against, the messages it kept for devices nobody registered yet, and its dead letters.

Why it is shaped this way:

* The ingester holds its own map of device ids. After any change here it must reload that map,
  so callers that hold a Redis client call ``notify_devices_changed`` once the change is
  committed (these functions take a session and plain values only, and a message published
  before the commit would make the ingester reload the old map).
* A device's id is what the device puts in its topics, so it cannot be edited: a device with a
  new id is a new device. Kind, lot, name and the active flag can change.
* Messages of an unknown device are kept, not dropped. Mapping the device hands them to
  ``workers.replay``, which takes them with ``take_kept_messages`` and publishes them again; the
  ingester de-duplicates by ``event_id``, so replaying twice does not count twice.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from dashboard.services import audit
from dashboard.services.errors import NotFound, ValidationFailed
from models import DeviceKind, IngestDeadLetter, Lot, SensingDevice, UnknownDeviceMessage

DEVICES_CHANNEL = "parkops:devices"
# The ingester's counters, read back by ``ingest_counters`` (the ingester writes them).
MESSAGES_KEY = "parkops:ingest:messages"
DEAD_LETTERS_KEY = "parkops:ingest:dead_letters"
UNKNOWN_DEVICES_KEY = "parkops:ingest:unknown_devices"
DUPLICATES_KEY = "parkops:ingest:duplicates"
# Same rule as the ingester's topic check: fits the column and keeps topic segments free of
# wildcards, slashes and spaces, so an id registered here can actually appear in a topic.
DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$")
NAME_MAX = 120
# The topic segment before the device id says what kind of device published.
TOPIC_KINDS = {"counters": DeviceKind.COUNTER, "sensors": DeviceKind.SPACE_SENSOR}


@dataclass(frozen=True)
class DeviceView:
    device_id: str
    kind: DeviceKind
    lot_id: int
    lot_name: str
    group_name: str | None
    name: str
    active: bool
    last_seen_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LotOption:
    """A lot a device may be registered to, for dropdowns."""

    id: int
    name: str
    group_name: str | None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.group_name})" if self.group_name else self.name


@dataclass(frozen=True)
class UnknownDeviceView:
    """A device id with kept messages. ``registered`` is true when the id was registered after
    they were kept (messages that arrived before the ingester reloaded its map): they still wait
    for a replay."""

    device_id: str
    guessed_kind: DeviceKind | None
    message_count: int
    first_seen_at: datetime
    last_seen_at: datetime
    sample_topic: str
    sample_payload: str
    registered: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeadLetterView:
    id: int
    received_at: datetime
    topic: str
    reason: str
    payload: str


@dataclass(frozen=True)
class IngestCounters:
    """Message totals the ingester keeps in Redis since they were last reset (a Redis flush)."""

    messages: int
    dead_letters: int
    unknown: int
    duplicates: int = 0  # redelivered or repeated events recognised by their event id


def _view(device: SensingDevice) -> DeviceView:
    group = device.lot.lot_group
    return DeviceView(
        device_id=device.device_id,
        kind=DeviceKind(device.kind),
        lot_id=device.lot_id,
        lot_name=device.lot.name,
        group_name=group.name if group else None,
        name=device.name,
        active=device.is_active,
        last_seen_at=device.last_seen_at,
    )


def _loaded() -> Any:
    return select(SensingDevice).options(selectinload(SensingDevice.lot).selectinload(Lot.lot_group))


def list_devices(session: Session) -> list[DeviceView]:
    rows = session.scalars(_loaded().order_by(SensingDevice.device_id))
    return [_view(row) for row in rows]


def get_device(session: Session, device_id: str) -> DeviceView:
    return _view(_row(session, device_id))


def lot_options(session: Session) -> list[LotOption]:
    rows = session.scalars(select(Lot).options(selectinload(Lot.lot_group)).order_by(Lot.name))
    return [LotOption(lot.id, lot.name, lot.lot_group.name if lot.lot_group else None) for lot in rows]


def _row(session: Session, device_id: str) -> SensingDevice:
    row = session.scalar(_loaded().where(SensingDevice.device_id == device_id))
    if row is None:
        raise NotFound(f"no device with id {device_id!r}")
    return row


def _kind(value: DeviceKind | str | None) -> DeviceKind:
    try:
        if value is None:
            raise ValueError("no kind")
        return DeviceKind(value)
    except ValueError:
        kinds = ", ".join(k.value for k in DeviceKind)
        raise ValidationFailed({"kind": f"must be one of {kinds}"}) from None


def _lot(session: Session, lot_id: int | None, lot_name: str | None) -> Lot:
    if (lot_id is None) == (not lot_name):
        raise ValidationFailed({"lot": "give either a lot id or a lot name"})
    if lot_id is not None:
        lot = session.get(Lot, lot_id)
    else:
        lot = session.scalar(select(Lot).where(func.lower(Lot.name) == (lot_name or "").strip().lower()))
    if lot is None:
        raise ValidationFailed(
            {"lot": f"no lot {lot_name!r}" if lot_id is None else f"no lot with id {lot_id}"}
        )
    return lot


def _name(name: str) -> str:
    name = (name or "").strip()
    if len(name) > NAME_MAX:
        raise ValidationFailed({"name": f"at most {NAME_MAX} characters"})
    return name


def _register(
    session: Session,
    *,
    device_id: str,
    kind: DeviceKind | str,
    lot: Lot,
    name: str,
    actor_id: int | None,
    action: str,
) -> SensingDevice:
    device_id = (device_id or "").strip()
    if not DEVICE_ID_RE.match(device_id):
        raise ValidationFailed(
            {"device_id": "1 to 80 letters, digits, '_', '.', ':' or '-', starting with a letter or digit"}
        )
    if session.scalar(select(SensingDevice.id).where(SensingDevice.device_id == device_id)) is not None:
        raise ValidationFailed({"device_id": f"{device_id} is already registered"})
    device = SensingDevice(device_id=device_id, kind=_kind(kind), lot_id=lot.id, name=_name(name))
    session.add(device)
    session.flush()
    audit.record(
        session,
        actor_id=actor_id,
        action=action,
        entity_type="sensing_device",
        entity_id=device_id,
        changes={"kind": device.kind.value, "lot": lot.name, "name": device.name},
    )
    return device


def add_device(
    session: Session,
    *,
    device_id: str,
    kind: DeviceKind | str,
    lot_id: int | None = None,
    lot_name: str | None = None,
    name: str = "",
    actor_id: int | None,
) -> DeviceView:
    """Register a device to a lot (by id, or by name, case-insensitively, for the CLI)."""
    lot = _lot(session, lot_id, lot_name)
    device = _register(
        session, device_id=device_id, kind=kind, lot=lot, name=name, actor_id=actor_id, action="device.add"
    )
    return get_device(session, device.device_id)


def update_device(
    session: Session,
    device_id: str,
    *,
    kind: DeviceKind | str | None = None,
    lot_id: int | None = None,
    name: str | None = None,
    active: bool | None = None,
    actor_id: int | None,
) -> DeviceView:
    """Change what is given (None keeps it). Changing kind or lot takes effect for messages the
    ingester handles after it reloads; what it already counted stays where it was counted."""
    device = _row(session, device_id)
    changes: dict[str, Any] = {}
    if kind is not None and _kind(kind) is not device.kind:
        changes["kind"] = [device.kind.value, _kind(kind).value]
        device.kind = _kind(kind)
    if lot_id is not None and lot_id != device.lot_id:
        lot = _lot(session, lot_id, None)
        changes["lot"] = [device.lot.name, lot.name]
        device.lot_id = lot.id
    if name is not None and _name(name) != device.name:
        changes["name"] = [device.name, _name(name)]
        device.name = _name(name)
    if active is not None and active != device.is_active:
        changes["active"] = [device.is_active, active]
        device.is_active = active
    if changes:
        audit.record(
            session,
            actor_id=actor_id,
            action="device.update",
            entity_type="sensing_device",
            entity_id=device_id,
            changes=changes,
        )
        session.flush()
        session.expire(device)
    return get_device(session, device_id)


def deactivate_device(session: Session, device_id: str, *, actor_id: int | None) -> DeviceView:
    """Stop counting a device without forgetting it (a camera being serviced, a sensor dug up).

    The row, its lot and ``last_seen_at`` are kept, and so is every figure and snapshot it already
    contributed to (those belong to the lot group, not the device); ``update_device(active=True)``
    brings it back.
    """
    return update_device(session, device_id, active=False, actor_id=actor_id)


def delete_device(session: Session, device_id: str, *, actor_id: int | None) -> None:
    """Forget a device. Occupancy history stays (it belongs to the lot group); the audit log keeps
    what the device was. If the device keeps publishing, its messages are kept again as those of an
    unknown device, so a mistaken delete loses nothing."""
    device = _row(session, device_id)
    audit.record(
        session,
        actor_id=actor_id,
        action="device.delete",
        entity_type="sensing_device",
        entity_id=device_id,
        changes={"kind": device.kind.value, "lot": device.lot.name, "name": device.name},
    )
    session.delete(device)
    session.flush()


def _guess(topics: set[str]) -> DeviceKind | None:
    """``{prefix}/counters/{id}/...`` or ``{prefix}/sensors/{id}/state``; None if mixed or odd."""
    kinds = {TOPIC_KINDS.get(topic.split("/")[-3]) if topic.count("/") >= 2 else None for topic in topics}
    return kinds.pop() if len(kinds) == 1 else None


def unknown_devices(session: Session) -> list[UnknownDeviceView]:
    """Every device id with kept messages, most recently heard first."""
    per_topic = session.execute(
        select(
            UnknownDeviceMessage.device_id,
            UnknownDeviceMessage.topic,
            func.count(),
            func.min(UnknownDeviceMessage.received_at),
            func.max(UnknownDeviceMessage.received_at),
        ).group_by(UnknownDeviceMessage.device_id, UnknownDeviceMessage.topic)
    ).all()
    latest_ids = select(func.max(UnknownDeviceMessage.id)).group_by(UnknownDeviceMessage.device_id)
    samples = {
        row.device_id: row
        for row in session.scalars(
            select(UnknownDeviceMessage).where(UnknownDeviceMessage.id.in_(latest_ids))
        )
    }
    registered = set(
        session.scalars(select(SensingDevice.device_id).where(SensingDevice.device_id.in_(list(samples))))
    )
    topics: dict[str, set[str]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    firsts: dict[str, datetime] = {}
    lasts: dict[str, datetime] = {}
    for device_id, topic, count, first, last in per_topic:
        topics[device_id].add(topic)
        counts[device_id] += count
        firsts[device_id] = min(first, firsts.get(device_id, first))
        lasts[device_id] = max(last, lasts.get(device_id, last))
    views = [
        UnknownDeviceView(
            device_id=device_id,
            guessed_kind=_guess(topics[device_id]),
            message_count=counts[device_id],
            first_seen_at=firsts[device_id],
            last_seen_at=lasts[device_id],
            sample_topic=sample.topic,
            sample_payload=sample.payload,
            registered=device_id in registered,
        )
        for device_id, sample in samples.items()
    ]
    return sorted(views, key=lambda view: view.last_seen_at, reverse=True)


def kept_message_count(session: Session, device_id: str) -> int:
    return session.scalar(select(func.count()).where(UnknownDeviceMessage.device_id == device_id)) or 0


def map_unknown_device(
    session: Session, device_id: str, kind: DeviceKind | str, lot_id: int, actor_id: int | None
) -> int:
    """Register an unknown device; returns how many kept messages it has (the caller enqueues
    ``workers.replay`` after the commit so that they are counted)."""
    lot = _lot(session, lot_id, None)
    _register(
        session, device_id=device_id, kind=kind, lot=lot, name="", actor_id=actor_id, action="device.map"
    )
    return kept_message_count(session, device_id)


def take_kept_messages(session: Session, device_id: str) -> list[tuple[str, str]]:
    """Delete a device's kept messages and return them as ``(topic, payload)``, oldest first.

    The delete commits with the caller's session, so a caller that fails to publish them rolls
    back and keeps them. Only the rows read are deleted (a message kept meanwhile waits for the
    next replay), and on PostgreSQL a second replay running at the same time skips locked rows
    instead of publishing them twice.
    """
    rows = session.execute(
        select(UnknownDeviceMessage.id, UnknownDeviceMessage.topic, UnknownDeviceMessage.payload)
        .where(UnknownDeviceMessage.device_id == device_id)
        .order_by(UnknownDeviceMessage.received_at, UnknownDeviceMessage.id)
        .with_for_update(skip_locked=True)
    ).all()
    if rows:
        session.execute(delete(UnknownDeviceMessage).where(UnknownDeviceMessage.id.in_([r.id for r in rows])))
    return [(row.topic, row.payload) for row in rows]


def dead_letters(session: Session, limit: int = 200, reason: str | None = None) -> list[DeadLetterView]:
    """Newest first."""
    query = select(IngestDeadLetter).order_by(IngestDeadLetter.received_at.desc(), IngestDeadLetter.id.desc())
    if reason:
        query = query.where(IngestDeadLetter.reason == reason)
    return [
        DeadLetterView(row.id, row.received_at, row.topic, row.reason, row.payload)
        for row in session.scalars(query.limit(limit))
    ]


def dead_letter_reasons(session: Session) -> list[tuple[str, int]]:
    """Each reason with how many dead letters have it, most frequent first."""
    count = func.count().label("n")
    rows = session.execute(
        select(IngestDeadLetter.reason, count)
        .group_by(IngestDeadLetter.reason)
        .order_by(count.desc(), IngestDeadLetter.reason)
    )
    return [(reason, n) for reason, n in rows]


def ingest_counters(client: redis.Redis) -> IngestCounters:
    """``unknown`` counts messages from unregistered devices, like the other two count messages."""
    pipe = client.pipeline()
    pipe.get(MESSAGES_KEY)
    pipe.get(DEAD_LETTERS_KEY)
    pipe.hvals(UNKNOWN_DEVICES_KEY)
    pipe.get(DUPLICATES_KEY)
    messages, dead, per_device, duplicates = pipe.execute()
    return IngestCounters(
        int(messages or 0), int(dead or 0), sum(int(v) for v in per_device), int(duplicates or 0)
    )


def notify_devices_changed(client: redis.Redis) -> None:
    """Tell the ingester to reload its device map; call after the change is committed."""
    client.publish(DEVICES_CHANNEL, "changed")
