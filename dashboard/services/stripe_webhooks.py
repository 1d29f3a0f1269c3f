"""Stripe's webhook at ``POST /hooks/stripe``: the signature checked, an event already acted on is
not acted on again, and the event's content is only a prompt: the session is retrieved and its
current state settles the payment (``payments.settle_from_processor``), so late, repeated and
out-of-order events all end the same way (``stripe_payments``' docstring).

A module of its own because it joins the two the other way round: ``payments`` asks Stripe
(``stripe_payments``) about a payment, and here Stripe's event settles one through ``payments``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import stripe
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dashboard.crypto import SecretBox
from dashboard.db import Database
from dashboard.services import email, payments, stripe_payments
from dashboard.services.errors import DomainError
from dashboard.services.payments import CheckoutResult, ReceiptContext
from models import ProcessorEvent

# The events that may settle a payment; anything else is acknowledged and ignored.
HANDLED_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
    }
)


class BadWebhook(DomainError):
    """A request to the webhook that is not a genuine, fresh Stripe event."""


@dataclass(frozen=True)
class WebhookOutcome:
    """``action``: ignored (an event type or payment not ours), duplicate (acted on before), or the
    payment's status after acting (``CheckoutResult.status``)."""

    event_id: str
    action: str


def handle_webhook(
    database: Database,
    secrets: SecretBox,
    payload: bytes,
    signature: str | None,
    *,
    receipt: ReceiptContext,
    backend: email.EmailBackend,
    now: datetime,
) -> WebhookOutcome:
    """Verify a webhook (``stripe.Webhook.construct_event``: the signature with the webhook secret,
    and a timestamp within Stripe's five-minute tolerance, so a captured request cannot be
    replayed later), then settle the payment it is about from what Stripe holds now (module
    docstring). An event is noted once it settled its payment, so a repeat does nothing; one that
    found the payment still open is not noted, and a repeat asks Stripe again."""
    provider = stripe_payments.configured(database, secrets)
    try:
        event = stripe.Webhook.construct_event(payload, signature, provider.config.webhook_secret)
    except stripe.SignatureVerificationError as exc:
        raise BadWebhook(f"signature refused: {exc.user_message or exc}") from exc
    except ValueError as exc:  # signed, but not JSON
        raise BadWebhook("the body is not a Stripe event") from exc
    if event.type not in HANDLED_EVENTS:
        return WebhookOutcome(event.id, "ignored")
    with database.session() as session:
        if session.scalar(select(ProcessorEvent.id).where(ProcessorEvent.event_id == event.id)) is not None:
            return WebhookOutcome(event.id, "duplicate")
    metadata = event.data.object.to_dict().get("metadata") or {}
    key = metadata.get(stripe_payments.KEY_FIELD)
    if not isinstance(key, str) or not key:
        return WebhookOutcome(event.id, "ignored")
    result: CheckoutResult | None = payments.settle_from_processor(
        database, provider, key, receipt=receipt, backend=backend, now=now
    )
    if result is None:
        return WebhookOutcome(event.id, "ignored")
    if result.settled:
        try:
            with database.session() as session:
                session.add(
                    ProcessorEvent(provider=stripe_payments.NAME, event_id=event.id, event_type=event.type)
                )
        except IntegrityError:
            return WebhookOutcome(event.id, "duplicate")
    return WebhookOutcome(event.id, result.status)
