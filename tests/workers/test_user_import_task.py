"""The Managed User Import task end to end (``execute_task``, as the worker runs it): not set up it
says what is missing; a dropped file is imported, moved into ``.bak`` and its failed rows arrive as
a CSV attachment in the outbox; a refused file is kept and its reason e-mailed; a file still being
written waits; a second run imports nothing twice; an import cut off by a killed worker (SIGKILL)
is closed as interrupted and its file imported again, no row twice."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dashboard.services import email, system_settings, user_import
from models import OutboxAttachment, OutboxMessage, TaskOutcome, User, UserImport
from workers import tasks
from workers.jobs import execute_task

TASK = "managed-user-import"


@pytest.fixture(autouse=True)
def _quick_settle(monkeypatch):
    monkeypatch.setattr(tasks, "IMPORT_SETTLE_SECONDS", 0.0)


def settings(core, **values: object) -> None:
    with core.db.session() as s:
        system_settings.update(s, core.secrets, values, actor_id=None)


def test_without_a_folder_it_says_what_is_missing(core):
    run = execute_task(core, TASK, "test")
    assert run.outcome == TaskOutcome.NOT_CONFIGURED.value
    assert run.message == "Import Drop Folder not set (System Settings > Third Party > CSV User Import)"


def test_a_dropped_file_is_imported_moved_to_bak_and_its_failures_emailed(core, tmp_path):
    with core.db.session() as s:
        email.ensure_default_templates(s)
    drop = tmp_path / "sftp" / "import"
    settings(
        core,
        csv_import_folder=str(drop),
        csv_import_failed_email="registrar@campus.test",
        system_reply_to_email="parking@campus.test",
    )
    assert execute_task(core, TASK, "test").message == "no file to import"
    assert drop.is_dir()
    (drop / "users.csv").write_text(
        "unique_id,email,first_name\nS1,ana@campus.test,Ana\n"
        "S2,broken,=cmd|' /C calc'!A0\nS3,cy@campus.test,Cy\n"
    )
    (drop / "late.csv.part").write_text("unique_id,email\n")

    run = execute_task(core, TASK, "test")
    assert run.outcome == "success", run.message
    lines = run.message.split("\n")
    assert lines[0] == "1 files processed"
    assert lines[1].startswith(
        "users.csv: 3 rows, 2 created, 0 updated, 0 unchanged, 1 failed; kept as .bak/users.csv, "
        "e-mailed (outbox message "
    )
    assert lines[2] == "left for the next run (still being written): late.csv.part"
    assert run.rows_touched == 2
    assert not (drop / "users.csv").exists() and (drop / ".bak" / "users.csv").is_file()
    with core.db.session() as s:
        assert sorted(s.scalars(select(User.external_id))) == ["S1", "S3"]
        message = s.scalars(select(OutboxMessage)).one()
        assert message.to_addresses == ["registrar@campus.test"]
        assert message.reply_to == "parking@campus.test"
        assert message.subject == "CSV user import users.csv: 1 user(s) failed"
        assert "Row 3 (broken): email: not a valid e-mail address" in message.body_text
        attachment = s.scalars(select(OutboxAttachment)).one()
        assert attachment.filename == "users-failures.csv"
        rows = list(csv.reader(io.StringIO(bytes(attachment.content).decode("utf-8"))))
        history = user_import.history(s)
        assert user_import.failures_file(s, history[0].id) == (
            "users-failures.csv",
            bytes(attachment.content),
        )
    assert rows == [
        ["unique_id", "email", "first_name", "row", "reason"],
        ["S2", "broken", "'=cmd|' /C calc'!A0", "3", "email: not a valid e-mail address"],
    ]
    assert [(h.filename, h.rows_read, h.created, h.failed, h.kept_as) for h in history] == [
        ("users.csv", 3, 2, 1, ".bak/users.csv")
    ]

    again = execute_task(core, TASK, "test")
    assert again.rows_touched == 0 and again.message.startswith("no file to import")
    with core.db.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_a_refused_file_is_kept_reported_and_changes_nothing(core, tmp_path):
    with core.db.session() as s:
        email.ensure_default_templates(s)
    settings(core, csv_import_folder=str(tmp_path), csv_import_failed_email="registrar@campus.test")
    (tmp_path / "staff.csv").write_bytes("unique_id,email\nE1,zo\xe9@campus.test\n".encode("latin-1"))

    run = execute_task(core, TASK, "test")
    assert run.outcome == "partly_failed"
    assert "staff.csv: refused, the file is not UTF-8 (byte 22, line 2)" in run.message
    assert (tmp_path / ".bak" / "staff.csv").read_bytes().endswith(b"\xe9@campus.test\n")
    with core.db.session() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0
        row = s.scalars(select(UserImport)).one()
        assert row.error.startswith("the file is not UTF-8") and row.finished_at is not None
        message = s.scalars(select(OutboxMessage)).one()
        assert message.subject == "CSV user import staff.csv: file refused"
        assert "The file was not imported: the file is not UTF-8" in message.body_text
        assert s.scalar(select(func.count()).select_from(OutboxAttachment)) == 0


def test_progress_is_logged_every_batch(core, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(user_import, "BATCH", 2)
    settings(core, csv_import_folder=str(tmp_path))
    body = "".join(f"S{i},u{i}@campus.test\n" for i in range(5))
    (tmp_path / "many.csv").write_text("unique_id,email\n" + body)
    with caplog.at_level("INFO", logger="workers.tasks.managed-user-import"):
        run = execute_task(core, TASK, "test")
    assert run.rows_touched == 5
    progress = [r.getMessage() for r in caplog.records if "rows read" in r.getMessage()]
    assert progress == [
        "user import: many.csv: 2 rows read, 2 created, 0 updated, 0 failed",
        "user import: many.csv: 4 rows read, 4 created, 0 updated, 0 failed",
    ]


KILLED_WORKER = """
import sys, time
from pathlib import Path
from zoneinfo import ZoneInfo
from dashboard.db import Database
from dashboard.services import email, user_import

user_import.BATCH = 10
db = Database(sys.argv[1])

def progress(line):
    print(line, flush=True)
    time.sleep(120)  # killed here, its first batch committed

user_import.import_file(
    db.session, Path(sys.argv[2]), recipient="", backend=email.OutboxBackend(), reply_to=None,
    tz=ZoneInfo("UTC"), progress=progress,
)
"""


def test_an_import_cut_off_by_a_killed_worker_is_closed_as_interrupted_and_its_file_imported_again(
    core, tmp_path
):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "users.csv").write_text(
        "unique_id,email\n" + "".join(f"S{i:02d},u{i}@campus.test\n" for i in range(30))
    )
    url = core.db.engine.url.render_as_string(hide_password=False)
    worker = subprocess.Popen(
        [sys.executable, "-c", KILLED_WORKER, url, str(drop / "users.csv")],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout.readline().strip() == "users.csv: 10 rows read, 10 created, 0 updated, 0 failed"
    finally:
        worker.kill()  # SIGKILL: no finally block, no rollback handler runs in the worker
        worker.wait(timeout=30)
        worker.stdout.close()
    with core.db.session() as s:
        cut = s.scalars(select(UserImport)).one()
        assert (cut.finished_at, cut.rows_read, cut.created) == (None, 10, 10)
        assert s.scalar(select(func.count()).select_from(User)) == 10
    assert (drop / "users.csv").exists()  # not moved: the next run finds it

    settings(core, csv_import_folder=str(drop))
    run = execute_task(core, TASK, "test")

    assert run.outcome == "success", run.message
    assert run.message.split("\n") == [
        "1 files processed",
        "users.csv: interrupted (the worker stopped); imported again",
        "users.csv: 30 rows, 20 created, 0 updated, 10 unchanged, 0 failed; kept as .bak/users.csv",
    ]
    with core.db.session() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 30
        assert s.scalar(select(func.count(func.distinct(User.external_id)))) == 30
        again, interrupted = user_import.history(s)
    assert (again.rows_read, again.created, again.error) == (30, 20, "")
    assert interrupted.finished_at is not None and (interrupted.rows_read, interrupted.created) == (10, 10)
    assert interrupted.error == user_import.INTERRUPTED
    assert interrupted.error.startswith("interrupted: the worker stopped before the file was finished")
    # Nothing is left "running": a third run finds nothing to close or import.
    assert execute_task(core, TASK, "test").message == "no file to import"
