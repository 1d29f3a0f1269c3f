"""Payment reconciliation: ParkOps' payments (the ledger) against what each card processor
recorded, daily (the Payment Reconciliation system task), with every disagreement kept for a
person to look at (``PaymentMismatch``, the Payment Reconciliation page).

What the processor recorded: for the sandbox, its own ledger (``SandboxCharge``); for Stripe, the
balance transactions of the period, each traced to its payment intent
(``StripeProvider.charges_between``). A charge is matched to a payment by the processor's reference
the payment kept (``provider_ref``), else by the checkout's idempotency key the charge carries.
Four disagreements:

- charged without a settled payment: the processor holds money ParkOps does not count (a payment
  left failed or declined, or none at all). A payment still pending within ``GRACE`` is not one:
  its buyer may be on the processor's page, and the Waitlist Offers task settles it;
- settled without a charge: ParkOps counts a payment made in the period that the processor has
  no charge for;
- amounts differing: the charge and the payment (or the refunds each recorded) differ;
- refunded elsewhere: the processor refunded more than ParkOps recorded (in Stripe's dashboard).

Nothing is changed by finding one: a mismatch is listed until a person marks it reviewed with a
note, or, for a charge without a settled payment, settles it (the payment is still pending and the
processor confirms the charge: ``payments.settle_from_processor``) or refunds it to the card (no
payment will ever count it). Each of those is audited. The same mismatch found again on the next
run is the same row (``provider, kind, reference``).

The task also forgets webhook events older than ``EVENT_RETENTION`` (``processor_events``): they
are kept only so that a repeated delivery is not acted on twice, and Stripe stops retrying an
event after three days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dashboard.crypto import SecretBox
from dashboard.db import Database
from dashboard.services import audit, email, payment_providers, payments, stripe_payments, system_settings
from dashboard.services.errors import DomainError, NotAllowed, NotFound, ValidationFailed
from dashboard.services.payment_providers import ProcessorCharge
from dashboard.services.payments import ReceiptContext
from models import (
    MismatchKind,
    MismatchStatus,
    Payment,
    PaymentMismatch,
    PaymentStatus,
    ProcessorEvent,
    SandboxCharge,
    User,
)

LOOKBACK = timedelta(days=3)  # each daily run looks again at the two days before: a late webhook
GRACE = timedelta(hours=1)  # longer than a buyer may spend on Stripe's page (35 min)
EVENT_RETENTION = timedelta(days=30)
NOTE_MAX = 500
SETTLED = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)
NOT_COUNTED = (PaymentStatus.FAILED, PaymentStatus.DECLINED)
KIND_WORDS = {
    MismatchKind.CHARGED_UNSETTLED: "Charged without a settled payment",
    MismatchKind.SETTLED_UNCHARGED: "Settled without a charge",
    MismatchKind.AMOUNT_DIFFERS: "Amounts differ",
    MismatchKind.REFUNDED_ELSEWHERE: "Refunded elsewhere",
}
PROVIDER_WORDS = {"sandbox": "Sandbox", "stripe": "Stripe"}
AUDIT_ENTITY = "payment_mismatch"


def _dollars(cents: int, currency: str) -> str:
    return f"${cents / 100:,.2f} {currency}"


@dataclass(frozen=True)
class Finding:
    kind: MismatchKind
    reference: str
    payment_id: int | None
    ledger_cents: int | None
    processor_cents: int | None
    currency: str
    detail: str


def sandbox_charges(session: Session, since: datetime, until: datetime) -> list[ProcessorCharge]:
    """The sandbox's own ledger for the period: its successful charges (a cancelled key is a row
    too, with nothing charged)."""
    rows = session.scalars(
        select(SandboxCharge).where(
            SandboxCharge.status == PaymentStatus.SUCCEEDED,
            SandboxCharge.created_at >= since,
            SandboxCharge.created_at < until,
        )
    )
    return [
        ProcessorCharge(
            r.reference, r.idempotency_key, r.amount_cents, r.refunded_cents, r.currency, r.created_at
        )
        for r in rows
    ]


def _payment_for(session: Session, provider: str, charge: ProcessorCharge) -> Payment | None:
    payment = session.scalar(
        select(Payment).where(Payment.provider == provider, Payment.provider_ref == charge.reference)
    )
    if payment is None and charge.idempotency_key:
        payment = session.scalar(select(Payment).where(Payment.idempotency_key == charge.idempotency_key))
    return payment


def compare(
    session: Session,
    provider: str,
    charges: Sequence[ProcessorCharge],
    since: datetime,
    until: datetime,
    now: datetime,
) -> list[Finding]:
    """The disagreements between the processor's ``charges`` of the period and the ledger."""
    findings: list[Finding] = []
    matched: set[int] = set()
    for charge in charges:
        payment = _payment_for(session, provider, charge)
        if payment is not None:
            matched.add(payment.id)
        if payment is None or payment.status not in SETTLED:
            if (
                payment is not None
                and payment.status == PaymentStatus.PENDING
                and now - payment.created_at < GRACE
            ):
                continue  # its buyer may still be paying; the Waitlist Offers task settles it
            left = charge.amount_cents - charge.refunded_cents
            if left <= 0:
                continue  # charged and refunded in full at the processor: no money held
            state = f"payment {payment.id} is {payment.status}" if payment is not None else "no payment"
            findings.append(
                Finding(
                    MismatchKind.CHARGED_UNSETTLED,
                    charge.reference,
                    payment.id if payment is not None else None,
                    payment.amount_cents if payment is not None else None,
                    left,
                    charge.currency,
                    f"{_dollars(left, charge.currency)} held at the processor; {state} in ParkOps",
                )
            )
            continue
        if payment.amount_cents != charge.amount_cents or payment.currency.upper() != charge.currency.upper():
            findings.append(
                Finding(
                    MismatchKind.AMOUNT_DIFFERS,
                    charge.reference,
                    payment.id,
                    payment.amount_cents,
                    charge.amount_cents,
                    charge.currency,
                    f"ParkOps recorded {_dollars(payment.amount_cents, payment.currency)}, the processor "
                    f"charged {_dollars(charge.amount_cents, charge.currency)}",
                )
            )
        recorded = sum(r.amount_cents for r in payment.refunds if r.status == PaymentStatus.SUCCEEDED)
        if charge.refunded_cents > recorded:
            findings.append(
                Finding(
                    MismatchKind.REFUNDED_ELSEWHERE,
                    charge.reference,
                    payment.id,
                    recorded,
                    charge.refunded_cents,
                    charge.currency,
                    f"the processor refunded {_dollars(charge.refunded_cents, charge.currency)}; ParkOps "
                    f"recorded refunds of {_dollars(recorded, payment.currency)}",
                )
            )
        elif charge.refunded_cents < recorded:
            findings.append(
                Finding(
                    MismatchKind.AMOUNT_DIFFERS,
                    f"{charge.reference}:refunds",
                    payment.id,
                    recorded,
                    charge.refunded_cents,
                    charge.currency,
                    f"ParkOps recorded refunds of {_dollars(recorded, payment.currency)}; the processor "
                    f"refunded {_dollars(charge.refunded_cents, charge.currency)}",
                )
            )
    settled = session.scalars(
        select(Payment).where(
            Payment.provider == provider,
            Payment.status.in_(SETTLED),
            Payment.created_at >= since,
            Payment.created_at < until - GRACE,
        )
    )
    for payment in settled:
        if payment.id in matched:
            continue
        findings.append(
            Finding(
                MismatchKind.SETTLED_UNCHARGED,
                payment.provider_ref or payment.idempotency_key,
                payment.id,
                payment.amount_cents,
                None,
                payment.currency,
                f"payment {payment.id} counts {_dollars(payment.amount_cents, payment.currency)} paid; the "
                "processor has no charge for it",
            )
        )
    return findings


def record(session: Session, provider: str, findings: Sequence[Finding], now: datetime) -> int:
    """Keep ``findings``: a new one is listed open, one found before is only marked seen again
    (and its figures brought up to date while nobody has acted on it). Returns how many are new."""
    new = 0
    for found in findings:
        row = session.scalar(
            select(PaymentMismatch).where(
                PaymentMismatch.provider == provider,
                PaymentMismatch.kind == found.kind,
                PaymentMismatch.reference == found.reference,
            )
        )
        if row is None:
            new += 1
            row = PaymentMismatch(provider=provider, kind=found.kind, reference=found.reference, found_at=now)
            session.add(row)
        elif row.status != MismatchStatus.OPEN:
            row.last_seen_at = now
            continue
        row.last_seen_at = now
        row.payment_id = found.payment_id
        row.ledger_cents = found.ledger_cents
        row.processor_cents = found.processor_cents
        row.currency = found.currency.upper()
        row.detail = found.detail[:255]
    session.flush()
    return new


def prune_events(session: Session, now: datetime, keep: timedelta = EVENT_RETENTION) -> int:
    """Forget webhook events received more than ``keep`` ago; how many."""
    result = session.execute(delete(ProcessorEvent).where(ProcessorEvent.received_at < now - keep))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ProviderCheck:
    provider: str
    charges: int  # the processor's charges of the period
    found: int  # disagreements this run
    new: int  # of which listed for the first time
    error: str | None = None  # not checked: why


@dataclass(frozen=True)
class RunReport:
    checks: tuple[ProviderCheck, ...]
    pruned_events: int

    @property
    def failed(self) -> bool:
        return any(check.error for check in self.checks)


def _stripe_in_use(session: Session, secrets: SecretBox, since: datetime) -> bool:
    chosen = system_settings.get(session, secrets, "payment_processor") == "stripe"
    used = session.scalar(
        select(Payment.id)
        .where(Payment.provider == stripe_payments.NAME, Payment.created_at >= since)
        .limit(1)
    )
    return chosen or used is not None


def run(database: Database, secrets: SecretBox, now: datetime, lookback: timedelta = LOOKBACK) -> RunReport:
    """One reconciliation of the last ``lookback``: the sandbox always (its ledger is local), Stripe
    whenever its keys are set (and, when it is chosen or was used but cannot be asked, a check that
    says why it was not done). Then old webhook events are forgotten."""
    since, until = now - lookback, now
    checks = []
    with database.session() as session:
        charges = sandbox_charges(session, since, until)
        findings = compare(session, payments.SandboxProvider.name, charges, since, until, now)
        new = record(session, payments.SandboxProvider.name, findings, now)
        checks.append(ProviderCheck(payments.SandboxProvider.name, len(charges), len(findings), new))
    try:
        provider = stripe_payments.configured(database, secrets)
    except stripe_payments.NotConfigured as exc:
        with database.session() as session:
            if _stripe_in_use(session, secrets, since):
                checks.append(ProviderCheck(stripe_payments.NAME, 0, 0, 0, str(exc)))
    else:
        try:
            stripe_charges = provider.charges_between(since, until)
        except payment_providers.ProviderUnavailable as exc:
            checks.append(ProviderCheck(stripe_payments.NAME, 0, 0, 0, str(exc)))
        else:
            with database.session() as session:
                findings = compare(session, stripe_payments.NAME, stripe_charges, since, until, now)
                new = record(session, stripe_payments.NAME, findings, now)
            checks.append(ProviderCheck(stripe_payments.NAME, len(stripe_charges), len(findings), new))
    with database.session() as session:
        pruned = prune_events(session, now)
    return RunReport(tuple(checks), pruned)


# --- what the page lists and what a person does ----------------------------------------------------


@dataclass(frozen=True)
class MismatchView:
    id: int
    provider: str
    kind: str
    reference: str
    payment_id: int | None
    ledger_cents: int | None
    processor_cents: int | None
    currency: str
    detail: str
    found_at: datetime
    last_seen_at: datetime
    status: str
    note: str
    resolved_by: str | None
    resolved_at: datetime | None
    refund_reference: str | None
    can_settle: bool  # a pending payment the processor charged: settle it from the processor
    can_refund: bool  # a charge no payment will count: give the money back

    @property
    def kind_words(self) -> str:
        return KIND_WORDS[MismatchKind(self.kind)]

    @property
    def provider_words(self) -> str:
        return PROVIDER_WORDS.get(self.provider, self.provider)


SHOWN = {"open": (MismatchStatus.OPEN,), "done": tuple(s for s in MismatchStatus if s != MismatchStatus.OPEN)}


def _view(row: PaymentMismatch, payment: Payment | None, resolver: User | None) -> MismatchView:
    unsettled = row.status == MismatchStatus.OPEN and row.kind == MismatchKind.CHARGED_UNSETTLED
    return MismatchView(
        id=row.id,
        provider=row.provider,
        kind=str(row.kind),
        reference=row.reference,
        payment_id=row.payment_id,
        ledger_cents=row.ledger_cents,
        processor_cents=row.processor_cents,
        currency=row.currency,
        detail=row.detail,
        found_at=row.found_at,
        last_seen_at=row.last_seen_at,
        status=str(row.status),
        note=row.note,
        resolved_by=resolver.full_name if resolver is not None else None,
        resolved_at=row.resolved_at,
        refund_reference=row.refund_reference,
        can_settle=unsettled and payment is not None and payment.status == PaymentStatus.PENDING,
        can_refund=unsettled
        and (payment is None or payment.status in NOT_COUNTED)
        and bool(row.processor_cents and row.processor_cents > 0),
    )


def list_mismatches(session: Session, show: str = "open", limit: int = 500) -> list[MismatchView]:
    """Open ones (``show="open"``), those a person acted on (``"done"``) or all, newest first."""
    query = (
        select(PaymentMismatch, Payment, User)
        .outerjoin(Payment, Payment.id == PaymentMismatch.payment_id)
        .outerjoin(User, User.id == PaymentMismatch.resolved_by_id)
        .order_by(PaymentMismatch.found_at.desc(), PaymentMismatch.id.desc())
        .limit(limit)
    )
    if show in SHOWN:
        query = query.where(PaymentMismatch.status.in_(SHOWN[show]))
    return [_view(row, payment, user) for row, payment, user in session.execute(query).all()]


def get_mismatch(session: Session, mismatch_id: int) -> MismatchView:
    row = session.get(PaymentMismatch, mismatch_id)
    if row is None:
        raise NotFound("That mismatch does not exist.")
    payment = session.get(Payment, row.payment_id) if row.payment_id is not None else None
    resolver = session.get(User, row.resolved_by_id) if row.resolved_by_id is not None else None
    return _view(row, payment, resolver)


def _clean_note(note: object, required: bool) -> str:
    text = note.strip() if isinstance(note, str) else ""
    if len(text) > NOTE_MAX or (required and not text):
        raise ValidationFailed({"note": f"say what was checked (at most {NOTE_MAX} characters)"})
    return text


def _close(
    session: Session,
    mismatch_id: int,
    status: MismatchStatus,
    note: str,
    actor_id: int | None,
    now: datetime,
    refund_reference: str | None = None,
    *,
    done_at_processor: bool = False,
) -> None:
    """Close an open mismatch, audited; ``NotAllowed`` when someone closed it first. A settle or
    refund the processor already made (``done_at_processor``) is recorded even over someone's
    review meanwhile: the money moved, and the row must say so (a second click of the same
    refund, which the processor answered with the same refund, changes nothing)."""
    row = session.get(PaymentMismatch, mismatch_id, with_for_update=True)
    if row is None:
        raise NotFound("That mismatch does not exist.")
    if done_at_processor and row.status == status and row.refund_reference == refund_reference:
        return
    if row.status != MismatchStatus.OPEN and not done_at_processor:
        raise NotAllowed(f"This mismatch was already {row.status} by someone else.")
    was = str(row.status)
    row.status, row.note, row.resolved_by_id, row.resolved_at = status, note, actor_id, now
    row.refund_reference = refund_reference
    audit.record(
        session,
        actor_id=actor_id,
        action=f"payment_mismatch.{status}",
        entity_type=AUDIT_ENTITY,
        entity_id=str(mismatch_id),
        changes={
            "status": [was, str(status)],
            "kind": str(row.kind),
            "reference": row.reference,
            "note": note,
            **({"refund": refund_reference} if refund_reference else {}),
        },
    )


def mark_reviewed(
    session: Session, mismatch_id: int, note: object, actor_id: int | None, now: datetime
) -> None:
    """A person looked at it: the note says what was found or done (required)."""
    _close(session, mismatch_id, MismatchStatus.REVIEWED, _clean_note(note, True), actor_id, now)


def settle(
    database: Database,
    secrets: SecretBox,
    mismatch_id: int,
    note: object,
    actor_id: int | None,
    *,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    now: datetime,
) -> str:
    """Settle the pending payment of a charge the processor holds: the processor is asked again
    and only its answer settles it (permits active, tickets paid, receipts sent, as any settle).
    ``NotAllowed`` when it is not such a mismatch or the processor does not confirm the charge."""
    text = _clean_note(note, False)
    with database.session() as session:
        view = get_mismatch(session, mismatch_id)
        payment = session.get(Payment, view.payment_id) if view.payment_id is not None else None
        key = payment.idempotency_key if payment is not None else ""
    if not view.can_settle or payment is None:
        raise NotAllowed("Only an open charge whose payment is still pending can be settled.")
    try:
        provider = payments.provider_for(view.provider, database, secrets)
    except DomainError as exc:
        raise NotAllowed(str(exc)) from exc
    result = payments.settle_from_processor(
        database, provider, key, receipt=receipt, backend=backend, now=now
    )
    if result is None or not result.paid:
        answer = result.message if result is not None else "the payment is gone"
        raise NotAllowed(f"The processor does not confirm the charge now, so nothing was settled ({answer}).")
    with database.session() as session:
        _close(session, mismatch_id, MismatchStatus.SETTLED, text, actor_id, now, done_at_processor=True)
    return f"Payment {payment.id} is settled: what it paid for counts as paid and its receipt was sent."


def refund(
    database: Database,
    secrets: SecretBox,
    mismatch_id: int,
    note: object,
    actor_id: int | None,
    now: datetime,
) -> str:
    """Give back a charge no payment counts (none, or one left failed or declined): refunded at the
    processor under a key of this mismatch, so two clicks refund once. ``NotAllowed`` otherwise,
    or when the processor refuses."""
    text = _clean_note(note, False)
    with database.session() as session:
        view = get_mismatch(session, mismatch_id)
    if not view.can_refund or view.processor_cents is None:
        raise NotAllowed("Only an open charge that no payment counts can be refunded here.")
    try:
        provider = payments.provider_for(view.provider, database, secrets)
        answer = provider.refund(
            reference=view.reference,
            amount_cents=view.processor_cents,
            idempotency_key=f"mismatch-{mismatch_id}",
        )
    except DomainError as exc:
        raise NotAllowed(str(exc)) from exc
    except payment_providers.ProviderUnavailable as exc:
        raise NotAllowed(
            f"The processor did not answer; nothing is known to be refunded yet ({exc})."
        ) from exc
    if not answer.succeeded:
        raise NotAllowed(f"The processor refused the refund: {answer.message}")
    with database.session() as session:
        _close(
            session,
            mismatch_id,
            MismatchStatus.REFUNDED,
            text,
            actor_id,
            now,
            answer.reference,
            done_at_processor=True,
        )
    return f"{_dollars(view.processor_cents, view.currency)} refunded to the card ({answer.reference})."
