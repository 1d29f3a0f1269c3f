"""Setup Boot Devices (/admin/boots), boot labels and the Boot Device Report (/admin/boot-report)
over HTTP: hidden with Universal Boot off (menu, pages); codes masked; Edit > Return with Process
Refund refunds the deposit once; a never-paid violation says there is nothing to refund; CSV."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from dashboard.services import boots, email
from dashboard.services.boots import ReleaseMail
from models import Boot, BootAssignment, Role, SandboxCharge
from tests.dash_helpers import dash_post, find_output, outputs_of, press
from tests.enforcement import enable_boots, make_place, pay_violation, write_ticket

REPORT = "...bootreport-range.children...bootreport-table"
EDIT = "bootreport-edit"


@pytest.fixture
def place(core):
    return make_place(core)


def test_with_universal_boot_off_no_boot_screen_or_menu_entry_shows(app, login_as, core, place):
    admin = login_as(Role.ADMIN)
    nav = find_output(app, "shell-nav.children")
    menu = json.dumps(outputs_of(dash_post(admin, app, nav, ["/"])))
    assert "/admin/boots" not in menu and "/admin/boot-report" not in menu and "/admin/violations" in menu
    inventory = outputs_of(dash_post(admin, app, find_output(app, "boots-off-wrap.children"), [0]))
    assert "Universal Boot is off" in json.dumps(inventory) and inventory["boots-main"]["hidden"] is True
    report = outputs_of(dash_post(admin, app, find_output(app, "bootreport-off.children"), [None]))
    assert "Universal Boot is off" in json.dumps(report)
    enable_boots(core)
    menu = json.dumps(outputs_of(dash_post(admin, app, nav, ["/"])))
    assert "/admin/boots" in menu and "/admin/boot-report" in menu
    inventory = outputs_of(dash_post(admin, app, find_output(app, "boots-off-wrap.children"), [0]))
    assert inventory["boots-main"]["hidden"] is False and "QR label" in json.dumps(inventory)


def test_an_admin_adds_a_boot_whose_code_is_never_shown_again(app, login_as, core, place):
    enable_boots(core)
    admin = login_as(Role.ADMIN)
    values = {
        "boots-which": "new",
        "boots-name": "Yellow Boot 01",
        "boots-code": "905512",
        "boots-active": True,
    }
    out = outputs_of(press(admin, app, "..boots-status.children", "boots-save", values))
    text = json.dumps(out)
    assert "Saved Yellow Boot 01" in text and "905512" not in text and out["boots-code"]["value"] == ""
    with core.db.session() as s:
        stored = s.scalar(select(Boot.release_code).where(Boot.name == "Yellow Boot 01"))
    assert core.secrets.decrypt(stored) == "905512"
    label = outputs_of(
        dash_post(admin, app, find_output(app, "bootlabel-content.children"), [str(place.boot_ids[0])])
    )
    assert "Red Boot 01" in json.dumps(label) and "/admin/boot-report?boot=" in json.dumps(label)
    assert login_as(Role.MANAGER).get("/admin/boots").status_code == 403


def booted(core, make_user, place, paid: bool) -> int:
    ticket = write_ticket(core, make_user(Role.OFFICER).id, place, boot_id=place.boot_ids[0])
    if paid:
        with core.db.session() as s:
            email.ensure_default_templates(s)
        pay_violation(core, ticket.id, ticket.total_cents)
        with core.db.session() as s:
            boots.release_boot_for_paid_violation(
                s, core.secrets, ticket.id, ReleaseMail("o@example.com", "O", "Campus", ""),
                email.OutboxBackend(), datetime.now(UTC),
            )  # fmt: skip
    with core.db.session() as s:
        return s.scalar(select(BootAssignment.id))


def open_edit(client, app, assignment_id: int) -> dict:
    trigger = {"type": EDIT, "id": assignment_id}
    return outputs_of(press(client, app, "..bootreport-modal.is_open...bootreport-selected", trigger,
                            rows={EDIT: [trigger]}))  # fmt: skip


def save(client, app, assignment_id: int, **values: object) -> dict:
    state = {"bootreport-selected": assignment_id, "bootreport-new-status": "returned", **values}
    return outputs_of(press(client, app, "..bootreport-modal-error.children@", "bootreport-save", state))


def test_return_with_process_refund_refunds_the_deposit_once(app, login_as, core, make_user, place):
    enable_boots(core)
    assignment_id = booted(core, make_user, place, paid=True)
    manager = login_as(Role.MANAGER)
    listed = json.dumps(
        outputs_of(press(manager, app, REPORT, "bootreport-pages", {"bootreport-version": 0}))
    )
    assert "Red Boot 01" in listed and "Released" in listed and EDIT in listed
    dialog = open_edit(manager, app, assignment_id)
    assert dialog["bootreport-modal"]["is_open"] is True
    assert dialog["bootreport-refund"] == {"value": True, "disabled": False}
    assert "$75.00" in dialog["bootreport-refund-note"]["children"]
    done = save(
        manager, app, assignment_id, **{"bootreport-refund.value": True, "bootreport-refund.disabled": False}
    )
    assert "Deposit of $75.00 CAD refunded" in json.dumps(done["bootreport-message"])
    with core.db.session() as s:
        assert s.scalar(select(SandboxCharge.refunded_cents)) == 7500
        assert s.get(Boot, place.boot_ids[0]).status == "available"
    again = save(
        manager, app, assignment_id, **{"bootreport-refund.value": True, "bootreport-refund.disabled": False}
    )
    assert "refunded already" in json.dumps(again)
    with core.db.session() as s:
        assert s.scalar(select(SandboxCharge.refunded_cents)) == 7500


def test_keeping_a_deposit_needs_a_reason(app, login_as, core, make_user, place):
    enable_boots(core)
    assignment_id = booted(core, make_user, place, paid=True)
    manager = login_as(Role.MANAGER)
    refused = save(
        manager, app, assignment_id, **{"bootreport-refund.value": False, "bootreport-refund.disabled": False}
    )
    assert "say why the deposit is kept" in json.dumps(refused)
    keep = {"bootreport-refund.value": False, "bootreport-refund.disabled": False}
    keep["bootreport-reason"] = "damaged"
    kept = save(manager, app, assignment_id, **keep)
    assert "returned and available again" in json.dumps(kept)
    with core.db.session() as s:
        assert boots.report_row(s, assignment_id, datetime.now(UTC), 3).refund == "kept: damaged"


def test_a_never_paid_violation_says_there_is_nothing_to_refund(app, login_as, core, make_user, place):
    enable_boots(core)
    assignment_id = booted(core, make_user, place, paid=False)
    manager = login_as(Role.MANAGER)
    dialog = open_edit(manager, app, assignment_id)
    assert dialog["bootreport-refund"] == {"value": False, "disabled": True}
    assert "never paid: there is nothing to refund" in dialog["bootreport-refund-note"]["children"]
    done = save(
        manager, app, assignment_id, **{"bootreport-refund.value": False, "bootreport-refund.disabled": True}
    )
    assert "returned and available again" in json.dumps(done)


def test_the_report_exports_csv(app, login_as, core, make_user, place):
    enable_boots(core)
    booted(core, make_user, place, paid=False)
    manager = login_as(Role.MANAGER)
    out = outputs_of(dash_post(manager, app, find_output(app, "..bootreport-download.data"), [1],
                               ["in_use", "", None, None, None]))  # fmt: skip
    download = out["bootreport-download"]["data"]
    assert download["filename"].endswith(".csv") and "Red Boot 01" in download["content"]
    assert "In Use" in download["content"]


def test_an_edit_of_a_boot_use_that_does_not_exist_says_so(app, login_as, core, make_user, place):
    """A row's Edit whose boot use is gone (or never was) answers with a message, not a 500."""
    enable_boots(core)
    assignment_id = booted(core, make_user, place, paid=False)
    out = open_edit(login_as(Role.MANAGER), app, assignment_id + 1000)
    assert "That boot assignment does not exist." in json.dumps(out["bootreport-message"])
    assert "bootreport-modal" not in out  # the dialog stays closed


def test_a_report_filter_no_boot_could_match_is_a_message(app, login_as, core, place):
    enable_boots(core)
    manager = login_as(Role.MANAGER)
    values = {"bootreport-ticket": "T-7K3-9QX" * 4, "bootreport-to": "9999-12-31", "bootreport-version": 0}
    text = json.dumps(outputs_of(press(manager, app, REPORT, "bootreport-pages", values)))
    assert "Not searched" in text and "Ticket: at most 32 characters" in text
