"""Violations (/admin/violations, /admin/violations/<id>) over HTTP: a manager searches and exports
CSV, opens a violation, voids it with a reason, and decides an appeal; officers get nothing here."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dashboard.services import appeals, email
from dashboard.services.appeals import Site
from models import AuditLog, OutboxMessage, Role
from tests.dash_helpers import dash_post, find_output, outputs_of, press
from tests.enforcement import make_place, write_ticket

LIST = "..violations-error.children...violations-range.children"
SHOW = "..violation-content.children...violation-appeal-card"


@pytest.fixture
def tickets(core, make_user):
    with core.db.session() as s:
        email.ensure_default_templates(s)
    place = make_place(core)
    officer = make_user(Role.OFFICER)
    old = write_ticket(core, officer.id, place, plate="OLD 1", now=datetime.now(UTC) - timedelta(days=40))
    new = write_ticket(core, officer.id, place, plate="NEW 2")
    return old, new


def search(client, app, **values):
    order = ["violations-ticket", "violations-plate", "violations-lot", "violations-officer",
             "violations-status", "violations-from", "violations-to"]  # fmt: skip
    return outputs_of(dash_post(client, app, find_output(app, LIST), [values.get(k) for k in order] + [1]))


def test_a_manager_searches_by_status_and_plate(app, login_as, tickets):
    manager = login_as(Role.MANAGER)
    assert manager.get("/admin/violations").status_code == 200
    everything = json.dumps(search(manager, app))
    assert "OLD 1" in everything and "NEW 2" in everything
    overdue = json.dumps(search(manager, app, **{"violations-status": "overdue"}))
    assert "OLD 1" in overdue and "NEW 2" not in overdue and "Overdue" in overdue
    assert "NEW 2" not in json.dumps(search(manager, app, **{"violations-plate": "old-1"}))
    bad = json.dumps(search(manager, app, **{"violations-from": "yesterday"}))
    assert "Not searched" in bad


def test_a_search_no_violation_could_match_is_a_message_next_to_its_filter(app, login_as, tickets):
    """A pasted page of text in Plate (a LIKE pattern SQLite calls "too complex"), or the last day
    of the calendar in "Issued to", is a message, not a 500."""
    manager = login_as(Role.MANAGER)
    plate = json.dumps(search(manager, app, **{"violations-plate": "x" * 100_000}))
    assert "Not searched" in plate and "Plate: at most 16 characters" in plate
    last = json.dumps(search(manager, app, **{"violations-to": "9999-12-31"}))
    assert "Not searched" in last and "Issued to: a date from 1900 to 2999" in last


def test_a_lot_that_is_not_an_id_is_refused_with_the_shells_notice(app, login_as, tickets):
    manager = login_as(Role.MANAGER)
    order = [None, None, str(2**31), None, None, None, None, 1]
    answer = dash_post(manager, app, find_output(app, LIST), order)
    assert answer.status_code == 200 and answer.get_json().get("response", {}) == {}
    notice = answer.get_json()["sideUpdate"]["shell-notice"]
    assert notice["is_open"] is True and "lot: not an id ParkOps gave out" in notice["children"]


def test_the_csv_export_holds_the_filtered_list(app, login_as, tickets):
    manager = login_as(Role.MANAGER)
    output = find_output(app, "..violations-download.data")
    out = outputs_of(dash_post(manager, app, output, [1], [None, "new 2", None, None, None, None, None]))
    download = out["violations-download"]["data"]
    assert download["filename"].endswith(".csv") and download["type"] == "text/csv"
    assert "NEW 2" in download["content"] and "OLD 1" not in download["content"]
    assert login_as(Role.OFFICER).get("/admin/violations").status_code == 403


def test_a_manager_voids_a_violation_with_a_reason(app, login_as, core, tickets):
    _old, new = tickets
    manager = login_as(Role.MANAGER)
    shown = outputs_of(
        dash_post(
            manager,
            app,
            find_output(app, SHOW),
            [str(new.id)],
        )
    )
    assert new.ticket_number in json.dumps(shown) and "display" not in shown["violation-void-card"]["style"]
    act = "..violation-status.children"
    refused = json.dumps(
        outputs_of(press(manager, app, act, "violation-void", {"violation-id": str(new.id)}))
    )
    assert "say why" in refused
    values = {"violation-id": str(new.id), "violation-void-reason": "Plate misread"}
    done = outputs_of(press(manager, app, act, "violation-void", values))
    assert "is void" in json.dumps(done["violation-status"]) and "Plate misread" in json.dumps(done)
    with core.db.session() as s:
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "violation.void"))
        assert entry.actor_id == manager.user.id


def test_a_manager_decides_an_appeal_and_the_owner_is_emailed(app, login_as, core, tickets):
    old, _new = tickets
    with core.db.session() as s:
        appeals.submit_appeal(
            s, ticket=old.ticket_number, plate="OLD 1", text="I had a valid permit on the dashboard.",
            email_address="owner@example.com", user_id=None, photo=None,
            instance_path=core.settings.instance_path, site=Site("Campus", "http://x", core.settings.tz),
            backend=email.OutboxBackend(), now=datetime.now(UTC),
        )  # fmt: skip
    manager = login_as(Role.MANAGER)
    shown = outputs_of(
        dash_post(
            manager,
            app,
            find_output(app, SHOW),
            [str(old.id)],
        )
    )
    assert (
        "I had a valid permit" in json.dumps(shown)
        and "display" not in shown["violation-appeal-card"]["style"]
    )
    values = {"violation-id": str(old.id), "violation-outcome": "reduced", "violation-reduced-to": "20",
              "violation-note": "Halved: the permit had expired the day before."}  # fmt: skip
    done = outputs_of(press(manager, app, "..violation-status.children", "violation-decide", values))
    assert "owner was e-mailed" in json.dumps(done) and "$20.00" in json.dumps(done["violation-content"])
    with core.db.session() as s:
        last = s.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()))
        assert last.template_key == "appeal-decision" and "Reduced" in last.subject
