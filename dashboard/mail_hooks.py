"""``POST /hooks/mailgun``: Mailgun's event webhooks (permanent failures, spam complaints).

No user session: the call proves itself with Mailgun's signature (HMAC-SHA256 of timestamp and
token, keyed with the webhook signing key on System Settings > Third Party > Mailgun), a timestamp
within five minutes, and a token not seen before (``outbox.token_seen``). A refused call gets 406,
which Mailgun takes as "do not retry"; the reason is logged, not told to the caller. An accepted
call gets 200 even for a message ParkOps does not know (Mailgun would otherwise retry for hours).
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, jsonify, request

from dashboard.core import core_of
from dashboard.crypto import SecretError
from dashboard.services import outbox, system_settings
from models import utcnow
from workers.mailgun import WEBHOOK_WINDOW_SECONDS, WebhookRefused, verify_webhook

log = logging.getLogger(__name__)

HOOK_PATH = "/hooks/mailgun"


def _refused() -> Response:
    return Response("Not accepted.", status=406, mimetype="text/plain")


def register_mail_hooks(server: Flask) -> None:
    """Add the webhook route. Its path is in the gate's public prefixes (``dashboard.auth``)."""

    @server.post(HOOK_PATH)
    def mailgun_webhook() -> Response:
        core = core_of(server)
        body = request.get_json(silent=True)
        try:
            with core.db.session() as session:
                key = str(system_settings.get(session, core.secrets, "mailgun_webhook_signing_key"))
                token, event = verify_webhook(body, key, time.time())
                if outbox.token_seen(session, token, utcnow(), WEBHOOK_WINDOW_SECONDS):
                    raise WebhookRefused("token already used (a replayed call)")
                outcome = outbox.apply_event(session, event, utcnow()) if event else "no message id: ignored"
        except (WebhookRefused, SecretError) as exc:
            log.warning("mailgun webhook refused from %s: %s", request.remote_addr, exc)
            return _refused()
        log.info("mailgun webhook: %s", outcome)
        return jsonify({"result": outcome})
