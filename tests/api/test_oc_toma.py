"""The OC-TOMA-compatible push API over HTTP, as pay stations and HotSpot send it: push, repeated
push, update (each spelling of referenceID, EndDateUtc), delete, stats, and refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from models import ApiKey, LotZone, Permit
from tests.api.partners import bearer, issue_key, make_place

BASE = "/api/OC-TOMA/v1/permits"
FORMAT = "%Y-%m-%dT%H:%M:%S"


@pytest.fixture
def place(core):
    return make_place(core)


@pytest.fixture
def token(core):
    return issue_key(core, "permits:write", "permits:read")


@pytest.fixture
def site_tz(core) -> ZoneInfo:
    return core.settings.tz


def local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime(FORMAT)


def push_body(token, tz, **fields):
    now = datetime.now(UTC).replace(microsecond=0)
    values = {
        "apiToken": token,
        "Amount": "14.50",
        "CurrencyID": "CAD",
        "LicencePlate": "ABC 123",
        "zone": "1001",
        "permitNo": "90210",
        "startTime": local(now - timedelta(hours=1), tz),
        "endTime": local(now + timedelta(hours=2), tz),
    }
    values.update(fields)
    return {k: v for k, v in values.items() if v is not ...}


def pushed(client, token, tz, **fields):
    response = client.post(f"{BASE}/push", json=push_body(token, tz, **fields))
    assert response.status_code == 200, response.json
    return response.json


def permit_count(core) -> int:
    with core.db.session() as s:
        return s.scalar(select(func.count(Permit.id)))


def test_push_records_a_zone_permit_and_answers_a_reference(client, core, place, token, site_tz):
    now = datetime.now(UTC).replace(microsecond=0)
    answer = pushed(
        client,
        token,
        site_tz,
        startTime=local(now, site_tz),
        endTime=local(now + timedelta(hours=1), site_tz),
    )
    reference = answer["referenceID"]
    assert len(reference) == 36 and reference.count("-") == 4
    assert answer["created"] is True
    permit = answer["permit"]
    assert permit["reference"] == reference and permit["external_id"] == "90210"
    assert permit["source"] == "paystation" and permit["zone"] == "1001" and permit["plates"] == ["ABC 123"]
    assert permit["amount_cents"] == 1450 and permit["currency"] == "CAD"
    # The local wall-clock time was read in the site's time zone and stored in UTC.
    assert permit["valid_from"] == now.isoformat().replace("+00:00", "Z")
    verdict = client.get("/api/v1/permits/validate?plate=ABC123&lot=NG", headers=bearer(token)).json
    assert verdict["valid"] is True


def test_a_repeated_push_answers_the_same_reference(client, core, place, token, site_tz):
    first = pushed(client, token, site_tz)
    again = pushed(client, token, site_tz, Amount="99.00")
    assert again["referenceID"] == first["referenceID"] and again["created"] is False
    assert again["permit"]["amount_cents"] == 1450
    assert permit_count(core) == 1


def test_the_underscore_prefix_and_other_spellings_are_accepted(client, core, place, token, site_tz):
    body = push_body(
        token, site_tz, LicencePlate=..., CurrencyID=..., plate="XYZ 9", currency="usd", source="hotspot"
    )
    response = client.post("/api/OC_TOMA/v1/permits/push", json=body)
    assert response.status_code == 200, response.json
    assert response.json["permit"]["plates"] == ["XYZ 9"] and response.json["permit"]["currency"] == "USD"
    assert response.json["permit"]["source"] == "hotspot"


def test_an_explicit_offset_wins_over_the_site_time_zone(client, place, token, site_tz):
    now = datetime.now(UTC).replace(microsecond=0)
    answer = pushed(client, token, site_tz, startTime=now.strftime(FORMAT) + "Z")
    assert answer["permit"]["valid_from"] == now.isoformat().replace("+00:00", "Z")


def test_a_push_without_content_type_is_read_as_json(client, place, token, site_tz):
    response = client.post(
        f"{BASE}/push", data=json.dumps(push_body(token, site_tz)), content_type="text/plain"
    )
    assert response.status_code == 200, response.json


@pytest.mark.parametrize("spelling", ["referenceID", "referenceid", "reference_id"])
def test_update_by_each_spelling_of_the_reference(client, core, place, token, site_tz, spelling):
    reference = pushed(client, token, site_tz)["referenceID"]
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=6)
    response = client.post(
        f"{BASE}/update",
        json={
            "apiToken": token,
            spelling: reference,
            "plate": "NEW 1",
            "Amount": "20",
            "currency": "cad",
            "endTime": local(later, site_tz),
        },
    )
    assert response.status_code == 200, response.json
    permit = response.json["permit"]
    assert response.json["referenceID"] == reference
    assert permit["plates"] == ["NEW 1"] and permit["amount_cents"] == 2000 and permit["currency"] == "CAD"
    assert permit["valid_to"] == later.isoformat().replace("+00:00", "Z")


def test_end_date_utc_is_read_as_utc(client, place, token, site_tz):
    reference = pushed(client, token, site_tz)["referenceID"]
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=6)
    response = client.post(
        f"{BASE}/update",
        json={"apiToken": token, "referenceID": reference, "EndDateUtc": later.strftime(FORMAT)},
    )
    assert response.status_code == 200, response.json
    assert response.json["permit"]["valid_to"] == later.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({}, 422, "referenceID"),
        ({"referenceID": "not-a-uuid", "Amount": "1"}, 422, "referenceID"),
        ({"referenceID": "00000000-0000-8000-8000-000000000001", "Amount": "1"}, 404, None),
        ({"REF": "x"}, 422, "referenceID"),
        ({"referenceID": "<ref>"}, 422, "permit"),  # nothing to change
        ({"referenceID": "<ref>", "Amount": "1.234"}, 422, "Amount"),
        ({"referenceID": "<ref>", "Amount": "-1"}, 422, "Amount"),
        ({"referenceID": "<ref>", "Amount": "ten"}, 422, "Amount"),
        ({"referenceID": "<ref>", "endTime": "2018/07/02 09:30"}, 422, "endTime"),
        ({"referenceID": "<ref>", "EndDateUtc": "2018-07-02"}, 422, "EndDateUtc"),
        ({"referenceID": "<ref>", "endTime": "2000-01-01T00:00:00"}, 422, "endTime"),  # before the start
        ({"referenceID": "<ref>", "plate": "!"}, 422, "plate"),
        ({"referenceID": "<ref>", "currency": "dollars"}, 422, "currency"),
    ],
)
def test_update_refusals(client, place, token, site_tz, fields, status, field):
    reference = pushed(client, token, site_tz)["referenceID"]
    body = {"apiToken": token, **{k: (reference if v == "<ref>" else v) for k, v in fields.items()}}
    response = client.post(f"{BASE}/update", json=body)
    assert response.status_code == status, response.json
    if field:
        assert field in response.json["fields"], response.json


def test_delete_cancels_and_a_cancelled_permit_cannot_be_updated(client, core, place, token, site_tz):
    reference = pushed(client, token, site_tz)["referenceID"]
    deleted = client.post(f"{BASE}/delete", json={"apiToken": token, "reference_id": reference})
    assert deleted.status_code == 200 and deleted.json["permit"]["status"] == "cancelled"
    assert (
        client.post(f"{BASE}/delete", json={"apiToken": token, "referenceID": reference}).status_code == 200
    )
    verdict = client.get("/api/v1/permits/validate?plate=ABC123&lot=NG", headers=bearer(token)).json
    assert verdict["valid"] is False
    late = client.post(f"{BASE}/update", json={"apiToken": token, "referenceID": reference, "Amount": "1"})
    assert late.status_code == 409
    assert client.post(f"{BASE}/delete", json={"apiToken": token}).status_code == 422
    assert permit_count(core) == 1


def test_stats_count_permits_per_zone_and_kind(client, core, place, token, site_tz):
    with core.db.session() as s:
        s.add(LotZone(name="Lot 02"))
    pushed(client, token, site_tz, permitNo="1")
    pushed(client, token, site_tz, permitNo="2", LicencePlate="DEF 4")
    everything = client.post(f"{BASE}/stats", json={"apiToken": token})
    assert everything.status_code == 200
    assert everything.json == {
        "data": [
            {"type": "standard", "zone": "1001", "total": "0"},
            {"type": "temp", "zone": "1001", "total": "2"},
            {"type": "standard", "zone": "Lot 02", "total": "0"},
            {"type": "temp", "zone": "Lot 02", "total": "0"},
        ]
    }
    filtered = client.post(f"{BASE}/stats", json={"apiToken": token, "zones": "Lot 02"})
    assert [row["zone"] for row in filtered.json["data"]] == ["Lot 02", "Lot 02"]
    unknown = client.post(f"{BASE}/stats", json={"apiToken": token, "zones": "1001,Lot 99"})
    assert unknown.status_code == 422 and "Lot 99" in unknown.json["fields"]["zones"]


@pytest.mark.parametrize("call", ["push", "update", "delete", "stats"])
def test_a_bad_token_is_401(client, core, place, token, site_tz, call):
    body = {
        **push_body(token, site_tz),
        "apiToken": token + "x",
        "referenceID": "00000000-0000-8000-8000-000000000001",
    }
    response = client.post(f"{BASE}/{call}", json=body)
    assert response.status_code == 401
    body.pop("apiToken")
    assert client.post(f"{BASE}/{call}", json=body).status_code == 401
    assert permit_count(core) == 0


def test_the_token_needs_the_call_scope(client, core, place, site_tz):
    reader = issue_key(core, "permits:read")
    assert client.post(f"{BASE}/push", json=push_body(reader, site_tz)).status_code == 403
    assert client.post(f"{BASE}/stats", json={"apiToken": reader}).status_code == 200
    writer = issue_key(core, "permits:write")
    assert client.post(f"{BASE}/stats", json={"apiToken": writer}).status_code == 403
    revoked = issue_key(core, "permits:write", revoked=True)
    assert client.post(f"{BASE}/push", json=push_body(revoked, site_tz)).status_code == 401


def test_a_bearer_header_may_carry_the_key(client, place, token, site_tz):
    body = push_body(token, site_tz, apiToken=...)
    assert client.post(f"{BASE}/push", json=body, headers=bearer(token)).status_code == 200


def test_an_unknown_zone_is_refused_clearly(client, core, place, token, site_tz):
    response = client.post(f"{BASE}/push", json=push_body(token, site_tz, zone="Lot 99"))
    assert response.status_code == 422
    assert "no lot zone" in response.json["fields"]["zone"]
    assert permit_count(core) == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"startTime": "07/02/2018 09:30"}, "startTime"),
        ({"startTime": "2018-07-02 09:30:00"}, "startTime"),
        ({"endTime": "2018-07-02T09:30"}, "endTime"),
        ({"endTime": 1530538200}, "endTime"),
        ({"startTime": "0001-01-01T00:00:00+01:00"}, "startTime"),
        ({"startTime": ...}, "startTime"),
        ({"zone": ...}, "zone"),
        ({"permitNo": ...}, "permitNo"),
        ({"permitNo": True}, "permitNo"),
        ({"permitNo": "90\x0010"}, "permitNo"),
        ({"LicencePlate": ...}, "LicencePlate"),
        ({"Amount": "14.505"}, "Amount"),
        ({"Amount": True}, "Amount"),
        ({"CurrencyID": "C"}, "CurrencyID"),
        ({"source": "portal"}, "source"),
    ],
)
def test_push_refusals_name_the_field(client, core, place, token, site_tz, fields, field):
    response = client.post(f"{BASE}/push", json=push_body(token, site_tz, **fields))
    assert response.status_code == 422, response.json
    assert field in response.json["fields"], response.json
    assert permit_count(core) == 0


def test_a_bad_field_leaves_nothing_behind(client, core, place, token, site_tz):
    """The permit would be valid apart from its amount: it must not be stored anyway."""
    response = client.post(f"{BASE}/push", json=push_body(token, site_tz, Amount="abc"))
    assert response.status_code == 422 and set(response.json["fields"]) == {"Amount"}
    assert permit_count(core) == 0


def test_a_body_that_is_not_json_is_400(client, place, token):
    response = client.post(
        f"{BASE}/push", data="apiToken=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400


def test_an_unknown_call_is_a_json_404(client):
    response = client.post("/api/OC-TOMA/v1/permits/frobnicate", json={})
    assert response.status_code == 404 and response.is_json


def test_numeric_permit_numbers_and_zones_are_read_as_text(client, core, place, token, site_tz):
    first = pushed(client, token, site_tz, permitNo=555, zone=1001)
    assert first["permit"]["zone"] == "1001"
    assert first["permit"]["external_id"] == "555"
    assert pushed(client, token, site_tz, permitNo="555")["referenceID"] == first["referenceID"]
    assert permit_count(core) == 1


# --- a key acts for its own sources ------------------------------------------------------------------


def test_another_partner_cannot_read_update_or_delete_a_permit(client, core, place, site_tz):
    """The first partner's permitNo and referenceID give a second partner's key nothing."""
    cale = issue_key(core, "permits:write", "permits:read", sources=("paystation",))
    hotspot = issue_key(core, "permits:write", "permits:read", sources=("hotspot",))
    first = pushed(client, cale, site_tz)
    reference = first["referenceID"]

    # Re-pushing the same permitNo under the first partner's source: refused, nothing revealed.
    taken = client.post(f"{BASE}/push", json=push_body(hotspot, site_tz, source="paystation"))
    assert taken.status_code == 403 and reference not in taken.get_data(as_text=True)
    assert "records hotspot permits, not paystation" in taken.json["error"]
    for call, extra in (("update", {"Amount": "0"}), ("delete", {})):
        response = client.post(
            f"{BASE}/{call}", json={"apiToken": hotspot, "referenceID": reference, **extra}
        )
        assert response.status_code == 404 and response.json == {"error": "No permit has this referenceID."}
    # Under its own source the same permitNo is the second partner's own, separate permit.
    own = pushed(client, hotspot, site_tz)
    assert own["permit"]["source"] == "hotspot" and own["referenceID"] != reference
    with core.db.session() as s:
        permit = s.scalar(select(Permit).where(Permit.source == "paystation"))
        assert (permit.status, permit.amount_cents) == ("active", 1450)
    assert client.post(f"{BASE}/delete", json={"apiToken": cale, "referenceID": reference}).status_code == 200


def test_a_push_without_a_source_records_for_the_key_s_only_source(client, core, place, site_tz):
    hotspot = issue_key(core, "permits:write", sources=("hotspot",))
    assert pushed(client, hotspot, site_tz)["permit"]["source"] == "hotspot"
    both = issue_key(core, "permits:write", sources=("hotspot", "paystation"))
    assert pushed(client, both, site_tz, permitNo="2")["permit"]["source"] == "paystation"


def test_a_key_from_before_sources_is_refused_writes_until_bound(client, core, place, site_tz):
    """The migration leaves existing keys without a source: they read, and may not write."""
    legacy = issue_key(core, "permits:write", "permits:read")
    with core.db.session() as s:
        s.scalar(select(ApiKey)).sources = []
    refused = client.post(f"{BASE}/push", json=push_body(legacy, site_tz))
    assert refused.status_code == 403 and "acts for no permit source yet" in refused.json["error"]
    assert client.post(f"{BASE}/stats", json={"apiToken": legacy}).status_code == 200
    assert permit_count(core) == 0


# --- the key: in the body, or as a Bearer header; never an empty apiToken ------------------------------


@pytest.mark.parametrize("call", ["push", "update", "delete", "stats"])
@pytest.mark.parametrize("empty", ["", "   ", None, 42])
def test_an_empty_api_token_is_refused_whatever_the_header(client, core, place, token, site_tz, call, empty):
    """The schema says an ``apiToken`` that is sent is a non-empty string: a Bearer header does not
    stand in for one that is sent empty (schemathesis found stats answering 200)."""
    body = {
        **push_body(token, site_tz),
        "apiToken": empty,
        "referenceID": "00000000-0000-4000-8000-000000000001",
    }
    response = client.post(f"{BASE}/{call}", json=body, headers=bearer(token))
    assert response.status_code == 401 and "apiToken is empty" in response.json["error"]
    assert permit_count(core) == 0


def test_without_an_api_token_the_bearer_header_is_the_key(client, place, token, site_tz):
    assert client.post(f"{BASE}/stats", json={}, headers=bearer(token)).status_code == 200
    assert client.post(f"{BASE}/stats", json={}).status_code == 401
