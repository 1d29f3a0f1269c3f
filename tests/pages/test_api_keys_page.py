"""API Keys over HTTP: only admins list, create or revoke keys; a new key is shown once (in the
create answer only, never in the list), validation is shown per field, and revoking asks first."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.services import api_keys
from models import ApiKey, AuditLog, Role, utcnow
from tests.dash_helpers import dash_post, find_output, outputs_of, press

TABLE = "api-keys-table.children"
CREATE = "api-keys-issued-key.value"
REVOKE = "api-keys-confirm.is_open"
REFUSED = [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403), (Role.MANAGER, 403)]


@pytest.fixture
def existing(core) -> dict[str, Any]:
    with core.db.session() as s:
        issued = api_keys.create_key(s, "Cale pay stations", ["permits:write"], None, ["paystation"])
    return {"id": issued.view.id, "key": issued.key, "prefix": issued.view.prefix}


def refresh(client, app) -> Any:
    return dash_post(client, app, find_output(app, TABLE), [None, 0, 0, 0])


def create(
    client,
    app,
    name: str | None,
    scopes: list[str] | None,
    trigger: str = "api-keys-create",
    sources: list[str] | None = None,
) -> Any:
    values = {
        "api-keys-name": name,
        "api-keys-scopes": scopes,
        "api-keys-created": 0,
        "api-keys-sources": sources,
    }
    return press(client, app, CREATE, trigger, values)


def revoke(client, app, trigger: Any, key_ids: list[int], pending: Any = None) -> Any:
    rows = {"api-keys-revoke": [{"type": "api-keys-revoke", "key": key_id} for key_id in key_ids]}
    values = {"api-keys-pending": pending, "api-keys-revoked": 0}
    return press(client, app, REVOKE, trigger, values, rows)


def text_of(response: Any) -> str:
    return json.dumps(outputs_of(response), ensure_ascii=False)


def test_the_page_is_for_admins(login_as, existing) -> None:
    assert login_as(Role.GUEST).get("/admin/api-keys").status_code == 302
    assert login_as(Role.MANAGER).get("/admin/api-keys").status_code == 403
    page = login_as(Role.ADMIN).get("/admin/api-keys")
    assert page.status_code == 200 and b"Cale pay stations" not in page.data


@pytest.mark.parametrize(("role", "status"), REFUSED)
def test_lower_roles_get_and_change_nothing(app, login_as, session, existing, role, status) -> None:
    client = login_as(role)
    listed = refresh(client, app)
    assert listed.status_code == status and b"Cale" not in listed.data
    made = create(client, app, "Sneaky", ["permits:write"])
    assert made.status_code == status and b"pk_" not in made.data
    assert revoke(
        client, app, "api-keys-confirm-revoke", [existing["id"]], pending=existing["id"]
    ).status_code == (status)
    session.expire_all()
    assert [k.name for k in session.scalars(select(ApiKey))] == ["Cale pay stations"]
    assert session.scalar(select(ApiKey.revoked_at)) is None


def test_the_list_shows_prefix_scopes_and_use_but_never_the_key(app, login_as, existing) -> None:
    listed = text_of(refresh(login_as(Role.ADMIN), app))
    assert "Cale pay stations" in listed and existing["prefix"] + "…" in listed
    assert "permits:write" in listed and "never" in listed and "active" in listed
    assert existing["key"] not in listed


def test_an_admin_creates_a_key_that_is_shown_once_and_works(app, login_as, session) -> None:
    client = login_as(Role.ADMIN)
    made = outputs_of(create(client, app, "HotSpot", ["permits:write", "permits:read"], sources=["hotspot"]))
    key = made["api-keys-issued-key"]["value"]
    assert key.startswith("pk_") and made["api-keys-issued"]["style"] == {}
    assert made["api-keys-name"]["value"] == "" and made["api-keys-scopes"]["value"] == []
    assert made["api-keys-sources"]["value"] == []
    assert api_keys.authenticate(session, key, "permits:write", utcnow()).sources == ("hotspot",)
    assert made["api-keys-created"]["data"] == 1
    assert api_keys.authenticate(session, key, "permits:read", utcnow()).name == "HotSpot"
    listed = text_of(refresh(client, app))
    assert "HotSpot" in listed and key not in listed
    done = outputs_of(create(client, app, None, None, trigger="api-keys-issued-done"))
    assert done["api-keys-issued-key"]["value"] == "" and done["api-keys-issued"]["style"] == {
        "display": "none"
    }
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "api_key.create"))
    assert audit.actor_id == client.user.id and key not in json.dumps(audit.changes)


@pytest.mark.parametrize(
    ("name", "scopes", "message"),
    [
        ("", ["permits:write"], "Name:"),
        ("Meters", [], "Scopes: choose at least one scope"),
        ("Meters", ["permits:write"], "Sources: choose the source(s)"),
    ],
)
def test_validation_is_shown_and_nothing_is_created(app, login_as, session, name, scopes, message) -> None:
    made = create(login_as(Role.ADMIN), app, name, scopes)
    out = outputs_of(made)
    assert message in text_of(made)
    assert "api-keys-issued-key" not in out  # no key panel
    assert session.scalar(select(ApiKey)) is None


def test_revoking_asks_first_then_refuses_the_key(app, login_as, session, existing) -> None:
    client = login_as(Role.ADMIN)
    asked = outputs_of(
        revoke(client, app, {"type": "api-keys-revoke", "key": existing["id"]}, [existing["id"]])
    )
    assert asked["api-keys-confirm"]["is_open"] is True
    assert "Cale pay stations" in asked["api-keys-confirm-text"]["children"]
    assert asked["api-keys-pending"]["data"] == existing["id"]
    session.expire_all()
    assert session.scalar(select(ApiKey.revoked_at)) is None  # asking revokes nothing
    cancelled = outputs_of(revoke(client, app, "api-keys-confirm-cancel", [existing["id"]], existing["id"]))
    assert cancelled["api-keys-confirm"]["is_open"] is False and cancelled["api-keys-pending"]["data"] is None
    done = revoke(client, app, "api-keys-confirm-revoke", [existing["id"]], existing["id"])
    assert "is revoked" in text_of(done)
    with pytest.raises(api_keys.RevokedKey):
        api_keys.authenticate(session, existing["key"], "permits:write", utcnow())
    listed = text_of(refresh(client, app))
    assert "revoked" in listed and "api-keys-revoke" not in listed  # no Revoke button any more


def test_a_refreshed_table_is_no_click(app, login_as, session, existing) -> None:
    response = revoke(
        login_as(Role.ADMIN), app, {"type": "api-keys-revoke", "key": existing["id"]}, [existing["id"]]
    )
    assert response.status_code == 200
    zero = press(
        login_as(Role.ADMIN),
        app,
        REVOKE,
        {"type": "api-keys-revoke", "key": existing["id"]},
        {"api-keys-pending": None, "api-keys-revoked": 0},
        {"api-keys-revoke": [{"type": "api-keys-revoke", "key": existing["id"]}]},
        clicks=0,
    )
    assert outputs_of(zero) == {}


def sources(client, app, trigger: Any, key_ids: list[int], editing: Any = None, chosen: Any = None) -> Any:
    rows = {"api-keys-edit-sources": [{"type": "api-keys-edit-sources", "key": key_id} for key_id in key_ids]}
    values = {"api-keys-sources-key": editing, "api-keys-sources-edit": chosen, "api-keys-sources-saved": 0}
    return press(client, app, "api-keys-sources-dialog.is_open", trigger, values, rows)


def test_an_admin_binds_a_key_from_before_sources_to_its_source(app, login_as, session, existing) -> None:
    """What the migration leaves: a writing key with no source, shown as such, and refused writes
    until an admin ticks its source; the partner keeps its key."""
    session.get(ApiKey, existing["id"]).sources = []
    session.commit()
    client = login_as(Role.ADMIN)
    assert "none: records nothing" in text_of(refresh(client, app))
    opened = outputs_of(
        sources(client, app, {"type": "api-keys-edit-sources", "key": existing["id"]}, [existing["id"]])
    )
    assert opened["api-keys-sources-dialog"]["is_open"] is True
    assert (
        opened["api-keys-sources-edit"]["value"] == []
        and opened["api-keys-sources-key"]["data"] == existing["id"]
    )
    refused = sources(client, app, "api-keys-sources-save", [existing["id"]], existing["id"], [])
    assert "Sources: choose the source(s)" in text_of(refused)
    saved = outputs_of(
        sources(client, app, "api-keys-sources-save", [existing["id"]], existing["id"], ["paystation"])
    )
    assert saved["api-keys-sources-dialog"]["is_open"] is False
    assert "now acts for: Pay stations" in json.dumps(saved["api-keys-sources-flash"])
    assert api_keys.authenticate(session, existing["key"], "permits:write", utcnow()).sources == (
        "paystation",
    )
    assert "Pay stations (pay-and-display, meters)" in text_of(refresh(client, app))


@pytest.mark.parametrize(("role", "status"), REFUSED)
def test_lower_roles_cannot_change_sources(app, login_as, session, existing, role, status) -> None:
    response = sources(
        login_as(role), app, "api-keys-sources-save", [existing["id"]], existing["id"], ["api"]
    )
    assert response.status_code == status
    session.expire_all()
    assert session.get(ApiKey, existing["id"]).sources == ["paystation"]
