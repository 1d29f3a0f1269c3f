"""The navigation shell shows each role only its own menu, filled by a role-checked callback."""

from typing import Any

import dash

from dashboard.components import shell
from models import Role
from tests.dash_helpers import component, dash_post, find_output, outputs_of, served_layout


def test_guest_menu_has_no_admin_links(app, login_as):
    output = find_output(app, "shell-nav.children")
    body = outputs_of(dash_post(login_as(Role.GUEST), app, output, ["/"]))
    text = str(body)
    assert "/admin/settings" not in text
    assert "Log in" in text


def test_admin_menu_shows_admin_screens_and_name(app, login_as):
    output = find_output(app, "shell-nav.children")
    client = login_as(Role.ADMIN)
    text = str(outputs_of(dash_post(client, app, output, ["/"])))
    assert "/admin/settings" in text and "/admin/tasks" in text
    assert "(Admin)" in text


def test_layout_holds_the_page_it_is_asked_for_from(client):
    """The renderer's layout request comes from the page: its Referer names the page, which comes
    built in the same answer, with the Location set so that the router does not build it again."""
    layout = served_layout(client, "http://localhost/login?next=/permits")
    location = component(layout, "_pages_location")["props"]
    assert location["pathname"] == "/login" and location["search"] == "?next=/permits"
    assert location["href"] == "http://localhost/login?next=/permits" and location["hash"] == ""
    # The query parameters reach the page's layout as the router passes them.
    assert component(layout, "login-next")["props"]["data"] == "/permits"
    assert component(layout, "_pages_store")["props"]["data"] == {"title": "Log in · ParkOps"}
    # The public map: its map is in the first answer.
    assert component(served_layout(client, "http://localhost/real-time"), "realtime-map") is not None


def test_layout_without_a_usable_referrer_leaves_page_and_menu_to_their_callbacks(client):
    for referrer in (None, "http://elsewhere.example/real-time", "https://localhost/real-time"):
        layout = served_layout(client, referrer)
        assert component(layout, "_pages_content")["props"].get("children") is None, referrer
        assert "pathname" not in component(layout, "_pages_location")["props"], referrer
        assert component(layout, "shell-nav")["props"].get("children") is None, referrer
        assert "pathname" not in component(layout, "shell-url")["props"], referrer


def test_layout_holds_the_menu_of_the_signed_in_user(login_as):
    """Built with the layout, the menu's callback is not needed on load: the shell's Location
    carries the address (so it reports nothing on mount) and the menu marks the page."""
    guest = served_layout(login_as(Role.GUEST), "http://localhost/real-time")
    assert component(guest, "shell-url")["props"]["pathname"] == "/real-time"
    nav = str(component(guest, "shell-nav"))
    assert "/admin/settings" not in nav and "Real-Time Map" in nav
    assert "Log in" in str(component(guest, "shell-user"))
    admin = served_layout(login_as(Role.ADMIN), "http://localhost/admin/users")
    assert "/admin/settings" in str(component(admin, "shell-nav"))
    assert "(Admin)" in str(component(admin, "shell-user"))
    assert active_entries(component(admin, "shell-nav")) == ["/admin/users"]


def active_entries(node: Any) -> list[str]:
    """The hrefs of the menu entries marked active, in a served layout."""
    if isinstance(node, list):
        return [href for item in node for href in active_entries(item)]
    if not isinstance(node, dict):
        return []
    props = node.get("props", {})
    found = [props["href"]] if props.get("active") is True else []
    return found + active_entries(props.get("children"))


def test_layout_checks_the_page_role_as_the_router_does(app, login_as):
    guest = served_layout(login_as(Role.GUEST), "http://localhost/admin/users")
    content = component(guest, "_pages_content")
    assert component(content, "guard-redirect")["props"]["href"] == "/login?next=%2Fadmin%2Fusers"
    assert component(content, "users-text") is None
    admin = served_layout(login_as(Role.ADMIN), "http://localhost/admin/users")
    assert component(admin, "guard-redirect") is None
    assert component(admin, "users-text") is not None


def test_layout_for_an_unknown_path_is_the_not_found_page(client):
    layout = served_layout(client, "http://localhost/no/such/page")
    assert "Page not found" in str(component(layout, "_pages_content"))
    assert component(layout, "_pages_store")["props"]["data"] == {"title": "Not found · ParkOps"}


def test_a_page_that_fails_to_build_is_left_to_the_router(client, monkeypatch, caplog):
    page = next(p for p in dash.page_registry.values() if p["path"] == "/real-time")

    def broken(**_query: str) -> Any:
        raise RuntimeError("the database is down")

    monkeypatch.setitem(page, "layout", broken)
    layout = served_layout(client, "http://localhost/real-time")
    assert component(layout, "_pages_content")["props"].get("children") is None
    assert component(layout, "shell-nav") is not None  # the frame is still served
    assert "its layout failed" in caplog.text


def test_a_menu_that_fails_to_build_is_left_to_its_callback(client, monkeypatch, caplog):
    def broken() -> frozenset[str]:
        raise RuntimeError("the database is down")

    monkeypatch.setattr(shell, "hidden_features", broken)
    layout = served_layout(client, "http://localhost/real-time")
    assert component(layout, "shell-nav")["props"].get("children") is None
    assert "pathname" not in component(layout, "shell-url")["props"]
    assert component(layout, "realtime-map") is not None  # the page itself still came
    assert "its callback builds it instead" in caplog.text


def test_the_layout_is_never_stored(client):
    response = client.get("/_dash-layout", headers={"Referer": "http://localhost/real-time"})
    assert response.headers["Cache-Control"] == "private, no-store"
