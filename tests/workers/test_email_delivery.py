"""Delivery of the outbox through a real SMTP server (aiosmtpd, STARTTLS on a self-signed certificate
the test trusts, login) and a real local HTTP server speaking Mailgun's send API; the RQ job runs in
``workers.worker.InlineWorker`` (rq's ``SimpleWorker``) on the test Redis (the real one in the
services run)."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
import redis
from rq import Queue
from sqlalchemy import update
from werkzeug import Request, Response

from dashboard.core import set_core
from dashboard.services import email, outbox, system_settings
from dashboard.services.email import EmailMessage
from models import OutboxMessage, OutboxStatus, utcnow
from tests.workers.mail_servers import PASSWORD, USER, SmtpServer, free_port, self_signed
from workers import email_delivery
from workers.worker import InlineWorker

FROM = "parking@mg.campus.test"


@pytest.fixture(autouse=True)
def _job_core(core):
    """RQ jobs of this process use the test's core."""
    set_core(core)
    yield
    set_core(None)


@pytest.fixture
def cert(tmp_path):
    return self_signed(tmp_path)


@pytest.fixture
def trusting_core(core, cert, monkeypatch):
    """The core with the test's certificate as PARKOPS_SMTP_CA_FILE."""
    monkeypatch.setattr(core, "settings", dataclasses.replace(core.settings, smtp_ca_file=str(cert[0])))
    return core


@pytest.fixture
def smtp(cert):
    server = SmtpServer(*cert, free_port())
    server.start()
    yield server
    server.stop()


def configure(core, **values) -> None:
    with core.db.session() as s:
        system_settings.update(s, core.secrets, {"mail_from_address": FROM, **values}, None)


def configure_smtp(core, port: int, **extra) -> None:
    values = {
        "mail_backend": "smtp",
        "smtp_host": "localhost",
        "smtp_port": port,
        "smtp_username": USER,
        "smtp_password": PASSWORD,
        "smtp_security": "starttls",
    }
    configure(core, **{**values, **extra})


def queue(core) -> Queue:
    return Queue(core.settings.queue_name, connection=redis.Redis.from_url(core.redis_url))


def work(core) -> None:
    InlineWorker([core.settings.queue_name], connection=redis.Redis.from_url(core.redis_url)).work(burst=True)


def send(core, *, to="alex@campus.test", template_key="permit-receipt") -> int:
    with core.db.session() as s:
        backend = email_delivery.configured_backend(core, s)
        message_id = email.send_email(
            s,
            EmailMessage(
                to=[to], subject="Your permit", text="Hello", html="<p>Hello</p>", template_key=template_key
            ),
            backend,
        )
        assert queue(core).count == 0, "nothing may be queued before the sender's transaction commits"
    return message_id


def row(core, message_id: int) -> OutboxMessage:
    with core.db.session() as s:
        found = s.get(OutboxMessage, message_id)
        s.expunge(found)
        return found


def make_due(core, message_id: int) -> None:
    """The backoff has passed."""
    with core.db.session() as s:
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


def test_the_outbox_stays_the_default_and_sends_nothing(core):
    with core.db.session() as s:
        backend = email_delivery.configured_backend(core, s)
        assert isinstance(backend, email.OutboxBackend)
        message_id = email.send_email(s, EmailMessage(to=["a@campus.test"], subject="S", text="T"), backend)
    assert queue(core).count == 0
    assert row(core, message_id).status is OutboxStatus.STORED


def test_smtp_starttls_with_login_delivers_once_after_commit(trusting_core, smtp):
    core = trusting_core
    configure_smtp(core, smtp.port, system_reply_to_email="admin@campus.test")
    message_id = send(core)
    assert row(core, message_id).status is OutboxStatus.QUEUED
    assert queue(core).count == 1
    work(core)

    (received,) = smtp.handler.received
    assert received.rcpt_tos == ["alex@campus.test"] and received.mail_from == FROM
    assert received.message["From"] == f"ParkOps Parking <{FROM}>"
    assert received.message["Reply-To"] is None  # a user's message, not a system one
    sent = row(core, message_id)
    assert sent.status is OutboxStatus.SENT and sent.sent_at is not None
    assert received.message["Message-ID"] == f"<{sent.provider_message_id}>"
    assert [(a["ok"], a["result"]) for a in sent.attempts] == [(True, "250 2.0.0 Ok: queued as TEST123")]
    assert sent.sender == f"ParkOps Parking <{FROM}>"

    # The job again, the sweep, another worker: nothing is sent twice.
    assert email_delivery.deliver(core, message_id).startswith("not claimed")
    assert email_delivery.sweep(core).enqueued == 0
    work(core)
    assert len(smtp.handler.received) == 1


def test_a_rolled_back_sender_queues_nothing(trusting_core, smtp):
    core = trusting_core
    configure_smtp(core, smtp.port)
    with pytest.raises(RuntimeError), core.db.session() as s:
        email.send_email(
            s,
            EmailMessage(to=["a@campus.test"], subject="S", text="T"),
            email_delivery.configured_backend(core, s),
        )
        raise RuntimeError("the payment failed")
    assert queue(core).count == 0
    work(core)
    assert smtp.handler.received == []


def test_system_messages_reply_to_the_admin_address(trusting_core, smtp):
    core = trusting_core
    configure_smtp(
        core, smtp.port, system_reply_to_email="admin@campus.test", mail_from_name="Campus Parking"
    )
    message_id = send(core, to="it@campus.test", template_key="csv-import-failures")
    work(core)
    (received,) = smtp.handler.received
    assert received.message["Reply-To"] == "admin@campus.test"
    assert received.message["From"] == f"Campus Parking <{FROM}>"
    assert row(core, message_id).reply_to == "admin@campus.test"


def test_a_message_survives_the_mail_server_being_down_and_is_sent_once_when_it_returns(trusting_core, cert):
    core = trusting_core
    server = SmtpServer(*cert, free_port())  # not started: the server is down
    configure_smtp(core, server.port)
    message_id = send(core)
    work(core)
    down = row(core, message_id)
    assert down.status is OutboxStatus.QUEUED
    assert len(down.attempts) == 1 and down.attempts[0]["ok"] is False
    assert "ConnectionRefusedError" in down.attempts[0]["result"]
    wait = down.next_attempt_at - utcnow()
    assert timedelta(seconds=50) < wait <= timedelta(minutes=1)
    assert email_delivery.sweep(core).enqueued == 0, "not due before the backoff"

    make_due(core, message_id)
    assert email_delivery.sweep(core).enqueued == 1
    work(core)
    second = row(core, message_id)
    assert second.status is OutboxStatus.QUEUED and len(second.attempts) == 2
    assert timedelta(seconds=110) < second.next_attempt_at - utcnow() <= timedelta(minutes=2)  # doubled

    server.start()
    try:
        make_due(core, message_id)
        assert email_delivery.sweep(core).enqueued == 1
        assert email_delivery.sweep(core).enqueued == 1  # same attempt: the same job id ...
        assert queue(core).count == 1  # ... queued once
        work(core)
        assert email_delivery.sweep(core).enqueued == 0
        work(core)
        assert len(server.handler.received) == 1
        sent = row(core, message_id)
        assert sent.status is OutboxStatus.SENT
        assert [a["ok"] for a in sent.attempts] == [False, False, True]
    finally:
        server.stop()


def test_a_permanent_refusal_fails_at_once(trusting_core, smtp):
    core = trusting_core
    smtp.handler.refuse_rcpt = "550 5.1.1 <nobody@campus.test>: Recipient address rejected"
    configure_smtp(core, smtp.port)
    message_id = send(core, to="nobody@campus.test")
    work(core)
    failed = row(core, message_id)
    assert failed.status is OutboxStatus.FAILED and failed.next_attempt_at is None
    assert (
        failed.error
        == "RCPT TO nobody@campus.test: 550 5.1.1 <nobody@campus.test>: Recipient address rejected"
    )


def test_an_untrusted_certificate_is_refused(core, smtp):
    configure_smtp(core, smtp.port)  # the test's CA is not trusted by this core
    message_id = send(core)
    work(core)
    assert smtp.handler.received == []
    refused = row(core, message_id)
    assert refused.status is OutboxStatus.QUEUED
    assert "TLS certificate is not trusted" in refused.error


def test_a_wrong_password_is_reported(trusting_core, smtp):
    core = trusting_core
    configure_smtp(core, smtp.port, smtp_password="wrong-password")
    message_id = send(core)
    work(core)
    assert smtp.handler.received == []
    assert "refused the login: 535" in row(core, message_id).error


def test_implicit_tls(trusting_core, cert):
    core = trusting_core
    server = SmtpServer(*cert, free_port(), implicit_tls=True)
    server.start()
    try:
        configure(
            core, mail_backend="smtp", smtp_host="localhost", smtp_port=server.port, smtp_security="ssl"
        )
        message_id = send(core)
        work(core)
        assert len(server.handler.received) == 1
        assert row(core, message_id).status is OutboxStatus.SENT
    finally:
        server.stop()


def test_the_test_send_reports_the_server_s_reply(trusting_core, smtp):
    core = trusting_core
    configure_smtp(core, smtp.port)
    result = email_delivery.send_test(core, "admin@campus.test", None)
    assert result == email_delivery.TestResult(True, "250 2.0.0 Ok: queued as TEST123")
    assert smtp.handler.received[0].message["Subject"] == "ParkOps: test message"


def test_the_test_send_reports_a_missing_setting(core):
    configure(core, mail_backend="smtp")
    result = email_delivery.send_test(core, "admin@campus.test", None)
    assert result == email_delivery.TestResult(False, "SMTP Host is not set (System Settings > Email > SMTP)")


# --- Mailgun ------------------------------------------------------------------------------------

DOMAIN = "mg.campus.test"
KEY = "key-mailgun-private-0123"


def configure_mailgun(core, httpserver) -> None:
    configure(
        core,
        mail_backend="mailgun",
        mailgun_domain=DOMAIN,
        mailgun_api_key=KEY,
        mailgun_base_url=httpserver.url_for("/").rstrip("/"),
    )


def test_mailgun_send_api(core, httpserver):
    seen: list[Request] = []

    def answer(request: Request) -> Response:
        seen.append(request)
        return Response('{"id": "<20261203.42@mg.campus.test>", "message": "Queued. Thank you."}', 200)

    httpserver.expect_request(f"/v3/{DOMAIN}/messages", method="POST").respond_with_handler(answer)
    configure_mailgun(core, httpserver)
    configure(core, system_reply_to_email="admin@campus.test")
    message_id = send(core, template_key="peoplesoft-holds-report")
    work(core)

    (request,) = seen
    assert request.authorization.username == "api" and request.authorization.password == KEY
    assert request.form.getlist("to") == ["alex@campus.test"]
    assert request.form["from"] == f"ParkOps Parking <{FROM}>"
    assert request.form["subject"] == "Your permit" and request.form["html"] == "<p>Hello</p>"
    assert request.form["h:Reply-To"] == "admin@campus.test"
    sent = row(core, message_id)
    assert sent.status is OutboxStatus.SENT
    assert sent.provider_message_id == "20261203.42@mg.campus.test"
    assert sent.attempts[0]["result"] == "HTTP 200 OK: Queued. Thank you."
    assert email_delivery.deliver(core, message_id).startswith("not claimed")
    assert len(seen) == 1


def test_mailgun_outage_is_retried_and_a_refusal_is_not(core, httpserver):
    configure_mailgun(core, httpserver)
    httpserver.expect_oneshot_request(f"/v3/{DOMAIN}/messages", method="POST").respond_with_data(
        "upstream down", status=503
    )
    first = send(core)
    work(core)
    assert row(core, first).status is OutboxStatus.QUEUED
    assert row(core, first).error == "HTTP 503 SERVICE UNAVAILABLE: upstream down"

    httpserver.expect_oneshot_request(f"/v3/{DOMAIN}/messages", method="POST").respond_with_json(
        {"message": "'to' parameter is not a valid address. please check documentation"}, status=400
    )
    second = send(core, to="bad@campus.test")
    work(core)
    refused = row(core, second)
    assert refused.status is OutboxStatus.FAILED
    assert (
        refused.error
        == "HTTP 400 BAD REQUEST: 'to' parameter is not a valid address. please check documentation"
    )


# --- services: the claim, the backoff, dead workers ---------------------------------------------


def test_only_one_claim_wins(core):
    with core.db.session() as s:
        message_id = email.send_email(
            s,
            EmailMessage(to=["a@campus.test"], subject="S", text="T"),
            email.QueuedBackend("smtp", lambda _id: None),
        )
    now = utcnow()
    with core.db.session() as s:
        assert outbox.claim(s, message_id, now) is not None
    with core.db.session() as s:
        assert outbox.claim(s, message_id, now) is None


def test_backoff_doubles_until_the_last_attempt_fails_the_message(core):
    assert [email.backoff(n).total_seconds() / 60 for n in range(1, 6)] == [1, 2, 4, 8, 16]
    with core.db.session() as s:
        message_id = email.send_email(
            s,
            EmailMessage(to=["a@campus.test"], subject="S", text="T"),
            email.QueuedBackend("smtp", lambda _id: None),
        )
    now = utcnow()
    statuses = []
    for attempt in range(email.MAX_ATTEMPTS):
        with core.db.session() as s:
            s.execute(update(OutboxMessage).values(next_attempt_at=now))
            assert outbox.claim(s, message_id, now) is not None
            statuses.append(outbox.record_attempt(s, message_id, now, error=f"down {attempt}"))
    assert statuses == [OutboxStatus.QUEUED] * (email.MAX_ATTEMPTS - 1) + [OutboxStatus.FAILED]


def test_a_dead_worker_s_claim_is_released_with_a_note(core):
    with core.db.session() as s:
        message_id = email.send_email(
            s,
            EmailMessage(to=["a@campus.test"], subject="S", text="T"),
            email.QueuedBackend("smtp", lambda _id: None),
        )
    long_ago = utcnow() - email.STALE_CLAIM - timedelta(minutes=1)
    with core.db.session() as s:
        s.execute(update(OutboxMessage).values(next_attempt_at=long_ago))
        assert outbox.claim(s, message_id, long_ago) is not None
    with core.db.session() as s:
        assert outbox.release_stale_claims(s, utcnow() - timedelta(minutes=30)) == []  # not stale then
    with core.db.session() as s:
        assert outbox.release_stale_claims(s, utcnow()) == [message_id]
    released = row(core, message_id)
    assert released.status is OutboxStatus.QUEUED
    assert "may have been sent" in released.attempts[-1]["result"]


def test_a_queue_that_is_down_at_commit_leaves_the_message_due(core, caplog):
    def broken(_id: int) -> None:
        raise redis.ConnectionError("redis is down")

    with core.db.session() as s:
        message_id = email.send_email(
            s, EmailMessage(to=["a@campus.test"], subject="S", text="T"), email.QueuedBackend("smtp", broken)
        )
    assert "could not be queued now" in caplog.text
    with core.db.session() as s:
        assert outbox.due(s, utcnow()) == [(message_id, 0)]


@pytest.mark.services
def test_two_workers_racing_on_one_message_send_it_once(trusting_core, smtp):
    """On PostgreSQL: the same message's job run by two workers at the same instant (a repeated
    enqueue, a retry racing the first job); the claim lets exactly one of them send."""
    core = trusting_core
    configure_smtp(core, smtp.port)
    message_id = send(core)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def run_job() -> None:
        start.wait()
        outcomes.append(email_delivery.deliver_outbox_message(message_id))

    racers = [threading.Thread(target=run_job) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)
    assert sorted(outcomes) == ["not claimed (sent, being sent, not due, or gone)", "sent"]
    assert len(smtp.handler.received) == 1
    sent = row(core, message_id)
    assert sent.status is OutboxStatus.SENT and len(sent.attempts) == 1
