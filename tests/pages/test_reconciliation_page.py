"""Payment Reconciliation (/admin/reconciliation): the list over HTTP as the browser calls it and
the callbacks called directly, who may open and call what, the menu entry, and each action (mark
reviewed with a note, refund a stray charge, settle) confirmed in the dialog and audited."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from flask_login import login_user
from sqlalchemy import select

from dashboard.auth import SessionUser
from dashboard.services import reconciliation
from dashboard.services.payment_providers import Card
from dashboard.services.payments import SandboxProvider
from models import AuditLog, Payment, PaymentMismatch, Role, SandboxCharge
from tests.dash_helpers import callback_entry, dash_post, find_output, outputs_of, press

LIST = "recon-list.children"
CARD = Card("4242424242424242", 12, 2099, "123")


def stray_charge(core, cents: int = 1500, key: str = "outside-1") -> str:
    """A sandbox charge no ParkOps payment counts, found by a reconciliation run."""
    charge = SandboxProvider(core.db).charge(
        amount_cents=cents, currency="CAD", card=CARD, idempotency_key=key, description="outside"
    )
    reconciliation.run(core.db, core.secrets, datetime.now(UTC) + timedelta(hours=2))
    return charge.reference


def mismatch_id(core) -> int:
    with core.db.session() as s:
        return s.scalar(select(PaymentMismatch.id))


def listed(client, app, show: str = "open") -> dict:
    return outputs_of(dash_post(client, app, find_output(app, LIST), [show, 0]))


def test_the_menu_offers_it_to_managers_next_to_the_payment_screens():
    from dashboard.components.shell import MENU

    hrefs = [href for _, _, href, _ in MENU]
    assert ("Parking", "Payment Reconciliation", "/admin/reconciliation", Role.MANAGER) in MENU
    assert hrefs.index("/admin/reconciliation") == hrefs.index("/admin/pay-stations") + 1


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403)])
def test_only_managers_may_list_or_act(app, login_as, core, role, status):
    stray_charge(core)
    client = login_as(role)
    assert dash_post(client, app, find_output(app, LIST), ["open", 0]).status_code == status
    refund = {"recon-selected": {"id": mismatch_id(core), "action": "refund"}, "recon-note": "x"}
    act = press(client, app, "recon-message.children", "recon-confirm", refund)
    assert act.status_code == status
    with core.db.session() as s:
        assert s.scalar(select(SandboxCharge.refunded_cents)) == 0
    page = client.get("/admin/reconciliation")
    assert page.status_code in (302, 403)


def test_a_manager_lists_a_stray_charge_and_refunds_it_after_confirming(app, login_as, core):
    reference = stray_charge(core)
    manager = login_as(Role.MANAGER)
    assert manager.get("/admin/reconciliation").status_code == 200
    shown = json.dumps(listed(manager, app))
    assert "Charged without a settled payment" in shown and reference in shown and "$15.00 CAD" in shown
    assert "Refund the charge" in shown and "Settle the payment" not in shown
    row_id = mismatch_id(core)
    # When it was found, in words in the site's zone: the run is two hours ahead of now, so late in
    # the site's evening that is tomorrow.
    with core.db.session() as s:
        found = s.get(PaymentMismatch, row_id).found_at.astimezone(core.settings.tz)
    today = datetime.now(core.settings.tz).date()
    assert f"Found {found:%H:%M} {'today' if found.date() == today else 'tomorrow'}" in shown

    buttons = [{"type": "recon-act", "id": row_id, "action": a} for a in ("review", "refund")]
    dialog = outputs_of(press(manager, app, "recon-selected.data", buttons[1], rows={"recon-act": buttons}))
    assert dialog["recon-modal"]["is_open"] is True
    assert dialog["recon-selected"]["data"] == {"id": row_id, "action": "refund"}
    assert "cannot be undone" in dialog["recon-modal-facts"]["children"]
    with core.db.session() as s:
        assert s.scalar(select(SandboxCharge.refunded_cents)) == 0  # opening the dialog changes nothing

    done = outputs_of(
        press(manager, app, "recon-message.children", "recon-confirm",
              {"recon-selected": {"id": row_id, "action": "refund"}, "recon-note": "not a ParkOps sale",
               "recon-version": 0})
    )  # fmt: skip
    assert (
        "$15.00 CAD refunded" in json.dumps(done["recon-message"]) and done["recon-modal"]["is_open"] is False
    )
    with core.db.session() as s:
        assert s.scalar(select(SandboxCharge.refunded_cents)) == 1500
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "payment_mismatch.refunded"))
        assert entry.actor_id is not None and entry.changes["note"] == "not a ParkOps sale"
    assert "recon-none" in json.dumps(listed(manager, app))
    history = json.dumps(listed(manager, app, "done"))
    assert "Refunded by" in history and "not a ParkOps sale" in history

    again = outputs_of(
        press(manager, app, "recon-message.children", "recon-confirm",
              {"recon-selected": {"id": row_id, "action": "refund"}, "recon-note": ""})
    )  # fmt: skip
    assert "Only an open charge" in json.dumps(again["recon-modal-error"])
    with core.db.session() as s:
        assert s.scalar(select(SandboxCharge.refunded_cents)) == 1500


def test_mark_reviewed_needs_a_note(app, login_as, core):
    stray_charge(core)
    manager = login_as(Role.MANAGER)
    row_id = mismatch_id(core)
    values = {"recon-selected": {"id": row_id, "action": "review"}, "recon-note": " "}
    refused = outputs_of(press(manager, app, "recon-message.children", "recon-confirm", values))
    assert "Note" in json.dumps(refused["recon-modal-error"]) and "recon-message" not in refused
    values["recon-note"] = "Charged at the office counter by mistake; refunded there."
    outputs_of(press(manager, app, "recon-message.children", "recon-confirm", values))
    with core.db.session() as s:
        row = s.get(PaymentMismatch, row_id)
        assert row.status == "reviewed" and row.note.startswith("Charged at the office")
        assert s.scalar(select(SandboxCharge.refunded_cents)) == 0  # reviewing moves no money


def test_the_callbacks_called_directly(app, core, make_user):
    stray_charge(core, 800, "outside-2")
    manager = make_user(Role.MANAGER)
    refresh = callback_entry(app, find_output(app, LIST))["callback"].__wrapped__
    confirm = callback_entry(app, find_output(app, "recon-message.children"))["callback"].__wrapped__
    with app.test_request_context("/_dash-update-component", method="POST"):
        login_user(SessionUser(manager.id, manager.email, manager.name, Role.MANAGER))
        _status, cards = refresh("open", 0)
        assert "$8.00 CAD" in json.dumps(cards.to_plotly_json(), default=str)
        error, is_open, message, version = confirm(1, {"id": mismatch_id(core), "action": "review"}, "ok", 3)
    assert error is None and is_open is False and version == 4
    with core.db.session() as s:
        assert s.scalar(select(PaymentMismatch.resolved_by_id)) == manager.id
        assert s.scalar(select(Payment.id)) is None
