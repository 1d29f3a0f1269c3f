"""Log in with e-mail and password, or through the institution's SSO. The form posts to the Flask
``/login`` route (``dashboard.auth``); the SSO button goes to ``/sso/login`` (``dashboard.sso_routes``).

Which of the two the page offers follows the user types' login methods (``sso.login_options``),
filled by a callback: the layout itself holds nothing from the database.
"""

from typing import Any
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html

from dashboard.auth import safe_next
from dashboard.callbacks import callback, register_page
from dashboard.services import sso
from dashboard.web import session_scope
from models import Role

register_page(__name__, path="/login", title="Log in", min_role=Role.GUEST)


def _message(error: str | None, retry: str | None) -> str | None:
    """The refusal the login route redirected with (``dashboard.auth``): wrong credentials, or too
    many attempts and how many minutes to wait (from the query: only a number from 1 to 60 is shown)."""
    if not error:
        return None
    if error == "unverified":
        return "Your e-mail address is not confirmed yet: open the link we sent you when you registered."
    if error == "sso":
        return "This account signs in through your institution's single sign-on: use the SSO button."
    if error != "throttled":
        return "E-mail or password is incorrect."
    shown = isinstance(retry, str) and retry.isdecimal() and len(retry) <= 2 and 1 <= int(retry) <= 60
    if not shown:
        return "Too many attempts; try again later."
    minutes = int(str(retry))
    return f"Too many attempts; try again in {minutes} minute{'' if minutes == 1 else 's'}."


def layout(error: str | None = None, next: str = "/", retry: str | None = None, **_query: str) -> html.Div:  # noqa: A002
    message = _message(error, retry)
    alert = None
    if error == "unverified":
        resend = dcc.Link("Send me a new link", href="/verify", className="alert-link", id="login-resend")
        alert = dbc.Alert([message, " ", resend], color="warning", id="login-error")
    elif message:
        alert = dbc.Alert(message, color="danger", id="login-error")
    target = next if isinstance(next, str) else "/"
    return dbc.Row(
        dbc.Col(
            dbc.Card(
                dbc.CardBody(
                    [
                        html.H1("Log in", className="h3 mb-3"),
                        alert,
                        dcc.Store(id="login-next", data=target),
                        html.Div(id="login-sso"),
                        html.Details(
                            [
                                html.Summary("Sign in with e-mail and password", className="mb-3"),
                                html.Form(
                                    [
                                        dbc.Label("E-mail", html_for="login-email"),
                                        dcc.Input(
                                            id="login-email",
                                            name="email",
                                            type="email",
                                            required=True,
                                            autoComplete="username",
                                            className="form-control mb-3",
                                        ),
                                        dbc.Label("Password", html_for="login-password"),
                                        dcc.Input(
                                            id="login-password",
                                            name="password",
                                            type="password",
                                            required=True,
                                            autoComplete="current-password",
                                            className="form-control mb-3",
                                        ),
                                        dcc.Input(type="hidden", name="next", value=target),
                                        html.Button(
                                            "Log in",
                                            type="submit",
                                            id="login-submit",
                                            className="btn btn-primary w-100",
                                        ),
                                    ],
                                    action="/login",
                                    method="POST",
                                ),
                            ],
                            id="login-local",
                            open=True,
                        ),
                        html.Div(
                            [
                                dcc.Link("Forgot your password?", href="/password/forgot", id="login-forgot"),
                                dcc.Link("Create an account", href="/register", id="login-register"),
                            ],
                            className="d-flex flex-wrap justify-content-between gap-2 small mt-3",
                        ),
                    ]
                )
            ),
            xs=12,
            sm=10,
            md=6,
            lg=4,
        ),
        justify="center",
        className="py-5",
    )


@callback(
    Output("login-sso", "children"),
    Output("login-local", "open"),
    Input("login-next", "data"),
    min_role=Role.GUEST,
)
def offer(target: Any) -> tuple[Any, bool]:
    """The SSO button when SSO is on; the password form folded when every user type uses SSO."""
    with session_scope() as session:
        options = sso.login_options(session)
    if not options.sso:
        return None, True
    href = "/sso/login?" + urlencode({"next": safe_next(target)})
    button = html.A(
        f"Sign in with {options.institution_name} SSO",
        href=href,
        id="login-sso-link",
        className="btn btn-primary w-100 mb-3",
    )
    return button, options.password
