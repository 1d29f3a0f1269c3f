"""The admin email pages (Email Outbox and Email Templates): only admins reach them or their
callbacks, and HTML from a message or a template reaches the browser only sanitised."""

from __future__ import annotations

import json
import re

import pytest

from dashboard.services import email
from models import Role
from tests.dash_helpers import dash_post, find_output, outputs_of

SCRIPT_HTML = "<p>Hello</p><script>alert('owned')</script><img src=x onerror=\"alert(2)\">"


@pytest.fixture
def messages(core):
    """One stored message with HTML and an attachment, one failed delivery."""

    class Refusing:
        name = "refusing"

        def deliver(self, message: email.EmailMessage) -> None:
            raise email.DeliveryError("connection refused")

    with core.db.session() as s:
        stored = email.send_email(
            s,
            email.EmailMessage(
                to=["driver@campus.test"],
                subject="Your boot release code",
                text="Code 4821",
                html=SCRIPT_HTML,
                attachments=[email.Attachment("map.pdf", "application/pdf", b"%PDF" + b"0" * 2044)],
                template_key="boot-release",
            ),
            email.OutboxBackend(),
        )
        failed = email.send_email(
            s, email.EmailMessage(to=["ps@campus.test"], subject="Holds report", text="x"), Refusing()
        )
    return {"stored": stored, "failed": failed}


def open_message(client, message_id: object, clicks: int | None = 1):
    """Click a row's open button: a pattern-matching (ALL) input, so the body is built here."""
    button = {"type": "outbox-open", "index": message_id}
    body = {
        "output": "..outbox-detail.children...outbox-current.data..",
        "outputs": [
            {"id": "outbox-detail", "property": "children"},
            {"id": "outbox-current", "property": "data"},
        ],
        "inputs": [[{"id": button, "property": "n_clicks", "value": clicks}]],
        "state": [],
        "changedPropIds": [json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"],
    }
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def list_messages(client, app, search: str = "", status: str = "") -> dict:
    return outputs_of(dash_post(client, app, find_output(app, "outbox-table.children"), [search, status, 0]))


def row_ids(tree: object) -> list[int]:
    """The message ids of the open buttons in a rendered table, top to bottom."""
    return [int(i) for i in re.findall(r'"id": \{"type": "outbox-open", "index": (\d+)\}', json.dumps(tree))]


@pytest.mark.parametrize(
    ("path", "title"), [("/admin/outbox", "Email Outbox"), ("/admin/email-templates", "Email Templates")]
)
def test_pages_are_for_admins_only(login_as, path, title):
    assert login_as(Role.GUEST).get(path).status_code == 302
    assert login_as(Role.USER).get(path).status_code == 403
    assert login_as(Role.MANAGER).get(path).status_code == 403
    response = login_as(Role.ADMIN).get(path)
    assert response.status_code == 200


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403), (Role.MANAGER, 403)])
def test_outbox_callbacks_refuse_non_admins_and_leak_nothing(app, login_as, messages, role, status):
    client = login_as(role)
    table = dash_post(client, app, find_output(app, "outbox-table.children"), ["", "", 0])
    detail = open_message(client, messages["stored"])
    for response in (table, detail):
        assert response.status_code == status
        assert b"driver@campus.test" not in response.data
        assert b"boot release" not in response.data


def test_admin_sees_messages_newest_first_with_status_badges(app, login_as, messages):
    body = list_messages(login_as(Role.ADMIN), app)
    table = body["outbox-table"]["children"]
    assert row_ids(table) == [messages["failed"], messages["stored"]]
    text = json.dumps(table)
    assert "driver@campus.test" in text and "boot-release" in text
    badges = re.findall(r'"children": "(\w+)", "color": "(\w+)"', text)
    assert badges == [("failed", "danger"), ("stored", "info")]
    assert body["outbox-count"]["children"].startswith("2 ")


def test_admin_filters_by_status_and_search(app, login_as, messages):
    client = login_as(Role.ADMIN)
    failed_only = list_messages(client, app, status="failed")["outbox-table"]["children"]
    assert row_ids(failed_only) == [messages["failed"]]
    searched = list_messages(client, app, search="driver@")["outbox-table"]["children"]
    assert row_ids(searched) == [messages["stored"]]
    assert "No messages." in json.dumps(list_messages(client, app, search="nobody-matches-this"))


def test_created_time_is_shown_in_the_site_time_zone(app, core, login_as, messages):
    body = list_messages(login_as(Role.ADMIN), app)
    with core.db.session() as s:
        created = email.get_outbox_message(s, messages["stored"]).created_at
    expected = created.astimezone(core.settings.tz).strftime("%Y-%m-%d %H:%M:%S")
    assert expected in json.dumps(body)


def test_admin_opens_a_message_with_its_html_sanitised(app, login_as, messages):
    response = open_message(login_as(Role.ADMIN), messages["stored"])
    detail = outputs_of(response)["outbox-detail"]["children"]
    text = json.dumps(detail)
    assert "Code 4821" in text
    assert "map.pdf (application/pdf, 2.0 KB)" in text
    assert "<p>Hello</p>" in text
    assert "<script" not in text and "alert(" not in text and "onerror" not in text
    assert b"<script" not in response.data
    assert _find(detail, "outbox-detail-html")["props"]["sandbox"] == ""


def test_a_failed_message_shows_its_error(app, login_as, messages):
    text = json.dumps(outputs_of(open_message(login_as(Role.ADMIN), messages["failed"])))
    assert "connection refused" in text and "failed" in text


def test_a_missing_or_malformed_message_id_is_handled(app, login_as):
    client = login_as(Role.ADMIN)
    assert "no longer exists" in json.dumps(outputs_of(open_message(client, 987654)))
    assert outputs_of(open_message(client, 2**31)) == {}  # past any row id: nothing to open
    refused = open_message(client, ["not", "an", "id"])  # no row id is a list: not a call a page makes
    assert refused.status_code == 400 and "outbox-open" in refused.get_json()["error"]


def test_redrawn_rows_do_not_replace_the_open_message(app, login_as, messages):
    """A refresh re-renders the buttons with n_clicks None; that must leave the detail alone."""
    assert outputs_of(open_message(login_as(Role.ADMIN), messages["stored"], clicks=None)) == {}


def _find(tree: object, component_id: str) -> dict:
    """The serialised component with ``component_id`` inside a callback's output."""
    if isinstance(tree, dict):
        if tree.get("props", {}).get("id") == component_id:
            return tree
        children = list(tree.get("props", {}).values()) if "props" in tree else list(tree.values())
        tree = children
    if isinstance(tree, list):
        for child in tree:
            found = _find(child, component_id)
            if found:
                return found
    return {}


# --- Email Templates -------------------------------------------------------------------------


@pytest.fixture
def templates(core):
    with core.db.session() as s:
        email.ensure_default_templates(s)


def _draft(subject: str, text: str, body_html: str) -> list[str]:
    return ["boot-release", subject, text, body_html]


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403)])
def test_template_callbacks_refuse_non_admins(app, login_as, templates, role, status):
    client = login_as(role)
    options = dash_post(client, app, find_output(app, "templates-select.options"), ["/admin/email-templates"])
    save = dash_post(client, app, "templates-status.children", [1], state=_draft("x", "y", ""))
    assert options.status_code == status and b"Boot Release" not in options.data
    assert save.status_code == status


def test_admin_picks_and_previews_a_template_with_html_sanitised(app, login_as, templates):
    client = login_as(Role.ADMIN)
    options = outputs_of(dash_post(client, app, find_output(app, "templates-select.options"), ["/x"]))
    labels = [o["label"] for o in options["templates-select"]["options"]]
    assert "Boot Release Email" in labels and "PeopleSoft Holds Report" in labels

    loaded = outputs_of(
        dash_post(client, app, find_output(app, "templates-variables.children"), ["boot-release"])
    )
    assert "{{ release_code }}" in loaded["templates-text"]["value"]
    variables = json.dumps(loaded["templates-variables"]["children"])
    assert "{{ release_code }}" in variables and "the code that unlocks the boot" in variables

    preview = dash_post(
        client,
        app,
        "templates-preview.children",
        [1],
        state=_draft(
            "Code {{ release_code }}", "Plate {{ plate }}", "<b>{{ name }}</b><script>alert(1)</script>"
        ),
    )
    text = json.dumps(outputs_of(preview))
    assert "Code 4821" in text and "Plate ABCD 123" in text and "<b>Alex Morgan</b>" in text
    assert "<script" not in text and "alert(" not in text


def test_saving_an_unsafe_template_shows_the_error_and_keeps_the_old_one(app, core, login_as, templates):
    client = login_as(Role.ADMIN)
    response = dash_post(
        client, app, "templates-status.children", [1], state=_draft("Code", "{{ ''.__class__.__mro__ }}", "")
    )
    text = json.dumps(outputs_of(response))
    assert "Not saved" in text and "Text body" in text and "not allowed" in text
    with core.db.session() as s:
        assert email.get_template(s, "boot-release").body_text == email.DEFAULT_TEMPLATES[0].body_text


def test_saving_a_valid_template_persists_it(app, core, login_as, templates):
    client = login_as(Role.ADMIN)
    response = dash_post(
        client,
        app,
        "templates-status.children",
        [1],
        state=_draft("Code {{ release_code }}", "Hi {{ name }}", ""),
    )
    assert "Saved" in json.dumps(outputs_of(response))
    with core.db.session() as s:
        saved = email.get_template(s, "boot-release")
    assert saved.subject == "Code {{ release_code }}" and saved.body_html == ""
