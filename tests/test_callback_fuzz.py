"""The hostile walk: every server callback of the app, called over HTTP as an admin (who may call
them all) with out-of-range and wrongly typed values in each input and state, must answer without
a server error: a clear message or nothing, never a 500.

The callbacks come from the app's own ``callback_map``, so a callback added later is walked too.
Each value goes in one slot at a time, with the other slots as a click would leave them (buttons
pressed, the rest empty), and then in every slot at once. Pattern-matching inputs get one row
whose id carries the hostile value (ids of rows are where a database id travels).
"""

from __future__ import annotations

import json
import traceback
from typing import Any

import pytest

from dashboard.services.demo import seed_demo
from models import Role
from tests.dash_helpers import dash_app, dash_post, find_output, outputs_of
from tests.enforcement import enable_boots

HUGE = 10**20
HOSTILE: list[Any] = [
    HUGE,
    2**31,  # one past PostgreSQL's integer: an id the database cannot look up
    -1,
    1.5,
    True,
    "abc",
    str(HUGE),  # ids from a page's address arrive as text
    "",
    "\x00",
    "0001-01-01T00:00:00+14:00",  # a date that leaves the calendar once moved to UTC
    "9999-12-31",  # a day with no day after it
    "x" * 100_000,
    [],
    {"a": 1},
    None,
]
# What a click leaves in the slots that the walk is not attacking.
PRESSED = {"n_clicks": 1, "n_intervals": 1, "n_submit": 1}


def _server_callbacks(app) -> dict[str, dict[str, Any]]:
    dash_app(app)._setup_server()  # noqa: SLF001
    return {key: entry for key, entry in dash_app(app).callback_map.items() if entry.get("callback")}


def _wildcard(spec: dict[str, Any]) -> dict[str, Any] | None:
    return json.loads(spec["id"]) if spec["id"].startswith("{") else None


def _row_id(pattern: dict[str, Any], value: Any) -> dict[str, Any]:
    """A concrete id for a pattern: every wildcard key holds ``value`` (ids hold scalars only:
    a list or an object there is a malformed call, walked by ``test_malformed_calls``)."""
    scalar = value if isinstance(value, str | int | float | bool) else "x"
    return {key: (scalar if _is_wildcard(part) else part) for key, part in pattern.items()}


def _is_wildcard(part: Any) -> bool:
    return isinstance(part, list) or hasattr(part, "to_json")


def _slot(spec: dict[str, Any], value: Any, attacked: bool) -> Any:
    """The body entry for one input or state: a plain one carries ``value``; an ALL pattern is a
    list of rows (none when not attacked, else one row whose id and value are hostile)."""
    pattern = _wildcard(spec)
    if pattern is None:
        return dict(spec, value=value)
    if not attacked:
        return []
    row_value = PRESSED.get(spec["property"], value)
    return [{"id": _row_id(pattern, value), "property": spec["property"], "value": row_value}]


def _trigger(spec: dict[str, Any], value: Any) -> str:
    pattern = _wildcard(spec)
    if pattern is None:
        return f"{spec['id']}.{spec['property']}"
    return json.dumps(_row_id(pattern, value), sort_keys=True, separators=(",", ":")) + f".{spec['property']}"


def _output(output: Any, value: Any) -> Any:
    """An output as the renderer sends it; a pattern's (ALL) as one row whose id holds ``value``."""
    if isinstance(output.component_id, dict):
        return [{"id": _row_id(output.component_id, value), "property": output.component_property}]
    return {"id": output.component_id, "property": output.component_property}


def _body(key: str, entry: dict[str, Any], attacked: set[int], value: Any) -> str:
    specs = [*entry["inputs"], *entry["state"]]
    slots = []
    for index, spec in enumerate(specs):
        if index in attacked:
            slots.append(_slot(spec, value, True))
        else:
            slots.append(_slot(spec, PRESSED.get(spec["property"]), False))
    trigger_index = min(attacked) if attacked else 0
    trigger_spec = specs[trigger_index] if trigger_index < len(entry["inputs"]) else entry["inputs"][0]
    outputs = entry["output"]
    body = {
        "output": key,
        "outputs": (
            [_output(o, value) for o in outputs] if isinstance(outputs, list) else _output(outputs, value)
        ),
        "inputs": slots[: len(entry["inputs"])],
        "state": slots[len(entry["inputs"]) :],
        "changedPropIds": [_trigger(trigger_spec, value)],
    }
    return json.dumps(body, default=lambda o: json.loads(o.to_json()))


def _where(exc: BaseException) -> str:
    """The last line of ParkOps' own code the exception passed through."""
    ours = [f for f in traceback.extract_tb(exc.__traceback__) if "/site-packages/" not in f.filename]
    return f"{ours[-1].filename.split('/parkops/')[-1].split('/web/')[-1]}:{ours[-1].lineno}" if ours else "?"


def _walk(client, app, calls: list[tuple[str, set[int], Any]]) -> list[str]:
    failures = []
    callbacks = _server_callbacks(app)
    for key, attacked, value in calls:
        body = _body(key, callbacks[key], attacked, value)
        shown = repr(value)[:40]
        try:
            response = client.post("/_dash-update-component", data=body, content_type="application/json")
        except Exception as exc:  # the test client re-raises what the app did not handle
            where = _where(exc)
            failures.append(
                f"{key[:60]} slots {sorted(attacked)} = {shown}: {where} {type(exc).__name__}: {exc}"[:300]
            )
            continue
        if response.status_code >= 500:
            failures.append(f"{key[:90]} slots {sorted(attacked)} = {shown}: HTTP {response.status_code}")
    return failures


def _calls(app) -> list[tuple[str, set[int], Any]]:
    calls = []
    for key, entry in _server_callbacks(app).items():
        count = len(entry["inputs"]) + len(entry["state"])
        for value in HOSTILE:
            calls.append((key, set(range(count)), value))
            calls.extend((key, {index}, value) for index in range(count))
    return calls


@pytest.fixture
def demo_campus(core, tmp_path) -> None:
    """Real rows behind the ids, so that callbacks get past "not found" to their deeper paths; with
    Universal Boot on, so that the boot screens and the ticket's Apply Boot answer too."""
    with core.db.session() as session:
        seed_demo(session, core.secrets, tmp_path)
    enable_boots(core)


def test_no_callback_answers_a_server_error_to_hostile_input(app, login_as, demo_campus):
    admin = login_as(Role.ADMIN)
    calls = _calls(app)
    assert len({key for key, _, _ in calls}) > 50, "the walk found too few callbacks"
    failures = _walk(admin, app, calls)
    assert not failures, f"{len(failures)} of {len(calls)} calls failed:\n" + "\n".join(failures)


def _malformed(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Bodies whose shape no renderer sends: lists where objects go, missing or extra slots,
    ids of the wrong kind."""
    variants = [{**body, "inputs": "x"}, {**body, "inputs": body["inputs"][:-1]}, {**body, "outputs": None}]
    variants += [{**body, "outputs": [body["outputs"]] * 3}, {**body, "changedPropIds": [5]}]
    variants += [{**body, "inputs": [{"id": ["x"], "property": 1}] * len(body["inputs"])}]
    variants += [{**body, "inputs": [[{"id": "x", "value": 1}]] * len(body["inputs"])}]
    variants += [{**body, "inputs": [[{"id": {"type": [1]}, "property": "n_clicks"}]] * len(body["inputs"])}]
    variants += [{**body, "state": [None] * (len(body["state"]) + 1)}]
    return variants


def test_malformed_calls_are_a_json_400(app, login_as):
    admin = login_as(Role.ADMIN)
    failures = []
    for key, entry in _server_callbacks(app).items():
        body = json.loads(_body(key, entry, set(), None))
        for variant in _malformed(body):
            try:
                response = admin.post("/_dash-update-component", json=variant)
            except Exception as exc:  # the test client re-raises what the app did not handle
                failures.append(f"{key[:90]}: {type(exc).__name__}: {exc}"[:300])
                continue
            if response.status_code != 400 or "error" not in (response.get_json() or {}):
                failures.append(f"{key[:90]}: HTTP {response.status_code}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("role", "fragment", "text"),
    [
        (Role.GUEST, "lotgroup-content.children", "Lot group not found"),
        (Role.GUEST, "checkout-title.children", "Lot not found"),
        (Role.USER, "book-title.children", "Lot not found"),
        (Role.ADMIN, "user-form.hidden", "That user does not exist"),
    ],
)
@pytest.mark.parametrize("lot_id", [str(HUGE), str(2**31), "-1", "1e5"])
def test_an_id_out_of_range_in_the_address_is_not_found(app, login_as, role, fragment, text, lot_id):
    """``/lot-groups/<id>``, ``/checkout/temp/<id>``, ``/permits/book/<id>``: the page's store
    holds the id from the address as text; the database never sees one it cannot hold."""
    output = find_output(app, fragment)
    entry = _server_callbacks(app)[output]
    extra = len(entry["inputs"]) - 1  # the live-update triggers
    state = [None] * len(entry["state"])  # e.g. the quick checkout's kept form key: none yet
    answer = dash_post(login_as(role), app, output, [lot_id, *[None] * extra], state)
    assert answer.status_code == 200
    assert text in json.dumps(outputs_of(answer))


def test_a_wrongly_typed_input_gets_a_clear_message_not_a_500(app, login_as):
    """An admin callback sent an object where its control holds text: the outputs stay, the
    shell's notice names the field."""
    admin = login_as(Role.ADMIN)
    output = find_output(app, "lots-table.children")
    answer = dash_post(admin, app, output, [{"$gt": ""}, None])
    assert answer.status_code == 200
    body = answer.get_json()
    assert body.get("response", {}) == {}
    notice = body["sideUpdate"]["shell-notice"]
    assert notice["is_open"] is True and "query" in notice["children"] and "Reload" in notice["children"]
