"""Sanitised HTML (``content.render_html``) as Dash components, for the content pages.

``dcc.Markdown(dangerously_allow_html=True)`` parses raw HTML as JSX, not HTML: a void element
written the HTML way (``<br>``, ``<img ...>``, which is how nh3 writes them) is an unclosed tag
there, and the whole block renders blank; braces in text are read as JSX expressions. So the HTML
is parsed here with the standard library's HTML parser (which knows HTML's void elements) into
``dash.html`` components: the browser gets React elements, never a raw HTML string.

Only what nh3 lets through reaches this parser; an element or attribute without a Dash
counterpart keeps its children and loses the rest.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from dash import html
from dash.development.base_component import Component

# HTML attribute -> Dash (React) property, for the attributes nh3 allows.
ATTRIBUTES = {
    "href": "href",
    "hreflang": "hrefLang",
    "src": "src",
    "alt": "alt",
    "title": "title",
    "width": "width",
    "height": "height",
    "class": "className",
    "colspan": "colSpan",
    "rowspan": "rowSpan",
    "headers": "headers",
    "scope": "scope",
    "span": "span",
    "start": "start",
    "cite": "cite",
    "datetime": "dateTime",
    "dir": "dir",
    "lang": "lang",
    "summary": "summary",
}
# Tags whose Dash class is not the capitalised tag name.
RENAMED = {"map": "MapEl", "object": "ObjectEl"}
VOID = frozenset({"area", "br", "col", "embed", "hr", "img", "input", "source", "track", "wbr"})
# Elements whose whitespace between children is layout only (React refuses text inside a <tr>).
STRUCTURAL = frozenset({"table", "thead", "tbody", "tfoot", "tr", "colgroup", "ul", "ol", "dl"})


def _component_class(tag: str) -> type[Component] | None:
    cls = getattr(html, RENAMED.get(tag, tag.capitalize()), None)
    return cls if isinstance(cls, type) and issubclass(cls, Component) else None


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        # Each open element: (tag, its properties, its children so far).
        self.stack: list[tuple[str, dict[str, Any], list[Any]]] = [("", {}, [])]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        props = {ATTRIBUTES[name]: value for name, value in attrs if name in ATTRIBUTES and value is not None}
        if tag in VOID:
            self._append(tag, props, [])
        else:
            self.stack.append((tag, props, []))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID or all(open_tag != tag for open_tag, _, _ in self.stack[1:]):
            return  # a stray end tag: nothing to close
        while self.stack[-1][0] != tag:  # close what was left open inside it, as browsers do
            self._close()
        self._close()

    def handle_data(self, data: str) -> None:
        if data.isspace() and self.stack[-1][0] in STRUCTURAL:
            return
        self.stack[-1][2].append(data)

    def _close(self) -> None:
        tag, props, children = self.stack.pop()
        self._append(tag, props, children)

    def _append(self, tag: str, props: dict[str, Any], children: list[Any]) -> None:
        cls = _component_class(tag)
        parent = self.stack[-1][2]
        if cls is None:
            parent.extend(children)
        elif tag in VOID:
            parent.append(cls(**props))
        else:
            parent.append(cls(children=children, **props))

    def result(self) -> list[Any]:
        self.close()
        while len(self.stack) > 1:
            self._close()
        return self.stack[0][2]


def from_html(markup: str) -> list[Any]:
    """Dash components for sanitised HTML (see the module docstring)."""
    builder = _Builder()
    builder.feed(markup)
    return builder.result()
