"""Writing tickets (numbers, due dates, an idempotent submit, also when two submits race),
"overdue", search and CSV export, voiding, and the payment seam (``mark_paid``)."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from dashboard.services import ticket_numbers, violations
from dashboard.services.errors import NotAllowed, ValidationFailed
from dashboard.services.violations import Filters, TicketDraft
from models import AuditLog, Payment, PaymentStatus, Role, Violation, ViolationStatus
from tests.enforcement import make_place, pay_violation, write_ticket

TZ = ZoneInfo("America/Toronto")


@pytest.fixture
def place(core):
    return make_place(core)


@pytest.fixture
def officer(make_user):
    return make_user(Role.OFFICER, first_name="Marcus", last_name="Chen")


def test_a_ticket_gets_a_friendly_unique_number_its_items_and_a_due_date(core, place, officer):
    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    ticket = write_ticket(core, officer.id, place, plate="abc-123", offences=(place.nvp, place.fl), now=now)
    assert ticket_numbers.TICKET_RE.match(ticket.ticket_number)
    assert not set(ticket.ticket_number) & set("01OILU")
    assert ticket.plate == "ABC-123" and ticket.lot_name == "Visitor Lot"
    assert [(i.code, i.amount_cents) for i in ticket.items] == [("NVP", 5000), ("FL", 10000)]
    assert ticket.total_cents == 15000
    assert ticket.due_at == now + timedelta(days=30)
    assert ticket.early_total_cents == 14000 and ticket.discount_until == now + timedelta(days=7)
    assert ticket.officer_name == "Marcus Chen"
    with core.db.session() as s:
        assert (
            s.scalar(select(AuditLog.action).where(AuditLog.entity_id == str(ticket.id))) == "violation.issue"
        )
    numbers = {write_ticket(core, officer.id, place, plate=f"P{n}X").ticket_number for n in range(30)}
    assert len(numbers) == 30


def test_a_retried_submit_returns_the_first_ticket(core, place, officer):
    key = str(uuid.uuid4())
    first = write_ticket(core, officer.id, place, key=key)
    draft = TicketDraft(key, officer.id, place.lot_id, "ABC 123", (place.nvp,))
    with core.db.session() as s:
        again = violations.issue_ticket(s, draft, datetime.now(UTC), due_days=30, boots_enabled=False)
        assert again.created is False and again.ticket.ticket_number == first.ticket_number
        assert s.scalar(select(func.count()).select_from(Violation)) == 1


def test_two_submits_of_one_form_at_once_make_one_ticket(core, place, officer):
    key = str(uuid.uuid4())
    barrier = threading.Barrier(4)
    results: list[object] = []

    def submit() -> None:
        barrier.wait()
        try:
            results.append(write_ticket(core, officer.id, place, key=key).ticket_number)
        except Exception as exc:  # noqa: BLE001 (the assertion below shows it)
            results.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and isinstance(results[0], str), results
    with core.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Violation)) == 1


def test_bad_input_is_refused_field_by_field_and_writes_nothing(core, place, officer):
    draft = TicketDraft(str(uuid.uuid4()), officer.id, None, "!", (), notes="x" * 3000)
    with core.db.session() as s, pytest.raises(ValidationFailed) as refused:
        violations.issue_ticket(s, draft, datetime.now(UTC), due_days=30, boots_enabled=True)
    assert set(refused.value.errors) == {"lot", "plate", "offences", "notes"}
    with core.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Violation)) == 0


def test_overdue_is_an_unpaid_violation_past_its_due_date(core, place, officer):
    issued = datetime.now(UTC) - timedelta(days=40)
    ticket = write_ticket(core, officer.id, place, now=issued)
    with core.db.session() as s:
        assert violations.get_violation(s, ticket.id, datetime.now(UTC)).shown_status == "overdue"
        assert violations.overdue_ids(s, datetime.now(UTC), plate="abc123") == [ticket.id]
        s.get(Violation, ticket.id).status = ViolationStatus.UNDER_APPEAL
    with core.db.session() as s:
        assert violations.get_violation(s, ticket.id, datetime.now(UTC)).shown_status == "under_appeal"
        assert violations.overdue_ids(s, datetime.now(UTC), plate="abc123") == []


def test_search_filters_and_the_csv_holds_every_match(core, place, officer, make_user):
    other = make_user(Role.OFFICER, first_name="=HYPERLINK(1)")
    now = datetime(2026, 12, 10, 17, 0, tzinfo=UTC)
    write_ticket(core, officer.id, place, plate="AAA 111", now=now - timedelta(days=45))
    write_ticket(core, officer.id, place, plate="BBB 222", now=now - timedelta(days=1))
    write_ticket(core, other.id, place, plate="CCC 333", now=now)
    with core.db.session() as s:
        assert violations.search(s, Filters(), now, TZ).total == 3
        overdue = violations.search(s, Filters(status="overdue"), now, TZ)
        assert [r.plate for r in overdue.rows] == ["AAA 111"]
        assert [r.plate for r in violations.search(s, Filters(status="unpaid"), now, TZ).rows] == [
            "CCC 333",
            "BBB 222",
        ]
        assert violations.search(s, Filters(plate="bbb-222"), now, TZ).total == 1
        assert violations.search(s, Filters(officer_id=other.id), now, TZ).total == 1
        day = Filters(issued_from=date(2026, 12, 9), issued_to=date(2026, 12, 9))
        assert [r.plate for r in violations.search(s, day, now, TZ).rows] == ["BBB 222"]
        page = violations.search(s, Filters(), now, TZ, page=2, page_size=2)
        assert (page.page, page.pages, len(page.rows)) == (2, 2, 1)
        text = violations.export_csv(s, Filters(officer_id=officer.id), now, TZ)
        theirs = violations.export_csv(s, Filters(officer_id=other.id), now, TZ)
    assert list(csv.DictReader(io.StringIO(theirs)))[0]["officer"].startswith("'=HYPERLINK(1)")  # text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["plate"], r["status"], r["total"]) for r in rows] == [
        ("BBB 222", "Unpaid", "50.00"),
        ("AAA 111", "Overdue", "50.00"),
    ]


@pytest.mark.parametrize(
    ("filters", "field", "message"),
    [
        (Filters(plate="x" * 100_000), "plate", "at most 16 characters"),
        (Filters(plate="ABC 123 ABC 123 X"), "plate", "at most 16 characters"),
        (Filters(ticket="T-7K3-9QX" * 4), "ticket", "at most 32 characters"),
        (Filters(issued_to=date(9999, 12, 31)), "to", "a date from 1900 to 2999"),
        (Filters(issued_from=date(1, 1, 1)), "from", "a date from 1900 to 2999"),
        (Filters(issued_from=date(2026, 12, 2), issued_to=date(2026, 12, 1)), "to", "before the start"),
    ],
)
def test_a_search_no_violation_could_match_is_refused_with_the_reason(core, filters, field, message):
    """A plate or ticket number longer than any can be (a LIKE pattern that long is "too complex"
    for SQLite), or a day at the calendar's end (no day after it to end the range), is a message."""
    now = datetime(2026, 12, 10, 17, 0, tzinfo=UTC)
    with core.db.session() as s:
        for run in (
            lambda: violations.search(s, filters, now, TZ),
            lambda: violations.export_csv(s, filters, now, TZ),
        ):
            with pytest.raises(ValidationFailed) as refused:
                run()
            assert message in refused.value.errors[field]


def test_void_needs_a_reason_is_audited_and_a_paid_violation_cannot_be_voided(core, place, officer):
    first = write_ticket(core, officer.id, place)
    with core.db.session() as s, pytest.raises(ValidationFailed):
        violations.void_violation(s, first.id, "  ", None, datetime.now(UTC))
    with core.db.session() as s:
        violations.void_violation(s, first.id, "Wrong plate read", officer.id, datetime.now(UTC))
    with core.db.session() as s:
        view = violations.get_violation(s, first.id, datetime.now(UTC))
        assert (view.status, view.void_reason) == ("void", "Wrong plate read")
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "violation.void"))
        assert entry.changes["reason"] == "Wrong plate read" and entry.actor_id == officer.id
    second = write_ticket(core, officer.id, place, plate="ZZZ 999")
    pay_violation(core, second.id, 5000)
    with core.db.session() as s, pytest.raises(NotAllowed):
        violations.void_violation(s, second.id, "too late", None, datetime.now(UTC))


def test_mark_paid_needs_a_successful_payment_of_that_violation_and_is_idempotent(core, place, officer):
    ticket = write_ticket(core, officer.id, place)
    payment_id = pay_violation(core, ticket.id, 5000)
    with core.db.session() as s:
        assert violations.mark_paid(s, ticket.id, payment_id, datetime.now(UTC)) is False
        assert violations.get_violation(s, ticket.id, datetime.now(UTC)).status == "paid"
        assert violations.paid_by(s, ticket.id).payment_id == payment_id
    other = write_ticket(core, officer.id, place, plate="ZZZ 999")
    with core.db.session() as s, pytest.raises(NotAllowed):
        violations.mark_paid(s, other.id, payment_id, datetime.now(UTC))
    with core.db.session() as s:
        s.get(Payment, payment_id).status = PaymentStatus.DECLINED
    with core.db.session() as s:
        assert violations.paid_by(s, ticket.id) is None


def test_ticket_numbers_typed_loosely_are_found(core, place, officer):
    ticket = write_ticket(core, officer.id, place)
    typed = ticket.ticket_number.lower().replace("-", " ")
    with core.db.session() as s:
        assert violations.get_ticket(s, typed, datetime.now(UTC)).id == ticket.id
