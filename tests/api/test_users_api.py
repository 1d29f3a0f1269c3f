"""The user push APIs over HTTP: ``POST /api/v1/users`` (batch upsert, per-user results) and the
OC-TOMA-compatible ``profiles/push`` (one profile, fields under any accepted name), both with the
managed CSV import's validation and the ``users:write`` scope."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import LoginMethod, User, UserType
from tests.api.partners import bearer, issue_key

PUSH = "/api/OC_TOMA/v1/profiles/push"


@pytest.fixture
def key(core) -> str:
    with core.db.session() as s:
        s.add(UserType(code="staff", name="Staff", login_method=LoginMethod.SSO))
    return issue_key(core, "users:write")


def users(core) -> dict[str, tuple[str, str, str | None]]:
    with core.db.session() as s:
        return {
            u.external_id: (u.email, u.last_name, u.user_type.code if u.user_type else None)
            for u in s.scalars(select(User))
        }


def test_a_batch_upserts_each_user_and_reports_each_failure(client, core, key):
    batch = {
        "users": [
            {"unique_id": "E1", "email": "Ann@Campus.test", "last_name": "Ames", "user_type": "staff"},
            {"unique_id": 2, "email": "bo@campus.test"},
            {"unique_id": "E3", "email": "nope"},
            {"unique_id": "E4", "email": "ann@campus.test"},
            {"unique_id": "E5", "email": "eve@campus.test", "user_type": "alumni"},
        ]
    }
    response = client.post("/api/v1/users", json=batch, headers=bearer(key))
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["created"], body["updated"], body["unchanged"], body["failed"]) == (2, 0, 0, 3)
    assert [r["status"] for r in body["results"]] == ["created", "created", "failed", "failed", "failed"]
    assert body["results"][2]["errors"] == {"email": "not a valid e-mail address"}
    assert body["results"][3]["errors"] == {
        "email": "ann@campus.test belongs to an account with another unique id"
    }
    assert body["results"][4]["errors"] == {"user_type": "unknown value 'alumni'"}
    assert users(core) == {"E1": ("ann@campus.test", "Ames", "staff"), "2": ("bo@campus.test", "", None)}

    again = client.post(
        "/api/v1/users",
        json={"users": [{"unique_id": "E1", "email": "ann@campus.test", "last_name": "Ames-Bell"}]},
        headers=bearer(key),
    )
    assert again.json["updated"] == 1 and again.json["results"][0]["user_id"] == body["results"][0]["user_id"]
    assert users(core)["E1"] == ("ann@campus.test", "Ames-Bell", "staff")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"users": "a list of 1 or more users"}),
        ({"users": []}, {"users": "a list of 1 or more users"}),
        ({"users": [{}] * 1001}, {"users": "at most 1000 users per call"}),
        ({"users": [], "extra": 1}, {"extra": "not a field of the batch"}),
        (
            {"users": [{"unique_id": "E1", "email": "a@b.test"}, "x", {"unique_id": True, "shoe": 9}]},
            {
                "users[1]": "must be an object",
                "users[2].shoe": "not a field of a user",
                "users[2].unique_id": "must be text or a whole number",
                "users[2].email": "required",
            },
        ),
        (
            {"users": [{"unique_id": "", "email": "a@b.test", "first_name": "x" * 81, "phone": None}]},
            {"users[0].unique_id": "required", "users[0].first_name": "at most 80 characters"},
        ),
    ],
)
def test_a_body_that_is_not_a_batch_is_refused_whole(client, core, key, body, fields):
    response = client.post("/api/v1/users", json=body, headers=bearer(key))
    assert response.status_code == 422 and response.json["fields"] == fields
    assert users(core) == {}


def test_keys_without_the_scope_are_refused(client, core):
    batch = {"users": [{"unique_id": "E1", "email": "ann@campus.test"}]}
    assert client.post("/api/v1/users", json=batch).status_code == 401
    other = issue_key(core, "permits:write")
    assert client.post("/api/v1/users", json=batch, headers=bearer(other)).status_code == 403
    assert client.post(PUSH, json={"apiToken": other, **batch["users"][0]}).status_code == 403
    assert users(core) == {}


def test_oc_toma_profiles_push_creates_then_updates(client, core, key):
    profile = {
        "apiToken": key,
        "employ_no": "E9",
        "email": "dee@campus.test",
        "first_name": "Dee",
        "last_name": "Dunn",
        "user_type_id": "Staff",
        "phone_cell": "555-0100",
        "street": "1 Main St",
        "driver_license_state": "ON",
    }
    first = client.post(PUSH, json=profile)
    assert first.status_code == 200, first.json
    assert first.json["status"] == "created" and first.json["unique_id"] == "E9"
    second = client.post("/api/OC-TOMA/v1/profiles/push", json={**profile, "last_name": "Dunn-Ray"})
    assert second.json == {"unique_id": "E9", "status": "updated", "user_id": first.json["user_id"]}
    assert users(core) == {"E9": ("dee@campus.test", "Dunn-Ray", "staff")}


def test_oc_toma_profiles_push_names_bad_fields_as_sent(client, core, key):
    response = client.post(
        PUSH, json={"apiToken": key, "student_no": "S1", "email": "x", "user_type_id": "Z"}
    )
    assert response.status_code == 422
    assert response.json["fields"] == {"email": "not a valid e-mail address"}
    unknown = client.post(
        PUSH, json={"apiToken": key, "student_no": "S1", "email": "s@campus.test", "hat": 1}
    )
    assert unknown.status_code == 422 and unknown.json["fields"] == {"hat": "not a field of a profile"}
    typed = client.post(
        PUSH, json={"apiToken": key, "student_no": "S1", "email": "s@campus.test", "city": [1]}
    )
    assert typed.status_code == 422 and typed.json["fields"] == {"city": "must be text"}
    missing = client.post(PUSH, json={"apiToken": key, "email": "s@campus.test"})
    assert missing.json["fields"] == {"unique_id": "missing"}
    with core.db.session() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0
