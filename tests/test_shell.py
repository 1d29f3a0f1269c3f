"""The navigation shell shows each role only its own menu, filled by a role-checked callback."""

from models import Role
from tests.dash_helpers import dash_post, find_output, outputs_of


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
