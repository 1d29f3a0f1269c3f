"""Sensing Devices and Sensor Feed Health over HTTP: only admins get device or feed data; an admin
adds, edits and deactivates devices, maps an unknown one (its kept messages are replayed by a
worker) and reads the dead letters."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from rq import Queue
from sqlalchemy import select

from dashboard.core import set_core
from dashboard.services import devices, feed_health
from models import (
    AuditLog,
    IngestDeadLetter,
    Lot,
    LotGroup,
    Role,
    SensingDevice,
    UnknownDeviceMessage,
    utcnow,
)
from tests.dash_helpers import callback_entry, dash_post, find_output, outputs_of
from workers.worker import InlineWorker

DEVICES_TABLE = "devices-table.children"
DEVICE_ACTIONS = "devices-flash.children"
MAP_ACTIONS = "devices-unknown-flash.children"
INGEST = "ingest-messages.children"
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


@pytest.fixture
def lot_id(core) -> int:
    with core.db.session() as s:
        lot = Lot(name="North Garage L1", lot_group=LotGroup(name="North Garage"), capacity=100)
        s.add(lot)
        s.flush()
        return lot.id


@pytest.fixture
def job_core(core):
    set_core(core)
    yield core
    set_core(None)


def refresh_devices(client, app) -> Any:
    return dash_post(client, app, find_output(app, DEVICES_TABLE), [None, 0, 0])


def refresh_ingest(client, app, reason: str = "") -> Any:
    return dash_post(client, app, find_output(app, INGEST), [None, reason])


def press(
    client,
    app,
    fragment: str,
    trigger: str,
    value: Any,
    state: list[Any],
    ids: dict[str, list[str]] | None = None,
) -> Any:
    """POST an action callback as the browser does: wildcard inputs carry one control per id in
    ``ids[type]``; ``trigger`` is a plain id or ``"type:id"`` for a pattern-matching button."""
    output = find_output(app, fragment)
    entry = callback_entry(app, output)
    kind, _, target = trigger.partition(":")
    inputs: list[Any] = []
    changed = ""
    for spec in entry["inputs"]:
        prop = spec["property"]
        if spec["id"].startswith("{"):
            spec_type = json.loads(spec["id"])["type"]
            controls = []
            for control in (ids or {}).get(spec_type, []):
                control_id = {"id": control, "type": spec_type}
                hit = spec_type == kind and control == target
                controls.append({"id": control_id, "property": prop, "value": value if hit else 0})
                if hit:
                    changed = json.dumps(control_id, sort_keys=True, separators=(",", ":")) + "." + prop
            inputs.append(controls)
        else:
            inputs.append(dict(spec, value=value if spec["id"] == kind else 0))
            if spec["id"] == kind:
                changed = f"{kind}.{prop}"
    body = {
        "output": output,
        "outputs": [{"id": o.component_id, "property": o.component_property} for o in entry["output"]],
        "inputs": inputs,
        "state": [dict(spec, value=v) for spec, v in zip(entry["state"], state, strict=True)],
        "changedPropIds": [changed],
    }
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def add_form(client, app, device_id: str, lot: Any, editing: str | None = None, name: str = "") -> Any:
    state = [editing, device_id, "counter", str(lot) if lot is not None else None, name, 0]
    return press(client, app, DEVICE_ACTIONS, "devices-form-save", 1, state)


def keep(core, device_id: str, count: int) -> None:
    with core.db.session() as s:
        for n in range(count):
            s.add(
                UnknownDeviceMessage(
                    device_id=device_id,
                    topic=f"{core.settings.mqtt_topic_prefix}/counters/{device_id}/events",
                    payload=json.dumps({"event_id": f"e{n}", "direction": "in", "ts": T0.isoformat()}),
                    received_at=T0 + timedelta(minutes=n),
                )
            )


@pytest.mark.parametrize(("role", "status"), [(Role.GUEST, 401), (Role.USER, 403), (Role.OFFICER, 403)])
def test_non_admins_get_no_device_or_feed_data(app, core, login_as, lot_id, role, status):
    with core.db.session() as s:
        devices.add_device(s, device_id="cnt-secret", kind="counter", lot_id=lot_id, actor_id=None)
        s.add(IngestDeadLetter(topic="parkops/counters/cnt-secret/events", payload="{", reason="bad"))
    keep(core, "cnt-hidden", 2)
    client = login_as(role)
    for response in (
        refresh_devices(client, app),
        refresh_ingest(client, app),
        add_form(client, app, "cnt-forged", lot_id),
        press(client, app, MAP_ACTIONS, "devices-map-confirm", 1, ["cnt-hidden", "counter", str(lot_id), 0]),
    ):
        assert response.status_code == status
        assert b"cnt-" not in response.data and b"North Garage" not in response.data
    with core.db.session() as s:
        assert s.scalars(select(SensingDevice.device_id)).all() == ["cnt-secret"]
        assert devices.kept_message_count(s, "cnt-hidden") == 2


def test_the_pages_themselves_are_admin_only(app, login_as):
    for path in ("/admin/devices", "/admin/ingest"):
        assert login_as(Role.GUEST).get(path).status_code == 302
        assert login_as(Role.OFFICER).get(path).status_code == 403
        assert login_as(Role.ADMIN).get(path).status_code == 200


def test_admin_sees_devices_with_last_seen_in_the_site_time_zone(app, core, login_as, lot_id):
    with core.db.session() as s:
        devices.add_device(
            s, device_id="cnt-quiet", kind="counter", lot_id=lot_id, name="Gate", actor_id=None
        )
        devices.add_device(s, device_id="spc-1", kind="space_sensor", lot_id=lot_id, actor_id=None)
        s.scalars(select(SensingDevice).where(SensingDevice.device_id == "cnt-quiet")).one().last_seen_at = T0
        s.scalars(
            select(SensingDevice).where(SensingDevice.device_id == "spc-1")
        ).one().last_seen_at = utcnow()
    out = outputs_of(refresh_devices(login_as(Role.ADMIN), app))
    table = json.dumps(out["devices-table"]["children"])
    assert "cnt-quiet" in table and "Gate" in table and "North Garage L1" in table and "North Garage" in table
    assert "2026-03-02 09:00" in table  # 14:00 UTC in Toronto
    assert table.count("silent for") == 1 and "silent for" in table.split("spc-1")[0]
    assert out["devices-form-lot"]["options"] == [
        {"label": "North Garage L1 (North Garage)", "value": str(lot_id)}
    ]


def test_admin_adds_edits_and_deactivates_a_device(app, core, login_as, lot_id):
    client = login_as(Role.ADMIN)
    pubsub = core.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(devices.DEVICES_CHANNEL)
    try:
        pubsub.get_message(timeout=1)
        out = outputs_of(add_form(client, app, "cnt-new", lot_id, name="North gate"))
        announced = pubsub.get_message(timeout=5)
    finally:
        pubsub.close()
    assert out["devices-flash"]["children"] == "cnt-new registered in North Garage L1."
    assert out["devices-flash"]["color"] == "success" and out["devices-form-id"]["value"] == ""
    assert announced is not None
    with core.db.session() as s:
        audit = s.scalars(select(AuditLog)).one()
    assert (audit.actor_id, audit.action, audit.entity_id) == (client.user.id, "device.add", "cnt-new")

    ids = {"devices-edit": ["cnt-new"], "devices-toggle": ["cnt-new"]}
    editing = outputs_of(press(client, app, DEVICE_ACTIONS, "devices-edit:cnt-new", 1, [None] * 5 + [0], ids))
    assert editing["devices-form-id"] == {"value": "cnt-new", "disabled": True}
    assert (editing["devices-form-lot"]["value"], editing["devices-form-name"]["value"]) == (
        str(lot_id),
        "North gate",
    )
    assert editing["devices-form-save"]["children"] == "Save changes"

    saved = outputs_of(add_form(client, app, "cnt-new", lot_id, editing="cnt-new", name="South gate"))
    assert saved["devices-flash"]["children"] == "cnt-new saved."
    off = outputs_of(press(client, app, DEVICE_ACTIONS, "devices-toggle:cnt-new", 1, [None] * 5 + [0], ids))
    assert "inactive" in off["devices-flash"]["children"]
    with core.db.session() as s:
        view = devices.get_device(s, "cnt-new")
    assert (view.name, view.active) == ("South gate", False)

    # A re-rendered table reports its buttons with n_clicks 0: nothing happens.
    assert (
        outputs_of(press(client, app, DEVICE_ACTIONS, "devices-toggle:cnt-new", 0, [None] * 5 + [0], ids))
        == {}
    )


def test_the_form_reports_bad_input(app, core, login_as, lot_id):
    client = login_as(Role.ADMIN)
    bad = outputs_of(add_form(client, app, "cnt/1", lot_id))
    assert bad["devices-flash"]["color"] == "danger" and "device_id" in bad["devices-flash"]["children"]
    no_lot = outputs_of(add_form(client, app, "cnt-1", None))
    assert no_lot["devices-flash"]["children"] == "Choose the device's lot."
    with core.db.session() as s:
        assert s.scalars(select(SensingDevice)).all() == []


def test_admin_maps_an_unknown_device_and_its_kept_messages_are_replayed(
    app, core, login_as, lot_id, job_core
):
    keep(core, "cnt-stray", 3)
    client = login_as(Role.ADMIN)
    unknown = json.dumps(outputs_of(refresh_devices(client, app))["devices-unknown-table"]["children"])
    assert "cnt-stray" in unknown and "Counter" in unknown and '"Map"' in unknown

    ids = {"devices-map": ["cnt-stray"]}
    opened = outputs_of(
        press(client, app, MAP_ACTIONS, "devices-map:cnt-stray", 1, [None, None, None, 0], ids)
    )
    assert opened["devices-map-modal"]["is_open"] is True
    assert opened["devices-map-id"]["data"] == "cnt-stray"
    assert opened["devices-map-kind"]["value"] == "counter"

    mapped = outputs_of(
        press(client, app, MAP_ACTIONS, "devices-map-confirm", 1, ["cnt-stray", "counter", str(lot_id), 0])
    )
    assert (
        mapped["devices-unknown-flash"]["children"]
        == "cnt-stray registered. 3 kept messages will be counted."
    )
    assert mapped["devices-map-modal"]["is_open"] is False
    assert Queue(core.settings.queue_name, connection=core.redis).count == 1

    InlineWorker([core.settings.queue_name], connection=redis.Redis.from_url(core.redis_url)).work(burst=True)
    with core.db.session() as s:
        assert devices.kept_message_count(s, "cnt-stray") == 0
        assert devices.get_device(s, "cnt-stray").lot_id == lot_id
        assert s.scalars(select(AuditLog.action)).all() == ["device.map"]
    after = json.dumps(outputs_of(refresh_devices(client, app))["devices-unknown-table"]["children"])
    assert "cnt-stray" not in after


def test_mapping_without_a_lot_keeps_the_modal_open(app, core, login_as, lot_id):
    keep(core, "cnt-stray", 1)
    client = login_as(Role.ADMIN)
    out = outputs_of(
        press(client, app, MAP_ACTIONS, "devices-map-confirm", 1, ["cnt-stray", "counter", None, 0])
    )
    assert out["devices-unknown-flash"]["color"] == "warning" and "devices-map-modal" not in out
    with core.db.session() as s:
        assert s.scalars(select(SensingDevice)).all() == []


def test_sensor_feed_health_shows_the_ingesters_state(app, core, login_as):
    """Running, stuck (and why), stopped, or never reported: the ingester's own report."""
    client = login_as(Role.ADMIN)
    status = lambda: json.dumps(outputs_of(refresh_ingest(client, app))["ingest-status"]["children"])  # noqa: E731
    assert "No ingester has reported" in status()
    now = datetime.now(UTC).timestamp()
    core.redis.hset(
        feed_health.STATUS_KEY,
        mapping={
            "owner": "ingest-1, process 77",
            "beat_at": repr(now),
            "applied_at": repr(now - 300),
            "waiting": 12,
            "waiting_since": repr(now - 300),
            "last_error": "OperationalError: server closed the connection",
            "connected": "1",
        },
    )
    stuck = status()
    assert "The ingester is stuck, live sensor figures are frozen: 12 message(s) waiting" in stuck
    assert "server closed the connection" in stuck and "Ingester ingest-1, process 77: connected" in stuck
    core.redis.hset(feed_health.STATUS_KEY, mapping={"stopped_at": repr(now), "waiting_since": ""})
    stopped = status()
    assert "stopped" in stopped and "stuck" not in stopped
    core.redis.hset(feed_health.STATUS_KEY, mapping={"stopped_at": "", "beat_at": repr(now - 600)})
    assert re.search(r"has not reported for 6\d\d s: killed or hung", status())


def test_admin_sees_feed_counters_and_dead_letters(app, core, login_as):
    core.redis.set(devices.MESSAGES_KEY, 1234)
    core.redis.set(devices.DEAD_LETTERS_KEY, 2)
    core.redis.hset(devices.UNKNOWN_DEVICES_KEY, mapping={"cnt-a": 5})
    with core.db.session() as s:
        s.add_all(
            [
                IngestDeadLetter(
                    topic="parkops/counters/cnt-a/events",
                    payload="{not json" + "x" * 500,
                    reason="payload is not valid JSON",
                    received_at=T0,
                ),
                IngestDeadLetter(
                    topic="parkops/sensors/spc-b/state",
                    payload='{"occupied": 1}',
                    reason="occupied missing or not a boolean",
                    received_at=T0 + timedelta(minutes=1),
                ),
            ]
        )
    client = login_as(Role.ADMIN)
    out = outputs_of(refresh_ingest(client, app))
    assert (out["ingest-messages"]["children"], out["ingest-dead-letters"]["children"]) == ("1,234", "2")
    assert out["ingest-unknown"]["children"] == "5"
    table = json.dumps(out["ingest-table"]["children"])
    assert '"type": "Code"' in table and "{not json" in table and "x" * 201 not in table
    assert "2026-03-02 09:01:00" in table and table.index("spc-b") < table.index("cnt-a")  # newest first
    assert [o["value"] for o in out["ingest-reason"]["options"]] == [
        "",
        "occupied missing or not a boolean",
        "payload is not valid JSON",
    ]

    only = json.dumps(
        outputs_of(refresh_ingest(client, app, "payload is not valid JSON"))["ingest-table"]["children"]
    )
    assert "cnt-a" in only and "spc-b" not in only
