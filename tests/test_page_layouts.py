"""Every page's layout builds: a component given a property it does not have (``aria-label`` on a
``dbc.Select``) raises only when the router builds the layout, which no callback test reaches."""

from __future__ import annotations

import dash
import pytest


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
