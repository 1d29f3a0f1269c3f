"""How the MQTT ingester's state reads on Sensor Feed Health and the dashboard: one wording for
"stuck", "stopped" and "the broker forgot the session" on both screens."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

import dash_bootstrap_components as dbc

from dashboard.services.feed_health import IngesterStatus, SessionsLost
from dashboard.services.wording import ago

# A forgotten session is news for a day on the dashboard; Sensor Feed Health always shows the count.
SESSION_LOST_RECENT = timedelta(hours=24)


def _local(moment: datetime, tz: tzinfo) -> str:
    local = moment.astimezone(tz)
    return f"{local:%H:%M} on {local:%b} {local.day}"


def status_line(status: IngesterStatus | None, now: datetime) -> str:
    """One sentence: is an ingester running, and when did it last apply something."""
    if status is None:
        return "No ingester has reported since Redis was last emptied."
    if status.stopped_at is not None:
        return f"The ingester ({status.owner}) stopped {ago(status.stopped_at, now)}."
    connection = "connected to the broker" if status.connected else "not connected to the broker"
    waiting = f", {status.waiting:,} message(s) waiting" if status.waiting else ""
    return (
        f"Ingester {status.owner}: {connection}, last applied a message {ago(status.applied_at, now)}"
        f"{waiting}; last report {ago(status.beat_at, now)}."
    )


def feed_alerts(
    stuck: str | None,
    lost: SessionsLost | None,
    now: datetime,
    tz: tzinfo,
    *,
    recent_only: bool = False,
) -> list[Any]:
    """Alerts for a stuck ingester and for sessions the broker forgot (``recent_only``: only one
    forgotten in the last day, as on the dashboard)."""
    alerts: list[Any] = []
    if stuck:
        alerts.append(
            dbc.Alert(
                f"The ingester is stuck, live sensor figures are frozen: {stuck}.",
                color="danger",
                className="small py-2 mb-2",
            )
        )
    if (
        lost
        and lost.count
        and lost.last_at
        and (not recent_only or now - lost.last_at <= SESSION_LOST_RECENT)
    ):
        alerts.append(
            dbc.Alert(
                f"The MQTT broker forgot the ingester's session {lost.count:,} time(s), last at "
                f"{_local(lost.last_at, tz)}: messages it had queued for the ingester were lost. Give "
                "the broker persistence (README, Production).",
                color="warning",
                className="small py-2 mb-2",
            )
        )
    return alerts
