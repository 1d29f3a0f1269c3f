"""What pages and routes use to reach the core from inside a request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from sqlalchemy.orm import Session

from dashboard.core import Core


def core() -> Core:
    return current_app.extensions["parkops"]


@contextmanager
def session_scope() -> Iterator[Session]:
    with core().db.session() as session:
        yield session


def current_user_id() -> int | None:
    from flask_login import current_user

    return int(current_user.id) if current_user and current_user.is_authenticated else None
