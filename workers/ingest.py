"""The MQTT ingester: the one subscriber that turns counter and sensor feeds into live occupancy.

Why it is shaped this way:

* A fixed client id with a persistent session (``clean_session=False``), QoS 1 subscriptions and
  manual acknowledgements: paho only hands messages over; ``run_ingester`` applies them in
  batches and acknowledges a message once it is applied, never before (not even when stopping:
  the broker redelivers what was not acknowledged). Killed or stopped at any point, nothing is
  lost and nothing is counted twice (each message is claimed atomically in Redis, in the same
  script that moves the count). Exactly one ingester runs: a Redis lock refuses a second one.
* Two threads, because a batch's Redis and database round trips are waiting, not work: one
  thread reads the next batch while the other applies this one (one thread doing both spent a
  quarter of its time waiting). The reading thread owns the paho client, since paho 2.2's ``ack``
  writes to the socket at once and is not safe beside another thread's writes; the applying
  thread hands the applied messages back for it to acknowledge. The hand-off holds at most one
  batch besides the one being applied (then the reading thread stops reading and TCP holds the
  broker back), and batches are applied one at a time, in order, a failed one first again.
* Counts live in Redis (per lot: the counters' count, the events newer than the last absolute
  count, and the occupied space sensors), so a redelivery cannot race; each batch then recomputes
  the live-device figure of the lot groups it touched and hands it to
  ``dashboard.services.occupancy`` (publish, history). Every second the changed lots' state is
  copied to ``lot_device_states``, from which it is rebuilt if Redis comes back empty.
* Messages come from devices we do not control. ``parse_message`` is pure and strict; whatever
  fails it is kept in ``ingest_dead_letters`` with the reason, counted, and never stops the loop.
  A message that passes it and still cannot be applied (a "poison" message: the database refuses
  something in it) is isolated by splitting the batch and dead-lettered alone, so the feed flows
  on; a failure every message shares (Redis or the database down) keeps them all waiting,
  unacknowledged, and shows as a stuck ingester (``dashboard.services.feed_health``).
  Messages of unknown device ids are kept in ``unknown_device_messages`` for an admin to map.

Why this module is long: the subscriber and its two threads, its batch apply (one Redis script),
the ack-after-apply rule, the dead letters, the rebuild of the live state and the lock's lifecycle
share one state machine and its invariants (nothing lost, nothing counted twice); split across
modules, each half would have to re-state them.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import itertools
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from select import select as select_sockets
from typing import TYPE_CHECKING, Any

import orjson
import paho.mqtt.client as mqtt
import redis
from redis.typing import EncodableT
from sqlalchemy import desc, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dashboard.services.devices import (
    DEAD_LETTERS_KEY,
    DEVICE_ID_RE,
    DEVICES_CHANNEL,
    DUPLICATES_KEY,
    MESSAGES_KEY,
    UNKNOWN_DEVICES_KEY,
)
from dashboard.services.feed_health import LOCK_KEY, SESSIONS_LOST_KEY, STATUS_KEY
from dashboard.services.occupancy import (
    BELOW_ZERO_FLAG,
    FigureUpdate,
    LiveStore,
    Policy,
    Staleness,
    apply_figures,
    capacity_flag,
    load_policy,
    restore_figures,
)
from models import (
    DeviceKind,
    IngestDeadLetter,
    Lot,
    LotDeviceState,
    OccupancySnapshot,
    OccupancySource,
    SensingDevice,
    UnknownDeviceMessage,
    utcnow,
)
from workers import ingest_lock
from workers.ingest_lock import IngestLock, holder_text
from workers.mqtt import make_read_ahead_client

if TYPE_CHECKING:  # the ingester process needs no Flask or Dash
    from dashboard.core import Core

log = logging.getLogger(__name__)

CLIENT_ID = "parkops-ingest"
MAX_PAYLOAD_BYTES = 4096
MAX_EVENT_ID = 64
MAX_PLATE = 16
# Far above any real lot, far below the database's INTEGER: a larger figure is a broken device.
MAX_FIGURE = 1_000_000
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
    """An absolute reading from a counter, as of ``ts``; lets the occupancy model correct drift.
    ``event_id`` is the device's id for it, or "device@time" when it sent none: the same reading
    delivered twice is one reading."""

    device_id: str
    ts: datetime
    occupied: int
    capacity: int
    event_id: str


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
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@functools.lru_cache(maxsize=8192)
def _split_topic(topic: str, prefix: str) -> tuple[Feed, str]:
    """Cached: each device publishes on the same few topics, so after its first message this is a
    dictionary look-up (a topic it refuses raises every time: exceptions are not cached)."""
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
    """orjson (compiled) decodes what nearly every device sends; only a payload it refuses goes
    through the standard library, which gives the reason and accepts what orjson is stricter
    about (integers beyond 64 bits, NaN, lone surrogates), so the result is the same as before
    and the per-message cost is orjson's."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise BadMessage(f"payload too large ({len(payload)} bytes > {MAX_PAYLOAD_BYTES})")
    if b"\x00" in payload:
        raise BadMessage("payload holds a NUL byte")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
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
    # "\u0000" and friends: no id or plate has them, and a database may refuse them.
    if _CONTROL.search(value):
        raise BadMessage(f"{field} holds control characters")
    return value


def _count(data: dict[str, Any], field: str) -> int:
    value = data.get(field)
    # bool is an int subclass: true/false is a type error here, not 1/0.
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadMessage(f"{field} missing or not an integer")
    if value < 0:
        raise BadMessage(f"{field} is negative")
    if value > MAX_FIGURE:
        raise BadMessage(f"{field} is larger than {MAX_FIGURE:,}")
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
        if plate is not None:
            if not isinstance(plate, str) or len(plate) > MAX_PLATE:
                raise BadMessage(f"plate must be a string of at most {MAX_PLATE} characters")
            if _CONTROL.search(plate):
                raise BadMessage("plate holds control characters")
        return CounterEvent(device_id, ts, _text(data, "event_id", MAX_EVENT_ID), direction, plate or None)
    if feed is Feed.COUNTER_COUNT:
        # occupied > capacity is accepted: counters drift, and clamping is the model's decision.
        event_id = (
            _text(data, "event_id", MAX_EVENT_ID)
            if "event_id" in data
            else f"{device_id}@{ts.astimezone(UTC).isoformat()}"
        )
        return CounterCount(device_id, ts, _count(data, "occupied"), _count(data, "capacity"), event_id)
    occupied = data.get("occupied")
    if not isinstance(occupied, bool):
        raise BadMessage("occupied missing or not a boolean")
    # Sensors may omit event_id; the reading is then identified by sensor and time.
    event_id = (
        _text(data, "event_id", MAX_EVENT_ID) if "event_id" in data else f"{device_id}@{ts.isoformat()}"
    )
    return SensorState(device_id, ts, event_id, occupied)


# -- applying messages -------------------------------------------------------------------------
# The batch script runs atomically in Redis, so a redelivery racing the original cannot double-
# count: each message is claimed with SET NX in the same step that moves the count. The claim's
# value is the delivery's token, so the ingester's own retry of a delivery it already applied
# (a batch whose database part failed) is told apart from a redelivered or repeated message.
SEEN_TTL_SECONDS = 7 * 24 * 3600
UNKNOWN_RECHECK_SECONDS = 1.0
# Events newer than a lot's last absolute count are kept (per lot, by time) so that a count is
# applied as of its own time: count + the events after it. Counts arrive every few minutes; an
# hour (and at most this many events per lot) bounds the memory of a lot whose counter sends none.
RECENT_WINDOW_SECONDS = 3600
RECENT_MAX_EVENTS = 20_000
# The script below spells these out too (Lua cannot format Python strings).
LOT_COUNTER_KEY = "parkops:occ:lot:{}:counter"
LOT_RECENT_KEY = "parkops:occ:lot:{}:recent"
LOT_SENSORS_KEY = "parkops:occ:lot:{}:occupied-sensors"
SENSOR_TS_KEY = "parkops:occ:sensor-ts"
# Set once the live state is in place (kept, or rebuilt from the database): a Redis that lost it
# (restarted without persistence, flushed) has no such key, and the script then refuses to run.
LIVE_KEY = "parkops:occ:live"
DUPLICATE, OUT_OF_DATE, ALREADY_APPLIED, STATE_LOST = -1, -2, -3, -9

# One call applies a whole batch and reads back the lots the caller needs (those of the lot
# groups the batch touched). ARGV[1..4] are the claim TTL, the ingester's clock (epoch seconds),
# the recent-events window and its size limit; ARGV[5] the number of lots to read back, then one
# argument per lot ("c<id>" counted by counters, "s<id>" by sensors), then seven fields per message:
#   e   lot  event_id  token  delta     -         ts   (a counter event, delta +1/-1)
#   c   lot  event_id  token  occupied  capacity  ts   (an absolute count, as of ts)
#   s1  lot  event_id  token  -         sensor    ts   (a space sensor occupied; s0: free)
# It returns two numbers per message: the code (the new count, or -1 duplicate, -2 older than
# the last absolute count / reading, -3 already applied by this very delivery) and 1 if a count
# was clamped at zero; then each lot's state (count, capacity, time of the last count; or the
# occupied sensors); or the single code -9 when the live state is missing. Times go to Redis as
# the strings they arrived as (a Lua number prints with 14 digits, losing the microseconds).
# One round trip per batch matters: per-command client overhead, not Redis, limits an ingester.
APPLY_BATCH_LUA = """
if redis.call('EXISTS', 'parkops:occ:live') == 0 then return {-9} end
local ttl, now_s, window, keep = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = tonumber(now_s)
local out, counted, states, lot_state = {}, {}, {}, {}
local lots = tonumber(ARGV[5])
for i = 6 + lots, #ARGV, 7 do
  local kind, lot, id, token, value, extra, ts_s = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],
    ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local ts = tonumber(ts_s)
  local code, clamped = 0, 0
  local seen = 'parkops:occ:seen:' .. id
  if not redis.call('SET', seen, token, 'NX', 'EX', ttl) then
    if redis.call('GET', seen) == token then code = -3 else code = -1 end
  elseif kind == 's1' or kind == 's0' then
    local last = tonumber(redis.call('HGET', 'parkops:occ:sensor-ts', extra) or '0')
    if ts < last then
      code = -2
    else
      local set = 'parkops:occ:lot:' .. lot .. ':occupied-sensors'
      redis.call('HSET', 'parkops:occ:sensor-ts', extra, ts_s)
      if kind == 's1' then redis.call('SADD', set, extra) else redis.call('SREM', set, extra) end
      code = redis.call('SCARD', set)
    end
  else
    local key = 'parkops:occ:lot:' .. lot .. ':counter'
    local recent = 'parkops:occ:lot:' .. lot .. ':recent'
    -- A lot's counter state is read once per batch and its count written once at the end (below):
    -- two Redis calls per event (the claim and the ZADD) instead of four.
    local state = lot_state[lot]
    if state == nil then
      local stored = redis.call('HMGET', key, 'count', 'abs_ts', 'trim_ts')
      state = {count = tonumber(stored[1] or '0'), abs = tonumber(stored[2] or '0'),
               trim = tonumber(stored[3] or '0'), dirty = false}
      lot_state[lot] = state
    end
    local count = state.count
    if ts < state.abs or (kind == 'c' and ts <= state.trim) then
      code = -2
    elseif kind == 'e' then
      local delta = tonumber(value)
      count = count + delta
      if count < 0 then count = 0; clamped = 1 end
      state.count, state.dirty = count, true
      -- a device clock running ahead must not keep its events "after" every later count
      redis.call('ZADD', recent, ts > now and now_s or ts_s, value .. ':' .. id)
      counted[lot] = true
      code = count
    else
      count = tonumber(value)
      for _, member in ipairs(redis.call('ZRANGEBYSCORE', recent, ts_s, '+inf')) do
        count = count + tonumber(string.match(member, '^(-?%d+):'))
      end
      redis.call('ZREMRANGEBYSCORE', recent, '-inf', '(' .. ts_s)
      if count < 0 then count = 0; clamped = 1 end
      redis.call('HSET', key, 'count', count, 'capacity', extra, 'abs_ts', ts_s)
      state.count, state.abs, state.dirty = count, ts, false
      code = count
    end
  end
  out[#out + 1] = code
  out[#out + 1] = clamped
end
for lot, state in pairs(lot_state) do
  if state.dirty then redis.call('HSET', 'parkops:occ:lot:' .. lot .. ':counter', 'count', state.count) end
end
-- Forget events older than the window, or beyond the size limit; trim_ts records how far, so
-- that a count older than that (whose later events are partly gone) is refused as out of date.
for lot in pairs(counted) do
  local recent = 'parkops:occ:lot:' .. lot .. ':recent'
  local cutoff = string.format('%.6f', now - window)
  local trimmed = nil
  if redis.call('ZREMRANGEBYSCORE', recent, '-inf', '(' .. cutoff) > 0 then trimmed = tonumber(cutoff) end
  local excess = redis.call('ZCARD', recent) - keep
  if excess > 0 then
    local last = redis.call('ZRANGE', recent, excess - 1, excess - 1, 'WITHSCORES')
    redis.call('ZREMRANGEBYRANK', recent, 0, excess - 1)
    if trimmed == nil or tonumber(last[2]) > trimmed then trimmed = tonumber(last[2]) end
  end
  if trimmed ~= nil then
    local key = 'parkops:occ:lot:' .. lot .. ':counter'
    if trimmed > tonumber(redis.call('HGET', key, 'trim_ts') or '0') then
      redis.call('HSET', key, 'trim_ts', string.format('%.6f', trimmed))
    end
  end
end
for j = 6, 5 + lots do
  local lot = string.sub(ARGV[j], 2)
  if string.sub(ARGV[j], 1, 1) == 'c' then
    local key = 'parkops:occ:lot:' .. lot .. ':counter'
    states[#states + 1] = redis.call('HMGET', key, 'count', 'capacity', 'abs_ts')
  else
    states[#states + 1] = redis.call('SMEMBERS', 'parkops:occ:lot:' .. lot .. ':occupied-sensors')
  end
end
return {out, states}
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


@dataclass(frozen=True)
class LotLive:
    """One lot's live state as Redis holds it (what ``lot_device_states`` keeps a copy of)."""

    count: int | None = None
    reported_capacity: int | None = None
    count_ts: float | None = None
    sensors: tuple[str, ...] = ()


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    out_of_date: int = 0
    dead_letters: int = 0
    unknown: int = 0
    groups_changed: set[int] = field(default_factory=set)


class Ingester:
    """Applies messages in batches: one Redis round trip for the counts, one database transaction
    for what must be kept (dead letters, unknown devices' messages, history), then the caller
    acknowledges the batch. Safe to run again on a retried or redelivered batch. The lots' live
    state is copied to the database apart, about once a second (``save_lot_states``)."""

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
        self._unsaved: set[int] = set()  # lots changed since their state was last saved
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
        self,
        batch: Sequence[tuple[str, bytes]],
        parsed_out: list[ParsedMessage | None] | None = None,
        tokens: Sequence[str] | None = None,
    ) -> BatchResult:
        """Apply a batch. ``tokens`` name each delivery (the same message object, tried again,
        keeps its token); fresh ones by default. Raises when Redis or the database fail: nothing
        is acknowledged then, and applying the same deliveries again is harmless. The feed's
        counters move only once the batch is kept."""
        if tokens is None:
            base = uuid.uuid4().hex
            tokens = [f"{base}.{n}" for n in range(len(batch))]
        result = BatchResult()
        dead: list[IngestDeadLetter] = []
        kept: list[UnknownDeviceMessage] = []
        pending: list[Device] = []  # the script's messages, in order
        script_args: list[EncodableT] = []
        unknown: Counter[str] = Counter()
        now = utcnow()
        for (topic, payload), token in zip(batch, tokens, strict=True):
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
                            device_id=message.device_id, topic=_clean(topic)[:255], payload=_text_of(payload)
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
                    script_args.extend(_script_fields(message, device, token))
                    pending.append(device)
                    seen = min(message.ts, now)
                    if seen > self._seen.get(device.device_id, EPOCH):
                        self._seen[device.device_id] = seen
            except BadMessage as exc:
                message = None
                dead.append(_dead_letter(topic, payload, exc.reason))
            if parsed_out is not None:
                parsed_out.append(message)
        touched_lots = {device.lot_id for device in pending}
        group_ids = sorted(
            {info.group_id for lot in touched_lots if (info := self.lots.get(lot)) and info.group_id}
        )
        wanted = [
            self.lots[lot_id]
            for lot_id in sorted(
                {*touched_lots, *(lot for g in group_ids for lot in self.group_lots.get(g, []))}
            )
            if lot_id in self.lots
        ]
        codes, live = self._run_script(script_args, wanted) if pending else ([], {})
        result.dead_letters = len(dead)
        result.unknown = sum(unknown.values())
        flags: dict[int, str] = {}
        # Every touched group is recomputed, even for duplicates: a retried batch must still
        # publish the figure that its first, failed attempt had already counted.
        for index, device in enumerate(pending):
            code, clamped = codes[2 * index], codes[2 * index + 1]
            if code == DUPLICATE:
                result.duplicates += 1
            elif code == OUT_OF_DATE:
                result.out_of_date += 1
            else:
                result.applied += 1
                if clamped:
                    flags[device.lot_id] = BELOW_ZERO_FLAG
        with self.core.db.session() as session:
            session.add_all(dead)
            session.add_all(kept)
            result.groups_changed = self._update_groups(session, group_ids, live, flags, now)
        self._unsaved |= touched_lots
        self._count(len(batch), len(dead), unknown, result.duplicates)
        return result

    def _run_script(
        self, script_args: list[EncodableT], lots: list[LotInfo]
    ) -> tuple[list[int], dict[int, LotLive]]:
        header: list[EncodableT] = [
            SEEN_TTL_SECONDS,
            repr(time.time()),
            RECENT_WINDOW_SECONDS,
            RECENT_MAX_EVENTS,
            len(lots),
        ]
        wanted = [f"{'c' if lot.has_counter else 's'}{lot.lot_id}" for lot in lots]
        answer = self._apply_batch(args=[*header, *wanted, *script_args])
        if answer == [STATE_LOST]:
            log.warning("ingest: Redis lost the live occupancy state; rebuilding it from the database")
            self.rebuild()
            answer = self._apply_batch(args=[*header, *wanted, *script_args])
        codes, states = answer
        return codes, {lot.lot_id: _lot_live(lot, state) for lot, state in zip(lots, states, strict=True)}

    def _count(self, messages: int, dead: int, unknown: Counter[str], duplicates: int) -> None:
        """The feed's counters, once the batch is kept (a retried batch must not inflate them).
        Statistics only: a failure here is logged, never a reason to apply the batch again."""
        try:
            pipe = self.core.redis.pipeline(transaction=False)
            pipe.incrby(MESSAGES_KEY, messages)
            if dead:
                pipe.incrby(DEAD_LETTERS_KEY, dead)
            for device_id, count in unknown.items():
                pipe.hincrby(UNKNOWN_DEVICES_KEY, device_id, count)
            if duplicates:
                pipe.incrby(DUPLICATES_KEY, duplicates)
            pipe.execute()
        except redis.RedisError:
            log.warning("ingest: could not update the feed counters", exc_info=True)

    def dead_letter(self, topic: str, payload: bytes, reason: str) -> None:
        """Keep one message that could not be applied (a poison message) as a dead letter."""
        with self.core.db.session() as session:
            session.add(_dead_letter(topic, payload, reason))
        self._count(1, 1, Counter(), 0)

    def _update_groups(
        self,
        session: Session,
        group_ids: list[int],
        live: dict[int, LotLive],
        flags: dict[int, str],
        now: datetime,
    ) -> set[int]:
        """Recompute the live-device figure of every group a batch touched."""
        updates = []
        for group_id in group_ids:
            occupied, capacity = self._group_figure(group_id, live)
            flag = next((flags[lot] for lot in self.group_lots.get(group_id, []) if lot in flags), None)
            flag = capacity_flag(occupied, capacity, self.policy) or flag
            updates.append(FigureUpdate(group_id, OccupancySource.DEVICES, occupied, capacity, now, flag))
        return apply_figures(session, self.store, updates, step_percent=self.policy.step_percent)

    def device_figure(self, group_id: int) -> tuple[int, int]:
        return self.device_figures([group_id])[0]

    def device_figures(self, group_ids: list[int]) -> list[tuple[int, int]]:
        """(occupied, capacity) of groups from their devices (see ``_group_figure``)."""
        live = self._read_lots({lot for g in group_ids for lot in self.group_lots.get(g, [])})
        return [self._group_figure(group_id, live) for group_id in group_ids]

    def _group_figure(self, group_id: int, live: dict[int, LotLive]) -> tuple[int, int]:
        """Per lot, the counters' count when the lot has counters, else its occupied space
        sensors; the capacity a counter reported wins over the lot's configured one."""
        occupied = capacity = 0
        for lot_id in self.group_lots.get(group_id, []):
            lot, state = self.lots[lot_id], live[lot_id]
            if lot.has_counter:
                occupied += state.count or 0
                capacity += state.reported_capacity if state.reported_capacity is not None else lot.capacity
            else:
                occupied += len(state.sensors)
                capacity += lot.capacity
        return occupied, capacity

    def _read_lots(self, lot_ids: set[int]) -> dict[int, LotLive]:
        """The live state of device-counted lots, in one round trip."""
        return self._read_lots_checked(lot_ids, check_live=False) or {}

    def _read_lots_checked(self, lot_ids: set[int], *, check_live: bool = True) -> dict[int, LotLive] | None:
        """As ``_read_lots``, but None when Redis lost the live state (checked in the same
        transaction): empty lots then are not the lots' state."""
        lots = [self.lots[lot_id] for lot_id in sorted(lot_ids) if lot_id in self.lots]
        pipe = self.core.redis.pipeline(transaction=check_live)
        if check_live:
            pipe.exists(LIVE_KEY)
        for lot in lots:
            if lot.has_counter:
                pipe.hmget(LOT_COUNTER_KEY.format(lot.lot_id), "count", "capacity", "abs_ts")
            else:
                pipe.smembers(LOT_SENSORS_KEY.format(lot.lot_id))
        answers = pipe.execute() if lots or check_live else []
        if check_live and not answers.pop(0):
            return None
        return {lot.lot_id: _lot_live(lot, value) for lot, value in zip(lots, answers, strict=True)}

    # -- the live state: kept in the database, rebuilt from it -------------------------------------
    def ensure_live_state(self) -> None:
        """On start: if Redis holds the live state, save all of it (so the copy is complete);
        if Redis lost it, rebuild it. A Redis from before ``LIVE_KEY`` existed is adopted."""
        redis_client = self.core.redis
        if not redis_client.exists(LIVE_KEY):
            device_lots = [lot for lot in self.lots.values() if lot.has_counter or lot.has_sensors]
            pipe = redis_client.pipeline(transaction=False)
            for lot in device_lots:
                pipe.exists(LOT_COUNTER_KEY.format(lot.lot_id), LOT_SENSORS_KEY.format(lot.lot_id))
            if not any(pipe.execute() if device_lots else []):
                self.rebuild()
                return
            redis_client.set(LIVE_KEY, repr(time.time()))
        self._unsaved |= {lot.lot_id for lot in self.lots.values() if lot.has_counter or lot.has_sensors}
        self.save_lot_states()

    def save_lot_states(self) -> None:
        """Save the live state of the lots changed since the last save (the run loop calls this
        every ``SAVE_SECONDS``, so a rebuild misses at most that much), in one statement. Its
        commit need not wait for the disk: a database crash would lose the same second again."""
        if not self._unsaved:
            return
        lots, self._unsaved = self._unsaved, set()
        try:
            live = self._read_lots_checked(lots)
            if live is None:  # Redis lost the state: keep the copy as it is for the rebuild
                return
            with self.core.db.session() as session:
                if session.get_bind().dialect.name == "postgresql":
                    session.execute(text("SET LOCAL synchronous_commit TO OFF"))
                _save_lot_states(session, live, utcnow())
        except Exception:
            self._unsaved |= lots
            raise

    def rebuild(self) -> list[int]:
        """Put the live state back from ``lot_device_states`` after Redis lost it, and show each
        device-counted group's figure as restored (stale) until its devices report again. Counts
        taken before now are refused from here on: the events between them and now are gone with
        the old state, so such a count cannot be brought up to date. Returns the restored groups."""
        now = utcnow()
        with self.core.db.session() as session:
            saved = {row.lot_id: row for row in session.scalars(select(LotDeviceState))}
            bare = [
                group_id
                for group_id, lots in self.group_lots.items()
                if not any(lot in saved for lot in lots)
            ]
            snapshots = _last_device_snapshots(session, bare)
        pipe = self.core.redis.pipeline(transaction=True)
        restored_at: dict[int, datetime] = {}
        for group_id, lots in self.group_lots.items():
            for lot_id in lots:
                lot, state = self.lots[lot_id], saved.get(lot_id)
                if state is None:
                    continue
                restored_at[group_id] = max(restored_at.get(group_id, state.saved_at), state.saved_at)
                if lot.has_counter and state.count is not None:
                    mapping: dict[EncodableT, EncodableT] = {
                        "count": state.count,
                        "trim_ts": repr(now.timestamp()),
                    }
                    if state.reported_capacity is not None:
                        mapping["capacity"] = state.reported_capacity
                    if state.count_ts is not None:
                        mapping["abs_ts"] = repr(state.count_ts)
                    pipe.delete(LOT_COUNTER_KEY.format(lot_id), LOT_RECENT_KEY.format(lot_id))
                    pipe.hset(LOT_COUNTER_KEY.format(lot_id), mapping=mapping)
                elif lot.has_sensors:
                    pipe.delete(LOT_SENSORS_KEY.format(lot_id))
                    members = json.loads(state.occupied_sensors or "[]")
                    if members:
                        pipe.sadd(LOT_SENSORS_KEY.format(lot_id), *members)
        display: dict[int, tuple[int, int, datetime]] = {}
        for group_id, snapshot in snapshots.items():
            # No lot of this group was ever saved (state from before lot_device_states): its last
            # history row is all there is. A single counted lot can resume from it exactly.
            lots = self.group_lots[group_id]
            if len(lots) == 1 and self.lots[lots[0]].has_counter:
                pipe.hset(
                    LOT_COUNTER_KEY.format(lots[0]),
                    mapping={"count": snapshot.occupied, "trim_ts": repr(now.timestamp())},
                )
                restored_at[group_id] = snapshot.recorded_at
            else:
                display[group_id] = (snapshot.occupied, snapshot.capacity, snapshot.recorded_at)
        pipe.set(LIVE_KEY, repr(now.timestamp()))
        pipe.execute()
        figures = dict(zip(restored_at, self.device_figures(list(restored_at)), strict=True))
        updates = [
            FigureUpdate(group_id, OccupancySource.DEVICES, occupied, capacity, at, self._restored_flag(at))
            for group_id, at in restored_at.items()
            for occupied, capacity in [figures[group_id]]
        ] + [
            FigureUpdate(group_id, OccupancySource.DEVICES, occupied, capacity, at, self._restored_flag(at))
            for group_id, (occupied, capacity, at) in display.items()
        ]
        restore_figures(self.store, updates)
        log.warning(
            "ingest: rebuilt the live state of %d lot(s); %d lot group(s) show their restored figure as "
            "stale until their devices report",
            len(saved),
            len(updates),
        )
        return sorted(update.group_id for update in updates)

    def _restored_flag(self, at: datetime) -> str:
        local = at.astimezone(self.core.settings.tz)
        return (
            f"restored from the figure saved at {local:%H:%M} on {local:%b} {local.day} after Redis lost the "
            "live state; waiting for the devices to report"
        )

    def live_state_lost(self) -> bool:
        return not self.core.redis.exists(LIVE_KEY)

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

    def services_answer(self) -> bool:
        """Do Redis and the database take writes? Asked when a batch fails, before blaming one
        of its messages: an outage, a read-only failover or a table refusing every row is
        nobody's poison. The database probe writes a harmless row to each table a batch writes
        to, and rolls them all back."""
        try:
            self.core.redis.set("parkops:ingest:probe", "1", ex=60)
            with self.core.db.session() as session:
                session.add(IngestDeadLetter(topic="probe", payload="", reason="probe"))
                session.add(UnknownDeviceMessage(device_id="probe", topic="probe", payload=""))
                group_id = session.scalar(
                    select(Lot.lot_group_id).where(Lot.lot_group_id.is_not(None)).limit(1)
                )
                if group_id is not None:
                    session.add(
                        OccupancySnapshot(
                            lot_group_id=group_id, source=OccupancySource.DEVICES, occupied=0, capacity=0
                        )
                    )
                session.flush()
                session.rollback()
        except Exception:
            log.warning("ingest: Redis or the database does not take writes", exc_info=True)
            return False
        return True


EPOCH = datetime.fromtimestamp(0, UTC)


def _lot_live(lot: LotInfo, value: Any) -> LotLive:
    """A lot's state as Redis answers it: HMGET count, capacity, abs_ts; or the sensor set."""
    if lot.has_counter:
        count, reported, abs_ts = value
        return LotLive(
            int(count or 0), int(reported) if reported else None, float(abs_ts) if abs_ts else None
        )
    return LotLive(sensors=tuple(sorted(m.decode() if isinstance(m, bytes) else m for m in value)))


def _script_fields(message: ParsedMessage, device: Device, token: str) -> tuple[EncodableT, ...]:
    """The seven ``APPLY_BATCH_LUA`` fields of one message."""
    ts = repr(message.ts.timestamp())
    if isinstance(message, CounterEvent):
        delta = 1 if message.direction == "in" else -1
        return ("e", device.lot_id, message.event_id, token, delta, "", ts)
    if isinstance(message, CounterCount):
        return ("c", device.lot_id, message.event_id, token, message.occupied, message.capacity, ts)
    kind = "s1" if message.occupied else "s0"
    return (kind, device.lot_id, message.event_id, token, "", device.device_id, ts)


def _save_lot_states(session: Session, live: dict[int, LotLive], now: datetime) -> None:
    """Upsert the copy of these lots' live state (one statement)."""
    if not live:
        return
    rows = [
        {
            "lot_id": lot_id,
            "count": state.count,
            "reported_capacity": state.reported_capacity,
            "count_ts": state.count_ts,
            "occupied_sensors": json.dumps(list(state.sensors)),
            "saved_at": now,
        }
        for lot_id, state in sorted(live.items())
    ]
    session.execute(_upsert(session.get_bind().dialect.name), rows)


@functools.cache
def _upsert(dialect_name: str) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE of ``lot_device_states``, built once per dialect and run
    with many rows (SQLAlchemy sends them as one multi-row statement)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(LotDeviceState)
    columns = ("count", "reported_capacity", "count_ts", "occupied_sensors", "saved_at")
    return statement.on_conflict_do_update(
        index_elements=[LotDeviceState.lot_id], set_={name: statement.excluded[name] for name in columns}
    )


def _last_device_snapshots(session: Session, group_ids: list[int]) -> dict[int, OccupancySnapshot]:
    found = {}
    for group_id in group_ids:
        row = session.scalars(
            select(OccupancySnapshot)
            .where(
                OccupancySnapshot.lot_group_id == group_id,
                OccupancySnapshot.source == OccupancySource.DEVICES,
            )
            .order_by(desc(OccupancySnapshot.recorded_at))
            .limit(1)
        ).first()
        if row is not None:
            found[group_id] = row
    return found


def _clean(value: str) -> str:
    """Text a database will store: PostgreSQL refuses NUL in text, so it is shown as U+2400 (␀)."""
    return value.replace("\x00", "\u2400")


def _text_of(payload: bytes) -> str:
    return _clean(payload[:MAX_PAYLOAD_BYTES].decode("utf-8", errors="replace"))


def _dead_letter(topic: str, payload: bytes, reason: str) -> IngestDeadLetter:
    return IngestDeadLetter(topic=_clean(topic)[:255], payload=_text_of(payload), reason=_clean(reason)[:255])


# -- applying with isolation -------------------------------------------------------------------
@dataclass(slots=True)
class Delivery:
    """One received message, with the token that names this delivery of it."""

    topic: str
    payload: bytes
    token: str
    mid: int = 0
    qos: int = 1
    received_at: float = 0.0  # epoch seconds


@dataclass
class Outcome:
    """``done``: applied or dead-lettered, to acknowledge. ``waiting``: to try again later."""

    done: list[Delivery]
    waiting: list[Delivery]
    poison: int = 0
    error: str | None = None


# A failure that every message shares (no part of the batch applies) is not the messages' fault;
# after this many failed tries without one success, splitting stops and the batch waits.
MAX_FAILED_TRIES = 24


def apply_isolating(ingester: Ingester, batch: list[Delivery], *, from_end: bool = False) -> Outcome:
    """Apply ``batch``; if it fails, split it until the messages that fail on their own are
    isolated, and dead-letter those, provided something else applied meanwhile (the evidence
    that the failure is theirs). When nothing applies, or Redis or the database does not take
    writes, everything stays waiting. ``from_end`` splits from the other end: alternating it
    between tries keeps a run of poison messages at the start from looking like an outage."""
    try:
        _process(ingester, batch)
        return Outcome(batch, [])
    except Exception as exc:
        first_error = exc
    error = _describe(first_error)
    log.warning("ingest: could not apply %d message(s): %s", len(batch), error)
    if not ingester.services_answer():
        return Outcome([], batch, error=error)
    applied: list[Delivery] = []
    failed: list[tuple[Delivery, Exception]] = []
    tries = itertools.count(1)

    def attempt(part: list[Delivery], known_error: Exception | None) -> bool:
        """False once splitting should stop (nothing applies)."""
        if known_error is None:
            try:
                _process(ingester, part)
                applied.extend(part)
                return True
            except Exception as exc:
                known_error = exc
                if not applied and next(tries) >= MAX_FAILED_TRIES:
                    return False
        if len(part) == 1:
            failed.append((part[0], known_error))
            return True
        middle = len(part) // 2
        halves = [part[:middle], part[middle:]]
        return all(attempt(half, None) for half in (reversed(halves) if from_end else halves))

    attempt(batch, first_error)
    if not applied:
        return Outcome([], batch, error=error)
    done, waiting = list(applied), []
    for delivery, problem in failed:
        reason = f"could not be applied: {_describe(problem)}"
        try:
            ingester.dead_letter(delivery.topic, delivery.payload, reason)
            log.error("ingest: dead-lettered a message on %s that %s", delivery.topic, reason)
            done.append(delivery)
        except Exception:
            log.exception("ingest: could not keep a message that failed as a dead letter")
            waiting.append(delivery)
    return Outcome(done, waiting, poison=len(done) - len(applied), error=error if waiting else None)


def _process(ingester: Ingester, part: list[Delivery]) -> None:
    ingester.process([(d.topic, d.payload) for d in part], tokens=[d.token for d in part])


def _describe(exc: BaseException) -> str:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return _clean(f"{type(exc).__name__}: {first_line}"[:200])


# -- the subscriber ----------------------------------------------------------------------------
# Half the broker's in-flight window (README: ``max_inflight_messages 1000``): while one batch is
# applied, the broker may still send the next one, so the next batch is read meanwhile instead of
# the broker waiting for acknowledgements (stop-and-wait).
BATCH_MAX = 500
# The reading thread reads on while fewer than this many messages wait behind the batch being
# applied; beyond that it leaves them on the socket and TCP holds the broker back, so at most two
# batches are held. While a failed batch waits out its retry it reads on (one packet at a time),
# as before: that keeps the connection alive, and the broker's in-flight window bounds it.
HOLD_MAX = BATCH_MAX
RETRY_MIN_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
SEEN_FLUSH_SECONDS = 5.0
SAVE_SECONDS = 1.0
BEAT_SECONDS = 1.0
IDLE_SECONDS = 0.25  # the longest either thread sleeps before it looks at the stop flag again
# Stopping waits this long for the batch being applied; one still running then (a database that
# hangs) is left behind unacknowledged, and the broker delivers it again.
STOP_WAIT_SECONDS = 5.0
SESSION_KEY = "parkops:ingest:session:{}"  # set once the broker holds a session for this client id


def run_ingester(core: Core, stop: threading.Event, *, client_id: str = CLIENT_ID) -> None:
    """Subscribe and ingest until ``stop`` is set. Raises ``AnotherIngesterRunning`` when
    another ingester holds the lock.

    The calling thread drives the network (it reads, hands what arrived to the applying thread,
    and acknowledges what that thread applied: ``manual_ack``); a second thread applies batches in
    order. Killed at any moment the ingester loses nothing (the broker redelivers to the persistent
    session) and double-counts nothing. A batch that fails waits (backing off from 1 s to 30 s)
    while the network keeps the connection alive and new messages join it; stopping waits for the
    batch being applied, acknowledges it, and leaves the rest unacknowledged. Reconnects back off
    from 1 s to 30 s; a connection the broker does not answer within 5 s is dropped and tried
    again; every connect resubscribes, and one that finds the session gone says so loudly.
    """
    lock = IngestLock(core.redis)
    if not lock.acquire(stop):
        return
    try:
        _Subscriber(core, stop, client_id, lock).run()
    finally:
        lock.release()


class _Subscriber:
    """Two threads. The one that calls ``run`` owns the paho client (paho is not thread-safe: an
    ``ack`` from another thread would write to the socket beside this one's writes), the status
    and the lock; ``_apply_loop`` owns the ``Ingester``, so the Redis and database round trips of a
    batch overlap the reading of the next one. They share only what ``cond`` guards."""

    def __init__(self, core: Core, stop: threading.Event, client_id: str, lock: IngestLock) -> None:
        self.core, self.stop, self.client_id, self.lock = core, stop, client_id, lock
        self.ingester = Ingester(core)
        self.client, self.address = make_read_ahead_client(
            core.mqtt_url, client_id, persistent=True, manual_ack=True
        )
        self.topics = subscriptions(self.ingester.prefix)
        self.cond = threading.Condition()
        # Guarded by ``cond``: received on the current connection and not applied yet, in order
        # (``applying`` is the applying thread's batch, older than ``waiting``); applied, to be
        # acknowledged; the connection's number (what came on an earlier one is never
        # acknowledged: the broker delivers it again); the retry state; stopping.
        self.waiting: list[Delivery] = []
        self.applying: list[Delivery] = []
        self.acks: list[Delivery] = []
        self.generation = 0
        self.retry_at = 0.0
        self.retry_delay = RETRY_MIN_SECONDS
        self.tries = 0
        self.last_error: str | None = None
        self.applied_at: float | None = None
        self.closing = False
        self.apply_failure: Exception | None = None
        self.report_now = threading.Event()  # the applying thread's news for the status
        self._incoming: list[Delivery] = []  # read by the reading thread, not handed over yet
        # The applying thread wakes the reading thread's ``select`` through this pair.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.connected_before = False
        self.lock_lost = False
        self._tokens = itertools.count()
        self._run_id = uuid.uuid4().hex[:12]
        self._beat_at = 0.0
        self._reported_waiting = False  # whether the last status written showed messages waiting
        self.started_at = time.time()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # -- paho callbacks -------------------------------------------------------------------------
    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        token = f"{self._run_id}.{next(self._tokens)}"
        self._incoming.append(Delivery(msg.topic, bytes(msg.payload), token, msg.mid, msg.qos, time.time()))

    def _on_connect(self, c: mqtt.Client, _u: object, flags: Any, reason: Any, _p: object) -> None:
        if reason.is_failure:
            log.warning("ingest: broker refused the connection: %s", reason)
            return
        address = f"{self.address.host}:{self.address.port}"
        if flags.session_present:
            log.info("ingest: connected to %s (session present)", address)
        elif self.connected_before or _quietly(
            lambda: self.core.redis.exists(SESSION_KEY.format(self.client_id))
        ):
            log.warning(
                "ingest: the broker at %s forgot this ingester's session: whatever it queued for the "
                "ingester while it was away is lost. Give the broker persistence (README, Production)",
                address,
            )
            _quietly(lambda: _record_session_lost(self.core.redis))
        else:
            log.info("ingest: connected to %s (new session)", address)
        self.connected_before = True
        c.subscribe(self.topics)

    def _on_subscribe(self, c: mqtt.Client, _u: object, _mid: int, reasons: list[Any], _p: object) -> None:
        refused = [str(reason) for reason in reasons if reason.is_failure]
        if refused:
            log.warning(
                "ingest: the broker refused a subscription (%s); subscribing again", ", ".join(refused)
            )
            c.subscribe(self.topics)
            return
        log.info("ingest: subscribed to %s", ", ".join(topic for topic, _qos in self.topics))
        _quietly(lambda: self.core.redis.set(SESSION_KEY.format(self.client_id), "1"))

    # -- the reading thread ---------------------------------------------------------------------
    def run(self) -> None:
        pubsub = _watch_device_changes(self.core, self.ingester)
        _quietly(self.ingester.ensure_live_state, "check the live state")
        applier = threading.Thread(target=self._apply_loop, name="parkops-ingest-apply", daemon=True)
        applier.start()
        delay = RECONNECT_MIN_SECONDS
        connecting_since = 0.0
        self._beat(force=True)
        try:
            while not self.stop.is_set() and not self.lock_lost:
                if self.apply_failure is not None:
                    raise RuntimeError("ingest: the applying thread failed") from self.apply_failure
                if not self.client.is_connected() and self.client.socket() is None:
                    # Unacknowledged: the broker sends them again on the new session.
                    self._forget_received()
                    try:
                        if self.connected_before:
                            self.client.reconnect()
                        else:
                            self.client.connect(self.address.host, self.address.port, keepalive=30)
                        delay = RECONNECT_MIN_SECONDS
                        connecting_since = time.monotonic()
                    except OSError as exc:
                        log.warning("ingest: cannot reach the broker (%s); retrying in %ss", exc, delay)
                        self._beat()
                        self.stop.wait(delay)
                        delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                        continue
                elif (
                    not self.client.is_connected()
                    and time.monotonic() - connecting_since > CONNECT_TIMEOUT_SECONDS
                ):
                    log.warning(
                        "ingest: the broker did not answer within %ss; connecting again",
                        CONNECT_TIMEOUT_SECONDS,
                    )
                    # Closes the socket; the branch above reconnects.
                    self.client.disconnect()
                    connecting_since = time.monotonic()
                self._network()
                # At once, not within the second: a failed batch, and the last message applied
                # after a report that showed messages waiting (they would look stuck meanwhile).
                forced = self.report_now.is_set() or (
                    self._reported_waiting and not self.applying and not self.waiting
                )
                self.report_now.clear()
                self._beat(force=forced)
        finally:
            self._stop_applying(applier)
            self._send_acks()  # the batch the applying thread finished while stopping
            # Whatever is still waiting was not applied: it stays unacknowledged, and the broker
            # delivers it again to the next ingester on this session.
            with self.cond:
                left = len(self.applying) + len(self.waiting) + len(self._incoming)
            if left:
                log.warning(
                    "ingest: stopping with %d message(s) not applied; the broker will deliver them again",
                    left,
                )
            self.client.disconnect()
            if pubsub is not None:
                pubsub.stop()
            _quietly(lambda: self.core.redis.hset(STATUS_KEY, mapping=self._status(stopped=True)))
            self._wake_r.close()
            self._wake_w.close()
            log.info("ingest: stopped")

    def _network(self) -> None:
        """One turn of the network loop, with paho's API for an outside loop (``socket``,
        ``loop_read``, ``loop_write``, ``loop_misc``) so that the ``select`` also wakes for the
        applying thread: read what arrived and hand it over, acknowledge what was applied."""
        sock = self.client.socket()
        if sock is None:
            return
        reading = len(self.waiting) < HOLD_MAX or time.monotonic() < self.retry_at
        # Bytes already read (``ReadAheadClient``), or decrypted by TLS, that ``select`` cannot see.
        buffered = reading and (
            self.client.buffered() or (isinstance(sock, ssl.SSLSocket) and sock.pending() > 0)
        )
        readable, _writable, _ = select_sockets(
            [self._wake_r, sock] if reading else [self._wake_r],
            [sock] if self.client.want_write() else [],
            [],
            0.0 if buffered else min(IDLE_SECONDS, max(self._beat_at + BEAT_SECONDS - time.monotonic(), 0.0)),
        )
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                self._wake_r.recv(4096)
        if sock in readable or buffered:
            self._read()
        self._send_acks()
        if self.client.socket() is not None:  # reading may have found the connection gone
            if self.client.want_write():
                self.client.loop_write()
            self.client.loop_misc()

    def _read(self) -> None:
        """Read the messages already buffered on the socket, up to what may wait, and hand them
        over. paho's ``loop_read`` reads one packet per call; reading on until no new message
        comes makes a batch of whatever arrived, with no time spent waiting for more: a lone
        message is applied at once (publish to API in milliseconds), a flood in batches. What the
        applying thread finishes meanwhile is acknowledged at once, so that the broker's in-flight
        window refills while this burst is read, not after it."""
        room = max(HOLD_MAX - len(self.waiting), 1)
        while len(self._incoming) < room:
            before = len(self._incoming)
            if self.client.loop_read() != mqtt.MQTT_ERR_SUCCESS or len(self._incoming) == before:
                break
            if self.acks:
                self._send_acks()
        if self._incoming:
            with self.cond:
                self.waiting.extend(self._incoming)
                self.cond.notify()
            self._incoming = []

    def _send_acks(self) -> None:
        with self.cond:
            acks, self.acks = self.acks, []
        for delivery in acks:
            self.client.ack(delivery.mid, delivery.qos)

    def _forget_received(self) -> None:
        """The connection is gone: what it brought is not acknowledged (the batch being applied
        still applies; its acknowledgements are dropped) and comes again on the next one."""
        self._incoming = []
        with self.cond:
            self.waiting.clear()
            self.acks.clear()
            self.generation += 1
            self.tries, self.retry_at = 0, 0.0

    def _stop_applying(self, applier: threading.Thread) -> None:
        """Let the applying thread finish its batch (not start another) and save."""
        with self.cond:
            self.closing = True
            self.cond.notify()
        applier.join(STOP_WAIT_SECONDS)
        if applier.is_alive():
            log.warning(
                "ingest: a batch is still being applied after %ss; stopping without it (unacknowledged)",
                STOP_WAIT_SECONDS,
            )

    # -- the applying thread --------------------------------------------------------------------
    def _apply_loop(self) -> None:
        """Apply the oldest waiting messages (up to a batch) as soon as there are any and no
        retry is pending, and save the live state periodically, until stopping."""
        last_flush = last_save = time.monotonic()
        try:
            while (taken := self._take()) is not None:
                batch, generation = taken
                if batch:
                    self._apply_batch(batch, generation)
                if time.monotonic() - last_save > SAVE_SECONDS:
                    _quietly(self.ingester.save_lot_states, "save the lots' live state")
                    last_save = time.monotonic()
                if time.monotonic() - last_flush > SEEN_FLUSH_SECONDS:
                    _quietly(self.ingester.flush_last_seen, "write last-seen times")
                    _quietly(self.ingester.refresh_if_due, "reload devices")
                    if _quietly(self.ingester.live_state_lost, "check the live state"):
                        _quietly(self.ingester.rebuild, "rebuild the live state")
                    last_flush = time.monotonic()
            _quietly(self.ingester.flush_last_seen, "write last-seen times")
            _quietly(self.ingester.save_lot_states, "save the lots' live state")
        except Exception as exc:  # a bug: the reading thread stops the ingester with it
            log.exception("ingest: the applying thread failed")
            self.apply_failure = exc
            self._wake()

    def _take(self) -> tuple[list[Delivery], int] | None:
        """The next batch and the connection it came on; an empty one when none is due within
        ``IDLE_SECONDS`` (time for the periodic saves); None once stopping."""
        with self.cond:
            if not self.closing and not self._batch_due():
                ahead = self.retry_at - time.monotonic() if self.waiting else IDLE_SECONDS
                self.cond.wait(min(ahead, IDLE_SECONDS))
            if self.closing:
                return None
            if not self._batch_due():
                return [], self.generation
            held = len(self.waiting)
            batch = self.waiting[:BATCH_MAX]
            del self.waiting[:BATCH_MAX]
            self.applying = batch
            generation = self.generation
        if held >= HOLD_MAX:
            self._wake()  # the reading thread had stopped reading: there is room again
        return batch, generation

    def _batch_due(self) -> bool:
        return bool(self.waiting) and time.monotonic() >= self.retry_at

    def _apply_batch(self, batch: list[Delivery], generation: int) -> None:
        outcome = apply_isolating(self.ingester, batch, from_end=self.tries % 2 == 1)
        with self.cond:
            self.applying = []
            if generation == self.generation:
                self.acks.extend(outcome.done)
                self.waiting[:0] = outcome.waiting  # in front of what arrived meanwhile, in order
            if outcome.done:
                self.applied_at = time.time()
            delay = self.retry_delay
            if outcome.waiting:
                self.tries += 1
                self.last_error = outcome.error
                self.retry_at = time.monotonic() + delay
                self.retry_delay = min(delay * 2, RETRY_MAX_SECONDS)
            else:
                self.tries, self.retry_at, self.retry_delay = 0, 0.0, RETRY_MIN_SECONDS
                self.last_error = None
        if outcome.waiting:
            log.warning(
                "ingest: %d message(s) wait unapplied (%s); trying again in %ss",
                len(outcome.waiting),
                outcome.error,
                delay,
            )
            self.report_now.set()
        self._wake()

    def _wake(self) -> None:
        """Make the reading thread's ``select`` return: acknowledgements to send, room to read."""
        with contextlib.suppress(OSError):  # full: it wakes anyway; closed: it has stopped
            self._wake_w.send(b"\0")

    # -- the status -----------------------------------------------------------------------------
    def _status(self, *, stopped: bool = False) -> dict[EncodableT, EncodableT]:
        with self.cond:
            held = self.applying + self.waiting
            error, applied_at = self.last_error, self.applied_at
        return {
            "owner": f"{self.lock.host}, process {os.getpid()}",
            "started_at": repr(self.started_at),
            "beat_at": repr(time.time()),
            "applied_at": repr(applied_at) if applied_at else "",
            "waiting": len(held),
            # The oldest message not applied yet: under a steady flow the head moves on, so only a
            # message that really waits (a failing batch) makes this old.
            "waiting_since": "" if stopped or not held else repr(held[0].received_at),
            "last_error": error or "",
            "connected": "1" if self.client.is_connected() and not stopped else "0",
            "stopped_at": repr(time.time()) if stopped else "",
        }

    def _beat(self, force: bool = False) -> None:
        """Report to ``STATUS_KEY`` and renew the lock, about once a second."""
        if not force and time.monotonic() - self._beat_at < BEAT_SECONDS:
            return
        self._beat_at = time.monotonic()
        try:
            status = self._status()
            self.core.redis.hset(STATUS_KEY, mapping=status)
            self._reported_waiting = bool(status["waiting"])
            if (
                time.monotonic() - self.lock.refreshed_at >= ingest_lock.LOCK_REFRESH_SECONDS
                and not self.lock.refresh()
            ):
                log.error("ingest: %s; this one stops", holder_text(self.core.redis.get(LOCK_KEY) or b""))
                self.lock_lost = True
        except redis.RedisError:
            log.debug("ingest: could not report to Redis", exc_info=True)


def _record_session_lost(client: redis.Redis) -> None:
    pipe = client.pipeline(transaction=False)
    pipe.hincrby(SESSIONS_LOST_KEY, "count", 1)
    pipe.hset(SESSIONS_LOST_KEY, "last_at", repr(time.time()))
    pipe.execute()


def _quietly(action: Callable[[], Any], what: str = "report to Redis") -> Any:
    try:
        return action()
    except Exception:
        log.exception("ingest: could not %s", what)
        return None


def _watch_device_changes(core: Core, ingester: Ingester) -> Any:
    """Reload the device map as soon as an admin registers or maps a device."""

    def on_error(exc: BaseException, _pubsub: Any, _thread: Any) -> None:
        # Redis restarting: the subscription comes back with the connection; reload meanwhile.
        log.warning("ingest: lost the device-change channel (%s); retrying", exc)
        ingester.request_refresh()
        time.sleep(1.0)

    try:
        pubsub = core.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(**{DEVICES_CHANNEL: lambda _message: ingester.request_refresh()})
        return pubsub.run_in_thread(sleep_time=1.0, daemon=True, exception_handler=on_error)
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
