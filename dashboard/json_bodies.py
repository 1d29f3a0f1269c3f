"""How request bodies are read as JSON: never deeper than ``MAX_DEPTH``.

Python's parser recurses once per level: ``"[" * 5000`` raised ``RecursionError``, which Flask's
``get_json(silent=True)`` does not catch (it catches ``ValueError``), so a nested body was a 500
before any check ran. Here too deep is a ``ValueError`` like any malformed body: ``silent`` reads
give ``None`` and the others Flask's 400. No form or partner call of ours nests beyond a few
levels; a bound also spares whatever walks the parsed value later.
"""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 64


class BoundedJSONProvider(DefaultJSONProvider):
    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError(f"JSON nested more than {MAX_DEPTH} levels deep") from None
        if _openings(s) > MAX_DEPTH and depth(value) > MAX_DEPTH:
            raise ValueError(f"JSON nested more than {MAX_DEPTH} levels deep")
        return value


def _openings(s: str | bytes) -> int:
    """An upper bound of the depth, counted in C: most bodies skip the walk below."""
    if isinstance(s, str):
        return s.count("[") + s.count("{")
    return s.count(b"[") + s.count(b"{")


def depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed value (iterative: no recursion to exhaust)."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, level = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in children)
    return deepest
