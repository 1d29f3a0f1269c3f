"""``callback``: Dash's ``callback`` with a mandatory minimum role, checked on the server.

The gate in ``dashboard.auth`` refuses calls to any callback that lacks the role attribute this
decorator sets, so a callback registered with plain ``dash.callback`` is unreachable by default.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import dash
from dash.exceptions import PreventUpdate

from dashboard.auth import ROLE_ATTR, has_role
from models import Role


def callback(
    *args: Any, min_role: Role, app: dash.Dash | None = None, **kwargs: Any
) -> Callable[[Callable[..., Any]], Any]:
    """``app`` registers on one app (for the shell, built per app); pages use the global registry."""
    if not isinstance(min_role, Role):
        raise TypeError("min_role must be a Role")

    def decorator(func: Callable[..., Any]) -> Any:
        @functools.wraps(func)
        def guarded(*cb_args: Any, **cb_kwargs: Any) -> Any:
            if not has_role(min_role):
                raise PreventUpdate
            return func(*cb_args, **cb_kwargs)

        setattr(guarded, ROLE_ATTR, min_role)
        register = app.callback if app is not None else dash.callback
        return register(*args, **kwargs)(guarded)

    return decorator


def register_page(module: str, *, path: str, title: str, min_role: Role, **kwargs: Any) -> None:
    """``dash.register_page`` that records the page's minimum role for the gate and the router."""
    dash.register_page(
        module, path=path, title=f"{title} · ParkOps", name=title, **{ROLE_ATTR: min_role}, **kwargs
    )
