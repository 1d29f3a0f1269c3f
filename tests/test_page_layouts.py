"""Every page's layout builds: a component given a property it does not have (``aria-label`` on a
``dbc.Select``) raises only when the router builds the layout, which no callback test reaches."""

from __future__ import annotations

from typing import Any

import dash
import pytest
from dash.development.base_component import Component

from dashboard import auth


def test_every_registered_page_builds_its_layout(app):
    pages = list(dash.page_registry.values())
    assert len(pages) > 40
    for page in pages:
        layout = page["layout"]
        with app.test_request_context(page["path"]):
            try:
                built = layout() if callable(layout) else layout
            except TypeError as exc:
                pytest.fail(f"{page['path']}: {exc}")
        assert built is not None, page["path"]


def _components(node: Any, found: dict[str, Component]) -> dict[str, Component]:
    """Every component with a plain (string) id in a layout, by id."""
    if isinstance(node, list | tuple):
        for item in node:
            _components(item, found)
    elif isinstance(node, Component):
        if isinstance(getattr(node, "id", None), str):
            found[node.id] = node
        for name in node._prop_names:  # noqa: SLF001
            _components(getattr(node, name, None), found)
    return found


def test_every_callback_output_is_a_property_its_component_has(app, monkeypatch):
    """The renderer refuses an output its component does not declare ("Invalid prop for this
    component") and the change is lost: ``hidden`` on a ``dbc.Card`` hid nothing. Every page is
    built as a user allowed to see it, then each callback's plain-id outputs are checked."""
    monkeypatch.setattr(auth, "has_role", lambda _role: True)
    found: dict[str, Component] = {}
    with app.test_request_context("/"):
        for page in dash.page_registry.values():
            layout = page["layout"]
            _components(layout() if callable(layout) else layout, found)
        _components(app.extensions["parkops"].dash.layout(), found)
    assert len(found) > 300
    wrong = []
    for key in app.extensions["parkops"].dash.callback_map:
        for output in key.strip(".").split("..."):
            if "{" in output:  # a pattern-matching id: not in a layout by that name
                continue
            component_id, prop = output.rsplit(".", 1)
            prop = prop.split("@")[0]  # allow_duplicate's suffix
            component = found.get(component_id)
            if component is None or prop.startswith(("data-", "aria-")):
                continue
            if prop not in component._prop_names:  # noqa: SLF001
                wrong.append(f"{component_id}.{prop} ({type(component).__name__})")
    assert not wrong
