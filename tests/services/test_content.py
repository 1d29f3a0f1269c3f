"""Editing Pages service: slugs, the publish rule, the shortcode parser and HTML sanitising."""

from __future__ import annotations

import pytest

from dashboard.services import content
from dashboard.services.content import Html, Notice, Shortcode
from dashboard.services.errors import NotFound, ValidationFailed
from models import AuditLog, LotGroup

HOSTILE = (
    '<p onclick="steal()">Hi</p><script>alert("owned")</script>'
    '<img src="x" onerror="alert(2)"><a href="javascript:alert(3)">link</a>'
    '<iframe src="https://evil.test"></iframe><a href="https://ok.test">ok</a>'
)


def save(session, **fields):
    values = {
        "slug": "about",
        "title": "About",
        "body": "Hello",
        "body_format": "markdown",
        "is_published": True,
        "actor_id": None,
    }
    return content.save_page(session, **{**values, **fields})


# --- parser ------------------------------------------------------------------------------------


def test_parser_splits_html_and_known_shortcodes():
    segments = content.parse_shortcodes("<p>Top</p>[real-time-map]<p>Mid</p>[real-time-legend]")
    assert segments == [
        Html("<p>Top</p>"),
        Shortcode("real-time-map", {}),
        Html("<p>Mid</p>"),
        Shortcode("real-time-legend", {}),
    ]


def test_parking_logix_parameters_are_parsed():
    [code] = content.parse_shortcodes(
        '[parking_logix only="North Garage, South" show="open" filter="gar" name="Garages"]'
    )
    assert code == Shortcode(
        "parking_logix",
        {"only": ["North Garage", "South"], "show": "open", "filter": "gar", "name": "Garages"},
    )
    [default] = content.parse_shortcodes("[parking_logix]")
    assert default == Shortcode("parking_logix", {"only": [], "show": "all", "filter": "", "name": ""})


@pytest.mark.parametrize(
    "text",
    [
        "[no-such-code]",
        "[parking_logix only=North]",
        '[parking_logix colour="red"]',
        '[parking_logix show="everything"]',
        '[parking_logix name="<script>alert(1)</script>"]',
        '[parking_logix name="x" name="y"]',
        '[real-time-map zoom="3"]',
        '[parking_logix name="a" stray]',
    ],
)
def test_unknown_codes_and_bad_parameters_become_harmless_notices(text):
    [segment] = content.parse_shortcodes(text)
    assert isinstance(segment, Notice)
    assert "<" not in segment.message and "script" not in segment.message


def test_markdown_links_and_empty_bodies_are_not_shortcodes():
    assert content.parse_shortcodes("see [the map](https://x.test)") == [
        Html("see [the map](https://x.test)")
    ]
    assert content.parse_shortcodes("") == []
    assert content.parse_shortcodes(None) == []


def test_html_is_sanitised():
    cleaned = content.render_html(HOSTILE, "html")
    for bad in ("<script", "alert(", "onclick", "onerror", "javascript:", "<iframe"):
        assert bad not in cleaned
    assert "<p>Hi</p>" in cleaned and 'href="https://ok.test"' in cleaned


def test_markdown_is_rendered_and_then_sanitised():
    text = (
        "# Parking help\n\nLine one\nline two\n\n- **north** lot\n- [south](https://ok.test)\n\n"
        "<script>alert(1)</script>\n\n[bad](javascript:alert(2)) <img src=x onerror=alert(3)>"
    )
    cleaned = content.render_html(text, "markdown")
    assert "<h1>Parking help</h1>" in cleaned
    assert "<li><strong>north</strong> lot</li>" in cleaned
    assert '<a href="https://ok.test"' in cleaned
    for bad in ("<script", "alert(1)", "javascript:", "onerror"):
        assert bad not in cleaned


def test_rendered_html_is_one_block_and_keeps_code_blocks():
    """A blank line inside a code block stays inside it; the block is one ``content-html`` div."""
    cleaned = content.render_html("```\nfirst\n\n    indented\n```\n\nafter *this*", "markdown")
    assert cleaned.startswith('<div class="content-html">') and cleaned.endswith("</div>")
    assert "first\n\n    indented" in cleaned
    assert "<em>this</em>" in cleaned


def test_a_second_map_on_one_page_is_a_notice():
    segments = content.parse_shortcodes("[real-time-map] text [real-time-map] [real-time-legend]")
    assert segments[0] == Shortcode("real-time-map")
    assert isinstance(segments[2], Notice) and "once" in segments[2].message
    assert segments[3] == Shortcode("real-time-legend")


# --- pages -------------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["", "About", "-about", "a b", "a/b", "é", "a" * 121, "x_y"])
def test_bad_slugs_are_refused(session, slug):
    with pytest.raises(ValidationFailed) as caught:
        save(session, slug=slug)
    assert "slug" in caught.value.errors


def test_title_and_format_are_required(session):
    with pytest.raises(ValidationFailed) as caught:
        save(session, title="  ", body_format="pdf")
    assert set(caught.value.errors) == {"title", "body_format"}


def test_slugs_are_unique_and_updates_keep_their_own(session):
    first = save(session, slug="parking-help")
    with pytest.raises(ValidationFailed) as caught:
        save(session, slug="parking-help", title="Other")
    assert "another page" in caught.value.errors["slug"]
    updated = save(session, slug="parking-help", title="Help", page_id=first.id)
    assert updated.id == first.id and updated.title == "Help"
    with pytest.raises(NotFound):
        save(session, slug="zzz", page_id=first.id + 999)


def test_only_published_pages_are_public(session):
    draft = save(session, slug="draft", is_published=False)
    save(session, slug="live", is_published=True)
    assert content.get_published(session, "draft") is None
    assert content.get_published(session, "nope") is None
    assert content.get_published(session, "../etc") is None
    assert content.get_published(session, "live").title == "About"
    save(session, slug="draft", is_published=True, page_id=draft.id)
    assert content.get_published(session, "draft") is not None
    assert [p.slug for p in content.list_pages(session)] == ["draft", "live"]


def test_changes_are_audited_and_delete_removes(session):
    page = save(session, actor_id=None)
    save(session, title="About us", page_id=page.id)
    content.delete_page(session, page.id, actor_id=None)
    actions = [a.action for a in session.query(AuditLog).order_by(AuditLog.id)]
    assert actions == ["content_page.create", "content_page.update", "content_page.delete"]
    assert content.list_pages(session) == []
    with pytest.raises(NotFound):
        content.delete_page(session, page.id, actor_id=None)


def test_parking_logix_lists_only_groups_with_a_key(session):
    session.add_all(
        [
            LotGroup(name="North Garage", parking_logix_name="North", parking_logix_api_key="enc-1"),
            LotGroup(
                name="South Lot", parking_logix_name="South ", parking_logix_api_key="enc-2", is_closed=True
            ),
            LotGroup(name="East Garage", parking_logix_name="East"),
            LotGroup(name="West Garage", parking_logix_api_key=""),
        ]
    )
    session.flush()

    def names(**params):
        base = {"only": [], "show": "all", "filter": "", "name": ""}
        return [g.name for g in content.parking_logix_groups(session, {**base, **params})]

    assert names() == ["North Garage", "South Lot"]
    # The shortcode's ``only`` is forgiving (case, and the spaces a vendor name may end with).
    assert names(only=["south"]) == ["South Lot"]
    assert names(filter="garage") == ["North Garage"]
    assert names(show="open") == ["North Garage"]
    assert names(show="closed") == ["South Lot"]
