"""What a Dash callback may receive: checked at the callback boundary (``dashboard.callbacks``).

Anyone can POST any JSON to ``/_dash-update-component``, so a callback's arguments are input from
outside, whatever the page's controls would send. Two checks run before a callback does:

* ``checker(func)``: each argument against the callback's own type hints, strictly (``str | None``
  takes a string or nothing, never a number; ``int`` takes no ``True``, no ``1.5``); ``Any`` is not
  checked. A value no control of ours would send is refused with ``InvalidInput``.
* in every argument, whatever its type: text with a NUL character (no database column takes it)
  and whole numbers beyond what a browser can count exactly (2^53: nothing a page sends legitimately).

Ids travel as whole numbers or, from a page's address, as text: ``as_id`` and ``require_id`` read
them and refuse what no row can have (``MAX_ID``: PostgreSQL's ``integer``), where the database
would otherwise raise (``OverflowError``, "integer out of range").
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

MAX_ID = 2**31 - 1
MAX_BROWSER_INT = 2**53
STRICT = ConfigDict(strict=True)


class InvalidInput(ValueError):
    """A value a callback cannot use; ``message`` says which and why, in words for a person."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def as_id(value: object) -> int | None:
    """A row id (a whole number or its digits as text), or ``None`` when ``value`` is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 10:
            return None
        value = int(text)
    if isinstance(value, int) and 1 <= value <= MAX_ID:
        return value
    return None


def require_id(value: object, field: str) -> int:
    """``as_id`` for ids that pages themselves put in a control or a button's id: anything else
    did not come from the page."""
    found = as_id(value)
    if found is None:
        raise InvalidInput(field, "not an id ParkOps gave out")
    return found


def check_value(value: object, field: str) -> None:
    """The checks every argument gets, at any depth (iterative: nesting is bounded by the JSON
    reader, but no recursion is needed)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidInput(field, "contains a NUL character")
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_BROWSER_INT:
                raise InvalidInput(field, "a number too large")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)


def checker(func: Callable[..., Any]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A function that checks a call's positional arguments (Dash passes inputs, then states, in
    order) against ``func``'s type hints and returns them as validated."""
    hints = typing.get_type_hints(func)
    names = [
        p.name
        for p in inspect.signature(func).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    adapters: list[tuple[str, TypeAdapter[Any] | None]] = [
        (name, None if hints.get(name, Any) is Any else TypeAdapter(hints[name], config=STRICT))
        for name in names
    ]

    def check(args: tuple[Any, ...]) -> tuple[Any, ...]:
        checked = []
        for index, value in enumerate(args):
            name, adapter = adapters[index] if index < len(adapters) else (f"argument {index + 1}", None)
            field = name.lstrip("_").replace("_", " ")
            check_value(value, field)
            if adapter is not None:
                try:
                    value = adapter.validate_python(value)
                except ValidationError as exc:
                    raise InvalidInput(field, _problem(exc)) from None
            checked.append(value)
        return tuple(checked)

    return check


def _problem(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    return str(first["msg"]).replace("Input should be", "should be")


# --- the shape of a callback call -----------------------------------------------------------


def malformed_call(body: dict[str, Any], entry: dict[str, Any]) -> str | None:
    """What is wrong with a ``/_dash-update-component`` body for the callback ``entry`` (Dash's
    ``callback_map`` entry), or ``None``. Dash reads these lists by position and trusts their
    shape; a wrong one was a 500 inside Dash or in the callback (``outputs_list`` included)."""
    declared = entry["output"]
    outputs = body.get("outputs")
    if isinstance(declared, list):
        if not isinstance(outputs, list) or len(outputs) != len(declared):
            return "outputs do not match the callback"
        pairs = list(zip([_spec_of(o) for o in declared], outputs, strict=True))
    else:
        pairs = [(_spec_of(declared), outputs)]
    for kind in ("inputs", "state"):
        given = body.get(kind, [])
        if not isinstance(given, list) or len(given) != len(entry[kind]):
            return f"{kind} do not match the callback"
        pairs += list(zip(entry[kind], given, strict=True))
    for spec, item in pairs:
        problem = _slot_problem(spec, item)
        if problem:
            return problem
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return "changedPropIds must be a list of strings"
    return None


def _spec_of(output: Any) -> dict[str, str]:
    return {"id": output.component_id_str(), "property": output.component_property}


def _slot_problem(spec: dict[str, str], item: Any) -> str | None:
    declared_id = spec["id"]
    if not declared_id.startswith("{"):
        if not isinstance(item, dict) or item.get("id") != declared_id or _prop(item) != spec["property"]:
            return f"{declared_id}.{spec['property']} is not sent as declared"
        return None
    pattern = json.loads(declared_id)
    rows = item if isinstance(item, list) else [item]
    for row in rows:
        row_id = row.get("id") if isinstance(row, dict) else None
        if not (
            isinstance(row_id, dict)
            and _prop(row) == spec["property"]
            and row_id.keys() == pattern.keys()
            and all(_id_part_fits(pattern[key], value) for key, value in row_id.items())
        ):
            return f"a {pattern.get('type', 'pattern')} row is not sent as declared"
    return None


def _prop(item: dict[str, Any]) -> object:
    """An output sent with ``allow_duplicate`` carries ``@<hash>`` after its property."""
    prop = item.get("property")
    return prop.split("@")[0] if isinstance(prop, str) else prop


def router_problem(body: dict[str, Any]) -> str | None:
    """The pages router (Dash's own callback) reads its inputs as the address's path and query."""
    values = [slot.get("value") for slot in [*body.get("inputs", []), *body.get("state", [])]]
    if not all(value is None or isinstance(value, str) for value in values):
        return "the router takes text"
    if not (isinstance(values[0], str) and values[0].startswith("/")):
        return "the router takes a path"
    return None


def _id_part_fits(declared: Any, value: Any) -> bool:
    if isinstance(declared, list):  # a wildcard (["ALL"], ["MATCH"]): a JSON scalar a page could hold
        try:
            check_value(value, "id")
        except InvalidInput:
            return False
        return isinstance(value, str | int | float | bool)
    return value == declared
