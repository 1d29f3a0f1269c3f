"""What the enforcement tests share: offence types, a lot, boots, a ticket written as an officer
would, and a violation paid without the checkout (a real sandbox charge, a payment with an
allocation to the violation, then ``violations.mark_paid``) for tests of what follows a payment;
``violation_payments.pay`` is the real way, tested in ``tests/services/test_violation_payments.py``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from dashboard.core import Core
from dashboard.services import boots, email, system_settings, violations
from dashboard.services.payment_providers import Card
from dashboard.services.payments import SUCCESS_CARD, SandboxProvider
from dashboard.services.violations import TicketDraft
from models import Boot, Lot, OffenceType, Payment, PaymentAllocation, PaymentStatus


@dataclass(frozen=True)
class Place:
    lot_id: int
    nvp: int  # No valid permit, $50, 20 % off within 7 days
    fl: int  # Fire lane, $100
    boot: int  # Boot applied, $75, Apply Boot
    boot_ids: tuple[int, ...]


def make_place(core: Core, boot_names: tuple[str, ...] = ("Red Boot 01", "Red Boot 02")) -> Place:
    with core.db.session() as s:
        lot = Lot(name="Visitor Lot", code="V1", capacity=10)
        nvp = OffenceType(
            code="NVP", name="No valid permit", fine_cents=5000, apply_discount=True, discount_percent=20,
            discount_days=7,
        )  # fmt: skip
        fl = OffenceType(code="FL", name="Fire lane", fine_cents=10000)
        boot = OffenceType(code="BOOT", name="Boot applied", fine_cents=7500, apply_boot=True)
        rows = [
            Boot(name=name, release_code=core.secrets.encrypt(f"48{n}1")) for n, name in enumerate(boot_names)
        ]
        s.add_all([lot, nvp, fl, boot, *rows])
        s.flush()
        return Place(lot.id, nvp.id, fl.id, boot.id, tuple(r.id for r in rows))


def enable_boots(core: Core, on: bool = True, **more: object) -> None:
    with core.db.session() as s:
        system_settings.update(s, core.secrets, {boots.ENABLED_SETTING: on, **more}, actor_id=None)


def payable_place(core: Core) -> Place:
    """A place for the payment tests: the default e-mail templates (receipts, boot release),
    Universal Boot on, and the lot, offences and boots of ``make_place``."""
    with core.db.session() as s:
        email.ensure_default_templates(s)
    enable_boots(core)
    return make_place(core)


def write_ticket(
    core: Core,
    officer_id: int,
    place: Place,
    *,
    plate: str = "ABC 123",
    offences: tuple[int, ...] | None = None,
    boot_id: int | None = None,
    key: str | None = None,
    now: datetime | None = None,
) -> violations.TicketView:
    chosen = offences if offences is not None else ((place.nvp, place.boot) if boot_id else (place.nvp,))
    draft = TicketDraft(
        submit_key=key or str(uuid.uuid4()),
        officer_id=officer_id,
        lot_id=place.lot_id,
        plate=plate,
        offence_type_ids=chosen,
        boot_id=boot_id,
    )
    with core.db.session() as s:
        return violations.issue_ticket(
            s, draft, now or datetime.now(UTC), due_days=30, boots_enabled=boot_id is not None
        ).ticket


def pay_violation(core: Core, violation_id: int, amount_cents: int, email: str = "owner@example.com") -> int:
    """A successful card payment of ``amount_cents`` that paid ``violation_id``; its payment id."""
    key = f"test-violation-{violation_id}-{uuid.uuid4().hex[:8]}"
    charged = SandboxProvider(core.db).charge(
        amount_cents=amount_cents,
        currency="CAD",
        card=Card(SUCCESS_CARD, 12, 2099, "123"),
        idempotency_key=key,
        description=f"violation {violation_id}",
    )
    assert charged.succeeded
    with core.db.session() as s:
        payment = Payment(
            idempotency_key=key,
            provider="sandbox",
            provider_ref=charged.reference,
            status=PaymentStatus.SUCCEEDED,
            amount_cents=amount_cents,
            payer_email=email,
            card_last4="4242",
        )
        payment.allocations = [PaymentAllocation(violation_id=violation_id, amount_cents=amount_cents)]
        s.add(payment)
        s.flush()
        assert violations.mark_paid(s, violation_id, payment.id, datetime.now(UTC))
        return payment.id
