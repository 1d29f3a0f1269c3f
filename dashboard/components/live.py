"""Live updates for any page: a push channel (Server-Sent Events) with a polling fallback.

A page puts ``live_updates(prefix)`` in its layout, calls ``register_live_updates(prefix)`` once at
import, and adds ``live_inputs(prefix)`` to the inputs of its refresh callback. The callback then
runs within about a second of any occupancy change (``{prefix}-live.data``) and, whatever happens to
the push channel, on the poll (``{prefix}-poll.n_intervals``): every 15 s while the stream is open,
every 3 s while it is not (refused with 503, broken, or not supported by the browser).

The message is only a trigger: the stream is public, so a page must never render from it; it
re-reads its data through its own role-checked callback.

Why not dash-extensions' ``EventSource`` component: under Dash 4 its React effect depends on
``setProps``, which Dash recreates on every render, so each received message (each prop change)
closes the stream and opens a new one: a new request and Redis subscription per change, changes
lost in the gap, and no way to clear its ``error`` without a reconnect loop. Here the browser's
own ``EventSource`` is opened once per page visit by a clientside callback and reports through
``dash_clientside.set_props``; it is closed when the page's status element leaves the document.
"""

from __future__ import annotations

import dash
from dash import Input, Output, dcc, html
from dash.development.base_component import Component

from dashboard.push import STREAM_PATH

PUSH_POLL_MS = 15_000  # a safety net while push works (e.g. a change published while reconnecting)
FALLBACK_POLL_MS = 3_000  # while the push channel is down or refused

# One EventSource per prefix; a new visit to the page replaces the previous one, and a watch closes
# it once the page is gone (Dash's router unmounts pages without telling clientside code).
_OPEN_STREAM_TEMPLATE = """
function(statusId) {
    const prefix = statusId.slice(0, -"-live-status".length);
    const ids = {live: prefix + "-live", poll: prefix + "-poll", status: statusId};
    const set = window.dash_clientside.set_props;
    const onPage = () => document.getElementById(ids.status) !== null;
    const registry = window.parkopsLive = window.parkopsLive || {};
    if (registry[prefix]) {
        registry[prefix]();
    }
    if (typeof window.EventSource === "undefined") {
        return "Refreshing every FALLBACK_S s";
    }
    const source = new window.EventSource("STREAM_PATH");
    let watch = null;
    const stop = () => {
        source.close();
        clearInterval(watch);
        if (registry[prefix] === stop) {
            delete registry[prefix];
        }
    };
    watch = setInterval(() => { if (!onPage()) { stop(); } }, 2000);
    registry[prefix] = stop;
    source.onopen = () => {
        if (onPage()) {
            set(ids.poll, {interval: PUSH_MS});
            set(ids.status, {children: "Live"});
        }
    };
    source.onmessage = (event) => {
        if (onPage()) {
            set(ids.live, {data: event.data});
        }
    };
    source.onerror = () => {
        if (onPage()) {
            const closed = source.readyState === window.EventSource.CLOSED;
            set(ids.poll, {interval: FALLBACK_MS});
            set(ids.status, {children: (closed ? "Live updates unavailable" : "Reconnecting") +
                                       ": refreshing every FALLBACK_S s"});
        }
    };
    return "Connecting";
}
"""


def _open_stream_script() -> str:
    script = _OPEN_STREAM_TEMPLATE
    for name, value in (
        ("STREAM_PATH", STREAM_PATH),
        ("PUSH_MS", str(PUSH_POLL_MS)),
        ("FALLBACK_MS", str(FALLBACK_POLL_MS)),
        ("FALLBACK_S", str(FALLBACK_POLL_MS // 1000)),
    ):
        script = script.replace(name, value)
    return script


def live_updates(prefix: str) -> list[Component]:
    """For a page's layout: ``{prefix}-live`` (a store that receives each pushed message),
    ``{prefix}-poll`` (the poll) and ``{prefix}-live-status`` (a small "Live" / "Refreshing every
    3 s" note, which also tells the script whether the page is still shown)."""
    return [
        dcc.Store(id=f"{prefix}-live"),
        dcc.Interval(id=f"{prefix}-poll", interval=FALLBACK_POLL_MS),
        html.Small(id=f"{prefix}-live-status", className="text-muted", role="status"),
    ]


def live_inputs(prefix: str) -> list[Input]:
    """The two inputs a page's refresh callback listens to (their values are triggers only)."""
    return [Input(f"{prefix}-live", "data"), Input(f"{prefix}-poll", "n_intervals")]


def register_live_updates(prefix: str) -> None:
    """Register the clientside callback that opens the stream when the page is shown.

    Call at page import, like the page's other callbacks: Dash collects callbacks when the app
    first serves, not later. It runs in the browser and reaches no server data, so unlike server
    callbacks it declares no role. Without it a page still works, polling every 3 s.
    """
    dash.clientside_callback(
        _open_stream_script(),
        Output(f"{prefix}-live-status", "children"),
        Input(f"{prefix}-live-status", "id"),
    )
