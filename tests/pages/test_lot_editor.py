"""Lot Administration and the lot editor over HTTP, as the browser calls them.

Managers see the list (no edit links); users and officers get nothing; only admins load or save
the editor's tabs. A General save is stored, audited and announced on the occupancy channel;
products are priced in dollars and stored in cents; zones are put on the lot by days."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from dashboard.auth import PAGES_ROUTER_OUTPUT
from dashboard.services import demo
from dashboard.services.occupancy import CHANNEL
from models import (
    AuditLog,
    Lot,
    LotGroup,
    LotZone,
    LotZoneSchedule,
    Permit,
    PermitKind,
    PermitProduct,
    Pricing,
    Role,
    UserType,
)
from tests.dash_helpers import dash_app, dash_post, find_output, outputs_of, press

LIST = "lots-table.children"
LOAD = "lotedit-title.children"
SAVE = "lotedit-general-status.children"
PRODUCTS = "lotedit-products.children"
PRODUCT_ACTION = "lotedit-product-flash.children"
KIND_FIELDS = "lotedit-product-standard.style"
ZONES = "lotedit-schedules.children"
ZONE_ACTION = "lotedit-zone-status.children"
LOCATION = "lotedit-location-status.children"
REFUSED = [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403), (Role.MANAGER, 403)]


@pytest.fixture
def world(session) -> dict[str, int]:
    north = LotGroup(name="North Garage")
    south = LotGroup(name="South Lots")
    level1 = Lot(name="North Level 1", code="N1", capacity=250, permits_allowed=280, lot_group=north)
    retired = Lot(name="Old Annex", capacity=10, is_active=False)
    session.add_all([north, south, level1, retired, LotZone(name="1001"), LotZone(name="Visitor")])
    session.add_all([UserType(code="student", name="Student"), UserType(code="staff", name="Staff")])
    session.flush()
    session.add(
        PermitProduct(
            lot_id=level1.id,
            kind=PermitKind.STANDARD,
            name="Fall Term",
            pricing=Pricing.TERM,
            price_cents=26500,
            term_start=date(2026, 9, 1),
            term_end=date(2026, 12, 31),
        )
    )
    now = datetime.now(UTC)
    session.add(
        Permit(
            number="P-1",
            kind=PermitKind.STANDARD,
            lot_id=level1.id,
            valid_from=now - timedelta(days=1),
            valid_to=now + timedelta(days=1),
        )
    )
    session.commit()
    zones = {zone.name: zone.id for zone in session.scalars(select(LotZone))}
    types = {t.code: t.id for t in session.scalars(select(UserType))}
    return {
        "north": north.id,
        "south": south.id,
        "level1": level1.id,
        "retired": retired.id,
        "zone": zones["1001"],
        "student": types["student"],
        "staff": types["staff"],
    }


def _audits(session, entity_type: str) -> list[AuditLog]:
    session.expire_all()
    return list(
        session.scalars(select(AuditLog).where(AuditLog.entity_type == entity_type).order_by(AuditLog.id))
    )


def _text_of(outputs: Any) -> str:
    return json.dumps(outputs, ensure_ascii=False)


def _text(response: Any) -> str:
    return json.dumps(outputs_of(response), ensure_ascii=False)


# --- pages ----------------------------------------------------------------------------------


def test_the_list_is_for_managers_and_the_editor_for_admins(login_as, world) -> None:
    assert login_as(Role.GUEST).get("/admin/lots").status_code == 302
    assert login_as(Role.OFFICER).get("/admin/lots").status_code == 403
    page = login_as(Role.MANAGER).get("/admin/lots")
    assert page.status_code == 200 and b"North Level 1" not in page.data  # no data in the layout
    manager = login_as(Role.MANAGER)
    assert manager.get(f"/admin/lots/{world['level1']}").status_code == 403
    assert manager.get("/admin/lots/new").status_code == 403
    admin = login_as(Role.ADMIN)
    editor = admin.get(f"/admin/lots/{world['level1']}")
    assert editor.status_code == 200 and b"North Level 1" not in editor.data
    assert admin.get("/admin/lots/new").status_code == 200


# --- the list -------------------------------------------------------------------------------


def refresh_list(client, app, query: str | None = None, inactive: bool = True) -> Any:
    return dash_post(client, app, find_output(app, LIST), [query, inactive])


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403)])
def test_lower_roles_get_no_lots(app, login_as, world, role, status) -> None:
    response = refresh_list(login_as(role), app)
    assert response.status_code == status
    assert b"North Level 1" not in response.data


def test_a_manager_sees_the_lots_without_edit_links(app, login_as, world) -> None:
    table = _text(refresh_list(login_as(Role.MANAGER), app))
    assert "North Level 1" in table and "North Garage" in table and "Old Annex" in table
    assert "/admin/lots/" not in table and "Add lot" not in table and "Manage Lot Zones" not in table
    assert "(+30)" in table  # permits allowed above capacity, on purpose
    assert "2 of 2 lot(s)" in table


def test_an_admin_gets_links_and_the_add_button(app, login_as, world) -> None:
    table = _text(refresh_list(login_as(Role.ADMIN), app))
    assert f'"/admin/lots/{world["level1"]}"' in table
    assert '"/admin/lots/new"' in table and '"/admin/lot-zones"' in table


def test_the_list_shows_sold_permits(app, login_as, world) -> None:
    response = outputs_of(refresh_list(login_as(Role.MANAGER), app))
    row = json.dumps(response["lots-table"]["children"])
    # North Level 1: capacity 250, allowed 280, one valid permit sold, one active product.
    assert '"children": 250' in row and '"children": 1' in row


def test_search_and_inactive_filter(app, login_as, world) -> None:
    manager = login_as(Role.MANAGER)
    found = _text(refresh_list(manager, app, "north garage"))
    assert "North Level 1" in found and "Old Annex" not in found and "1 of 2 lot(s)" in found
    assert "No lot matches" in _text(refresh_list(manager, app, "nothing like it"))
    active = _text(refresh_list(manager, app, None, inactive=False))
    assert "Old Annex" not in active and "North Level 1" in active


def test_the_demo_campus_lists_well(app, core, login_as, tmp_path) -> None:
    with core.db.session() as session:
        demo.seed_demo(session, core.secrets, tmp_path)
    table = _text(refresh_list(login_as(Role.ADMIN), app))
    assert f"{len(demo.LOTS)} of {len(demo.LOTS)} lot(s)" in table
    assert "Lot CX Overflow" in table and "Columbia Street Lots" in table
    assert "1001" in table and "Temporary" in table


# --- General --------------------------------------------------------------------------------


def load(client, app, lot_id: Any) -> Any:
    return dash_post(client, app, find_output(app, LOAD), [str(lot_id), 0])


def general(**changes: Any) -> dict[str, Any]:
    base = {
        "lotedit-save": 1,
        "lotedit-name": "North Level 1",
        "lotedit-code": "N1",
        "lotedit-description": "",
        "lotedit-address": "",
        "lotedit-group": None,
        "lotedit-capacity": "250",
        "lotedit-allowed": "280",
        "lotedit-active": True,
        "lotedit-sells": ["standard"],
        "lotedit-version": 0,
    }
    base.update({f"lotedit-{key}": value for key, value in changes.items()})
    return base


@pytest.mark.parametrize(("role", "status"), REFUSED)
def test_only_admins_load_the_editor(app, login_as, world, role, status) -> None:
    response = load(login_as(role), app, world["level1"])
    assert response.status_code == status
    assert b"North Level 1" not in response.data


def test_the_editor_loads_the_lot(app, login_as, world) -> None:
    loaded = outputs_of(load(login_as(Role.ADMIN), app, world["level1"]))
    assert loaded["lotedit-title"]["children"] == "Lot: North Level 1"
    assert loaded["lotedit-name"]["value"] == "North Level 1"
    assert loaded["lotedit-group"]["value"] == str(world["north"])
    assert [o["label"] for o in loaded["lotedit-group"]["options"]] == [
        "None (not on the real-time maps)",
        "North Garage",
        "South Lots",
    ]
    assert (loaded["lotedit-capacity"]["value"], loaded["lotedit-allowed"]["value"]) == ("250", "280")
    assert loaded["lotedit-sells"]["value"] == ["standard"]
    assert loaded["lotedit-latitude"]["value"] == ""


def test_new_and_missing_lots(app, login_as, world) -> None:
    admin = login_as(Role.ADMIN)
    blank = outputs_of(load(admin, app, "new"))
    assert blank["lotedit-title"]["children"] == "Add lot"
    assert (blank["lotedit-name"]["value"], blank["lotedit-group"]["value"]) == ("", "none")
    missing = outputs_of(load(admin, app, 9999))
    assert missing["lotedit-title"]["children"] == "Lot not found"
    assert "There is no such lot" in json.dumps(missing["lotedit-missing"])
    assert "lotedit-name" not in missing


@pytest.mark.parametrize(("role", "status"), REFUSED)
def test_only_admins_save_a_lot(app, login_as, session, world, role, status) -> None:
    values = general(id=str(world["level1"]), capacity="10")
    response = press(login_as(role), app, SAVE, "lotedit-save", values)
    assert response.status_code == status
    session.expire_all()
    assert session.get(Lot, world["level1"]).capacity == 250
    assert _audits(session, "lot") == []


def test_an_admin_saves_and_the_maps_are_told(app, core, login_as, session, world) -> None:
    admin = login_as(Role.ADMIN)
    pubsub = core.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    try:
        values = general(id=str(world["level1"]), group=str(world["north"]), capacity="300", allowed="")
        saved = outputs_of(press(admin, app, SAVE, "lotedit-save", values))
        message = pubsub.get_message(timeout=1) or pubsub.get_message(timeout=1)
    finally:
        pubsub.close()
    assert "North Level 1 saved. The real-time maps were told." in json.dumps(saved)
    assert saved["lotedit-version"]["data"] == 1
    session.expire_all()
    lot = session.get(Lot, world["level1"])
    assert (lot.capacity, lot.permits_allowed, lot.allowance) == (300, None, 300)
    entry = _audits(session, "lot")[0]
    assert (entry.action, entry.actor_id) == ("lot.update", admin.user.id)
    assert entry.changes == {"capacity": [250, 300], "permits_allowed": [280, None]}
    assert message is not None
    assert json.loads(message["data"])["group_id"] == world["north"]


def test_moving_to_no_group_and_selling_temporary(app, login_as, session, world) -> None:
    values = general(id=str(world["level1"]), group="none", sells=["standard", "temporary"])
    press(login_as(Role.ADMIN), app, SAVE, "lotedit-save", values)
    session.expire_all()
    lot = session.get(Lot, world["level1"])
    assert lot.lot_group_id is None and lot.sells_standard and lot.sells_temporary


def test_field_problems_are_listed_with_their_labels(app, login_as, session, world) -> None:
    values = general(id=str(world["level1"]), name="", capacity="-3", allowed="many", code="")
    refused = outputs_of(press(login_as(Role.ADMIN), app, SAVE, "lotedit-save", values))
    text = json.dumps(refused)
    assert "Not saved:" in text
    assert "Name: enter the lot's name" in text
    assert "Capacity: cannot be negative" in text
    assert "Permits allowed: enter a whole number" in text
    assert "lotedit-version" not in refused
    session.expire_all()
    assert session.get(Lot, world["level1"]).name == "North Level 1"


def test_an_unchanged_save_says_so(app, login_as, world) -> None:
    values = general(id=str(world["level1"]), group=str(world["north"]))
    text = _text(press(login_as(Role.ADMIN), app, SAVE, "lotedit-save", values))
    assert "Nothing to save" in text


def test_adding_a_lot_opens_its_editor(app, login_as, session, world) -> None:
    values = general(
        id="new", name="Lot E1", code="E1", group=str(world["south"]), capacity="320", allowed=""
    )
    added = outputs_of(press(login_as(Role.ADMIN), app, SAVE, "lotedit-save", values))
    lot = session.scalars(select(Lot).where(Lot.name == "Lot E1")).one()
    assert added["lotedit-url"]["href"] == f"/admin/lots/{lot.id}?created=1"
    assert lot.lot_group_id == world["south"] and lot.capacity == 320
    assert _audits(session, "lot")[0].action == "lot.create"


# --- Permits & Prices -----------------------------------------------------------------------


def products(client, app, lot_id: Any) -> Any:
    return dash_post(client, app, find_output(app, PRODUCTS), [str(lot_id), 0, 0])


def product_form(lot_id: int, **changes: Any) -> dict[str, Any]:
    base = {
        "lotedit-id": str(lot_id),
        "lotedit-product-editing": None,
        "lotedit-product-kind": "standard",
        "lotedit-product-name": "Winter Term",
        "lotedit-product-price": "245.50",
        "lotedit-product-term-start": "2027-01-01",
        "lotedit-product-term-end": "2027-04-30",
        "lotedit-product-types": [],
        "lotedit-product-pricing": "hourly",
        "lotedit-product-minutes": "",
        "lotedit-product-version": 0,
    }
    base.update({f"lotedit-product-{key}": value for key, value in changes.items()})
    return base


def _product_id(session, lot_id: int) -> int:
    return session.scalars(select(PermitProduct.id).where(PermitProduct.lot_id == lot_id)).first()


@pytest.mark.parametrize(("role", "status"), REFUSED)
def test_only_admins_see_or_change_products(app, login_as, session, world, role, status) -> None:
    client = login_as(role)
    listed = products(client, app, world["level1"])
    assert listed.status_code == status and b"Fall Term" not in listed.data
    values = product_form(world["level1"], types=[world["staff"]])
    assert press(client, app, PRODUCT_ACTION, "lotedit-product-save", values).status_code == status
    button = {"product": _product_id(session, world["level1"]), "type": "lotedit-product-toggle"}
    toggled = press(
        client,
        app,
        PRODUCT_ACTION,
        button,
        product_form(world["level1"]),
        {"lotedit-product-toggle": [button]},
    )
    assert toggled.status_code == status
    session.expire_all()
    assert session.scalar(select(func.count(PermitProduct.id))) == 1
    assert all(p.is_active for p in session.scalars(select(PermitProduct)))
    assert press(client, app, KIND_FIELDS, "x", {"lotedit-product-kind": "temporary"}).status_code == status


def test_products_show_dollars_and_flag_a_kind_the_lot_does_not_sell(app, login_as, session, world) -> None:
    session.add(
        PermitProduct(
            lot_id=world["level1"],
            kind=PermitKind.TEMPORARY,
            name="Hourly",
            pricing=Pricing.HOURLY,
            price_cents=300,
            max_duration_minutes=240,
        )
    )
    session.commit()
    listed = outputs_of(products(login_as(Role.ADMIN), app, world["level1"]))
    table = json.dumps(listed["lotedit-products"])
    assert "$265.00 CAD per term" in table and "2026-09-01 to 2026-12-31" in table
    assert "$3.00 CAD per hour" in table and "up to 4 h" in table
    assert table.count("lot does not sell") == 1 and "lot does not sell temporary permits" in table
    assert [o["label"] for o in listed["lotedit-product-types"]["options"]] == ["Staff", "Student"]


def test_an_admin_adds_a_standard_product_in_dollars(app, login_as, session, world) -> None:
    values = product_form(world["level1"], types=[world["student"], world["staff"]])
    added = outputs_of(press(login_as(Role.ADMIN), app, PRODUCT_ACTION, "lotedit-product-save", values))
    assert added["lotedit-product-flash"]["children"] == "Winter Term added: $245.50 CAD per term."
    assert added["lotedit-product-version"]["data"] == 1
    assert added["lotedit-product-name"]["value"] == ""  # the form is cleared for the next one
    product = session.scalars(select(PermitProduct).where(PermitProduct.name == "Winter Term")).one()
    assert (product.price_cents, product.pricing, product.term_end) == (
        24550,
        Pricing.TERM,
        date(2027, 4, 30),
    )
    assert sorted(t.code for t in product.eligible_user_types) == ["staff", "student"]
    assert _audits(session, "permit_product")[0].action == "permit_product.add"


def test_an_admin_adds_a_temporary_product(app, login_as, session, world) -> None:
    values = product_form(
        world["level1"], kind="temporary", name="Daily", pricing="daily", price="15", minutes="1440"
    )
    press(login_as(Role.ADMIN), app, PRODUCT_ACTION, "lotedit-product-save", values)
    product = session.scalars(select(PermitProduct).where(PermitProduct.name == "Daily")).one()
    assert (product.kind, product.pricing, product.price_cents, product.max_duration_minutes) == (
        PermitKind.TEMPORARY,
        Pricing.DAILY,
        1500,
        1440,
    )
    assert product.term_start is None and product.eligible_user_types == []


def test_product_problems_are_listed_and_the_form_is_kept(app, login_as, session, world) -> None:
    values = product_form(world["level1"], price="12.345", name="fall term", **{"term-end": "2026-01-01"})
    refused = outputs_of(press(login_as(Role.ADMIN), app, PRODUCT_ACTION, "lotedit-product-save", values))
    text = json.dumps(refused["lotedit-product-status"])
    assert "Price: at most two decimals (whole cents)" in text
    assert "Name: this lot already has a product with this name" in text
    assert "Term end: must be on or after the term start" in text
    assert "Eligible user types: tick at least one user type" in text
    assert "lotedit-product-name" not in refused and "lotedit-product-version" not in refused
    assert session.scalar(select(func.count(PermitProduct.id))) == 1


def test_edit_fills_the_form_and_saves_the_product(app, login_as, session, world) -> None:
    admin = login_as(Role.ADMIN)
    product_id = _product_id(session, world["level1"])
    button = {"product": product_id, "type": "lotedit-product-edit"}
    opened = outputs_of(
        press(
            admin,
            app,
            PRODUCT_ACTION,
            button,
            product_form(world["level1"]),
            {"lotedit-product-edit": [button]},
        )
    )
    assert opened["lotedit-product-editing"]["data"] == product_id
    assert opened["lotedit-product-price"]["value"] == "265.00"
    assert opened["lotedit-product-term-start"]["date"] == "2026-09-01"
    assert opened["lotedit-product-save"]["children"] == "Save product"

    values = product_form(
        world["level1"],
        editing=product_id,
        name="Fall Term",
        price="270",
        **{"term-start": "2026-09-01", "term-end": "2026-12-31"},
        types=[world["staff"]],
    )
    saved = outputs_of(press(admin, app, PRODUCT_ACTION, "lotedit-product-save", values))
    assert saved["lotedit-product-flash"]["children"] == "Fall Term saved: $270.00 CAD per term."
    session.expire_all()
    assert session.get(PermitProduct, product_id).price_cents == 27000
    assert _audits(session, "permit_product")[0].changes["price_cents"] == [26500, 27000]


def test_a_rerendered_button_is_no_click(app, login_as, session, world) -> None:
    button = {"product": _product_id(session, world["level1"]), "type": "lotedit-product-toggle"}
    response = press(
        login_as(Role.ADMIN),
        app,
        PRODUCT_ACTION,
        button,
        product_form(world["level1"]),
        {"lotedit-product-toggle": [button]},
        clicks=0,
    )
    assert "lotedit-product-flash" not in outputs_of(response)
    session.expire_all()
    assert session.get(PermitProduct, button["product"]).is_active


def test_deactivate_a_product(app, login_as, session, world) -> None:
    button = {"product": _product_id(session, world["level1"]), "type": "lotedit-product-toggle"}
    rows = {"lotedit-product-toggle": [button]}
    done = outputs_of(
        press(login_as(Role.ADMIN), app, PRODUCT_ACTION, button, product_form(world["level1"]), rows)
    )
    assert "Fall Term is no longer sold" in done["lotedit-product-flash"]["children"]
    session.expire_all()
    assert not session.get(PermitProduct, button["product"]).is_active
    assert _audits(session, "permit_product")[0].action == "permit_product.deactivate"


def test_the_kind_shows_its_own_fields(app, login_as) -> None:
    admin = login_as(Role.ADMIN)
    temporary = outputs_of(dash_post(admin, app, find_output(app, KIND_FIELDS), ["temporary"]))
    assert temporary["lotedit-product-standard"]["style"] == {"display": "none"}
    assert temporary["lotedit-product-temporary"]["style"] == {}
    standard = outputs_of(dash_post(admin, app, find_output(app, KIND_FIELDS), ["standard"]))
    assert standard["lotedit-product-temporary"]["style"] == {"display": "none"}


# --- Zones & Location -----------------------------------------------------------------------


def zones(client, app, lot_id: Any) -> Any:
    return dash_post(client, app, find_output(app, ZONES), [str(lot_id), 0])


def zone_form(lot_id: int, **changes: Any) -> dict[str, Any]:
    base = {
        "lotedit-id": str(lot_id),
        "lotedit-zone": None,
        "lotedit-zone-days": list(range(7)),
        "lotedit-zone-start": "00:00",
        "lotedit-zone-end": "23:59",
        "lotedit-zone-version": 0,
    }
    base.update({f"lotedit-{key}": value for key, value in changes.items()})
    return base


@pytest.mark.parametrize(("role", "status"), REFUSED)
def test_only_admins_see_or_change_zones_and_location(app, login_as, session, world, role, status) -> None:
    client = login_as(role)
    listed = zones(client, app, world["level1"])
    assert listed.status_code == status and b"1001" not in listed.data
    added = press(
        client, app, ZONE_ACTION, "lotedit-zone-add", zone_form(world["level1"], zone=str(world["zone"]))
    )
    assert added.status_code == status
    values = {"lotedit-id": str(world["level1"]), "lotedit-latitude": "43.47", "lotedit-longitude": "-80.54"}
    assert press(client, app, LOCATION, "lotedit-location-save", values).status_code == status
    session.expire_all()
    assert session.scalar(select(func.count(LotZoneSchedule.id))) == 0
    assert session.get(Lot, world["level1"]).latitude is None


def test_add_a_zone_by_days_with_the_defaults_then_delete_it(app, login_as, session, world) -> None:
    admin = login_as(Role.ADMIN)
    empty = outputs_of(zones(admin, app, world["level1"]))
    assert "No zones on this lot." in json.dumps(empty)
    assert [o["label"] for o in empty["lotedit-zone"]["options"]] == ["1001", "Visitor"]

    added = outputs_of(
        press(
            admin, app, ZONE_ACTION, "lotedit-zone-add", zone_form(world["level1"], zone=str(world["zone"]))
        )
    )
    assert "Added 1001: Every day, 00:00 until 23:59:59." in _text_of(added)
    assert added["lotedit-zone-version"]["data"] == 1
    schedule = session.scalars(select(LotZoneSchedule)).one()
    assert (schedule.lot_id, schedule.days) == (world["level1"], "1111111")

    listed = _text(zones(admin, app, world["level1"]))
    assert "Every day" in listed and "00:00 until 23:59:59" in listed

    button = {"schedule": schedule.id, "type": "lotedit-schedule-delete"}
    removed = press(
        admin, app, ZONE_ACTION, button, zone_form(world["level1"]), {"lotedit-schedule-delete": [button]}
    )
    assert "Removed 1001" in _text(removed)
    session.expire_all()
    assert session.scalar(select(func.count(LotZoneSchedule.id))) == 0
    assert [e.action for e in _audits(session, "lot")] == [
        "lot.zone_schedule.add",
        "lot.zone_schedule.delete",
    ]


def test_the_zone_form_says_the_end_minute_is_included(app, login_as, world) -> None:
    router = next(key for key in dash_app(app).callback_map if PAGES_ROUTER_OUTPUT in key)
    page = json.dumps(
        dash_post(login_as(Role.ADMIN), app, router, [f"/admin/lots/{world['level1']}", ""]).json
    )
    assert "The end minute is included: 07:00 to 18:00 runs until 18:00:59" in page


def test_weekday_hours_are_stored_as_a_mask(app, login_as, session, world) -> None:
    values = zone_form(world["level1"], zone=str(world["zone"]), **{"zone-days": [0, 1, 2, 3, 4]})
    values.update({"lotedit-zone-start": "07:00", "lotedit-zone-end": "18:00"})
    text = _text(press(login_as(Role.ADMIN), app, ZONE_ACTION, "lotedit-zone-add", values))
    assert "Mon–Fri, 07:00 until 18:00:59" in text  # the end minute is included
    schedule = session.scalars(select(LotZoneSchedule)).one()
    assert schedule.days == "1111100" and f"{schedule.start_time:%H:%M}" == "07:00"


def test_zone_problems_are_listed(app, login_as, session, world) -> None:
    values = zone_form(world["level1"], **{"zone-days": []})
    values.update({"lotedit-zone-start": "18:00", "lotedit-zone-end": "7:00"})
    refused = outputs_of(press(login_as(Role.ADMIN), app, ZONE_ACTION, "lotedit-zone-add", values))
    text = json.dumps(refused)
    assert "Zone: choose a zone" in text
    assert "Days: choose at least one day" in text
    assert "End time: enter a time as HH:MM" in text
    assert "lotedit-zone-version" not in refused

    values = zone_form(world["level1"], zone=str(world["zone"]))
    values.update({"lotedit-zone-start": "18:00", "lotedit-zone-end": "07:00"})
    text = _text(press(login_as(Role.ADMIN), app, ZONE_ACTION, "lotedit-zone-add", values))
    assert "End time: must be after the start time" in text
    assert session.scalar(select(func.count(LotZoneSchedule.id))) == 0


def test_location_is_saved_and_checked(app, login_as, session, world) -> None:
    admin = login_as(Role.ADMIN)
    values = {
        "lotedit-id": str(world["level1"]),
        "lotedit-latitude": "43.4762",
        "lotedit-longitude": "-80.5478",
    }
    assert "Location saved: 43.4762, -80.5478." in _text(
        press(admin, app, LOCATION, "lotedit-location-save", values)
    )
    session.expire_all()
    assert session.get(Lot, world["level1"]).latitude == 43.4762
    values["lotedit-latitude"] = "95"
    assert "Latitude: must be between -90 and 90" in _text(
        press(admin, app, LOCATION, "lotedit-location-save", values)
    )


def test_no_zones_yet_points_to_manage_lot_zones(app, login_as, session, world) -> None:
    session.query(LotZone).delete()
    session.commit()
    listed = json.dumps(outputs_of(zones(login_as(Role.ADMIN), app, world["level1"])))
    assert "No zones exist yet" in listed and '"/admin/lot-zones"' in listed
