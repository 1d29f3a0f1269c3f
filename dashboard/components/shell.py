"""The frame around every page: navigation, the signed-in user, the page container.

The menu a user may see and their name are built on the server from the session (``menu``): in
the layout itself when the renderer's request says which page it is for, with the page inside
the frame (``_address``, ``page_container``); else, and on every later move, by ``shell-nav``'s
callback.
"""

from __future__ import annotations

import logging
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html
from dash._pages import _parse_query_string, _path_to_page
from flask import has_request_context, request

from dashboard.auth import current_role
from dashboard.callbacks import callback
from models import Role

log = logging.getLogger(__name__)

# (section, label, href, minimum role): one place that says which screens each role finds in the
# menu. Entries with a section are grouped in a drop-down, so the bar stays one line on a laptop.
MENU: list[tuple[str | None, str, str, Role]] = [
    (None, "Home", "/", Role.GUEST),
    (None, "Dashboard", "/admin", Role.MANAGER),
    (None, "Real-Time Map", "/real-time", Role.GUEST),
    ("My Parking", "My Permits", "/permits", Role.USER),
    ("My Parking", "My Waitlist", "/waitlist", Role.USER),
    ("My Parking", "Cart", "/cart", Role.USER),
    ("My Parking", "My Violations", "/violations", Role.USER),
    ("My Parking", "Pay a Violation", "/pay-violation", Role.GUEST),
    ("My Parking", "Appeal a Ticket", "/appeal", Role.GUEST),
    ("Enforcement", "Lot Status", "/officer", Role.OFFICER),
    ("Enforcement", "Check a Plate", "/officer/check", Role.OFFICER),
    ("Enforcement", "Write a Ticket", "/officer/ticket", Role.OFFICER),
    ("Enforcement", "Violations", "/admin/violations", Role.MANAGER),
    ("Enforcement", "Universal Boot Devices", "/admin/boot-report", Role.MANAGER),
    ("Enforcement", "PeopleSoft Holds", "/admin/peoplesoft", Role.MANAGER),
    ("Enforcement", "Offence Types", "/admin/offence-types", Role.ADMIN),
    ("Enforcement", "Setup Boot Devices", "/admin/boots", Role.ADMIN),
    ("Occupancy", "Real-Time Map (Admin)", "/admin/map", Role.MANAGER),
    ("Occupancy", "Lot Groups", "/admin/lot-groups", Role.MANAGER),
    ("Occupancy", "Sensing Devices", "/admin/devices", Role.ADMIN),
    ("Occupancy", "Sensor Feed Health", "/admin/ingest", Role.ADMIN),
    # In a section, not on the bar: an admin's bar already overflows below about 1,075 px wide.
    ("Parking", "Reports", "/admin/reports", Role.MANAGER),
    ("Parking", "Lot Administration", "/admin/lots", Role.MANAGER),
    ("Parking", "Lot Zones", "/admin/lot-zones", Role.ADMIN),
    ("Parking", "Temporary Permits", "/admin/temporary-permits", Role.MANAGER),
    ("Parking", "Pay Station Status", "/admin/pay-stations", Role.MANAGER),
    ("Parking", "Payment Reconciliation", "/admin/reconciliation", Role.MANAGER),
    ("Parking", "Manage Capacity", "/manage/capacity", Role.MANAGER),
    ("System", "Users", "/admin/users", Role.ADMIN),
    ("System", "User Types", "/admin/user-types", Role.ADMIN),
    ("System", "User Import", "/admin/user-import", Role.ADMIN),
    ("System", "System Settings", "/admin/settings", Role.ADMIN),
    ("System", "System Task Logs", "/admin/tasks", Role.ADMIN),
    ("System", "Email Outbox", "/admin/outbox", Role.ADMIN),
    ("System", "Email Templates", "/admin/email-templates", Role.ADMIN),
    ("System", "Email Domain", "/admin/email-domain", Role.ADMIN),
    ("System", "Editing Pages", "/admin/pages", Role.ADMIN),
    ("System", "API Keys", "/admin/api-keys", Role.ADMIN),
    ("System", "Single Sign-On", "/admin/sso", Role.ADMIN),
]

# Menu entries shown only while a system setting is on (Universal Boot Enabled hides every boot screen).
FEATURE_SETTINGS: dict[str, str] = {
    "/admin/boot-report": "boot_universal_enabled",
    "/admin/boots": "boot_universal_enabled",
    "/admin/peoplesoft": "peoplesoft_enabled",
}


def hidden_features() -> frozenset[str]:
    """The menu hrefs whose feature is switched off now."""
    from dashboard.services import system_settings
    from dashboard.web import core, session_scope

    keys = sorted(set(FEATURE_SETTINGS.values()))
    with session_scope() as session:
        values = system_settings.get_many(session, core().secrets, keys)
    return frozenset(href for href, key in FEATURE_SETTINGS.items() if not values[key])


def layout() -> Any:
    """The frame; with the address known (``_address``), the menu and the page come built in it."""
    address = _address()
    nav, user, location = None, None, dcc.Location(id="shell-url")
    if address is not None:
        try:
            nav, user = menu(address.path)
            location = located("shell-url", address)
        except Exception:
            # The menu's callback will try again once the frame is drawn.
            log.exception("the menu for %s failed; its callback builds it instead", address.path)
    return html.Div(
        [
            # With its address given, this Location reports nothing on mount: the menu is already
            # built for it, and the menu's callback runs on the next move only.
            location,
            html.A("Skip to content", href="#main", className="visually-hidden-focusable"),
            dbc.Navbar(
                dbc.Container(
                    [
                        dbc.NavbarBrand("ParkOps", href="/"),
                        dbc.NavbarToggler(id="shell-toggler", n_clicks=0),
                        dbc.Collapse(
                            [
                                dbc.Nav(nav, id="shell-nav", className="me-auto", navbar=True),
                                html.Div(user, id="shell-user", className="d-flex align-items-center gap-2"),
                            ],
                            id="shell-collapse",
                            is_open=False,
                            navbar=True,
                        ),
                    ],
                    fluid=True,
                ),
                color="dark",
                dark=True,
                expand="md",
            ),
            html.Main(
                dbc.Container(
                    [
                        # Filled by ``dashboard.callbacks.refuse`` when a callback refuses an input.
                        dbc.Alert(id="shell-notice", color="warning", is_open=False, dismissable=True),
                        page_container(address),
                    ],
                    fluid=True,
                    className="py-3",
                ),
                id="main",
            ),
        ]
    )


def _address() -> SplitResult | None:
    """The address of the page the layout is asked for from, when the request says it.

    The renderer asks for the layout (``/_dash-layout``) from the page itself, so the request's
    Referer (sent same-origin only: the Referrer-Policy) is the page's address. Knowing it, the
    menu and the page come in the layout's own answer instead of from callbacks (the pages router,
    the menu's) one round trip after the layout is drawn (``bench/pages.py``: first pin).
    """
    if not has_request_context() or not request.referrer:
        return None
    address = urlsplit(request.referrer)._replace(fragment="")
    if address.netloc != request.host or address.scheme != request.scheme or not address.path:
        return None
    return address


def located(
    component_id: str, address: SplitResult, refresh: Literal["callback-nav"] | bool = True
) -> dcc.Location:
    """A dcc.Location given all four address properties: it reports nothing when it mounts (it
    reports only those it lacks), so callbacks on it wait for the next move: a link, back or
    forward, which it reports as always."""
    return dcc.Location(
        id=component_id,
        refresh=refresh,
        href=address.geturl(),
        pathname=address.path,
        search=f"?{address.query}" if address.query else "",
        hash="",
    )


def page_container(address: SplitResult | None) -> Any:
    """Dash's page container, with the page at ``address`` already in it.

    Its Location set (``located``), the pages router does not build the page a second
    time on load; it routes every later move. Without an address, or if the page fails to build,
    the container is Dash's own: empty until the router answers.
    """
    initial = _initial_page(address) if address else None
    if address is None or initial is None:
        return dash.page_container
    content, title = initial
    return html.Div(
        [
            located("_pages_location", address, refresh="callback-nav"),
            html.Div(content, id="_pages_content", disable_n_clicks=True),
            dcc.Store(id="_pages_store", data={"title": title}),
            html.Div(id="_pages_dummy", disable_n_clicks=True),
        ]
    )


def _initial_page(address: SplitResult) -> tuple[Any, str] | None:
    """The layout and title of the page at ``address``, built as Dash's router builds them (the
    same look-up, path variables and query parameters, and the page's role check:
    ``auth.guard_pages``)."""
    page, variables = _path_to_page(dash.strip_relative_path(address.path))
    if not page:
        page = next(p for m, p in dash.page_registry.items() if m.split(".")[-1] == "not_found_404")
    layout, title = page["layout"], page["title"]
    try:
        query = _parse_query_string(f"?{address.query}" if address.query else "")
        content = layout(**{**(variables or {}), **query}) if callable(layout) else layout
        title = title(**(variables or {})) if callable(title) else title
    except Exception:
        # The router will try again and answer the error where the page is shown.
        log.exception("page %s: its layout failed; the pages router builds it instead", address.path)
        return None
    return content, title


def menu(path: str) -> tuple[list[Any], Any]:
    """The menu the signed-in user (or a guest) may see, ``path``'s entry marked active, and the
    user's name with "Log out" (a guest: "Log in")."""
    from flask_login import current_user

    role = current_role()
    items = nav_for(role, path, hidden_features())
    if not current_user.is_authenticated:
        return items, html.A("Log in", href="/login", className="btn btn-light btn-sm")
    user = html.Div(
        [
            html.Span(f"{current_user.name} ({role.label})", className="navbar-text text-light small"),
            html.Form(
                html.Button("Log out", type="submit", className="btn btn-outline-light btn-sm"),
                action="/logout",
                method="POST",
                className="m-0",
            ),
        ],
        className="d-flex align-items-center gap-2",
    )
    return items, user


def nav_for(role: Role, path: str, hidden: frozenset[str] = frozenset()) -> list[Any]:
    items: list[Any] = []
    sections: dict[str, list[Any]] = {}
    for section, label, href, min_role in MENU:
        if role < min_role or href in hidden:
            continue
        if section is None:
            items.append(dbc.NavItem(dbc.NavLink(label, href=href, active=(href == path))))
            continue
        if section not in sections:
            sections[section] = []
            items.append(dbc.DropdownMenu(sections[section], label=section, nav=True, in_navbar=True))
        sections[section].append(dbc.DropdownMenuItem(label, href=href, active=(href == path)))
    return items


def register_callbacks(app: dash.Dash) -> None:
    @callback(
        Output("shell-nav", "children"),
        Output("shell-user", "children"),
        Input("shell-url", "pathname"),
        min_role=Role.GUEST,
        # As Dash's pages router: not called for the layout as served, only when the Location
        # reports an address (on mount when the layout did not know it, then on every move).
        prevent_initial_call=True,
        app=app,
    )
    def update_nav(pathname: str | None) -> tuple[list[Any], Any]:
        return menu(pathname or "/")

    @callback(
        Output("shell-collapse", "is_open"),
        Input("shell-toggler", "n_clicks"),
        Input("shell-url", "pathname"),
        dash.State("shell-collapse", "is_open"),
        min_role=Role.GUEST,
        prevent_initial_call=True,
        app=app,
    )
    def toggle(n_clicks: int, _path: str | None, is_open: bool) -> bool:
        """The toggler opens and closes the phone menu; choosing a page closes it, so the menu
        does not stay open over the page it led to."""
        if dash.ctx.triggered_id == "shell-toggler":
            return not is_open if n_clicks else is_open
        return False
