"""Stripe as a card processor, behind ``payment_providers.PaymentProvider``, with the official ``stripe``
library: buyers enter their card on Stripe's hosted Checkout page, so no card number ever reaches
ParkOps (PCI SAQ A).

The checkout (``payments.checkout``) reserves the permits and a pending payment, then asks this
provider for a Checkout Session under the payment's idempotency key (Stripe's own idempotency:
the same key gives the same session) and sends the buyer to its URL. What Stripe holds decides
the outcome, asked for (``find_charge``) whenever something happens:

- a webhook at ``POST /hooks/stripe`` (``stripe_webhooks.handle_webhook``: signature checked, an event already
  acted on is not acted on again, and the event's content is only a prompt: the session is
  retrieved and its current state settles the payment, so late, repeated and out-of-order events
  all end the same way);
- the buyer's return to the checkout page (``payments.resume``) or leaving Stripe's page through
  its back link (``payments.abandon``, which expires the session first);
- the reconcile task (``payments.reconcile_pending``), for a buyer who never came back and a
  webhook that never came.

A declined card does not end a Checkout Session (the buyer may try another card on Stripe's page),
and a card needing 3-D Secure waits on Stripe's page for the bank: both stay "not paid yet" until
the session is paid or closed. Amounts are integer cents in the payment's currency (the site's,
System Settings > General, or a product's own), sent lower-case as Stripe wants.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.crypto import SecretBox, SecretError
from dashboard.db import Database
from dashboard.services import system_settings
from dashboard.services.errors import DomainError
from dashboard.services.payment_providers import (
    Card,
    ChargeResult,
    HostedSession,
    ProcessorCharge,
    ProviderUnavailable,
)
from models import Payment

log = logging.getLogger(__name__)

NAME = "stripe"
# Stripe's shortest Checkout Session lifetime; the payment counts as abandoned only after the
# session has closed, so a buyer still typing on Stripe's page keeps the held space.
SESSION_LIFETIME = timedelta(minutes=30)
ABANDONED_AFTER = SESSION_LIFETIME + timedelta(minutes=5)
TIMEOUT_SECONDS = 20
KEY_FIELD = "parkops_key"  # metadata on the session and its payment intent: our idempotency key


class NotConfigured(DomainError):
    """Stripe is chosen but its keys are missing, unreadable or of mixed modes."""


@dataclass(frozen=True)
class StripeConfig:
    secret_key: str
    webhook_secret: str
    api_base: str

    @property
    def test_mode(self) -> bool:
        return "_test_" in self.secret_key


def _mode(key: str) -> str | None:
    return "test" if "_test_" in key else "live" if "_live_" in key else None


def load_config(session: Session, secrets: SecretBox) -> StripeConfig:
    """Stripe's settings (System Settings > Third Party > Card Payments), checked: a secret key and
    a webhook secret are needed, and a publishable key, when given, must be of the secret key's
    mode (a live page with test keys, or the reverse, takes no one's money)."""
    try:
        values = system_settings.get_many(
            session,
            secrets,
            ["stripe_secret_key", "stripe_webhook_secret", "stripe_publishable_key", "stripe_api_base"],
        )
    except SecretError as exc:
        raise NotConfigured("Stripe's keys cannot be read: enter them again in System Settings.") from exc
    secret_key = str(values["stripe_secret_key"]).strip()
    webhook_secret = str(values["stripe_webhook_secret"]).strip()
    publishable = str(values["stripe_publishable_key"]).strip()
    if not secret_key or not webhook_secret:
        raise NotConfigured("Stripe needs its secret key and webhook signing secret in System Settings.")
    if publishable and _mode(publishable) != _mode(secret_key):
        raise NotConfigured("Stripe's publishable and secret keys are not of the same mode (test or live).")
    return StripeConfig(secret_key, webhook_secret, str(values["stripe_api_base"]))


def configured(database: Database, secrets: SecretBox) -> StripeProvider:
    """The Stripe provider with the keys from System Settings (``NotConfigured`` without them)."""
    with database.session() as session:
        return StripeProvider(database, load_config(session, secrets))


def _unavailable(exc: stripe.StripeError) -> ProviderUnavailable:
    return ProviderUnavailable(f"Stripe: {exc.user_message or exc.__class__.__name__}")


class StripeProvider:
    """``payment_providers.HostedPaymentProvider`` on Stripe Checkout. The session's id is kept as the
    payment's ``provider_ref`` while it is pending (``payments`` writes it), and becomes the payment
    intent's id once settled: refunds are made against the payment intent."""

    name = NAME
    abandoned_after = ABANDONED_AFTER

    def __init__(self, database: Database, config: StripeConfig) -> None:
        self.database = database
        self.config = config
        self.client = stripe.StripeClient(
            config.secret_key,
            base_addresses={"api": config.api_base},
            max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
        )

    # --- the payment page ----------------------------------------------------------------------

    def start_session(
        self,
        *,
        amount_cents: int,
        currency: str,
        idempotency_key: str,
        description: str,
        email_address: str,
        success_url: str,
        cancel_url: str,
        now: datetime,
    ) -> HostedSession:
        known = self._session(idempotency_key)
        if known is not None and known.status == "open" and known.url:
            return HostedSession(known.id, known.url)
        metadata = {KEY_FIELD: idempotency_key}
        params: Any = {
            "mode": "payment",
            "payment_method_types": ["card"],
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": amount_cents,
                        "product_data": {"name": (description or "Parking")[:250]},
                    },
                }
            ],
            "customer_email": email_address,
            "client_reference_id": idempotency_key,
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata, "description": description[:1000]},
            "success_url": success_url,
            "cancel_url": cancel_url,
            "expires_at": int((now + SESSION_LIFETIME).timestamp()),
        }
        try:
            created = self.client.v1.checkout.sessions.create(params, {"idempotency_key": idempotency_key})
        except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as exc:
            raise _unavailable(exc) from exc
        except stripe.StripeError as exc:  # refused: keys, amount, currency; nothing was charged
            log.error("Stripe refused a Checkout Session for %s: %s", idempotency_key, exc)
            raise _unavailable(exc) from exc
        if not created.url:
            raise ProviderUnavailable("Stripe returned a Checkout Session without a payment page")
        return HostedSession(created.id, created.url)

    def page_url(self, *, idempotency_key: str) -> str | None:
        checkout_session = self._session(idempotency_key)
        if checkout_session is None or checkout_session.status != "open":
            return None
        return checkout_session.url

    def charge(
        self, *, amount_cents: int, currency: str, card: Card, idempotency_key: str, description: str
    ) -> ChargeResult:
        """Never used: the card goes to Stripe's page, never through ParkOps (``start_session``)."""
        raise ProviderUnavailable("Stripe takes cards on its own payment page only")

    # --- what Stripe holds -----------------------------------------------------------------------

    def _session_id(self, idempotency_key: str) -> str | None:
        with self.database.session() as session:
            ref = session.scalar(
                select(Payment.provider_ref).where(Payment.idempotency_key == idempotency_key)
            )
        return ref if ref and ref.startswith("cs_") else None

    def _session(self, idempotency_key: str) -> Any:
        session_id = self._session_id(idempotency_key)
        return None if session_id is None else self._retrieve(session_id)

    def _retrieve(self, session_id: str) -> Any:
        try:
            return self.client.v1.checkout.sessions.retrieve(session_id, {"expand": ["payment_intent"]})
        except stripe.StripeError as exc:
            raise _unavailable(exc) from exc

    @staticmethod
    def _state(checkout_session: Any) -> ChargeResult | None:
        """What a Checkout Session means for the payment: charged, declined (closed after a failed
        attempt), or None while the buyer may still pay (open) or nothing was attempted."""
        intent = checkout_session.payment_intent
        intent_id = intent.id if intent is not None and not isinstance(intent, str) else intent
        if checkout_session.payment_status == "paid" or (
            intent is not None and not isinstance(intent, str) and intent.status == "succeeded"
        ):
            return ChargeResult(True, intent_id or checkout_session.id, "Approved")
        if checkout_session.status == "open":
            return None
        if checkout_session.status == "complete":
            # Complete but unpaid: a payment Stripe is still processing. Not an answer yet.
            raise ProviderUnavailable(f"Stripe is still processing {checkout_session.id}")
        error = getattr(intent, "last_payment_error", None) if not isinstance(intent, str) else None
        if intent_id and error is not None:
            return ChargeResult(False, intent_id, (error.message or "Your card was declined.")[:255])
        return None

    def find_charge(self, *, idempotency_key: str) -> ChargeResult | None:
        checkout_session = self._session(idempotency_key)
        return None if checkout_session is None else self._state(checkout_session)

    def cancel(self, *, idempotency_key: str) -> ChargeResult | None:
        """Expire the session (Stripe then refuses any payment on it); a session paid first is that
        charge. Without a session nothing was ever shown to pay on."""
        checkout_session = self._session(idempotency_key)
        if checkout_session is None:
            return None
        if checkout_session.status == "open":
            try:
                self.client.v1.checkout.sessions.expire(checkout_session.id)
            except stripe.InvalidRequestError:
                log.info("session %s closed before it could be expired", checkout_session.id)
            except stripe.StripeError as exc:
                raise _unavailable(exc) from exc
            checkout_session = self._retrieve(checkout_session.id)
            if checkout_session.status == "open":
                raise ProviderUnavailable(f"Stripe kept {checkout_session.id} open")
        return self._state(checkout_session)

    def charges_between(self, since: datetime, until: datetime) -> list[ProcessorCharge]:
        """Every charge whose money moved between ``since`` and ``until`` (a charge or a refund):
        Stripe's balance transactions for the period, each traced to its payment intent, whose
        current state (amount received, refunded so far, our key in its metadata) is what is
        compared; a refund in the period of an older charge brings that charge in too."""
        window = {"gte": int(since.timestamp()), "lt": int(until.timestamp())}
        params: Any = {"created": window, "limit": 100, "expand": ["data.source"]}
        try:
            intents: dict[str, None] = {}
            for txn in self.client.v1.balance_transactions.list(params).auto_paging_iter():
                source = txn.source
                intent = (
                    None
                    if source is None or isinstance(source, str)
                    else getattr(source, "payment_intent", None)
                )
                if isinstance(intent, str):
                    intents[intent] = None
            found = []
            for intent_id in intents:
                intent = self.client.v1.payment_intents.retrieve(intent_id, {"expand": ["latest_charge"]})
                charge = intent.latest_charge
                if charge is None or isinstance(charge, str) or not intent.amount_received:
                    continue
                found.append(
                    ProcessorCharge(
                        reference=intent.id,
                        idempotency_key=intent.to_dict().get("metadata", {}).get(KEY_FIELD),
                        amount_cents=int(intent.amount_received),
                        refunded_cents=int(charge.amount_refunded or 0),
                        currency=str(intent.currency).upper(),
                        created_at=datetime.fromtimestamp(int(charge.created), UTC),
                    )
                )
        except stripe.StripeError as exc:
            raise _unavailable(exc) from exc
        return found

    def refund(self, *, reference: str, amount_cents: int, idempotency_key: str) -> ChargeResult:
        try:
            made = self.client.v1.refunds.create(
                {"payment_intent": reference, "amount": amount_cents}, {"idempotency_key": idempotency_key}
            )
        except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as exc:
            raise _unavailable(exc) from exc
        except stripe.StripeError as exc:
            return ChargeResult(False, reference, (exc.user_message or str(exc))[:255])
        succeeded = made.status in ("succeeded", "pending")
        return ChargeResult(succeeded, made.id, "Refunded" if succeeded else f"Refund {made.status}")
