"""Hints name menu paths exactly as the menu shows them."""

from __future__ import annotations

import json

import pytest

from dashboard.components.hints import menu_link, no_mistall_lots
from dashboard.components.shell import MENU


def test_every_menu_entry_can_be_named_and_links_where_the_menu_does():
    for section, label, href, _role in MENU:
        if section is not None:
            link = menu_link(section, label)
            assert link.children == f"{section} > {label}" and link.href == href


def test_a_path_the_menu_lacks_is_refused():
    with pytest.raises(LookupError, match="Tools > System Task Logs"):
        menu_link("Tools", "System Task Logs")


def test_the_mistall_hint_names_the_setting_then_the_task():
    text = json.dumps(no_mistall_lots().to_plotly_json(), default=lambda c: c.to_plotly_json())
    assert text.index("Enable Mistall Usage") < text.index("Update Mistall System Job Task")
    assert "System > System Settings" in text and "System > System Task Logs" in text
