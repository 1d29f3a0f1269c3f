"""Creating, editing and deleting lot groups: every field is validated with a message of its own,
names are unique ignoring case, the Parking Logix key is stored encrypted and never audited, and
deleting a group keeps its lots and forgets its live figures."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.crypto import mask
from dashboard.services import lot_groups
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.lot_groups import GroupInput
from dashboard.services.occupancy import (
    CHANNEL,
    GROUP_KEY,
    PUBLIC_CACHE_KEY,
    SNAPSHOT_KEY,
    LiveStore,
)
from dashboard.services.system_settings import UNREADABLE
from models import AuditLog, Lot, LotGroup, MistallLot, OccupancySnapshot, OccupancySource, Role

NOW = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
KEY = "pl-api-key-0123456789"


def _audits(session: Session) -> list[AuditLog]:
    return list(
        session.scalars(select(AuditLog).where(AuditLog.entity_type == "lot_group").order_by(AuditLog.id))
    )


def _create(session, core, **fields) -> lot_groups.SavedGroup:
    values = {
        "name": "North Garage",
        "map_color": "#123456",
        "latitude": 43.47,
        "longitude": -80.54,
        **fields,
    }
    return lot_groups.save_group(session, core.secrets, GroupInput(**values), actor_id=None)


@pytest.fixture
def imported(session) -> None:
    session.add_all(
        [MistallLot(mistall_id="M-17", name="North deck"), MistallLot(mistall_id="M-20", name="West")]
    )
    session.commit()


def test_create_stores_every_field_and_audits_it(core, session, make_user, imported) -> None:
    admin = make_user(Role.ADMIN)
    saved = lot_groups.save_group(
        session,
        core.secrets,
        GroupInput(
            name="  North Garage ",
            map_color="#A1B2C3",
            latitude="43.4723",
            longitude=-80.5449,
            show_on_map=False,
            mistall_lot_id="M-17",
            parking_logix_name="Mountaineer Garage",
            parking_logix_api_key=KEY,
        ),
        actor_id=admin.id,
    )
    session.commit()
    assert saved.created and saved.name == "North Garage"
    assert saved.changed == lot_groups.FIELDS
    group = session.get(LotGroup, saved.group_id)
    assert (group.name, group.map_color, group.latitude, group.longitude, group.show_on_map) == (
        "North Garage",
        "#a1b2c3",
        43.4723,
        -80.5449,
        False,
    )
    assert (group.mistall_lot_id, group.parking_logix_name) == ("M-17", "Mountaineer Garage")
    assert group.parking_logix_api_key.startswith("enc:v1:") and KEY not in group.parking_logix_api_key
    assert core.secrets.decrypt(group.parking_logix_api_key) == KEY
    [entry] = _audits(session)
    assert (entry.action, entry.actor_id, entry.entity_id) == ("lot_group.create", admin.id, str(group.id))
    assert entry.changes["name"] == [None, "North Garage"]
    assert entry.changes["latitude"] == [None, 43.4723]
    assert entry.changes["parking_logix_api_key"] == "changed"
    assert KEY not in json.dumps(entry.changes)


def test_update_audits_only_what_changed(core, session) -> None:
    group_id = _create(session, core).group_id
    saved = lot_groups.save_group(
        session,
        core.secrets,
        GroupInput(name="North Garage", map_color="#123456", latitude=44, longitude=-80.54, show_on_map=True),
        actor_id=None,
        group_id=group_id,
    )
    assert (saved.created, saved.changed) == (False, ("latitude",))
    assert _audits(session)[-1].action == "lot_group.update"
    assert _audits(session)[-1].changes == {"latitude": [43.47, 44.0]}


def test_an_unchanged_save_writes_nothing(core, session) -> None:
    group_id = _create(session, core).group_id
    again = lot_groups.save_group(
        session,
        core.secrets,
        GroupInput(name="North Garage", map_color="#123456", latitude=43.47, longitude=-80.54),
        actor_id=None,
        group_id=group_id,
    )
    assert again.changed == ()
    assert [a.action for a in _audits(session)] == ["lot_group.create"]


def test_a_new_group_without_a_colour_or_a_location_gets_defaults(core, session) -> None:
    saved = lot_groups.save_group(
        session, core.secrets, GroupInput(name="Lot Q", map_color=""), actor_id=None
    )
    group = session.get(LotGroup, saved.group_id)
    assert (group.map_color, group.latitude, group.longitude, group.show_on_map) == (
        "#1f77b4",
        None,
        None,
        True,
    )
    assert group.parking_logix_api_key is None and group.parking_logix_name is None


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "   "}, "name", "enter a name"),
        ({"name": None}, "name", "enter a name"),
        ({"name": "x" * 121}, "name", "at most 120 characters"),
        ({"map_color": "red"}, "map_color", "#rrggbb"),
        ({"map_color": "#12345"}, "map_color", "#rrggbb"),
        ({"map_color": "#12345g"}, "map_color", "#rrggbb"),
        ({"latitude": 90.5}, "latitude", "between -90 and 90"),
        ({"latitude": "-91"}, "latitude", "between -90 and 90"),
        ({"longitude": 180.01}, "longitude", "between -180 and 180"),
        ({"longitude": "-200"}, "longitude", "between -180 and 180"),
        ({"latitude": "north"}, "latitude", "must be a number"),
        ({"longitude": "12,5"}, "longitude", "must be a number"),
        ({"latitude": "nan"}, "latitude", "must be a number"),
        ({"latitude": True}, "latitude", "must be a number"),
        ({"latitude": None}, "latitude", "both or neither"),
        ({"longitude": ""}, "longitude", "both or neither"),
        ({"parking_logix_name": "p" * 121}, "parking_logix_name", "at most 120 characters"),
        ({"parking_logix_api_key": "k" * 4001}, "parking_logix_api_key", "at most 4000 characters"),
        ({"parking_logix_api_key": 12345}, "parking_logix_api_key", "must be text"),
        ({"mistall_lot_id": "M-99"}, "mistall_lot_id", "not an imported Mistall lot"),
    ],
)
def test_each_field_is_validated(core, session, fields, field, message) -> None:
    with pytest.raises(ValidationFailed) as failed:
        _create(session, core, **fields)
    assert list(failed.value.errors) == [field]
    assert message in failed.value.errors[field]
    session.rollback()
    assert session.scalar(select(LotGroup.id)) is None
    assert _audits(session) == []


def test_all_problems_are_reported_together_in_form_order(core, session) -> None:
    with pytest.raises(ValidationFailed) as failed:
        _create(session, core, name="", map_color="blue", latitude=100, longitude="east")
    assert list(failed.value.errors) == ["name", "map_color", "latitude", "longitude"]


def test_names_are_unique_ignoring_case(core, session) -> None:
    first = _create(session, core)
    session.commit()
    with pytest.raises(ValidationFailed) as failed:
        _create(session, core, name="  NORTH garage")
    assert "already called 'NORTH garage'" in failed.value.errors["name"]
    session.rollback()
    # Renaming a group to itself in another case is not a duplicate.
    renamed = lot_groups.save_group(
        session,
        core.secrets,
        GroupInput(name="North GARAGE", map_color="#123456", latitude=43.47, longitude=-80.54),
        actor_id=None,
        group_id=first.group_id,
    )
    assert renamed.changed == ("name",)


def test_the_key_is_kept_replaced_and_cleared(core, session) -> None:
    group_id = _create(session, core, parking_logix_api_key=KEY).group_id
    stored = session.get(LotGroup, group_id).parking_logix_api_key

    def save(**key_fields) -> lot_groups.SavedGroup:
        return lot_groups.save_group(
            session,
            core.secrets,
            GroupInput(
                name="North Garage", map_color="#123456", latitude=43.47, longitude=-80.54, **key_fields
            ),
            actor_id=None,
            group_id=group_id,
        )

    assert save(parking_logix_api_key="").changed == ()
    assert save(parking_logix_api_key=f"  {KEY} ").changed == ()  # the same key again
    assert session.get(LotGroup, group_id).parking_logix_api_key == stored

    assert save(parking_logix_api_key="a-new-key-9876543210").changed == ("parking_logix_api_key",)
    replaced = session.get(LotGroup, group_id).parking_logix_api_key
    assert replaced.startswith("enc:v1:") and core.secrets.decrypt(replaced) == "a-new-key-9876543210"
    assert _audits(session)[-1].changes == {"parking_logix_api_key": "changed"}

    with pytest.raises(ValidationFailed, match="not both"):
        save(parking_logix_api_key="another", clear_api_key=True)
    assert save(clear_api_key=True).changed == ("parking_logix_api_key",)
    assert session.get(LotGroup, group_id).parking_logix_api_key is None
    assert _audits(session)[-1].changes == {"parking_logix_api_key": "cleared"}
    assert save(clear_api_key=True).changed == ()  # nothing left to clear
    assert "a-new-key" not in json.dumps([a.changes for a in _audits(session)])


def test_the_form_shows_the_key_masked_only(core, session) -> None:
    group_id = _create(session, core, parking_logix_api_key=KEY).group_id
    form = lot_groups.group_form(session, core.secrets, group_id)
    assert form.key_status == mask(KEY) and KEY not in repr(form)
    session.get(LotGroup, group_id).parking_logix_api_key = "enc:v1:garbage"
    assert lot_groups.group_form(session, core.secrets, group_id).key_status == UNREADABLE
    session.get(LotGroup, group_id).parking_logix_api_key = None
    assert lot_groups.group_form(session, core.secrets, group_id).key_status == ""


def test_a_mistall_id_set_before_the_import_may_be_kept(core, session, imported) -> None:
    group = LotGroup(name="Old", mistall_lot_id="LEGACY-1")
    session.add(group)
    session.flush()
    saved = lot_groups.save_group(
        session, core.secrets, GroupInput(name="Old renamed", mistall_lot_id="LEGACY-1"), None, group.id
    )
    assert saved.changed == ("name",)
    assert lot_groups.save_group(
        session, core.secrets, GroupInput(name="Old renamed", mistall_lot_id="M-20"), None, group.id
    ).changed == ("mistall_lot_id",)
    with pytest.raises(ValidationFailed, match="not an imported"):
        lot_groups.save_group(
            session, core.secrets, GroupInput(name="Old renamed", mistall_lot_id="LEGACY-1"), None, group.id
        )


def test_the_form_of_a_new_group_and_of_an_existing_one(core, session, imported) -> None:
    group_id = _create(session, core, mistall_lot_id="M-20").group_id
    session.add(LotGroup(name="Nowhere"))  # no location: not a map point
    session.flush()
    new = lot_groups.group_form(session, core.secrets, None)
    # Both groups have the default #1f77b4: a new one gets the next palette colour nobody uses.
    assert (new.group_id, new.name, new.map_color, new.latitude, new.show_on_map) == (
        None,
        "",
        "#ff7f0e",
        None,
        True,
    )
    assert new.mistall_imported == 2 and ("M-17", "North deck (M-17)") in new.mistall_choices
    assert [(p.group_id, p.latitude, p.longitude) for p in new.others] == [(group_id, 43.47, -80.54)]
    existing = lot_groups.group_form(session, core.secrets, group_id)
    assert (existing.name, existing.mistall_lot_id, existing.latitude) == ("North Garage", "M-20", 43.47)
    assert existing.others == []  # the group itself is not among "the others"
    with pytest.raises(NotFound):
        lot_groups.group_form(session, core.secrets, 999)
    with pytest.raises(NotFound):
        lot_groups.save_group(session, core.secrets, GroupInput(name="X"), None, 999)


def test_delete_keeps_the_lots_and_drops_the_history(core, session, make_user) -> None:
    admin = make_user(Role.ADMIN)
    group_id = _create(session, core, parking_logix_api_key=KEY).group_id
    other = _create(session, core, name="South Lot").group_id
    session.add_all(
        [
            Lot(name="North A", capacity=10, lot_group_id=group_id),
            Lot(name="North B", capacity=10, lot_group_id=group_id),
            Lot(name="South A", capacity=10, lot_group_id=other),
            OccupancySnapshot(lot_group_id=group_id, source=OccupancySource.DEVICES, occupied=1, capacity=2),
            OccupancySnapshot(lot_group_id=other, source=OccupancySource.DEVICES, occupied=1, capacity=2),
        ]
    )
    session.commit()
    preview = lot_groups.deletion(session, group_id)
    assert (preview.name, preview.lot_names, preview.lot_count) == ("North Garage", ("North A", "North B"), 2)

    done = lot_groups.delete_group(session, group_id, admin.id)
    session.commit()
    assert done == preview
    session.expire_all()
    assert session.get(LotGroup, group_id) is None
    lots = {lot.name: lot.lot_group_id for lot in session.scalars(select(Lot))}
    assert lots == {"North A": None, "North B": None, "South A": other}
    assert {s.lot_group_id for s in session.scalars(select(OccupancySnapshot))} == {other}
    entry = _audits(session)[-1]
    assert (entry.action, entry.actor_id, entry.entity_id) == ("lot_group.delete", admin.id, str(group_id))
    assert entry.changes["name"] == ["North Garage", None]
    assert entry.changes["parking_logix_api_key"] == "cleared"
    assert len(entry.changes["lot_ids"][0]) == 2 and entry.changes["lot_ids"][1] == []
    assert KEY not in json.dumps(entry.changes)
    with pytest.raises(NotFound):
        lot_groups.delete_group(session, group_id, admin.id)


def _next_message(pubsub) -> dict | None:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message is not None:
            return message
    return None


def test_announcements_refresh_maps_and_forget_a_deleted_group(core, session) -> None:
    group_id = _create(session, core).group_id
    session.commit()
    LiveStore(core.redis).record(group_id, OccupancySource.DEVICES, 5, 10, NOW)
    core.redis.hset(SNAPSHOT_KEY.format(group_id), "devices", 50)
    core.redis.set(PUBLIC_CACHE_KEY, "cached body")
    pubsub = core.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    try:
        lot_groups.announce_saved(core.redis, group_id, now=NOW)
        saved = _next_message(pubsub)
        assert core.redis.get(PUBLIC_CACHE_KEY) is None
        core.redis.set(PUBLIC_CACHE_KEY, "cached body")
        lot_groups.announce_deleted(core.redis, group_id, now=NOW)
        deleted = _next_message(pubsub)
    finally:
        pubsub.close()
    assert json.loads(saved["data"]) == {
        "group_id": group_id,
        "changed": "settings",
        "changed_at": NOW.isoformat(),
    }
    assert json.loads(deleted["data"]) == {
        "group_id": group_id,
        "deleted": True,
        "changed_at": NOW.isoformat(),
    }
    assert not core.redis.exists(GROUP_KEY.format(group_id), SNAPSHOT_KEY.format(group_id), PUBLIC_CACHE_KEY)
