"""PeopleSoft Holds page over HTTP: managers and admins see the reports, skipped users and holds,
and download each file exactly as e-mailed; lower roles get nothing; a forged file id sends nothing."""

from __future__ import annotations

import base64
import json

import pytest

from dashboard.services import email, peoplesoft, system_settings
from models import Role
from tests.dash_helpers import dash_post, find_output, outputs_of, press
from tests.enforcement import make_place, write_ticket
from tests.services.test_peoplesoft import HEADER, TORONTO, add_owner, local

STATUS = "peoplesoft-status.children"
DOWNLOAD = "peoplesoft-download.data"


def refresh(client, app):
    return dash_post(client, app, find_output(app, STATUS), [1])


@pytest.fixture
def report(core, make_user) -> peoplesoft.ReportView:
    with core.db.session() as s:
        email.ensure_default_templates(s)
    place = make_place(core)
    add_owner(core, "ana@campus.test", "AAA 111", "none", "S100", "Ana Avery")
    add_owner(core, "cy@campus.test", "CCC 333", "none", None, "Cy Cole")
    officer = make_user(Role.OFFICER).id
    write_ticket(core, officer, place, plate="AAA 111", now=local(2026, 3, 2, 20, 0))
    write_ticket(core, officer, place, plate="CCC 333", now=local(2026, 3, 2, 20, 5))
    with core.db.session() as s:
        return peoplesoft.run_report(
            s, local(2026, 3, 3, 2, 0), TORONTO, pattern="holds_{type}_{date}.txt",
            recipient="holds@campus.test", backend=email.OutboxBackend(),
        )  # fmt: skip


@pytest.mark.parametrize("role", [Role.MANAGER, Role.ADMIN])
def test_managers_see_reports_skipped_users_and_holds(app, core, login_as, report, role):
    out = outputs_of(refresh(login_as(role), app))
    status = json.dumps(out["peoplesoft-status"]["children"])
    assert "PeopleSoft holds are turned off in System Settings" in status
    reports = json.dumps(out["peoplesoft-reports"]["children"])
    assert "Tuesday 3 March 2026 at 02:00" in reports
    assert "holds_added_20260303.txt" in reports and "holds_released_20260303.txt" in reports
    assert "to holds@campus.test" in reports
    assert "Cy Cole <cy@campus.test> owes $50.00 CAD: no Student/Staff ID" in reports
    holds = json.dumps(out["peoplesoft-holds"]["children"])
    assert "S100" in holds and "Ana Avery" in holds and "$50.00" in holds and "Tuesday 3 March 2026" in holds


def test_status_says_where_and_when_the_report_runs_once_on(app, core, login_as, report):
    with core.db.session() as s:
        system_settings.update(
            s, core.secrets, {"peoplesoft_enabled": True, "peoplesoft_holds_email": "holds@campus.test"}, None
        )
    status = json.dumps(outputs_of(refresh(login_as(Role.MANAGER), app))["peoplesoft-status"]["children"])
    assert "Reports go to holds@campus.test." in status
    assert "The PeopleSoft Holds Report task is off in System Task Logs." in status


@pytest.mark.parametrize("kind", ["added", "released"])
def test_a_file_downloads_byte_for_byte(app, login_as, report, kind):
    button = {"type": "peoplesoft-file", "report": report.id, "kind": kind}
    rows = {"peoplesoft-file": [button, dict(button, kind="released" if kind == "added" else "added")]}
    out = outputs_of(press(login_as(Role.MANAGER), app, DOWNLOAD, button, rows=rows))
    data = out["peoplesoft-download"]["data"]
    assert data["filename"] == f"holds_{kind}_20260303.txt"
    expected = HEADER + (b"S100\t50.00\t\tNo valid permit\t2026-03-02\r\n" if kind == "added" else b"")
    assert base64.b64decode(data["content"]) == expected


@pytest.mark.parametrize("forged", [{"report": 999, "kind": "added"}, {"report": 1, "kind": "secret"}])
def test_a_forged_file_id_sends_nothing(app, login_as, report, forged):
    button = {"type": "peoplesoft-file", **forged}
    response = press(login_as(Role.MANAGER), app, DOWNLOAD, button, rows={"peoplesoft-file": [button]})
    assert outputs_of(response) == {}


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403)])
def test_lower_roles_get_nothing(app, login_as, report, role, status):
    client = login_as(role)
    assert refresh(client, app).status_code == status
    button = {"type": "peoplesoft-file", "report": report.id, "kind": "added"}
    response = press(client, app, DOWNLOAD, button, rows={"peoplesoft-file": [button]})
    assert response.status_code == status
    assert b"S100" not in response.data
