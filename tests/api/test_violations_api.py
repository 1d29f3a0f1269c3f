"""The enforcement partner API: a plate's violations and the boots, with a ``violations:read`` key."""

from __future__ import annotations

from models import Boot, Role
from tests.api.partners import bearer, issue_key
from tests.enforcement import enable_boots, make_place, write_ticket


def test_a_plates_violations_with_items_status_and_boot(client, core, make_user):
    enable_boots(core)
    place = make_place(core)
    officer = make_user(Role.OFFICER)
    ticket = write_ticket(core, officer.id, place, plate="ABC 123", boot_id=place.boot_ids[0])
    write_ticket(core, officer.id, place, plate="OTHER 1")
    key = issue_key(core, "violations:read")
    answer = client.get("/api/v1/violations?plate=abc-123", headers=bearer(key))
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    body = answer.json
    assert body["plate"] == "ABC123" and len(body["violations"]) == 1
    found = body["violations"][0]
    assert found["ticket_number"] == ticket.ticket_number and found["status"] == "unpaid"
    assert found["total_cents"] == 12500 and [i["code"] for i in found["items"]] == ["NVP", "BOOT"]
    assert found["boot"] == {"name": "Red Boot 01", "status": "in_use"}
    enable_boots(core, False)
    assert (
        client.get("/api/v1/violations?plate=ABC123", headers=bearer(key)).json["violations"][0]["boot"]
        is None
    )


def test_the_boots_never_with_their_codes_and_404_with_boots_off(client, core):
    place = make_place(core)
    key = issue_key(core, "violations:read")
    assert client.get("/api/v1/boots", headers=bearer(key)).status_code == 404
    enable_boots(core)
    answer = client.get("/api/v1/boots", headers=bearer(key))
    assert answer.status_code == 200
    assert [(b["id"], b["name"], b["status"]) for b in answer.json["boots"]] == [
        (place.boot_ids[0], "Red Boot 01", "available"),
        (place.boot_ids[1], "Red Boot 02", "available"),
    ]
    with core.db.session() as s:
        code = core.secrets.decrypt(s.get(Boot, place.boot_ids[0]).release_code)
    assert code not in answer.get_data(as_text=True)


def test_keys_and_scopes_are_checked(client, core):
    enable_boots(core)
    permits_only = issue_key(core, "permits:read")
    assert client.get("/api/v1/violations?plate=A1").status_code == 401
    assert client.get("/api/v1/violations?plate=A1", headers=bearer(permits_only)).status_code == 403
    assert client.get("/api/v1/boots", headers=bearer(permits_only)).status_code == 403
    key = issue_key(core, "violations:read")
    missing = client.get("/api/v1/violations", headers=bearer(key))
    assert missing.status_code == 422 and "plate" in missing.json["fields"]
    extra = client.get("/api/v1/violations?plate=A1&status=unpaid", headers=bearer(key))
    assert extra.status_code == 422 and extra.json["fields"] == {
        "status": "unknown parameter (this call takes plate)"
    }
