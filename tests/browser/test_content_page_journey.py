"""A guest opens a content page whose blocks hold an image and line breaks: the text and the image
show, in HTML and in Markdown pages alike (they used to blank the whole block)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from dashboard.services import content

pytestmark = pytest.mark.browser

BODIES = {
    "html": (
        '<p>Gate A<br>opens at 7:00 {sharp}</p><img src="/assets/parking-sign.png" alt="Parking sign">'
        "<p>Second line<br/>after a break</p>"
    ),
    "markdown": "Gate A  \nopens at 7:00 {sharp}\n\n![Parking sign](/assets/parking-sign.png)\n\nSecond line",
}


@pytest.fixture
def pages(core) -> None:
    with core.db.session() as session:
        for body_format, body in BODIES.items():
            content.save_page(
                session,
                slug=f"gates-{body_format}",
                title=f"Gates ({body_format})",
                body=body + "[real-time-legend]",
                body_format=body_format,
                is_published=True,
                actor_id=None,
            )


@pytest.mark.parametrize("body_format", sorted(BODIES))
def test_a_block_with_an_image_and_line_breaks_shows_its_text_and_image(
    live_server, page: Page, pages, body_format
) -> None:
    page.goto(f"{live_server}/p/gates-{body_format}")
    body = page.locator("#content-body")
    expect(body.get_by_role("heading", name=f"Gates ({body_format})")).to_be_visible()
    expect(body).to_contain_text("Gate A")
    expect(body).to_contain_text("opens at 7:00 {sharp}")
    expect(body).to_contain_text("Second line")
    image = body.get_by_role("img", name="Parking sign")
    expect(image).to_be_attached()
    assert image.get_attribute("src") == "/assets/parking-sign.png"
    assert body.locator(".content-html br").count() >= 1
