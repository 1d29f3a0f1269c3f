"""Appeals: an owner (a guest with ticket + plate, or signed in) appeals; the violation is under
appeal and not overdue meanwhile; a manager upholds, cancels or reduces it; both steps e-mail."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import select

from dashboard.services import appeals, email, violations
from dashboard.services.appeals import Site
from dashboard.services.errors import NotAllowed, NotFound, ValidationFailed
from models import Appeal, AuditLog, OutboxMessage, Role, Vehicle, ViolationPhoto
from tests.enforcement import make_place, write_ticket

SITE = Site("Campus", "https://parking.example.edu", ZoneInfo("America/Toronto"))


@pytest.fixture
def ticket(core, make_user):
    with core.db.session() as s:
        email.ensure_default_templates(s)
    place = make_place(core)
    officer = make_user(Role.OFFICER)
    return write_ticket(core, officer.id, place, plate="ABC 123", now=datetime.now(UTC) - timedelta(days=29))


def submit(core, ticket_number: str, plate: str = "abc-123", **more: object) -> appeals.Submitted:
    values: dict[str, object] = {
        "ticket": ticket_number,
        "plate": plate,
        "text": "The pay station was broken that morning.",
        "email_address": "owner@example.com",
        "user_id": None,
        "photo": None,
        **more,
    }
    with core.db.session() as s:
        return appeals.submit_appeal(
            s, instance_path=core.settings.instance_path, site=SITE, backend=email.OutboxBackend(),
            now=datetime.now(UTC), **values,
        )  # fmt: skip


def decide(core, appeal_id: int, outcome: str, reduced_to: int | None = None) -> appeals.Decided:
    with core.db.session() as s:
        return appeals.decide_appeal(
            s, appeal_id, outcome=outcome, note="Checked the pay station log.", reduced_to_cents=reduced_to,
            actor_id=None, due_days=30, site=SITE, backend=email.OutboxBackend(), now=datetime.now(UTC),
        )  # fmt: skip


def outbox(core) -> list[OutboxMessage]:
    with core.db.session() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_a_guest_appeal_puts_the_ticket_under_appeal_and_not_overdue(core, ticket):
    jpeg = io.BytesIO()
    Image.new("RGB", (30, 30)).save(jpeg, format="JPEG")
    submitted = submit(core, ticket.ticket_number, photo=jpeg.getvalue())
    later = datetime.now(UTC) + timedelta(days=5)  # past the ticket's due date
    with core.db.session() as s:
        view = violations.get_violation(s, ticket.id, later)
        assert view.shown_status == "under_appeal" and view.appeal.status == "pending"
        assert len(view.appeal.photo_ids) == 1
        assert violations.overdue_ids(s, later, plate="ABC123") == []
        assert s.scalar(select(ViolationPhoto.appeal_id)) == submitted.appeal_id
    sent = outbox(core)
    assert [m.template_key for m in sent] == ["appeal-received"]
    assert sent[0].to_addresses == ["owner@example.com"] and ticket.ticket_number in sent[0].subject
    with pytest.raises(NotAllowed, match="already under appeal"):
        submit(core, ticket.ticket_number)


def test_a_wrong_plate_and_a_wrong_number_get_the_same_answer(core, ticket):
    with pytest.raises(NotFound) as wrong_plate:
        submit(core, ticket.ticket_number, plate="ZZZ 999")
    with pytest.raises(NotFound) as wrong_number:
        submit(core, "T-222-222")
    assert str(wrong_plate.value) == str(wrong_number.value)


def test_a_signed_in_owner_appeals_with_the_ticket_number_alone(core, make_user, session):
    owner = make_user(Role.USER)
    session.add(Vehicle(user_id=owner.id, plate="OWN 1", plate_normalized="OWN1"))
    session.commit()
    place = make_place(core)
    ticket = write_ticket(core, make_user(Role.OFFICER).id, place, plate="OWN 1")
    assert (
        submit(core, ticket.ticket_number, plate="", user_id=owner.id).ticket_number == ticket.ticket_number
    )
    with pytest.raises(NotFound):
        submit(core, ticket.ticket_number, plate="", user_id=None)


def test_bad_input_is_refused_before_anything_is_written(core, ticket):
    with pytest.raises(ValidationFailed) as refused:
        submit(core, ticket.ticket_number, text="no", email_address="nope", photo=b"not an image")
    assert set(refused.value.errors) == {"text", "email"}
    with pytest.raises(ValidationFailed, match="photo"):
        submit(core, ticket.ticket_number, photo=b"not an image")
    with core.db.session() as s:
        assert s.scalar(select(Appeal.id)) is None
        assert violations.get_violation(s, ticket.id, datetime.now(UTC)).status == "unpaid"


def test_upheld_stands_and_is_due_again_later(core, ticket):
    appeal_id = submit(core, ticket.ticket_number).appeal_id
    decided = decide(core, appeal_id, "upheld")
    assert decided.amount_due_cents == 5000 and decided.due_at > datetime.now(UTC) + timedelta(days=29)
    with core.db.session() as s:
        assert violations.get_violation(s, ticket.id, datetime.now(UTC)).shown_status == "unpaid"
    last = outbox(core)[-1]
    assert last.template_key == "appeal-decision" and "Upheld" in last.subject
    assert "$50.00" in last.body_text and "pay-violation?ticket=" in last.body_text
    with pytest.raises(NotAllowed):
        decide(core, appeal_id, "cancelled")


def test_cancelled_voids_the_ticket(core, ticket):
    decide(core, submit(core, ticket.ticket_number).appeal_id, "cancelled")
    with core.db.session() as s:
        view = violations.get_violation(s, ticket.id, datetime.now(UTC))
        assert view.status == "void" and view.void_reason.startswith("Appeal cancelled")
    assert "Nothing is owed" in outbox(core)[-1].body_text


def test_reduced_adds_a_reduction_item_and_is_audited(core, ticket):
    appeal_id = submit(core, ticket.ticket_number).appeal_id
    with pytest.raises(ValidationFailed):
        decide(core, appeal_id, "reduced", reduced_to=6000)
    decide(core, appeal_id, "reduced", reduced_to=2000)
    with core.db.session() as s:
        view = violations.get_violation(s, ticket.id, datetime.now(UTC))
        assert view.total_cents == 2000 and view.items[-1].kind == "reduction"
        assert view.appeal.reduced_to_cents == 2000
        actions = list(s.scalars(select(AuditLog.action).order_by(AuditLog.id)))
    assert actions[-2:] == ["appeal.submit", "appeal.decide"]
    assert "$20.00" in outbox(core)[-1].body_text
