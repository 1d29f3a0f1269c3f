"""PeopleSoft holds files over a scripted week: tickets issued, partly paid, fully paid, voided, a
user without a Student/Staff ID; each night's Holds Added and Holds Released files must match the
expected files byte for byte, and the e-mail must carry them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from dashboard.services import email, peoplesoft, violations
from dashboard.services.errors import ValidationFailed
from dashboard.services.plates import normalize_plate
from models import (
    OutboxAttachment,
    OutboxMessage,
    Payment,
    PaymentAllocation,
    PaymentStatus,
    PeopleSoftHold,
    Role,
    User,
    UserType,
    Vehicle,
)
from tests.enforcement import make_place, pay_violation, write_ticket

TORONTO = ZoneInfo("America/Toronto")
PATTERN = "holds_{type}_{date}.txt"
HEADER = b"Student/Staff ID\tTotal Amount Owed\tUser Type\tViolation Type\tViolation Date\r\n"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TORONTO).astimezone(UTC)


def add_owner(
    core, email_address: str, plate: str, type_code: str, external_id: str | None, name: str
) -> int:
    with core.db.session() as s:
        user_type = s.scalar(select(UserType).where(UserType.code == type_code))
        first, last = name.split()
        user = User(
            email=email_address,
            first_name=first,
            last_name=last,
            role=int(Role.USER),
            user_type=user_type,
            external_id=external_id,
        )
        user.vehicles = [Vehicle(plate=plate, plate_normalized=normalize_plate(plate))]
        s.add(user)
        s.flush()
        return user.id


def part_pay(core, violation_id: int, cents: int) -> None:
    """A successful payment that covers part of a violation (it stays unpaid)."""
    with core.db.session() as s:
        payment = Payment(
            idempotency_key=f"part-{uuid.uuid4().hex}",
            provider="sandbox",
            status=PaymentStatus.SUCCEEDED,
            amount_cents=cents,
        )
        payment.allocations = [PaymentAllocation(violation_id=violation_id, amount_cents=cents)]
        s.add(payment)


@pytest.fixture
def town(core, make_user):
    with core.db.session() as s:
        email.ensure_default_templates(s)
        s.add_all([UserType(code="student", name="Student"), UserType(code="staff", name="Staff")])
    place = make_place(core)
    officer = make_user(Role.OFFICER).id
    people = {
        "ana": add_owner(core, "ana@campus.test", "AAA 111", "student", "S100", "Ana Avery"),
        "bo": add_owner(core, "bo@campus.test", "BBB 222", "staff", "E200", "Bo Brook"),
        "cy": add_owner(core, "cy@campus.test", "CCC 333", "student", None, "Cy Cole"),
        "di": add_owner(core, "di@campus.test", "DDD 444", "student", "S400", "Di Dane"),
    }
    return place, officer, people


def nightly(core, now: datetime) -> peoplesoft.ReportView:
    with core.db.session() as s:
        return peoplesoft.run_report(
            s, now, TORONTO, pattern=PATTERN, recipient="holds@campus.test", backend=email.OutboxBackend()
        )


def files(core, report: peoplesoft.ReportView) -> tuple[bytes, bytes]:
    with core.db.session() as s:
        added = peoplesoft.report_file(s, report.id, "added")
        released = peoplesoft.report_file(s, report.id, "released")
    assert added is not None and released is not None
    assert (added.filename, released.filename) == (report.added_filename, report.released_filename)
    return added.content, released.content


def attachments(core, message_id: int | None) -> dict[str, bytes]:
    with core.db.session() as s:
        rows = s.scalars(select(OutboxAttachment).where(OutboxAttachment.message_id == message_id))
        return {row.filename: bytes(row.content) for row in rows}


def test_a_scripted_week_of_violations_and_payments_gives_these_files_byte_for_byte(core, town):
    place, officer, people = town

    # Monday evening: Ana (no valid permit, $50), Bo (fire lane, $100) and Cy (no ID) get tickets.
    ana1 = write_ticket(core, officer, place, plate="AAA 111", now=local(2026, 3, 2, 20, 0))
    bo1 = write_ticket(
        core, officer, place, plate="BBB 222", offences=(place.fl,), now=local(2026, 3, 2, 21, 0)
    )
    write_ticket(core, officer, place, plate="CCC 333", now=local(2026, 3, 2, 22, 0))
    night1 = nightly(core, local(2026, 3, 3, 2, 0))
    assert files(core, night1) == (
        HEADER
        + b"E200\t100.00\tStaff\tFire lane\t2026-03-02\r\n"
        + b"S100\t50.00\tStudent\tNo valid permit\t2026-03-02\r\n",
        HEADER,
    )
    assert (night1.added_filename, night1.released_filename) == (
        "holds_added_20260303.txt",
        "holds_released_20260303.txt",
    )
    assert [(s.name, s.email, s.owed_cents) for s in night1.skipped] == [("Cy Cole", "cy@campus.test", 5000)]
    assert attachments(core, night1.outbox_message_id) == dict(
        zip((night1.added_filename, night1.released_filename), files(core, night1), strict=True)
    )

    # Tuesday: Ana pays $20 of her $50 (the hold amount changes); Di gets one ticket for two
    # offences (the first names the violation type).
    part_pay(core, ana1.id, 2000)
    write_ticket(
        core, officer, place, plate="DDD 444", offences=(place.fl, place.nvp), now=local(2026, 3, 3, 9, 15)
    )
    night2 = nightly(core, local(2026, 3, 4, 2, 0))
    assert files(core, night2) == (
        HEADER
        + b"S100\t30.00\tStudent\tNo valid permit\t2026-03-02\r\n"
        + b"S400\t150.00\tStudent\tFire lane\t2026-03-03\r\n",
        HEADER,
    )
    assert [s.name for s in night2.skipped] == ["Cy Cole"]

    # Wednesday: Ana pays the rest, Bo's ticket is voided: both are released, with 0.00.
    pay_violation(core, ana1.id, 3000)
    with core.db.session() as s:
        violations.void_violation(s, bo1.id, "Wrong plate read", None, local(2026, 3, 4, 11, 0))
    night3 = nightly(core, local(2026, 3, 5, 2, 0))
    assert files(core, night3) == (
        HEADER,
        HEADER
        + b"E200\t0.00\tStaff\tFire lane\t2026-03-02\r\nS100\t0.00\tStudent\tNo valid permit\t2026-03-02\r\n",
    )

    # Thursday: nothing changed. Nobody is released twice and nothing is e-mailed.
    messages_before = message_count(core)
    night4 = nightly(core, local(2026, 3, 6, 2, 0))
    assert files(core, night4) == (HEADER, HEADER)
    assert night4.outbox_message_id is None and message_count(core) == messages_before

    # Friday: Ana gets a new ticket after midnight local time (its date is the local date).
    write_ticket(core, officer, place, plate="AAA 111", offences=(place.fl,), now=local(2026, 3, 7, 0, 30))
    night5 = nightly(core, local(2026, 3, 8, 2, 0))
    assert files(core, night5) == (HEADER + b"S100\t100.00\tStudent\tFire lane\t2026-03-07\r\n", HEADER)

    with core.db.session() as s:
        held = dict(s.execute(select(PeopleSoftHold.student_id, PeopleSoftHold.amount_cents)).all())
        assert held == {"S100": 10000, "S400": 15000}
        reports = peoplesoft.list_reports(s)
        assert [r.id for r in reports] == [night5.id, night4.id, night3.id, night2.id, night1.id]
        assert [(h.student_id, h.name) for h in peoplesoft.current_holds(s)] == [
            ("S100", "Ana Avery"),
            ("S400", "Di Dane"),
        ]


def message_count(core) -> int:
    with core.db.session() as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage))


def test_the_email_uses_the_template_and_names_both_files(core, town):
    place, officer, _people = town
    write_ticket(core, officer, place, plate="BBB 222", offences=(place.fl,), now=local(2026, 3, 2, 21, 0))
    report = nightly(core, local(2026, 3, 3, 2, 0))
    with core.db.session() as s:
        message = s.get(OutboxMessage, report.outbox_message_id)
        assert message.to_addresses == ["holds@campus.test"]
        assert message.template_key == "peoplesoft-holds-report"
        assert message.subject == "PeopleSoft holds report 2026-03-03"
        assert "Holds added: 1 (holds_added_20260303.txt)" in message.body_text
        assert "Holds released: 0 (holds_released_20260303.txt)" in message.body_text
        types = set(s.scalars(select(OutboxAttachment.content_type)))
        assert types == {"text/plain; charset=utf-8"}


def test_a_report_that_cannot_be_sent_changes_no_hold(core, town):
    """A bad recipient fails the whole report: the holds stay as they were for the next run."""
    place, officer, _people = town
    write_ticket(core, officer, place, plate="BBB 222", now=local(2026, 3, 2, 21, 0))
    with pytest.raises(ValidationFailed), core.db.session() as s:
        peoplesoft.run_report(
            s, local(2026, 3, 3, 2, 0), TORONTO, pattern=PATTERN, recipient="not an address",
            backend=email.OutboxBackend(),
        )  # fmt: skip
    with core.db.session() as s:
        assert s.scalar(select(func.count()).select_from(PeopleSoftHold)) == 0
        assert peoplesoft.list_reports(s) == []


def test_a_tab_or_line_break_in_a_value_cannot_break_a_row():
    assert peoplesoft.render_file([("X1", 5, "Stu\tdent", "Fire\nlane", None)]) == (
        HEADER + b"X1\t0.05\tStu dent\tFire lane\t\r\n"
    )


def test_file_names_follow_the_pattern_and_unknown_files_are_none(core):
    day = datetime(2026, 11, 1).date()
    assert peoplesoft.file_name("ps-{type}-{date}.txt", "released", day) == "ps-released-20261101.txt"
    with pytest.raises(ValueError, match="must contain"):
        peoplesoft.file_name("holds.txt", "added", day)
    with core.db.session() as s:
        for report_id, kind in [
            (1, "added"),
            (True, "added"),
            ("1", "added"),
            (2**40, "added"),
            (1, "other"),
        ]:
            assert peoplesoft.report_file(s, report_id, kind) is None
