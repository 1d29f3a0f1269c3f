"""Check a Plate (/officer/check) over HTTP: officers get the answer and its reason; users and
guests get nothing, not even the list of lots."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.services import permits
from dashboard.services.permits import ExternalPermit, Partner
from models import Lot, Role
from tests.dash_helpers import dash_post, find_output, outputs_of

RESULT = "check-result.children"


@pytest.fixture
def lot(session) -> int:
    row = Lot(name="Visitor Lot", code="V1", capacity=10)
    session.add_all([row, Lot(name="Old Lot", capacity=1, is_active=False)])
    session.flush()
    now = datetime.now(UTC)
    permits.record_external_permit(
        session,
        ExternalPermit(
            source="paystation",
            external_id="PD-1",
            plate="abc 123",
            lot="V1",
            start=now - timedelta(minutes=5),
            end=now + timedelta(hours=1),
            amount_cents=300,
        ),
        partner=Partner(frozenset({"paystation"})),
        now=now,
    )
    session.commit()
    return row.id


def ask(client, app, plate, lot_id):
    return dash_post(
        client, app, find_output(app, RESULT), [1, None], [plate, lot_id], triggered="check-submit.n_clicks"
    )


def test_an_officer_gets_a_valid_answer_with_its_reason(app, login_as, lot):
    officer = login_as(Role.OFFICER)
    assert officer.get("/officer/check").status_code == 200
    out = outputs_of(ask(officer, app, "ABC-123", lot))
    text = json.dumps(out["check-result"]["children"])
    assert "VALID" in text and "NOT VALID" not in text and "for this lot" in text
    assert out["check-lot-memory"]["data"] == lot


def test_an_unknown_plate_is_not_valid_and_bad_input_is_explained(app, login_as, lot):
    officer = login_as(Role.OFFICER)
    text = json.dumps(outputs_of(ask(officer, app, "ZZZ 999", lot)))
    assert "NOT VALID" in text and "no permit or paid session" in text
    assert "Choose the lot first" in json.dumps(outputs_of(ask(officer, app, "ABC123", None)))
    assert "Enter the licence plate" in json.dumps(outputs_of(ask(officer, app, " ", lot)))


def test_the_lot_list_holds_active_lots_only(app, login_as, lot):
    out = outputs_of(
        dash_post(login_as(Role.OFFICER), app, find_output(app, "check-lot.options"), [None], [lot])
    )
    assert [o["label"] for o in out["check-lot"]["options"]] == ["Visitor Lot (V1)"]
    assert out["check-lot"]["value"] == lot


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403)])
def test_lower_roles_get_nothing(app, login_as, lot, role, status):
    client = login_as(role)
    assert client.get("/officer/check").status_code == (302 if role is Role.GUEST else 403)
    assert ask(client, app, "ABC123", lot).status_code == status
    assert dash_post(client, app, find_output(app, "check-lot.options"), [None], [None]).status_code == status
