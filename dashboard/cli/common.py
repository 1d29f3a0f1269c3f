"""What every ``parkops`` command shares: the core built from ``PARKOPS_*``, a bad setting said
as a clean message instead of a traceback. Commands call it through this module
(``common.core_from_env()``) so that a test can hand them its own core."""

from __future__ import annotations

import click

from dashboard.core import Core, build_core
from dashboard.settings import Settings, SettingsError


def core_from_env() -> Core:
    try:
        return build_core(Settings.from_env())
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
