"""``POST /hooks/stripe``: Stripe's webhook, which settles card payments made on Stripe's page.

No user session: the gate lets it through (it is not a page) and the request proves itself with
Stripe's signature (``stripe_webhooks.handle_webhook``). Answers: 200 once handled (also for an
event that is not ours or was handled before, so Stripe stops sending it), 400 for a request
that is not a genuine, fresh Stripe event, 503 while Stripe is not set up or the database is
unreachable (Stripe retries for three days).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Flask, Response, jsonify, request

from dashboard.core import core_of
from dashboard.services import email, payments, stripe_payments, stripe_webhooks, system_settings
from dashboard.services.payments import DatabaseUnavailable

log = logging.getLogger(__name__)


def _answer(status: int, **body: str) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def register_payment_routes(server: Flask) -> None:
    @server.post("/hooks/stripe")
    def stripe_webhook() -> Response:
        core = core_of(server)
        settings = core.settings
        with core.db.session() as session:
            site_name = str(system_settings.get(session, core.secrets, "site_name"))
            return_location = str(system_settings.get(session, core.secrets, "boot_return_location"))
        # As the reconcile task settles: a paid violation's boot release code needs the secrets.
        receipt = payments.ReceiptContext(
            "there", site_name, settings.public_url, settings.tz, core.secrets, return_location
        )
        try:
            outcome = stripe_webhooks.handle_webhook(
                core.db,
                core.secrets,
                request.get_data(cache=False),
                request.headers.get("Stripe-Signature"),
                receipt=receipt,
                backend=email.OutboxBackend(),
                now=datetime.now(UTC),
            )
        except stripe_webhooks.BadWebhook as exc:
            log.warning("Stripe webhook refused from %s: %s", request.remote_addr, exc)
            return _answer(400, error=str(exc))
        except stripe_payments.NotConfigured as exc:
            log.error("Stripe webhook received, but Stripe is not set up: %s", exc)
            return _answer(503, error="Stripe is not set up here")
        except DatabaseUnavailable as exc:
            log.error("Stripe webhook: the database is unreachable: %s", exc)
            return _answer(503, error="try again later")
        log.info("Stripe event %s: %s", outcome.event_id, outcome.action)
        return _answer(200, received=outcome.event_id, action=outcome.action)
