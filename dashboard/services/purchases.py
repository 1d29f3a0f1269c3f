"""A signed-in user's permits ("My Permits"), each with the receipt link of the payment that
bought it.

Listed: active permits, and cancelled ones that had been paid for (refunded), so a refund does not
make a purchase vanish from the account. Held permits (``pending``) and the cancelled holds of
declined or failed checkouts are not: the user never had them. Permits are matched on the account
only, never on an e-mail address, which anybody can type into the quick checkout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from dashboard.services.permits import PAID, PermitView, view
from models import Payment, PaymentAllocation, Permit, PermitStatus

PAST_LIMIT = 50


@dataclass(frozen=True)
class OwnedPermit:
    permit: PermitView
    receipt_token: str | None


@dataclass(frozen=True)
class MyPermits:
    current: tuple[OwnedPermit, ...]
    upcoming: tuple[OwnedPermit, ...]
    past: tuple[OwnedPermit, ...]  # ended or cancelled, newest first, at most PAST_LIMIT


def user_permits(session: Session, user_id: int, now: datetime) -> MyPermits:
    rows = session.execute(
        select(Permit, Payment.receipt_token)
        .outerjoin(PaymentAllocation, PaymentAllocation.permit_id == Permit.id)
        .outerjoin(Payment, and_(Payment.id == PaymentAllocation.payment_id, Payment.status.in_(PAID)))
        .options(selectinload(Permit.vehicles))
        .where(
            Permit.user_id == user_id,
            or_(
                Permit.status == PermitStatus.ACTIVE,
                and_(Permit.status == PermitStatus.CANCELLED, Payment.id.is_not(None)),
            ),
        )
        .order_by(Permit.valid_from)
    ).all()
    owned: dict[int, OwnedPermit] = {}
    for permit, token in rows:
        if permit.id not in owned or token:
            owned[permit.id] = OwnedPermit(view(permit), token)
    current, upcoming, past = [], [], []
    for item in owned.values():
        shown = item.permit
        if shown.status != PermitStatus.ACTIVE or shown.valid_to <= now:
            past.append(item)
        elif shown.valid_from > now:
            upcoming.append(item)
        else:
            current.append(item)
    past.sort(key=lambda item: item.permit.valid_to, reverse=True)
    return MyPermits(tuple(current), tuple(upcoming), tuple(past[:PAST_LIMIT]))
