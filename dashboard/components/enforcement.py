"""What the enforcement screens share: money and times as people read them, status badges, whether
boots are on, and the site context the appeal e-mails need."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import html
from flask import g, has_request_context

from dashboard.services import appeals, boots, system_settings, violations
from dashboard.web import core, session_scope

STATUS_COLORS = {
    "unpaid": "warning",
    "overdue": "danger",
    "paid": "success",
    "void": "secondary",
    "under_appeal": "info",
    "available": "success",
    "in_use": "danger",
    "released": "warning",
    "returned": "secondary",
    "not_returned": "danger",
}


def money(cents: int, currency: str | None = None) -> str:
    """An amount as people read it, with its currency: the site's (System Settings > General)
    unless the amount carries its own."""
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) / 100:,.2f} {currency or site_currency()}"


def site_currency() -> str:
    """The site's currency, read once per request (a list shows many amounts)."""
    if not has_request_context():
        return str(setting("currency"))
    if "parkops_currency" not in g:
        g.parkops_currency = str(setting("currency"))
    return str(g.parkops_currency)


def when(moment: datetime | None, *, with_time: bool = True) -> str:
    """In the site's time zone, in words: "Tuesday 1 December 2026 at 14:05"."""
    return violations.when_words(moment, core().settings.tz, with_time=with_time)


def short_when(moment: datetime | None) -> str:
    """For table cells: "Tue 1 Dec 2026, 14:05" (site time)."""
    if moment is None:
        return ""
    local = moment.astimezone(core().settings.tz)
    return f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M}"


def violation_badge(shown_status: str) -> Any:
    return dbc.Badge(
        violations.status_label(shown_status), color=STATUS_COLORS.get(shown_status, "secondary")
    )


def boot_badge(shown_status: str) -> Any:
    return dbc.Badge(boots.status_label(shown_status), color=STATUS_COLORS.get(shown_status, "secondary"))


def boots_on() -> bool:
    """Universal Boot Enabled, read per request (an admin may switch it at any time)."""
    with session_scope() as session:
        return boots.enabled(session, core().secrets)


def boots_off_notice() -> Any:
    return html.Div(
        [
            html.H1("Universal Boot is off", className="h3"),
            html.P("Boot management is turned off (System Settings > Third Party > Universal Boot Enabled)."),
        ],
        id="boots-off",
    )


def setting(key: str) -> system_settings.Value:
    with session_scope() as session:
        return system_settings.get(session, core().secrets, key)


def site() -> appeals.Site:
    from dashboard.components.checkout import base_url

    return appeals.Site(str(setting("site_name")), base_url(), core().settings.tz)


def field_errors(errors: dict[str, str], labels: dict[str, str]) -> Any:
    return dbc.Alert(
        [
            html.Strong("Not saved:"),
            html.Ul([html.Li(f"{labels.get(k, k)}: {v}") for k, v in errors.items()]),
        ],
        color="danger",
    )
