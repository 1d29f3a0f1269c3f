"""Offence types: the fine items an officer puts on a ticket (System Configuration > Violations).

The seed's rule, enforced here with a message and in the database by a check constraint: Apply
Boot and Apply Discount never go together, because the boot deposit refund is the sum of the Apply
Boot items' fines and does not consider discounts. Apply Boot belongs on one dedicated item.

The early-payment discount is ``discount_percent`` off an item paid within ``discount_days`` of the
ticket; ``discounted_cents`` is the one place that computes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard.services import audit
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.lots import parse_dollars
from models import OffenceType

CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,19}$")
NAME_MAX = 120
MAX_FINE_CENTS = 10_000_000
MAX_DISCOUNT_DAYS = 365
AUDIT_ENTITY = "offence_type"


@dataclass(frozen=True)
class OffenceTypeView:
    id: int
    code: str
    name: str
    fine_cents: int
    apply_boot: bool
    apply_discount: bool
    discount_percent: int
    discount_days: int
    is_active: bool

    @property
    def label(self) -> str:
        return f"{self.code} · {self.name}"


def view_of(row: OffenceType) -> OffenceTypeView:
    return OffenceTypeView(
        id=row.id,
        code=row.code,
        name=row.name,
        fine_cents=row.fine_cents,
        apply_boot=row.apply_boot,
        apply_discount=row.apply_discount,
        discount_percent=row.discount_percent,
        discount_days=row.discount_days,
        is_active=row.is_active,
    )


def list_offence_types(session: Session, *, active_only: bool = False) -> list[OffenceTypeView]:
    """By code. ``active_only``: what an officer may put on a new ticket."""
    query = select(OffenceType).order_by(OffenceType.code)
    if active_only:
        query = query.where(OffenceType.is_active.is_(True))
    return [view_of(row) for row in session.scalars(query)]


def get_offence_type(session: Session, offence_type_id: int) -> OffenceTypeView:
    row = session.get(OffenceType, offence_type_id)
    if row is None:
        raise NotFound("That offence type does not exist.")
    return view_of(row)


def _bool(value: object) -> bool:
    if isinstance(value, list):  # a Dash checklist gives the checked values
        return bool(value)
    return bool(value) and value not in ("false", "0", "off")


def _int(value: object, field: str, low: int, high: int, errors: dict[str, str]) -> int:
    text = str(value if value is not None else "").strip()
    if not text:
        return 0
    if not text.isdecimal() or not low <= int(text) <= high:
        errors[field] = f"a whole number from {low} to {high}"
        return 0
    return int(text)


def _clean(values: Mapping[str, object]) -> dict[str, object]:
    errors: dict[str, str] = {}
    code = str(values.get("code") or "").strip().upper()
    if not CODE_RE.match(code):
        errors["code"] = "1 to 20 letters, digits or dashes (e.g. NVP, BOOT)"
    name = " ".join(str(values.get("name") or "").split())
    if not name or len(name) > NAME_MAX:
        errors["name"] = f"required, at most {NAME_MAX} characters"
    fine = 0
    try:
        fine = parse_dollars(values.get("fine"))
        if fine > MAX_FINE_CENTS:
            raise ValueError(f"at most {MAX_FINE_CENTS // 100:,} dollars")
    except ValueError as exc:
        errors["fine"] = str(exc)
    apply_boot = _bool(values.get("apply_boot"))
    apply_discount = _bool(values.get("apply_discount"))
    percent = _int(values.get("discount_percent"), "discount_percent", 0, 100, errors)
    days = _int(values.get("discount_days"), "discount_days", 0, MAX_DISCOUNT_DAYS, errors)
    if apply_boot and apply_discount:
        errors["apply_discount"] = (
            "cannot be on together with Apply Boot: the boot deposit refund does not consider discounts"
        )
    elif apply_discount and (percent < 1 or days < 1):
        errors["apply_discount"] = "give the discount's percent (1 to 100) and its days (1 or more)"
    if errors:
        raise ValidationFailed(errors)
    if not apply_discount:
        percent = days = 0
    return {
        "code": code,
        "name": name,
        "fine_cents": fine,
        "apply_boot": apply_boot,
        "apply_discount": apply_discount,
        "discount_percent": percent,
        "discount_days": days,
        "is_active": _bool(values.get("is_active", True)),
    }


def save_offence_type(
    session: Session, offence_type_id: int | None, values: Mapping[str, object], actor_id: int | None
) -> OffenceTypeView:
    """Create (``offence_type_id`` None) or update an offence type; audited. A fine changed here
    applies to new tickets only: a ticket's items keep the amount they were written with."""
    cleaned = _clean(values)
    taken = session.scalar(
        select(OffenceType.id).where(
            func.upper(OffenceType.code) == cleaned["code"], OffenceType.id != (offence_type_id or 0)
        )
    )
    if taken is not None:
        raise ValidationFailed({"code": "another offence type has this code"})
    if offence_type_id is None:
        row = OffenceType(**cleaned)
        session.add(row)
        changes = {key: [None, value] for key, value in cleaned.items()}
        action = "offence_type.create"
    else:
        found = session.get(OffenceType, offence_type_id)
        if found is None:
            raise NotFound("That offence type does not exist.")
        row = found
        changes = {k: [getattr(row, k), v] for k, v in cleaned.items() if getattr(row, k) != v}
        for key, value in cleaned.items():
            setattr(row, key, value)
        action = "offence_type.update"
    session.flush()
    if changes:
        audit.record(
            session,
            actor_id=actor_id,
            action=action,
            entity_type=AUDIT_ENTITY,
            entity_id=str(row.id),
            changes=changes,
        )
    return view_of(row)


def discounted_cents(offence: OffenceTypeView, amount_cents: int, issued_at: datetime, now: datetime) -> int:
    """What an item of this type costs when paid at ``now``: the early-payment discount applies up
    to ``discount_days`` after the ticket was written (never on an Apply Boot item)."""
    if not offence.apply_discount or offence.apply_boot or not offence.discount_percent:
        return amount_cents
    if now > issued_at + timedelta(days=offence.discount_days):
        return amount_cents
    return amount_cents - (amount_cents * offence.discount_percent) // 100


def discount_deadline(offence: OffenceTypeView, issued_at: datetime) -> datetime | None:
    if not offence.apply_discount or offence.apply_boot or not offence.discount_percent:
        return None
    return issued_at + timedelta(days=offence.discount_days)
