"""``parkops devices``: register and list sensing devices from a shell (installation day, scripts).

Every change is announced to the ingester like a change made on the Sensing Devices page, so a
running ingester starts counting a device added here without a restart.
"""

from __future__ import annotations

import json
from datetime import datetime, tzinfo

import click

from dashboard.cli import common
from dashboard.services import devices as devices_service
from dashboard.services.errors import ValidationFailed
from models import DeviceKind


def _when(moment: datetime | None, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else "never"


@click.group()
def devices() -> None:
    """Sensing devices (counters and space sensors) the MQTT ingester counts."""


@devices.command("add")
@click.option("--id", "device_id", required=True, help="The id the device uses in its MQTT topics.")
@click.option("--kind", type=click.Choice([k.value for k in DeviceKind]), required=True)
@click.option("--lot", "lot_name", required=True, help="Lot name (case-insensitive).")
@click.option("--name", default="", help="A label for people, e.g. 'North gate camera'.")
def add(device_id: str, kind: str, lot_name: str, name: str) -> None:
    """Register a device to a lot."""
    core = common.core_from_env()
    try:
        with core.db.session() as session:
            view = devices_service.add_device(
                session, device_id=device_id, kind=kind, lot_name=lot_name, name=name, actor_id=None
            )
    except ValidationFailed as exc:
        raise click.ClickException(str(exc)) from exc
    devices_service.notify_devices_changed(core.redis)
    click.echo(f"registered {view.device_id} ({view.kind.value}) in {view.lot_name}")


@devices.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(as_json: bool) -> None:
    """List registered devices with their lot and when they last spoke."""
    core = common.core_from_env()
    with core.db.session() as session:
        rows = devices_service.list_devices(session)
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2, default=str))
        return
    tz = core.settings.tz
    for row in rows:
        click.echo(
            f"{row.device_id:<24} {row.kind.value:<13} {'active' if row.active else 'off   '} "
            f"{row.lot_name:<24} {row.group_name or '-':<20} last seen {_when(row.last_seen_at, tz)}"
            + (f"  {row.name}" if row.name else "")
        )


@devices.command("unknown")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def unknown(as_json: bool) -> None:
    """List device ids the ingester heard but nobody registered, with their kept messages."""
    core = common.core_from_env()
    with core.db.session() as session:
        rows = devices_service.unknown_devices(session)
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2, default=str))
        return
    if not rows:
        click.echo("no unknown devices")
    tz = core.settings.tz
    for row in rows:
        kind = row.guessed_kind.value if row.guessed_kind else "?"
        note = "  (registered; waiting for a replay)" if row.registered else ""
        plural = "" if row.message_count == 1 else "s"
        click.echo(
            f"{row.device_id:<24} {kind:<13} {row.message_count:>6} message{plural}  "
            f"{_when(row.first_seen_at, tz)} .. {_when(row.last_seen_at, tz)}{note}"
        )
