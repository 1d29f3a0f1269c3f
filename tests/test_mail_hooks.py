"""``POST /hooks/mailgun``: Mailgun's signed event webhooks mark messages bounced or complained and
flag hard-bounced users; unsigned, wrongly signed, stale or replayed calls change nothing."""

from __future__ import annotations

import secrets
import time

import pytest

from dashboard.services import email, system_settings
from dashboard.services.email import EmailMessage
from models import OutboxMessage, OutboxStatus, User
from workers.mailgun import signature

SIGNING_KEY = "whsec-mailgun-signing-key-0123"
PROVIDER_ID = "20261203.42@mg.campus.test"


@pytest.fixture
def sent(core, make_user):
    """A user's message that Mailgun took, and the webhook signing key set."""
    user = make_user(email="alex@campus.test")
    with core.db.session() as s:
        system_settings.update(s, core.secrets, {"mailgun_webhook_signing_key": SIGNING_KEY}, None)
        message_id = email.send_email(
            s, EmailMessage(to=["alex@campus.test"], subject="Receipt", text="T"), email.OutboxBackend()
        )
        row = s.get(OutboxMessage, message_id)
        row.status, row.provider_message_id = OutboxStatus.SENT, PROVIDER_ID
    return message_id, user.id


def body(event: str, *, severity: str = "", key: str = SIGNING_KEY, timestamp: int | None = None, token=None):
    timestamp = int(time.time()) if timestamp is None else timestamp
    token = token or secrets.token_hex(25)
    return {
        "signature": {
            "timestamp": str(timestamp),
            "token": token,
            "signature": signature(key, str(timestamp), token),
        },
        "event-data": {
            "event": event,
            "severity": severity,
            "recipient": "alex@campus.test",
            "reason": "bounce",
            "delivery-status": {"code": 550, "message": "5.1.1 mailbox does not exist"},
            "message": {"headers": {"message-id": PROVIDER_ID}},
        },
    }


def state(core, message_id, user_id):
    with core.db.session() as s:
        return s.get(OutboxMessage, message_id).status, s.get(User, user_id).email_bounced_at


def test_a_permanent_failure_marks_the_message_bounced_and_flags_the_user(core, client, sent):
    message_id, user_id = sent
    response = client.post("/hooks/mailgun", json=body("failed", severity="permanent"))
    assert response.status_code == 200
    assert response.get_json() == {"result": f"message {message_id} marked bounced; 1 user(s) flagged"}
    status, bounced_at = state(core, message_id, user_id)
    assert status is OutboxStatus.BOUNCED and bounced_at is not None
    with core.db.session() as s:
        assert s.get(User, user_id).email_bounce_reason == "bounce 550 5.1.1 mailbox does not exist"


def test_a_complaint_marks_the_message_complained(core, client, sent):
    message_id, user_id = sent
    assert client.post("/hooks/mailgun", json=body("complained")).status_code == 200
    assert state(core, message_id, user_id) == (OutboxStatus.COMPLAINED, None)


def test_a_temporary_failure_changes_nothing(core, client, sent):
    message_id, user_id = sent
    assert client.post("/hooks/mailgun", json=body("failed", severity="temporary")).status_code == 200
    assert state(core, message_id, user_id) == (OutboxStatus.SENT, None)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: body("failed", severity="permanent", key="not-the-key"), id="wrong key"),
        pytest.param(
            lambda: body("failed", severity="permanent", timestamp=int(time.time()) - 301), id="old"
        ),
        pytest.param(
            lambda: body("failed", severity="permanent", timestamp=int(time.time()) + 400), id="future"
        ),
        pytest.param(lambda: {**body("failed", severity="permanent"), "signature": {}}, id="unsigned"),
        pytest.param(lambda: {"event-data": {}}, id="no signature"),
        pytest.param(lambda: "not an object", id="not json object"),
    ],
)
def test_bad_calls_are_refused_and_change_nothing(core, client, sent, bad):
    message_id, user_id = sent
    response = client.post("/hooks/mailgun", json=bad())
    assert response.status_code == 406
    assert state(core, message_id, user_id) == (OutboxStatus.SENT, None)


def test_a_tampered_body_is_refused(core, client, sent):
    message_id, user_id = sent
    call = body("delivered")
    call["signature"]["token"] = secrets.token_hex(25)  # signature no longer matches
    assert client.post("/hooks/mailgun", json=call).status_code == 406


def test_a_replayed_call_is_refused(core, client, sent):
    message_id, user_id = sent
    call = body("complained")
    assert client.post("/hooks/mailgun", json=call).status_code == 200
    with core.db.session() as s:
        s.get(OutboxMessage, message_id).status = OutboxStatus.SENT
    assert client.post("/hooks/mailgun", json=call).status_code == 406
    assert state(core, message_id, user_id) == (OutboxStatus.SENT, None)


def test_without_a_signing_key_every_call_is_refused(core, client):
    assert client.post("/hooks/mailgun", json=body("complained")).status_code == 406


def test_a_cross_site_post_with_an_origin_is_still_only_checked_by_signature(core, client, sent):
    """Mailgun sends no Origin; the gate's same-origin rule does not apply to provider hooks."""
    response = client.post(
        "/hooks/mailgun", json=body("complained"), headers={"Origin": "https://mailgun.example"}
    )
    assert response.status_code == 200


def test_an_unknown_message_is_acknowledged(core, client, sent):
    call = body("complained")
    call["event-data"]["message"]["headers"]["message-id"] = "other@mg.campus.test"
    response = client.post("/hooks/mailgun", json=call)
    assert response.status_code == 200 and "ignored" in response.get_json()["result"]
