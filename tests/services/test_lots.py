"""Lots service (Lot Administration): the list counts permits as the maps do, every save is checked
field by field and audited, a change the maps read is announced for the right lot groups, prices
go in as dollars and are stored in cents, and zones are scheduled by days."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.services import lots
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.lots import GeneralFields, LotSaved, ProductFields
from dashboard.services.occupancy import CHANNEL, PUBLIC_CACHE_KEY
from models import (
    AuditLog,
    Lot,
    LotGroup,
    LotZone,
    LotZoneSchedule,
    Permit,
    PermitKind,
    PermitProduct,
    PermitStatus,
    Pricing,
    UserType,
)

NOW = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)


@pytest.fixture
def world(session: Session) -> dict[str, int]:
    north = LotGroup(name="North Garage")
    south = LotGroup(name="South Lots")
    level1 = Lot(name="North Level 1", code="N1", capacity=250, permits_allowed=280, lot_group=north)
    visitor = Lot(name="North Visitor", code="NV", capacity=60, sells_standard=False, sells_temporary=True)
    zone = LotZone(name="1001")
    session.add_all([north, south, level1, visitor, zone])
    session.add_all([UserType(code="student", name="Student"), UserType(code="staff", name="Staff")])
    session.flush()
    session.add(LotZoneSchedule(lot_id=visitor.id, zone_id=zone.id))
    session.add(
        PermitProduct(
            lot_id=level1.id,
            kind=PermitKind.STANDARD,
            name="Fall Term",
            pricing=Pricing.TERM,
            price_cents=26500,
        )
    )
    for number, status, start, end in [
        ("P1", PermitStatus.ACTIVE, NOW - timedelta(days=1), NOW + timedelta(days=1)),
        ("P2", PermitStatus.ACTIVE, NOW - timedelta(days=1), NOW + timedelta(days=9)),
        ("P3", PermitStatus.CANCELLED, NOW - timedelta(days=1), NOW + timedelta(days=1)),
        ("P4", PermitStatus.ACTIVE, NOW - timedelta(days=9), NOW - timedelta(days=1)),
    ]:
        session.add(
            Permit(
                number=number,
                kind=PermitKind.STANDARD,
                status=status,
                lot_id=level1.id,
                valid_from=start,
                valid_to=end,
            )
        )
    session.commit()
    return {"north": north.id, "south": south.id, "level1": level1.id, "visitor": visitor.id, "zone": zone.id}


def _audits(session: Session, entity_type: str = "lot") -> list[AuditLog]:
    query = select(AuditLog).where(AuditLog.entity_type == entity_type).order_by(AuditLog.id)
    return list(session.scalars(query))


def _fields(**changes: object) -> GeneralFields:
    base = {
        "name": "North Level 1",
        "code": "N1",
        "description": "",
        "address": None,
        "lot_group_id": None,
        "capacity": 250,
        "permits_allowed": 280,
        "is_active": True,
        "sells_standard": True,
        "sells_temporary": False,
    }
    base.update(changes)
    return GeneralFields(**base)  # type: ignore[arg-type]


# --- the list -------------------------------------------------------------------------------


def test_the_list_counts_valid_permits_and_shows_groups_products_and_zones(session, world) -> None:
    rows = {row.name: row for row in lots.list_lots(session, NOW)}
    level1, visitor = rows["North Level 1"], rows["North Visitor"]
    assert (level1.group_name, level1.capacity, level1.allowance, level1.sold) == (
        "North Garage",
        250,
        280,
        2,
    )
    assert level1.oversold and level1.product_count == 1 and level1.zone_names == ()
    assert (visitor.group_name, visitor.allowance, visitor.sold, visitor.zone_names) == (
        None,
        60,
        0,
        ("1001",),
    )
    assert not visitor.oversold and (visitor.sells_standard, visitor.sells_temporary) == (False, True)


def test_choices(session, world) -> None:
    assert [name for _id, name in lots.group_choices(session)] == ["North Garage", "South Lots"]
    assert [name for _id, name in lots.user_type_choices(session)] == ["Staff", "Student"]


# --- General --------------------------------------------------------------------------------


def test_get_lot_and_not_found(session, world) -> None:
    detail = lots.get_lot(session, world["level1"])
    assert (detail.name, detail.group_name, detail.allowance) == ("North Level 1", "North Garage", 280)
    with pytest.raises(NotFound):
        lots.get_lot(session, 9999)


def test_create_a_lot_audits_it_and_names_its_group(session, world) -> None:
    saved = lots.create_lot(
        session,
        _fields(
            name=" Lot  E1 ", code="E1", lot_group_id=str(world["south"]), capacity="320", permits_allowed=""
        ),
        actor_id=None,
    )
    session.commit()
    assert saved.created and saved.lot.name == "Lot E1" and saved.lot.group_name == "South Lots"
    assert (saved.lot.capacity, saved.lot.permits_allowed, saved.lot.allowance) == (320, None, 320)
    assert saved.announce_groups == (world["south"],)
    entry = _audits(session)[-1]
    assert (entry.action, entry.entity_id) == ("lot.create", str(saved.lot.id))
    assert entry.changes["capacity"] == [None, 320] and entry.changes["lot_group_id"] == [
        None,
        world["south"],
    ]


def test_a_lot_outside_every_group_announces_nothing(session, world) -> None:
    saved = lots.create_lot(session, _fields(name="Lone Lot", code=None, lot_group_id="none"), actor_id=None)
    assert saved.lot.lot_group_id is None and saved.announce_groups == ()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": "  "}, "name", "enter the lot's name"),
        ({"name": "north visitor"}, "name", "another lot already has this name"),
        ({"name": "x" * 121}, "name", "at most 120"),
        ({"code": "nv"}, "code", "another lot already has this code"),
        ({"code": "C" * 33}, "code", "at most 32"),
        ({"address": "a" * 201}, "address", "at most 200"),
        ({"lot_group_id": 999}, "lot_group_id", "choose a lot group"),
        ({"capacity": ""}, "capacity", "enter the number of spaces"),
        ({"capacity": -1}, "capacity", "cannot be negative"),
        ({"capacity": "12.5"}, "capacity", "whole number"),
        ({"capacity": "lots"}, "capacity", "whole number"),
        ({"capacity": 10**6}, "capacity", "at most 100,000"),
        ({"permits_allowed": -5}, "permits_allowed", "cannot be negative"),
        ({"permits_allowed": "1e2.5"}, "permits_allowed", "whole number"),
    ],
)
def test_general_fields_are_checked(session, world, changes, field, message) -> None:
    with pytest.raises(ValidationFailed) as refused:
        lots.update_general(session, world["level1"], _fields(**changes), actor_id=None)
    assert message in refused.value.errors[field]
    session.rollback()
    assert lots.get_lot(session, world["level1"]).name == "North Level 1"
    assert _audits(session) == []


def test_several_problems_are_reported_together(session, world) -> None:
    with pytest.raises(ValidationFailed) as refused:
        lots.update_general(session, world["level1"], _fields(name="", capacity=-1, code="NV"), actor_id=None)
    assert set(refused.value.errors) == {"name", "capacity", "code"}


def test_permits_allowed_may_exceed_capacity_and_blank_means_capacity(session, world) -> None:
    over = lots.update_general(
        session, world["level1"], _fields(capacity=100, permits_allowed=400), actor_id=None
    )
    assert over.lot.allowance == 400
    same = lots.update_general(
        session, world["level1"], _fields(capacity=100, permits_allowed=None), actor_id=None
    )
    assert (same.lot.permits_allowed, same.lot.allowance) == (None, 100)


def test_saving_unchanged_fields_audits_and_announces_nothing(session, world) -> None:
    saved = lots.update_general(session, world["level1"], _fields(lot_group_id=world["north"]), actor_id=None)
    assert saved.changes == {} and saved.announce_groups == ()
    assert _audits(session) == []


def test_a_description_change_is_audited_but_not_announced(session, world) -> None:
    saved = lots.update_general(
        session, world["level1"], _fields(lot_group_id=world["north"], description="Level 1"), actor_id=None
    )
    assert saved.changes == {"description": ["", "Level 1"]} and saved.announce_groups == ()
    assert _audits(session)[0].action == "lot.update"


@pytest.mark.parametrize(
    "changes",
    [
        {"capacity": 200},
        {"permits_allowed": 300},
        {"sells_temporary": True},
        {"sells_standard": False},
        {"is_active": False},
        {"name": "North L1"},
    ],
)
def test_a_change_the_maps_read_announces_the_group(session, world, changes) -> None:
    saved = lots.update_general(
        session, world["level1"], _fields(lot_group_id=world["north"], **changes), actor_id=None
    )
    assert saved.announce_groups == (world["north"],)
    assert set(saved.changes) == set(changes)


def test_moving_a_lot_announces_both_groups(session, world) -> None:
    saved = lots.update_general(session, world["level1"], _fields(lot_group_id=world["south"]), actor_id=None)
    session.commit()
    assert saved.lot.group_name == "South Lots"
    assert saved.announce_groups == tuple(sorted((world["north"], world["south"])))
    assert _audits(session)[0].changes == {"lot_group_id": [world["north"], world["south"]]}


def test_announce_publishes_once_per_group_and_drops_the_public_cache(core, session, world) -> None:
    core.redis.set(PUBLIC_CACHE_KEY, "old body")
    saved = LotSaved(
        lots.get_lot(session, world["level1"]), False, {"capacity": [1, 2]}, (world["north"], world["south"])
    )
    pubsub = core.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    try:
        lots.announce(core.redis, saved, now=NOW)
        messages = [pubsub.get_message(timeout=1) for _ in range(3)]
    finally:
        pubsub.close()
    published = [json.loads(m["data"]) for m in messages if m]
    assert [m["group_id"] for m in published] == [world["north"], world["south"]]
    assert published[0] == {
        "group_id": world["north"],
        "changed": "lot",
        "lot_id": world["level1"],
        "changed_at": NOW.isoformat(),
    }
    assert core.redis.get(PUBLIC_CACHE_KEY) is None


def test_announce_without_groups_publishes_nothing(core, session, world) -> None:
    core.redis.set(PUBLIC_CACHE_KEY, "body")
    lots.announce(core.redis, LotSaved(lots.get_lot(session, world["level1"]), False), now=NOW)
    assert core.redis.get(PUBLIC_CACHE_KEY) == b"body"


# --- location -------------------------------------------------------------------------------


def test_location_is_checked_and_audited(session, world) -> None:
    saved = lots.update_location(session, world["level1"], "43.4762", -80.5478, actor_id=None)
    assert (saved.lot.latitude, saved.lot.longitude) == (43.4762, -80.5478)
    assert saved.announce_groups == ()
    assert _audits(session)[-1].changes == {"latitude": [None, 43.4762], "longitude": [None, -80.5478]}
    cleared = lots.update_location(session, world["level1"], "", None, actor_id=None)
    assert (cleared.lot.latitude, cleared.lot.longitude) == (None, None)


@pytest.mark.parametrize(
    ("lat", "lon", "field", "message"),
    [
        (91, 0, "latitude", "between -90 and 90"),
        (0, -180.5, "longitude", "between -180 and 180"),
        ("north", 0, "latitude", "decimal degrees"),
        (43.4, None, "longitude", "both latitude and longitude"),
        (None, -80.5, "latitude", "both latitude and longitude"),
    ],
)
def test_bad_locations_are_refused(session, world, lat, lon, field, message) -> None:
    with pytest.raises(ValidationFailed) as refused:
        lots.update_location(session, world["level1"], lat, lon, actor_id=None)
    assert message in refused.value.errors[field]


# --- Permits & Prices -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "cents"),
    [("265", 26500), ("265.5", 26550), ("$1,200.00", 120000), ("0", 0), (3, 300), (2.25, 225), (" 0.01 ", 1)],
)
def test_dollars_to_cents(typed, cents) -> None:
    assert lots.parse_dollars(typed) == cents


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "enter a price"),
        (None, "enter a price"),
        ("-1", "cannot be negative"),
        ("1.005", "at most two decimals"),
        ("abc", "e.g. 265.00"),
        ("NaN", "e.g. 265.00"),
        ("1000000.01", "at most"),
        ("1e999999999", "at most"),  # finite, but a hundred times it leaves Decimal's range
        ("1e-999999999", "at most two decimals"),
    ],
)
def test_bad_prices(typed, message) -> None:
    with pytest.raises(ValueError, match=message):
        lots.parse_dollars(typed)


def test_cents_to_dollars() -> None:
    assert [lots.format_dollars(c) for c in (0, 5, 26500, 120000)] == ["0.00", "0.05", "265.00", "1200.00"]


def _types(session: Session) -> dict[str, int]:
    return {t.code: t.id for t in session.scalars(select(UserType))}


def test_add_a_standard_product(session, world) -> None:
    types = _types(session)
    view = lots.save_product(
        session,
        world["level1"],
        None,
        ProductFields(
            kind="standard",
            name="Winter Term",
            pricing="hourly",  # ignored: a standard permit is priced per term
            price="245.50",
            term_start="2027-01-01",
            term_end="2027-04-30",
            max_duration_minutes=60,
            user_type_ids=[str(types["student"]), types["staff"]],
        ),
        actor_id=None,
    )
    session.commit()
    assert (view.kind, view.pricing, view.price_cents, view.price) == (
        PermitKind.STANDARD,
        Pricing.TERM,
        24550,
        "245.50",
    )
    assert (view.term_start, view.term_end, view.max_duration_minutes) == (
        date(2027, 1, 1),
        date(2027, 4, 30),
        None,
    )
    assert view.user_type_names == ("Staff", "Student") and view.kind_sold and view.is_active
    assert view.price_label == "$245.50 CAD per term"
    entry = _audits(session, "permit_product")[0]
    assert entry.action == "permit_product.add"
    assert entry.changes["price_cents"] == [None, 24550]
    assert entry.changes["eligible_user_types"] == [[], ["staff", "student"]]
    assert entry.changes["lot_id"] == [None, world["level1"]]


def test_add_a_temporary_product_to_a_lot_that_does_not_sell_them_is_flagged(session, world) -> None:
    view = lots.save_product(
        session,
        world["level1"],
        None,
        ProductFields(
            kind="temporary", name="Hourly", pricing="hourly", price="3", max_duration_minutes="240"
        ),
        actor_id=None,
    )
    assert (view.pricing, view.price_cents, view.max_duration_minutes) == (Pricing.HOURLY, 300, 240)
    assert view.term_start is None and view.user_type_ids == ()
    assert not view.kind_sold
    listed = lots.list_products(session, world["level1"])
    assert [(p.name, p.kind_sold) for p in listed] == [("Fall Term", True), ("Hourly", False)]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kind": "season"}, "kind", "standard or temporary"),
        ({"name": ""}, "name", "enter the product's name"),
        ({"name": "fall term"}, "name", "already has a product with this name"),
        ({"price": "-2"}, "price", "cannot be negative"),
        ({"price": "2.001"}, "price", "two decimals"),
        ({"term_start": ""}, "term_start", "choose a date"),
        ({"term_end": "30/04/2027"}, "term_end", "YYYY-MM-DD"),
        ({"term_end": "2026-12-31"}, "term_end", "on or after the term start"),
        ({"user_type_ids": []}, "user_type_ids", "at least one user type"),
        ({"user_type_ids": [999]}, "user_type_ids", "from the list"),
        ({"kind": "temporary", "pricing": "term"}, "pricing", "hourly, daily or fixed"),
        ({"kind": "temporary", "max_duration_minutes": ""}, "max_duration_minutes", "how long"),
        ({"kind": "temporary", "max_duration_minutes": 0}, "max_duration_minutes", "at least 1 minute"),
        ({"kind": "temporary", "max_duration_minutes": "1.5"}, "max_duration_minutes", "whole number"),
    ],
)
def test_product_fields_are_checked(session, world, fields, field, message) -> None:
    base = {
        "kind": "standard",
        "name": "Winter Term",
        "pricing": "daily",
        "price": "10",
        "term_start": "2027-01-01",
        "term_end": "2027-04-30",
        "max_duration_minutes": 60,
        "user_type_ids": list(_types(session).values()),
    }
    with pytest.raises(ValidationFailed) as refused:
        lots.save_product(session, world["level1"], None, ProductFields(**{**base, **fields}), actor_id=None)
    assert message in refused.value.errors[field]
    session.rollback()
    assert len(lots.list_products(session, world["level1"])) == 1


def test_edit_a_product_audits_what_changed_only(session, world) -> None:
    product_id = lots.list_products(session, world["level1"])[0].id
    fields = ProductFields(
        kind="standard",
        name="Fall Term",
        pricing="term",
        price="270.00",
        term_start=date(2026, 9, 1),
        term_end=date(2026, 12, 31),
        user_type_ids=[_types(session)["staff"]],
    )
    view = lots.save_product(session, world["level1"], product_id, fields, actor_id=None)
    again = lots.save_product(session, world["level1"], product_id, fields, actor_id=None)
    session.commit()
    assert view.price_cents == again.price_cents == 27000
    entries = _audits(session, "permit_product")
    assert len(entries) == 1 and entries[0].action == "permit_product.update"
    assert entries[0].changes["price_cents"] == [26500, 27000]
    assert entries[0].changes["term_start"] == [None, "2026-09-01"]
    assert "name" not in entries[0].changes


def test_deactivate_and_reactivate_a_product(session, world) -> None:
    product_id = lots.list_products(session, world["level1"])[0].id
    off = lots.set_product_active(session, world["level1"], product_id, False, actor_id=None)
    lots.set_product_active(session, world["level1"], product_id, False, actor_id=None)
    on = lots.set_product_active(session, world["level1"], product_id, True, actor_id=None)
    assert (off.is_active, on.is_active) == (False, True)
    assert [e.action for e in _audits(session, "permit_product")] == [
        "permit_product.deactivate",
        "permit_product.activate",
    ]


def test_a_product_of_another_lot_is_not_found(session, world) -> None:
    product_id = lots.list_products(session, world["level1"])[0].id
    with pytest.raises(NotFound):
        lots.set_product_active(session, world["visitor"], product_id, False, actor_id=None)
    with pytest.raises(NotFound):
        lots.get_product(session, world["visitor"], product_id)


# --- Zones by days --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "mask", "label"),
    [
        (range(7), "1111111", "Every day"),
        ([0, 1, 2, 3, 4], "1111100", "Mon–Fri"),
        (["5", "6"], "0000011", "Sat, Sun"),
        ([0, 2, 4], "1010100", "Mon, Wed, Fri"),
        ([], "0000000", "No days"),
        ([7, -1, "x"], "0000000", "No days"),
    ],
)
def test_days_mask_and_label(days, mask, label) -> None:
    assert lots.days_mask(days) == mask
    assert lots.days_label(mask) == label


def test_add_list_and_delete_a_zone_schedule(session, world) -> None:
    added = lots.add_schedule(
        session, world["level1"], str(world["zone"]), [0, 1, 2, 3, 4], "07:00", "18:00", None
    )
    session.commit()
    assert (added.days, added.start_time, added.end_time) == ("1111100", time(7, 0), time(18, 0))
    assert added.summary == "1001: Mon–Fri, 07:00 until 18:00:59"
    assert [s.id for s in lots.list_schedules(session, world["level1"])] == [added.id]
    assert lots.list_lots(session, NOW)[0].zone_names == ("1001",)

    removed = lots.delete_schedule(session, world["level1"], added.id, None)
    session.commit()
    assert removed.id == added.id and lots.list_schedules(session, world["level1"]) == []
    assert [(e.action, e.changes) for e in _audits(session)] == [
        ("lot.zone_schedule.add", {"zone_schedule": [None, "1001: Mon–Fri, 07:00 until 18:00:59"]}),
        ("lot.zone_schedule.delete", {"zone_schedule": ["1001: Mon–Fri, 07:00 until 18:00:59", None]}),
    ]


@pytest.mark.parametrize(
    ("zone", "days", "start", "end", "field", "message"),
    [
        (None, range(7), "00:00", "23:59", "zone_id", "choose a zone"),
        ("999", range(7), "00:00", "23:59", "zone_id", "choose a zone"),
        ("abc", range(7), "00:00", "23:59", "zone_id", "choose a zone"),
        ("ZONE", [], "00:00", "23:59", "days", "at least one day"),
        ("ZONE", range(7), "7:00", "23:59", "start_time", "HH:MM"),
        ("ZONE", range(7), "24:00", "23:59", "start_time", "HH:MM"),
        ("ZONE", range(7), "00:00", "23:60", "end_time", "HH:MM"),
        ("ZONE", range(7), "", "23:59", "start_time", "HH:MM"),
        ("ZONE", range(7), "18:00", "07:00", "end_time", "after the start time"),
        ("ZONE", range(7), "08:00", "08:00", "end_time", "after the start time"),
        ("ZONE", range(7), "00:00", "23:59", "zone_id", "already has this zone"),
    ],
)
def test_zone_schedules_are_checked(session, world, zone, days, start, end, field, message) -> None:
    zone_id = world["zone"] if zone == "ZONE" else zone
    with pytest.raises(ValidationFailed) as refused:
        lots.add_schedule(session, world["visitor"], zone_id, days, start, end, None)
    assert message in refused.value.errors[field]


def test_a_schedule_of_another_lot_is_not_found(session, world) -> None:
    schedule_id = lots.list_schedules(session, world["visitor"])[0].id
    with pytest.raises(NotFound):
        lots.delete_schedule(session, world["level1"], schedule_id, None)
    with pytest.raises(NotFound):
        lots.list_schedules(session, 9999)


def test_editing_a_temporary_product_keeps_its_user_types(session, world) -> None:
    """The demo seeds temporary products for every user type; the form does not show that rule
    for temporary permits, so an edit must not silently clear it."""
    product = PermitProduct(
        lot_id=world["visitor"],
        kind=PermitKind.TEMPORARY,
        name="Hourly",
        pricing=Pricing.HOURLY,
        price_cents=300,
        max_duration_minutes=240,
        eligible_user_types=list(session.scalars(select(UserType))),
    )
    session.add(product)
    session.commit()
    fields = ProductFields(
        kind="temporary", name="Hourly", pricing="hourly", price="3.50", max_duration_minutes=240
    )
    view = lots.save_product(session, world["visitor"], product.id, fields, actor_id=None)
    assert view.price_cents == 350 and view.user_type_names == ("Staff", "Student")
    assert view.kind_sold
    assert _audits(session, "permit_product")[0].changes == {"price_cents": [300, 350]}


def test_a_new_product_is_priced_in_the_sites_currency_and_an_old_one_keeps_its_own(
    session, world, core
) -> None:
    from dashboard.services import system_settings

    system_settings.update(session, core.secrets, {"currency": "USD"}, actor_id=None)
    fields = ProductFields(
        kind="temporary", name="Hourly", pricing="hourly", price="3", max_duration_minutes="240"
    )
    view = lots.save_product(session, world["level1"], None, fields, actor_id=None)
    assert view.currency == "USD" and "USD" in view.price_label
    system_settings.update(session, core.secrets, {"currency": "EUR"}, actor_id=None)
    edited = lots.save_product(session, world["level1"], view.id, fields, actor_id=None)
    assert edited.currency == "USD"
