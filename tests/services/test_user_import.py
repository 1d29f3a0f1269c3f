"""The user importer: header matching, validation shared with the APIs, upsert by unique id, the
failures CSV (formula-neutralised), and files refused whole (encoding, BOM, headers, empty) with
nothing written; the drop folder's "still being written" rule and the ``.bak`` move."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from dashboard.services import user_import
from dashboard.services.user_import import ImportRefused
from models import LoginMethod, User, UserImport, UserType


def run(session, text: str | bytes, filename: str = "users.csv"):
    data = text.encode("utf-8") if isinstance(text, str) else text
    out = io.StringIO()
    summary = user_import.import_stream(session, io.BytesIO(data), filename, failures_out=out)
    return summary, list(csv.reader(io.StringIO(out.getvalue())))


def add_types(session) -> None:
    session.add_all(
        [
            UserType(code="student", name="Student", login_method=LoginMethod.SSO),
            UserType(code="public", name="Public"),
        ]
    )
    session.flush()


def test_rows_upsert_by_unique_id_with_any_accepted_header_name(session):
    add_types(session)
    summary, failures = run(
        session,
        "student_no,Email,FirstName,surname,user_type_id,phone_cell,street\r\n"
        "S1,Ana@Campus.test,Ana,Avery,Student,555-1000,1 Main St\r\n"
        "S2,bo@campus.test,Bo,Berg,public,,\r\n",
    )
    assert (summary.rows_read, summary.created, summary.updated, summary.failed) == (2, 2, 0, 0)
    assert failures == [
        [
            "student_no",
            "Email",
            "FirstName",
            "surname",
            "user_type_id",
            "phone_cell",
            "street",
            "row",
            "reason",
        ]
    ]
    ana = session.scalar(select(User).where(User.external_id == "S1"))
    assert (ana.email, ana.first_name, ana.last_name, ana.phone) == (
        "ana@campus.test",
        "Ana",
        "Avery",
        "555-1000",
    )
    assert ana.user_type.code == "student" and ana.auth_source == "saml" and ana.password_hash is None

    again, _ = run(
        session, "unique_id,email,last_name\nS1,ana.avery@campus.test,Avery-Lee\nS2,bo@campus.test,Berg\n"
    )
    assert (again.created, again.updated, again.unchanged) == (0, 1, 1)
    session.refresh(ana)
    assert (ana.email, ana.first_name, ana.last_name) == ("ana.avery@campus.test", "Ana", "Avery-Lee")
    assert session.scalar(select(func.count()).select_from(User)) == 2


def test_an_account_made_by_hand_is_adopted_by_its_email(session, make_user):
    made = make_user(email="cy@campus.test")
    summary, _ = run(session, "unique_id,email\nE7,CY@campus.test\n")
    assert summary.updated == 1
    assert session.get(User, made.id).external_id == "E7"


def test_failed_rows_carry_their_reason_and_formulas_are_neutralised(session, make_user):
    add_types(session)
    session.add(User(email="taken@campus.test", external_id="OTHER"))
    session.flush()
    summary, failures = run(
        session,
        "unique_id,email,first_name,user_type\n"
        'S1,not-an-email,=HYPERLINK("http://evil"),student\n'
        ",nobody@campus.test,+Sum,public\n"
        "S3,taken@campus.test,@me,public\n"
        "S4,dee@campus.test,-Dee,Alumni\n"
        "S5,eve,\tEve,public\n"
        "S6,ok@campus.test,Ok,public\n",
    )
    assert (summary.rows_read, summary.created, summary.failed) == (6, 1, 5)
    rows = failures[1:]
    assert [r[-2] for r in rows] == ["2", "3", "4", "5", "6"]
    assert rows[0][2] == '\'=HYPERLINK("http://evil")' and rows[0][-1] == "email: not a valid e-mail address"
    assert rows[1][2] == "'+Sum" and rows[1][-1] == "unique_id: missing"
    assert rows[2][2] == "'@me" and rows[2][-1] == (
        "email: taken@campus.test belongs to an account with another unique id"
    )
    assert rows[3][2] == "'-Dee" and rows[3][-1] == "user_type: unknown value 'Alumni'"
    assert rows[4][2] == "'\tEve"
    assert summary.failures[0] == {
        "row": 2,
        "email": "not-an-email",
        "reason": "email: not a valid e-mail address",
    }
    assert session.scalar(select(func.count()).select_from(User)) == 2


def test_a_bom_is_accepted(session):
    summary, _ = run(session, b"\xef\xbb\xbfunique_id,email\r\nS1,ana@campus.test\r\n")
    assert summary.created == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty: it has no header line"),
        (b"\r\n\r\n", "the file is empty: it has no header line"),
        (b"unique_id,email\r\n", "the file has a header line but no rows"),
        (
            "unique_id,email\nS1,ana@campus.test\nS2,zo\xe9@campus.test\n".encode("latin-1"),
            "the file is not UTF-8 (byte 41, line 3); save it as CSV UTF-8 and drop it again",
        ),
        (
            "unique_id,email\n".encode("utf-16"),
            "the file is UTF-16; save it as CSV UTF-8 and drop it again",
        ),
        (
            b"unique_id,email,Email\nS1,a@b.test,a@b.test\n",
            "the header 'Email' appears twice (columns 2 and 3)",
        ),
        (
            b"unique_id,first_name\nS1,Ana\n",
            "missing required columns: E-mail (one of email, email_address, e_mail)",
        ),
        (
            b"unique_id,email,shoe_size\nS1,a@b.test,9\n",
            "unknown column headers: 'shoe_size' (the accepted names are listed on User Import)",
        ),
        (b"unique_id,,email\nS1,,a@b.test\n", "column 2 has no header name"),
    ],
)
def test_a_file_refused_for_its_form_writes_nothing(session, content, reason):
    with pytest.raises(ImportRefused) as refused:
        run(session, content)
    assert str(refused.value) == reason
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_validation_names_every_problem():
    with pytest.raises(ValueError, match=r"^unique_id: missing; email: missing$"):
        user_import.validate_record({})
    with pytest.raises(ValueError, match="first_name: longer than 80 characters"):
        user_import.validate_record({"unique_id": "1", "email": "a@b.test", "first_name": "x" * 81})
    record = user_import.validate_record({"unique_id": " 7 ", "email": " A@B.test "})
    assert (record.unique_id, record.email, record.first_name) == ("7", "a@b.test", None)


def test_files_still_being_written_wait_for_the_next_run(tmp_path):
    folder = tmp_path / "drop"
    (folder).mkdir()
    done = folder / "done.csv"
    done.write_text("unique_id,email\n")
    growing = folder / "growing.csv"
    growing.write_text("unique_id,email\n")
    (folder / "upload.csv.part").write_text("x")
    (folder / ".hidden.csv").write_text("x")
    (folder / "notes.txt").write_text("x")

    def sleep(_seconds: float) -> None:
        with growing.open("a") as handle:
            handle.write("S1,a@b.test\n")

    ready, waiting = user_import.ready_files(folder, pause=0, sleep=sleep)
    assert ready == [done]
    assert waiting == ["growing.csv", "upload.csv.part"]


def test_the_drop_folder_and_bak_are_made_and_nothing_is_overwritten(tmp_path):
    folder = tmp_path / "new" / "drop"
    assert user_import.ready_files(folder, pause=0) == ([], [])
    assert folder.is_dir()
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    for content in ("first", "second"):
        (folder / "users.csv").write_text(content)
        user_import.move_to_bak(folder / "users.csv", now)
    kept = sorted(p.name for p in (folder / ".bak").iterdir())
    assert kept == ["users-20260302T100000000000.csv", "users.csv"]
    assert (folder / ".bak" / "users.csv").read_text() == "first"


CHUNK = [
    user_import.Record("A1", "a@x.test"),  # adopts the account made by hand
    user_import.Record("B", "b2@x.test", last_name="Berg"),  # changes its address: bounce cleared
    user_import.Record("N1", "b@x.test"),  # the address the row before freed
    user_import.Record("N2", "c@x.test"),  # another unique id's address
    user_import.Record("C", "a@x.test"),  # an address adopted two rows ago
    user_import.Record("N3", "n3@x.test", user_name="ann"),  # someone else's user name
    user_import.Record("N1", "n1@x.test", first_name="Nia"),  # made earlier in the chunk, changed
    user_import.Record("N4", "n4@x.test", user_type="student"),  # an SSO user type
    user_import.Record("N5", "n5@x.test", user_type="alumni"),  # no such user type
    user_import.Record("C", "c@x.test"),  # as it is
    user_import.Record("N1", "n1@x.test", first_name="Nia"),  # as the chunk left it
]


def _accounts_for_chunk(session) -> None:
    add_types(session)
    session.add_all(
        [
            User(email="a@x.test", username="ann"),
            User(email="b@x.test", external_id="B", email_bounced_at=datetime(2026, 1, 1, tzinfo=UTC)),
            User(email="c@x.test", external_id="C"),
        ]
    )
    session.flush()


def _state(session) -> list[tuple]:
    session.expire_all()
    return sorted(
        (u.email, u.external_id, u.username, u.first_name, u.last_name, str(u.auth_source),
         u.user_type.code if u.user_type else None, u.email_bounced_at is not None)
        for u in session.scalars(select(User))
    )  # fmt: skip


def _words(results) -> list[str]:
    return [r.action if isinstance(r, user_import.Outcome) else str(r) for r in results]


def test_a_chunk_upserted_at_once_ends_as_row_by_row_would(session):
    _accounts_for_chunk(session)
    types = user_import.user_type_index(session)
    with session.begin_nested() as one_by_one:
        expected = []
        for record in CHUNK:
            try:
                with session.begin_nested():
                    expected.append(user_import.upsert(session, record, types))
            except user_import.InvalidRecord as exc:
                expected.append(exc)
        expected_state = _state(session)
        one_by_one.rollback()

    results = user_import.upsert_many(session, CHUNK, types)

    assert _words(results) == _words(expected) == [
        "updated", "updated", "created", "email: c@x.test belongs to an account with another unique id",
        "email: a@x.test belongs to another account", "user_name: 'ann' belongs to another account",
        "updated", "created", "user_type: unknown value 'alumni'", "unchanged", "unchanged",
    ]  # fmt: skip
    assert _state(session) == expected_state
    n1 = session.scalar(select(User).where(User.external_id == "N1"))
    assert [r.user_id for r in results if isinstance(r, user_import.Outcome)][2] == n1.id


def test_a_chunk_the_database_refuses_in_bulk_is_redone_row_by_row(session, monkeypatch):
    """An account the chunk's query did not see (made meanwhile by a sign-up) makes the bulk
    INSERT fail on the unique e-mail: the rows are then upserted one by one, none lost."""
    _accounts_for_chunk(session)
    monkeypatch.setattr(user_import, "_load_accounts", lambda _session, _records: [])
    types = user_import.user_type_index(session)
    results = user_import.upsert_many(
        session, [user_import.Record("Z1", "z1@x.test"), user_import.Record("N2", "c@x.test")], types
    )
    assert _words(results) == ["created", "email: c@x.test belongs to an account with another unique id"]
    assert session.scalar(select(User.email).where(User.external_id == "Z1")) == "z1@x.test"


def test_open_imports_are_closed_as_interrupted_saying_whether_their_file_is_imported_again(
    session, tmp_path
):
    (tmp_path / "still-here.csv").write_text("unique_id,email\n")
    started = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    session.add_all(
        [
            UserImport(filename="still-here.csv", started_at=started, rows_read=500),
            UserImport(filename="moved.csv", started_at=started, rows_read=40),
            UserImport(filename="done.csv", started_at=started, finished_at=started),
        ]
    )
    session.flush()
    now = datetime(2026, 3, 1, 2, 5, tzinfo=UTC)
    assert user_import.close_interrupted(session, tmp_path, now) == [
        ("still-here.csv", True),
        ("moved.csv", False),
    ]
    rows = {r.filename: r for r in session.scalars(select(UserImport))}
    assert rows["still-here.csv"].error == user_import.INTERRUPTED
    assert rows["moved.csv"].error == user_import.INTERRUPTED_AFTER_MOVE
    assert rows["done.csv"].error == ""
    assert all(r.finished_at is not None for r in rows.values())
    assert user_import.close_interrupted(session, tmp_path, now) == []


def test_a_growing_table_gets_its_planner_statistics_refreshed_at_each_doubling(session, monkeypatch):
    monkeypatch.setattr(user_import, "BATCH", 2)
    monkeypatch.setattr(user_import, "ANALYZE_FIRST", 2)
    refreshed: list[int] = []
    real = user_import.refresh_statistics

    def spy(s) -> None:
        refreshed.append(s.scalar(select(func.count()).select_from(User)))
        real(s)

    monkeypatch.setattr(user_import, "refresh_statistics", spy)
    summary, _ = run(session, "unique_id,email\n" + "".join(f"S{i},u{i}@x.test\n" for i in range(10)))
    assert summary.created == 10
    assert refreshed == [2, 4, 8]  # then at 16, 32...
