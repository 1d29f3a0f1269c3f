"""Offence Types (/admin/offence-types) over HTTP: an admin adds a type; Apply Discount is greyed
out and forced off while Apply Boot is on; the Apply Boot switch is hidden with boots off."""

from __future__ import annotations

import json

from sqlalchemy import select

from models import OffenceType, Role
from tests.dash_helpers import dash_post, find_output, outputs_of, press
from tests.enforcement import enable_boots


def test_an_admin_adds_an_offence_type(app, login_as, core):
    admin = login_as(Role.ADMIN)
    assert admin.get("/admin/offence-types").status_code == 200
    values = {
        "offence-which": "new",
        "offence-code": "ovt",
        "offence-name": "Overtime parking",
        "offence-fine": "30",
        "offence-apply-boot": False,
        "offence-apply-discount": True,
        "offence-discount-percent": 50,
        "offence-discount-days": 7,
        "offence-active": True,
    }
    out = outputs_of(press(admin, app, "offence-status.children", "offence-save", values))
    assert "Saved OVT" in json.dumps(out["offence-status"])
    assert "Overtime parking" in json.dumps(out["offence-table"]) and "50% within 7 days" in json.dumps(out)
    with core.db.session() as s:
        row = s.scalar(select(OffenceType))
        assert (row.code, row.fine_cents, row.discount_percent) == ("OVT", 3000, 50)


def test_the_pair_is_refused_with_its_reason(app, login_as):
    admin = login_as(Role.ADMIN)
    values = {"offence-code": "BOOT", "offence-name": "Boot", "offence-fine": "75",
              "offence-apply-boot": True, "offence-apply-discount": True,
              "offence-discount-percent": 10, "offence-discount-days": 3}  # fmt: skip
    text = json.dumps(outputs_of(press(admin, app, "offence-status.children", "offence-save", values)))
    assert "Not saved" in text and "boot deposit refund does not consider discounts" in text


def test_apply_boot_greys_out_apply_discount(app, login_as):
    admin = login_as(Role.ADMIN)
    output = find_output(app, "offence-apply-discount.disabled")
    on = outputs_of(dash_post(admin, app, output, [True], [True]))["offence-apply-discount"]
    assert on == {"disabled": True, "value": False}
    off = outputs_of(dash_post(admin, app, output, [False], [True]))["offence-apply-discount"]
    assert off == {"disabled": False, "value": True}


def test_the_apply_boot_switch_shows_only_with_boots_on(app, login_as, core):
    admin = login_as(Role.ADMIN)
    output = find_output(app, "offence-boot-row.hidden")
    assert outputs_of(dash_post(admin, app, output, [0]))["offence-boot-row"]["hidden"] is True
    enable_boots(core)
    assert outputs_of(dash_post(admin, app, output, [0]))["offence-boot-row"]["hidden"] is False


def test_a_fine_out_of_range_is_shown_next_to_the_field(app, login_as, core):
    admin = login_as(Role.ADMIN)
    values = {
        "offence-which": "new",
        "offence-code": "BIG",
        "offence-name": "Big",
        "offence-fine": "1e999999999",
    }
    text = json.dumps(outputs_of(press(admin, app, "offence-status.children", "offence-save", values)))
    assert "Fine" in text and "at most 100000.00" in text
    with core.db.session() as s:
        assert s.scalar(select(OffenceType)) is None
