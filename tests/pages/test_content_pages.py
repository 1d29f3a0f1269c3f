"""Public content pages (/p/<slug>) and the admin Editing Pages screen."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dashboard.services import content, occupancy
from dashboard.services.occupancy import LiveStore
from models import LotGroup, OccupancySource, Role
from tests.dash_helpers import dash_post, find_output, outputs_of

HOSTILE = (
    '<p>Hello</p><script>alert("owned")</script>'
    '<img src=x onerror="alert(2)"><a href="javascript:alert(3)">x</a>'
)
BODY = HOSTILE + '[real-time-map][real-time-legend][parking_logix name="Garages"][bogus-code]'


@pytest.fixture
def pages(core):
    with core.db.session() as s:
        s.add(LotGroup(name="North Garage", parking_logix_name="North", parking_logix_api_key="enc"))
        s.add(LotGroup(name="Hidden Lot"))
        for slug, published in (("welcome", True), ("secret-draft", False)):
            content.save_page(
                s,
                slug=slug,
                title=f"Title {slug}",
                body=BODY,
                body_format="html",
                is_published=published,
                actor_id=None,
            )


def show(client, app, slug):
    return outputs_of(dash_post(client, app, find_output(app, "content-body.children"), [slug]))


def assert_clean(text: str) -> None:
    for bad in ("<script", "alert(", "onerror", "javascript:"):
        assert bad not in text


def test_guest_sees_a_published_page_with_shortcodes(app, login_as, pages):
    client = login_as(Role.GUEST)
    assert client.get("/p/welcome").status_code == 200
    text = json.dumps(show(client, app, "welcome"))
    assert "Title welcome" in text and '{"props": {"children": ["Hello"]}, "type": "P"' in text
    assert "dangerously_allow_html" not in text
    assert '"realtime-map"' in text and '"realtime-live-status"' in text  # the live map itself
    assert "North Garage" in text and "Hidden Lot" not in text and "Garages" in text
    assert "Unknown shortcode" in text and "bogus-code" not in text
    assert_clean(text)


def test_the_parking_logix_list_shows_each_groups_live_figure_or_says_there_is_none(
    app, core, login_as, pages
):
    with core.db.session() as s:
        s.add(LotGroup(name="South Garage", parking_logix_name="South", parking_logix_api_key="enc"))
        s.add(LotGroup(name="Old Garage", parking_logix_api_key="enc", is_closed=True))
        s.commit()
        north = s.scalar(select(LotGroup.id).where(LotGroup.name == "North Garage"))
        occupancy.apply_figure(
            s, LiveStore(core.redis), north, OccupancySource.PARKING_LOGIX, 70, 120,
            datetime.now(UTC) - timedelta(minutes=3), step_percent=5,
        )  # fmt: skip
        s.commit()
    listed = {
        item["props"]["id"]: json.dumps(item)
        for item in _walk(show(login_as(Role.GUEST), app, "welcome"))
        if str(item.get("props", {}).get("id", "")).startswith("content-logix-")
    }
    texts = sorted(listed.values())
    assert len(texts) == 3
    assert any("North Garage" in t and "50 of 120 spaces free (3 min ago)" in t for t in texts)
    assert any("South Garage" in t and "no live data" in t for t in texts)
    assert any("Old Garage" in t and "closed" in t for t in texts)


def _walk(node):
    """Every component in a callback's output, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.mark.parametrize("slug", ["secret-draft", "missing", None, "../admin"])
def test_unpublished_or_unknown_pages_are_not_found(app, login_as, pages, slug):
    text = json.dumps(show(login_as(Role.GUEST), app, slug))
    assert "Page not found" in text and "Title" not in text


def test_admin_page_is_for_admins_only(login_as):
    assert login_as(Role.GUEST).get("/admin/pages").status_code == 302
    assert login_as(Role.USER).get("/admin/pages").status_code == 403
    assert login_as(Role.ADMIN).get("/admin/pages").status_code == 200


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403)])
def test_admin_callbacks_refuse_lower_roles(app, login_as, pages, role, status):
    client = login_as(role)
    listing = dash_post(client, app, find_output(app, "pages-list.children"), ["/admin/pages", None])
    saved = dash_post(
        client,
        app,
        find_output(app, "pages-status.children"),
        [1, None],
        [None, "hacked", "Hacked", "html", True, "x"],
        triggered="pages-save-btn.n_clicks",
    )
    for response in (listing, saved):
        assert response.status_code == status
        assert b"welcome" not in response.data
    with app.extensions["parkops"].db.session() as s:
        assert "hacked" not in [p.slug for p in content.list_pages(s)]


def save_as_admin(client, app, page_id, slug, title, body, published=True):
    return outputs_of(
        dash_post(
            client,
            app,
            find_output(app, "pages-status.children"),
            [1, None],
            [page_id, slug, title, "html", published, body],
            triggered="pages-save-btn.n_clicks",
        )
    )


def test_admin_lists_saves_and_deletes(app, login_as, pages):
    admin = login_as(Role.ADMIN)
    listing = json.dumps(
        outputs_of(dash_post(admin, app, find_output(app, "pages-list.children"), ["/admin/pages", None]))
    )
    assert "Title welcome" in listing and "draft" in listing and "/p/welcome" in listing  # slug shown

    result = save_as_admin(admin, app, "new", "parking-faq", "Parking FAQ", HOSTILE + "<p>Answers</p>")
    assert "published" in json.dumps(result["pages-status"])
    # The new page stays chosen: the list refresh carries it with the options that now hold it.
    refreshed = outputs_of(
        dash_post(
            admin,
            app,
            find_output(app, "pages-list.children"),
            ["/admin/pages", result["pages-changed"]["data"]],
            triggered="pages-changed.data",
        )
    )
    new_id = refreshed["pages-select"]["value"]
    assert new_id in [o["value"] for o in refreshed["pages-select"]["options"]] and new_id != "new"
    loaded = outputs_of(dash_post(admin, app, find_output(app, "pages-slug.value"), [new_id]))
    assert loaded["pages-slug"]["value"] == "parking-faq"
    page = json.dumps(show(login_as(Role.GUEST), app, "parking-faq"))
    assert "Answers" in page
    assert_clean(page)

    clash = save_as_admin(admin, app, "new", "welcome", "Again", "x")
    assert "another page already uses" in json.dumps(clash["pages-status"])
    bad = save_as_admin(admin, app, "new", "Bad Slug", "", "x")
    assert "Address" in json.dumps(bad["pages-status"]) and "Title" in json.dumps(bad["pages-status"])

    deleted = outputs_of(
        dash_post(
            admin,
            app,
            find_output(app, "pages-status.children"),
            [1, 1],
            [new_id, "parking-faq", "Parking FAQ", "html", True, ""],
            triggered="pages-delete-btn.n_clicks",
        )
    )
    assert "Page deleted" in json.dumps(deleted["pages-status"])
    assert "Page not found" in json.dumps(show(login_as(Role.GUEST), app, "parking-faq"))
