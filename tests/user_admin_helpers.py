"""An account that owns one of everything the user administration shows (vehicle, permit,
violation, payment), built with the real services where they exist."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from models import Payment, PaymentStatus, Permit, PermitKind, Role, Vehicle
from tests.enforcement import make_place, write_ticket


@dataclass(frozen=True)
class Owner:
    user_id: int
    email: str
    ticket_number: str
    permit_number: str


def make_owner(core, make_user, **fields: object) -> Owner:
    owner = make_user(Role.USER, **fields)
    place = make_place(core)
    now = datetime.now(UTC)
    with core.db.session() as s:
        s.add(
            Vehicle(user_id=owner.id, plate="ABC 123", plate_normalized="ABC123", make="Honda", colour="Blue")
        )
        s.add(
            Permit(
                number="P-TEST-0001",
                kind=PermitKind.STANDARD,
                user_id=owner.id,
                lot_id=place.lot_id,
                valid_from=now - timedelta(days=1),
                valid_to=now + timedelta(days=30),
                amount_cents=18500,
            )
        )
        s.add(
            Payment(
                idempotency_key="admin-view-1",
                provider="sandbox",
                status=PaymentStatus.SUCCEEDED,
                amount_cents=18500,
                user_id=owner.id,
                card_last4="4242",
            )
        )
    officer = make_user(Role.OFFICER)
    ticket = write_ticket(core, officer.id, place, plate="ABC 123")
    return Owner(owner.id, owner.email, ticket.ticket_number, "P-TEST-0001")
