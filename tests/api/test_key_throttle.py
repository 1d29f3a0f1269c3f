"""Guessing API keys (issue 9, item 22): an address that keeps sending unknown keys, in the
``Authorization`` header or as OC-TOMA's ``apiToken``, gets a JSON 429 with ``Retry-After`` for at
most the throttle's window, and a log line; other addresses, revoked keys (a fleet rotating keys is
not guessing) and valid keys from elsewhere are not affected."""

from __future__ import annotations

import pytest

from dashboard.services import throttle
from tests.api.partners import bearer, issue_key, make_place

GUESSER = {"REMOTE_ADDR": "203.0.113.9"}
PARTNER = {"REMOTE_ADDR": "198.51.100.20"}
LIMIT = throttle.API_KEY_ADDRESS.failures
CHECK = "/api/v1/permits/validate?plate=ABC123&lot=NG"


@pytest.fixture
def reader(core) -> str:
    make_place(core)
    return issue_key(core, "permits:read", "permits:write")


def test_an_address_guessing_keys_gets_429_with_retry_after(client, core, reader, caplog):
    for n in range(LIMIT):
        guess = client.get(CHECK, headers=bearer(f"pk_guess{n}"), environ_base=GUESSER)
        assert guess.status_code == 401, n
    refused = client.get(CHECK, headers=bearer(reader), environ_base=GUESSER)  # even the right key
    assert refused.status_code == 429 and refused.is_json
    assert refused.json["error"] == "too many invalid API keys from this address; try again in 15 minutes"
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    assert refused.headers["Cache-Control"] == "no-store"
    assert any(
        r.levelname == "WARNING" and "too many unknown API keys from 203.0.113.9" in r.getMessage()
        for r in caplog.records
    )
    pushed = client.post(
        "/api/OC-TOMA/v1/permits/stats", json={"apiToken": reader}, environ_base=GUESSER
    )  # the OC-TOMA routes share the counter
    assert pushed.status_code == 429 and "Retry-After" in pushed.headers
    elsewhere = client.get(CHECK, headers=bearer(reader), environ_base=PARTNER)
    assert elsewhere.status_code == 200


def test_unknown_oc_toma_tokens_count_too(client, reader):
    for n in range(LIMIT):
        guess = client.post("/api/OC-TOMA/v1/permits/stats", json={"apiToken": f"t{n}"}, environ_base=GUESSER)
        assert guess.status_code == 401, n
    refused = client.post("/api/v1/permits", json={}, headers=bearer(reader), environ_base=GUESSER)
    assert refused.status_code == 429


def test_revoked_missing_and_valid_keys_are_not_counted(client, core, reader):
    revoked = issue_key(core, "permits:read", revoked=True)
    writer_only = issue_key(core, "permits:write")
    for _ in range(LIMIT + 5):
        assert client.get(CHECK, headers=bearer(revoked), environ_base=PARTNER).status_code == 401
        assert client.get(CHECK, environ_base=PARTNER).status_code == 401
        assert client.get(CHECK, headers=bearer(writer_only), environ_base=PARTNER).status_code == 403
        assert client.get(CHECK, headers=bearer(reader), environ_base=PARTNER).status_code == 200
    assert client.get(CHECK, headers=bearer("pk_one-typo"), environ_base=PARTNER).status_code == 401
