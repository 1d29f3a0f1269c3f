"""Lot groups as the Manage Parking Lot Groups screen sees them, and opening or closing one.

The figures come from ``occupancy.group_states`` (one source of truth for precedence and
staleness); this module adds the integration settings that screen shows beside them: the Mistall
lot id and the Parking Logix name (the seed: "it must match exactly"), and whether a Parking Logix
key is set: never the key itself.

Closing a group is what an admin does when a garage shuts: the maps then say "closed" instead of
"0% full". The change is published on ``occupancy.CHANNEL`` like a new count, so open pages
refresh; the caller publishes with ``announce`` after its unit of work has committed, so no page
re-reads the old state.

Associating a group with a Mistall lot (``set_mistall_lot``) accepts only lots the Update Mistall
System Job Task has imported (``vendor_lots.mistall_lot_choices``), and is announced the same way:
the group's physical figure may switch source (``occupancy.choose_physical``).

Admins create, edit and delete groups (``group_form``, ``save_group``, ``delete_group``). The
Parking Logix key is a secret handled as ``system_settings`` handles its own: stored encrypted
with ``SecretBox``, shown only masked, kept when the form leaves it empty, removed only on an
explicit clear, and recorded in the audit log as "changed" or "cleared". Names are unique ignoring
case (the database's constraint is case-sensitive, and "North Garage" and "north garage" would be
two pins nobody can tell apart). Deleting a group keeps its lots, without a group.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import redis
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dashboard.crypto import SecretBox, SecretError, mask
from dashboard.services import audit, vendor_lots
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.occupancy import (
    GROUP_KEY,
    SNAPSHOT_KEY,
    GroupOccupancy,
    LiveStore,
    Staleness,
    announce_changes,
    group_states,
)
from dashboard.services.system_settings import UNREADABLE
from models import Lot, LotGroup, OccupancySnapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LotGroupRow:
    """One line of the Manage Parking Lot Groups table."""

    state: GroupOccupancy
    mistall_lot_id: str | None
    parking_logix_name: str | None
    parking_logix_key_set: bool

    @property
    def parking_logix_ready(self) -> bool:
        """Parking Logix counts are used only with both the name and the key (``choose_physical``)."""
        return bool(self.parking_logix_name) and self.parking_logix_key_set


def list_rows(session: Session, store: LiveStore, staleness: Staleness, now: datetime) -> list[LotGroupRow]:
    """Every lot group with its live state and integration settings, ordered by name."""
    states = group_states(session, store, staleness, now)
    settings = {
        group_id: (mistall_lot_id, parking_logix_name, bool(key))
        for group_id, mistall_lot_id, parking_logix_name, key in session.execute(
            select(
                LotGroup.id,
                LotGroup.mistall_lot_id,
                LotGroup.parking_logix_name,
                LotGroup.parking_logix_api_key,
            )
        )
    }
    return [LotGroupRow(state, *settings[state.group_id]) for state in states if state.group_id in settings]


@dataclass(frozen=True)
class ClosedChange:
    group_id: int
    name: str
    closed: bool
    changed: bool


def set_closed(session: Session, group_id: int, closed: bool, actor_id: int | None) -> ClosedChange:
    """Close or reopen a group. Asking for the state it already has changes and audits nothing
    (two admins pressing Close at once), and says so through ``changed``."""
    group = session.get(LotGroup, group_id)
    if group is None:
        raise NotFound(f"There is no lot group with id {group_id}.")
    if group.is_closed == closed:
        return ClosedChange(group.id, group.name, closed, changed=False)
    group.is_closed = closed
    audit.record(
        session,
        actor_id=actor_id,
        action="lot_group.close" if closed else "lot_group.open",
        entity_type="lot_group",
        entity_id=str(group.id),
        changes={"is_closed": [not closed, closed]},
    )
    session.flush()
    return ClosedChange(group.id, group.name, closed, changed=True)


def announce(client: redis.Redis, change: ClosedChange, now: datetime | None = None) -> None:
    """Publish a committed open/close (the public API shows the same status)."""
    announce_changes(client, [{"group_id": change.group_id, "closed": change.closed}], now)


@dataclass(frozen=True)
class MistallEditor:
    """What the "Edit Mistall lot" dialog needs for one group. ``choices`` are the imported Mistall
    lots; a current id that is not among them (set before the import, or by hand) is kept as an
    extra choice marked so, so opening the dialog never silently shows it as cleared."""

    group_id: int
    name: str
    mistall_lot_id: str | None
    choices: list[tuple[str, str]]
    imported: int


def mistall_editor(session: Session, group_id: int) -> MistallEditor:
    group = session.get(LotGroup, group_id)
    if group is None:
        raise NotFound(f"There is no lot group with id {group_id}.")
    choices = vendor_lots.mistall_lot_choices(session)
    imported = len(choices)
    current = group.mistall_lot_id or None
    if current and current not in {mistall_id for mistall_id, _label in choices}:
        choices = [*choices, (current, f"{current} (not imported)")]
    return MistallEditor(group.id, group.name, current, choices, imported)


def set_mistall_lot(session: Session, group_id: int, mistall_id: str | None, actor_id: int | None) -> bool:
    """Associate the group with an imported Mistall lot, or clear the association (None or "").
    Returns whether anything changed; keeping the current id changes and audits nothing. The caller
    announces a change with ``announce_mistall_lot`` after its unit of work has committed."""
    group = session.get(LotGroup, group_id)
    if group is None:
        raise NotFound(f"There is no lot group with id {group_id}.")
    new = (mistall_id or "").strip() or None
    old = group.mistall_lot_id or None
    if new == old:
        return False
    if new is not None and not _imported(session, new):
        raise ValidationFailed({"Mistall lot": _not_imported(new)})
    group.mistall_lot_id = new
    audit.record(
        session,
        actor_id=actor_id,
        action="lot_group.mistall_lot",
        entity_type="lot_group",
        entity_id=str(group.id),
        changes={"mistall_lot_id": [old, new]},
    )
    session.flush()
    return True


def _imported(session: Session, mistall_id: str) -> bool:
    return mistall_id in {lot_id for lot_id, _label in vendor_lots.mistall_lot_choices(session)}


def _not_imported(mistall_id: str) -> str:
    return (
        f"{mistall_id!r} is not an imported Mistall lot; run the Update Mistall System Job Task, "
        "then pick a lot from the list."
    )


def announce_mistall_lot(client: redis.Redis, group_id: int, now: datetime | None = None) -> None:
    """Publish a committed Mistall association change: the group's physical source may switch, so
    open pages re-read it."""
    announce_changes(client, [{"group_id": group_id, "changed": "mistall_lot"}], now)


NAME_MAX = 120
PARKING_LOGIX_NAME_MAX = 120
KEY_MAX = 4000
DEFAULT_COLOR = "#1f77b4"
# A new group's pin colour: the first of these no group uses yet (Tableau 10, then its lighter
# half), so two groups are told apart on the map unless an admin chooses otherwise.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#dbdb8d", "#9edae5",
)  # fmt: skip


def unused_color(session: Session) -> str:
    """The first palette colour no lot group uses; when all are taken, the least used one."""
    used = [c.lower() for c in session.scalars(select(LotGroup.map_color)) if c]
    return min(PALETTE, key=lambda colour: (used.count(colour), PALETTE.index(colour)))


_COLOR_RE = re.compile(r"^#[0-9a-f]{6}$")
# The editor's fields, in form order: the keys of ``ValidationFailed.errors`` and of the audit log.
FIELDS = (
    "name",
    "map_color",
    "latitude",
    "longitude",
    "show_on_map",
    "mistall_lot_id",
    "parking_logix_name",
    "parking_logix_api_key",
)
KEY_CHANGED = "changed"  # what the audit log says of a new key: never the key itself
KEY_CLEARED = "cleared"


@dataclass(frozen=True)
class MapPoint:
    """A group's pin, for the editor's map: where the other groups are helps to place a new one."""

    group_id: int
    name: str
    map_color: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class GroupForm:
    """What the editor shows of one group (or of a new one: ``group_id`` None). ``key_status`` is
    ``crypto.mask`` of the stored Parking Logix key, ``system_settings.UNREADABLE`` after a
    secret-key rotation, or "" when no key is stored: never the key."""

    group_id: int | None
    name: str
    map_color: str
    latitude: float | None
    longitude: float | None
    show_on_map: bool
    mistall_lot_id: str | None
    parking_logix_name: str
    key_status: str
    mistall_choices: list[tuple[str, str]]
    mistall_imported: int
    others: list[MapPoint]


def group_form(session: Session, secrets: SecretBox, group_id: int | None) -> GroupForm:
    """The editor's content for ``group_id``, or the defaults of a new group (None)."""
    others = map_points(session, exclude=group_id)
    if group_id is None:
        choices = vendor_lots.mistall_lot_choices(session)
        return GroupForm(
            None, "", unused_color(session), None, None, True, None, "", "", choices, len(choices), others
        )
    mistall = mistall_editor(session, group_id)  # raises NotFound
    group = session.get(LotGroup, group_id)
    assert group is not None  # mistall_editor found it in this session
    return GroupForm(
        group_id=group.id,
        name=group.name,
        map_color=group.map_color,
        latitude=group.latitude,
        longitude=group.longitude,
        show_on_map=group.show_on_map,
        mistall_lot_id=mistall.mistall_lot_id,
        parking_logix_name=group.parking_logix_name or "",
        key_status=_key_status(secrets, group.parking_logix_api_key),
        mistall_choices=mistall.choices,
        mistall_imported=mistall.imported,
        others=others,
    )


def _key_status(secrets: SecretBox, stored: str | None) -> str:
    try:
        return mask(secrets.decrypt(stored))
    except SecretError:
        return UNREADABLE


def map_points(session: Session, exclude: int | None = None) -> list[MapPoint]:
    """Every group that has a location, by name (hidden ones too: they still occupy the spot)."""
    query = (
        select(LotGroup.id, LotGroup.name, LotGroup.map_color, LotGroup.latitude, LotGroup.longitude)
        .where(LotGroup.latitude.is_not(None), LotGroup.longitude.is_not(None))
        .order_by(LotGroup.name)
    )
    if exclude is not None:
        query = query.where(LotGroup.id != exclude)
    return [
        MapPoint(group_id, name, color, latitude, longitude)
        for group_id, name, color, latitude, longitude in session.execute(query)
        if latitude is not None and longitude is not None  # the query's own condition, for the types
    ]


@dataclass(frozen=True)
class GroupInput:
    """The editor's fields as the form sends them (validated by ``save_group``). An empty
    ``parking_logix_api_key`` keeps the stored key (the form never holds it); ``clear_api_key``
    removes it."""

    name: object = ""
    map_color: object = DEFAULT_COLOR
    latitude: object = None
    longitude: object = None
    show_on_map: object = True
    mistall_lot_id: object = None
    parking_logix_name: object = None
    parking_logix_api_key: object = None
    clear_api_key: bool = False


@dataclass(frozen=True)
class SavedGroup:
    group_id: int
    name: str
    created: bool
    changed: tuple[str, ...]  # the fields that changed (``FIELDS`` order); () for an unchanged save


def save_group(
    session: Session,
    secrets: SecretBox,
    data: GroupInput,
    actor_id: int | None,
    group_id: int | None = None,
) -> SavedGroup:
    """Create a group (``group_id`` None) or update one. Every field is validated before anything is
    written, and all problems come back together in one ``ValidationFailed`` keyed by ``FIELDS``.
    The change is audited with the key recorded as "changed"/"cleared" only. The caller announces a
    saved change with ``announce_saved`` after its unit of work has committed."""
    group = None
    if group_id is not None:
        group = session.get(LotGroup, group_id)
        if group is None:
            raise NotFound(f"There is no lot group with id {group_id}.")
    values, errors = _validate(session, data, group)
    key_change, key_error = _plan_key(secrets, data, group)
    if key_error:
        errors["parking_logix_api_key"] = key_error
    if errors:
        raise ValidationFailed({field: errors[field] for field in FIELDS if field in errors})

    created = group is None
    if group is None:
        group = LotGroup()
        session.add(group)
    changes: dict[str, object] = {}
    for field, new in values.items():
        old = None if created else getattr(group, field)
        if created or old != new:
            changes[field] = [old, new]
            setattr(group, field, new)
    if key_change is not None:
        stored, marker = key_change
        group.parking_logix_api_key = stored
        changes["parking_logix_api_key"] = marker
    if not changes:
        return SavedGroup(group.id, group.name, created=False, changed=())
    try:
        session.flush()
    except IntegrityError as exc:  # a same-named group committed between the check and the write
        raise ValidationFailed({"name": _duplicate(str(values["name"]))}) from exc
    audit.record(
        session,
        actor_id=actor_id,
        action="lot_group.create" if created else "lot_group.update",
        entity_type="lot_group",
        entity_id=str(group.id),
        changes=changes,
    )
    return SavedGroup(group.id, group.name, created, tuple(f for f in FIELDS if f in changes))


def _validate(
    session: Session, data: GroupInput, group: LotGroup | None
) -> tuple[dict[str, object], dict[str, str]]:
    """The new values of the plain fields, and a message for each field that is wrong."""
    errors: dict[str, str] = {}
    values: dict[str, object] = {}

    def check(field: str, parse: Callable[[], object]) -> None:
        try:
            values[field] = parse()
        except ValueError as exc:
            errors[field] = str(exc)

    check("name", lambda: _text(data.name, NAME_MAX, required=True))
    if "name" in values and _name_taken(session, str(values["name"]), group):
        errors["name"] = _duplicate(str(values["name"]))
    check("map_color", lambda: _color(data.map_color))
    check("latitude", lambda: _coordinate(data.latitude, 90))
    check("longitude", lambda: _coordinate(data.longitude, 180))
    if "latitude" in values and "longitude" in values:
        if values["latitude"] is None and values["longitude"] is not None:
            errors["latitude"] = "enter the latitude too, or clear the longitude (both or neither)"
        elif values["longitude"] is None and values["latitude"] is not None:
            errors["longitude"] = "enter the longitude too, or clear the latitude (both or neither)"
    values["show_on_map"] = bool(data.show_on_map)
    check("mistall_lot_id", lambda: _text(data.mistall_lot_id, 64) or None)
    current_mistall = (group.mistall_lot_id or None) if group is not None else None
    new_mistall = values.get("mistall_lot_id")
    if (
        isinstance(new_mistall, str)
        and new_mistall != current_mistall
        and not _imported(session, new_mistall)
    ):
        errors["mistall_lot_id"] = _not_imported(new_mistall)
    check("parking_logix_name", lambda: _exact_name(data.parking_logix_name, PARKING_LOGIX_NAME_MAX))
    return values, errors


def _text(raw: object, limit: int, required: bool = False) -> str:
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise ValueError("must be text")
    text = raw.strip()
    if required and not text:
        raise ValueError("enter a name")
    if len(text) > limit:
        raise ValueError(f"must be at most {limit} characters (this is {len(text)})")
    return text


def _exact_name(raw: object, limit: int) -> str | None:
    """A vendor's name kept exactly as typed, spaces at the ends included: the Parking Logix Sync
    matches ``location_name`` exactly, and a vendor name may end in a space (the task log shows
    such spaces as ␠). Only a name of nothing but whitespace counts as no name."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValueError("must be text")
    if not raw.strip():
        return None
    if len(raw) > limit:
        raise ValueError(f"must be at most {limit} characters (this is {len(raw)})")
    return raw


def _name_taken(session: Session, name: str, group: LotGroup | None) -> bool:
    query = select(LotGroup.id).where(func.lower(LotGroup.name) == name.lower())
    if group is not None:
        query = query.where(LotGroup.id != group.id)
    return session.scalar(query.limit(1)) is not None


def _duplicate(name: str) -> str:
    return f"another lot group is already called {name!r} (names are compared ignoring case)"


def _color(raw: object) -> str:
    """``#rrggbb``, stored in lower case; empty means the default colour."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return DEFAULT_COLOR
    text = raw.strip().lower() if isinstance(raw, str) else ""
    if not _COLOR_RE.match(text):
        raise ValueError("must be a colour written #rrggbb, e.g. #1f77b4")
    return text


def _coordinate(raw: object, limit: int) -> float | None:
    """Degrees within ±``limit``; None when empty. Text is accepted (typed into the form)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError("must be a number")
    try:
        number = float(raw.strip() if isinstance(raw, str) else raw)
    except ValueError as exc:
        raise ValueError("must be a number, e.g. 43.4723") from exc
    if not math.isfinite(number):
        raise ValueError("must be a number, e.g. 43.4723")
    if not -limit <= number <= limit:
        raise ValueError(f"must be between -{limit} and {limit}")
    return number


# (new stored value or None to remove it, the audit marker), or None: the key stays as it is.
KeyChange = tuple[str | None, str] | None


def _plan_key(secrets: SecretBox, data: GroupInput, group: LotGroup | None) -> tuple[KeyChange, str | None]:
    """The key change and an error message, as ``system_settings`` treats its secrets: an empty
    input keeps the stored key, a new one replaces it, ``clear_api_key`` removes it."""
    raw = data.parking_logix_api_key
    if raw is not None and not isinstance(raw, str):
        return None, "must be text"
    new = (raw or "").strip()
    stored = group.parking_logix_api_key if group is not None else None
    if data.clear_api_key:
        if new:
            return None, "enter a new key or tick “Clear key”, not both"
        return ((None, KEY_CLEARED) if stored else None), None
    if not new:
        return None, None
    if len(new) > KEY_MAX:
        return None, f"must be at most {KEY_MAX} characters"
    try:
        unchanged = secrets.decrypt(stored) == new
    except SecretError:
        unchanged = False
    return (None if unchanged else (secrets.encrypt(new), KEY_CHANGED)), None


def announce_saved(client: redis.Redis, group_id: int, now: datetime | None = None) -> None:
    """Publish a committed create or edit, so open maps re-read the group (a new pin, a moved or
    renamed one) and the API shows it at once."""
    announce_changes(client, [{"group_id": group_id, "changed": "settings"}], now)


@dataclass(frozen=True)
class Deletion:
    """What deleting a group involves, for the confirmation dialog and its result."""

    group_id: int
    name: str
    lot_names: tuple[str, ...]  # lots that stay, without a group

    @property
    def lot_count(self) -> int:
        return len(self.lot_names)


def deletion(session: Session, group_id: int) -> Deletion:
    """What ``delete_group`` would do, without doing it."""
    group = session.get(LotGroup, group_id)
    if group is None:
        raise NotFound(f"There is no lot group with id {group_id}.")
    names = session.scalars(select(Lot.name).where(Lot.lot_group_id == group_id).order_by(Lot.name))
    return Deletion(group.id, group.name, tuple(names))


def delete_group(session: Session, group_id: int, actor_id: int | None) -> Deletion:
    """Delete a group; its lots stay, without a group, and its occupancy history goes with it.

    Both are done here rather than left to the foreign keys' ``SET NULL`` / ``CASCADE``: SQLite
    honours those only with its ``foreign_keys`` pragma on (``dashboard.db`` turns it on, a
    hand-opened connection may not), and an orphaned history row would attach itself to the next
    group SQLite gives the same id. The audit entry keeps every setting (the key only as
    "cleared") and the ids of the lots it released, so the group can be rebuilt by hand. The
    caller calls ``announce_deleted`` after its unit of work has committed."""
    found = deletion(session, group_id)
    group = session.get(LotGroup, group_id)
    assert group is not None
    lot_ids = sorted(session.scalars(select(Lot.id).where(Lot.lot_group_id == group_id)))
    changes: dict[str, object] = {
        field: [getattr(group, field), None] for field in FIELDS if field != "parking_logix_api_key"
    }
    if group.parking_logix_api_key:
        changes["parking_logix_api_key"] = KEY_CLEARED
    changes["lot_ids"] = [lot_ids, []]
    session.execute(
        update(Lot).where(Lot.lot_group_id == group_id).values(lot_group_id=None),
        execution_options={"synchronize_session": "fetch"},
    )
    session.execute(delete(OccupancySnapshot).where(OccupancySnapshot.lot_group_id == group_id))
    session.delete(group)
    audit.record(
        session,
        actor_id=actor_id,
        action="lot_group.delete",
        entity_type="lot_group",
        entity_id=str(group_id),
        changes=changes,
    )
    session.flush()
    return found


def announce_deleted(client: redis.Redis, group_id: int, now: datetime | None = None) -> None:
    """After a committed delete: forget the group's live figures (the maps and the public API read
    only groups that exist, but SQLite may give the id to the next new group, which must not
    inherit them), then tell open pages to re-read."""
    try:
        client.delete(GROUP_KEY.format(group_id), SNAPSHOT_KEY.format(group_id))
    except redis.RedisError:
        log.warning("lot groups: could not forget the live figures of group %s", group_id, exc_info=True)
    announce_changes(client, [{"group_id": group_id, "deleted": True}], now)
