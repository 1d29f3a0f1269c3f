"""The database unreachable while a signed-in visitor reads a page (on PostgreSQL the connection is
really dropped, ``tests.faults``): the session's user is read before any route runs, so every page
and every live body met the outage there. A read is answered 503 with ``Retry-After``, never
stored: a page that says so and tries again by itself, the map's own JSON for its data; the same
address answers again once the database is back. A write, and an error that is not a lost
connection, stay a 500 (the test app hands the error to the test instead)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import IntegrityError, OperationalError

from dashboard.core import Core
from dashboard.db import lost_connection
from dashboard.map_routes import UNAVAILABLE
from dashboard.outage import REASON
from dashboard.services import users as users_service
from models import Role
from tests.dash_helpers import component, dash_post, find_output, served_layout
from tests.faults import DropConnection

LoginAs = Callable[[Role], FlaskClient]


def _is_retry_later(response, mimetype: str) -> None:
    assert (response.status_code, response.mimetype) == (503, mimetype)
    assert response.headers["Retry-After"] == "5" and response.headers["Cache-Control"] == "no-store"


def test_a_page_says_the_database_is_unreachable_and_comes_back_with_it(
    login_as: LoginAs, core: Core
) -> None:
    manager = login_as(Role.MANAGER)
    assert manager.get("/admin").status_code == 200
    with DropConnection(core.db, r"^\s*SELECT", times=None) as drop:
        page = manager.get("/admin")
        _is_retry_later(page, "text/html")
        text = page.get_data(as_text=True)
        assert REASON in text
        assert '<meta http-equiv="refresh" content="10">' in text
        export = manager.get("/admin/reports/export.csv?report=sales")
        _is_retry_later(export, "text/html")
    assert drop.fired >= 2
    assert manager.get("/admin").status_code == 200


def test_a_page_drawn_inside_the_app_says_so_where_the_page_would_be(
    app: Flask, login_as: LoginAs, core: Core
) -> None:
    """The layout built for the page the frame is loaded on, and a move by link (the pages
    router's callback): the page area says the database is unreachable instead of staying empty."""
    admin = login_as(Role.ADMIN)
    router = find_output(app, "_pages_content.children")
    with DropConnection(core.db, r"^\s*SELECT", times=None):
        layout = served_layout(admin, "http://localhost/admin/users")
        assert REASON in json.dumps(component(layout, "_pages_content"))
        moved = dash_post(admin, app, router, ["/admin/users", ""])
        assert moved.status_code == 200 and REASON in moved.get_data(as_text=True)
    moved = dash_post(admin, app, router, ["/admin/users", ""])
    shown = moved.get_data(as_text=True)
    assert moved.status_code == 200 and REASON not in shown and "Not authorised" not in shown
    assert '"title":"Users · ParkOps"' in shown  # the page's own title: it was not refused


def test_the_signed_in_maps_data_is_the_maps_own_503(login_as: LoginAs, core: Core) -> None:
    """What the map's script shows as "unavailable", keeping its pins, as a guest's map does."""
    officer = login_as(Role.OFFICER)
    assert officer.get("/live/lot-status.json").status_code == 200
    with DropConnection(core.db, r"^\s*SELECT", times=None):
        for url in ("/live/lot-status.json", "/live/user-map.json"):
            answer = officer.get(url)
            _is_retry_later(answer, "application/json")
            assert answer.get_json() == {"error": UNAVAILABLE}, url
    assert officer.get("/live/user-map.json").status_code == 200


def test_a_write_that_lost_the_database_is_not_answered_try_again(login_as: LoginAs, core: Core) -> None:
    user = login_as(Role.USER)
    with DropConnection(core.db, r"^\s*SELECT", times=None), pytest.raises(OperationalError):
        user.post("/logout")


def test_another_database_error_is_a_fault_not_an_outage(
    login_as: LoginAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = login_as(Role.USER)

    def broken(*_args: object) -> None:
        raise IntegrityError("SELECT 1", {}, Exception("a constraint, not the connection"))

    monkeypatch.setattr(users_service, "session_user", broken)
    with pytest.raises(IntegrityError):
        user.get("/permits")


def test_a_sqlite_error_in_the_schema_is_a_fault_not_an_outage(
    login_as: LoginAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite calls a missing table an OperationalError, as it does a failing disk: only the
    latter is the database being unavailable (503, try again); the former is a logged 500.
    (PostgreSQL reports a missing table as a ProgrammingError, never taken for an outage.)"""
    user = login_as(Role.USER)

    def missing_table(*_args: object) -> None:
        with sqlite3.connect(":memory:") as connection:
            try:
                connection.execute("SELECT * FROM users")
            except sqlite3.OperationalError as exc:
                raise OperationalError("SELECT * FROM users", {}, exc) from exc

    monkeypatch.setattr(users_service, "session_user", missing_table)
    with pytest.raises(OperationalError):
        user.get("/permits")
    # SQLite's own errors, as it raises them: a file it cannot open is unavailable, a syntax
    # error is not.
    for path, statement, unavailable in (
        ("/nonexistent/parkops.db", "SELECT 1", True),
        (":memory:", "SELEKT 1", False),
    ):
        try:
            sqlite3.connect(path).execute(statement)
        except sqlite3.OperationalError as exc:
            assert lost_connection(OperationalError(statement, {}, exc)) is unavailable, exc
        else:
            raise AssertionError(f"{statement} on {path} did not fail")
