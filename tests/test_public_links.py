"""Links that leave a request (receipt and waitlist e-mails, the lot QR code) start with the site's
public URL (``PARKOPS_BASE_URL``), never with the request's Host header, which whoever sends the
request chooses; a request naming a host that is not ours is refused with a 400 before anything
runs, behind trusted proxies too (``X-Forwarded-Host``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dashboard.app import trust_proxies
from dashboard.services import email
from models import (
    Lot,
    OutboxMessage,
    Payment,
    Permit,
    PermitKind,
    PermitProduct,
    PermitStatus,
    Pricing,
    Role,
    SandboxCharge,
)
from tests.conftest import PASSWORD
from tests.dash_helpers import dash_post, find_output, outputs_of, press

CARD = "4242 4242 4242 4242"
EXPIRY = f"12/{(datetime.now(UTC).year + 2) % 100:02d}"
PAY = "..checkout-result.children@"  # the Pay callback (the setup callback fills it first)
FORGED = {"Host": "evil.example"}
PERMITTED = {"Host": "localhost"}  # trusted (tests' PARKOPS_ALLOWED_HOSTS), but not the public URL


@pytest.fixture
def visitor_lot(session) -> dict[str, int]:
    email.ensure_default_templates(session)
    lot = Lot(name="Visitor Lot", code="VL", capacity=3, sells_standard=False, sells_temporary=True)
    session.add(lot)
    session.flush()
    hourly = PermitProduct(
        lot_id=lot.id,
        kind=PermitKind.TEMPORARY,
        name="Hourly",
        pricing=Pricing.HOURLY,
        price_cents=300,
        max_duration_minutes=240,
    )
    session.add(hourly)
    session.commit()
    return {"lot": lot.id, "hourly": hourly.id}


def guest_checkout(client, app, visitor_lot, headers) -> object:
    """The quick checkout's Pay button, as the browser posts it, with the given request headers."""
    values = [str(visitor_lot["lot"]), visitor_lot["hourly"], "now", "today", None, "120", "dfgh-902"]
    state = [*values, "visitor@example.com", CARD, EXPIRY, "123", "form-key-public-links"]
    return dash_post(client, app, find_output(app, PAY), [1], state, headers=headers)


def outbox(session) -> list[OutboxMessage]:
    session.expire_all()
    return list(session.scalars(select(OutboxMessage)))


def test_a_guest_checkout_for_a_forged_host_is_refused_and_mails_nothing(app, session, visitor_lot):
    response = guest_checkout(app.test_client(), app, visitor_lot, FORGED)
    assert response.status_code == 400
    assert outbox(session) == []
    assert session.scalar(select(func.count(SandboxCharge.id))) == 0
    assert session.scalar(select(func.count(Permit.id))) == 0


def test_the_receipt_link_is_the_public_url_whatever_host_was_asked(app, settings, session, visitor_lot):
    result = outputs_of(guest_checkout(app.test_client(), app, visitor_lot, PERMITTED))
    assert "Payment received" in json.dumps(result)
    (mail,) = outbox(session)
    token = session.scalars(select(Payment.receipt_token)).one()
    assert settings.public_url == "http://127.0.0.1:8050"  # the embedded default: host and port
    assert f"{settings.public_url}/receipts/{token}" in mail.body_text
    assert "localhost" not in mail.body_text + (mail.body_html or "")


def test_the_waitlist_offer_link_is_the_public_url(app, settings, session, login_as):
    """Raising a lot's allowance offers the space to the first in line, by e-mail, with an absolute
    link (it was relative, ``/checkout/temp/...``, without ``PARKOPS_BASE_URL``)."""
    email.ensure_default_templates(session)
    now = datetime.now(UTC)
    lot = Lot(name="Visitor Lot", capacity=1, sells_temporary=True)
    session.add(lot)
    session.flush()
    product = PermitProduct(
        lot_id=lot.id, kind=PermitKind.TEMPORARY, name="Hourly", pricing=Pricing.HOURLY, price_cents=250
    )
    taken = Permit(
        number="T-TAKEN",
        kind=PermitKind.TEMPORARY,
        status=PermitStatus.ACTIVE,
        lot_id=lot.id,
        valid_from=now - timedelta(hours=1),
        valid_to=now + timedelta(hours=3),
    )
    session.add_all([product, taken])
    session.commit()
    waiting = login_as(Role.USER)
    joined = press(
        waiting,
        app,
        "waitlistjoin-result.children",
        "waitlistjoin-join",
        {"waitlistjoin-product": str(product.id)},
    )
    assert "You joined the waitlist" in json.dumps(outputs_of(joined))
    manager = login_as(Role.MANAGER)
    saved = press(
        manager,
        app,
        "capacity-modal.is_open",
        "capacity-save",
        # 6 leaves 5 to sell: enough that Save does not stop to ask first.
        values={"capacity-lot": lot.id, "capacity-allowance": "6"},
        rows={"capacity-edit": [{"type": "capacity-edit", "lot": lot.id}]},
    )
    assert outputs_of(saved)["capacity-modal"]["is_open"] is False
    (offer,) = outbox(session)
    assert offer.to_addresses == [waiting.user.email]
    assert f"{settings.public_url}/checkout/temp/{lot.id}" in offer.body_text


def test_the_lot_qr_code_points_at_the_public_url(app, settings, login_as, visitor_lot):
    key = find_output(app, "lotqr-content.children")
    manager = login_as(Role.MANAGER)
    shown = json.dumps(outputs_of(dash_post(manager, app, key, [str(visitor_lot["lot"])], headers=PERMITTED)))
    assert f"{settings.public_url}/checkout/temp/{visitor_lot['lot']}" in shown
    assert "http://localhost" not in shown


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/admin/settings"),  # not the gate's redirect to the login page
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/api/v1/lot-groups"),
        ("GET", "/healthz"),
        ("GET", "/assets/nothing.css"),
    ],
)
def test_any_request_for_an_unknown_host_is_a_400(app, method, path, caplog):
    response = app.test_client().open(path, method=method, headers=FORGED, data={"email": "x@y.z"})
    assert response.status_code == 400
    assert any("unknown host 'evil.example'" in r.getMessage() for r in caplog.records)


def test_the_trusted_hosts_are_answered(app):
    for host in ("localhost", "127.0.0.1", "127.0.0.1:8050"):
        assert app.test_client().get("/login", headers={"Host": host}).status_code == 200, host


def test_behind_a_proxy_the_forwarded_host_is_the_one_checked(app, make_user):
    """With PARKOPS_PROXY_HOPS, X-Forwarded-Host is what the browser asked for: a forged one is
    refused even though the proxy itself reached us as a trusted host."""
    user = make_user(Role.USER)
    original = app.wsgi_app
    trust_proxies(app, 1)
    try:
        client = app.test_client()
        forged = client.get("/login", headers={"Host": "localhost", "X-Forwarded-Host": "evil.example"})
        permitted = client.post(
            "/login",
            data={"email": user.email, "password": PASSWORD},
            headers={"Host": "10.0.0.7", "X-Forwarded-Host": "localhost", "Origin": "http://localhost"},
        )
    finally:
        app.wsgi_app = original
    assert forged.status_code == 400
    assert permitted.status_code == 302 and permitted.headers["Location"] == "/"
