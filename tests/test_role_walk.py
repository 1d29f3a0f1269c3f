"""The role walk: every registered page and every registered callback, taken from the app's own
registries, declares a minimum role, and nobody below that role gets anything through it.

A callback added with plain ``dash.callback`` (no role) makes ``test_every_callback_declares_a_role``
fail, and the gate refuses to run it even for an admin.
"""

from __future__ import annotations

import json

import dash
import pytest
from dash import Input, Output

from dashboard.auth import PAGES_ROUTER_OUTPUT, ROLE_ATTR
from models import Role
from tests.dash_helpers import dash_app, dash_post

LOWER_ROLES = (Role.GUEST, Role.USER)


def server_callbacks(app) -> dict[str, dict]:
    """Callbacks that run on the server (clientside ones have no Python function to call)."""
    dash_app(app)._setup_server()  # noqa: SLF001
    return {key: entry for key, entry in dash_app(app).callback_map.items() if entry.get("callback")}


def undeclared_callbacks(app) -> list[str]:
    return [
        key
        for key, entry in server_callbacks(app).items()
        if PAGES_ROUTER_OUTPUT not in key and getattr(entry["callback"], ROLE_ATTR, None) is None
    ]


def protected_pages() -> list[dict]:
    return [page for page in dash.page_registry.values() if page[ROLE_ATTR] >= Role.OFFICER]


def test_every_page_declares_a_role(app):
    assert dash.page_registry, "no pages registered"
    for module, page in dash.page_registry.items():
        assert isinstance(page.get(ROLE_ATTR), Role), f"{module} declares no minimum role"


def test_every_callback_declares_a_role(app):
    assert server_callbacks(app), "no callbacks registered"
    assert undeclared_callbacks(app) == []


def test_the_walk_covers_the_admin_screens(app):
    paths = {page["path"] for page in protected_pages()}
    assert {
        "/admin",
        "/admin/dashboard/edit",
        "/admin/settings",
        "/admin/tasks",
        "/admin/outbox",
        "/admin/email-domain",
        "/admin/devices",
        "/admin/ingest",
        "/admin/lot-groups/new",
        "/officer/ticket",
        "/officer/tickets/none",
        "/admin/offence-types",
        "/admin/violations",
        "/admin/violations/none",
        "/admin/boots",
        "/admin/boot-label/none",
        "/admin/boot-report",
        "/admin/users",
        "/admin/users/none",
        "/admin/user-types",
        "/admin/sso",
        "/admin/peoplesoft",
        "/admin/temporary-permits",
        "/admin/user-import",
    } <= paths
    roles = [getattr(e["callback"], ROLE_ATTR, None) for e in server_callbacks(app).values()]
    assert Role.ADMIN in roles


@pytest.mark.parametrize("role", LOWER_ROLES)
def test_lower_roles_cannot_open_protected_pages(app, login_as, role):
    client = login_as(role)
    paths = [page["path"] for page in protected_pages()]  # Dash serves a templated page here too
    paths += [
        page["path_template"].replace("<", "").replace(">", "")
        for page in protected_pages()
        if page.get("path_template")
    ]
    for path in paths:
        response = client.get(path)
        if role is Role.GUEST:
            assert response.status_code == 302, path
            assert response.headers["Location"].startswith("/login?next="), path
        else:
            assert response.status_code == 403, path


def test_guests_are_sent_to_sign_in_from_the_signed_in_users_pages(app, login_as):
    """Pages for signed-in users (My Violations, the cart, My Permits...): a guest signs in first;
    the walk below covers their callbacks (each refuses a guest)."""
    pages = [page for page in dash.page_registry.values() if page[ROLE_ATTR] == Role.USER]
    assert "/violations" in {page["path"] for page in pages}
    client = login_as(Role.GUEST)
    for page in pages:
        response = client.get(page["path"])
        assert response.status_code == 302, page["path"]
        assert response.headers["Location"].startswith("/login?next="), page["path"]
    assert client.get("/pay-violation?ticket=T-222-222").status_code == 200  # public


@pytest.mark.parametrize("role", LOWER_ROLES)
def test_router_renders_no_protected_layout_to_lower_roles(app, login_as, role):
    """Client-side navigation goes through Dash's pages router callback, not a page load."""
    router = next(key for key in server_callbacks(app) if PAGES_ROUTER_OUTPUT in key)
    admin = login_as(Role.ADMIN)
    client = login_as(role)
    for page in protected_pages():
        path = page["path"]
        allowed = json.dumps(dash_post(admin, app, router, [path, ""]).get_json())
        denied = dash_post(client, app, router, [path, ""])
        assert denied.status_code == 200
        denied_text = json.dumps(denied.get_json())
        assert denied_text != allowed, path
        assert ("/login?next=" in denied_text) if role is Role.GUEST else ("Not authorised" in denied_text)


@pytest.mark.parametrize("role", LOWER_ROLES)
def test_lower_roles_get_nothing_from_protected_callbacks(app, login_as, role):
    client = login_as(role)
    checked = 0
    for key, entry in server_callbacks(app).items():
        min_role = getattr(entry["callback"], ROLE_ATTR, None)
        if min_role is None or min_role <= role:
            continue
        inputs = [None] * len(entry["inputs"])
        state = [None] * len(entry["state"])
        response = dash_post(client, app, key, inputs, state)
        assert response.status_code == (401 if role is Role.GUEST else 403), key
        assert "response" not in (response.get_json() or {}), key
        checked += 1
    assert checked > 0


def test_a_callback_without_a_role_is_caught_and_refused(app, login_as):
    rogue_key = "role-walk-rogue.children"
    dash_app(app).callback(Output("role-walk-rogue", "children"), Input("role-walk-rogue-in", "value"))(
        lambda value: "secret data"
    )
    try:
        assert rogue_key in undeclared_callbacks(app)
        response = dash_post(login_as(Role.ADMIN), app, rogue_key, ["x"])
        assert response.status_code == 403
        assert "secret data" not in response.get_data(as_text=True)
    finally:
        dash_app(app).callback_map.pop(rogue_key, None)


def test_unknown_callback_is_refused(client):
    response = client.post(
        "/_dash-update-component",
        data=json.dumps({"output": "nope.children", "inputs": [], "state": []}),
        content_type="application/json",
    )
    assert response.status_code == 400
