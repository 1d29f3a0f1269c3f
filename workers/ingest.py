"""The MQTT ingester: the one subscriber that turns counter and sensor feeds into ParkOps data.

Why it is shaped this way:

* A fixed client id with a persistent session (``clean_session=False``) and QoS 1 subscriptions:
  while the ingester is down (deploy, crash) the broker keeps the messages for it, and paho sends
  the PUBACK only after ``on_message`` returns, so a message is acknowledged once handled.
  Only one ingester may use the id at a time: a second one would take the session over.
* Messages come from devices we do not control. ``parse_message`` is pure and strict; whatever
  fails it, or fails while being applied, is kept in ``ingest_dead_letters`` with the reason and
  never stops the loop.
* Devices are matched by the id in the topic. Unknown ids are counted in Redis so the admin
  device-mapping screen can offer them; their messages are not stored.

The occupancy model itself (live counts, snapshots) comes later and plugs into ``Ingester.apply``.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from sqlalchemy import select

from models import DeviceKind, IngestDeadLetter, SensingDevice, utcnow
from workers.mqtt import make_client

if TYPE_CHECKING:  # the ingester process needs no Flask or Dash
    from dashboard.app import Core

log = logging.getLogger(__name__)

CLIENT_ID = "parkops-ingest"
MAX_PAYLOAD_BYTES = 4096
MESSAGES_KEY = "parkops:ingest:messages"
DEAD_LETTERS_KEY = "parkops:ingest:dead_letters"
UNKNOWN_DEVICES_KEY = "parkops:ingest:unknown_devices"
# Fits SensingDevice.device_id and keeps topic segments boring (no wildcards, no spaces).
DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$")
MAX_EVENT_ID = 64
MAX_PLATE = 16
RECONNECT_MIN_SECONDS = 1
RECONNECT_MAX_SECONDS = 30


class BadMessage(ValueError):
    """A message that cannot be used; ``reason`` is what the dead-letter list shows."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Feed(enum.StrEnum):
    """The three topics a device may publish on, relative to the prefix."""

    COUNTER_EVENTS = "counters/events"
    COUNTER_COUNT = "counters/count"
    SENSOR_STATE = "sensors/state"


@dataclass(frozen=True)
class CounterEvent:
    """A car passed a counting camera or gate."""

    device_id: str
    ts: datetime
    event_id: str
    direction: str
    plate: str | None


@dataclass(frozen=True)
class CounterCount:
    """An absolute reading from a counter; lets the occupancy model correct drift."""

    device_id: str
    ts: datetime
    occupied: int
    capacity: int


@dataclass(frozen=True)
class SensorState:
    """An in-ground sensor saw its space become occupied or free."""

    device_id: str
    ts: datetime
    event_id: str
    occupied: bool


ParsedMessage = CounterEvent | CounterCount | SensorState


def subscriptions(prefix: str) -> list[tuple[str, int]]:
    """Topic filters with QoS 1 (QoS 0 would let the broker drop messages for an absent session)."""
    return [
        (f"{prefix}/counters/+/events", 1),
        (f"{prefix}/counters/+/count", 1),
        (f"{prefix}/sensors/+/state", 1),
    ]


def _split_topic(topic: str, prefix: str) -> tuple[Feed, str]:
    head = f"{prefix}/"
    if not topic.startswith(head):
        raise BadMessage(f"topic outside {head}")
    parts = topic[len(head) :].split("/")
    if len(parts) != 3:
        raise BadMessage("unexpected topic shape")
    group, device_id, leaf = parts
    try:
        feed = Feed(f"{group}/{leaf}")
    except ValueError:
        raise BadMessage("unexpected topic shape") from None
    if not DEVICE_ID_RE.match(device_id):
        raise BadMessage("malformed device id in topic")
    return feed, device_id


def _decode(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise BadMessage(f"payload too large ({len(payload)} bytes > {MAX_PAYLOAD_BYTES})")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise BadMessage("payload is not UTF-8") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise BadMessage("payload is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadMessage("payload is not a JSON object")
    return data


def _timestamp(data: dict[str, Any]) -> datetime:
    value = data.get("ts")
    if not isinstance(value, str):
        raise BadMessage("ts missing or not a string")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise BadMessage("ts is not ISO-8601") from None
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise BadMessage("ts has no time zone")
    return ts


def _text(data: dict[str, Any], field: str, max_len: int) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value.strip():
        raise BadMessage(f"{field} missing or not a non-empty string")
    if len(value) > max_len:
        raise BadMessage(f"{field} longer than {max_len} characters")
    return value


def _count(data: dict[str, Any], field: str) -> int:
    value = data.get(field)
    # bool is an int subclass: true/false is a type error here, not 1/0.
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadMessage(f"{field} missing or not an integer")
    if value < 0:
        raise BadMessage(f"{field} is negative")
    return value


def parse_message(topic: str, payload: bytes, prefix: str) -> ParsedMessage:
    """Validate one message; raise ``BadMessage`` with a short reason if it is unusable.

    Unknown extra fields are ignored, so devices can send more than we read.
    """
    feed, device_id = _split_topic(topic, prefix)
    data = _decode(payload)
    ts = _timestamp(data)
    if feed is Feed.COUNTER_EVENTS:
        direction = data.get("direction")
        if direction not in ("in", "out"):
            raise BadMessage("direction must be 'in' or 'out'")
        plate = data.get("plate")
        if plate is not None and (not isinstance(plate, str) or len(plate) > MAX_PLATE):
            raise BadMessage(f"plate must be a string of at most {MAX_PLATE} characters")
        return CounterEvent(device_id, ts, _text(data, "event_id", MAX_EVENT_ID), direction, plate or None)
    if feed is Feed.COUNTER_COUNT:
        # occupied > capacity is accepted: counters drift, and clamping is the model's decision.
        return CounterCount(device_id, ts, _count(data, "occupied"), _count(data, "capacity"))
    occupied = data.get("occupied")
    if not isinstance(occupied, bool):
        raise BadMessage("occupied missing or not a boolean")
    return SensorState(device_id, ts, _text(data, "event_id", MAX_EVENT_ID), occupied)


class Ingester:
    """Handles one message at a time; safe to call from paho's network thread."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.prefix = core.settings.mqtt_topic_prefix

    def handle(self, topic: str, payload: bytes) -> ParsedMessage | None:
        """Parse and apply one message. Returns what was applied, or None if it was dead-lettered."""
        try:
            message = parse_message(topic, payload, self.prefix)
            self.apply(message)
        except BadMessage as exc:
            self._dead_letter(topic, payload, exc.reason)
            return None
        except Exception as exc:
            log.exception("ingest: failed to handle a message on %s", topic)
            self._dead_letter(topic, payload, f"handler error: {type(exc).__name__}: {exc}"[:255])
            return None
        return message

    def apply(self, message: ParsedMessage) -> None:
        """Record that the device spoke; unknown devices are only counted (the mapping UI lists them)."""
        expected = DeviceKind.SPACE_SENSOR if isinstance(message, SensorState) else DeviceKind.COUNTER
        with self.core.db.session() as session:
            device = session.scalar(select(SensingDevice).where(SensingDevice.device_id == message.device_id))
            if device is not None:
                if device.kind is not expected:
                    raise BadMessage(f"device {device.device_id} is a {device.kind}, not a {expected}")
                # The device's own clock, but never in the future and never moving backwards:
                # replayed (persistent-session) messages must not make a device look older.
                seen = min(message.ts, utcnow())
                if device.last_seen_at is None or seen > device.last_seen_at:
                    device.last_seen_at = seen
        if device is None:
            self.core.redis.hincrby(UNKNOWN_DEVICES_KEY, message.device_id, 1)
        self.core.redis.incr(MESSAGES_KEY)

    def _dead_letter(self, topic: str, payload: bytes, reason: str) -> None:
        text = payload[:MAX_PAYLOAD_BYTES].decode("utf-8", errors="replace")
        with self.core.db.session() as session:
            session.add(IngestDeadLetter(topic=topic[:255], payload=text, reason=reason[:255]))
        self.core.redis.incr(DEAD_LETTERS_KEY)


def run_ingester(core: Core, stop: threading.Event, *, client_id: str = CLIENT_ID) -> None:
    """Subscribe and ingest until ``stop`` is set. paho's thread reconnects with exponential
    backoff (1 s .. 30 s) and resubscribes on every connect; the session keeps what was missed."""
    ingester = Ingester(core)
    client, address = make_client(core.mqtt_url, client_id, persistent=True)
    client.reconnect_delay_set(RECONNECT_MIN_SECONDS, RECONNECT_MAX_SECONDS)
    topics = subscriptions(ingester.prefix)

    def on_connect(c: mqtt.Client, _u: object, flags: Any, reason: Any, _p: object) -> None:
        if reason.is_failure:
            log.warning("ingest: broker refused the connection: %s", reason)
            return
        log.info(
            "ingest: connected to %s:%s (session present: %s)",
            address.host,
            address.port,
            flags.session_present,
        )
        c.subscribe(topics)

    def on_disconnect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        if not stop.is_set():
            log.warning("ingest: disconnected (%s); reconnecting", reason)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            ingester.handle(msg.topic, msg.payload)
        except Exception:
            # Even dead-lettering failed (database or Redis down): log, keep the loop alive.
            log.exception("ingest: could not record a message on %s", msg.topic)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_message = on_message
    client.connect_async(address.host, address.port, keepalive=30)
    client.loop_start()
    try:
        stop.wait()
    finally:
        client.disconnect()
        client.loop_stop()
        log.info("ingest: stopped")


def start_ingester_thread(
    core: Core, stop: threading.Event, *, client_id: str = CLIENT_ID
) -> threading.Thread:
    """Run the ingester in a daemon thread (``parkops run`` with embedded services)."""
    thread = threading.Thread(
        target=run_ingester,
        args=(core, stop),
        kwargs={"client_id": client_id},
        name="parkops-ingest",
        daemon=True,
    )
    thread.start()
    return thread
