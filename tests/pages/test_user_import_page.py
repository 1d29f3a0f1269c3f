"""User Import page over HTTP: admins see the accepted headers, where files go, the history with
counts, and download each failures file exactly as e-mailed; lower roles get nothing; a forged
import id sends nothing."""

from __future__ import annotations

import base64
import json

import asyncssh
import dash
import pytest
from flask_login import login_user

from dashboard.auth import SessionUser
from dashboard.services import email, ssh_keys, system_settings, user_import
from models import Role
from tests.dash_helpers import dash_post, find_output, outputs_of, press
from tests.sftp_server import PASSWORD, USERNAME, SftpServer
from workers import tasks
from workers.jobs import execute_task

STATUS = "user-import-status.children"
DOWNLOAD = "user-import-download.data"


def refresh(client, app):
    return dash_post(client, app, find_output(app, STATUS), [1])


@pytest.fixture
def imported(core, tmp_path) -> user_import.FileResult:
    with core.db.session() as s:
        email.ensure_default_templates(s)
    path = tmp_path / "staff.csv"
    path.write_text("employ_no,email\nE1,ann@campus.test\nE2,@bad\n")
    return user_import.import_file(
        core.db.session, path, recipient="hr@campus.test", backend=email.OutboxBackend(), reply_to=None,
        tz=core.settings.tz,
    )  # fmt: skip


def test_admins_open_the_page(login_as):
    assert login_as(Role.ADMIN).get("/admin/user-import").status_code == 200
    assert login_as(Role.MANAGER).get("/admin/user-import").status_code == 403


def test_admins_see_the_history_and_where_files_go(app, core, login_as, imported):
    with core.db.session() as s:
        system_settings.update(s, core.secrets, {"csv_import_folder": "/srv/sftp/import"}, None)
    out = outputs_of(refresh(login_as(Role.ADMIN), app))
    status = json.dumps(out["user-import-status"]["children"])
    assert "Drop folder: /srv/sftp/import." in status
    assert "The Managed User Import task is off in System Task Logs." in status
    history = json.dumps(out["user-import-history"]["children"])
    assert "staff.csv" in history and "staff-failures.csv" in history


def test_accepted_header_names_are_in_the_layout(app, make_user):
    admin = make_user(Role.ADMIN)
    with app.test_request_context("/admin/user-import"):
        login_user(SessionUser(admin.id, admin.email, admin.name, Role.ADMIN))
        page = dash.page_registry["pages.admin.user_import"]["layout"]()
    layout = json.dumps(page.to_plotly_json(), default=str)
    for name in (
        "student_no",
        "employ_no",
        "email_address",
        "phone_cell",
        "user_type_id",
        "driver_licence_num",
    ):
        assert name in layout


def test_a_failures_file_downloads_byte_for_byte(app, core, login_as, imported):
    button = {"type": "user-import-file", "import": imported.import_id}
    out = outputs_of(press(login_as(Role.ADMIN), app, DOWNLOAD, button, rows={"user-import-file": [button]}))
    data = out["user-import-download"]["data"]
    assert data["filename"] == "staff-failures.csv"
    assert base64.b64decode(data["content"]) == (
        b"employ_no,email,row,reason\r\nE2,'@bad,3,email: not a valid e-mail address\r\n"
    )


def test_a_forged_import_id_sends_nothing(app, login_as, imported):
    button = {"type": "user-import-file", "import": 999}
    response = press(login_as(Role.ADMIN), app, DOWNLOAD, button, rows={"user-import-file": [button]})
    assert outputs_of(response) == {}


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403), (Role.MANAGER, 403)])
def test_lower_roles_get_nothing(app, login_as, imported, role, status):
    client = login_as(role)
    assert refresh(client, app).status_code == status
    button = {"type": "user-import-file", "import": imported.import_id}
    response = press(client, app, DOWNLOAD, button, rows={"user-import-file": [button]})
    assert response.status_code == status
    assert b"@bad" not in response.data


def test_the_sftp_pull_and_the_last_runs_refusal_show_on_the_page(app, core, login_as, tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "IMPORT_SETTLE_SECONDS", 0.0)
    monkeypatch.setattr(tasks, "SFTP_MIN_AGE_SECONDS", 0.0)
    root = tmp_path / "sftp-root"
    (root / "outgoing").mkdir(parents=True)
    server = SftpServer(root).start()
    try:
        pinned = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode("ascii")
        with core.db.session() as s:
            system_settings.update(
                s,
                core.secrets,
                {
                    "csv_import_folder": str(tmp_path / "drop"),
                    "csv_import_sftp_host": "127.0.0.1",
                    "csv_import_sftp_port": server.port,
                    "csv_import_sftp_username": USERNAME,
                    "csv_import_sftp_password": PASSWORD,
                    "csv_import_sftp_host_key": pinned,
                    "csv_import_sftp_folder": "outgoing",
                },
                None,
            )
        admin = login_as(Role.ADMIN)
        status = json.dumps(outputs_of(refresh(admin, app))["user-import-status"]["children"])
        fingerprint = ssh_keys.describe(ssh_keys.host_key(pinned))
        assert (
            f"SFTP pull: campus-import@127.0.0.1:{server.port}, outgoing, host key {fingerprint}." in status
        )
        assert "user-import-trouble" not in status
        assert PASSWORD not in status

        execute_task(core, "managed-user-import", "test")  # the server shows another key
        status = json.dumps(outputs_of(refresh(admin, app))["user-import-status"]["children"])
        assert "user-import-trouble" in status and ") failed: " in status
        assert f"SFTP pull FAILED: the SFTP server 127.0.0.1:{server.port} showed a host key (" in status
        assert "that is not the pinned SFTP Host Key" in status
    finally:
        server.stop()
