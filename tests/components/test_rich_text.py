"""Sanitised HTML becomes Dash components: void elements, nesting and text survive as the browser
would parse them, and nothing becomes a raw HTML string."""

from __future__ import annotations

from dash import html

from dashboard.components.rich_text import from_html


def test_void_elements_do_not_swallow_what_follows():
    markup = '<p>Gate A<br>opens {at} 7</p><img src="/a.png" alt="Sign"><p>x</p>'
    [paragraph, image, after] = from_html(markup)
    assert isinstance(paragraph, html.P)
    assert paragraph.children[0] == "Gate A" and isinstance(paragraph.children[1], html.Br)
    assert paragraph.children[2] == "opens {at} 7"
    assert isinstance(image, html.Img) and image.src == "/a.png" and image.alt == "Sign"
    assert isinstance(after, html.P) and after.children == ["x"]


def test_attributes_become_react_properties_and_unknown_ones_are_dropped():
    [table] = from_html('<table>\n<tbody><tr> <td colspan="2" onclick="x()">cell</td></tr></tbody></table>')
    cell = table.children[0].children[0].children[0]
    assert isinstance(cell, html.Td) and cell.colSpan == "2" and cell.children == ["cell"]
    assert not hasattr(cell, "onclick")


def test_unclosed_and_stray_tags_are_closed_as_a_browser_would():
    [item_list] = from_html("<ul><li><em>one</li><li>two</ul></span>")
    first, second = item_list.children
    assert isinstance(first.children[0], html.Em) and first.children[0].children == ["one"]
    assert second.children == ["two"]


def test_an_element_without_a_component_keeps_its_text():
    assert from_html("<tt>mono</tt> text") == ["mono", " text"]
