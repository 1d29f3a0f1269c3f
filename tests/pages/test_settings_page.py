"""The System Settings page over HTTP, as the browser calls it.

Its callbacks use pattern-matching ids, so the bodies name every concrete field the way the Dash
renderer does (one id per setting, grouped by id type), built here from the definitions.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dashboard.auth import PAGES_ROUTER_OUTPUT
from dashboard.services import audit
from dashboard.services import system_settings as ss
from models import Role
from tests.dash_helpers import dash_app, dash_post, find_output

MAILGUN_KEY = "mg-private-key-7d3b9e1f0a2c-PLAINTEXT"
REPLY_TO = "parking-office@campus.test"
FILL = '"settings-flag"}.value'
SAVE = "settings-status.children"


def _keys(id_type: str) -> list[str]:
    """Which settings the page renders with each id type (mirrors pages/admin/settings.py)."""
    defs = ss.definitions()
    return {
        "settings-field": [d.key for d in defs if d.kind is not ss.Kind.BOOL and not d.secret],
        "settings-flag": [d.key for d in defs if d.kind is ss.Kind.BOOL],
        "settings-secret": [d.key for d in defs if d.secret],
        "settings-clear": [d.key for d in defs if d.secret],
        "settings-feedback": [d.key for d in defs],
    }[id_type]


def _group(id_type: str, prop: str, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    specs = [{"id": {"type": id_type, "key": key}, "property": prop} for key in _keys(id_type)]
    if values is not None:
        for spec in specs:
            spec["value"] = values.get(spec["id"]["key"])
    return specs


def _post(client, app, fragment: str, outputs: list, inputs: list, state: list) -> Any:
    body = {
        "output": find_output(app, fragment),
        "outputs": outputs,
        "inputs": inputs,
        "state": state,
        "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"],
    }
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def fill(client, app) -> Any:
    outputs = [
        _group("settings-field", "value"),
        _group("settings-flag", "value"),
        _group("settings-secret", "placeholder"),
        _group("settings-secret", "value"),
        _group("settings-clear", "value"),
    ]
    return _post(client, app, FILL, outputs, [{"id": "settings-saved", "property": "data", "value": 0}], [])


def save(client, app, values: dict[str, Any], clear: tuple[str, ...] = ()) -> Any:
    outputs = [
        {"id": "settings-status", "property": "children"},
        _group("settings-field", "invalid"),
        _group("settings-secret", "invalid"),
        _group("settings-feedback", "children"),
        {"id": "settings-saved", "property": "data"},
    ]
    state = [
        _group("settings-field", "value", values),
        _group("settings-flag", "value", values),
        _group("settings-secret", "value", values),
        _group("settings-clear", "value", {key: True for key in clear}),
    ]
    return _post(
        client, app, SAVE, outputs, [{"id": "settings-save", "property": "n_clicks", "value": 1}], state
    )


def by_id(response: Any) -> dict[Any, dict[str, Any]]:
    """``{(id type, setting key) or plain id: {prop: value}}`` from a callback response."""
    assert response.status_code == 200, response.data[:500]
    result: dict[Any, dict[str, Any]] = {}
    for component_id, props in response.get_json()["response"].items():
        if component_id.startswith("{"):
            parsed = json.loads(component_id)
            result[(parsed["type"], parsed["key"])] = props
        else:
            result[component_id] = props
    return result


def form_as_shown(client, app) -> dict[str, Any]:
    """What the browser would hold after loading the page: every input's value by setting key."""
    shown = by_id(fill(client, app))
    return {key: props["value"] for (id_type, key), props in shown.items() if id_type != "settings-clear"}


@pytest.fixture
def configured(core):
    with core.db.session() as session:
        ss.update(
            session,
            core.secrets,
            {"mailgun_api_key": MAILGUN_KEY, "system_reply_to_email": REPLY_TO, "mistall_enabled": True},
            actor_id=None,
        )


def current(core, key: str) -> Any:
    with core.db.session() as session:
        return ss.get(session, core.secrets, key)


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 302), (Role.USER, 403), (Role.ADMIN, 200)])
def test_only_admins_open_the_page(app, login_as, role, status):
    assert login_as(role).get("/admin/settings").status_code == status


def test_the_layout_holds_no_setting_values(app, login_as, configured):
    """Dash sends layouts to every browser: labels and help only, values come by callback."""
    dash_app(app)._setup_server()  # noqa: SLF001
    router = next(key for key in dash_app(app).callback_map if PAGES_ROUTER_OUTPUT in key)
    rendered = dash_post(login_as(Role.ADMIN), app, router, ["/admin/settings", ""])
    text = rendered.get_data(as_text=True)
    assert "Reply-to Admin Email Address" in text and "Require Overdue Paid" in text
    assert "Third Party" in text and "settings-field" in text
    assert REPLY_TO not in text and MAILGUN_KEY not in text and "TEXT" not in text


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403)])
def test_lower_roles_get_no_values(app, login_as, configured, role, status):
    client = login_as(role)
    for response in (fill(client, app), save(client, app, {"site_name": "Hijacked"})):
        assert response.status_code == status
        text = response.get_data(as_text=True)
        assert "response" not in (response.get_json() or {})
        assert REPLY_TO not in text and MAILGUN_KEY not in text
    assert current(app.extensions["parkops"], "site_name") == "ParkOps"


def test_admin_sees_values_and_only_masked_secrets(app, login_as, configured):
    response = fill(login_as(Role.ADMIN), app)
    assert MAILGUN_KEY not in response.get_data(as_text=True)
    shown = by_id(response)
    assert shown[("settings-field", "system_reply_to_email")] == {"value": REPLY_TO}
    assert shown[("settings-flag", "mistall_enabled")] == {"value": True}
    assert shown[("settings-flag", "boot_require_overdue_paid")] == {"value": False}
    assert shown[("settings-field", "smtp_port")] == {"value": 587}
    assert shown[("settings-field", "mail_backend")] == {"value": "outbox"}
    assert shown[("settings-secret", "mailgun_api_key")] == {"placeholder": "••••••••TEXT set", "value": ""}
    assert shown[("settings-secret", "parkmobile_api_key")] == {"placeholder": "not set", "value": ""}
    assert shown[("settings-clear", "mailgun_api_key")] == {"value": False}


def test_saving_the_form_keeps_an_untouched_secret(app, core, login_as, configured):
    client = login_as(Role.ADMIN)
    values = form_as_shown(client, app)
    values.update(site_name="Campus Parking", parkmobile_api_key="pm-x-api-key-0042")
    response = save(client, app, values)
    text = response.get_data(as_text=True)
    assert MAILGUN_KEY not in text and "pm-x-api-key-0042" not in text
    result = by_id(response)
    status = json.dumps(result["settings-status"])
    assert "Site Name (General)" in status and "ParkMobile X-API-Key (Third Party)" in status
    assert result["settings-saved"]["data"] == 1
    assert not any(result[("settings-field", key)]["invalid"] for key in _keys("settings-field"))
    assert current(core, "mailgun_api_key") == MAILGUN_KEY
    assert current(core, "parkmobile_api_key") == "pm-x-api-key-0042"
    assert current(core, "site_name") == "Campus Parking"
    with core.db.session() as session:
        [entry, _setup] = audit.recent(session, entity_type="system_settings")
    assert entry.actor_id == client.user.id
    assert entry.changes == {
        "site_name": {"old": "ParkOps", "new": "Campus Parking"},
        "parkmobile_api_key": "changed",
    }


def test_the_clear_box_removes_a_secret(app, core, login_as, configured):
    client = login_as(Role.ADMIN)
    response = save(client, app, form_as_shown(client, app), clear=("mailgun_api_key",))
    assert "Mailgun Private API Key" in json.dumps(by_id(response)["settings-status"])
    assert current(core, "mailgun_api_key") == ""


def test_invalid_input_shows_field_errors_and_changes_nothing(app, core, login_as, configured):
    client = login_as(Role.ADMIN)
    values = form_as_shown(client, app)
    values.update(
        site_name="Renamed",
        system_reply_to_email="nobody-at-example",
        mailgun_base_url="not a url",
        mailgun_api_key="a-new-key-that-must-not-be-saved",
    )
    response = save(client, app, values)
    assert "a-new-key-that-must-not-be-saved" not in response.get_data(as_text=True)
    result = by_id(response)
    assert result[("settings-field", "system_reply_to_email")] == {"invalid": True}
    assert result[("settings-feedback", "system_reply_to_email")] == {
        "children": "not a valid e-mail address"
    }
    assert result[("settings-field", "mailgun_base_url")] == {"invalid": True}
    assert "URL" in result[("settings-feedback", "mailgun_base_url")]["children"]
    assert result[("settings-field", "site_name")] == {"invalid": False}
    assert result[("settings-feedback", "site_name")] == {"children": ""}
    assert result[("settings-secret", "mailgun_api_key")] == {"invalid": False}
    assert "settings-saved" not in result, "a failed save must not reload the form and lose the input"
    status = json.dumps(result["settings-status"])
    assert "Nothing was saved" in status and "Reply-to Admin Email Address (General)" in status
    assert current(core, "site_name") == "ParkOps"
    assert current(core, "system_reply_to_email") == REPLY_TO
    assert current(core, "mailgun_api_key") == MAILGUN_KEY
