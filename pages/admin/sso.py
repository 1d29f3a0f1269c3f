"""Single Sign-On (System Configuration > Single Sign-On): the institution's SAML identity
provider, this site's service-provider key pair, how IdP attributes become accounts, and which
user types sign in through SSO.

The IdP part can be filled from its metadata (fetched from a URL on the server, or pasted);
the admin reviews the fields and saves. The SP private key never comes back to the browser: its
box stays empty, with a note that a key is stored; pasting one replaces it, "Generate" makes a
new pair. Admins only; the layout is scaffolding, values come through ``Role.ADMIN`` callbacks.
"""

from __future__ import annotations

import json
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from dashboard.callbacks import callback, register_page
from dashboard.services import sso
from dashboard.services.errors import ValidationFailed
from dashboard.web import core, current_user_id, session_scope
from models import LoginMethod, Role

register_page(__name__, path="/admin/sso", title="Single Sign-On", min_role=Role.ADMIN)

METHOD = "sso-method"
# (setting, label, multi-line): the text fields of the form, in the order the callbacks use.
TEXT_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("institution_name", "Institution name (the login button says: Sign in with <name> SSO)", False),
    ("idp_metadata_url", "IdP metadata URL", False),
    ("idp_entity_id", "IdP entity id", False),
    ("idp_sso_url", "IdP single sign-on URL (HTTP-Redirect)", False),
    ("idp_slo_url", "IdP single logout URL (optional)", False),
    ("idp_cert", "IdP signing certificate", True),
    ("idp_cert_next", "IdP next signing certificate (during a rollover both are trusted)", True),
    ("sp_cert", "SP certificate (this site's public certificate)", True),
    ("attr_email", "E-mail attribute (empty: the NameID is the e-mail)", False),
    ("attr_first_name", "First name attribute", False),
    ("attr_last_name", "Last name attribute", False),
    ("attr_external_id", "Student / employee number attribute", False),
    ("attr_user_type", "User type attribute", False),
    ("user_type_map", "User type from its value: one 'attribute value = user type code' a line", True),
    ("attr_special", "Special-user attribute", False),
    ("special_values", "Values that make a special user (one a line; empty: true, 1, yes)", True),
)
SWITCHES: tuple[tuple[str, str], ...] = (
    ("enabled", "Single sign-on enabled"),
    ("jit_create", "Create accounts on first SSO login (just in time)"),
)
IDP_FIELDS = ("idp_entity_id", "idp_sso_url", "idp_slo_url", "idp_cert", "idp_cert_next")
LABELS = {name: label.split(" (")[0] for name, label, _multi in TEXT_FIELDS} | {
    "clock_skew_seconds": "Allowed clock skew",
    "sp_private_key": "SP private key",
    "metadata": "Metadata",
    "metadata_url": "IdP metadata URL",
    "login_method": "Login method",
    "enabled": "Single sign-on enabled",
    "jit_create": "Just-in-time accounts",
    "sync_every_login": "Sync on every login",
}


def _fid(name: str) -> str:
    return f"sso-{name.replace('_', '-')}"


def _text(name: str, label: str, multi: bool) -> html.Div:
    control = (
        dbc.Textarea(id=_fid(name), rows=3, class_name="font-monospace small")
        if multi
        else dbc.Input(id=_fid(name), type="text")
    )
    return html.Div(
        [dbc.Label(label, html_for=_fid(name), class_name="small mb-1"), control], className="mb-2"
    )


def _card(title: str, body: list[Any]) -> dbc.Card:
    return dbc.Card([dbc.CardHeader(title), dbc.CardBody(body)], class_name="mb-3")


def _by_name(*names: str) -> list[html.Div]:
    return [_text(n, label, multi) for n, label, multi in TEXT_FIELDS if n in names]


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Single Sign-On", className="h3 mb-3"),
            dcc.Store(id="sso-saved", data=0),
            _card(
                "Identity provider (your institution)",
                [
                    dbc.Switch(id=_fid("enabled"), label=dict(SWITCHES)["enabled"]),
                    *_by_name("institution_name", "idp_metadata_url"),
                    dbc.Button("Fetch metadata from the URL", id="sso-fetch", color="secondary", size="sm"),
                    html.Div(
                        [
                            dbc.Label(
                                "Or paste the IdP's metadata XML",
                                html_for="sso-metadata-xml",
                                class_name="small mb-1",
                            ),
                            dbc.Textarea(id="sso-metadata-xml", rows=3, class_name="font-monospace small"),
                            dbc.Button(
                                "Read the pasted metadata",
                                id="sso-parse",
                                color="secondary",
                                size="sm",
                                class_name="mt-1",
                            ),
                        ],
                        className="my-2",
                    ),
                    html.Div(id="sso-metadata-status"),
                    *_by_name(*IDP_FIELDS),
                ],
            ),
            _card(
                "This site (service provider)",
                [
                    html.P(
                        [
                            "Give your IdP administrators this site's metadata: ",
                            html.A("/sso/metadata", href="/sso/metadata", id="sso-sp-metadata-link"),
                            ". Assertions must be signed (RSA-SHA256); the ACS is /sso/acs,"
                            " single logout /sso/sls.",
                        ],
                        className="small",
                    ),
                    *_by_name("sp_cert"),
                    dbc.Label(
                        "SP private key (PEM; replaces the stored key)",
                        html_for="sso-sp-key",
                        class_name="small mb-1",
                    ),
                    dbc.Textarea(id="sso-sp-key", rows=3, class_name="font-monospace small"),
                    dbc.FormText(id="sso-sp-key-note"),
                    dbc.Checkbox(
                        id="sso-generate", label="Generate a new key pair when saving", class_name="mt-2"
                    ),
                    html.Div(
                        [
                            dbc.Label(
                                "Allowed clock skew (seconds)",
                                html_for="sso-clock-skew-seconds",
                                class_name="small mb-1",
                            ),
                            dbc.Input(
                                id="sso-clock-skew-seconds", type="number", min=0, max=sso.MAX_SKEW, step=1
                            ),
                        ],
                        className="mt-2",
                    ),
                ],
            ),
            _card(
                "Accounts from the IdP",
                [
                    dbc.Switch(id=_fid("jit_create"), label=dict(SWITCHES)["jit_create"]),
                    dbc.RadioItems(
                        id="sso-sync",
                        options=[
                            {"label": "Update the account from the IdP on every login", "value": "every"},
                            {
                                "label": "Take the IdP's values once, when the account is made",
                                "value": "once",
                            },
                        ],
                        class_name="mb-2",
                    ),
                    *_by_name(
                        "attr_email",
                        "attr_first_name",
                        "attr_last_name",
                        "attr_external_id",
                        "attr_user_type",
                        "user_type_map",
                        "attr_special",
                        "special_values",
                    ),
                ],
            ),
            _card("Login method per user type", [html.Div(id="sso-methods")]),
            html.Div(id="sso-status"),
            dbc.Button("Save", id="sso-save", color="primary", n_clicks=0),
        ],
        className="py-2",
    )


def _methods_table(rows: list[tuple[str, str, LoginMethod]]) -> Any:
    if not rows:
        return html.P("No user types yet.", className="small text-muted mb-0")
    options = [
        {"label": "SSO", "value": LoginMethod.SSO.value},
        {"label": "Local password", "value": LoginMethod.LOCAL.value},
    ]
    return dbc.Table(
        html.Tbody(
            [
                html.Tr(
                    [
                        html.Td(html.Label(name, htmlFor=_dom_id({"type": METHOD, "code": code}))),
                        html.Td(
                            dbc.Select(
                                id={"type": METHOD, "code": code},
                                options=options,
                                value=method.value,
                                size="sm",
                            )
                        ),
                    ]
                )
                for code, name, method in rows
            ]
        ),
        size="sm",
        class_name="mb-0",
    )


def _dom_id(component_id: dict[str, str]) -> str:
    """The DOM id Dash gives a pattern-matching id (sorted compact JSON), for ``<label for=...>``."""
    return json.dumps(component_id, sort_keys=True, separators=(",", ":"))


def _error_alert(errors: dict[str, str]) -> dbc.Alert:
    return dbc.Alert(
        [
            html.Strong("Nothing was saved. Fix these fields:"),
            html.Ul([html.Li(f"{LABELS.get(k, k)}: {v}") for k, v in errors.items()], className="mb-0"),
        ],
        color="danger",
        id="sso-result",
    )


TEXT_OUTPUTS = [Output(_fid(name), "value") for name, _label, _multi in TEXT_FIELDS]


@callback(
    *TEXT_OUTPUTS,
    Output(_fid("enabled"), "value"),
    Output(_fid("jit_create"), "value"),
    Output("sso-sync", "value"),
    Output("sso-clock-skew-seconds", "value"),
    Output("sso-sp-key", "value"),
    Output("sso-sp-key-note", "children"),
    Output("sso-generate", "value"),
    Output("sso-methods", "children"),
    Input("sso-saved", "data"),
    min_role=Role.ADMIN,
)
def fill(_saved: int | None) -> tuple[Any, ...]:
    """Load the form, and reload it after a save."""
    with session_scope() as session:
        config = sso.load(session)
        key_stored = sso.has_private_key(session)
        methods = sso.user_type_methods(session)
    note = "A private key is stored (never shown)." if key_stored else "No private key yet: generate one."
    return (
        *[getattr(config, name) for name, _label, _multi in TEXT_FIELDS],
        config.enabled,
        config.jit_create,
        "every" if config.sync_every_login else "once",
        config.clock_skew_seconds,
        "",
        note,
        False,
        _methods_table(methods),
    )


@callback(
    *[Output(_fid(name), "value", allow_duplicate=True) for name in IDP_FIELDS],
    Output("sso-metadata-status", "children"),
    Input("sso-fetch", "n_clicks"),
    Input("sso-parse", "n_clicks"),
    State(_fid("idp_metadata_url"), "value"),
    State("sso-metadata-xml", "value"),
    prevent_initial_call=True,
    min_role=Role.ADMIN,
)
def read_metadata(
    _fetch: int | None, _parse: int | None, url: str | None, xml: str | None
) -> tuple[Any, ...]:
    """Fill the IdP fields from its metadata; nothing is saved until the admin presses Save."""
    try:
        if ctx.triggered_id == "sso-fetch":
            found = sso.fetch_idp_metadata((url or "").strip())
        else:
            found = sso.parse_idp_metadata(xml or "")
    except ValidationFailed as exc:
        message = "; ".join(exc.errors.values())
        return (
            *[no_update] * len(IDP_FIELDS),
            dbc.Alert(f"Metadata not read: {message}", color="danger", id="sso-metadata-result"),
        )
    certs = [*found.certs, ""]
    note = f"Read {found.entity_id}" + (
        " (two signing certificates: a rollover)" if len(found.certs) > 1 else ""
    )
    return (
        found.entity_id,
        found.sso_url,
        found.slo_url,
        certs[0],
        certs[1],
        dbc.Alert(f"{note}. Review the fields, then save.", color="info", id="sso-metadata-result"),
    )


@callback(
    Output("sso-status", "children"),
    Output("sso-saved", "data"),
    Input("sso-save", "n_clicks"),
    *[State(_fid(name), "value") for name, _label, _multi in TEXT_FIELDS],
    State(_fid("enabled"), "value"),
    State(_fid("jit_create"), "value"),
    State("sso-sync", "value"),
    State("sso-clock-skew-seconds", "value"),
    State("sso-sp-key", "value"),
    State("sso-generate", "value"),
    State({"type": METHOD, "code": ALL}, "value"),
    prevent_initial_call=True,
    min_role=Role.ADMIN,
)
def save(n_clicks: int | None, *states: Any) -> tuple[Any, Any]:
    """Save the whole form: the SSO settings and the user types' login methods, together."""
    count = len(TEXT_FIELDS)
    texts, (enabled, jit, sync, skew, private_key, generate, _methods) = states[:count], states[count:]
    values: dict[str, Any] = {}
    for (name, _label, _multi), value in zip(TEXT_FIELDS, texts, strict=True):
        values[name] = value if isinstance(value, str) else ""
    values |= {
        "enabled": enabled is True,
        "jit_create": jit is True,
        "sync_every_login": sync != "once",
        "clock_skew_seconds": skew if skew is not None else 120,
    }
    methods = {
        spec["id"]["code"]: spec.get("value")
        for spec in ctx.states_list[-1]
        if isinstance(spec.get("id"), dict) and isinstance(spec["id"].get("code"), str)
    }
    try:
        with session_scope() as session:
            changed = sso.save(
                session,
                core().secrets,
                values,
                current_user_id(),
                private_key=private_key if isinstance(private_key, str) else "",
                generate_key=generate is True,
            )
            changed += [
                f"login method of {code}"
                for code in sso.set_login_methods(session, methods, current_user_id())
            ]
    except ValidationFailed as exc:
        return _error_alert(exc.errors), no_update
    if not changed:
        return dbc.Alert("Nothing changed.", color="secondary", id="sso-result"), no_update
    names = ", ".join(LABELS.get(name, name.replace("_", " ")) for name in changed)
    return dbc.Alert(f"Saved. Changed: {names}.", color="success", id="sso-result"), n_clicks
