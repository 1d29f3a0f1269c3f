"""Calling Dash callbacks the way the browser does (a POST to ``/_dash-update-component``), and
reading the layout Dash serves (``/_dash-layout``, built for the page its Referer names)."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient


def dash_app(app: Flask) -> Any:
    return app.extensions["parkops"].dash


def callback_entry(app: Flask, output: str) -> dict[str, Any]:
    dash_app(app)._setup_server()  # noqa: SLF001  (fills callback_map like a first request)
    return dash_app(app).callback_map[output]


def find_output(app: Flask, fragment: str) -> str:
    """The callback_map key that contains ``fragment`` (e.g. ``"settings-save-status.children"``)."""
    dash_app(app)._setup_server()  # noqa: SLF001
    matches = [key for key in dash_app(app).callback_map if fragment in key]
    assert len(matches) == 1, f"{fragment!r} matches {matches}"
    return matches[0]


def dash_post(
    client: FlaskClient,
    app: Flask,
    output: str,
    inputs: list[Any],
    state: list[Any] | None = None,
    triggered: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST one callback call; returns the Flask response (``.json`` holds the ``response`` map)."""
    entry = callback_entry(app, output)
    body_inputs = [dict(spec, value=value) for spec, value in zip(entry["inputs"], inputs, strict=True)]
    body_state = [dict(spec, value=value) for spec, value in zip(entry["state"], state or [], strict=True)]
    outputs = (
        [{"id": o.component_id, "property": o.component_property} for o in entry["output"]]
        if isinstance(entry["output"], list)
        else {"id": entry["output"].component_id, "property": entry["output"].component_property}
    )
    changed = [triggered] if triggered else [f"{body_inputs[0]['id']}.{body_inputs[0]['property']}"]
    body = {
        "output": output,
        "outputs": outputs,
        "inputs": body_inputs,
        "state": body_state,
        "changedPropIds": changed,
    }
    # Wildcard ids (ALL, MATCH) serialise as Dash's renderer sends them, e.g. ["ALL"].
    payload = json.dumps(body, default=lambda o: json.loads(o.to_json()))
    return client.post(
        "/_dash-update-component", data=payload, content_type="application/json", headers=headers or {}
    )


def outputs_of(response: Any) -> dict[str, dict[str, Any]]:
    """``{component_id: {prop: value}}`` from a successful callback response ({} for 204)."""
    if response.status_code == 204:
        return {}
    assert response.status_code == 200, response.data[:500]
    return response.get_json()["response"]


def press(
    client,
    app,
    fragment: str,
    trigger: str | dict[str, Any],
    values: dict[str, Any] | None = None,
    rows: dict[str, list[dict[str, Any]]] | None = None,
    clicks: int = 1,
) -> Any:
    """POST the callback with output ``fragment`` as the browser does after a click on ``trigger``
    (a plain id or a pattern-matching id). ``values`` fills inputs and states by component id (or
    "id.property"); ``rows`` lists the pattern-matching buttons on the page by their type."""
    output = find_output(app, fragment)
    entry = callback_entry(app, output)
    values = values or {}

    def plain(spec: dict[str, Any]) -> dict[str, Any]:
        if spec["id"] == trigger:
            return dict(spec, value=clicks)
        return dict(spec, value=values.get(f"{spec['id']}.{spec['property']}", values.get(spec["id"])))

    inputs: list[Any] = []
    for spec in entry["inputs"]:
        if spec["id"].startswith("{"):
            kind = json.loads(spec["id"])["type"]
            inputs.append(
                [
                    {"id": row, "property": spec["property"], "value": clicks if row == trigger else 0}
                    for row in (rows or {}).get(kind, [])
                ]
            )
        else:
            inputs.append(plain(spec))
    changed = (
        json.dumps(trigger, sort_keys=True, separators=(",", ":")) if isinstance(trigger, dict) else trigger
    ) + ".n_clicks"
    body = {
        "output": output,
        "outputs": (
            [{"id": o.component_id, "property": o.component_property} for o in entry["output"]]
            if isinstance(entry["output"], list)
            else {"id": entry["output"].component_id, "property": entry["output"].component_property}
        ),
        "inputs": inputs,
        "state": [plain(spec) for spec in entry["state"]],
        "changedPropIds": [changed],
    }
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def component(layout: Any, component_id: str) -> dict[str, Any] | None:
    """The component with ``component_id`` in a layout as Dash serves it (JSON), or None."""
    if isinstance(layout, list):
        return next((found for item in layout if (found := component(item, component_id))), None)
    if not isinstance(layout, dict):
        return None
    props = layout.get("props", {})
    if props.get("id") == component_id:
        return layout
    return next((found for value in props.values() if (found := component(value, component_id))), None)


def served_layout(client: FlaskClient, referrer: str | None) -> Any:
    headers = {"Referer": referrer} if referrer else {}
    response = client.get("/_dash-layout", headers=headers)
    assert response.status_code == 200
    return response.get_json()
