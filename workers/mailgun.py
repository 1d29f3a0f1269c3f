"""Mailgun: sending through its HTTP API, its domain's DNS records, and its signed webhooks.

Wire format (Mailgun's public API, v3):

1. Send: ``POST {base}/v3/{domain}/messages`` with HTTP Basic auth ``api:<private key>`` and a
   multipart form: ``from``, ``to`` (repeated), ``subject``, ``text``, ``html``, ``h:Reply-To``,
   ``attachment`` files -> ``200 {"id": "<20261203.1@mg.example.edu>", "message": "Queued. Thank
   you."}``; 401 ``Forbidden`` for a bad key, 400 ``{"message": ...}`` for a refused message, 429 when
   rate limited. ``base`` is ``https://api.mailgun.net`` (US) or ``https://api.eu.mailgun.net`` (EU).
2. Domain: ``GET {base}/v3/domains/{domain}`` -> ``{"domain": {...}, "sending_dns_records": [{
   "record_type": "TXT", "name": ..., "value": ..., "valid": "valid"}, ...],
   "receiving_dns_records": [{"record_type": "MX", "priority": "10", "value": "mxa.mailgun.org"}]}``.
3. Webhooks: a JSON body ``{"signature": {"timestamp": "1733230000", "token": "<50 hex>",
   "signature": "<hex>"}, "event-data": {"event": "failed", "severity": "permanent", "recipient":
   ..., "reason": ..., "delivery-status": {"message": ..., "description": ...}, "message":
   {"headers": {"message-id": "20261203.1@mg.example.edu"}}}}``, where ``signature`` is
   HMAC-SHA256 of ``timestamp + token`` keyed with the webhook signing key (not the API key).

A send is never retried here (a POST that timed out may have been accepted): the outbox's own
retries, with a claim per attempt, decide. 429 and 5xx answers are temporary; other 4xx permanent.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from dashboard.services.email import Delivered, DeliveryError, EmailMessage, PermanentDeliveryError
from dashboard.services.outbox import ProviderEvent
from workers.vendor_http import VendorClient

US_BASE_URL = "https://api.mailgun.net"
EU_BASE_URL = "https://api.eu.mailgun.net"
# Webhook calls older (or newer) than this are refused: with the token store, a captured call
# cannot be replayed at all.
WEBHOOK_WINDOW_SECONDS = 300


class MailgunError(DeliveryError):
    """Mailgun could not be reached or answered with an error; ``str()`` says which."""


@dataclass(frozen=True)
class DnsRecord:
    record_type: str
    name: str
    value: str
    priority: str = ""
    valid: str = ""


@dataclass(frozen=True)
class DomainRecords:
    sending: list[DnsRecord]
    receiving: list[DnsRecord]


class MailgunClient(VendorClient):
    vendor = "Mailgun"
    url_setting = "Mailgun API Base URL (System Settings > Third Party > Mailgun)"
    error = MailgunError

    def __init__(self, base_url: str, domain: str, api_key: str, **kwargs: Any) -> None:
        super().__init__(base_url or US_BASE_URL, **kwargs)
        self.domain = domain
        self._auth = ("api", api_key)

    def send(self, message: EmailMessage, sender: str) -> Delivered:
        """Hand ``message`` to Mailgun; ``Delivered`` carries Mailgun's id and answer."""
        data: list[tuple[str, str]] = [("from", sender), *(("to", to) for to in message.to)]
        data += [("subject", message.subject), ("text", message.text)]
        if message.html:
            data.append(("html", message.html))
        if message.reply_to:
            data.append(("h:Reply-To", message.reply_to))
        files = [("attachment", (a.filename, a.content, a.content_type)) for a in message.attachments]
        response = self._request(
            "POST", f"/v3/{self.domain}/messages", auth=self._auth, data=data, files=files or None
        )
        answer = _answer(response)
        if response.status_code == 200:
            body = _json(response)
            return Delivered(str(body.get("id") or "") or None, answer)
        if response.status_code == 429 or response.status_code >= 500:
            raise MailgunError(answer)
        raise PermanentDeliveryError(answer)

    def domain_records(self) -> DomainRecords:
        """The DNS records Mailgun expects for the domain, as its domain API lists them."""
        response = self._request("GET", f"/v3/domains/{self.domain}", auth=self._auth)
        if response.status_code != 200:
            raise MailgunError(_answer(response))
        body = _json(response)

        def records(items: object) -> list[DnsRecord]:
            return [
                DnsRecord(
                    record_type=str(item.get("record_type") or ""),
                    name=str(item.get("name") or self.domain),
                    value=str(item.get("value") or ""),
                    priority=str(item.get("priority") or ""),
                    valid=str(item.get("valid") or ""),
                )
                for item in (items if isinstance(items, list) else [])
                if isinstance(item, dict)
            ]

        return DomainRecords(
            records(body.get("sending_dns_records")), records(body.get("receiving_dns_records"))
        )


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _answer(response: Any) -> str:
    """Mailgun's answer in words: status and its message (``200 Queued. Thank you.``)."""
    body = _json(response)
    text = str(body.get("message") or "").strip() or response.text.strip()[:300]
    return f"HTTP {response.status_code} {response.reason or ''}: {text}".replace(" :", ":")


def signature(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's webhook signature: hex HMAC-SHA256 of timestamp + token."""
    return hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


class WebhookRefused(Exception):
    """A webhook call that is not Mailgun's, or not fresh; ``str()`` says why (logged, not shown)."""


def verify_webhook(body: object, signing_key: str, now: float) -> tuple[str, ProviderEvent | None]:
    """Check a webhook body's signature and timestamp; returns its token (for the replay check)
    and the event (``None`` for an event without a message id). Raises ``WebhookRefused``."""
    if not signing_key:
        raise WebhookRefused("no webhook signing key is set")
    if not isinstance(body, dict) or not isinstance(body.get("signature"), dict):
        raise WebhookRefused("not a Mailgun webhook body")
    sig = body["signature"]
    timestamp, token, given = (str(sig.get(k) or "") for k in ("timestamp", "token", "signature"))
    if not (timestamp.isascii() and timestamp.isdigit()) or not token or len(token) > 128 or not given:
        raise WebhookRefused("signature fields missing or malformed")
    if not hmac.compare_digest(signature(signing_key, timestamp, token), given.lower()):
        raise WebhookRefused("bad signature")
    if abs(now - int(timestamp)) > WEBHOOK_WINDOW_SECONDS:
        raise WebhookRefused(f"timestamp outside the {WEBHOOK_WINDOW_SECONDS} s window")
    data = body.get("event-data")
    if not isinstance(data, dict):
        raise WebhookRefused("no event-data")
    message = data.get("message")
    if not isinstance(message, dict):
        message = {}
    headers = message.get("headers")
    if not isinstance(headers, dict):
        headers = {}
    message_id = str(headers.get("message-id") or "")
    status = data.get("delivery-status")
    if not isinstance(status, dict):
        status = {}
    reason = " ".join(
        str(part)
        for part in (
            data.get("reason"),
            status.get("code"),
            status.get("message") or status.get("description"),
        )
        if part
    )
    if not message_id:
        return token, None
    return token, ProviderEvent(
        provider_message_id=message_id,
        event=str(data.get("event") or ""),
        recipient=str(data.get("recipient") or ""),
        severity=str(data.get("severity") or ""),
        reason=reason[:450],
    )
