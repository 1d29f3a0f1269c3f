"""Recorded vendor payloads (see the client modules' docstrings for where each shape comes from)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def load(name: str) -> Any:
    """The parsed payload ``name`` (without ``.json``); a fresh copy each time, so tests may edit it."""
    return json.loads((HERE / f"{name}.json").read_text())
