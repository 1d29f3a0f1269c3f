"""The partner permit API over HTTP: keys (missing, unknown, revoked, wrong scope), idempotent
recording, field validation, lot or zone, and the plate check."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dashboard.services import email, payment_providers, payments
from dashboard.services.payments import DECLINED_CARD, ReceiptContext, SandboxProvider
from dashboard.services.permits import PermitRequest
from dashboard.services.plates import clean_plate
from models import ApiKey, Lot, Permit, PermitKind, PermitProduct, Pricing
from tests.api.partners import bearer, issue_key, make_place

NOW = datetime.now(UTC).replace(microsecond=0)
START = (NOW - timedelta(hours=1)).isoformat()
END = (NOW + timedelta(hours=2)).isoformat()


@pytest.fixture
def place(core):
    return make_place(core)


@pytest.fixture
def writer(core):
    return issue_key(core, "permits:write", "permits:read")


def body(**fields):
    values = {
        "plate": "abc 123",
        "zone": "1001",
        "start": START,
        "end": END,
        "amount_cents": 450,
        "currency": "CAD",
        "source": "paystation",
        "external_id": "CALE-77",
    }
    values.update(fields)
    return {k: v for k, v in values.items() if v is not ...}


def permit_count(core) -> int:
    with core.db.session() as s:
        return s.scalar(select(func.count(Permit.id)))


# --- keys ------------------------------------------------------------------------------------------


def test_a_missing_key_is_401_with_a_bearer_challenge(client, core, place):
    response = client.post("/api/v1/permits", json=body())
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "required" in response.json["error"]
    assert (
        client.post("/api/v1/permits", json=body(), headers={"Authorization": "Basic abc"}).status_code == 401
    )
    assert permit_count(core) == 0


def test_an_unknown_or_revoked_key_is_401(client, core, place, writer):
    unknown = client.post("/api/v1/permits", json=body(), headers=bearer(writer + "x"))
    assert unknown.status_code == 401 and "not known" in unknown.json["error"]
    revoked = issue_key(core, "permits:write", revoked=True)
    refused = client.post("/api/v1/permits", json=body(), headers=bearer(revoked))
    assert refused.status_code == 401 and "revoked" in refused.json["error"]
    assert permit_count(core) == 0


def test_a_key_without_the_scope_is_403(client, core, place):
    reader = issue_key(core, "permits:read")
    response = client.post("/api/v1/permits", json=body(), headers=bearer(reader))
    assert response.status_code == 403 and "permits:write" in response.json["error"]
    writer_only = issue_key(core, "permits:write")
    check = client.get("/api/v1/permits/validate?plate=ABC123&lot=NG", headers=bearer(writer_only))
    assert check.status_code == 403
    assert permit_count(core) == 0


def test_a_used_key_records_when(client, core, place, writer):
    client.post("/api/v1/permits", json=body(), headers=bearer(writer))
    with core.db.session() as s:
        assert s.scalar(select(ApiKey.last_used_at)) is not None


# --- recording -------------------------------------------------------------------------------------


def test_a_permit_is_recorded_once_per_source_and_external_id(client, core, place, writer):
    first = client.post("/api/v1/permits", json=body(), headers=bearer(writer))
    assert first.status_code == 201, first.json
    permit = first.json
    assert permit["plates"] == ["ABC 123"] and permit["zone"] == "1001" and permit["lot"] is None
    assert permit["source"] == "paystation" and permit["external_id"] == "CALE-77"
    assert permit["kind"] == "temporary" and permit["status"] == "active"
    assert permit["amount_cents"] == 450 and permit["currency"] == "CAD"
    assert permit["valid_from"] == (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert len(permit["reference"]) == 36
    assert first.headers["Cache-Control"] == "no-store"
    again = client.post("/api/v1/permits", json=body(plate="OTHER 1"), headers=bearer(writer))
    assert again.status_code == 200 and again.json == permit
    other_source = client.post("/api/v1/permits", json=body(source="hotspot"), headers=bearer(writer))
    assert other_source.status_code == 201 and other_source.json["id"] != permit["id"]
    assert permit_count(core) == 2


def test_source_defaults_to_api(client, core, place, writer):
    response = client.post("/api/v1/permits", json=body(source=...), headers=bearer(writer))
    assert response.status_code == 201 and response.json["source"] == "api"


def test_a_lot_permit_by_name_or_code(client, core, place, writer):
    by_code = client.post("/api/v1/permits", json=body(zone=..., lot="ng"), headers=bearer(writer))
    assert by_code.status_code == 201
    assert (
        by_code.json["lot"] == {"id": place.lot_id, "name": "North Garage"} and by_code.json["zone"] is None
    )
    by_name = client.post(
        "/api/v1/permits", json=body(zone=..., lot="South Lot", external_id="2"), headers=bearer(writer)
    )
    assert by_name.status_code == 201 and by_name.json["lot"]["id"] == place.other_lot_id


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"plate": ...}, "plate"),
        ({"plate": "!!"}, "plate"),
        ({"plate": 123}, "plate"),
        ({"zone": ...}, "lot"),  # neither a lot nor a zone
        ({"lot": "NG"}, "lot"),  # both
        ({"zone": "9999"}, "zone"),
        ({"zone": ..., "lot": "Nowhere"}, "lot"),
        ({"start": ...}, "start"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-11-28T09:30:00"}, "start"),  # no offset
        ({"start": "0001-01-01T00:00:00+01:00"}, "start"),  # leaves the calendar in UTC
        ({"end": START}, "end"),  # not after the start
        ({"amount_cents": -1}, "amount_cents"),
        ({"amount_cents": 4.5}, "amount_cents"),
        ({"amount_cents": "450"}, "amount_cents"),
        ({"currency": "dollars"}, "currency"),
        ({"source": "portal"}, "source"),
        ({"external_id": ...}, "external_id"),
        ({"external_id": "x" * 81}, "external_id"),
        ({"external_id": "a\x00b"}, "external_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_each_field_is_validated(client, core, place, writer, fields, field):
    response = client.post("/api/v1/permits", json=body(**fields), headers=bearer(writer))
    assert response.status_code == 422, response.json
    assert field in response.json["fields"], response.json
    assert response.json["error"]
    assert permit_count(core) == 0


def test_every_bad_field_is_reported_at_once(client, core, place, writer):
    response = client.post(
        "/api/v1/permits", json=body(plate="", zone="nope", currency="x"), headers=bearer(writer)
    )
    assert response.status_code == 422
    assert {"plate", "zone", "currency"} <= set(response.json["fields"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "{not json", "content_type": "application/json"},
        {"data": "[1, 2]", "content_type": "application/json"},
        {"data": "plate=ABC", "content_type": "application/x-www-form-urlencoded"},
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(client, core, place, writer, kwargs):
    response = client.post("/api/v1/permits", headers=bearer(writer), **kwargs)
    assert response.status_code == 400 and "JSON object" in response.json["error"]


def test_the_api_needs_no_session_and_no_same_origin(client, place, writer):
    """Partners post from elsewhere: the gate must not redirect to the login or refuse the Origin."""
    response = client.post(
        "/api/v1/permits", json=body(), headers={**bearer(writer), "Origin": "https://paystation.example"}
    )
    assert response.status_code == 201


# --- validate --------------------------------------------------------------------------------------


def test_validate_says_why_a_plate_may_park(client, core, place, writer):
    client.post("/api/v1/permits", json=body(), headers=bearer(writer))
    response = client.get("/api/v1/permits/validate?plate=ABC-123&lot=North Garage", headers=bearer(writer))
    assert response.status_code == 200, response.json
    verdict = response.json
    assert verdict["valid"] is True and "zone 1001" in verdict["reason"]
    assert verdict["plate"] == "ABC123" and verdict["lot"] == {"id": place.lot_id, "name": "North Garage"}
    assert [p["external_id"] for p in verdict["permits"]] == ["CALE-77"] and verdict["sessions"] == []
    assert "email" not in verdict["permits"][0]
    assert response.headers["Cache-Control"] == "no-store"


def test_validate_by_lot_id_and_at_a_given_time(client, core, place, writer):
    client.post("/api/v1/permits", json=body(zone=..., lot="NG"), headers=bearer(writer))
    url = f"/api/v1/permits/validate?plate=ABC123&lot={place.lot_id}"
    assert client.get(url, headers=bearer(writer)).json["valid"] is True
    later = (NOW + timedelta(hours=3)).isoformat()
    query = {"plate": "ABC123", "lot": str(place.lot_id), "at": later}
    expired = client.get("/api/v1/permits/validate", query_string=query, headers=bearer(writer)).json
    assert expired["valid"] is False and "expired" in expired["reason"]
    spaced = later.replace("+", " ")  # an unencoded "+" in a query string
    assert client.get(f"{url}&at={spaced}", headers=bearer(writer)).json["valid"] is False
    elsewhere = client.get(
        f"/api/v1/permits/validate?plate=ABC123&lot={place.other_lot_id}", headers=bearer(writer)
    ).json
    assert elsewhere["valid"] is False and "not this lot" in elsewhere["reason"]


def test_validate_ignores_the_hold_of_a_declined_checkout(client, core, place, writer):
    """A guest's card was declined in North Garage: the released hold was never a permit."""
    with core.db.session() as s:
        s.get(Lot, place.lot_id).sells_temporary = True
        product = PermitProduct(
            lot_id=place.lot_id,
            kind=PermitKind.TEMPORARY,
            name="Hourly",
            pricing=Pricing.HOURLY,
            price_cents=300,
        )
        s.add(product)
        s.flush()
        request = PermitRequest(
            place.lot_id,
            product.id,
            (clean_plate("ABC 123"),),
            NOW,
            NOW + timedelta(hours=1),
            300,
            "CAD",
            None,
            None,
        )
    declined = payments.checkout(
        core.db,
        SandboxProvider(core.db),
        items=[request],
        card=payment_providers.clean_card(DECLINED_CARD, "12/39", "123", NOW.date()),
        idempotency_key="declined-form",
        email_address="guest@example.com",
        user_id=None,
        receipt=ReceiptContext("Guest", "Campus", "http://localhost", core.settings.tz),
        backend=email.OutboxBackend(),
        now=NOW,
    )
    assert declined.status == "declined"
    verdict = client.get("/api/v1/permits/validate?plate=ABC123&lot=NG", headers=bearer(writer)).json
    assert verdict["valid"] is False and verdict["permits"] == []
    assert verdict["reason"] == "No permit: this plate has no permit or paid session here now."


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("lot=NG", {"plate"}),
        ("plate=ABC123", {"lot"}),
        ("plate=ABC123&lot=Nowhere", {"lot"}),
        ("plate=ABC123&lot=NG&at=soon", {"at"}),
        ("plate=ABC123&lot=NG&at=2026-11-28T09:30:00", {"at"}),
        ("plate=ABC123&lot=NG&at=0001-01-01T00:00:00Z", {"at"}),
        ("plate=---&lot=NG", {"plate"}),
        ("plate=ABC123&lot=NG&when=2026-11-28T09:30:00Z", {"when"}),  # misspelt: refused, not ignored
    ],
)
def test_validate_reports_bad_parameters(client, place, writer, query, fields):
    response = client.get(f"/api/v1/permits/validate?{query}", headers=bearer(writer))
    assert response.status_code == 422
    assert set(response.json["fields"]) == fields


def test_validate_needs_a_key(client, place):
    assert client.get("/api/v1/permits/validate?plate=ABC123&lot=NG").status_code == 401


# --- a key acts for its own sources ------------------------------------------------------------------


def test_a_key_records_only_for_its_sources_and_defaults_to_its_only_one(client, core, place):
    hotspot = issue_key(core, "permits:write", sources=("hotspot",))
    refused = client.post("/api/v1/permits", json=body(), headers=bearer(hotspot))  # source paystation
    assert refused.status_code == 403 and refused.json == {
        "error": "this API key records hotspot permits, not paystation"
    }
    defaulted = client.post("/api/v1/permits", json=body(source=...), headers=bearer(hotspot))
    assert defaulted.status_code == 201 and defaulted.json["source"] == "hotspot"
    assert permit_count(core) == 1


def test_a_second_partner_cannot_see_the_first_partner_s_permit(client, core, place):
    """The plate check gives every key the verdict, and lists only the key's own permits."""
    cale = issue_key(core, "permits:write", "permits:read", sources=("paystation",))
    hotspot = issue_key(core, "permits:write", "permits:read", sources=("hotspot",))
    recorded = client.post("/api/v1/permits", json=body(), headers=bearer(cale)).json
    url = "/api/v1/permits/validate?plate=ABC123&lot=NG"
    own = client.get(url, headers=bearer(cale)).json
    assert own["valid"] is True and [p["reference"] for p in own["permits"]] == [recorded["reference"]]
    other = client.get(url, headers=bearer(hotspot)).json
    assert other["valid"] is True and other["permits"] == []
    assert recorded["reference"] not in json.dumps(other)
    again = client.post("/api/v1/permits", json=body(), headers=bearer(hotspot))  # Cale's external_id
    assert again.status_code == 403 and recorded["reference"] not in again.get_data(as_text=True)
