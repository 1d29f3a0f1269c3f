"""Email Domain: the DNS records an admin (or their IT team) adds for the sending domain, as the
seed's "Sending Email with OPSCOM" lists them, each value with a copy button.

The layout is scaffolding only; the records come through an admin-checked callback (they name the
domain and its DKIM key). With a Mailgun API key set, Mailgun's domain API is asked, which also
says whether each record is verified yet.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html

from dashboard.callbacks import callback, register_page
from dashboard.web import core
from models import Role
from workers import email_delivery

register_page(__name__, path="/admin/email-domain", title="Email Domain", min_role=Role.ADMIN)


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Email Domain", className="h3"),
            html.P(
                [
                    "Add these records where your domain's DNS is managed (GoDaddy, Namecheap, "
                    "Cloudflare...): record type, host name and value exactly as shown. SPF and DKIM "
                    "are the minimum to send; tracking and MX are optional. Mailgun shows the domain "
                    "as verified once they are found. The domain and keys are set on ",
                    dcc.Link("System Settings", href="/admin/settings"),
                    " (Third Party > Mailgun).",
                ],
                className="text-muted",
            ),
            dbc.Button("Check again", id="email-domain-refresh", color="secondary", size="sm", n_clicks=0),
            dcc.Loading(html.Div(id="email-domain-records", className="mt-3")),
        ]
    )


def _copy(value: str) -> Any:
    return dcc.Clipboard(content=value, title="Copy", className="d-inline-block ms-2")


@callback(
    Output("email-domain-records", "children"),
    Input("email-domain-refresh", "n_clicks"),
    min_role=Role.ADMIN,
)
def load_records(_clicks: int | None) -> Any:
    setup = email_delivery.domain_setup(core())
    parts: list[Any] = []
    if setup.problem:
        parts.append(dbc.Alert(setup.problem, color="warning", id="email-domain-problem"))
    if not setup.rows:
        return parts
    show_status = any(row.status for row in setup.rows)
    headings = ["Type", "Host name", "Value", "Priority", "Purpose"] + (
        ["Mailgun says"] if show_status else []
    )
    body = [
        html.Tr(
            [
                html.Td(row.record_type),
                html.Td([html.Code(row.host), _copy(row.host)], className="text-nowrap"),
                html.Td([html.Code(row.value, className="text-break"), _copy(row.value)]),
                html.Td(row.priority or "—"),
                html.Td(row.purpose),
                *([html.Td(row.status or "—")] if show_status else []),
            ]
        )
        for row in setup.rows
    ]
    parts += [
        html.P(f"Records for {setup.domain}, from {setup.source}.", id="email-domain-source"),
        dbc.Table(
            [html.Thead(html.Tr([html.Th(h) for h in headings])), html.Tbody(body)],
            size="sm",
            bordered=True,
            id="email-domain-table",
        ),
        html.P(
            "Basic setup without a Mailgun domain of your own: add include:_spf.mailgun.org to your "
            "domain's existing SPF record.",
            className="text-muted small",
        ),
    ]
    return parts
