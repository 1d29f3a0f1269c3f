"""The MQTT ingester: the one subscriber that turns counter and sensor feeds into live occupancy.

Why it is shaped this way:

* A fixed client id with a persistent session (``clean_session=False``), QoS 1 subscriptions and
  manual acknowledgements: paho's thread only queues messages; ``run_ingester`` applies them in
  batches and acknowledges a batch once it is applied. Stopped or killed at any point, nothing is
  lost (the broker redelivers what was not acknowledged) and nothing is counted twice (each event
  id is claimed atomically in Redis, in the same script that moves the count).
* Counts live in Redis (per lot: the counters' count and the occupied space sensors), so several
  ingesters or a redelivery cannot race; each batch then recomputes the live-device figure of the
  lot groups it touched and hands it to ``dashboard.services.occupancy`` (publish, history).
* Messages come from devices we do not control. ``parse_message`` is pure and strict; whatever
  fails it is kept in ``ingest_dead_letters`` with the reason, counted, and never stops the loop.
  Messages of unknown device ids are kept in ``unknown_device_messages`` for an admin to map.
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from sqlalchemy import or_, select, update

from dashboard.services.devices import DEVICE_ID_RE, DEVICES_CHANNEL
from dashboard.services.occupancy import (
    BELOW_ZERO_FLAG,
    FigureUpdate,
    LiveStore,
    Policy,
    Staleness,
    apply_figures,
    capacity_flag,
    load_policy,
)
from models import (
    DeviceKind,
    IngestDeadLetter,
    Lot,
    OccupancySource,
    SensingDevice,
    UnknownDeviceMessage,
    utcnow,
)
from workers.mqtt import make_client

if TYPE_CHECKING:  # the ingester process needs no Flask or Dash
    from dashboard.app import Core

log = logging.getLogger(__name__)

CLIENT_ID = "parkops-ingest"
MAX_PAYLOAD_BYTES = 4096
MESSAGES_KEY = "parkops:ingest:messages"
DEAD_LETTERS_KEY = "parkops:ingest:dead_letters"
UNKNOWN_DEVICES_KEY = "parkops:ingest:unknown_devices"
DUPLICATES_KEY = "parkops:ingest:duplicates"
MAX_EVENT_ID = 64
MAX_PLATE = 16
RECONNECT_MIN_SECONDS = 1
RECONNECT_MAX_SECONDS = 30
# A broker that accepted the TCP connection but never answered CONNECT (one going down as we
# reached it): without a limit the ingester would wait for the keepalive, 45 s, before retrying.
CONNECT_TIMEOUT_SECONDS = 5


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


_FEEDS = {feed.value: feed for feed in Feed}  # a dict look-up: this runs for every message


def _split_topic(topic: str, prefix: str) -> tuple[Feed, str]:
    head = f"{prefix}/"
    if not topic.startswith(head):
        raise BadMessage(f"topic outside {head}")
    parts = topic[len(head) :].split("/")
    if len(parts) != 3:
        raise BadMessage("unexpected topic shape")
    group, device_id, leaf = parts
    feed = _FEEDS.get(f"{group}/{leaf}")
    if feed is None:
        raise BadMessage("unexpected topic shape")
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
    # Sensors may omit event_id; the reading is then identified by sensor and time.
    event_id = (
        _text(data, "event_id", MAX_EVENT_ID) if "event_id" in data else f"{device_id}@{ts.isoformat()}"
    )
    return SensorState(device_id, ts, event_id, occupied)


# -- applying messages -------------------------------------------------------------------------
# Each script runs atomically in Redis, so concurrent ingesters (or a redelivery racing the
# original) cannot double-count: the event id is claimed with SET NX in the same step that moves
# the count. Return codes: -1 duplicate, -2 older than the last absolute count / reading.
SEEN_TTL_SECONDS = 7 * 24 * 3600
UNKNOWN_RECHECK_SECONDS = 1.0
# The script below spells these out too (Lua cannot format Python strings).
LOT_COUNTER_KEY = "parkops:occ:lot:{}:counter"
LOT_SENSORS_KEY = "parkops:occ:lot:{}:occupied-sensors"
DUPLICATE, OUT_OF_DATE = -1, -2

# One call applies a whole batch: ARGV[1] is the event-id TTL, then five fields per message:
#   e  lot  event_id   delta     ts     (a counter event, delta +1/-1)
#   c  lot  -          occupied  ts     capacity in the event_id slot (an absolute count)
#   s  lot  event_id   sensor    ts     occupied 1/0 appended to the kind: s1 / s0 (space sensor)
# It returns two numbers per message: the code (the new count, or -1 / -2) and 1 if a count was
# clamped at zero. One round trip per batch matters: per-command client overhead, not Redis, is
# what limits a Python ingester.
APPLY_BATCH_LUA = """
local ttl = ARGV[1]
local out = {}
for i = 2, #ARGV, 5 do
  local kind, lot, id, value, ts = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
  local code, clamped = 0, 0
  if kind == 'c' then
    local key = 'parkops:occ:lot:' .. lot .. ':counter'
    if ts < tonumber(redis.call('HGET', key, 'abs_ts') or '0') then
      code = -2
    else
      redis.call('HSET', key, 'count', value, 'capacity', id, 'abs_ts', ts)
      code = tonumber(value)
    end
  elseif redis.call('SET', 'parkops:occ:seen:' .. id, '1', 'NX', 'EX', ttl) == false then
    code = -1
  elseif kind == 'e' then
    local key = 'parkops:occ:lot:' .. lot .. ':counter'
    if ts < tonumber(redis.call('HGET', key, 'abs_ts') or '0') then
      code = -2
    else
      code = tonumber(redis.call('HGET', key, 'count') or '0') + tonumber(value)
      if code < 0 then code = 0; clamped = 1 end
      redis.call('HSET', key, 'count', code)
    end
  else
    local last = tonumber(redis.call('HGET', 'parkops:occ:sensor-ts', value) or '0')
    if ts < last then
      code = -2
    else
      local set = 'parkops:occ:lot:' .. lot .. ':occupied-sensors'
      redis.call('HSET', 'parkops:occ:sensor-ts', value, ts)
      if kind == 's1' then redis.call('SADD', set, value) else redis.call('SREM', set, value) end
      code = redis.call('SCARD', set)
    end
  end
  out[#out + 1] = code
  out[#out + 1] = clamped
end
return out
"""


@dataclass(frozen=True)
class Device:
    device_id: str
    kind: DeviceKind
    lot_id: int
    group_id: int | None
    active: bool


@dataclass(frozen=True)
class LotInfo:
    lot_id: int
    group_id: int | None
    capacity: int
    has_counter: bool
    has_sensors: bool


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    out_of_date: int = 0
    dead_letters: int = 0
    unknown: int = 0
    groups_changed: set[int] | None = None


class Ingester:
    """Applies messages in batches: one Redis round trip for the counts, one database transaction
    for what must be kept (dead letters, unknown devices' messages, history), then the caller
    acknowledges the batch. Safe to run again on a redelivered batch (see the Lua scripts)."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.prefix = core.settings.mqtt_topic_prefix
        self.store = LiveStore(core.redis)
        self._apply_batch = core.redis.register_script(APPLY_BATCH_LUA)
        self.devices: dict[str, Device] = {}
        self.lots: dict[int, LotInfo] = {}
        self.group_lots: dict[int, list[int]] = {}
        self.policy = Policy(Staleness(), step_percent=5, flag_above_percent=110)
        self._seen: dict[str, datetime] = {}
        self._refresh_needed = threading.Event()
        self._refreshed_at = 0.0
        self.refresh()

    # -- configuration ----------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload devices, lots and the occupancy policy from the database."""
        with self.core.db.session() as session:
            rows = session.execute(
                select(SensingDevice, Lot.lot_group_id).join(Lot, SensingDevice.lot_id == Lot.id)
            ).all()
            lots = session.execute(select(Lot.id, Lot.lot_group_id, Lot.capacity, Lot.is_active)).all()
            self.policy = load_policy(session, self.core.secrets)
        devices = {
            device.device_id: Device(device.device_id, device.kind, device.lot_id, group_id, device.is_active)
            for device, group_id in rows
        }
        counters = {d.lot_id for d in devices.values() if d.active and d.kind is DeviceKind.COUNTER}
        sensors = {d.lot_id for d in devices.values() if d.active and d.kind is DeviceKind.SPACE_SENSOR}
        lot_infos = {
            lot_id: LotInfo(lot_id, group_id, capacity, lot_id in counters, lot_id in sensors)
            for lot_id, group_id, capacity, active in lots
            if active
        }
        group_lots: dict[int, list[int]] = {}
        for info in lot_infos.values():
            if info.group_id is not None and (info.has_counter or info.has_sensors):
                group_lots.setdefault(info.group_id, []).append(info.lot_id)
        self.devices, self.lots, self.group_lots = devices, lot_infos, group_lots
        self._refreshed_at = time.monotonic()
        self._refresh_needed.clear()

    def request_refresh(self) -> None:
        self._refresh_needed.set()

    def refresh_if_due(self, max_age: float = 60.0) -> None:
        if self._refresh_needed.is_set() or time.monotonic() - self._refreshed_at > max_age:
            self.refresh()

    # -- messages ---------------------------------------------------------------------------
    def handle(self, topic: str, payload: bytes) -> ParsedMessage | None:
        """Parse and apply one message (a batch of one). Returns it, or None if dead-lettered."""
        parsed: list[ParsedMessage | None] = []
        self.process([(topic, payload)], parsed)
        return parsed[0]

    def process(
        self, batch: list[tuple[str, bytes]], parsed_out: list[ParsedMessage | None] | None = None
    ) -> BatchResult:
        """Apply a batch. Raises only when Redis or the database fail: the caller then retries the
        same batch (nothing is acknowledged), and the scripts make the retry harmless."""
        result = BatchResult(groups_changed=set())
        dead: list[IngestDeadLetter] = []
        kept: list[UnknownDeviceMessage] = []
        pipe = self.core.redis.pipeline(transaction=False)
        pending: list[Device] = []  # the script's messages, in order
        script_args: list[object] = [SEEN_TTL_SECONDS]
        unknown: Counter[str] = Counter()
        now = utcnow()
        for topic, payload in batch:
            message: ParsedMessage | None = None
            try:
                message = parse_message(topic, payload, self.prefix)
                device = self.devices.get(message.device_id)
                if device is None and time.monotonic() - self._refreshed_at > UNKNOWN_RECHECK_SECONDS:
                    # Perhaps registered a moment ago (an admin mapping it, with its kept messages
                    # being replayed right now): look again before keeping this one.
                    self.refresh()
                    device = self.devices.get(message.device_id)
                if device is None:
                    kept.append(
                        UnknownDeviceMessage(
                            device_id=message.device_id, topic=topic, payload=_text_of(payload)
                        )
                    )
                    unknown[message.device_id] += 1
                elif not device.active:
                    log.debug("ingest: message from deactivated device %s ignored", device.device_id)
                else:
                    expected = (
                        DeviceKind.SPACE_SENSOR if isinstance(message, SensorState) else DeviceKind.COUNTER
                    )
                    if device.kind is not expected:
                        raise BadMessage(f"device {device.device_id} is a {device.kind}, not a {expected}")
                    script_args.extend(_script_fields(message, device))
                    pending.append(device)
                    seen = min(message.ts, now)
                    if seen > self._seen.get(device.device_id, EPOCH):
                        self._seen[device.device_id] = seen
            except BadMessage as exc:
                message = None
                dead.append(
                    IngestDeadLetter(topic=topic[:255], payload=_text_of(payload), reason=exc.reason[:255])
                )
            if parsed_out is not None:
                parsed_out.append(message)
        if pending:
            self._apply_batch(args=script_args, client=pipe)
        for device_id, count in unknown.items():
            pipe.hincrby(UNKNOWN_DEVICES_KEY, device_id, count)
        result.unknown = sum(unknown.values())
        pipe.incrby(MESSAGES_KEY, len(batch))
        if dead:
            pipe.incrby(DEAD_LETTERS_KEY, len(dead))
        outcomes = pipe.execute()
        result.dead_letters = len(dead)
        touched_lots: set[int] = set()
        flags: dict[int, str] = {}
        codes = outcomes[0] if pending else []
        for index, device in enumerate(pending):
            # Recomputed even for duplicates: a retried batch must still publish the figure that
            # its first, failed attempt had already counted.
            touched_lots.add(device.lot_id)
            code, clamped = codes[2 * index], codes[2 * index + 1]
            if code == DUPLICATE:
                result.duplicates += 1
            elif code == OUT_OF_DATE:
                result.out_of_date += 1
            else:
                result.applied += 1
                if clamped:
                    flags[device.lot_id] = BELOW_ZERO_FLAG
        if result.duplicates:
            self.core.redis.incrby(DUPLICATES_KEY, result.duplicates)
        with self.core.db.session() as session:
            session.add_all(dead)
            session.add_all(kept)
            result.groups_changed = self._update_groups(session, touched_lots, flags, now)
        return result

    def _update_groups(self, session: Any, lots: set[int], flags: dict[int, str], now: datetime) -> set[int]:
        """Recompute the live-device figure of every group a batch touched, in one round trip."""
        group_ids = sorted({info.group_id for lot in lots if (info := self.lots.get(lot)) and info.group_id})
        updates = []
        for group_id, (occupied, capacity) in zip(group_ids, self.device_figures(group_ids), strict=True):
            flag = next((flags[lot] for lot in self.group_lots.get(group_id, []) if lot in flags), None)
            flag = capacity_flag(occupied, capacity, self.policy) or flag
            updates.append(FigureUpdate(group_id, OccupancySource.DEVICES, occupied, capacity, now, flag))
        return apply_figures(session, self.store, updates, step_percent=self.policy.step_percent)

    def device_figure(self, group_id: int) -> tuple[int, int]:
        return self.device_figures([group_id])[0]

    def device_figures(self, group_ids: list[int]) -> list[tuple[int, int]]:
        """(occupied, capacity) of groups from their devices: per lot, the counters' count when the
        lot has counters, else its occupied space sensors; the capacity a counter reported wins
        over the lot's configured one."""
        pipe = self.core.redis.pipeline(transaction=False)
        for group_id in group_ids:
            for lot_id in self.group_lots.get(group_id, []):
                if self.lots[lot_id].has_counter:
                    pipe.hmget(LOT_COUNTER_KEY.format(lot_id), "count", "capacity")
                else:
                    pipe.scard(LOT_SENSORS_KEY.format(lot_id))
        answers = iter(pipe.execute())
        figures = []
        for group_id in group_ids:
            occupied = capacity = 0
            for lot_id in self.group_lots.get(group_id, []):
                lot, value = self.lots[lot_id], next(answers)
                if lot.has_counter:
                    count, reported = value
                    occupied += int(count or 0)
                    capacity += int(reported) if reported else lot.capacity
                else:
                    occupied += int(value)
                    capacity += lot.capacity
            figures.append((occupied, capacity))
        return figures

    def flush_last_seen(self) -> None:
        """Write devices' last-seen times (batched: once every few seconds, not per message)."""
        if not self._seen:
            return
        seen, self._seen = self._seen, {}
        with self.core.db.session() as session:
            for device_id, ts in seen.items():
                session.execute(
                    update(SensingDevice)
                    .where(
                        SensingDevice.device_id == device_id,
                        or_(SensingDevice.last_seen_at.is_(None), SensingDevice.last_seen_at < ts),
                    )
                    .values(last_seen_at=ts)
                )


EPOCH = datetime.fromtimestamp(0, UTC)


def _script_fields(message: ParsedMessage, device: Device) -> tuple[object, ...]:
    """The five ``APPLY_BATCH_LUA`` fields of one message."""
    ts = message.ts.timestamp()
    if isinstance(message, CounterEvent):
        return ("e", device.lot_id, message.event_id, 1 if message.direction == "in" else -1, ts)
    if isinstance(message, CounterCount):
        return ("c", device.lot_id, message.capacity, message.occupied, ts)
    kind = "s1" if message.occupied else "s0"
    return (kind, device.lot_id, message.event_id, device.device_id, ts)


def _text_of(payload: bytes) -> str:
    return payload[:MAX_PAYLOAD_BYTES].decode("utf-8", errors="replace")


# -- the subscriber ----------------------------------------------------------------------------
BATCH_MAX = 1000
BATCH_WAIT_SECONDS = 0.02
RETRY_SECONDS = 2.0
SEEN_FLUSH_SECONDS = 5.0


def run_ingester(core: Core, stop: threading.Event, *, client_id: str = CLIENT_ID) -> None:
    """Subscribe and ingest until ``stop`` is set.

    One thread drives the network loop itself and, between reads, applies what arrived in batches
    and then acknowledges them (``manual_ack``): a message is acknowledged only once applied, so
    killed at any moment the ingester loses nothing (the broker redelivers to the persistent
    session) and double-counts nothing (event ids are claimed atomically). One thread rather than
    paho's network thread plus a worker: the two would only take turns on the GIL. Reconnects
    back off from 1 s to 30 s; a connection the broker does not answer within 5 s is dropped and
    tried again; every connect resubscribes.
    """
    ingester = Ingester(core)
    received: list[mqtt.MQTTMessage] = []
    client, address = make_client(core.mqtt_url, client_id, persistent=True, manual_ack=True)
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

    def on_subscribe(c: mqtt.Client, _u: object, _mid: int, reasons: list[Any], _p: object) -> None:
        refused = [str(reason) for reason in reasons if reason.is_failure]
        if refused:
            log.warning(
                "ingest: the broker refused a subscription (%s); subscribing again", ", ".join(refused)
            )
            c.subscribe(topics)
        else:
            log.info("ingest: subscribed to %s", ", ".join(topic for topic, _qos in topics))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = lambda _c, _u, msg: received.append(msg)
    pubsub = _watch_device_changes(core, ingester)
    delay = RECONNECT_MIN_SECONDS
    connected_before = False
    connecting_since = 0.0
    first_at = 0.0
    last_flush = time.monotonic()
    try:
        while not stop.is_set():
            if not client.is_connected() and client.socket() is None:
                received.clear()  # unacknowledged: the broker sends them again on the new session
                try:
                    if connected_before:
                        client.reconnect()
                    else:
                        client.connect(address.host, address.port, keepalive=30)
                        connected_before = True
                    delay = RECONNECT_MIN_SECONDS
                    connecting_since = time.monotonic()
                except OSError as exc:
                    log.warning("ingest: cannot reach the broker (%s); retrying in %ss", exc, delay)
                    stop.wait(delay)
                    delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                    continue
            elif not client.is_connected() and time.monotonic() - connecting_since > CONNECT_TIMEOUT_SECONDS:
                log.warning(
                    "ingest: the broker did not answer within %ss; connecting again", CONNECT_TIMEOUT_SECONDS
                )
                client.disconnect()  # closes the socket on the next loop, and the branch above reconnects
                connecting_since = time.monotonic()
            had = len(received)
            client.loop(timeout=0.001 if received else 0.25)
            if received and not had:
                first_at = time.monotonic()
            if received and (len(received) >= BATCH_MAX or time.monotonic() - first_at >= BATCH_WAIT_SECONDS):
                batch = received[:]
                received.clear()
                _apply_until_done(ingester, batch, stop)
                for msg in batch:
                    client.ack(msg.mid, msg.qos)
            if time.monotonic() - last_flush > SEEN_FLUSH_SECONDS:
                _quietly(ingester.flush_last_seen, "write last-seen times")
                _quietly(ingester.refresh_if_due, "reload devices")
                last_flush = time.monotonic()
    finally:
        client.disconnect()
        if pubsub is not None:
            pubsub.stop()
        _quietly(ingester.flush_last_seen, "write last-seen times")
        log.info("ingest: stopped")


def _apply_until_done(ingester: Ingester, batch: list[mqtt.MQTTMessage], stop: threading.Event) -> None:
    """Retry a batch while Redis or the database is down; nothing is acknowledged meanwhile."""
    while True:
        try:
            ingester.process([(msg.topic, msg.payload) for msg in batch])
            return
        except Exception:
            log.exception("ingest: could not apply %d messages; retrying in %ss", len(batch), RETRY_SECONDS)
            if stop.wait(RETRY_SECONDS):
                return


def _quietly(action: Any, what: str) -> None:
    try:
        action()
    except Exception:
        log.exception("ingest: could not %s", what)


def _watch_device_changes(core: Core, ingester: Ingester) -> Any:
    """Reload the device map as soon as an admin registers or maps a device."""
    try:
        pubsub = core.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(**{DEVICES_CHANNEL: lambda _message: ingester.request_refresh()})
        return pubsub.run_in_thread(sleep_time=1.0, daemon=True)
    except Exception:
        log.exception("ingest: device changes will be picked up by the periodic reload only")
        return None


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
