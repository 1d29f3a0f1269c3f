"""Shared by the self-service account pages (register, verify, forgot and reset password): the
link mailer and the throttle, which counts these forms like failed logins (see ``throttle``)."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import html
from flask import request

from dashboard.components.checkout import base_url, mail_backend
from dashboard.components.enforcement import setting
from dashboard.services import accounts, throttle
from dashboard.web import core


def mailer() -> accounts.Mailer:
    return accounts.Mailer(
        base_url=base_url(),
        site_name=str(setting("site_name")),
        tz=core().settings.tz,
        backend=mail_backend(),
    )


def mail_refusal(address: str) -> str | None:
    """Count a request that may send a link to ``address``; the refusal to show if too many came
    from this client or to this address lately (else None: go ahead)."""
    try:
        throttle.attempt(core().redis, throttle.mail_subjects(address, request.remote_addr)).failed()
    except throttle.Throttled as exc:
        return str(exc)
    return None


def link_attempt() -> throttle.Attempt:
    """Count a use of an e-mailed link by this client (raises ``Throttled`` when too many failed):
    call ``failed()`` on a wrong link, ``succeeded()`` on a good one."""
    return throttle.attempt(
        core().redis, [throttle.Subject(throttle.LOGIN_ADDRESS, throttle.client_address(request.remote_addr))]
    )


def card(title: str, *children: Any) -> Any:
    """The narrow centred card the login page uses, full width on a phone."""
    return dbc.Row(
        dbc.Col(
            dbc.Card(dbc.CardBody([html.H1(title, className="h3 mb-3"), *children])),
            xs=12,
            sm=10,
            md=7,
            lg=5,
        ),
        justify="center",
        className="py-4",
    )


def field(label: str, control: Any) -> Any:
    return html.Div([dbc.Label(label, html_for=control.id), control], className="mb-3")
