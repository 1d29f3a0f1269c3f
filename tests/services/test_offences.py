"""Offence types: the seed's Apply Boot / Apply Discount rule (in the service and in the database),
the early-payment discount, and audited edits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dashboard.services import offences
from dashboard.services.errors import ValidationFailed
from models import AuditLog, OffenceType

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def values(**changes: object) -> dict[str, object]:
    return {"code": "nvp", "name": "No valid permit", "fine": "50.00", **changes}


def test_apply_boot_and_apply_discount_together_are_refused_with_the_reason(session):
    with pytest.raises(ValidationFailed) as refused:
        offences.save_offence_type(
            session,
            None,
            values(
                code="BOOT", apply_boot=True, apply_discount=True, discount_percent="10", discount_days="5"
            ),
            None,
        )
    assert "Apply Boot" in refused.value.errors["apply_discount"]
    assert session.scalar(select(OffenceType.id)) is None


def test_the_database_refuses_the_pair_too(session):
    session.add(OffenceType(code="X", name="x", fine_cents=1, apply_boot=True, apply_discount=True))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_a_saved_offence_type_is_cleaned_and_audited(session):
    saved = offences.save_offence_type(
        session, None, values(apply_discount=["on"], discount_percent="20", discount_days="7"), actor_id=None
    )
    assert (saved.code, saved.fine_cents, saved.discount_percent, saved.discount_days) == ("NVP", 5000, 20, 7)
    offences.save_offence_type(session, saved.id, values(fine="55"), actor_id=None)
    actions = [row.action for row in session.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions == ["offence_type.create", "offence_type.update"]
    with pytest.raises(ValidationFailed) as dup:
        offences.save_offence_type(session, None, values(name="Other"), None)
    assert "code" in dup.value.errors


def test_a_discount_needs_its_percent_and_days(session):
    with pytest.raises(ValidationFailed) as refused:
        offences.save_offence_type(session, None, values(apply_discount=True), None)
    assert "percent" in refused.value.errors["apply_discount"]


def test_the_early_payment_discount_holds_until_its_deadline_and_never_on_a_boot_item(session):
    nvp = offences.save_offence_type(
        session, None, values(apply_discount=True, discount_percent="20", discount_days="7"), None
    )
    boot = offences.save_offence_type(session, None, values(code="BOOT", fine="75", apply_boot=True), None)
    assert offences.discounted_cents(nvp, 5000, NOW, NOW + timedelta(days=7)) == 4000
    assert offences.discounted_cents(nvp, 5000, NOW, NOW + timedelta(days=7, seconds=1)) == 5000
    assert offences.discounted_cents(boot, 7500, NOW, NOW) == 7500
    assert offences.discount_deadline(boot, NOW) is None


@pytest.mark.parametrize("fine", ["1e999999999", str(10**18), "100000.01"])
def test_a_fine_out_of_range_is_refused_next_to_the_field(session, fine):
    """10^20 cents (or a number no price column holds) is a typing slip, refused with the limit."""
    with pytest.raises(ValidationFailed) as refused:
        offences.save_offence_type(session, None, values(fine=fine), None)
    assert refused.value.errors == {"fine": "at most 100000.00"}
    assert session.scalar(select(OffenceType.id)) is None
