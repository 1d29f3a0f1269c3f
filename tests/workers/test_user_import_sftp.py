"""The SFTP pull of the Managed User Import task against a real SFTP server (asyncssh's, started by
the tests on a free port, chrooted to a temporary folder): files are fetched, imported, and moved
into ``.bak`` on the server; a wrong or missing host key and a refused login are clear errors that
fetch nothing; a server that cannot be reached does not stop the import of dropped files; a file
still growing on the server waits for the next run."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
from sqlalchemy import select

from dashboard.services import email, ssh_keys, system_settings
from models import OutboxAttachment, OutboxMessage, TaskOutcome, User, UserImport, utcnow
from tests.sftp_server import PASSWORD, USERNAME, SftpServer, running
from workers import sftp_pull, tasks
from workers.jobs import execute_task

TASK = "managed-user-import"
USERS = "unique_id,email,first_name\nS1,ana@campus.test,Ana\nS2,broken,Bo\nS3,cy@campus.test,Cy\n"


@pytest.fixture(autouse=True)
def _quick_settle(monkeypatch):
    monkeypatch.setattr(tasks, "IMPORT_SETTLE_SECONDS", 0.0)
    monkeypatch.setattr(tasks, "SFTP_MIN_AGE_SECONDS", 0.0)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SftpServer]:
    root = tmp_path / "sftp-root"
    (root / "outgoing").mkdir(parents=True)
    yield from running(root)


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    return tmp_path / "drop"


def configure(core, server: SftpServer, drop: Path, **values: object) -> None:
    settings = {
        "csv_import_folder": str(drop),
        "csv_import_failed_email": "registrar@campus.test",
        "csv_import_sftp_host": "127.0.0.1",
        "csv_import_sftp_port": server.port,
        "csv_import_sftp_username": USERNAME,
        "csv_import_sftp_password": PASSWORD,
        "csv_import_sftp_host_key": server.public_host_key,
        "csv_import_sftp_folder": "outgoing",
        **values,
    }
    with core.db.session() as s:
        email.ensure_default_templates(s)
        system_settings.update(s, core.secrets, settings, actor_id=None)


def external_ids(core) -> list[str]:
    with core.db.session() as s:
        return sorted(s.scalars(select(User.external_id)))


def test_a_file_is_fetched_imported_moved_into_bak_on_the_server_and_its_failures_emailed(core, server, drop):
    outgoing = server.root / "outgoing"
    (outgoing / "users.csv").write_text(USERS)
    (outgoing / "next.csv.part").write_text("unique_id,email\n")
    configure(core, server, drop)

    run = execute_task(core, TASK, "test")

    assert run.outcome == TaskOutcome.SUCCESS.value, run.message
    lines = run.message.split("\n")
    assert lines[0] == "1 files processed"
    assert (
        lines[1]
        == f"SFTP 127.0.0.1:{server.port}: 1 files fetched (moved into .bak on the server): users.csv"
    )
    assert lines[2] == "left on the SFTP server for the next run (still being written): next.csv.part"
    assert lines[3].startswith(
        "users.csv: 3 rows, 2 created, 0 updated, 0 unchanged, 1 failed; kept as .bak/users.csv"
    )
    assert sorted(p.name for p in outgoing.iterdir()) == [".bak", "next.csv.part"]
    assert (outgoing / ".bak" / "users.csv").read_text() == USERS
    assert (drop / ".bak" / "users.csv").read_text() == USERS
    assert external_ids(core) == ["S1", "S3"]
    with core.db.session() as s:
        message = s.scalars(select(OutboxMessage)).one()
        assert message.to_addresses == ["registrar@campus.test"]
        assert message.subject == "CSV user import users.csv: 1 user(s) failed"
        attachment = s.scalars(select(OutboxAttachment)).one()
        rows = list(csv.reader(io.StringIO(bytes(attachment.content).decode("utf-8"))))
    assert rows == [
        ["unique_id", "email", "first_name", "row", "reason"],
        ["S2", "broken", "Bo", "3", "email: not a valid e-mail address"],
    ]

    # A new file of the same name next night: fetched again, kept beside the first in .bak.
    (outgoing / "users.csv").write_text("unique_id,email\nS4,di@campus.test\n")
    again = execute_task(core, TASK, "test")
    assert again.outcome == TaskOutcome.SUCCESS.value, again.message
    assert external_ids(core) == ["S1", "S3", "S4"]
    kept = sorted(p.name for p in (outgoing / ".bak").iterdir())
    assert len(kept) == 2 and kept[1] == "users.csv" and kept[0].startswith("users-")

    quiet = execute_task(core, TASK, "test")
    assert quiet.message.startswith("no file to import\nSFTP 127.0.0.1:")
    assert ": 0 files fetched" in quiet.message


def test_a_private_key_login_works(core, server, drop):
    key = asyncssh.generate_private_key("ssh-ed25519")
    server.client_key = key
    (server.root / "outgoing" / "staff.csv").write_text("employ_no,email\nE1,eve@campus.test\n")
    configure(
        core, server, drop,
        csv_import_sftp_password="",
        csv_import_sftp_private_key=key.export_private_key("openssh").decode("ascii"),
    )  # fmt: skip
    run = execute_task(core, TASK, "test")
    assert run.outcome == TaskOutcome.SUCCESS.value, run.message
    assert external_ids(core) == ["E1"]


def test_a_server_showing_another_host_key_is_refused_and_nothing_is_fetched(core, server, drop):
    (server.root / "outgoing" / "users.csv").write_text(USERS)
    pinned = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode("ascii")
    configure(core, server, drop, csv_import_sftp_host_key=pinned)

    run = execute_task(core, TASK, "test")

    assert run.outcome == TaskOutcome.FAILED.value
    shown = ssh_keys.describe(server.host_key)
    expected = ssh_keys.describe(ssh_keys.host_key(pinned))
    assert (
        f"SFTP pull FAILED: the SFTP server 127.0.0.1:{server.port} showed a host key ({shown}) that is not "
        f"the pinned SFTP Host Key ({expected}): refused to connect." in run.message
    )
    assert (server.root / "outgoing" / "users.csv").read_text() == USERS
    assert not (server.root / "outgoing" / ".bak").exists()
    assert external_ids(core) == []


def test_without_a_pinned_host_key_it_does_not_connect(core, server, drop):
    (server.root / "outgoing" / "users.csv").write_text(USERS)
    configure(core, server, drop, csv_import_sftp_host_key="")
    run = execute_task(core, TASK, "test")
    assert run.outcome == TaskOutcome.FAILED.value
    assert "SFTP pull FAILED: SFTP Host Key not set: ParkOps does not connect to 127.0.0.1:" in run.message
    assert server.connections == []
    assert (server.root / "outgoing" / "users.csv").exists()


def test_a_refused_login_is_a_clear_error_and_loses_nothing(core, server, drop):
    (server.root / "outgoing" / "users.csv").write_text(USERS)
    configure(core, server, drop, csv_import_sftp_password="wrong-password")
    run = execute_task(core, TASK, "test")
    assert run.outcome == TaskOutcome.FAILED.value
    assert (
        f"SFTP pull FAILED: the SFTP server 127.0.0.1:{server.port} refused the login of 'campus-import': "
        "check SFTP Username and the SFTP Password or SFTP Private Key"
    ) in run.message
    assert (server.root / "outgoing" / "users.csv").read_text() == USERS
    assert external_ids(core) == []


def test_a_server_out_of_reach_does_not_stop_the_import_of_dropped_files(core, server, drop, caplog):
    configure(core, server, drop)
    port = server.port
    server.stop()
    drop.mkdir()
    (drop / "local.csv").write_text("unique_id,email\nL1,lu@campus.test\n")
    with caplog.at_level("ERROR", logger="workers.tasks.managed-user-import"):
        run = execute_task(core, TASK, "test")
    assert run.outcome == TaskOutcome.PARTLY_FAILED.value
    lines = run.message.split("\n")
    assert lines[0] == "1 files processed"
    assert lines[1].startswith(f"SFTP pull FAILED: could not connect to the SFTP server 127.0.0.1:{port}: ")
    assert lines[2] == f"SFTP 127.0.0.1:{port}: 0 files fetched (moved into .bak on the server)"
    assert any("SFTP pull FAILED" in r.getMessage() for r in caplog.records)
    assert external_ids(core) == ["L1"]
    with core.db.session() as s:
        assert s.scalars(select(UserImport.filename)).all() == ["local.csv"]


def test_a_missing_remote_folder_is_named(core, server, drop):
    configure(core, server, drop, csv_import_sftp_folder="nowhere")
    run = execute_task(core, TASK, "test")
    assert run.outcome == TaskOutcome.FAILED.value
    assert f"SFTP pull FAILED: SFTP error on 127.0.0.1:{server.port} in folder 'nowhere': " in run.message


def test_a_file_still_growing_on_the_server_waits_for_the_next_run(server, drop):
    outgoing = server.root / "outgoing"
    (outgoing / "growing.csv").write_text("unique_id,email\n")
    (outgoing / "done.csv").write_text("unique_id,email\nS1,a@campus.test\n")
    config = sftp_pull.SftpConfig(
        "127.0.0.1", server.port, USERNAME, PASSWORD, "", server.public_host_key, "outgoing"
    )

    async def still_uploading(_seconds: float) -> None:
        with (outgoing / "growing.csv").open("a") as handle:
            handle.write("S2,b@campus.test\n")

    result = sftp_pull.pull(config, drop, pause=0.0, min_age=0.0, now=utcnow, sleep=still_uploading)
    assert result.fetched == ["done.csv"] and result.waiting == ["growing.csv"]
    assert (outgoing / "growing.csv").exists() and (outgoing / ".bak" / "done.csv").exists()
    assert sorted(p.name for p in drop.iterdir()) == ["done.csv"]

    later = sftp_pull.pull(config, drop, pause=0.0, min_age=0.0, now=utcnow, sleep=asyncio.sleep)
    assert later.fetched == ["growing.csv"] and later.waiting == []
    assert (drop / "growing.csv").read_text() == "unique_id,email\nS2,b@campus.test\n"


def test_a_pinned_key_of_another_type_than_the_server_has_is_refused(core, server, drop):
    (server.root / "outgoing" / "users.csv").write_text(USERS)
    pinned = asyncssh.generate_private_key("ecdsa-sha2-nistp256").export_public_key("openssh").decode("ascii")
    configure(core, server, drop, csv_import_sftp_host_key=pinned)
    run = execute_task(core, TASK, "test")
    assert run.outcome == TaskOutcome.FAILED.value
    shown = ssh_keys.describe(server.host_key)
    assert (
        f"SFTP pull FAILED: the SFTP server 127.0.0.1:{server.port} showed a host key ({shown}) that is not "
        f"the pinned SFTP Host Key ({ssh_keys.describe(ssh_keys.host_key(pinned))}): refused to connect."
        in run.message
    )
    assert (server.root / "outgoing" / "users.csv").read_text() == USERS


def test_a_file_the_server_will_not_let_go_of_is_not_imported_until_it_can_be_moved(core, server, drop):
    (server.root / "outgoing" / "users.csv").write_text(USERS)
    server.refuse_moves = True
    configure(core, server, drop)
    run = execute_task(core, TASK, "test")
    assert run.outcome == TaskOutcome.FAILED.value
    assert f"SFTP pull FAILED: SFTP error on 127.0.0.1:{server.port} in folder 'outgoing': " in run.message
    assert external_ids(core) == []
    assert not (drop / "users.csv").exists()  # the copy is dropped, the file stays on the server
    assert (server.root / "outgoing" / "users.csv").read_text() == USERS

    server.refuse_moves = False
    assert execute_task(core, TASK, "test").outcome == TaskOutcome.SUCCESS.value
    assert external_ids(core) == ["S1", "S3"]
    assert (server.root / "outgoing" / ".bak" / "users.csv").is_file()


def test_a_file_written_to_moments_ago_waits_for_the_next_run(core, server, drop, monkeypatch):
    monkeypatch.setattr(tasks, "SFTP_MIN_AGE_SECONDS", 30.0)
    outgoing = server.root / "outgoing"
    (outgoing / "fresh.csv").write_text("unique_id,email\nS1,a@campus.test\n")
    (outgoing / "settled.csv").write_text("unique_id,email\nS2,b@campus.test\n")
    a_minute_ago = time.time() - 60
    os.utime(outgoing / "settled.csv", (a_minute_ago, a_minute_ago))
    configure(core, server, drop)
    run = execute_task(core, TASK, "test")
    assert run.outcome == TaskOutcome.SUCCESS.value, run.message
    assert "left on the SFTP server for the next run (still being written): fresh.csv" in run.message
    assert external_ids(core) == ["S2"]
    assert (outgoing / "fresh.csv").exists()


def test_a_server_with_several_host_keys_shows_the_pinned_one(core, tmp_path, drop):
    root = tmp_path / "multi-root"
    (root / "outgoing").mkdir(parents=True)
    (root / "outgoing" / "users.csv").write_text(USERS)
    server = SftpServer(root)
    ecdsa = asyncssh.generate_private_key("ecdsa-sha2-nistp256")
    server.host_keys.append(ecdsa)
    server.start()
    try:
        configure(
            core, server, drop, csv_import_sftp_host_key=ecdsa.export_public_key("openssh").decode("ascii")
        )
        run = execute_task(core, TASK, "test")
    finally:
        server.stop()
    assert run.outcome == TaskOutcome.SUCCESS.value, run.message
    assert external_ids(core) == ["S1", "S3"]


def test_a_drop_folder_that_cannot_be_written_is_named_and_the_file_stays_on_the_server(server, tmp_path):
    (server.root / "outgoing" / "users.csv").write_text(USERS)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the drop folder should be")
    config = sftp_pull.SftpConfig(
        "127.0.0.1", server.port, USERNAME, PASSWORD, "", server.public_host_key, "outgoing"
    )
    with pytest.raises(sftp_pull.SftpPullError) as failed:
        sftp_pull.pull(config, blocked, pause=0.0, min_age=0.0, now=utcnow)
    assert str(failed.value).startswith(f"could not write {blocked} for the Import Drop Folder: ")
    assert (server.root / "outgoing" / "users.csv").read_text() == USERS


def test_a_file_whose_name_is_not_utf8_is_named_and_does_not_stop_the_others(core, server, drop):
    """A Windows server's "Étudiants.csv" in Latin-1 cannot be decoded as UTF-8: asyncssh refuses
    the whole listing for it, which would fail every run until someone renamed it. It stays on the
    server, named in the log; the other files are fetched and imported."""
    outgoing = server.root / "outgoing"
    (outgoing / "users.csv").write_text(USERS)
    with open(os.path.join(os.fsencode(outgoing), b"\xc9tudiants.csv"), "w") as handle:
        handle.write(USERS)
    configure(core, server, drop)

    run = execute_task(core, TASK, "test")

    assert run.outcome == TaskOutcome.PARTLY_FAILED.value, run.message  # a person must rename it
    assert f"SFTP 127.0.0.1:{server.port}: 1 files fetched (moved into .bak on the server): users.csv" in (
        run.message
    )
    assert (
        "SFTP pull FAILED for files whose names are not UTF-8 (rename them on the server): "
        "\\xc9tudiants.csv" in run.message
    )
    assert sorted(os.listdir(os.fsencode(outgoing))) == [b".bak", b"\xc9tudiants.csv"]
    assert external_ids(core) == ["S1", "S3"]
