"""``callback``: Dash's ``callback`` with a mandatory minimum role, checked on the server, and
its inputs checked at the boundary.

The gate in ``dashboard.auth`` refuses calls to any callback that lacks the role attribute this
decorator sets, so a callback registered with plain ``dash.callback`` is unreachable by default.

Before the callback runs, its arguments are checked against its type hints (``dashboard.inputs``);
a value that fails, or an ``InvalidInput`` the callback raises itself (``require_id`` on an id that
came in a button's id, say), never becomes a 500: the outputs stay as they are, the shell shows
the message (``shell-notice``) and the refusal is logged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import dash
from dash import Output, no_update
from dash.exceptions import PreventUpdate

from dashboard.auth import ROLE_ATTR, has_role
from dashboard.inputs import InvalidInput, checker
from models import Role

log = logging.getLogger(__name__)
NOTICE = "shell-notice"  # the shell's alert (``dashboard.components.shell``)


def callback(
    *args: Any, min_role: Role, app: dash.Dash | None = None, **kwargs: Any
) -> Callable[[Callable[..., Any]], Any]:
    """``app`` registers on one app (for the shell, built per app); pages use the global registry."""
    if not isinstance(min_role, Role):
        raise TypeError("min_role must be a Role")

    outputs, multi = _declared_outputs(args, kwargs)

    def decorator(func: Callable[..., Any]) -> Any:
        check = checker(func)

        @functools.wraps(func)
        def guarded(*cb_args: Any, **cb_kwargs: Any) -> Any:
            if not has_role(min_role):
                raise PreventUpdate
            try:
                return func(*check(cb_args), **cb_kwargs)
            except InvalidInput as exc:
                return refuse(func, exc, outputs, multi)

        setattr(guarded, ROLE_ATTR, min_role)
        register = app.callback if app is not None else dash.callback
        return register(*args, **kwargs)(guarded)

    return decorator


def refuse(func: Callable[..., Any], exc: InvalidInput, outputs: int, multi: bool) -> Any:
    """Leave the page as it is and say why in the shell's notice."""
    log.warning("callback %s.%s refused an input: %s", func.__module__, func.__qualname__, exc)
    dash.set_props(
        NOTICE,
        {"children": f"This page sent a value ParkOps cannot use ({exc}). Reload the page.", "is_open": True},
    )
    if not outputs:
        return None
    # "No change" shaped like the outputs: a pattern output (ALL) takes one value per row.
    sent = dash.ctx.outputs_list
    if not multi:
        return [no_update] * len(sent) if isinstance(sent, list) else no_update
    return [[no_update] * len(o) if isinstance(o, list) else no_update for o in sent]


def _declared_outputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int, bool]:
    """How many outputs a callback declares, and whether Dash treats them as a list (``multi``)."""
    count, listed = 0, False
    for item in [*args, *kwargs.values()]:
        if isinstance(item, Output):
            count += 1
        elif isinstance(item, list | tuple) and any(isinstance(x, Output) for x in item):
            count += sum(isinstance(x, Output) for x in item)
            listed = True
    return count, listed or count > 1


def register_page(module: str, *, path: str, title: str, min_role: Role, **kwargs: Any) -> None:
    """``dash.register_page`` that records the page's minimum role for the gate and the router."""
    dash.register_page(
        module, path=path, title=f"{title} · ParkOps", name=title, **{ROLE_ATTR: min_role}, **kwargs
    )
